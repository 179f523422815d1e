"""Grounding: hand-made good and bad answers for every rule, asserting the exact reason code."""

from __future__ import annotations

from typing import Any

import pytest

from qagen.augment.chords import spell_chord
from qagen.generate.grounding import (
    Finding,
    accepted_tempi,
    check_chords,
    check_key,
    check_labels,
    check_meter,
    check_tempo,
    ground_pair,
    vocals_absent,
)
from qagen.records.clip import Clip
from qagen.records.features import ChordSegment, ClipFeatures, FeatureStatus, TempoAgreement
from qagen.records.qa import GenerateReason, QAItem, QAKind

R = GenerateReason
CLIP_ID = Clip.make_id("mtt", "42", 0.0, 29.1)


def make_clip(**kw: Any) -> Clip:
    base: dict[str, Any] = dict(clip_id=CLIP_ID, source="mtt", source_id="42",
                                audio_path="f/a.mp3", start_s=0.0, end_s=29.1)
    base.update(kw)
    return Clip(**base)


def make_chords(labels: list[str], *, key: str | None) -> list[ChordSegment]:
    return [ChordSegment(start_s=2.0 * i, end_s=2.0 * i + 2.0, label=lab,
                         spelled=spell_chord(lab, key=key)) for i, lab in enumerate(labels)]


def make_features(**kw: Any) -> ClipFeatures:
    """120 BPM (estimators agree), 4/4, D minor, chords Dm–A–Gm–Dm: all confident."""
    key = kw.get("key", "D minor")
    base: dict[str, Any] = dict(
        clip_id=CLIP_ID, source="mtt", status=FeatureStatus.ok,
        tempo_bpm=120.0, tempo_confidence=0.9, tempo_agreement=TempoAgreement.agree,
        tempo_tcn_bpm=120.0, tempo_beats_bpm=119.0, tempo_librosa_bpm=123.0,
        meter=4, meter_confidence=0.9, key=key, key_confidence=0.9,
        chords=make_chords(["D:min", "A:maj", "G:min", "D:min"], key=key),
    )
    base.update(kw)
    return ClipFeatures(**base)


def reason(finding: Finding | None) -> GenerateReason | None:
    return None if finding is None else finding.reason


# --------------------------------------------------------------------------- tempo

@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("It moves at about 122 BPM.", None),
        ("The tempo of 118 suits a relaxed dance.", None),
        ("It sits at roughly 115-125 beats per minute.", None),
        ("A groove well over 100 BPM keeps it moving.", None),
        ("It is not 60 BPM but about 120 BPM.", None),
        ("A fast tempo and bright horns.", None),  # 120 is not slow enough to contradict
        ("The drums enter at 30 seconds and the tempo in the 80s style is steady.", None),
        ("It has an upbeat, lively feel.", None),  # words without numbers are not checked
        ("around 60 BPM, a slow ballad feel", R.grounding_tempo),
        ("The tempo is 90.", R.grounding_tempo),
        ("about 140 beats per minute", R.grounding_tempo),
        ("It stays under 90 BPM throughout.", R.grounding_tempo),
        ("It moves at 120 BPM, then settles around 150 BPM.", R.grounding_tempo),
    ],
)
def test_stated_bpm_must_match_the_measured_tempo(answer: str, expected: R | None) -> None:
    assert reason(check_tempo(answer, features=make_features())) == expected


@pytest.mark.parametrize(
    ("answer", "agreement", "confidence", "expected"),
    [
        ("around 60 BPM", TempoAgreement.octave, 0.9, None),
        ("around 240 BPM", TempoAgreement.octave, 0.9, None),
        ("around 60 BPM", TempoAgreement.disagree, 0.9, None),
        ("around 60 BPM", TempoAgreement.agree, 0.3, None),  # low confidence
        ("around 90 BPM", TempoAgreement.octave, 0.9, R.grounding_tempo),
        ("around 60 BPM", TempoAgreement.majority, 0.9, R.grounding_tempo),
        ("around 60 BPM", TempoAgreement.single, 0.9, R.grounding_tempo),
    ],
)
def test_half_and_double_tempo_pass_only_when_ambiguous(
    answer: str, agreement: TempoAgreement, confidence: float, expected: R | None
) -> None:
    features = make_features(tempo_agreement=agreement, tempo_confidence=confidence)
    assert reason(check_tempo(answer, features=features)) == expected


def test_triple_meter_octave_accepts_a_third_and_estimator_values() -> None:
    features = make_features(tempo_bpm=180.0, meter=3, tempo_agreement=TempoAgreement.octave,
                             tempo_tcn_bpm=180.0, tempo_beats_bpm=60.0, tempo_librosa_bpm=135.0)
    assert set(accepted_tempi(features)) == {60.0, 90.0, 135.0, 180.0}
    assert check_tempo("about 60 BPM", features=features) is None
    assert check_tempo("about 135 BPM", features=features) is None
    # 360 BPM is double the measured tempo but outside the plausible band.
    assert reason(check_tempo("about 360 BPM", features=features)) == R.grounding_tempo


@pytest.mark.parametrize(
    ("answer", "tempo", "agreement", "expected"),
    [
        ("The song is very fast.", 62.0, TempoAgreement.agree, R.grounding_tempo),
        ("It has a fast tempo.", 62.0, TempoAgreement.agree, R.grounding_tempo),
        ("The tempo is quite slow and dreamy.", 150.0, TempoAgreement.agree, R.grounding_tempo),
        ("The song is very fast.", 62.0, TempoAgreement.octave, None),  # could be 124
        ("It has a fast tempo.", 100.0, TempoAgreement.agree, None),
        ("It is not a fast tempo at all.", 62.0, TempoAgreement.agree, None),
        ("A slow build of pads.", 150.0, TempoAgreement.agree, None),  # not about tempo
        ("Fast guitar runs over a relaxed groove.", 62.0, TempoAgreement.agree, None),
    ],
)
def test_fast_and_slow_words_only_when_clearly_wrong(
    answer: str, tempo: float, agreement: TempoAgreement, expected: R | None
) -> None:
    features = make_features(tempo_bpm=tempo, tempo_agreement=agreement)
    assert reason(check_tempo(answer, features=features)) == expected


@pytest.mark.parametrize(
    "features",
    [None, make_features(status=FeatureStatus.silent, tempo_bpm=None),
     make_features(tempo_bpm=None)],
)
def test_tempo_claims_without_a_measured_tempo_are_rejected(features: ClipFeatures | None) -> None:
    finding = check_tempo("It runs at 120 BPM.", features=features)
    assert reason(finding) == R.grounding_tempo
    assert finding is not None and "no measured tempo" in finding.detail
    assert check_tempo("A brisk, lively groove.", features=features) is None


# --------------------------------------------------------------------------- key

@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("The song is in D minor.", None),
        ("It is written in the key of D minor, which gives it a sombre colour.", None),
        ("A brooding D minor tonality.", None),
        ("The song is in Dm throughout.", None),
        ("It is not in C major but in D minor.", None),
        ("A major influence is the blues.", None),  # sentence-initial article, not a note
        ("It is in a minor key.", None),
        ("The key of D gives it weight.", None),  # tonic only, matches
        ("The song is in F major.", R.grounding_key),  # relative, confident measurement
        ("The song is in D major.", R.grounding_key),  # parallel
        ("It is in the key of A minor.", R.grounding_key),
        ("It is possibly in F major.", R.grounding_key),  # hedged, but the key is confident
        ("The key of F gives it warmth.", R.grounding_key),
        ("It is written in a major key.", R.grounding_key),
    ],
)
def test_stated_key_must_equal_the_measured_key(answer: str, expected: R | None) -> None:
    assert reason(check_key(answer, features=make_features())) == expected


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("It is possibly F major or its relative D minor.", None),
        ("The harmony suggests F major.", None),
        ("It is likely in a major key.", None),
        ("The song is in F major.", R.grounding_key),  # relative without a hedge
        ("It is possibly in D major.", R.grounding_key),  # parallel is never excused
        ("It is possibly in G minor.", R.grounding_key),
    ],
)
def test_hedged_relative_key_passes_only_when_unsure(answer: str, expected: R | None) -> None:
    features = make_features(key_confidence=0.4)
    assert reason(check_key(answer, features=features, kind=QAKind.key)) == expected


@pytest.mark.parametrize(
    ("measured", "answer"),
    [
        ("C# minor", "It is in Db minor."),
        ("C# minor", "It is in D-flat minor."),
        ("C# minor", "It is in C sharp minor."),
        ("C# minor", "It is in C♯ minor."),
        ("Eb major", "The key is E-flat major."),
        ("Eb major", "The key is D# major."),
        ("Eb major", "The key is E♭ major."),
        ("Bb major", "It is in the key of Bb major."),
        ("F# minor", "Its key: Gb minor."),
    ],
)
def test_enharmonic_keys_are_equal(measured: str, answer: str) -> None:
    assert check_key(answer, features=make_features(key=measured)) is None


def test_bare_key_names_are_checked_in_key_answers_only() -> None:
    features = make_features()
    assert reason(check_key("F# minor.", features=features, kind=QAKind.key)) == R.grounding_key
    assert check_key("F# minor.", features=features, kind=QAKind.description) is None


@pytest.mark.parametrize(
    "features", [None, make_features(key=None), make_features(status=FeatureStatus.too_short)])
def test_key_claims_without_a_measured_key_are_rejected(features: ClipFeatures | None) -> None:
    finding = check_key("The song is in D minor.", features=features)
    assert reason(finding) == R.grounding_key
    assert finding is not None and "no measured key" in finding.detail


# --------------------------------------------------------------------------- meter

@pytest.mark.parametrize(
    ("answer", "meter", "expected"),
    [
        ("The groove is in 4/4.", 4, None),
        ("It is in common time.", 4, None),
        ("There are four beats per bar.", 4, None),
        ("A four-on-the-floor kick.", 4, None),
        ("It is not in 3/4 but in 4/4.", 4, None),
        ("About 3/4 of the way through, the strings enter.", 4, None),  # a fraction
        ("A lilting 6/8 feel.", 4, None),  # compound metre: not checked
        ("It is in 3/4.", 4, R.grounding_meter),
        ("It has a waltz time feel.", 4, R.grounding_meter),
        ("It is in triple meter.", 4, R.grounding_meter),
        ("It is in an unusual 5/4.", 4, R.grounding_meter),
        ("It has a waltz time feel.", 3, None),
        ("There are three beats per measure.", 3, None),
        ("The groove is in 4/4.", 3, R.grounding_meter),
        ("It is in common time.", 3, R.grounding_meter),
    ],
)
def test_stated_meter_must_match(answer: str, meter: int, expected: R | None) -> None:
    assert reason(check_meter(answer, features=make_features(meter=meter))) == expected


def test_hedged_meter_passes_when_the_meter_is_unsure() -> None:
    unsure = make_features(meter=4, meter_confidence=0.3)
    assert check_meter("It may be in 3/4.", features=unsure) is None
    assert reason(check_meter("It is in 3/4.", features=unsure)) == R.grounding_meter
    assert reason(check_meter("It may be in 3/4.", features=make_features())) == R.grounding_meter


def test_meter_claims_without_a_measured_meter_are_rejected() -> None:
    finding = check_meter("A steady 4/4 pulse.", features=make_features(meter=None))
    assert reason(finding) == R.grounding_meter
    assert finding is not None and "no measured meter" in finding.detail
    assert reason(check_meter("A steady 4/4 pulse.", features=None)) == R.grounding_meter


# --------------------------------------------------------------------------- chords

A_MINOR_CHORDS = make_features(key="A minor",
                               chords=make_chords(["A:min", "D:min", "E:maj", "A:min"],
                                                  key="A minor"))


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("An E major chord leads back to A minor.", None),
        ("The chords are Am, Dm and E.", None),
        ("It alternates between A minor and D minor chords.", None),
        ("An E7 chord resolves to Am.", None),  # sevenths count as their triad
        ("The progression Am - Dm - E repeats.", None),
        ("The chord progression: A minor, D minor, E major.", None),
        ("It is in A minor and never touches a G major chord.", None),  # negated
        ("A G major chord appears halfway.", R.grounding_chords),
        ("The chords are C, F and G.", R.grounding_chords),
        ("A C major chord opens the clip.", R.grounding_chords),
        ("The progression Am - G - F repeats.", R.grounding_chords),
        ("An E minor chord darkens the cadence.", R.grounding_chords),  # wrong quality
        ("A lush Bbmaj7 colours the bridge.", R.grounding_chords),
        ("It cycles through an Am–F–C–G progression.", R.grounding_chords),
    ],
)
def test_stated_chords_must_be_among_the_measured_ones(answer: str, expected: R | None) -> None:
    assert reason(check_chords(answer, features=A_MINOR_CHORDS)) == expected


def test_key_statements_are_not_chord_statements() -> None:
    # "in D minor" is a key; D minor is not among these chords but the key matches.
    features = make_features(key="D minor", chords=make_chords(["A:maj", "G:min"],
                                                                key="D minor"))
    answer = "The song is in D minor, with an A major chord pulling back home."
    assert check_chords(answer, features=features) is None
    assert check_key(answer, features=features) is None
    # And a chord statement is not a key statement: the key check ignores it.
    assert check_key("An E major chord leads back to A minor.", features=features) is None


def test_chords_compare_by_pitch_class() -> None:
    features = make_features(key="F major", chords=make_chords(["A#:maj", "F:maj"], key="F major"))
    assert check_chords("A Bb major chord moves to F.", features=features) is None
    assert check_chords("An A# major chord moves to an F major chord.", features=features) is None
    assert check_chords("The chords are Bb and F.", features=features) is None


@pytest.mark.parametrize(
    "features",
    [None, make_features(chords=[]), make_features(chords=make_chords(["N"], key=None))])
def test_chord_claims_without_measured_chords_are_rejected(features: ClipFeatures | None) -> None:
    assert reason(check_chords("A G major chord appears.", features=features)) == (
        R.grounding_chords)


# --------------------------------------------------------------------------- labels

NO_VOCALS = make_clip(vocals=["none"])


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("There are no vocals; a piano carries the tune.", None),
        ("An instrumental piece without vocals.", None),
        ("The vocals are absent, leaving room for the strings.", None),
        ("A vocal-like synth lead soars above.", None),
        ("A saxophone solo over brushed drums.", None),  # not listed is not absent
        ("A female singer carries the melody.", R.grounding_labels),
        ("She is singing softly over the guitar.", R.grounding_labels),
        ("The lead vocals are breathy and close.", R.grounding_labels),
        ("A choir swells in the background.", R.grounding_labels),
        ("The lyrics are about loss.", R.grounding_labels),
    ],
)
def test_vocals_contradicting_the_labels(answer: str, expected: R | None) -> None:
    assert reason(check_labels(answer, clip=NO_VOCALS)) == expected


@pytest.mark.parametrize(
    ("clip", "absent"),
    [
        (make_clip(vocals=["none"]), True),
        (make_clip(tags=["guitar", "no vocals"]), True),
        (make_clip(aspects=["instrumental", "calm piano"]), True),
        (make_clip(vocals=["female", "none"]), False),  # contradictory crowd tags
        (make_clip(tags=["no vocals", "singing"]), False),
        (make_clip(aspects=["instrumental", "male vocals"]), False),
        (make_clip(), False),  # unlabelled is not absent
    ],
)
def test_vocals_absent_needs_uncontradicted_labels(clip: Clip, absent: bool) -> None:
    assert vocals_absent(clip) is absent
    expected = R.grounding_labels if absent else None
    assert reason(check_labels("A male singer croons.", clip=clip)) == expected


@pytest.mark.parametrize(
    ("answer", "instruments", "expected"),
    [
        ("The drums are loud and punchy.", [], R.grounding_labels),
        ("A drum machine ticks along.", [], R.grounding_labels),
        ("A gentle piano melody.", [], R.grounding_labels),
        ("No drums here, just a guitar.", [], None),
        ("A bright trumpet line.", [], None),
        ("A gentle piano melody.", ["piano"], None),  # labels contradict each other
    ],
)
def test_absent_instruments(answer: str, instruments: list[str], expected: R | None) -> None:
    clip = make_clip(instruments=instruments, absent_instruments=["drums", "piano"])
    assert reason(check_labels(answer, clip=clip)) == expected


@pytest.mark.parametrize(
    ("genres", "labels", "answer", "expected"),
    [
        (["Hip-Hop"], {}, "This is a classical piece for strings.", R.grounding_labels),
        (["Hip-Hop"], {}, "A hip hop beat with classical influences.", None),
        (["Hip-Hop"], {}, "The classical guitar loops over a boom-bap beat.", None),
        (["Hip-Hop"], {}, "It is not classical at all.", None),
        (["Hip-Hop"], {}, "A jazzy track with dusty drums.", None),
        (["Classical"], {}, "A heavy metal song with growled vocals.", R.grounding_labels),
        (["Classical"], {}, "A classical piece for solo piano.", None),
        (["Rock"], {}, "This is a classical piece.", None),  # rock is not exclusive
        (["Electronic"], {}, "This is a classical piece.", None),  # too broad a label
        ([], {"not_genres": ["classical"]}, "This is a classical piece.", R.grounding_labels),
        ([], {}, "This is a classical piece.", None),
    ],
)
def test_genre_contradictions_only_when_unambiguous(
    genres: list[str], labels: dict[str, list[str]], answer: str, expected: R | None
) -> None:
    clip = make_clip(genres=genres, **labels)
    assert reason(check_labels(answer, clip=clip)) == expected


# --------------------------------------------------------------------------- ground_pair

def qa(answer: str, kind: QAKind = QAKind.description) -> QAItem:
    return QAItem(question="What do you hear in this clip?", answer=answer, kind=kind)


def test_ground_pair_passes_a_faithful_answer() -> None:
    answer = ("A brooding piece in D minor at about 120 BPM in 4/4: a D minor chord moves to "
              "A major and G minor over steady drums, with no vocals.")
    assert ground_pair(qa(answer), clip=NO_VOCALS, features=make_features()) is None


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("It runs at 60 BPM in F major.", R.grounding_tempo),  # tempo is checked first
        ("It is in F major, in 3/4.", R.grounding_key),
        ("It is in 3/4 with a C major chord.", R.grounding_meter),
        ("A C major chord and a female singer.", R.grounding_chords),
        ("A female singer over soft pads.", R.grounding_labels),
    ],
)
def test_ground_pair_returns_the_first_failure(answer: str, expected: R) -> None:
    finding = ground_pair(qa(answer), clip=NO_VOCALS, features=make_features())
    assert reason(finding) == expected
    assert finding is not None and finding.detail


def test_ground_pair_without_features_rejects_only_measured_claims() -> None:
    assert ground_pair(qa("A calm, airy texture of pads."), clip=make_clip(), features=None) is None
    finding = ground_pair(qa("The song is in D minor."), clip=make_clip(), features=None)
    assert reason(finding) == R.grounding_key


def test_findings_are_frozen() -> None:
    finding = Finding(R.grounding_key, "x")
    with pytest.raises(AttributeError):
        finding.detail = "y"  # type: ignore[misc]
