"""Scoring against truth rows that may be partial (real recordings) or say "not music"."""

import pytest

from qagen.augment.evaluate import score_features
from qagen.records import ClipFeatures, FeatureStatus
from qagen.records.features import ChordSegment


def feat(clip_id: str, **kw: object) -> ClipFeatures:
    return ClipFeatures(clip_id=clip_id, source="audiofolder", status=FeatureStatus.ok,
                        **kw)  # type: ignore[arg-type]


def test_partial_rows_score_only_what_they_know() -> None:
    beats = [0.5 * i for i in range(16)]
    chords = [ChordSegment(start_s=0.0, end_s=4.0, label="C:maj", spelled="C major"),
              ChordSegment(start_s=4.0, end_s=8.0, label="G:maj", spelled="G major")]
    truth = [
        {"clip_id": "full", "music": True, "tempo_bpm": 120.0, "key": "C major",
         "beats_per_bar": 4, "meter": "4/4", "beats": beats, "downbeats": beats[::4],
         "chords": [{"start_s": 0.0, "end_s": 4.0, "label": "C:maj"},
                    {"start_s": 4.0, "end_s": 8.0, "label": "G:maj"}]},
        {"clip_id": "trumpet", "music": True, "tempo_bpm": 90.0},  # a loop pack's "90 bpm"
        {"clip_id": "speech", "music": False},
        {"clip_id": "whale", "music": False},
        {"clip_id": "absent", "music": True, "tempo_bpm": 100.0},
    ]
    features = {
        "full": feat("full", is_music=True, tempo_bpm=121.0, tempo_tcn_bpm=60.5, key="C major",
                     key_madmom="A minor", meter=4, time_signature="4/4", beats=beats,
                     downbeats=beats[::4], chords=chords),
        "trumpet": feat("trumpet", is_music=True, tempo_bpm=45.0, tempo_tcn_bpm=61.0,
                        key="F major"),
        "speech": feat("speech", is_music=False, withheld_reason="not_music"),
        "whale": feat("whale", is_music=True, tempo_bpm=80.0, key="E minor"),
    }
    s = score_features(truth, features)
    assert (s.clips_scored, s.clips_missing) == (4, 1)
    assert s.scored == {"tempo": 2, "key": 1, "chords": 1, "beats": 1, "downbeats": 1,
                        "meter": 1, "time_signature": 1, "music": 4, "not_music": 2}
    assert s.tempo_acc1 == 0.5 and s.tempo_acc2 == 1.0  # 45 is half of 90
    assert s.tempo_acc1_tcn_only == 0.0 and s.tempo_acc2_tcn_only == 0.5
    assert s.key_weighted == 1.0 and s.key_weighted_cnn_only == pytest.approx(0.3)
    assert s.chords_majmin == 1.0 and s.meter_accuracy == 1.0
    assert s.time_signature_accuracy == 1.0
    assert s.music_accuracy == 0.75 and s.nonmusic_withheld == 0.5


def test_rows_without_a_music_column_are_music() -> None:
    s = score_features([{"clip_id": "a", "tempo_bpm": 100.0}],
                       {"a": feat("a", is_music=False, withheld_reason="not_music")})
    assert s.music_accuracy == 0.0 and s.tempo_acc1 == 0.0 and s.nonmusic_withheld is None
