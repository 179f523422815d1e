"""MIR accuracy read out of answers, against the facts each reference states."""

import numpy as np

from qagen.train.data import Example, QAPairRow
from qagen.train.evaluate import with_other_clips_audio
from qagen.train.mir import score_mir


def test_each_fact_is_scored_on_its_own_kind() -> None:
    answers = ["It is in A minor.", "It is in E minor.", "It is in C major.",
               "The tempo is about 121 BPM.", "About 60 BPM.", "It moves at 90 BPM.",
               "It is in 3/4 time.", "You can hear piano and drums.", "It is jazz music."]
    facts = [{"key": "A minor"}, {"key": "A minor"}, {"key": "A minor"},
             {"tempo_bpm": 120.0}, {"tempo_bpm": 120.0}, {"tempo_bpm": 120.0},
             {"meter": 4}, {"instruments": ["piano", "bass"]}, {"genres": ["rock"]}]
    kinds = ["key", "key", "key", "tempo", "tempo", "tempo", "rhythm", "instrumentation",
             "genre"]
    m = score_mir(answers, facts, kinds)
    assert m["mir_key_n"] == 3 and m["mir_key_acc"] == round(1 / 3, 4)
    # MIREX weights: exact 1, E minor a fifth above 0.5, C major the relative 0.3.
    assert m["mir_key_weighted"] == round((1 + 0.5 + 0.3) / 3, 4)
    assert m["mir_tempo_acc1"] == round(1 / 3, 4) and m["mir_tempo_acc2"] == round(2 / 3, 4)
    assert m["mir_meter_acc"] == 0.0
    assert m["mir_instruments_f1"] == 0.5 and m["mir_genre_f1"] == 0.0


def test_loose_tempo_forgives_8_percent_and_octaves_not_more() -> None:
    answers = ["About 111 BPM.", "About 129 BPM.", "About 64 BPM.", "About 105 BPM.",
               "About 132 BPM."]
    m = score_mir(answers, [{"tempo_bpm": 120.0}] * 5, ["tempo"] * 5)
    # 111 and 129 are 7.5 % off, 64 is half of 128 (6.7 % off); 105 and 132 are 12.5 % and
    # 10 % off: within 8 % only the first three, and none within 4 %.
    assert m["mir_tempo_octave8"] == 0.6 and m["mir_tempo_acc1"] == 0.0


def test_hedged_references_and_other_kinds_are_not_scored() -> None:
    m = score_mir(["It is in A minor.", "It is in A minor."],
                  [{"key": "A minor", "key_alt": "C major"}, {"key": "A minor"}],
                  ["key", "harmony"])
    assert m["mir_key_acc"] is None and m["mir_key_n"] == 0
    assert score_mir([], [], [])["mir_tempo_acc1"] is None


def test_yes_no_pairs_are_scored_on_their_yes_or_no_not_on_the_fact() -> None:
    # "Is this music in a major key?" for D minor: "No, it is in a minor key." is right though
    # it names no key, and must not count against key accuracy.
    answers = ["No, it is in a minor key.", "Yes, it is.", "It is in D minor.",
               "The key is D minor."]
    refs = ["No, the key is D minor, which is minor.", "No, the key is D minor.",
            "Yes, the key is D minor.", "The key is D minor."]
    forms = ["yes_no", "yes_no", "yes_no", "open"]
    m = score_mir(answers, [{"key": "D minor"}] * 4, ["key"] * 4, forms=forms,
                  references=refs)
    assert m["mir_yes_no_n"] == 3 and m["mir_yes_no_acc"] == round(1 / 3, 4)
    assert m["mir_key_n"] == 1 and m["mir_key_acc"] == 1.0


def _example(clip: str, value: float) -> Example:
    pair = QAPairRow(qa_id=f"q{clip}", clip_id=clip, split="test", question="q", answer="a",
                     kind="key")
    return Example(pair=pair, prompt_ids=[1], answer_ids=[2],
                   features=np.full((2, 3), value, dtype=np.float32))


def test_shuffled_audio_gives_every_pair_another_clips_audio() -> None:
    examples = [_example("a", 1), _example("a", 1), _example("b", 2), _example("c", 3)]
    swapped = with_other_clips_audio(examples)
    assert swapped is not None
    own = {"a": 1, "b": 2, "c": 3}
    for e in swapped:
        assert float(e.features[0, 0]) != own[e.pair.clip_id]
    assert [e.pair for e in swapped] == [e.pair for e in examples]
    assert with_other_clips_audio([_example("a", 1)]) is None
