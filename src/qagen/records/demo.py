"""The demo corpus's clip and truth types, shared by the synthesiser, the corpus builder and
each source's ``write_native`` (so sources need not import the demo stage).

Not stored as manifests, so not in ``RECORD_MODELS``: ``DemoClip`` carries its audio."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


class ChordSpan(BaseModel):
    """A chord over a time span; ``label`` in Harte syntax with sharps (``A#:maj``, ``N``)."""

    model_config = ConfigDict(frozen=True)
    start_s: float
    end_s: float
    label: str


class NoteEvent(BaseModel):
    """One rendered note: MIDI pitch, General MIDI program (0-based), times in seconds."""

    model_config = ConfigDict(frozen=True)
    start_s: float
    end_s: float
    pitch: int = Field(ge=0, le=127)
    program: int = Field(ge=0, le=127)
    start_beat: float = Field(description="Onset in beats from the start of the piece.")
    duration_beats: float


class DemoTruth(BaseModel):
    """What the synthesiser put into a clip: the ground truth that augment is scored against.

    Times are seconds from the start of the rendered audio file.
    """

    model_config = ConfigDict(frozen=True)
    tempo_bpm: float
    beats_per_bar: int
    key: str = Field(description="mir_eval style: 'D minor', 'Bb major'.")
    chords: list[ChordSpan]
    beats: list[float]
    downbeats: list[float]
    notes: list[NoteEvent]
    timbres: list[str]
    has_drums: bool


@dataclass(frozen=True)
class DemoClip:
    """One synthesised recording plus the labels its source would publish about it.

    ``name`` is unique in the corpus and safe as a file stem. Labels are written the way the
    real dataset writes them (MusicCaps caption + aspects, MTT tags, FMA genres, …).
    """

    name: str
    audio: np.ndarray  # float32 mono, in [-1, 1]
    sr: int
    truth: DemoTruth
    split: str = "train"
    caption: str = ""
    aspects: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    genres: list[str] = field(default_factory=list)
    instruments: list[str] = field(default_factory=list)
    moods: list[str] = field(default_factory=list)
    title: str = ""
    artist: str = ""
    composer: str = ""
    composition: str = ""
    ensemble: str = ""

    @property
    def duration_s(self) -> float:
        """Length of the rendered audio in seconds."""
        return len(self.audio) / self.sr
