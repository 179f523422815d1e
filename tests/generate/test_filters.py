"""Leak, junk and near-duplicate filters: good and bad pairs, asserting the exact reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from qagen.generate.filters import (
    check_junk,
    check_leak,
    load_banned_phrases,
    near_duplicate_indices,
    question_similarity,
)
from qagen.generate.grounding import Finding
from qagen.records.clip import Clip
from qagen.records.qa import GenerateReason, QAItem, QAKind

R = GenerateReason
CLIP = Clip(clip_id=Clip.make_id("mtt", "7", 0.0, 29.1), source="mtt", source_id="7",
            audio_path="0/jacob_heringman-black_cow-01-intro-0-29.mp3", start_s=0.0, end_s=29.1,
            artist="Jacob Heringman", title="Intro", album="Black Cow")
BANNED = load_banned_phrases()


def qa(question: str, answer: str, kind: QAKind = QAKind.description) -> QAItem:
    return QAItem(question=question, answer=answer, kind=kind)


def reason(finding: Finding | None) -> GenerateReason | None:
    return None if finding is None else finding.reason


# --------------------------------------------------------------------------- leak

@pytest.mark.parametrize(
    ("question", "answer", "expected"),
    [
        ("What tags describe this clip?", "Rock, guitar and fast drums.", R.leak),
        ("Which instruments are playing?", "The file contains a lute and a voice.", R.leak),
        ("What is the filename of this clip?", "It is a recording of a lute.", R.leak),
        ("Which instruments are playing?", "As heard in clip_01.mp3, a lute.", R.leak),
        ("What does the music sound like?", "The caption mentions a calm lute.", R.leak),
        ("How is the mood?", "According to the description, it is melancholic.", R.leak),
        ("How is the mood?", "The information provided suggests sadness.", R.leak),
        ("What genre is it?", "The dataset labels it as early music.", R.leak),
        ("What genre is it?", "Annotators called it renaissance music.", R.leak),
        ("What genre is it?", "It is labelled as classical.", R.leak),
        ("What is in the metadata?", "A lute piece.", R.leak),
        ("Can you return the JSON for this clip?", "It holds a lute solo.", R.leak),
        ("Who plays the lute here?", "It is jacob heringman, playing solo.", R.leak),
        ("What mood does the piece have?", "Like the rest of Black Cow, it is serene.", R.leak),
        ("What instrument plays?", "A solo lute plays a gentle intro figure.", None),  # generic
        ("What instrument plays?", "A solo lute plucks a slow, ornamented melody.", None),
        ("Write a short caption for this clip.", "A solo lute plays a calm, slow dance.", None),
        ("What is the texture like?", "A thin, transparent texture with one line.", None),
    ],
)
def test_leaks(question: str, answer: str, expected: R | None) -> None:
    assert reason(check_leak(qa(question, answer), clip=CLIP)) == expected


def test_short_names_are_not_leaks() -> None:
    clip = CLIP.model_copy(update={"artist": "Air", "title": None, "album": None})
    assert check_leak(qa("What is the mood?", "Airy and calm, with air in the flute."),
                      clip=clip) is None


# --------------------------------------------------------------------------- junk

@pytest.mark.parametrize(
    ("question", "answer", "kind", "expected"),
    [
        ("What is the mood of the song?", "As an AI, I cannot hear the audio.", QAKind.mood,
         R.junk),
        ("What is the mood of the song?", "I'm sorry, but I cannot tell.", QAKind.mood, R.junk),
        ("What is the mood of the song?", "I can't listen to music, unfortunately.",
         QAKind.mood, R.junk),
        ("What is the mood of the song?", "Without listening, it seems sad.", QAKind.mood,
         R.junk),
        ("What is the mood of the song?", "Being a language model, I guess sad.", QAKind.mood,
         R.junk),
        ("What is the mood of the song?", "I am unable to judge the mood.", QAKind.mood, R.junk),
        ("Is there a piano in this track?", "Yes.", QAKind.instrumentation, R.junk),
        ("What instruments are playing?", "The instruments playing.", QAKind.instrumentation,
         R.junk),
        ("What is the tempo of the song?", "What is the tempo of the song?", QAKind.tempo,
         R.junk),
        ("The tempo of the song", "It is brisk, around 130 BPM.", QAKind.tempo, R.junk),
        ("What is the mood of the song?", "Based on the provided information, it is upbeat.",
         QAKind.mood, R.junk),
        ("What is the mood of the song?", "The tags indicate a happy song.", QAKind.mood,
         R.junk),
        ("What is the mood of the song?", "As mentioned, it is calm and warm.", QAKind.mood,
         R.junk),
        ("Who is the artist of this track?", "A lutenist with a delicate touch.", QAKind.reasoning,
         R.junk),
        ("What key is this in?", "It is not possible to determine the key.", QAKind.key,
         R.junk),
        ("What is the mood of the song?", "Calm and warm, with a hint of longing.", QAKind.mood,
         None),
        ("Is there a piano in this track?", "There is a piano.", QAKind.instrumentation, None),
        ("Is the tempo fast or slow?", "It is slow.", QAKind.tempo, None),
        ("Describe the groove.", "A laid-back swing with brushed snare.", QAKind.rhythm, None),
        ("Please explain the harmony.", "It alternates two chords over a drone.",
         QAKind.harmony, None),
        ("Music caption", "A solo lute plays a calm, ornamented dance.", QAKind.caption, None),
    ],
)
def test_junk(question: str, answer: str, kind: QAKind, expected: R | None) -> None:
    assert reason(check_junk(qa(question, answer, kind), banned=BANNED)) == expected


def test_custom_banned_phrases_match_whole_words_ignoring_case() -> None:
    item = qa("What is the texture?", "A sample pack of vintage drums.", QAKind.description)
    finding = check_junk(item, banned=["Sample  PACK"])
    assert reason(finding) == R.junk and finding is not None and "Sample  PACK" in finding.detail
    assert check_junk(qa("What is the texture?", "A densely packed, busy mix."),
                      banned=["pack"]) is None
    assert check_junk(item, banned=[]) is None


def test_curly_apostrophes_are_normalised() -> None:
    item = qa("What is the mood of the song?", "I’m sorry, I can’t hear it.", QAKind.mood)
    assert reason(check_junk(item, banned=[])) == R.junk


# --------------------------------------------------------------------------- banned list

def test_packaged_banned_list_is_clean() -> None:
    assert {"metadata", "based on the provided", "the given information", "in the metadata",
            "the tags indicate", "as mentioned", "the description says"} <= set(BANNED)
    assert all(p == p.strip().lower() and p and not p.startswith("#") for p in BANNED)
    assert len(BANNED) == len(set(BANNED))


def test_load_banned_phrases_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "banned.txt"
    path.write_text("# comment\n\nFoo Bar  # trailing comment\nfoo bar\n  baz\n", encoding="utf-8")
    assert load_banned_phrases(path) == ["foo bar", "baz"]


# --------------------------------------------------------------------------- near duplicates

@pytest.mark.parametrize(
    ("questions", "expected"),
    [
        (["What is the tempo of this song?", "What's the tempo of this track?",
          "Which instruments can you hear?", "what is the TEMPO of this song",
          "Describe the mood."], {1, 3}),
        (["Which instruments can you hear?", "Which instrument can you hear?"], {1}),
        (["Of this song, what is the tempo?", "What is the tempo of this song?"], {1}),
        (["What is the tempo?", "What is the key?", "What is the meter?"], set()),
        ([], set()),
    ],
)
def test_near_duplicates_of_earlier_questions(questions: list[str], expected: set[int]) -> None:
    assert near_duplicate_indices(questions) == expected


def test_near_duplicates_compare_with_kept_questions_only() -> None:
    a, b, c = "aaaa bbbb cccc dddd", "aaaa bbbb cccc eeee", "aaaa bbbb ffff eeee"
    assert question_similarity(a, b) >= 0.5 > question_similarity(a, c)
    assert question_similarity(b, c) >= 0.5
    assert near_duplicate_indices([a, b, c], threshold=0.5) == {1}


def test_threshold_one_drops_only_canonical_equals() -> None:
    questions = ["What key?", "what key", "What keys?", "What key is it in?"]
    assert near_duplicate_indices(questions, threshold=1.0) == {1, 2}


@pytest.mark.parametrize(
    ("question", "answer", "kind", "ok"),
    [
        ("What is the tempo?", "About 120 BPM, a brisk walk.", "tempo", True),
        ("What is the key to understanding?", "It's all about where the beats lie.", "key",
         False),
        ("Which key is it in?", "It sits in D minor.", "key", True),
        ("Which chords are used?", "It moves from A minor to E major.", "harmony", True),
        ("How many episodes of this clip is it?", "It has sixteen episodes.", "mood", True),
        ("Is this released in a specific country?", "It is produced in the United States.",
         "genre", False),
        ("Where could this music be played?", "In a quiet cafe.", "reasoning", True),
        ("Which instruments can you hear?", "Mostly a warm electric piano.", "instrumentation",
         True),
    ],
)
def test_pairs_must_be_about_their_kind(question: str, answer: str, kind: str, ok: bool) -> None:
    from qagen.generate.filters import check_kind

    finding = check_kind(QAItem(question=question, answer=answer, kind=QAKind(kind)))
    assert (finding is None) is ok
    if not ok:
        assert finding is not None and finding.reason is GenerateReason.kind_mismatch


def test_cut_off_answers_are_rejected_only_mid_sentence() -> None:
    from qagen.generate.filters import check_cut_off

    limit = 40
    cut = QAItem(question="What is the tempo of this piece?", kind=QAKind.tempo,
                 answer="It moves at a brisk pace with a steady pu")
    assert len(cut.answer) >= limit
    finding = check_cut_off(cut, limit=limit)
    assert finding is not None and finding.reason == GenerateReason.cut_off
    ended = cut.model_copy(update={"answer": "It moves at a brisk pace, steady pulse."})
    assert check_cut_off(ended, limit=len(ended.answer)) is None
    short = cut.model_copy(update={"answer": "Brisk, with a steady pu"})
    assert check_cut_off(short, limit=limit) is None
