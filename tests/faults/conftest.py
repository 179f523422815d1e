"""Fault tests drive the public ``qagen`` CLI in subprocesses and read only what it writes.

They survive refactors of the stages because they know nothing of qagen's functions: only
the commands, their options and the work-dir layout the README documents
(``manifests/<kind>-<shard>.parquet``, ``.done/<stage>/<shard>.json``, ``qa/``,
``embeddings/``, ``train/<run>/``, ``publish/hf/``).

One small build is made once per session, stage by stage, each stage in its own copy of the
work dir (``Build.after[stage]``): the 6-clip MusicCaps demo corpus in 3 shards of 2 clips,
facts-only generate, the built-in random MERT, a tiny random Llama (from
``tests/train/conftest.py``) trained for a few hundred steps.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq
import pytest

#: The stages in build order; each starts from the work dir the previous one left.
CHAIN = ("ingest", "augment", "generate", "embed", "train", "evaluate", "publish")
DEMO_SOURCE = "musiccaps"
#: Clips per manifest shard of the demo build: 6 clips → shards 00000..00002.
DEMO_SHARD_SIZE = 2
TRAIN_STEPS = 400  # checkpoints every 50 steps (the CLI's default): the kill lands mid-run
RUN = "demo"


def qagen_argv() -> list[str]:
    """The installed ``qagen`` console script (beside this interpreter), else its entry point."""
    script = Path(sys.executable).with_name("qagen")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from qagen.cli import main; main()"]


@dataclass(frozen=True)
class Cli:
    """Runs ``qagen`` commands offline, with their own model cache and a log per call."""

    env: dict[str, str]
    logs: Path

    def log_path(self, label: str) -> Path:
        self.logs.mkdir(parents=True, exist_ok=True)
        n = len(list(self.logs.iterdir()))
        return self.logs / f"{n:03d}-{label}.log"

    def run(self, *args: str, label: str = "qagen",
            check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run to the end; unless ``check`` is off, fail the test with the command's output
        when it does not exit 0."""
        proc = subprocess.run([*qagen_argv(), *args], env=self.env, capture_output=True,
                              text=True, check=False)
        self.log_path(label).write_text(proc.stdout + proc.stderr, encoding="utf-8")
        if check and proc.returncode != 0:
            pytest.fail(f"qagen {' '.join(args)} exited {proc.returncode}:\n"
                        f"{(proc.stdout + proc.stderr)[-4000:]}")
        return proc

    def start(self, *args: str, label: str) -> tuple[subprocess.Popen[bytes], Path]:
        """Start a command in its own process group (so a kill takes its workers too)."""
        log = self.log_path(label)
        with log.open("wb") as fh:
            proc = subprocess.Popen([*qagen_argv(), *args], env=self.env, stdout=fh,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        return proc, log


@dataclass(frozen=True)
class Stage:
    """How to run one stage through the CLI and what on disk shows its progress.

    ``units`` lists the files that appear one by one as the stage finishes pieces of its work
    (shard markers, checkpoints); the kill comes right after the first appears.
    """

    name: str
    args: Callable[[Build], list[str]]
    units: Callable[[Path], list[Path]]


#: Per sharded stage: the files of shard ``{key}`` (globs under the work dir).
SHARD_FILES = {
    "ingest": ["manifests/clips-{key}.parquet", "rejects/ingest-{key}.parquet",
               ".done/ingest/{key}.json"],
    "augment": ["manifests/features-{key}.parquet", "rejects/augment-{key}.parquet",
                ".done/augment/{key}.json"],
    "generate": ["qa/qa-{key}.parquet", "qa_rejected/qa_rejected-{key}.parquet",
                 ".done/generate/{key}.json"],
    "embed": ["embeddings/index-{key}.parquet", "embeddings/*-{key}-*.npy",
              "rejects/embed-{key}.parquet", ".done/embed/{key}.json"],
}


def shard_files(stage: str, work: Path, key: str) -> list[Path]:
    """The files a sharded stage holds for one shard (outputs, rejections, marker)."""
    return sorted(p for pattern in SHARD_FILES[stage] for p in work.glob(pattern.format(key=key)))


def marker_units(stage: str) -> Callable[[Path], list[Path]]:
    return lambda work: sorted((work / ".done" / stage).glob("*.json"))


def eval_units(work: Path) -> list[Path]:
    """Evaluate's progress: its shard markers (``.done/evaluate-<run>/``, when it runs per QA
    shard), then the predictions file."""
    predictions = work / "train" / RUN / "eval" / "predictions.jsonl"
    return [*eval_markers(work), *([predictions] if predictions.is_file() else [])]


def eval_markers(work: Path) -> list[Path]:
    return sorted((work / ".done").glob(f"evaluate*{RUN}/*.json"))


STAGES: dict[str, Stage] = {s.name: s for s in (
    Stage("ingest", lambda b: ["ingest", DEMO_SOURCE, str(b.corpus), "--shard-size",
                               str(DEMO_SHARD_SIZE)], marker_units("ingest")),
    Stage("augment", lambda b: ["augment", "--workers", "2"], marker_units("augment")),
    Stage("generate", lambda b: ["generate", "--templates", "none"], marker_units("generate")),
    Stage("embed", lambda b: ["embed", "--threads", "1"], marker_units("embed")),
    Stage("train", lambda b: ["train", "--run", RUN, "--lm", str(b.lm), "--steps",
                              str(TRAIN_STEPS), "--adapter-layers", "2", "--threads", "1"],
          lambda work: sorted((work / "train" / RUN / "checkpoints").glob("step-*.pt"))),
    Stage("evaluate", lambda b: ["evaluate", "--run", RUN, "--threads", "1", "--max-pairs", "6",
                                 "--max-new-tokens", "16"],
          lambda work: eval_units(work)),
    Stage("publish", lambda b: ["publish"],
          lambda work: sorted((work / "publish" / "hf" / "data").rglob("*.parquet"))),
)}


@dataclass
class Build:
    """The session's demo build: corpus, tiny LM, and the work dir after each stage."""

    root: Path
    cli: Cli
    corpus: Path
    lm: Path
    after: dict[str, Path] = field(default_factory=dict)

    def argv(self, stage: str, work: Path) -> list[str]:
        return [*STAGES[stage].args(self), "--work", str(work)]

    def before(self, stage: str) -> Path | None:
        """The work dir a stage starts from (None: an empty one)."""
        i = CHAIN.index(stage)
        return self.after[CHAIN[i - 1]] if i else None


def copy_work(src: Path | None, dst: Path) -> Path:
    """A private copy of a work dir (mtimes kept), or an empty one."""
    if src is None:
        dst.mkdir(parents=True)
    else:
        shutil.copytree(src, dst, symlinks=True)
    return dst


@pytest.fixture(scope="session")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    """``qagen`` with a private model cache, never reaching the network."""
    root = tmp_path_factory.mktemp("faults-cli")
    env = {**os.environ, "QAGEN_HOME": str(root / "qagen-home"), "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "COLUMNS": "120",
           "PYTHONUNBUFFERED": "1"}
    return Cli(env=env, logs=root / "logs")


@pytest.fixture(scope="session")
def build(tmp_path_factory: pytest.TempPathFactory, cli: Cli) -> Build:
    """Every stage run once, uninterrupted, each in its own copy of the work dir: the
    references of the fault tests (~1 min)."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tests.train.conftest import tiny_lm_dir, tiny_tokenizer_dir

    root = tmp_path_factory.mktemp("faults-build")
    cli.run("demo-corpus", str(root / "demo"), "--sources", DEMO_SOURCE, label="demo-corpus")
    lm = root / "tiny-lm"
    tiny_tokenizer_dir(lm)
    from transformers import AutoTokenizer

    tiny_lm_dir(lm, vocab=len(AutoTokenizer.from_pretrained(lm)))
    b = Build(root=root, cli=cli, corpus=root / "demo" / DEMO_SOURCE, lm=lm)
    for stage in CHAIN:
        work = copy_work(b.before(stage), root / f"after-{stage}")
        cli.run(*b.argv(stage, work), label=f"build-{stage}")
        b.after[stage] = work
    return b


# -- reading what the stages wrote ---------------------------------------------------------


def column(paths: Sequence[Path], name: str) -> list[object]:
    """One column over parquet files, in file order."""
    return [v for p in paths for v in pq.read_table(p, columns=[name]).column(name).to_pylist()]


def rows(paths: Sequence[Path], *, drop: Sequence[str] = ()) -> list[dict[str, object]]:
    """Every row of some parquet files, without the ``drop`` columns, in file order."""
    out: list[dict[str, object]] = []
    for path in paths:
        table = pq.read_table(path)
        keep = [c for c in table.column_names if c not in drop]
        out += table.select(keep).to_pylist()
    return out


def shards(work: Path, folder: str, prefix: str) -> dict[str, Path]:
    """``<folder>/<prefix>-<shard>.parquet`` by shard key (``musiccaps-00001``)."""
    return {p.name[len(prefix) + 1: -len(".parquet")]: p
            for p in sorted((work / folder).glob(f"{prefix}-*.parquet"))}


def read_json(path: Path) -> dict[str, object]:
    return json.loads(path.read_text(encoding="utf-8"))


def fingerprint(path: Path) -> tuple[int, str]:
    """(mtime_ns, sha256) of a file: whether it was rewritten, and whether it changed."""
    return path.stat().st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest()


def is_temp_file(path: Path) -> bool:
    """A temp file of an atomic write (``.<name>.<random>.tmp``): a write a kill cut short
    leaves one behind; nothing reads them, and no stage sweeps them yet."""
    return path.name.startswith(".") and path.name.endswith(".tmp")


def files_under(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by relative path (temp files of cut-short writes aside)."""
    return {path.relative_to(root).as_posix(): path.read_bytes()
            for path in sorted(root.rglob("*")) if path.is_file() and not is_temp_file(path)}


def kill_after_first_unit(cli: Cli, argv: Sequence[str], *, units: Callable[[], list[Path]],
                          label: str) -> bool:
    """Start ``qagen argv``, SIGKILL its process group as soon as its first unit of work is
    on disk; True if it was killed, False if it finished first (exit 0).

    Polls every millisecond: the kill lands mid-stage unless the whole stage takes about as
    long as one poll (the callers then rewind what a kill would have prevented).
    """
    proc, log = cli.start(*argv, label=label)
    try:
        while proc.poll() is None and not units():
            time.sleep(0.001)
    finally:
        if proc.poll() is None:  # also when the test is interrupted: leave nothing running
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        rc = proc.wait()
    if rc == -signal.SIGKILL:
        return True
    if rc != 0:
        pytest.fail(f"qagen {' '.join(argv)} exited {rc} before the kill:\n"
                    f"{log.read_text(encoding='utf-8', errors='replace')[-4000:]}")
    return False


def write_musiccaps_csv(path: Path, table: Sequence[dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)


def read_musiccaps_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))
