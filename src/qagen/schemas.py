"""Export the JSON Schema of every record model to ``schemas/`` (kept in sync by a test)."""

from __future__ import annotations

import json
from pathlib import Path

from qagen.records import RECORD_MODELS


def render_schemas() -> dict[str, str]:
    """File name → JSON text of each record model's schema (deterministic)."""
    return {
        f"{name}.schema.json": json.dumps(model.model_json_schema(mode="serialization"),
                                          indent=2, sort_keys=True) + "\n"
        for name, model in RECORD_MODELS.items()
    }


def write_schemas(out_dir: Path) -> list[Path]:
    """Write the schemas and remove stale ``*.schema.json`` files; returns paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rendered = render_schemas()
    for stale in out_dir.glob("*.schema.json"):
        if stale.name not in rendered:
            stale.unlink()
    written = []
    for name, text in rendered.items():
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
