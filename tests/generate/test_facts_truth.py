"""The default build's pairs against the demo corpus truth: every stated claim is right.

Reads the claims out of the *answers* (with grounding's own parsers) and out of each pair's
stored facts, and checks both against ``truth.jsonl`` (what the synthesiser rendered), not
against the measurements the pairs were written from.
"""

import json
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from qagen.augment.chords import parse_chord, parse_key
from qagen.augment.stage import augment
from qagen.claims import bpm_claims, harmony_claims, meter_claims, split_sentences
from qagen.config import GenerateConfig
from qagen.generate.stage import generate
from qagen.ingest import ingest
from qagen.manifest import iter_manifest
from qagen.records.qa import QARecord
from qagen.stages import write_demo_corpus
from qagen.workdir import WorkDir

pytestmark = pytest.mark.slow
TEMPO_TOLERANCE = 0.04


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[QARecord], dict[str, dict]]:
    root = tmp_path_factory.mktemp("truth")
    corpus = write_demo_corpus(root / "demo")
    work = WorkDir(root / "work")
    for name, path in corpus.sources.items():
        ingest(name, Path(path), work=work)
    augment(work, workers=2, strict=True)
    generate(work, config=GenerateConfig(templates=[]))  # the facts family alone: no LLM
    records = list(iter_manifest(sorted((work.root / "qa").glob("qa-*.parquet")), QARecord))
    truth = {row["clip_id"]: row for row in map(json.loads, Path(corpus.truth_path)
                                                 .read_text().splitlines())}
    return records, truth


def _near(value: float, target: float) -> bool:
    return abs(value / target - 1) <= TEMPO_TOLERANCE


def _chord_set(truth: dict) -> set[tuple[int, str]]:
    return {parsed for c in truth["chords"] if (parsed := parse_chord(c["label"])) is not None}


def test_every_clip_has_eight_pairs_over_six_kinds(built: tuple) -> None:
    records, truth = built
    per_clip = Counter(r.clip_id for r in records)
    kinds: dict[str, set] = defaultdict(set)
    for r in records:
        kinds[r.clip_id].add(r.kind)
    assert set(per_clip) == set(truth)
    assert min(per_clip.values()) >= 8
    assert min(len(k) for k in kinds.values()) >= 6
    assert all(r.verified for r in records)


def check_claims(records: list[QARecord], truth: dict[str, dict]) -> Counter:
    """Every tempo, key, chord and meter claim read from the answers agrees with the truth;
    returns how many of each were checked (usable on any build: ``make dataset``'s too)."""
    checked: Counter = Counter()
    for r in records:
        t = truth[r.clip_id]
        tempi = [lo for s in split_sentences(r.answer) for lo, hi, _ in bpm_claims(s) if lo == hi]
        if tempi:
            # A hedged answer may name the other octave, but one stated tempo must be right.
            assert any(_near(x, t["tempo_bpm"]) for x in tempi), (r.answer, t["tempo_bpm"])
            octave = "half time" in r.answer or "double time" in r.answer
            for x in tempi:
                ok = _near(x, t["tempo_bpm"]) or (
                    octave and (_near(x, 2 * t["tempo_bpm"]) or _near(x, t["tempo_bpm"] / 2)))
                assert ok, (r.answer, t["tempo_bpm"])
            checked["tempo"] += 1
        keys, chords = harmony_claims(r.answer, kind=r.kind)
        true_key = parse_key(t["key"])
        # In a chord answer a name the parser reads as a key may be one of the chords.
        as_chords = {(pc, {"maj": "major", "min": "minor"}[q]) for pc, q in _chord_set(t)}
        for k in keys:
            if k.pc is not None and k.mode is not None:
                assert (k.pc, k.mode) == true_key or (
                    r.kind.value == "harmony" and (k.pc, k.mode) in as_chords), (r.answer, t)
                checked["key"] += 1
        for c in chords:
            assert (c.pc, c.quality) in _chord_set(t), (r.answer, c)
            checked["chord"] += 1
        for beats, _, _ in meter_claims(r.answer):
            assert beats == t["beats_per_bar"], (r.answer, t["beats_per_bar"])
            checked["meter"] += 1
    return checked


def test_every_claim_in_an_answer_agrees_with_the_truth(built: tuple) -> None:
    records, truth = built
    checked = check_claims(records, truth)
    assert min(checked.values()) >= 26 and len(checked) == 4, checked


def test_every_stored_fact_agrees_with_the_truth(built: tuple) -> None:
    records, truth = built
    for r in records:
        t, f = truth[r.clip_id], r.facts
        if f.tempo_bpm is not None:
            assert _near(f.tempo_bpm, t["tempo_bpm"]) or (
                f.tempo_alt_bpm is not None and _near(f.tempo_alt_bpm, t["tempo_bpm"])), r.answer
        if f.key is not None:
            assert parse_key(f.key) == parse_key(t["key"]), (r.answer, t["key"])
        if f.meter is not None:
            assert f.meter == t["beats_per_bar"]
        assert {parse_chord(c) for c in f.chords} <= _chord_set(t), (r.answer, t["chords"])
