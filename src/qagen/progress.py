"""Progress of a long stage: done/total, tokens/s and ETA, sent to sinks at their own pace.

Why a core module: the CLI draws a bar, the Prefect flow posts an artifact and the log gets a
line every 30 s, all from the same numbers; the stage only calls :meth:`Progress.advance`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProgressState:
    """A snapshot of one stage's progress."""

    stage: str
    unit: str
    done: int
    total: int
    tokens: int
    elapsed_s: float
    final: bool = False

    @property
    def tokens_per_s(self) -> float:
        """Output tokens per second since the stage started."""
        return self.tokens / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the rate so far (None before the first item or with no total)."""
        if self.done <= 0 or self.total <= self.done or self.elapsed_s <= 0:
            return None if self.total > self.done else 0.0
        return (self.total - self.done) * self.elapsed_s / self.done

    def describe(self) -> str:
        """One line: ``generate: 120/480 requests (25%), 410 tok/s, ETA 3m10s``."""
        share = f" ({self.done / self.total:.0%})" if self.total else ""
        eta = self.eta_s
        tail = f", ETA {format_seconds(eta)}" if eta is not None and not self.final else ""
        tokens = f", {self.tokens_per_s:.0f} tok/s" if self.tokens else ""
        return (f"{self.stage}: {self.done}/{self.total} {self.unit}{share}{tokens}{tail}"
                f"{' (done)' if self.final else ''}")


def format_seconds(seconds: float) -> str:
    """``190.4`` → ``3m10s``; ``4000`` → ``1h06m``."""
    s = round(seconds)
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


@dataclass
class ProgressSink:
    """A callback and how often it wants updates (0: every advance)."""

    callback: Callable[[ProgressState], None]
    every_s: float = 0.0
    last: float = field(default=float("-inf"), repr=False)


def log_sink(*, every_s: float = 30.0, logger: logging.Logger | None = None) -> ProgressSink:
    """A sink that logs :meth:`ProgressState.describe` at most every ``every_s`` seconds."""
    target = logger or log
    return ProgressSink(lambda state: target.info("%s", state.describe()), every_s)


class Progress:
    """Counts work done against a (possibly growing) total and feeds the sinks."""

    def __init__(self, stage: str, *, unit: str = "items", total: int = 0,
                 sinks: Sequence[ProgressSink] = (),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stage, self.unit, self.total = stage, unit, total
        self.done = 0
        self.tokens = 0
        self._sinks = list(sinks)
        self._clock = clock
        self._started = clock()

    def state(self, *, final: bool = False) -> ProgressState:
        """The snapshot now."""
        return ProgressState(self.stage, self.unit, self.done, max(self.total, self.done),
                             self.tokens, self._clock() - self._started, final)

    def set_total(self, total: int) -> None:
        """Replace the total (an estimate that becomes exact as work is discovered)."""
        self.total = total
        self._emit(force=False)

    def advance(self, n: int = 1, *, tokens: int = 0) -> None:
        """Count ``n`` items (and their output tokens) as done."""
        self.done += n
        self.tokens += tokens
        self._emit(force=False)

    def close(self) -> None:
        """Send the final state to every sink."""
        self._emit(force=True)

    def _emit(self, *, force: bool) -> None:
        now = self._clock()
        state: ProgressState | None = None
        for sink in self._sinks:
            if force or now - sink.last >= sink.every_s:
                sink.last = now
                state = state or self.state(final=force)
                sink.callback(state)
