"""The dataset card: YAML header the Hub and ``datasets.load_dataset`` read, body from data_cards/.

The header is built as data and dumped with PyYAML (never templated as text), so it always
parses; the Markdown body is a Jinja2 template so wording changes need no code change.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml

from qagen.errors import ConfigError
from qagen.stats import WorkStats
from qagen.workdir import WorkDir

TEMPLATE_NAME = "musicqa.md.j2"
TASK_CATEGORIES = ["question-answering", "text-generation"]
TAGS = ["music", "audio", "music-question-answering", "instruction-tuning", "mir", "qagen"]


def default_card_template() -> Path:
    """``data_cards/musicqa.md.j2`` of the repository (or ``QAGEN_DATA_CARDS``/<name>)."""
    env = os.environ.get("QAGEN_DATA_CARDS")
    folder = Path(env) if env else Path(__file__).resolve().parents[3] / "data_cards"
    return folder / TEMPLATE_NAME


def size_category(n: int) -> str:
    """The Hub's ``size_categories`` bucket of ``n`` rows."""
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
              (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")]
    for bound, label in bounds:
        if n < bound:
            return label
    return "n>10M"


def card_header(
    *, configs: dict[str, dict[str, list[str]]], default: str, license_id: str,
    pretty_name: str, total_rows: int,
) -> dict[str, Any]:
    """The YAML header: one entry per config with a ``data_files`` glob per split.

    ``configs`` maps config → split → shard paths (only their folder and split are used:
    the glob keeps the header stable when the shard count changes).
    """
    entries = []
    for name in [default, *sorted(c for c in configs if c != default)]:
        if name not in configs:
            continue
        entry: dict[str, Any] = {"config_name": name}
        if name == default:
            entry["default"] = True
        entry["data_files"] = [{"split": split, "path": f"data/{name}/{split}-*.parquet"}
                               for split in sorted(configs[name], key=_split_order)]
        entries.append(entry)
    return {
        "pretty_name": pretty_name,
        "license": license_id,
        "language": ["en"],
        "task_categories": TASK_CATEGORIES,
        "tags": TAGS,
        "size_categories": [size_category(total_rows)],
        "configs": entries,
    }


def _split_order(split: str) -> tuple[int, str]:
    order = {"train": 0, "validation": 1, "test": 2}
    return (order.get(split, 3), split)


def render_card(
    *, header: dict[str, Any], context: dict[str, Any], template: Path | None = None,
) -> str:
    """README.md text: ``---`` YAML ``---`` then the rendered template.

    Raises
    ------
    ConfigError
        When the template file does not exist.
    """
    import jinja2

    path = template or default_card_template()
    if not path.is_file():
        raise ConfigError(f"card template not found: {path} (set QAGEN_DATA_CARDS or "
                          f"PublishConfig.card_template)")
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(path.parent)),
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True, keep_trailing_newline=True, autoescape=False)
    env.filters["tojson"] = lambda v: json.dumps(v, ensure_ascii=False, sort_keys=True)
    body = env.get_template(path.name).render(**context)
    head = yaml.safe_dump(header, sort_keys=False, allow_unicode=True, width=1000)
    return f"---\n{head}---\n\n{body}"


def load_card_header(text: str) -> dict[str, Any]:
    """Parse the YAML header of a card (what the Hub reads)."""
    if not text.startswith("---\n"):
        raise ValueError("card has no YAML header")
    head, sep, _ = text[4:].partition("\n---\n")
    if not sep:
        raise ValueError("card's YAML header is not closed")
    data = yaml.safe_load(head)
    if not isinstance(data, dict):
        raise ValueError("card's YAML header is not a mapping")
    return data


def training_runs(work: WorkDir) -> list[dict[str, Any]]:
    """``train/<run>/eval/metrics.json`` of each run (scalar metrics only), sorted by run."""
    runs: list[dict[str, Any]] = []
    if not work.train_runs.is_dir():
        return runs
    for name in sorted(p.name for p in work.train_runs.iterdir() if p.is_dir()):
        metrics = work.train_run(name).metrics
        if not metrics.is_file():
            continue
        try:
            data = json.loads(metrics.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        scalars = {k: v for k, v in sorted(data.items())
                   if isinstance(v, int | float | str) and not isinstance(v, bool)}
        runs.append({"run": name, "metrics": scalars})
    return runs


def stats_context(stats: WorkStats) -> dict[str, Any]:
    """Template variables derived from the counts."""
    splits = sorted({s for by in [*stats.clips.values(), *stats.pairs.values()] for s in by},
                    key=_split_order)
    return {"stats": stats, "splits": splits, "total_clips": stats.total_clips,
            "total_pairs": stats.total_pairs, "audio_minutes": stats.audio_seconds / 60}
