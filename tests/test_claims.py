"""What an answer states: the readers shared by grounding and the trained model's evaluation."""

from qagen.claims import (
    GENRE_WORDS,
    INSTRUMENT_WORDS,
    stated_chords,
    stated_keys,
    stated_meters,
    stated_tempi,
)
from qagen.music import parse_key
from qagen.records.qa import QAKind


def test_stated_facts_are_read_in_order_and_negations_skipped() -> None:
    answer = ("It is not 60 BPM; the tempo is about 121 BPM, somewhere in the 118-124 BPM range. "
              "The piece is in A minor, in 3/4, over Am, F and G chords.")
    assert stated_tempi(answer) == [121.0]
    assert stated_keys(answer) == [parse_key("A minor")]
    assert stated_meters(answer) == [3]
    assert set(stated_chords(answer, kind=QAKind.harmony)) == {(9, "min"), (5, "maj"), (7, "maj")}


def test_vocabularies_find_instruments_and_genres() -> None:
    text = "A jazz trio: piano, upright bass and brushed drums."
    assert {m.lower() for m in INSTRUMENT_WORDS.findall(text)} == {"piano", "bass", "drums"}
    assert GENRE_WORDS.findall(text) == ["jazz"]
