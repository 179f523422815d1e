"""Facts pairs from the real MusicCaps metadata (../shared/realdata): the label topics on what
musicians actually wrote — free-form aspect lists, captions about movie scenes and live
audiences — pass the screens, and every instrument or vocal claim comes from the aspects."""

import random
from collections import Counter
from pathlib import Path

import pytest

from qagen.generate.facts import instruments, load_phrasebook, render_fact_pairs, vocals
from qagen.generate.filters import load_banned_phrases
from qagen.generate.grounding import Finding
from qagen.generate.screen import screen_pair
from qagen.records import Clip
from qagen.records.qa import QAItem
from qagen.sources import musiccaps


@pytest.fixture(scope="module")
def clips(realdata: Path) -> list[Clip]:
    root = realdata / "musiccaps"
    if not (root / "musiccaps-public.csv").is_file():
        pytest.skip(f"no MusicCaps csv under {root}")
    rows = [c for c in musiccaps.iter_clips(root, options=musiccaps.Options())
            if isinstance(c, Clip)]
    return random.Random(3).sample(rows, 300)


def test_label_pairs_on_real_captions_pass_the_screens(clips: list[Clip]) -> None:
    book, banned = load_phrasebook(), load_banned_phrases()
    topics: Counter[str] = Counter()
    failed = []
    for clip in clips:
        for p in render_fact_pairs(clip, None, book=book):
            topics[p.topic] += 1
            found = screen_pair(QAItem(question=p.question, answer=p.answer, kind=p.kind),
                                clip=clip, features=None, banned=banned, facts=p.facts)
            # Without audio a caption's "4/4" cannot be checked: that is grounding's refusal.
            if isinstance(found, Finding) and not found.reason.startswith("grounding"):
                failed.append((p.topic, found.reason, p.answer))
    assert {"description", "aspects", "instruments_open", "vocals", "mood"} <= set(topics)
    assert sum(topics.values()) >= 5 * len(clips)
    assert len(failed) <= 0.01 * sum(topics.values()), failed[:10]


def test_instruments_and_vocals_come_from_the_aspects(clips: list[Clip]) -> None:
    seen = 0
    for clip in clips:
        aspects = " ".join(clip.aspects).lower()
        for name in instruments(clip):
            seen += 1
            assert name in aspects, (name, clip.aspects)
            assert not name.startswith("no "), clip.aspects
        v = vocals(clip)
        if v is True:
            assert any(w in aspects for w in ("vocal", "voice", "sing", "rap", "choir"))
        elif v is False:
            assert "instrumental" in aspects or "no vocal" in aspects or "no voice" in aspects
    assert seen >= len(clips)
