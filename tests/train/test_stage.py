"""The train and evaluate stages end to end on a tiny random Llama: loss falls, a killed run
resumes to the same weights and loss curve, finished runs are reused, evaluation writes
predictions, metrics and the card."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from qagen.engine import StageReport
from qagen.errors import ConfigError
from qagen.records.training import EvalReport, LossLogEntry, Prediction, TrainReport
from qagen.train import TrainConfig, train
from qagen.train import loop as train_loop
from qagen.train.config import EvaluateConfig
from qagen.train.data import InMemoryEmbeddings
from qagen.train.evaluate import evaluate
from qagen.workdir import WorkDir
from tests.train.conftest import random_embeddings, write_qa_work

torch = pytest.importorskip("torch")


def config(lm: Path, **kw: object) -> TrainConfig:
    base: dict[str, object] = dict(lm=str(lm), steps=12, lr=1e-2, warmup_steps=2,
                                   adapter_layers=2, adapter_blocks=1, adapter_ffn_mult=2,
                                   log_every=1, save_every=4, threads=1)
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


@pytest.fixture
def qa(tmp_path: Path) -> tuple[WorkDir, InMemoryEmbeddings]:
    root, ids = write_qa_work(tmp_path / "w")
    return WorkDir(root), InMemoryEmbeddings(random_embeddings(ids), encoder_id="toy-encoder")


def run_facts(report: StageReport) -> TrainReport:
    """The train run's own report, carried in the stage report's details."""
    return TrainReport.model_validate(report.details)


def eval_facts(report: StageReport) -> EvalReport:
    return EvalReport.model_validate(report.details)


def losses(work: WorkDir, run: str) -> list[LossLogEntry]:
    path = work.root / "train" / run / "loss.jsonl"
    return [LossLogEntry.model_validate_json(x) for x in path.read_text().splitlines()]


def weights(work: WorkDir, run: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(work.root / "train" / run / "adapter.safetensors"))


@pytest.mark.parametrize("arch", ["mu_llama", "llark"])
def test_training_lowers_the_loss(tiny_lm: Path, qa, arch: str) -> None:  # type: ignore[no-untyped-def]
    work, emb = qa
    cfg = config(tiny_lm, arch=arch, run=arch, steps=60, lr=2e-2, log_every=10, save_every=100)
    stage = train(work, config=cfg, embeddings=emb, progress=False)
    assert (stage.stage, stage.shards, stage.shards_reused) == ("train", 1, 0)
    assert stage.items_in == 16 and stage.counted("split") == {"heldout": 4, "train": 12}
    report = run_facts(stage)
    log = losses(work, arch)
    assert [e.step for e in log] == [1, 10, 20, 30, 40, 50, 60]
    assert report.first_loss == log[0].loss
    assert report.last_loss == pytest.approx((log[-2].loss + log[-1].loss) / 2)  # steps 50, 60
    assert report.last_loss < 0.7 * report.first_loss
    # The noise-free measure: the same loss over every training example, before and after.
    assert report.train_loss_after < 0.7 * report.train_loss_before
    assert report.heldout_loss_before is not None and report.heldout_loss_after is not None
    assert report.encoder == "toy-encoder" and report.data.train_pairs == 12
    run = work.root / "train" / arch
    assert {p.name for p in run.iterdir()} >= {"adapter.safetensors", "config.json",
                                                 "loss.jsonl", "report.json", "README.md",
                                                 "split.json"}
    split = json.loads((run / "split.json").read_text())
    assert not set(split["train_clips"]) & set(split["eval_clips"])
    card = (run / "README.md").read_text()
    assert "toy-encoder" in card and "12 pairs over 6 clips" in card


class KilledError(Exception):
    pass


def test_killed_run_resumes_to_the_uninterrupted_result(tiny_lm: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    root_a, ids = write_qa_work(tmp_path / "a")
    root_b, _ = write_qa_work(tmp_path / "b")
    emb = InMemoryEmbeddings(random_embeddings(ids))
    cfg = config(tiny_lm, run="r", grad_accum=2)
    whole = WorkDir(root_a)
    train(whole, config=cfg, embeddings=emb, progress=False)

    broken = WorkDir(root_b)
    real_append = train_loop.append_loss

    def append_then_die(path: Path, entry: LossLogEntry) -> None:
        real_append(path, entry)
        if entry.step == 10:
            raise KilledError

    monkeypatch.setattr(train_loop, "append_loss", append_then_die)
    with pytest.raises(KilledError):
        train(broken, config=cfg, embeddings=emb, progress=False)
    run = broken.root / "train" / "r"
    assert not (run / "report.json").exists()
    assert [p.name for p in sorted((run / "checkpoints").iterdir())] == [
        "step-000004.pt", "step-000008.pt"]
    monkeypatch.setattr(train_loop, "append_loss", real_append)
    report = run_facts(train(broken, config=cfg, embeddings=emb, progress=False))
    assert report.resumed_from_step == 8
    assert losses(broken, "r") == losses(whole, "r")  # steps 9 and 10 not duplicated
    assert [e.step for e in losses(broken, "r")] == list(range(1, 13))
    wa, wb = weights(whole, "r"), weights(broken, "r")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_finished_run_is_reused_and_a_changed_config_supersedes_it(tiny_lm: Path, qa) -> None:  # type: ignore[no-untyped-def]
    work, emb = qa
    cfg = config(tiny_lm, run="once", steps=3, warmup_steps=1)
    first = train(work, config=cfg, embeddings=emb, progress=False)
    mtime = (work.root / "train" / "once" / "adapter.safetensors").stat().st_mtime_ns
    again = train(work, config=cfg.model_copy(update={"log_every": 2}), embeddings=emb,
                  progress=False)
    assert again.reused and not first.reused
    first, again = run_facts(first), run_facts(again)
    assert again.reused and again.last_loss == first.last_loss
    assert (work.root / "train" / "once" / "adapter.safetensors").stat().st_mtime_ns == mtime
    # New defaults or an edited config: the old run is kept aside, the new one trained.
    changed = run_facts(train(work, config=cfg.model_copy(update={"lr": 0.5}), embeddings=emb,
                              progress=False))
    assert not changed.reused and changed.fingerprint != first.fingerprint
    kept = work.root / "cache" / "train-superseded" / f"once-{first.fingerprint}"
    assert (kept / "adapter.safetensors").stat().st_mtime_ns == mtime
    assert json.loads((kept / "report.json").read_text())["fingerprint"] == first.fingerprint


def test_no_pairs_or_no_embeddings_stop_with_a_reason(tiny_lm: Path, qa, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    work, _ = qa
    with pytest.raises(ConfigError, match="no QA pairs"):
        train(WorkDir(tmp_path / "empty"), config=config(tiny_lm),
              embeddings=InMemoryEmbeddings({}))
    with pytest.raises(ConfigError, match="no training examples"):
        train(work, config=config(tiny_lm), embeddings=InMemoryEmbeddings({}), progress=False)
    with pytest.raises(ConfigError, match="qagen embed"):
        train(work, config=config(tiny_lm), progress=False)


def test_evaluate_writes_predictions_metrics_and_card(tiny_lm: Path, qa) -> None:  # type: ignore[no-untyped-def]
    work, emb = qa
    train(work, config=config(tiny_lm, run="ev", steps=4, warmup_steps=1), embeddings=emb,
          progress=False)
    calls: list[tuple[list[str], list[str]]] = []

    def scorer(preds: list[str], refs: list[str]) -> dict[str, float | None]:
        calls.append((preds, refs))
        return {"exact": sum(p == r for p, r in zip(preds, refs, strict=True)) / len(refs),
                "bleu": None}

    cfg = EvaluateConfig(max_new_tokens=5, batch_size=3, threads=1)
    stage = evaluate(work, run="ev", config=cfg, embeddings=emb, scorer=scorer)
    assert (stage.items_in, stage.items_out, stage.shards, stage.shards_reused) == (4, 4, 1, 0)
    report = eval_facts(stage)
    run = work.root / "train" / "ev"
    preds = [Prediction.model_validate_json(x)
             for x in (run / "eval" / "predictions.jsonl").read_text().splitlines()]
    split = json.loads((run / "split.json").read_text())
    assert len(preds) == report.pairs == 4
    assert {p.clip_id for p in preds} == set(split["eval_clips"])
    assert all(p.reference.startswith("It sits in A minor") for p in preds)
    # Adapter, LM alone, and (over two held-out clips) the adapter fed the other clip's audio.
    assert len(split["eval_clips"]) >= 2
    assert len(calls) == 3 and calls[0][1] == [p.reference for p in preds]
    assert calls[0][0] == [p.prediction for p in preds]
    assert {k: report.metrics[k] for k in ("exact", "bleu")} == {"exact": 0.0, "bleu": None}
    assert report.metrics["mir_key_n"] is not None and "mir_tempo_acc1" in report.metrics
    assert report.baseline_metrics is not None and report.shuffled_metrics is not None
    assert (run / "eval" / "baseline_predictions.jsonl").is_file()
    stored = json.loads((run / "eval" / "metrics.json").read_text())
    assert stored["metrics"] == report.metrics
    card = (run / "README.md").read_text()
    assert "| exact | 0.0000 |" in card and "| bleu | — |" in card
    again = evaluate(work, run="ev", config=cfg, embeddings=emb, scorer=scorer)
    assert again.reused and eval_facts(again).reused and len(calls) == 3
    assert "another clip's audio" in card
    assert "### MIR accuracy" in card and "| key accuracy | " in card
    # A run on random-weight embeddings says it cannot hear.
    from qagen.records.training import TrainReport
    from qagen.train.card import render_card
    from qagen.train.config import TrainConfig

    trained = TrainReport.model_validate_json((run / "report.json").read_text())
    cfg_t = TrainConfig.model_validate(json.loads((run / "config.json").read_text())["train"])
    assert "cannot hear" not in render_card(trained, config=cfg_t)
    random = trained.model_copy(update={"encoder_random_init": True})
    assert "cannot hear" in render_card(random, config=cfg_t)


def test_evaluate_refuses_an_unfinished_run(qa) -> None:  # type: ignore[no-untyped-def]
    work, emb = qa
    with pytest.raises(ConfigError, match="has not finished"):
        evaluate(work, run="nope", embeddings=emb, scorer=lambda p, r: {})


def test_copied_work_dir_trains_the_same(tiny_lm: Path, qa, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Seeded: the same config on the same data gives bit-identical adapters."""
    work, emb = qa
    cfg = config(tiny_lm, run="s", steps=3, warmup_steps=1)
    train(work, config=cfg, embeddings=emb, progress=False)
    other = WorkDir(tmp_path / "copy")
    shutil.copytree(work.root / "qa", other.root / "qa")
    train(other, config=cfg, embeddings=emb, progress=False)
    wa, wb = weights(work, "s"), weights(other, "s")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
