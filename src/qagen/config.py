"""One Pydantic config model per stage. Configs are hashed into resume fingerprints and
cache keys, so every field that changes output belongs here (and nothing secret does)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class AugmentConfig(BaseModel):
    """Parameters of the augment stage that change its output."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    sr: int = Field(default=44100, description="Analysis rate: madmom's models expect 44.1 kHz.")
    min_duration_s: float = Field(default=3.0, gt=0, description="Shorter → too_short.")
    max_duration_s: float | None = Field(
        default=None, description="Analyse at most this much of each window (None = all)."
    )
    use_librosa_tempo: bool = Field(default=True, description="Third tempo estimator.")
    chord_min_s: float = Field(default=0.25, ge=0, description="Shorter chords are merged.")
    key_from_chords: bool = Field(default=True, description="Re-rank keys with the chords.")
    tempo_octave_decision: bool = Field(
        default=True, description="Choose the tempo octave by votes (False: TCN's top peak)."
    )
