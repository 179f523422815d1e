"""The facts family: slots, hedges, distractors, spelling, determinism, verification."""

from pathlib import Path

import pytest

from qagen.errors import ConfigError
from qagen.generate.facts import (
    instruments,
    key_distractors,
    load_phrasebook,
    render_fact_pairs,
    roman_numeral,
    spell_in_key,
    verify_facts,
    vocals,
)
from qagen.generate.prompts import default_prompts_dir
from qagen.records import Clip, ClipFeatures, FeatureStatus
from qagen.records.features import ChordSegment, TempoAgreement
from qagen.records.qa import QAKind, QuestionForm, StatedFacts

BOOK = load_phrasebook()


def clip(**kw: object) -> Clip:
    base = dict(clip_id=Clip.make_id("mtt", "7", 0.0, None), source="mtt", source_id="7",
                audio_path="a/b.mp3", start_s=0.0, tags=["guitar", "folk", "no vocals"],
                genres=["folk"], instruments=["acoustic guitar"], moods=["calm"],
                vocals=["none"])
    return Clip(**{**base, **kw})  # type: ignore[arg-type]


def chords(labels: list[str], *, bar_s: float = 2.0) -> list[ChordSegment]:
    return [ChordSegment(start_s=i * bar_s, end_s=(i + 1) * bar_s, label=lab, spelled=lab)
            for i, lab in enumerate(labels)]


def features(**kw: object) -> ClipFeatures:
    base = dict(clip_id=clip().clip_id, source="mtt", status=FeatureStatus.ok, duration_s=16.0,
                loudness_lufs=-18.2, tempo_bpm=120.0, tempo_confidence=0.95,
                tempo_tcn_bpm=120.0, tempo_beats_bpm=119.0, tempo_librosa_bpm=121.0,
                tempo_agreement=TempoAgreement.agree, meter=4, meter_confidence=0.9,
                downbeats=[2.0 * i for i in range(9)], key="A minor", key_confidence=0.9,
                chords=chords(["A:min", "D:min", "E:maj", "A:min"] * 2))
    return ClipFeatures(**{**base, **kw})  # type: ignore[arg-type]


def by_topic(pairs: list) -> dict:
    return {p.topic: p for p in pairs}


def test_every_topic_renders_with_its_stated_facts() -> None:
    pairs = by_topic(render_fact_pairs(clip(), features(), book=BOOK))
    assert pairs["tempo_open"].facts == StatedFacts(tempo_bpm=120.0)
    assert "120" in pairs["tempo_open"].answer
    assert pairs["meter_open"].facts.meter == 4 and "4/4" in pairs["meter_open"].answer
    assert pairs["key_open"].answer.rstrip(".").endswith("A minor")
    assert pairs["chords_progression"].facts.chords == ["A:min", "D:min", "E:maj"]
    assert "A minor – D minor – E major – A minor" in pairs["chords_progression"].answer
    assert "i – iv – V – i" in pairs["chords_roman"].answer
    assert pairs["vocals"].answer.startswith("No") and pairs["vocals"].facts.vocals is False
    assert pairs["instruments_open"].facts.instruments == ["acoustic guitar"]
    assert {p.form for p in pairs.values()} == set(QuestionForm)
    assert pairs["key_choice"].form is QuestionForm.multiple_choice
    assert "description" not in pairs  # no caption on this clip


def test_compound_meter_is_stated_as_6_8_and_passes_grounding() -> None:
    from qagen.generate.grounding import check_meter

    f = features(meter=2, time_signature="6/8", tempo_bpm=60.0)
    pairs = by_topic(render_fact_pairs(clip(), f, book=BOOK))
    meter = pairs["meter_open"]
    assert "6/8" in meter.answer and "2/4" not in meter.answer and meter.facts.meter == 2
    assert "meter_choice" not in pairs  # "3/4 or 4/4?" has no right answer for 6/8
    assert check_meter(meter.answer, features=f) is None


def test_rebuild_is_identical_and_the_seed_varies_the_wording() -> None:
    first = render_fact_pairs(clip(), features(), book=BOOK, seed=0)
    assert first == render_fact_pairs(clip(), features(), book=BOOK, seed=0)
    others = [render_fact_pairs(clip(), features(), book=BOOK, seed=s) for s in range(1, 6)]
    assert any([p.question for p in o] != [p.question for p in first] for o in others)


def test_tempo_is_hedged_on_octave_ambiguity_and_disagreement() -> None:
    octave = features(tempo_bpm=90.0, tempo_tcn_bpm=90.0, tempo_beats_bpm=181.0,
                      tempo_agreement=TempoAgreement.octave)
    pairs = by_topic(render_fact_pairs(clip(), octave, book=BOOK))
    assert "90" in pairs["tempo_open"].answer and "181" in pairs["tempo_open"].answer
    assert "double time" in pairs["tempo_open"].answer
    assert pairs["tempo_open"].facts == StatedFacts(tempo_bpm=90.0, tempo_alt_bpm=181.0)
    # Half/double time would make a yes/no or multiple-choice answer wrong.
    assert not {"tempo_yes_no", "tempo_choice"} & set(pairs)
    unsure = features(tempo_agreement=TempoAgreement.disagree, tempo_confidence=0.3)
    pairs = by_topic(render_fact_pairs(clip(), unsure, book=BOOK))
    assert any(w in pairs["tempo_open"].answer for w in ("probably", "seems"))
    assert "tempo_choice" not in pairs


def test_an_unsure_key_names_its_relative_and_gets_no_closed_question() -> None:
    pairs = by_topic(render_fact_pairs(clip(), features(key_confidence=0.4), book=BOOK))
    assert "C major" in pairs["key_open"].answer and pairs["key_open"].facts.key_alt == "C major"
    assert not {"key_choice", "key_mode", "chords_roman"} & set(pairs)


def test_distractors_are_wrong_but_plausible() -> None:
    assert key_distractors("A minor") == ["E minor", "D minor", "A major"]
    assert "C major" not in key_distractors("A minor")  # the relative is never offered
    pairs = by_topic(render_fact_pairs(clip(), features(), book=BOOK))
    q = pairs["tempo_choice"].question
    assert "96 BPM" in q and "144 BPM" in q and "120 BPM" in q
    genre_q = pairs["genre_choice"].question
    assert "folk" in genre_q and "country" not in genre_q  # no relative of the label


def test_spelling_follows_the_key() -> None:
    assert spell_in_key(11, key="Gb major") == "Cb"  # IV of Gb major
    assert spell_in_key(8, key="A minor") == "G#"  # raised leading tone
    assert spell_in_key(1, key="C major") is None  # chromatic
    assert roman_numeral("E:maj", key="A minor") == "V"
    assert roman_numeral("D:min", key="C major") == "ii"
    assert roman_numeral("C#:maj", key="C major") is None


def test_labels_are_read_per_source() -> None:
    musicnet = clip(instruments=["String Ensemble 1", "Piano"], tags=[], genres=["classical"],
                    vocals=[])
    assert instruments(musicnet) == ["string ensemble", "piano"]
    caps = clip(instruments=[], tags=[], genres=[], moods=[], vocals=[],
                aspects=["pop", "female vocal", "electric guitar", "upbeat", "no drums"])
    assert instruments(caps) == ["electric guitar"] and vocals(caps) is True
    contradicted = clip(tags=["no vocals", "singing"], vocals=[])
    assert vocals(contradicted) is None
    assert "vocals" not in by_topic(render_fact_pairs(contradicted, features(), book=BOOK))


def test_unmeasured_clips_still_get_label_pairs() -> None:
    failed = features(status=FeatureStatus.decode_error)
    pairs = by_topic(render_fact_pairs(clip(), failed, book=BOOK))
    assert pairs and all(p.kind in (QAKind.instrumentation, QAKind.genre, QAKind.mood)
                         for p in pairs.values())


def test_verify_facts_rechecks_every_fact() -> None:
    c, f = clip(), features()
    for pair in render_fact_pairs(c, f, book=BOOK):
        assert verify_facts(pair.facts, clip=c, features=f), pair.topic
    assert not verify_facts(StatedFacts(tempo_bpm=100.0), clip=c, features=f)
    assert not verify_facts(StatedFacts(key="C major"), clip=c, features=f)
    assert not verify_facts(StatedFacts(chords=["F#:maj"]), clip=c, features=f)
    assert not verify_facts(StatedFacts(instruments=["trumpet"]), clip=c, features=f)
    assert not verify_facts(StatedFacts(), clip=c, features=f)
    assert verify_facts(StatedFacts(key="A minor"), clip=c, features=f)


def test_a_bad_phrasebook_is_refused_with_the_slot_named(tmp_path: Path) -> None:
    text = (default_prompts_dir() / "facts.yaml").read_text().replace(
        "The tempo is about {bpm} BPM.", "The tempo is about {bmp} BPM.")
    (tmp_path / "facts.yaml").write_text(text)
    with pytest.raises(ConfigError, match="bmp"):
        load_phrasebook(tmp_path / "facts.yaml")

