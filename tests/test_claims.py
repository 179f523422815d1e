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


def test_meters_in_digits_are_read() -> None:
    """"4 beats per bar" states a meter as much as "four beats per bar" (a trained adapter
    wrote it; the scorer missed it); "12 beats" and "13 beats" are not 2 or 3."""
    assert stated_meters("It counts at roughly 4 beats per bar.") == [4]
    assert stated_meters("There are 3 beats to the bar.") == [3]
    assert stated_meters("It is not 3 beats per bar; it has 2 beats in each measure.") == [4]
    assert stated_meters("It has 12 beats per bar, or 13 beats per bar.") == []


def test_vocabularies_find_instruments_and_genres() -> None:
    text = "A jazz trio: piano, upright bass and brushed drums."
    assert {m.lower() for m in INSTRUMENT_WORDS.findall(text)} == {"piano", "bass", "drums"}
    assert GENRE_WORDS.findall(text) == ["jazz"]
