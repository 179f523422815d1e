"""``Clip``: one window of one recording, with the source's own labels normalised."""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from qagen.paths import safe_relpath

#: Field metadata key: ``False`` marks fields later stages must never ask questions about.
ASKABLE = "x-qagen-askable"


class Split(StrEnum):
    """Dataset split, as the source defines it (``unsplit`` when it defines none)."""

    train = "train"
    valid = "valid"
    test = "test"
    unsplit = "unsplit"


class AudioStatus(StrEnum):
    """Whether later stages may read the clip's audio."""

    ok = "ok"  # the file exists under the dataset root
    missing = "missing"  # metadata row kept, file absent: later stages skip it
    excluded = "excluded"  # file known to be broken or unusable (reason in audio_status_reason)
    unchecked = "unchecked"  # ingest was told not to look at the filesystem


class Clip(BaseModel):
    """One clip of the unified manifest.

    Why a single flat model: every source (MusicCaps captions, MTT tags, FMA genres,
    MusicNet scores) maps onto the same typed fields, so augment/generate/publish never
    branch on the source. Source-specific leftovers go into ``attributes`` (text values).
    Title, artist and album are kept for attribution but marked not askable: an LLM asked
    about them would only recite metadata, not listen.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)

    ID_DIGEST_CHARS: ClassVar[int] = 16

    clip_id: str = Field(description="Stable id: Clip.make_id(source, source_id, window).")
    source: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="Source id, e.g. 'musiccaps'.")
    source_id: str = Field(min_length=1, description="The dataset's own id of the recording.")
    audio_path: str = Field(description="Audio file, relative to the dataset root, '/'-separated.")
    start_s: float = Field(ge=0.0, description="Window start within the audio file, seconds.")
    end_s: float | None = Field(
        default=None, description="Window end within the audio file, seconds; None = to the end."
    )
    split: Split = Split.unsplit
    subset: str | None = Field(default=None, description="Source subset (e.g. FMA 'small').")
    license: str | None = Field(default=None, description="License of this clip's audio/labels.")
    audio_status: AudioStatus = AudioStatus.unchecked
    audio_status_reason: str | None = None
    audio_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")

    caption: str | None = Field(default=None, description="Free-text description by a human.")
    aspects: list[str] = Field(default_factory=list, description="MusicCaps aspect list.")
    tags: list[str] = Field(default_factory=list, description="All of the source's tags, as given.")
    genres: list[str] = Field(default_factory=list)
    instruments: list[str] = Field(default_factory=list)
    moods: list[str] = Field(default_factory=list)
    vocals: list[str] = Field(
        default_factory=list,
        description="What the labels say of the voice: present, none, female, male, choir…",
    )
    absent_instruments: list[str] = Field(
        default_factory=list, description="Instruments the labels say are absent ('no drums')."
    )
    not_genres: list[str] = Field(
        default_factory=list, description="Genres the labels deny ('not classical')."
    )
    composer: str | None = None
    composition: str | None = None
    movement: str | None = None
    ensemble: str | None = None
    title: str | None = Field(default=None, json_schema_extra={ASKABLE: False})
    artist: str | None = Field(default=None, json_schema_extra={ASKABLE: False})
    album: str | None = Field(default=None, json_schema_extra={ASKABLE: False})
    attributes: dict[str, str] = Field(
        default_factory=dict, description="Source-specific extras, as text."
    )

    @staticmethod
    def make_id(source: str, source_id: str, start_s: float | None, end_s: float | None) -> str:
        """Derive the clip id from what identifies the audio, so re-runs give the same id.

        The window is rounded to milliseconds before hashing; ``None`` means the whole file.
        The id is ``<source>-<16 hex>``: readable source prefix, opaque digest (never parse it).
        """
        start = "" if start_s is None else f"{start_s:.3f}"
        end = "" if end_s is None else f"{end_s:.3f}"
        key = "\x1f".join((source, source_id, start, end)).encode()
        return f"{source}-{hashlib.blake2b(key, digest_size=8).hexdigest()}"

    @classmethod
    def askable_fields(cls) -> frozenset[str]:
        """Fields a question generator may use (title/artist/album are excluded)."""
        out = set()
        for name, info in cls.model_fields.items():
            extra = info.json_schema_extra
            if isinstance(extra, dict) and extra.get(ASKABLE) is False:
                continue
            out.add(name)
        return frozenset(out)

    @field_validator("audio_path")
    @classmethod
    def _relative_audio_path(cls, v: str) -> str:
        return safe_relpath(v)

    @field_validator("aspects", "tags", "genres", "instruments", "moods", "vocals",
                     "absent_instruments", "not_genres")
    @classmethod
    def _clean_labels(cls, v: list[str]) -> list[str]:
        seen: dict[str, None] = {}
        for item in v:
            s = " ".join(str(item).split())
            if s:
                seen.setdefault(s, None)
        return list(seen)

    @model_validator(mode="after")
    def _window(self) -> Clip:
        if self.end_s is not None and self.end_s <= self.start_s:
            raise ValueError(f"end_s ({self.end_s}) must be after start_s ({self.start_s})")
        return self

    @property
    def duration_s(self) -> float | None:
        """Window length in seconds, or None when the window runs to the end of the file."""
        return None if self.end_s is None else self.end_s - self.start_s

    def to_row(self) -> dict[str, Any]:
        """The parquet row: enums as strings (``model_dump(mode='json')``)."""
        return self.model_dump(mode="json")
