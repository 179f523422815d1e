"""The quality gate on the junk that passed every filter before it (the issue's examples) and
on pairs a curator keeps."""

import pytest

from qagen.generate.gate import check_quality
from qagen.records.qa import GenerateReason, QAItem, QAKind, StatedFacts

CLIP_WORDS = ["electronic", "synthesizer", "bass", "drums", "cheerful", "uplifting",
              "A minor", "C major", "no vocals"]


def gate(question: str, answer: str, kind: QAKind = QAKind.description, *, claims: int = 0,
         facts: StatedFacts | None = None) -> GenerateReason | None:
    item = QAItem(question=question, answer=answer, kind=kind)
    found = check_quality(item, clip_words=CLIP_WORDS, claims=claims, facts=facts)
    return None if found is None else found.reason


@pytest.mark.parametrize(("question", "answer", "reason"), [
    ("Is this clip released in a specific country?",
     "It is produced and released in the United States.", GenerateReason.gate_off_topic),
    ("Describe the audio in detail", "The audio is described in detail.",
     GenerateReason.gate_non_answer),
    ("Describe the audio in detail", "2. Description of audio: Electronic instrumental music.",
     GenerateReason.gate_format),
    ("Describe the audio in detail", "Dosas de músura de la tradida.",
     GenerateReason.gate_language),
    ("What can be inferred from the audio",
     "How does this song make you feel? How does the song evoke joy?",
     GenerateReason.gate_non_answer),
    ("How can the timbre be controlled?",
     "thx to the use of very precise parameters such as bpm and tempo}",
     GenerateReason.gate_format),
    ("How can the timbre be controlled?", "By adjusting the settings of the sound carefully.",
     GenerateReason.gate_off_topic),
    ("What does this song evoke?", "It evokes a beautiful atmosphere and many emotions.",
     GenerateReason.gate_vague),
    ("Which instrument leads this track?", "A saxophone leads the melody throughout.",
     GenerateReason.gate_unsupported),  # a confident instrument nobody labelled
    ("What genre is this?", "It is a smooth jazz tune with electronic drums.",
     GenerateReason.gate_unsupported),
    ("How does this music feel?", "It feels dark and mysterious.",
     GenerateReason.gate_unsupported),  # the clip is cheerful
    ("Describe the harmony of this piece.", "It moves from A minor to a diminished chord.",
     GenerateReason.gate_unsupported),
    ("What do you hear in the audio", "I hear my favourite song with bass and drums.",
     GenerateReason.gate_off_topic),
    ("What does this song sound like?", "No matter where you go, music has always been a "
     "bridge across cultures with its drums.", GenerateReason.gate_off_topic),
    ("Describe the audio", "Electronic music with synthesizer and drums",
     GenerateReason.gate_format),  # not a finished sentence
    ("What is this music about?", "It tells the story of a lonely sailor at sea.",
     GenerateReason.gate_off_topic),
    ("What do you hear in the audio", '{"answer": "drums and bass"}', GenerateReason.gate_format),
    ("What do you hear in the audio", "drums drums and bass drums drums and bass drums drums and "
     "bass drums drums and bass", GenerateReason.gate_format),
])
def test_junk_is_caught_with_its_reason(question: str, answer: str,
                                        reason: GenerateReason) -> None:
    assert gate(question, answer) is reason


@pytest.mark.parametrize(("question", "answer", "kind", "claims"), [
    ("What instruments can be heard in this track?",
     "A bright synthesizer plays chords over a driving bass and drums.",
     QAKind.instrumentation, 0),
    ("What mood does this music convey?", "It feels cheerful and uplifting.", QAKind.mood, 0),
    ("What is the tempo of this song?", "It moves at about 128 BPM.", QAKind.tempo, 1),
    ("Which key is this music in: A minor, E minor or D minor?", "It is in A minor.",
     QAKind.key, 1),
    ("Describe the audio", "An upbeat electronic groove with synthesizer chords and no vocals.",
     QAKind.description, 0),
])
def test_good_pairs_pass(question: str, answer: str, kind: QAKind, claims: int) -> None:
    assert gate(question, answer, kind, claims=claims) is None


def test_pairs_with_stated_facts_skip_only_the_specificity_rule() -> None:
    facts = StatedFacts(duration_s=30.0)
    assert gate("How long does this musical excerpt last?", "The excerpt lasts about 30 seconds.",
                QAKind.duration, facts=facts) is None
    assert gate("How long does this musical excerpt last?", "1. About 30 seconds.",
                QAKind.duration, facts=facts) is GenerateReason.gate_format


def test_country_the_genre_is_not_a_country_of_origin() -> None:
    assert gate("Which genre fits this music best: electronic, country or metal?",
                "This is electronic music.", QAKind.genre, claims=0) is None
    assert gate("Is this a country song?", "No, it is an electronic piece.", QAKind.genre) is None
    assert gate("Which country is this track from?", "It comes from Brazil, with electronic "
                "drums.", QAKind.genre) is GenerateReason.gate_off_topic
