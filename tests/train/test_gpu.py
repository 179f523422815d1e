"""On CUDA the same stage runs the LM in bf16 with bf16 autocast (how Llama-2-7B trains)."""

from __future__ import annotations

from pathlib import Path

import pytest

from qagen.records.training import EvalReport, TrainReport
from qagen.train import TrainConfig, train
from qagen.train.config import EvaluateConfig
from qagen.train.data import InMemoryEmbeddings
from qagen.train.evaluate import evaluate
from qagen.workdir import WorkDir
from tests.train.conftest import random_embeddings, write_qa_work

torch = pytest.importorskip("torch")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.mark.parametrize("arch", ["mu_llama", "llark"])
def test_bf16_training_and_evaluation_on_cuda(tiny_lm: Path, tmp_path: Path, arch: str) -> None:
    root, ids = write_qa_work(tmp_path)
    emb = InMemoryEmbeddings(random_embeddings(ids))
    cfg = TrainConfig(lm=str(tiny_lm), arch=arch, run=arch, steps=40, lr=2e-2, warmup_steps=2,
                      adapter_layers=2, adapter_blocks=1, adapter_ffn_mult=2, device="cuda")
    report = TrainReport.model_validate(
        train(WorkDir(root), config=cfg, embeddings=emb, progress=False).details)
    assert report.device.startswith("cuda")
    expected = "bf16-autocast" if torch.cuda.is_bf16_supported() else "fp32"
    assert report.precision == expected
    assert report.last_loss is not None and report.last_loss < report.first_loss
    ev = evaluate(WorkDir(root), run=arch, embeddings=emb,
                  config=EvaluateConfig(max_new_tokens=4, device="cuda"),
                  scorer=lambda p, r: {"n": float(len(p))})
    assert EvalReport.model_validate(ev.details).metrics == {"n": 4.0}
