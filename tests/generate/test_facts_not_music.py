"""A clip augment judged not music (speech, whale song) gets no musical questions."""

from qagen.augment.extract import NOT_MUSIC
from qagen.generate.facts import load_phrasebook, render_fact_pairs
from qagen.records import Clip, ClipFeatures, FeatureStatus


def test_not_music_features_ask_nothing_musical() -> None:
    clip = Clip(clip_id=Clip.make_id("audiofolder", "speech.ogg", 0.0, None),
                source="audiofolder", source_id="speech.ogg", audio_path="speech.ogg",
                start_s=0.0)
    # What augment writes for LibriSpeech: the trail keeps the CNN's "G# minor" and the
    # estimators' tempi, the answers are withheld.
    features = ClipFeatures(
        clip_id=clip.clip_id, source="audiofolder", status=FeatureStatus.ok, duration_s=14.8,
        loudness_lufs=-21.0, is_music=False, music_confidence=0.94,
        music_evidence={"pitch_grid": 0.12, "pulse": 0.3}, withheld_reason=NOT_MUSIC,
        tempo_tcn_bpm=81.0, tempo_beats_bpm=80.0, tempo_librosa_bpm=83.0,
        key_madmom="G# minor")
    pairs = render_fact_pairs(clip, features, book=load_phrasebook())
    topics = {p.topic for p in pairs}
    musical = {t for t in topics if t.split("_")[0] in ("tempo", "meter", "key", "chords",
                                                        "harmonic")}
    assert not musical, topics
    for p in pairs:
        assert p.facts.key is None and p.facts.tempo_bpm is None and p.facts.meter is None
