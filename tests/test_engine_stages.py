"""Every stage on the shard engine keeps its contract: a re-run reuses every shard (nothing
redone, outputs byte-identical and untouched), outputs of shards whose input is gone are
removed after the source shrinks (a re-ingest with fewer rows), and every marker is a
``ShardMarker``.

One small corpus (four one-second clips, one per shard) runs through ingest, augment, embed,
train + evaluate and publish; each case names its stage function, its marker folder and the
files its sinks own.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from qagen.engine import ShardMarker, StageReport, read_marker
from qagen.ingest import ingest
from qagen.manifest import read_records, write_records
from qagen.records import Clip, QARecord
from qagen.records.qa import QAKind
from qagen.sources import musiccaps
from qagen.workdir import WorkDir
from tests.conftest import toy_demo_clips

N_CLIPS = 4


@dataclass
class Env:
    """What the cases share: the dataset copy and the models built once per session."""

    root: Path
    home: Path  # qagen's model cache with the built-in tiny encoder
    lm: Path | None  # a tiny random Llama + tokenizer (None without torch/transformers)


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path | None]:
    from qagen.embed.tiny import tiny_model_dir

    home = tmp_path_factory.mktemp("qagen-home")
    tiny_model_dir(cache_root=home)
    try:
        from transformers import AutoTokenizer

        from tests.train.conftest import tiny_lm_dir, tiny_tokenizer_dir
    except ImportError:
        return home, None
    lm = tmp_path_factory.mktemp("tiny-lm")
    tiny_tokenizer_dir(lm)
    tiny_lm_dir(lm, vocab=len(AutoTokenizer.from_pretrained(lm)))
    return home, lm


@pytest.fixture(autouse=True)
def _torch_threads() -> Iterator[None]:
    """Train and evaluate set torch's thread count for the process; give it back, so tests
    that compare against a bare forward pass elsewhere see the count they started with."""
    try:
        import torch
    except ImportError:
        yield
        return
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def env(tmp_path: Path, models: tuple[Path, Path | None]) -> Env:
    """Four clips in the MusicCaps layout; the first one is the test split (so it stays when
    the source shrinks to its first rows)."""
    clips = toy_demo_clips(N_CLIPS)
    clips = [dataclasses.replace(c, split="test" if i == 0 else "train")
             for i, c in enumerate(clips)]
    musiccaps.write_native(tmp_path / "mc", clips)
    return Env(root=tmp_path / "mc", home=models[0], lm=models[1])


def do_ingest(work: WorkDir, env: Env) -> StageReport:
    return ingest("musiccaps", env.root, work=work, shard_size=1, hash_audio=True)


def shrink(work: WorkDir, env: Env, *, rows: int) -> set[str]:
    """Keep the first ``rows`` rows of the source and re-ingest; returns the shards left.
    QA shards of vanished clip shards go too (what generate's own orphan removal does)."""
    csv_path = env.root / "musiccaps-public.csv"
    csv_path.write_text("".join(csv_path.read_text().splitlines(keepends=True)[: rows + 1]))
    do_ingest(work, env)
    keys = set(work.manifest_shards("clips"))
    for key, path in WorkDir.shard_files(work.qa_dir, "qa").items():
        if key not in keys:
            path.unlink()
    return keys


def write_pairs(work: WorkDir) -> None:
    """Two pairs per clip in each clip shard's QA shard (clip i answers ANSWERS[i % 4])."""
    from tests.train.conftest import ANSWERS, QUESTIONS

    for i, (key, path) in enumerate(work.manifest_shards("clips").items()):
        records = []
        for clip in read_records(path, Clip):
            for j in range(2):
                q = QUESTIONS[(i + j) % 4]
                records.append(QARecord(
                    template_id="t", template_version="1", template_hash="h", backend="b",
                    model_id="m", sampling="{}", seed=0, attempt=1, request_id=f"r{i}-{j}",
                    raw_output="", created_at="2026-01-01T00:00:00+00:00",
                    qa_id=QARecord.make_id(clip.clip_id, "t", q), clip_id=clip.clip_id,
                    source=clip.source, split=clip.split.value, question=q,
                    answer=ANSWERS[i % 4], kind=QAKind.description))
        write_records(work.qa_shard(key), records, QARecord)


def embeddings(work: WorkDir) -> object:
    from qagen.train.data import InMemoryEmbeddings
    from tests.train.conftest import random_embeddings

    ids = [c.clip_id for p in work.manifest_shards("clips").values()
           for c in read_records(p, Clip)]
    return InMemoryEmbeddings(random_embeddings(ids), encoder_id="toy")


def trained(work: WorkDir, env: Env) -> None:
    from qagen.train import TrainConfig, train

    if env.lm is None:
        pytest.skip("evaluate needs torch and transformers (the train extra)")
    write_pairs(work)
    train(work, config=TrainConfig(lm=str(env.lm), run="c", steps=2, warmup_steps=1,
                                   adapter_layers=2, adapter_blocks=1, adapter_ffn_mult=2,
                                   log_every=1, save_every=2, threads=1),
          embeddings=embeddings(work), progress=False)  # type: ignore[arg-type]


def do_augment(work: WorkDir, env: Env) -> StageReport:
    from qagen.augment.stage import augment

    return augment(work, workers=1, strict=True)


def do_embed(work: WorkDir, env: Env) -> StageReport:
    from qagen.embed.config import EmbedConfig
    from qagen.embed.stage import embed

    return embed(work, config=EmbedConfig(threads=1), cache_root=env.home, strict=True)


def do_evaluate(work: WorkDir, env: Env) -> StageReport:
    from qagen.train.config import EvaluateConfig
    from qagen.train.evaluate import evaluate

    return evaluate(work, run="c", config=EvaluateConfig(max_new_tokens=3, threads=1),
                    embeddings=embeddings(work),  # type: ignore[arg-type]
                    scorer=lambda p, r: {"n": float(len(p))}, strict=True)


def do_publish(work: WorkDir, env: Env) -> StageReport:
    from qagen.publish import PublishConfig, publish

    return publish(work, config=PublishConfig(plots=False), strict=True)


def embed_files(work: WorkDir) -> dict[str, list[Path]]:
    root = work.root / "embeddings"
    out: dict[str, list[Path]] = {}
    for path in root.glob("*-*.*"):
        parts = path.stem.split("-")
        if path.name.startswith("index-") or path.suffix == ".npy":
            out.setdefault("-".join(parts[1:3]), []).append(path)
    return out


def by_key(folder: Path, *prefixes: str) -> Callable[[WorkDir], dict[str, list[Path]]]:
    def files(work: WorkDir) -> dict[str, list[Path]]:
        out: dict[str, list[Path]] = {}
        for prefix in prefixes:
            for key, path in WorkDir.shard_files(work.root / folder, prefix).items():
                out.setdefault(key, []).append(path)
        return out

    return files


@dataclass(frozen=True)
class Case:
    """One stage: how to run it, what must exist first, its marker folder, its outputs."""

    stage: str
    run: Callable[[WorkDir, Env], StageReport]
    namespace: str
    outputs: Callable[[WorkDir], dict[str, list[Path]]]
    before: Callable[[WorkDir, Env], None] | None = None


CASES = [
    Case("ingest", do_ingest, "ingest", by_key(Path("manifests"), "clips")),
    pytest.param(Case("augment", do_augment, "augment", by_key(Path("manifests"), "features")),
                 marks=pytest.mark.slow, id="augment"),
    Case("embed", do_embed, "embed", embed_files),
    Case("evaluate", do_evaluate, "evaluate-c", by_key(Path("train/c/eval"), "answers"),
         before=trained),
    Case("publish", do_publish, "publish", by_key(Path("publish/rows"), "qa", "clips"),
         before=lambda work, env: write_pairs(work)),
]


def snapshot(work: WorkDir, case: Case) -> dict[str, tuple[str, int]]:
    """Every output and marker of the stage: sha256 and mtime."""
    files = [p for paths in case.outputs(work).values() for p in paths]
    files += list(work.markers(case.namespace).values())
    return {p.relative_to(work.root).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest(),
                                                  p.stat().st_mtime_ns) for p in files}


def ran(case: Case, tmp_path: Path, env: Env) -> WorkDir:
    work = WorkDir(tmp_path / "work")
    do_ingest(work, env)
    if case.before is not None:
        case.before(work, env)
    return work


def ids(c: object) -> str:
    return c.stage if isinstance(c, Case) else str(c)


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_a_rerun_reuses_every_shard_and_rewrites_nothing(case: Case, tmp_path: Path,
                                                         env: Env) -> None:
    work = ran(case, tmp_path, env)
    first = case.run(work, env)
    assert first.stage == case.stage
    assert first.shards == N_CLIPS and len(case.outputs(work)) == N_CLIPS
    before = snapshot(work, case)
    again = case.run(work, env)
    assert (again.shards, again.shards_reused) == (N_CLIPS, N_CLIPS)  # 0 redone
    assert again.reused
    assert (again.items_in, again.items_out, again.rejected, again.skipped, again.counts) == (
        first.items_in, first.items_out, first.rejected, first.skipped, first.counts)
    assert snapshot(work, case) == before  # identical bytes, not even rewritten


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_outputs_of_vanished_shards_are_removed(case: Case, tmp_path: Path, env: Env) -> None:
    work = ran(case, tmp_path, env)
    case.run(work, env)
    assert len(work.markers(case.namespace)) == N_CLIPS
    keep = shrink(work, env, rows=2)
    assert len(keep) == 2
    report = case.run(work, env)
    assert report.shards == 2
    assert set(case.outputs(work)) == keep
    assert set(work.markers(case.namespace)) == keep
    assert set(WorkDir.shard_files(work.rejects, case.namespace)) <= keep


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_every_marker_is_a_shard_marker(case: Case, tmp_path: Path, env: Env) -> None:
    work = ran(case, tmp_path, env)
    report = case.run(work, env)
    markers = {k: read_marker(p) for k, p in work.markers(case.namespace).items()}
    assert set(markers) == set(case.outputs(work))
    assert all(isinstance(m, ShardMarker) for m in markers.values()), markers
    for key, marker in markers.items():
        assert marker is not None
        ShardMarker.model_validate_json(work.marker(case.namespace, key).read_text())
        assert all((work.root / p).is_file() for p in marker.outputs)
        assert {work.root / p for p in marker.outputs} >= set(case.outputs(work)[key])
    assert sum(m.items_out for m in markers.values() if m) == report.items_out
    assert sum(m.items_in for m in markers.values() if m) == report.items_in
