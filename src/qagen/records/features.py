"""``ClipFeatures``: what the augment stage measured on one clip's audio, with units."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class FeatureStatus(StrEnum):
    """Outcome of analysing one clip. Anything but ``ok`` leaves musical fields empty."""

    ok = "ok"
    decode_error = "decode_error"  # corrupt, truncated beyond repair, unsupported format
    empty = "empty"  # zero samples in the window
    too_short = "too_short"  # shorter than the analysers need
    silent = "silent"  # below the silence gate: loudness kept, nothing musical measured


class TempoAgreement(StrEnum):
    """How the tempo estimators relate: a hedge signal for question generation."""

    agree = "agree"  # all within 4 %
    majority = "majority"  # two agree on the chosen tempo, a third says something unrelated
    octave = "octave"  # differ by a factor of 2 (or 3 in triple meter): half/double ambiguity
    disagree = "disagree"  # no simple ratio and no two agree: low trust
    single = "single"  # only one estimator produced a value


class TempoAlternative(BaseModel):
    """One candidate tempo and its share of the evidence (the weights of a clip sum to 1)."""

    model_config = ConfigDict(frozen=True)
    bpm: float
    weight: float = Field(ge=0.0, le=1.0)


class ChordSegment(BaseModel):
    """One recognised chord: Harte label with sharps as madmom writes it, plus a readable one."""

    model_config = ConfigDict(frozen=True)
    start_s: float
    end_s: float
    label: str = Field(description="Harte syntax: 'A#:maj', 'C:min', 'N' for no chord.")
    spelled: str = Field(description="Spelled for the key, for prompts: 'Bb major', 'no chord'.")


class ClipFeatures(BaseModel):
    """Measured metadata of one clip (times in seconds from the start of the clip window).

    The estimator trail (``tempo_*`` candidates, ``key_madmom``) is stored next to the
    decision so later stages can hedge (e.g. half/double time) and so the decision rules
    can be re-scored without re-running the networks.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    clip_id: str
    source: str
    status: FeatureStatus
    error: str | None = Field(
        default=None,
        description="Readable reason when status is not ok; a warning (truncated file) if ok.",
    )
    audio_sha256: str | None = None
    duration_s: float | None = None
    native_sr: int | None = Field(default=None, description="Sample rate of the file.")
    native_channels: int | None = None

    loudness_lufs: float | None = Field(default=None, description="ITU-R BS.1770 integrated.")
    peak_dbfs: float | None = None
    is_silent: bool | None = None

    is_music: bool | None = Field(
        default=None, description="Music (tuned partials or a steady pulse) or not (speech, "
        "animal sounds, noise). When false, tempo, key and chords are withheld (None/empty).")
    music_confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    music_evidence: dict[str, float] = Field(
        default_factory=dict, description="pitch_grid (0..1: partials on one tuning grid), "
        "pulse (0..1: beat-activation autocorrelation at its best tempo).")
    withheld_reason: str | None = Field(
        default=None, description="Why tempo, key and chords are absent on an ok clip "
        "('not_music'); None when they were reported.")

    tempo_bpm: float | None = None
    tempo_confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    tempo_tcn_bpm: float | None = Field(default=None, description="madmom TCN tempo head.")
    tempo_beats_bpm: float | None = Field(default=None, description="60 / median DBN beat gap.")
    tempo_librosa_bpm: float | None = Field(default=None, description="librosa.feature.tempo.")
    tempo_agreement: TempoAgreement | None = None
    tempo_alternatives: list[TempoAlternative] = Field(
        default_factory=list, description="Candidate tempi (the chosen one and its octaves) "
        "with weights summing to 1, strongest first, so questions can hedge on half/double.")
    tempo_peaks_bpm: list[float] = Field(
        default_factory=list, description="TCN tempo-histogram peaks, strongest first."
    )
    tempo_peak_strengths: list[float] = Field(default_factory=list)

    beats: list[float] = Field(default_factory=list)
    downbeats: list[float] = Field(default_factory=list)
    meter: int | None = Field(
        default=None, description="Beats per bar at the reported tempo: 3 or 4, or 2 in 6/8 "
        "(two dotted-quarter beats, the level tempo_bpm counts).")
    time_signature: str | None = Field(
        default=None, description="'3/4', '4/4' or '6/8' (compound: the beat is a dotted "
        "quarter of three eighths; tempo_alternatives carry the eighth-note level).")
    meter_confidence: float | None = Field(default=None, ge=0.0, le=1.0)

    key: str | None = Field(default=None, description="mir_eval style: 'D minor', 'Bb major'.")
    key_confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    key_madmom: str | None = Field(default=None, description="madmom CNN's own top key.")
    key_probabilities: list[float] = Field(
        default_factory=list, description="Key CNN output, 24 values in KEY_LABELS order."
    )
    chords: list[ChordSegment] = Field(default_factory=list)

    extractor_versions: dict[str, str] = Field(default_factory=dict)
    seconds: float | None = Field(default=None, description="Wall time spent on this clip.")
