"""kill -9 in the middle of every stage, then the same command again: it must finish (exit 0)
with outputs equal to an uninterrupted run's, no id twice, nothing lost, and without redoing
the work finished before the kill.

Each stage runs through the CLI in a copy of the work dir the previous stage left (see
``conftest.py``); the reference is the session build's uninterrupted run from the same
copy. The kill comes as soon as the first unit of work is on disk: the first shard marker
(ingest, augment, generate, embed; evaluate when it runs per QA shard, else its predictions
file), the first checkpoint (train), the first data file (publish).

A stage that outran the kill (it finished, or wrote its last shard, before the signal
landed) is rewound to a state a kill leaves: the shards after the first removed with their
markers (atomic writes: a kill leaves whole files or none), or the files written last
(train: adapter and report; evaluate: metrics and the shards after the first; publish: the
card). The resume is tested either way; the ``kill`` property (junit) says which happened.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.faults.conftest import (
    DEMO_SOURCE,
    RUN,
    SHARD_FILES,
    STAGES,
    TRAIN_STEPS,
    Build,
    Cli,
    column,
    copy_work,
    eval_markers,
    files_under,
    fingerprint,
    kill_after_first_unit,
    read_json,
    read_musiccaps_csv,
    rows,
    shard_files,
    shards,
    write_musiccaps_csv,
)

pytestmark = pytest.mark.slow

#: The big ingest: enough rows for 200 shards of 20 (about a second of writing), every
#: 50th row malformed and every 70th a duplicate id, so rejection files are resumed too.
BIG_ROWS = 4000
BIG_SHARD_SIZE = 20

#: Files a sharded stage writes once, after its last shard.
STAGE_FILES = {
    "ingest": [f"reports/ingest-{DEMO_SOURCE}.json", f"reports/missing-audio-{DEMO_SOURCE}.txt"],
    "augment": [], "generate": [], "embed": ["embeddings/index.parquet"],
}


@dataclass(frozen=True)
class Scenario:
    """One stage's fault test: where it starts, its command, the uninterrupted result."""

    stage: str
    argv: Callable[[Path], list[str]]
    start: Path | None
    reference: Path


@pytest.fixture(scope="module")
def big_ingest(build: Build, cli: Cli) -> Scenario:
    """A MusicCaps copy of 4000 rows (audio absent: ingest keeps them as missing), with
    malformed and duplicate rows, and its uninterrupted ingest."""
    demo = read_musiccaps_csv(build.corpus / "musiccaps-public.csv")
    table = []
    for i in range(BIG_ROWS):
        row = {**demo[i % len(demo)], "ytid": f"Z{i:010d}"}
        if i % 50 == 49:
            row["start_s"] = "not a number"
        if i % 70 == 69:
            row["ytid"] = table[-1]["ytid"]
        table.append(row)
    corpus = build.root / "big-musiccaps"
    write_musiccaps_csv(corpus / "musiccaps-public.csv", table)

    def argv(work: Path) -> list[str]:
        return ["ingest", DEMO_SOURCE, str(corpus), "--shard-size", str(BIG_SHARD_SIZE),
                "--work", str(work)]

    reference = copy_work(None, build.root / "big-ingest-reference")
    cli.run(*argv(reference), label="big-ingest-reference")
    return Scenario("ingest", argv, None, reference)


@pytest.fixture
def scenario(request: pytest.FixtureRequest, build: Build) -> Scenario:
    stage = request.param
    if stage == "ingest":
        return request.getfixturevalue("big_ingest")  # type: ignore[no-any-return]
    return Scenario(stage, lambda work: build.argv(stage, work), build.before(stage),
                    build.after[stage])


# -- the state a kill leaves, when the stage outran it ---------------------------------------


def rewind(stage: str, work: Path, first: Path) -> None:
    """Remove what a stage wrote after its first unit of work (``first``) on disk."""
    if stage in SHARD_FILES:
        for marker in sorted((work / ".done" / stage).glob("*.json")):
            if marker != first:
                remove_shard(stage, work, marker.stem)
        for rel in STAGE_FILES[stage]:
            (work / rel).unlink(missing_ok=True)
    elif stage == "train":  # killed after its last checkpoint, before saving the adapter
        for name in ("report.json", "adapter.safetensors", "README.md"):
            (work / "train" / RUN / name).unlink(missing_ok=True)
    elif stage == "evaluate":  # killed after its first shard (or predictions), before metrics
        (work / "train" / RUN / "eval" / "metrics.json").unlink(missing_ok=True)
        for marker in eval_markers(work):
            if marker != first:
                for path in eval_shard_files(work, marker):
                    path.unlink()
    elif stage == "publish":  # killed before the card
        (work / "publish" / "hf" / "README.md").unlink(missing_ok=True)
        (work / "reports" / "publish.json").unlink(missing_ok=True)


def completed(stage: str, work: Path, reference: Path) -> bool:
    """Whether the stage got to its end (the kill then came too late to test a resume)."""
    if stage in SHARD_FILES:
        done = len(list((work / ".done" / stage).glob("*.json")))
        return done == len(list((reference / ".done" / stage).glob("*.json")))
    last = {"train": f"train/{RUN}/report.json", "evaluate": f"train/{RUN}/eval/metrics.json",
            "publish": "reports/publish.json"}[stage]
    return (work / last).is_file()


def remove_shard(stage: str, work: Path, key: str) -> None:
    for path in shard_files(stage, work, key):
        path.unlink()


def eval_shard_files(work: Path, marker: Path) -> list[Path]:
    """An evaluate shard's marker and its files under the run's ``eval/``."""
    return [marker, *sorted((work / "train" / RUN / "eval").glob(f"*-{marker.stem}.*"))]


def finished_before_kill(stage: str, work: Path, units: list[Path]) -> dict[Path, tuple]:
    """The files of the work finished before the kill, with (mtime, hash): a resume must
    leave them untouched. Train's checkpoints are rotated by design (its resume step is
    checked instead); evaluate's predictions file is rewritten from all shards."""
    done: list[Path] = []
    if stage in SHARD_FILES:
        for marker in units:
            done += shard_files(stage, work, marker.stem)
    elif stage == "evaluate":
        for marker in eval_markers(work):
            done += eval_shard_files(work, marker)
    elif stage == "publish":
        done = units
    return {p: fingerprint(p) for p in done}


# -- equality with the uninterrupted run, per stage --------------------------------------------


def no_duplicates(values: list[object], what: str) -> None:
    seen: set[object] = set()
    twice = sorted({str(v) for v in values if v in seen or seen.add(v)})  # type: ignore[func-returns-value]
    assert not twice, f"{len(twice)} {what} written twice, e.g. {twice[:3]}"


def same_shard_files(ref: Path, got: Path, folder: str, prefix: str) -> dict[str, Path]:
    """Same shard keys and byte-identical files; returns the resumed run's shards."""
    ref_shards, got_shards = shards(ref, folder, prefix), shards(got, folder, prefix)
    assert list(got_shards) == list(ref_shards)
    for key, path in ref_shards.items():
        assert got_shards[key].read_bytes() == path.read_bytes(), f"{folder}/{path.name}"
    return got_shards


#: Report and marker fields that may differ between a resumed and an uninterrupted run.
VOLATILE = frozenset({"seconds", "seconds_per_step", "shards_reused", "reused",
                      "resumed_from_step"})


def comparable(value: object, work: Path, *, ignore: tuple[str, ...] = ()) -> object:
    """A report or marker without its volatile fields, paths made relative to ``work``."""
    if isinstance(value, dict):
        return {k: comparable(v, work, ignore=ignore) for k, v in value.items()
                if k not in VOLATILE and k not in ignore}
    if isinstance(value, list):
        return [comparable(v, work, ignore=ignore) for v in value]
    if isinstance(value, str) and value.startswith(str(work) + "/"):
        return value[len(str(work)) + 1:]
    return value


def same_json(ref: Path, got: Path, rel: str, *, ignore: tuple[str, ...] = ()) -> None:
    """``rel`` holds the same report in both work dirs (volatile fields aside)."""
    assert comparable(read_json(got / rel), got, ignore=ignore) == comparable(
        read_json(ref / rel), ref, ignore=ignore), rel


def same_markers(stage: str, ref: Path, got: Path, *, ignore: tuple[str, ...] = ()) -> None:
    keys = [p.stem for p in sorted((ref / ".done" / stage).glob("*.json"))]
    assert [p.stem for p in sorted((got / ".done" / stage).glob("*.json"))] == keys
    for key in keys:
        same_json(ref, got, f".done/{stage}/{key}.json", ignore=ignore)


def check_ingest(ref: Path, got: Path) -> None:
    clips = same_shard_files(ref, got, "manifests", "clips")
    ids = column(list(clips.values()), "clip_id")
    no_duplicates(ids, "clip ids")
    assert len(ids) == len(column(list(shards(ref, "manifests", "clips").values()), "clip_id"))
    same_shard_files(ref, got, "rejects", "ingest")
    same_markers("ingest", ref, got)
    missing = f"reports/missing-audio-{DEMO_SOURCE}.txt"
    assert (got / missing).read_text() == (ref / missing).read_text()
    same_json(ref, got, f"reports/ingest-{DEMO_SOURCE}.json")


def check_augment(ref: Path, got: Path) -> None:
    ref_f, got_f = shards(ref, "manifests", "features"), shards(got, "manifests", "features")
    assert list(got_f) == list(ref_f)
    no_duplicates(column(list(got_f.values()), "clip_id"), "clip ids")
    for key in ref_f:  # ``seconds`` is the measurement's wall time
        assert rows([got_f[key]], drop=["seconds"]) == rows([ref_f[key]], drop=["seconds"])
    assert files_under(got / "rejects") == files_under(ref / "rejects")
    same_markers("augment", ref, got)


def check_generate(ref: Path, got: Path) -> None:
    qa = same_shard_files(ref, got, "qa", "qa")
    no_duplicates(column(list(qa.values()), "qa_id"), "qa ids")
    assert sum(len(column([p], "qa_id")) for p in qa.values()) > 0
    same_shard_files(ref, got, "qa_rejected", "qa_rejected")
    same_markers("generate", ref, got)


def check_embed(ref: Path, got: Path) -> None:
    got_files, ref_files = files_under(got / "embeddings"), files_under(ref / "embeddings")
    assert sorted(got_files) == sorted(ref_files)
    for rel, data in ref_files.items():
        assert got_files[rel] == data, f"embeddings/{rel}"
    index = got / "embeddings" / "index.parquet"
    no_duplicates(list(zip(column([index], "clip_id"), column([index], "kind"), strict=True)),
                  "(clip, kind) embeddings")
    # How many came from the cache differs with the kill point; everything else may not.
    same_markers("embed", ref, got, ignore=("counts",))


def check_train(ref: Path, got: Path) -> None:
    run_ref, run_got = ref / "train" / RUN, got / "train" / RUN
    # Resume is exact: the same weights, bit for bit, and the same loss curve.
    assert (run_got / "adapter.safetensors").read_bytes() == (
        run_ref / "adapter.safetensors").read_bytes()
    assert jsonl(run_got / "loss.jsonl") == jsonl(run_ref / "loss.jsonl")
    steps = [e["step"] for e in jsonl(run_got / "loss.jsonl")]
    assert steps == sorted(set(steps)) and steps[-1] == TRAIN_STEPS
    for name in ("split.json", "config.json", "losses_before.json", "report.json"):
        same_json(ref, got, f"train/{RUN}/{name}")


def jsonl(path: Path) -> list[object]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def check_evaluate(ref: Path, got: Path) -> None:
    eval_ref, eval_got = ref / "train" / RUN / "eval", got / "train" / RUN / "eval"
    for name in ("predictions.jsonl", "baseline_predictions.jsonl"):
        assert (eval_got / name).read_bytes() == (eval_ref / name).read_bytes(), name
    qa_ids = [json.loads(line)["qa_id"] for line in
              (eval_got / "predictions.jsonl").read_text().splitlines()]
    assert qa_ids
    no_duplicates(qa_ids, "predictions")
    same_json(ref, got, f"train/{RUN}/eval/metrics.json")


def check_publish(ref: Path, got: Path) -> None:
    got_files = files_under(got / "publish" / "hf")
    ref_files = files_under(ref / "publish" / "hf")
    assert sorted(got_files) == sorted(ref_files)
    for rel, data in ref_files.items():
        assert got_files[rel] == data, f"publish/hf/{rel}"
    qa = sorted((got / "publish" / "hf" / "data" / "qa").glob("*.parquet"))
    ids = column(qa, "qa_id")
    no_duplicates(ids, "published qa ids")
    assert sorted(ids) == sorted(column(list(shards(got, "qa", "qa").values()), "qa_id"))


CHECKS: dict[str, Callable[[Path, Path], None]] = {
    "ingest": check_ingest, "augment": check_augment, "generate": check_generate,
    "embed": check_embed, "train": check_train, "evaluate": check_evaluate,
    "publish": check_publish,
}


@pytest.mark.parametrize("scenario", list(STAGES), indirect=True)
def test_a_killed_stage_resumes_to_the_uninterrupted_result(
    scenario: Scenario, cli: Cli, tmp_path: Path, record_property: Callable[[str, object], None],
) -> None:
    stage = STAGES[scenario.stage]
    work = copy_work(scenario.start, tmp_path / "work")

    def units() -> list[Path]:
        return stage.units(work)

    killed = kill_after_first_unit(cli, scenario.argv(work), units=units,
                                   label=f"kill-{stage.name}")
    assert units(), (f"qagen {stage.name} wrote none of the files this test watches "
                     "(has the work-dir layout changed? see conftest.STAGES)")
    outran = not killed or completed(stage.name, work, scenario.reference)
    if outran:
        rewind(stage.name, work, units()[0])
    record_property("kill", "rewound" if outran else "real")
    at_kill = units()
    assert not completed(stage.name, work, scenario.reference)
    untouched = finished_before_kill(stage.name, work, at_kill)
    steps_done = [int(p.stem.split("-")[1]) for p in at_kill] if stage.name == "train" else []

    cli.run(*scenario.argv(work), label=f"resume-{stage.name}")  # exit 0, or the test fails

    CHECKS[stage.name](scenario.reference, work)
    rewritten = [p.relative_to(work).as_posix() for p, was in untouched.items()
                 if not p.is_file() or fingerprint(p) != was]
    assert not rewritten, f"finished before the kill, yet redone: {rewritten}"
    if stage.name == "train":  # resumed from the newest checkpoint, not from step 0
        report = read_json(work / "train" / RUN / "report.json")
        assert 0 < max(steps_done) < TRAIN_STEPS
        assert report["resumed_from_step"] == max(steps_done)


def test_the_fault_build_has_several_shards(build: Build) -> None:
    """The fixtures the kill tests rely on: 3 shards of 2 clips, every clip measured and
    embedded, pairs for every clip."""
    clips = shards(build.after["ingest"], "manifests", "clips")
    assert [len(column([p], "clip_id")) for p in clips.values()] == [2, 2, 2]
    ids = sorted(column(list(clips.values()), "clip_id"))
    final = build.after["publish"]
    assert sorted(column(list(shards(final, "manifests", "features").values()), "clip_id")) == ids
    assert sorted(set(column(list(shards(final, "qa", "qa").values()), "clip_id"))) == ids
    assert sorted(set(column([final / "embeddings" / "index.parquet"], "clip_id"))) == ids
