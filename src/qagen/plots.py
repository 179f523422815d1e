"""PNG plots of a work directory's data (tempo, key, answer length), for the card and report.

matplotlib runs on the Agg backend (no display); PNG metadata is fixed so an unchanged input
gives byte-identical files, and an empty input still gives a labelled (empty) plot.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from qagen.manifest import write_bytes_if_changed
from qagen.stats import WorkStats

_PITCHES = ("C", "C#", "Db", "D", "D#", "Eb", "E", "F", "F#", "Gb", "G", "G#", "Ab", "A",
            "A#", "Bb", "B", "Cb")


def _figure():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    return plt, fig, ax


def _png(plt, fig) -> bytes:  # type: ignore[no-untyped-def]
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", metadata={"Software": "qagen"})
    plt.close(fig)
    return buf.getvalue()


def render_histogram(values: Sequence[float], *, title: str, xlabel: str, bins: int = 30) -> bytes:
    """A histogram as PNG bytes."""
    plt, fig, ax = _figure()
    if values:
        ax.hist(values, bins=bins, color="#4c72b0", edgecolor="white")
    else:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    ax.set_title(f"{title} (n={len(values)})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    return _png(plt, fig)


def render_bars(counts: dict[str, int], *, title: str, xlabel: str) -> bytes:
    """A bar chart (categories in the given order) as PNG bytes."""
    plt, fig, ax = _figure()
    if counts:
        ax.bar(list(counts), list(counts.values()), color="#55a868")
        ax.tick_params(axis="x", labelrotation=60, labelsize=7)
    else:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    ax.set_title(f"{title} (n={sum(counts.values())})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    return _png(plt, fig)


def _key_order(key: str) -> tuple[int, int, str]:
    tonic, _, mode = key.partition(" ")
    pitch = _PITCHES.index(tonic) if tonic in _PITCHES else len(_PITCHES)
    return (0 if mode == "major" else 1, pitch, key)


def render_plots(stats: WorkStats) -> dict[str, bytes]:
    """The standard plots: file name → PNG bytes."""
    keys = Counter(stats.keys)
    return {
        "tempo.png": render_histogram(stats.tempos_bpm, title="Measured tempo", xlabel="BPM"),
        "key.png": render_bars({k: keys[k] for k in sorted(keys, key=_key_order)},
                               title="Measured key", xlabel="key"),
        "answer_length.png": render_histogram(
            [float(n) for n in stats.answer_words], title="Answer length", xlabel="words"),
    }


def write_plots(stats: WorkStats, folder: Path) -> dict[str, Path]:
    """Write the standard plots into ``folder`` (unchanged files are left alone)."""
    out = {}
    for name, data in render_plots(stats).items():
        write_bytes_if_changed(folder / name, data)
        out[name] = folder / name
    return out
