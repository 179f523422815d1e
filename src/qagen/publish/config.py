"""``PublishConfig``: what the published dataset folder holds (no token: configs get logged)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

#: Configs the publish stage knows; ``qa`` is the default config of the dataset.
CONFIG_NAMES = ("qa", "clips", "embeddings")


class PublishConfig(BaseModel):
    """Parameters of the publish stage.

    ``out_dir`` None means ``WORKDIR/publish/hf``. ``license`` overrides the aggregated license
    id in the card's YAML (the per-source table still shows what the data carries).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    out_dir: Path | None = None
    repo_id: str | None = Field(default=None, description="owner/name, shown in the card.")
    pretty_name: str = "qagen MusicQA"
    configs: list[Literal["qa", "clips", "embeddings"]] = Field(
        default_factory=lambda: ["qa", "clips", "embeddings"],
        description="Configs to write; 'embeddings' only when embeddings/index.parquet exists.",
    )
    embed_audio: bool = Field(
        default=False, description="Add an Audio column (the clip window as FLAC) to 'clips'."
    )
    shard_rows: int = Field(default=10_000, ge=1, description="Rows per parquet shard.")
    audio_shard_rows: int = Field(default=200, ge=1, description="Rows per shard with audio.")
    license: str | None = Field(default=None, description="Override the aggregated license id.")
    exports: bool = Field(default=True, description="Write MusicQA JSON and LLaVA JSONL.")
    export_audio: bool = Field(
        default=False, description="Also write exports/audio/<clip_id>.wav, the files the "
        "exports' audio_name points to (MU-LLaMA's trainer reads the folder unchanged).")
    plots: bool = Field(default=True, description="Write the PNG plots under assets/.")
    reviewed_only: bool = Field(
        default=False, description="Publish only pairs a curator accepted or edited (qagen "
        "review); the rest are left out with reason not_reviewed.")
    leakage: Literal["report", "error"] = Field(
        default="report", description="On split leakage: list it in the card, or stop."
    )
    card_template: Path | None = Field(
        default=None, description="Jinja2 card template; default data_cards/musicqa.md.j2."
    )
