"""The vLLM backend on the packaged SmolLM2 (HF copy), in-process, on the CPU build of vLLM.

What it checks: a batch with two output schemas returns results in order with token counts,
every completed answer validates against its own pydantic model, a request vLLM refuses
(prompt longer than max_model_len) becomes an error result without sinking the batch (on the
streaming engine loop and on the chunked ``LLM.chat`` fallback), ``stream`` yields outputs as
they finish, takes requests put into the queue meanwhile and aborts the rest when closed early,
and version/config facts (MPT, data parallelism, chat templates) fail early with the fix in
the message.

Run in the vLLM venv (``bash scripts/venv-vllm.sh``)::

    .venv-vllm/bin/python -m pytest -m vllm tests/generate/test_backend_vllm.py

vLLM starts worker processes; nothing here runs at import time, so spawned children can
re-import this module safely. Set ``QAGEN_HOME`` to share the converted model between runs
(otherwise it is converted into a temporary folder, ~25 s). The unmarked tests at the top
need no vLLM and run in the main suite.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from qagen.errors import ConfigError, MissingDependencyError
from qagen.generate.backends import (
    BackendConfig,
    GenRequest,
    GenResult,
    RequestQueue,
    SamplingConfig,
)
from qagen.generate.backends.vllm import check_model_supported
from qagen.model_cache import PACKAGED_MODEL, resolve_model
from qagen.records.qa import Caption, QAPairs

HAS_VLLM = importlib.util.find_spec("vllm") is not None
skip_without_vllm = pytest.mark.skipif(
    not HAS_VLLM, reason="vllm not importable: bash scripts/venv-vllm.sh"
)


# -- no vLLM needed --------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["mosaicml/mpt-7b", "mosaicml/mpt-7b-instruct", "MPT-7B",
                                   "/models/mpt_7b"])
def test_mpt_is_refused_after_vllm_0_28(model: str) -> None:
    with pytest.raises(ConfigError, match=r"MPT-7B needs vLLM ≤ 0\.28.*pin vllm==0\.28\.0"):
        check_model_supported(model, vllm_version="0.32.0")


@pytest.mark.parametrize("version", ["0.28.0", "0.27.1", "0.12.0"])
def test_mpt_is_allowed_up_to_vllm_0_28(version: str) -> None:
    check_model_supported("mosaicml/mpt-7b", vllm_version=version)


@pytest.mark.parametrize("model", ["meta-llama/Llama-2-7b-chat-hf", "prompt-tuned/llama",
                                   PACKAGED_MODEL])
def test_non_mpt_models_pass(model: str) -> None:
    check_model_supported(model, vllm_version="0.32.0")


def test_local_folder_with_mpt_config_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "my-checkpoint"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "mpt"}))
    with pytest.raises(ConfigError, match="MPT-7B needs vLLM"):
        check_model_supported(str(folder), vllm_version="0.32.0+cpu")


def test_missing_vllm_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    from qagen.generate.backends import load_backend

    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm → ImportError
    with pytest.raises(MissingDependencyError, match=r"pip install 'qagen\[vllm\]'.*venv-vllm"):
        load_backend(BackendConfig(backend="vllm"))


# -- the engine ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def qagen_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """QAGEN_HOME holding the converted SmolLM2: the caller's if set, else a temporary one."""
    if not HAS_VLLM:
        pytest.skip("vllm not importable: bash scripts/venv-vllm.sh")
    home = Path(os.environ.get("QAGEN_HOME") or tmp_path_factory.mktemp("qagen_home"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QAGEN_HOME", str(home))
        resolve_model(PACKAGED_MODEL)
        yield home


def make_config(**overrides: object) -> BackendConfig:
    """The CPU test configuration: eager mode and a 1024-token context start in ~30 s."""
    values: dict[str, object] = {
        "backend": "vllm", "model": PACKAGED_MODEL, "max_model_len": 1024, "enforce_eager": True,
    }
    values.update(overrides)
    return BackendConfig(**values)


@pytest.fixture(scope="module")
def backend(qagen_home: Path) -> Iterator[object]:
    """One engine shared by the generation tests (closed at the end: its workers exit)."""
    from qagen.generate.backends import load_backend

    b = load_backend(make_config())
    yield b
    b.close()


def make_request(i: int, *, max_tokens: int = 512, user: str | None = None) -> GenRequest:
    """Even i: two QA pairs (QAPairs); odd i: a caption (Caption). Seed = i."""
    output = QAPairs if i % 2 == 0 else Caption
    task = ("Write two short question-answer pairs about it."
            if output is QAPairs else "Write a one-sentence caption of it.")
    content = user or f"Clip: solo piano, {60 + 10 * i} BPM, key of A minor, calm mood. {task}"
    return GenRequest(
        request_id=f"req{i}",
        messages=[{"role": "system",
                   "content": "You are a music expert. Reply with compact JSON only."},
                  {"role": "user", "content": content}],
        json_schema=output.model_json_schema(),
        sampling=SamplingConfig(max_tokens=max_tokens),
        seed=i,
    )


def output_model(request: GenRequest) -> type[QAPairs] | type[Caption]:
    return QAPairs if request.json_schema["title"] == "QAPairs" else Caption


@pytest.fixture(scope="module")
def batch(backend: object) -> tuple[list[GenRequest], list[GenResult]]:
    """Eight requests, two schemas interleaved, decoded in one stream."""
    requests = [make_request(i) for i in range(8)]
    return requests, backend.generate(requests)


@pytest.mark.vllm
@skip_without_vllm
def test_batch_results_in_order_with_token_counts(
    batch: tuple[list[GenRequest], list[GenResult]],
) -> None:
    requests, results = batch
    assert [r.request_id for r in results] == [r.request_id for r in requests]
    for result in results:
        assert result.error is None
        assert result.finish_reason in {"stop", "length"}
        assert result.prompt_tokens and result.prompt_tokens > 20
        assert result.completion_tokens and result.completion_tokens > 0


@pytest.mark.vllm
@skip_without_vllm
def test_every_completed_output_validates_against_its_own_model(
    batch: tuple[list[GenRequest], list[GenResult]],
) -> None:
    requests, results = batch
    completed = [(q, r) for q, r in zip(requests, results, strict=True)
                 if r.finish_reason == "stop"]
    # A 135M model may loop on whitespace, which the JSON grammar allows, until max_tokens;
    # the stage rejects those as `truncated`. Measured: 8/8 complete at these seeds.
    assert len(completed) >= 7, [r.finish_reason for r in results]
    for request, result in completed:
        output_model(request).model_validate_json(result.text)
    kinds = {output_model(q).__name__ for q, _ in completed}
    assert kinds == {"QAPairs", "Caption"}


@pytest.mark.vllm
@skip_without_vllm
@pytest.mark.parametrize("engine_streaming", [True, False], ids=["engine-loop", "chat-chunks"])
def test_too_long_prompt_is_an_error_result_and_the_rest_still_generate(
    backend: object, monkeypatch: pytest.MonkeyPatch, engine_streaming: bool
) -> None:
    monkeypatch.setattr(backend, "_engine_streaming", engine_streaming)
    long_user = "Describe this piano piece in detail. " * 250  # ~2000 tokens > max_model_len
    requests = [make_request(1, max_tokens=48), make_request(3, max_tokens=48, user=long_user),
                make_request(5, max_tokens=48)]
    results = backend.generate(requests)
    assert [r.request_id for r in results] == ["req1", "req3", "req5"]
    assert results[1].finish_reason == "error"
    assert re.search(r"maximum (context|model) length", results[1].error or "")
    for good in (results[0], results[2]):
        assert good.error is None and good.completion_tokens


@pytest.mark.vllm
@skip_without_vllm
def test_stream_yields_outputs_as_they_finish_and_takes_requests_put_meanwhile(
    backend: object,
) -> None:
    engine = backend._llm.llm_engine  # type: ignore[attr-defined]
    requests = [make_request(0, max_tokens=16), *(make_request(i) for i in (1, 2, 3))]
    late = make_request(5, max_tokens=48)
    queue = RequestQueue(requests)
    results: list[GenResult] = []
    still_generating: list[int] = []
    for result in backend.stream(queue):  # type: ignore[attr-defined]
        still_generating.append(engine.get_num_unfinished_requests())
        if not results:
            queue.put(late)  # as the stage does with a retry
        results.append(result)
    # req0 (16 tokens at most) came out while the three longer ones were still generating.
    assert results[0].request_id == "req0" and still_generating[0] == 3
    assert sorted(r.request_id for r in results) == ["req0", "req1", "req2", "req3", "req5"]
    assert all(r.error is None and r.completion_tokens for r in results), results
    assert not engine.has_unfinished_requests()


@pytest.mark.vllm
@skip_without_vllm
@pytest.mark.parametrize("how", ["close", "interrupt"])
def test_closing_a_stream_early_aborts_the_rest_and_the_engine_stays_usable(
    backend: object, how: str
) -> None:
    engine = backend._llm.llm_engine  # type: ignore[attr-defined]
    queue = RequestQueue([make_request(0, max_tokens=16), make_request(1), make_request(2)])
    stream = backend.stream(queue)  # type: ignore[attr-defined]
    first = next(stream)
    assert first.request_id == "req0" and engine.get_num_unfinished_requests() == 2
    if how == "close":
        stream.close()
    else:
        with pytest.raises(KeyboardInterrupt):
            stream.throw(KeyboardInterrupt)
    assert list(stream) == []
    assert engine.get_num_unfinished_requests() == 0  # req1, req2 aborted, not left running
    requests = [make_request(3, max_tokens=48), make_request(4, max_tokens=48)]
    results = backend.generate(requests)  # type: ignore[attr-defined]
    assert [r.request_id for r in results] == ["req3", "req4"]
    assert all(r.error is None and r.completion_tokens for r in results), results


@pytest.mark.vllm
@skip_without_vllm
def test_mpt_model_is_refused_before_any_download() -> None:
    from qagen.generate.backends import load_backend

    with pytest.raises(ConfigError, match=r"MPT-7B needs vLLM ≤ 0\.28 \(MPT support was removed"):
        load_backend(make_config(model="mosaicml/mpt-7b"))


@pytest.mark.vllm
@skip_without_vllm
def test_offline_data_parallel_is_a_config_error_naming_the_alternatives(
    qagen_home: Path,
) -> None:
    from qagen.generate.backends import load_backend

    with pytest.raises(ConfigError, match=r"data_parallel_size=2.*--data-parallel-size"):
        load_backend(make_config(data_parallel_size=2))


@pytest.fixture(scope="module")
def templateless_model(qagen_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of SmolLM2 without its chat template: stands in for Llama-2 base or MPT."""
    source = Path(resolve_model(PACKAGED_MODEL))
    target = tmp_path_factory.mktemp("templateless") / "model"
    target.mkdir()
    for item in source.iterdir():
        if item.name == "chat_template.jinja":
            continue
        if item.name == "tokenizer_config.json":
            config = json.loads(item.read_text())
            config.pop("chat_template", None)
            (target / item.name).write_text(json.dumps(config))
        else:
            (target / item.name).symlink_to(item)
    return target


@pytest.mark.vllm
@skip_without_vllm
def test_model_without_chat_template_is_refused_before_loading(templateless_model: Path) -> None:
    from qagen.generate.backends import load_backend

    with pytest.raises(ConfigError, match=r"has no chat template.*set chat_template"):
        load_backend(make_config(model=str(templateless_model)))


@pytest.mark.vllm
@skip_without_vllm
def test_chat_template_file_from_config_is_used(
    templateless_model: Path, tmp_path: Path
) -> None:
    from qagen.generate.backends import load_backend

    chatml = Path(resolve_model(PACKAGED_MODEL)) / "chat_template.jinja"
    template = tmp_path / "chatml.j2"
    template.write_text(chatml.read_text())
    backend = load_backend(make_config(model=str(templateless_model),
                                       chat_template=str(template)))
    try:
        requests = [make_request(1), make_request(3)]
        results = backend.generate(requests)
    finally:
        backend.close()
    for request, result in zip(requests, results, strict=True):
        assert result.finish_reason == "stop", result
        output_model(request).model_validate_json(result.text)


# -- the generate stage on vLLM: the LLM families behind every screen, the gate included ----


def labelled_work(root: Path, *, clips: int) -> object:
    """A work dir from the calibration set's clips and measurements (no audio, no madmom:
    this venv has neither)."""
    from qagen.manifest import write_records
    from qagen.records import Clip, ClipFeatures
    from qagen.workdir import WorkDir

    rows = [json.loads(line) for line in
            (Path(__file__).parent / "data" / "gate_clips.jsonl").read_text().splitlines()]
    rows = [r for r in rows if r["clip"]["source"] == "musiccaps"][:clips]
    work = WorkDir(root)
    key = WorkDir.shard_key("musiccaps", 0)
    write_records(work.manifest_shard("clips", key), [Clip(**r["clip"]) for r in rows], Clip)
    write_records(work.manifest_shard("features", key),
                  [ClipFeatures(**r["features"]) for r in rows], ClipFeatures)
    return work


@pytest.mark.vllm
def test_stage_on_vllm_keeps_only_pairs_that_pass_the_gate(backend: object,
                                                           tmp_path: Path) -> None:
    from qagen.config import GenerateConfig
    from qagen.generate.filters import load_banned_phrases
    from qagen.generate.grounding import Finding
    from qagen.generate.screen import screen_pair
    from qagen.generate.stage import generate
    from qagen.manifest import iter_manifest, read_records
    from qagen.records import Clip, ClipFeatures
    from qagen.records.qa import GenerateReason, QARecord, QARejected

    work = labelled_work(tmp_path / "w", clips=2)
    config = GenerateConfig(templates=["paraphrase", "llark_mir", "musicqa_describe"],
                            paraphrase_per_clip=2)
    report = generate(work, config=config, backend=backend,  # type: ignore[arg-type]
                      backend_config=make_config())
    recs = list(iter_manifest(sorted((work.root / "qa").glob("*.parquet")), QARecord))
    rejected = list(iter_manifest(sorted((work.root / "qa_rejected").glob("*.parquet")),
                                  QARejected))
    assert report.requests == 2 * (2 + 1 + 1) and report.generated >= report.requests
    assert {r.template_id for r in recs} >= {"facts"}
    assert {x.reason for x in rejected} <= set(GenerateReason)
    # Every pair a model wrote and the stage kept passes the screens and the gate again.
    clips = {c.clip_id: c for c in read_records(work.manifest_shards("clips")["musiccaps-00000"],
                                                Clip)}
    feats = {f.clip_id: f for f in read_records(
        work.manifest_shards("features")["musiccaps-00000"], ClipFeatures)}
    banned = load_banned_phrases()
    for r in recs:
        if r.template_id != "facts":
            from qagen.records.qa import QAItem

            item = QAItem(question=r.question, answer=r.answer, kind=r.kind)
            assert not isinstance(screen_pair(item, clip=clips[r.clip_id],
                                              features=feats[r.clip_id], banned=banned),
                                  Finding), r
            assert r.backend == "vllm" and r.model_id == backend.model_id  # type: ignore[attr-defined]
