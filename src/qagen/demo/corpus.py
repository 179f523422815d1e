"""Build the demo corpus: every source's native layout, rendered audio, and ground truth.

``OUT/<source>/`` is directly usable as ``qagen ingest <source> OUT/<source>``;
``OUT/truth.jsonl`` holds one line per clip (clip id, tempo, meter, key, chords, beats,
downbeats, notes) for scoring the augment stage. A corpus already built from the same code
and parameters is reused as is.

The sources' ``write_native`` functions are handed in (``writers``): the demo stage does not
import the sources stage; ``qagen.stages.write_demo_corpus`` passes every discovered source.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel

from qagen.demo import plan, synth
from qagen.errors import ConfigError
from qagen.manifest import write_json_atomic, write_text_atomic
from qagen.records.demo import DemoClip

log = logging.getLogger(__name__)

DEMO_VERSION = "1"
MARKER = ".qagen-demo.json"
TRUTH_FILE = "truth.jsonl"


class NativeWriter(Protocol):
    """What the corpus needs of a source (a source module satisfies it)."""

    def write_native(self, out_dir: Path, demo_clips: Sequence[DemoClip]) -> dict[str, str]: ...


class DemoCorpus(BaseModel):
    """Where a built demo corpus lies and what it holds."""

    root: str
    sources: dict[str, str]
    truth_path: str
    clips: int
    reused: bool


def _split_for(index: int, count: int, source: str, *, sampled: bool = False) -> str:
    """Table: the last clip of each source is test, and MTT gets a validation clip (folder c).
    Sampled (``clips=N``): every fifth clip is test, so a training run holds out a fifth of
    them, and MTT sends every tenth from the third on to validation."""
    if sampled:
        if index % 5 == 4:
            return "test"
        return "valid" if source == "mtt" and index % 10 == 2 else "train"
    if index == count - 1:
        return "test"
    if source == "mtt" and index == count - 2:
        return "valid"
    return "train"


def _writer_code(writer: NativeWriter) -> str:
    """Source code of the module defining ``writer.write_native`` (its layout knowledge)."""
    module = inspect.getmodule(writer.write_native)
    return inspect.getsource(module if module is not None else writer.write_native)


def _fingerprint(sources: Sequence[str], writers: Mapping[str, NativeWriter], seed: int,
                 sr: int, clips: int | None) -> str:
    h = hashlib.sha256(f"{DEMO_VERSION}\x1f{list(sources)}\x1f{seed}\x1f{sr}\x1f{clips}".encode())
    for text in [inspect.getsource(synth), inspect.getsource(plan), inspect.getsource(_split_for),
                 *(_writer_code(writers[s]) for s in sources)]:
        h.update(text.encode())
    return h.hexdigest()


def write_corpus(
    out: Path, *, writers: Mapping[str, NativeWriter], sources: Sequence[str] | None = None,
    seed: int = 0, sr: int = 44100, force: bool = False, clips: int | None = None,
) -> DemoCorpus:
    """Render the demo corpus into ``out`` (or reuse the one already there).

    Parameters
    ----------
    writers
        Source name → its module (anything with ``write_native``).
    sources
        Sources to write (default: every writer the plan has clips for, in ``writers`` order).
    clips
        None: the hand-written 26-clip table. A number: that many sampled clips shared by the
        chosen sources (:func:`qagen.demo.plan.sampled_plan`), for training runs.

    Raises
    ------
    ConfigError
        If ``sources`` names a source the plan has no clips for, or no writer is given for.
    """
    table = plan.corpus_plan(seed=seed)
    chosen = list(sources) if sources else [s for s in writers if s in table]
    unknown = [s for s in chosen if s not in table]
    if unknown:
        raise ConfigError(f"the demo plan has no clips for {unknown}; it has {sorted(table)}")
    if clips is not None and clips < 1:
        raise ConfigError(f"clips must be ≥ 1, got {clips}")
    specs_by_source = table if clips is None else plan.corpus_plan(seed=seed, clips=clips,
                                                                    sources=chosen)
    chosen = [s for s in chosen if s in specs_by_source]  # a few sampled clips may skip one
    unwritable = [s for s in chosen if s not in writers]
    if unwritable:
        raise ConfigError(f"no source module writes {unwritable}; known: {sorted(writers)}")
    out = Path(out)
    fingerprint = _fingerprint(chosen, writers, seed, sr, clips)
    marker = out / MARKER
    if not force and marker.is_file():
        meta = json.loads(marker.read_text(encoding="utf-8"))
        if meta.get("fingerprint") == fingerprint:
            log.info("demo corpus at %s is up to date; reusing it", out)
            return DemoCorpus.model_validate({**meta["corpus"], "reused": True})
    out.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)
    truth_lines: list[str] = []
    sampled = clips is not None
    for source in chosen:
        specs = specs_by_source[source]
        clips = [plan.demo_clip(spec, source=source, sr=sr,
                                split=_split_for(i, len(specs), source, sampled=sampled))
                 for i, spec in enumerate(specs)]
        target = out / source
        if target.exists():
            shutil.rmtree(target)
        ids = writers[source].write_native(target, clips)
        for clip in clips:
            row = {"clip_id": ids[clip.name], "source": source, "name": clip.name,
                   "split": clip.split, **clip.truth.model_dump(mode="json")}
            truth_lines.append(json.dumps(row, sort_keys=True))
        log.info("demo corpus: wrote %d %s clips", len(clips), source)
    truth_path = out / TRUTH_FILE
    write_text_atomic(truth_path, "".join(f"{line}\n" for line in truth_lines))
    corpus = DemoCorpus(root=str(out), sources={s: str(out / s) for s in chosen},
                        truth_path=str(truth_path), clips=len(truth_lines), reused=False)
    write_json_atomic(marker, {"fingerprint": fingerprint,
                               "corpus": corpus.model_dump(mode="json", exclude={"reused"})})
    return corpus
