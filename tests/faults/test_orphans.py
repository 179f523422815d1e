"""The source shrinks: after a full build, the dataset loses its last rows, so the re-ingest
has one shard fewer; every stage re-run after it must leave nothing of the vanished shard
(no output, rejection file or marker, no row of its clips) and must not redo the shards that
did not change.

One re-run of the whole chain (module fixture) in a copy of the session build; each stage's
checks are a parametrised case.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.faults.conftest import (
    CHAIN,
    DEMO_SHARD_SIZE,
    DEMO_SOURCE,
    RUN,
    SHARD_FILES,
    Build,
    Cli,
    column,
    copy_work,
    fingerprint,
    read_json,
    read_musiccaps_csv,
    shard_files,
    shards,
    write_musiccaps_csv,
)

pytestmark = pytest.mark.slow

KEYS = [f"{DEMO_SOURCE}-0000{i}" for i in range(3)]
VANISHED, SURVIVING = KEYS[2], KEYS[:2]


@dataclass(frozen=True)
class Shrunk:
    """The work dir after the shrink and the re-run of every stage."""

    work: Path
    gone: frozenset[str]  # clip ids of the vanished shard
    kept: frozenset[str]
    before: dict[str, dict[Path, tuple[int, str]]]  # stage → its surviving shards' files
    runs: dict[str, subprocess.CompletedProcess[str]]  # each stage's re-run


def link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


@pytest.fixture(scope="module")
def shrunk(build: Build, cli: Cli, tmp_path_factory: pytest.TempPathFactory) -> Shrunk:
    root = tmp_path_factory.mktemp("orphans")
    work = copy_work(build.after["publish"], root / "work")
    clips = shards(work, "manifests", "clips")
    assert list(clips) == KEYS
    gone = frozenset(column([clips[VANISHED]], "clip_id"))
    kept = frozenset(column([clips[k] for k in SURVIVING], "clip_id"))
    # The same dataset without its last two rows (one shard of two clips).
    table = read_musiccaps_csv(build.corpus / "musiccaps-public.csv")
    assert len(table) == 2 * len(KEYS)
    corpus = root / DEMO_SOURCE
    write_musiccaps_csv(corpus / "musiccaps-public.csv", table[:4])
    shutil.copytree(build.corpus / "audio", corpus / "audio", copy_function=link_or_copy)
    before = {stage: {p: fingerprint(p) for key in SURVIVING
                      for p in shard_files(stage, work, key)} for stage in SHARD_FILES}
    runs = {"ingest": cli.run("ingest", DEMO_SOURCE, str(corpus), "--shard-size",
                              str(DEMO_SHARD_SIZE), "--work", str(work), label="orphans-ingest")}
    for stage in CHAIN[1:]:  # each stage's exit is checked in its own case
        runs[stage] = cli.run(*build.argv(stage, work), label=f"orphans-{stage}", check=False)
    return Shrunk(work, gone, kept, before, runs)


def clip_ids_of_jsonl(path: Path) -> set[str]:
    return {json.loads(line)["clip_id"] for line in path.read_text().splitlines()}


def check_ingest(s: Shrunk) -> None:
    assert set(column(list(shards(s.work, "manifests", "clips").values()), "clip_id")) == s.kept


def check_augment(s: Shrunk) -> None:
    assert set(column(list(shards(s.work, "manifests", "features").values()),
                      "clip_id")) == s.kept


def check_generate(s: Shrunk) -> None:
    assert set(column(list(shards(s.work, "qa", "qa").values()), "clip_id")) == s.kept
    assert set(column(list(shards(s.work, "qa_rejected", "qa_rejected").values()),
                      "clip_id")) <= s.kept


def check_embed(s: Shrunk) -> None:
    assert set(column([s.work / "embeddings" / "index.parquet"], "clip_id")) == s.kept
    left = [p.name for p in (s.work / "embeddings").glob(f"*{VANISHED}*")]
    assert not left, f"arrays of the vanished shard remain: {left}"


def check_train(s: Shrunk) -> None:
    split = read_json(s.work / "train" / RUN / "split.json")
    trained_on = set(split["train_clips"]) | set(split["eval_clips"])  # type: ignore[arg-type]
    assert trained_on == s.kept, f"the run still uses vanished clips {trained_on & s.gone}"


def check_evaluate(s: Shrunk) -> None:
    left = [*(s.work / ".done").glob(f"evaluate*{RUN}/{VANISHED}.json"),
            *(s.work / "train" / RUN / "eval").glob(f"*{VANISHED}*")]
    assert not left, f"evaluate kept {left}"
    evaluated = clip_ids_of_jsonl(s.work / "train" / RUN / "eval" / "predictions.jsonl")
    assert evaluated and evaluated <= s.kept, f"predictions for vanished clips {evaluated & s.gone}"


def check_publish(s: Shrunk) -> None:
    hf = s.work / "publish" / "hf"
    for config in ("qa", "clips", "embeddings"):
        ids = set(column(sorted((hf / "data" / config).glob("*.parquet")), "clip_id"))
        assert ids == s.kept, f"published {config}: vanished {ids & s.gone}"
    for path in sorted((hf / "exports").rglob("*")):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            assert not [c for c in s.gone if c in text], path.relative_to(hf)


CHECKS: dict[str, Callable[[Shrunk], None]] = {
    "ingest": check_ingest, "augment": check_augment, "generate": check_generate,
    "embed": check_embed, "train": check_train, "evaluate": check_evaluate,
    "publish": check_publish,
}
@pytest.mark.parametrize("stage", CHAIN)
def test_a_vanished_shard_leaves_nothing_behind(stage: str, shrunk: Shrunk) -> None:
    run = shrunk.runs[stage]
    assert run.returncode == 0, f"qagen {stage} after the shrink exited {run.returncode}: " + (
        run.stdout + run.stderr)[-2000:]
    if stage in SHARD_FILES:
        left = shard_files(stage, shrunk.work, VANISHED)
        assert not left, f"{stage} kept {[p.relative_to(shrunk.work).as_posix() for p in left]}"
        for key in SURVIVING:
            assert shard_files(stage, shrunk.work, key), f"{stage} lost shard {key}"
        redone = [p.relative_to(shrunk.work).as_posix()
                  for p, was in shrunk.before[stage].items()
                  if not p.is_file() or fingerprint(p) != was]
        assert not redone, f"unchanged shards redone: {redone}"
    CHECKS[stage](shrunk)
