"""``qagen``: parse arguments, call the stage functions, print a summary. No logic lives here."""

from __future__ import annotations

import errno
import json
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from qagen.errors import ConfigError, QagenError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Turn music datasets into grounded MusicQA / instruction data.",
)
console = Console(stderr=True)
out = Console()


def parse_option_pairs(pairs: list[str]) -> dict[str, Any]:
    """``["cropped=false", "crop_s=30"]`` → ``{"cropped": False, "crop_s": 30}``.

    Values are read as JSON when they parse (numbers, true/false, null, lists), else as text.
    """
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--option wants KEY=VALUE, got {pair!r}")
        try:
            options[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            options[key.strip()] = value
    return options


@contextmanager
def _spinner(label: str, unit: str) -> Iterator[Callable[..., None]]:
    """A transient spinner ``label · N unit · elapsed``; yields ``tick(completed=None)``:
    advance by one, or set the count."""
    with Progress(SpinnerColumn(), TextColumn(f"[bold]{label}"),
                  TextColumn(f"{{task.completed}} {unit}"), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task(label, total=None)

        def tick(completed: int | None = None) -> None:
            if completed is None:
                progress.advance(task)
            else:
                progress.update(task, completed=completed)

        yield tick


@contextmanager
def _progress_bar(label: str) -> Iterator[Any]:
    """A transient bar ``label ━━━ done/total unit · tok/s · ETA``; yields a progress sink
    for a stage's ``progress=`` argument."""
    from qagen.progress import ProgressSink, ProgressState, format_seconds

    with Progress(SpinnerColumn(), TextColumn(f"[bold]{label}"), BarColumn(),
                  MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                  TimeElapsedColumn(), console=console, transient=True) as progress:
        task = progress.add_task(label, total=None, rate="")

        def update(state: ProgressState) -> None:
            eta = state.eta_s
            rate = " · ".join(x for x in (
                f"{state.tokens_per_s:.0f} tok/s" if state.tokens else "",
                f"ETA {format_seconds(eta)}" if eta else "") if x)
            progress.update(task, completed=state.done, total=state.total or None, rate=rate)

        yield ProgressSink(update, every_s=0.2)


def _stage_table(title: str, report: Any, *, items_in: str, items_out: str) -> Table:
    """Every stage's summary, from its ``StageReport``: in/out, labels, reasons, extras,
    reuse, seconds (the rows the flow posts too); ``items_in``/``items_out`` name the units."""
    table = Table(title=title)
    table.add_column("what")
    table.add_column("count", justify="right")
    names = {"items in": items_in, "items out": items_out}
    for what, value in report.rows():
        table.add_row(names.get(what, what), value)
    return table


def _check_device(value: str) -> str:
    """Option callback: ``--device cuda`` without a GPU fails while parsing, before the
    command (and its work-dir lock) starts."""
    from qagen.devices import resolve_device

    resolve_device(value)
    return value


def _check_dtype(value: str) -> str:
    """Option callback: a compute dtype name (auto|fp32|fp16|bf16), checked while parsing."""
    from qagen.devices import resolve_dtype

    resolve_dtype(value, device="cpu")
    return value


def _check_batch_size(value: str) -> str:
    """Option callback: ``auto`` or a positive number of windows, checked while parsing."""
    if value != "auto" and not (value.isdigit() and int(value) >= 1):
        raise ConfigError(f"--batch-size {value!r}: use 'auto' or a number ≥ 1")
    return value


def _check_frame_layer(value: str) -> str:
    """Option callback: ``mean`` or a hidden-state index, checked while parsing."""
    if value != "mean" and not value.lstrip("-").isdigit():
        raise ConfigError(f"--frame-layer {value!r}: use 'mean' or a hidden-state index")
    return value


def _writes_work(command: Callable[..., None]) -> Callable[..., None]:
    """Run a command that writes ``--work`` under the work dir's one-writer lock."""
    import functools

    @functools.wraps(command)
    def locked(*args: Any, **kwargs: Any) -> None:
        from qagen.lock import work_lock

        with work_lock(Path(kwargs["work"]), command=f"qagen {command.__name__}"):
            command(*args, **kwargs)

    return locked


@app.callback()
def _setup(verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    from qagen.redact import install

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[install(RichHandler(console=console, show_path=False))],
    )


@app.command()
@_writes_work
def ingest(
    source: Annotated[str, typer.Argument(help="Source name (see `qagen sources`).")],
    root: Annotated[Path, typer.Argument(help="Dataset root in the source's native layout.")],
    work: Annotated[Path, typer.Option(help="Work directory.")] = Path("work"),
    option: Annotated[list[str] | None, typer.Option(help="Source option KEY=VALUE.")] = None,
    shard_size: Annotated[int, typer.Option(min=1, help="Clips per manifest shard.")] = 500,
    check_audio: Annotated[bool, typer.Option(help="Look for each audio file.")] = True,
    hash_audio: Annotated[bool, typer.Option(help="Record each file's sha256.")] = False,
    allow_empty: Annotated[bool, typer.Option(
        help="Accept metadata without rows (empties the source's manifest).")] = False,
) -> None:
    """Read a dataset's native files into WORK/manifests/clips-SOURCE-*.parquet."""
    from qagen.ingest import ingest as run_ingest
    from qagen.workdir import WorkDir

    with _spinner(f"ingest {source}", "clips") as tick:
        report = run_ingest(
            source,
            root,
            work=WorkDir(work),
            options=parse_option_pairs(option or []),
            shard_size=shard_size,
            check_audio=check_audio,
            hash_audio=hash_audio,
            on_progress=tick,
            allow_empty=allow_empty,
        )
    out.print(_stage_table(f"ingest {source}", report, items_in="rows read",
                           items_out="clips"))
    if report.counted("audio").get("missing"):
        out.print(f"missing audio listed in {WorkDir(work).missing_audio_list(source)}")


@app.command()
@_writes_work
def augment(
    work: Annotated[Path, typer.Option(help="Work directory (after ingest).")] = Path("work"),
    workers: Annotated[int, typer.Option(min=1, help="Worker processes, one thread each.")] = 2,
    cache: Annotated[bool, typer.Option(help="Reuse measurements by audio hash.")] = True,
    max_duration_s: Annotated[
        float | None, typer.Option(help="Analyse at most this much of each clip.")
    ] = None,
) -> None:
    """Measure tempo, beats/downbeats/meter, key, chords, loudness → manifests/features-*."""
    from qagen.augment.stage import augment as run_augment
    from qagen.config import AugmentConfig
    from qagen.workdir import WorkDir

    wd = WorkDir(work)
    total = sum(1 for _ in wd.manifest_shards("clips"))
    with _spinner("augment", "clips") as tick:
        report = run_augment(
            wd,
            config=AugmentConfig(max_duration_s=max_duration_s),
            workers=workers,
            cache=cache,
            on_item=tick,
        )
    out.print(_stage_table(f"augment ({total} shards)", report, items_in="clips in",
                           items_out="feature rows"))


@app.command("eval-augment")
def eval_augment(
    truth: Annotated[Path, typer.Option(help="truth.jsonl (the demo corpus writes one).")],
    work: Annotated[Path, typer.Option(help="Work directory (after augment).")] = Path("work"),
    out_json: Annotated[Path | None, typer.Option("--out", help="Write scores as JSON.")] = None,
    split: Annotated[str | None, typer.Option(
        help="Score only truth rows of this split (the hard set: dev or test).")] = None,
) -> None:
    """Score the features against ground truth with mir_eval (tempo, key, chords, beats)."""
    from qagen.augment.evaluate import evaluate_augment
    from qagen.manifest import write_json_atomic
    from qagen.workdir import WorkDir

    scores = evaluate_augment(WorkDir(work), truth, split=split)
    table = Table(
        title=f"augment vs truth ({scores.clips_scored} clips, "
        f"{scores.clips_missing} without features)"
    )
    for col in ("metric", "qagen", "bare madmom", "librosa"):
        table.add_column(col, justify="right" if col != "metric" else "left")
    table.add_row("tempo Acc1 (4 %)", f"{scores.tempo_acc1:.3f}",
                  f"{scores.tempo_acc1_tcn_only:.3f}", f"{scores.tempo_acc1_librosa:.3f}")
    table.add_row("tempo Acc2", f"{scores.tempo_acc2:.3f}", f"{scores.tempo_acc2_tcn_only:.3f}",
                  f"{scores.tempo_acc2_librosa:.3f}")
    table.add_row("key (MIREX weighted)", f"{scores.key_weighted:.3f}",
                  f"{scores.key_weighted_cnn_only:.3f}", "-")
    # Chords are madmom's CRF as it decodes them; beats, downbeats and meter are re-gridded by
    # the stage (chord-change bars, 6/8), so bare madmom's own are not scored here.
    table.add_row("chords majmin", f"{scores.chords_majmin:.3f}", "same", "-")
    table.add_row("beat F", f"{scores.beat_f:.3f}", "not scored", "-")
    table.add_row("downbeat F", f"{scores.downbeat_f:.3f}", "not scored", "-")
    table.add_row("meter accuracy", f"{scores.meter_accuracy:.3f}", "not scored", "-")
    if scores.time_signature_accuracy is not None:
        table.add_row("time signature", f"{scores.time_signature_accuracy:.3f}", "-", "-")
    if scores.music_accuracy is not None:
        table.add_row("music / not music", f"{scores.music_accuracy:.3f}", "-", "-")
    if scores.nonmusic_withheld is not None:
        table.add_row("not music: key+tempo withheld", f"{scores.nonmusic_withheld:.3f}", "-",
                      "-")
    out.print(table)
    target = out_json or WorkDir(work).reports / "eval-augment.json"
    write_json_atomic(target, scores.model_dump(mode="json"))
    out.print(f"scores written to {target}")


@app.command()
@_writes_work
def generate(
    work: Annotated[Path, typer.Option(help="Work directory (after augment).")] = Path("work"),
    backend: Annotated[str, typer.Option(help="transformers|vllm|openai|llamacpp")] = (
        "transformers"
    ),
    model: Annotated[str, typer.Option(help="HF id, local dir, or the packaged default.")] = (
        "smollm2-135m-instruct"
    ),
    templates: Annotated[str | None, typer.Option(
        help="Comma-separated LLM template ids, 'all', or 'none' (default: paraphrase)."
    )] = None,
    facts: Annotated[bool, typer.Option(help="Write the facts family (no LLM).")] = True,
    paraphrase_per_clip: Annotated[int, typer.Option(min=0,
        help="Facts pairs per clip the paraphrase family rewrites.")] = 2,
    gate: Annotated[bool, typer.Option(help="Apply the quality gate.")] = True,
    judge: Annotated[str | None, typer.Option(
        help="LLM judge template id (e.g. judge); scores every LLM pair.")] = None,
    judge_min_score: Annotated[float, typer.Option(min=1.0, max=5.0,
        help="Mean judge score (1-5) a pair needs.")] = 3.5,
    batch_size: Annotated[int, typer.Option(min=1, help="Requests per forward batch.")] = 8,
    base_url: Annotated[str | None, typer.Option(help="openai backend: server URL.")] = None,
    server_kind: Annotated[str, typer.Option(help="openai backend: vllm|llamacpp|openai.")] = (
        "vllm"
    ),
    tensor_parallel_size: Annotated[int, typer.Option(min=1, help="vllm: GPUs per replica.")] = 1,
    device: Annotated[str, typer.Option(
        help="transformers backend: auto|cpu|cuda|cuda:N", callback=_check_device)] = "auto",
    dtype: Annotated[str, typer.Option(
        callback=_check_dtype,
        help="transformers/vllm weights dtype: auto|fp32|fp16|bf16 (auto = bf16 on CUDA)."
    )] = "auto",
    concurrency: Annotated[int, typer.Option(
        min=1, help="openai backend: requests in flight.")] = 8,
    timeout_s: Annotated[float, typer.Option(
        min=0.1, help="openai backend: seconds to wait for one answer.")] = 120.0,
    connect_timeout_s: Annotated[float, typer.Option(
        min=0.1, help="openai backend: seconds to connect (a dead server fails fast).")] = 10.0,
    max_retries: Annotated[int, typer.Option(
        min=0, help="openai backend: tries after the first, per request.")] = 4,
    max_clips_per_shard: Annotated[int | None, typer.Option(min=1, help="Quick runs.")] = None,
    max_tokens: Annotated[int | None, typer.Option(min=16,
        help="Completion token limit (default: each template's output length bound)."
    )] = None,
    temperature: Annotated[float, typer.Option(min=0.0, max=2.0)] = 0.7,
    seed: Annotated[int, typer.Option()] = 0,
    cache: Annotated[bool, typer.Option(help="Reuse cached completions.")] = True,
) -> None:
    """Generate QA / instruction pairs with an LLM → WORK/qa/*.parquet (+ qa_rejected/)."""
    from qagen.config import GenerateConfig
    from qagen.generate.backends import BackendConfig
    from qagen.generate.stage import check_answered
    from qagen.generate.stage import generate as run_generate
    from qagen.workdir import WorkDir

    chosen: dict[str, list[str] | None] = {}
    if templates == "all":
        chosen["templates"] = None
    elif templates == "none":
        chosen["templates"] = []
    elif templates:
        chosen["templates"] = [t.strip() for t in templates.split(",") if t.strip()]
    cfg = GenerateConfig(
        **chosen, facts=facts, paraphrase_per_clip=paraphrase_per_clip, gate=gate, judge=judge,
        judge_min_score=judge_min_score,
        max_clips_per_shard=max_clips_per_shard,
        max_tokens=max_tokens,
        temperature=temperature,
        seed=seed,
    )
    bcfg = BackendConfig(
        backend=backend,
        model=model,
        batch_size=batch_size,
        base_url=base_url,
        server_kind=server_kind,
        tensor_parallel_size=tensor_parallel_size,
        device=device,
        dtype=dtype,
        concurrency=concurrency,
        timeout_s=timeout_s,
        connect_timeout_s=connect_timeout_s,
        max_retries=max_retries,
    )
    with _progress_bar("generate") as sink:
        report = run_generate(
            WorkDir(work), config=cfg, backend_config=bcfg, cache=cache, progress=[sink],
        )
    table = Table(
        title=f"generate ({report.seconds:.1f} s, backend {report.backend_seconds:.1f} s)"
    )
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("clips", str(report.clips))
    table.add_row("requests (cache hits)", f"{report.requests} ({report.cache_hits})")
    table.add_row("valid on first try", f"{report.first_try_valid_rate:.1%}")
    table.add_row("accepted pairs", str(report.accepted))
    table.add_row("verified pairs", str(report.verified))
    for template_id, n in sorted(report.by_template.items()):
        table.add_row(f"  family {template_id}", str(n))
    for form, n in sorted(report.by_form.items()):
        table.add_row(f"  form {form}", str(n))
    if report.judged:
        table.add_row("judged", str(report.judged))
    for kind, n in sorted(report.by_kind.items()):
        table.add_row(f"  kind {kind}", str(n))
    for reason, n in sorted(report.rejected.items()):
        table.add_row(f"rejected: {reason}", str(n))
    for reason, n in sorted(report.skipped.items()):
        table.add_row(f"skipped: {reason}", str(n))
    table.add_row("completion tokens", str(report.completion_tokens))
    if report.unanswered:
        table.add_row("[red]unanswered (backend errors)", str(report.unanswered))
    out.print(table)
    check_answered(report)


@app.command()
@_writes_work
def embed(
    work: Annotated[Path, typer.Option(help="Work directory (after ingest).")] = Path("work"),
    encoder: Annotated[str, typer.Option(
        help="auto (a cached MERT, else qagen/madmom-features), a cached HF id "
             "(m-a-p/MERT-v1-95M), a local folder, or qagen/mert-tiny-random (random weights)."
    )] = "auto",
    revision: Annotated[str | None, typer.Option(help="Hub revision of --encoder.")] = None,
    chunk_s: Annotated[float, typer.Option(min=0.1, help="Encoder window, seconds.")] = 5.0,
    batch_size: Annotated[str, typer.Option(
        callback=_check_batch_size,
        help="Windows per forward pass, or auto (8 on the CPU, sized by free GPU memory).")] = (
        "auto"),
    frame_rate_hz: Annotated[float, typer.Option(min=0.0,
        help="Also store a time sequence at this rate; 0 = none.")] = 10.0,
    frame_layer: Annotated[str, typer.Option(
        callback=_check_frame_layer, help="Hidden state index, or 'mean'.")] = "mean",
    threads: Annotated[int | None, typer.Option(
        min=1, help="torch threads (default: all cores).")] = None,
    device: Annotated[str, typer.Option(help="auto|cpu|cuda|cuda:N",
                                        callback=_check_device)] = "auto",
    dtype: Annotated[str, typer.Option(
        callback=_check_dtype,
        help="Encoder compute dtype: auto|fp32|fp16|bf16 (auto = bf16 on a CUDA GPU that "
             "has it, else fp32); stored arrays stay fp16.")] = "auto",
    cache: Annotated[bool, typer.Option(help="Reuse embeddings by audio hash.")] = True,
) -> None:
    """Embed every clip (MERT or madmom features) → WORK/embeddings/ (+ index.parquet)."""
    from qagen.embed.choice import choose_encoder
    from qagen.embed.config import EmbedConfig
    from qagen.embed.stage import embed as run_embed
    from qagen.workdir import WorkDir

    encoder = choose_encoder(encoder)
    cfg = EmbedConfig(
        encoder=encoder, revision=revision, chunk_s=chunk_s,
        batch_size="auto" if batch_size == "auto" else int(batch_size),
        frame_rate_hz=frame_rate_hz or None,
        frame_layer="mean" if frame_layer == "mean" else int(frame_layer),
        threads=threads, device=device, compute_dtype=dtype,  # type: ignore[arg-type]
    )
    with _spinner("embed", "clips") as tick:
        report = run_embed(WorkDir(work), config=cfg, cache=cache,
                           on_item=tick)
    out.print(_stage_table(f"embed (encoder {encoder})", report, items_in="clips in",
                           items_out="clips embedded"))
    out.print(f"index: {WorkDir(work).embedding_index}")


@app.command()
@_writes_work
def train(
    work: Annotated[Path, typer.Option(help="Work directory (after generate + embed).")] = Path(
        "work"),
    run: Annotated[str, typer.Option(help="Run name → WORK/train/RUN/.")] = "demo",
    arch: Annotated[str, typer.Option(help="mu_llama|llark")] = "mu_llama",
    lm: Annotated[str, typer.Option(help="Frozen LM: HF id, dir, or packaged default.")] = (
        "smollm2-135m-instruct"),
    steps: Annotated[int, typer.Option(min=1)] = 300,
    batch_size: Annotated[int, typer.Option(min=1)] = 4,
    grad_accum: Annotated[int, typer.Option(min=1)] = 1,
    lr: Annotated[float, typer.Option()] = 3e-3,
    adapter_layers: Annotated[int, typer.Option(
        min=1, help="Last N LM layers with the adapter (capped at the LM's depth); MU-LLaMA: 20"
                    " of Llama-2-7B's 32.")] = 32,
    prefix_len: Annotated[int, typer.Option(
        min=1, help="Adapter prefix queries per layer (MU-LLaMA: 1).")] = 10,
    seed: Annotated[int, typer.Option()] = 0,
    threads: Annotated[int | None, typer.Option(min=1, help="CPU threads.")] = None,
    qa_kinds: Annotated[str | None, typer.Option(
        help="Train and evaluate on these QA kinds only, comma-separated (e.g. the MIR ones: "
             "key,tempo,rhythm,instrumentation,genre); default every pair.")] = None,
) -> None:
    """Train a MU-LLaMA adapter / LLark projector on WORK/qa with precomputed embeddings."""
    from qagen.train import TrainConfig
    from qagen.train import train as run_train
    from qagen.workdir import WorkDir

    chosen = [k.strip() for k in qa_kinds.split(",") if k.strip()] if qa_kinds else None
    cfg = TrainConfig(run=run, arch=arch, lm=lm, steps=steps, batch_size=batch_size,
                      grad_accum=grad_accum, lr=lr, adapter_layers=adapter_layers,
                      prefix_len=prefix_len, seed=seed,
                      threads=threads, qa_kinds=chosen)  # type: ignore[arg-type]
    report = run_train(WorkDir(work), config=cfg)
    out.print_json(report.model_dump_json())


@app.command()
@_writes_work
def evaluate(
    work: Annotated[Path, typer.Option(help="Work directory (after train).")] = Path("work"),
    run: Annotated[str, typer.Option(help="Run name under WORK/train/.")] = "demo",
    max_new_tokens: Annotated[int, typer.Option(min=1)] = 64,
    batch_size: Annotated[int, typer.Option(min=1)] = 8,
    baseline: Annotated[bool, typer.Option(help="Also score the LM alone.")] = True,
    shuffled_audio: Annotated[bool, typer.Option(
        help="Also score the adapter fed another clip's audio (the ablation).")] = True,
    max_pairs: Annotated[int | None, typer.Option(min=1,
        help="Answer at most this many held-out pairs, spread over clips.")] = None,
    threads: Annotated[int | None, typer.Option(min=1)] = None,
) -> None:
    """Answer the held-out questions with a trained run; write predictions, metrics, card."""
    from qagen.train.config import EvaluateConfig
    from qagen.train.evaluate import evaluate as run_eval
    from qagen.workdir import WorkDir

    report = run_eval(WorkDir(work), run=run, config=EvaluateConfig(
        max_new_tokens=max_new_tokens, batch_size=batch_size, baseline=baseline,
        shuffled_audio=shuffled_audio, max_pairs=max_pairs, threads=threads))
    out.print_json(report.model_dump_json())


@app.command()
@_writes_work
def publish(
    work: Annotated[Path, typer.Option(help="Work directory (after generate).")] = Path("work"),
    out_dir: Annotated[Path | None, typer.Option("--out", help="Default WORK/publish/hf.")] = None,
    repo_id: Annotated[str | None, typer.Option(help="owner/name, shown in the card.")] = None,
    push_to: Annotated[str | None, typer.Option(
        "--push", help="Also upload to this Hub dataset repo (token: HF_TOKEN or the HF login)."
    )] = None,
    public: Annotated[bool, typer.Option(help="With --push: create the repo public.")] = False,
    embed_audio: Annotated[bool, typer.Option(help="Add the clip audio (FLAC) to 'clips'.")] = (
        False
    ),
    export_audio: Annotated[bool, typer.Option(
        help="Write exports/audio/<clip_id>.wav for the MusicQA/LLaVA exports.")] = False,
    license_id: Annotated[str | None, typer.Option(
        "--license", help="Override the aggregated license id.")] = None,
    leakage: Annotated[str, typer.Option(help="report|error")] = "report",
    reviewed_only: Annotated[bool, typer.Option(
        help="Publish only pairs a curator accepted or edited (`qagen review`).")] = False,
) -> None:
    """Write a Hugging Face dataset folder (parquet configs, card, plots, exports); --push it."""
    from qagen.publish import PublishConfig, PublishReport
    from qagen.publish import publish as run_publish
    from qagen.publish import push as run_push
    from qagen.workdir import WorkDir

    report = run_publish(WorkDir(work), config=PublishConfig(
        out_dir=out_dir, repo_id=repo_id or push_to, embed_audio=embed_audio,
        export_audio=export_audio,
        license=license_id, leakage=leakage, reviewed_only=reviewed_only))
    facts = PublishReport.model_validate(report.details)
    out.print(_stage_table("publish", report, items_in="clips in", items_out="rows joined"))
    table = Table(title=f"published → {facts.out_dir}")
    for col in ("config", "split", "rows"):
        table.add_column(col)
    for cfg, splits in facts.configs.items():
        for split, n in splits.items():
            table.add_row(cfg, split, str(n))
    out.print(table)
    out.print(f"license {facts.license.hub_id}; {len(facts.files_written)} files written, "
              f"{len(facts.files_removed)} removed; leakage findings: {len(facts.leakage)}")
    if push_to:
        pushed = run_push(Path(facts.out_dir), repo_id=push_to, private=not public)
        out.print(f"pushed {pushed.files} files to {pushed.repo_url} ({pushed.commit_url})")


@app.command()
def push(
    repo_id: Annotated[str, typer.Argument(help="owner/name of the dataset repo.")],
    folder: Annotated[Path, typer.Option(help="Published folder.")] = Path("work/publish/hf"),
    public: Annotated[bool, typer.Option(help="Create the repo public.")] = False,
    revision: Annotated[str | None, typer.Option(help="Branch (default main).")] = None,
) -> None:
    """Upload a published folder to the Hub (token: HF_TOKEN or `hf auth login`)."""
    from qagen.publish import push as run_push

    report = run_push(folder, repo_id=repo_id, private=not public, revision=revision)
    out.print(f"pushed {report.files} files to {report.repo_url} ({report.commit_url})")


@app.command()
def review(
    work: Annotated[Path, typer.Option(help="Work directory (after generate).")] = Path("work"),
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port on 127.0.0.1.")] = 8765,
    reviewer: Annotated[str | None, typer.Option(
        help="Name decisions are signed with (default $QAGEN_REVIEWER or the login).")] = None,
) -> None:
    """Serve the curators' review page on 127.0.0.1: listen, accept / reject / edit pairs."""
    from qagen.review import serve
    from qagen.workdir import WorkDir

    out.print(f"review {work} at http://127.0.0.1:{port}/ (Ctrl+C stops)")
    serve(WorkDir(work), port=port, reviewer=reviewer)


@app.command("demo-corpus")
def demo_corpus(
    out_dir: Annotated[Path, typer.Argument(help="Where to write the corpus.")],
    sources: Annotated[str | None, typer.Option(help="Comma-separated sources.")] = None,
    seed: Annotated[int, typer.Option()] = 0,
    force: Annotated[bool, typer.Option(help="Re-render even if up to date.")] = False,
    clips: Annotated[int | None, typer.Option(
        min=1, help="Sample this many clips (every key, 60–200 BPM, 3/4 and 4/4) instead of "
                    "the 26-clip table; they are shared by the chosen sources.")] = None,
) -> None:
    """Synthesise the demo corpus (known tempo/meter/key/chords) in every native layout."""
    from qagen.stages import write_demo_corpus

    chosen = [s.strip() for s in sources.split(",")] if sources else None
    corpus = write_demo_corpus(out_dir, sources=chosen, seed=seed, force=force, clips=clips)
    verb = "reused" if corpus.reused else "wrote"
    out.print(f"{verb} {corpus.clips} clips under {corpus.root}; truth: {corpus.truth_path}")
    for name, path in corpus.sources.items():
        out.print(f"  qagen ingest {name} {path}")


@app.command("hard-set")
def hard_set(
    out_dir: Annotated[Path, typer.Argument(help="Where to write the set.")],
    n: Annotated[int, typer.Option(min=1, help="Rendered General-MIDI pieces.")] = 160,
    seed: Annotated[int, typer.Option()] = 0,
    realaudio: Annotated[Path | None, typer.Option(
        help="shared/realaudio: add its recordings with what is known of them.")] = None,
    force: Annotated[bool, typer.Option(help="Re-render even if up to date.")] = False,
) -> None:
    """Render the hard evaluation set (fluidsynth + General MIDI; dev and test halves)."""
    from qagen.augment.hardset import write_hard_set

    truth = write_hard_set(out_dir, n=n, seed=seed, realaudio=realaudio, force=force)
    rows = [json.loads(x) for x in truth.read_text(encoding="utf-8").splitlines() if x]
    halves = {s: sum(r["split"] == s for r in rows) for s in ("dev", "test")}
    out.print(f"{len(rows)} clips (dev {halves['dev']}, test {halves['test']}); truth: {truth}")
    out.print(f"  qagen ingest audiofolder {Path(out_dir) / 'audiofolder'}")
    out.print("  tune on split=dev rows only; report split=test (bench/hardset.py does both)")


@app.command("gate-eval")
def gate_eval(
    labels: Annotated[Path, typer.Option(help="Hand-labelled pairs (jsonl).")] = Path(
        "tests/generate/data/gate_labels.jsonl"),
    clips: Annotated[Path, typer.Option(help="Their clips and features (jsonl).")] = Path(
        "tests/generate/data/gate_clips.jsonl"),
    write: Annotated[bool, typer.Option(
        help="Store the figures in the package (the data card shows them).")] = False,
    show: Annotated[int, typer.Option(min=0, help="Print this many disagreements.")] = 20,
) -> None:
    """Precision / recall of the screens + quality gate on hand-labelled pairs."""
    from qagen.generate.calibrate import CALIBRATION_FILE, calibrate, disagreements

    for path in (labels, clips):
        if not path.is_file():
            raise typer.BadParameter(f"{path} not found", param_hint="--labels/--clips")
    cal, verdicts = calibrate(labels, clips)
    table = Table(title=f"screens + gate on {cal.labelled} hand-labelled pairs (default stage)")
    for col in ("set", "labelled", "keep labelled", "kept", "true keep", "precision", "recall"):
        table.add_column(col, justify="left" if col == "set" else "right")
    rows = {"all": cal.model_dump(), **cal.by_split}
    for name, f in rows.items():
        table.add_row(name, *(str(int(f[k])) for k in ("labelled", "keep_labelled", "kept",
                                                      "true_keep")),
                      f"{f['precision']:.3f}", f"{f['recall']:.3f}")
    out.print(table)
    for what, n in disagreements(verdicts).most_common():
        out.print(f"  {n:4d}  {what}")
    wrong = [v for v in verdicts if v.kept != (v.label == "keep")]
    for v in wrong[:show]:
        out.print(f"  {v.id} labelled {v.label}, screens {v.reason}: {v.detail}")
    if write:
        CALIBRATION_FILE.write_text(cal.model_dump_json(indent=1) + "\n", encoding="utf-8")
        out.print(f"written {CALIBRATION_FILE}")


@app.command()
def schemas(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for *.schema.json.")] = Path(
        "schemas"
    ),
) -> None:
    """Export the JSON Schema of every record model."""
    from qagen.schemas import write_schemas

    for path in write_schemas(out_dir):
        out.print(str(path))


@app.command("sources")
def list_sources_cmd() -> None:
    """List the dataset sources and their licenses."""
    from qagen.sources import get_source, list_sources

    table = Table(title="sources")
    for col in ("name", "license", "homepage"):
        table.add_column(col)
    for name in list_sources():
        src = get_source(name)
        table.add_row(name, src.LICENSE, src.HOMEPAGE)
    out.print(table)


@app.command()
def manifest(
    work: Annotated[Path, typer.Option(help="Work directory.")] = Path("work"),
) -> None:
    """Summarise the clip manifest of a work directory (per source, split, audio status)."""
    from qagen.manifest import iter_manifest
    from qagen.records import Clip
    from qagen.workdir import WorkDir

    counts: Counter[tuple[str, str, str]] = Counter()
    shards = WorkDir(work).manifest_shards("clips")
    for clip in iter_manifest(shards.values(), Clip):
        counts[(clip.source, clip.split.value, clip.audio_status.value)] += 1
    table = Table(title=f"{work}: {sum(counts.values())} clips in {len(shards)} shards")
    for col in ("source", "split", "audio", "clips"):
        table.add_column(col)
    for (source, split, status), n in sorted(counts.items()):
        table.add_row(source, split, status, str(n))
    out.print(table)


def main() -> None:
    """Console entry point: every mistake is one message naming the bad value and the fix.

    A QagenError (its message names the fix) or an invalid option value exits 2, a usage
    error exits with click's code (2), Ctrl-C exits 130; tracebacks are for bugs only.
    """
    from pydantic import ValidationError

    try:
        app(standalone_mode=False)
    except QagenError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise SystemExit(2) from None
    except ValidationError as exc:
        console.print(f"[red]error:[/red] {config_error_message(exc)}")
        raise SystemExit(2) from None
    except typer.Abort:
        raise SystemExit(130) from None
    except OSError as exc:
        if exc.errno not in _DISK_ERRORS:
            raise
        console.print(f"[red]error:[/red] {disk_error_message(exc)}")
        raise SystemExit(1) from None
    except typer.TyperException as exc:  # click usage errors (bad type, unknown option)
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        raise SystemExit(getattr(exc, "exit_code", 2)) from None


#: Errors of the disk, not of qagen: one line naming the fix, no traceback.
_DISK_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})


def disk_error_message(exc: OSError) -> str:
    """``No space left on device writing work/qa/qa-….parquet: free space …``."""
    where = f" writing {exc.filename}" if exc.filename else ""
    fix = ("free some space (or point --work at a larger disk)"
           if exc.errno in (errno.ENOSPC, errno.EDQUOT)
           else "check the permissions of the work directory")
    return (f"{exc.strerror or exc}{where}: {fix}; then re-run the same command, it resumes "
            "where it stopped (files are written whole or not at all)")


def config_error_message(exc: Any) -> str:
    """One line per invalid field of a pydantic ``ValidationError``, named as the option:
    ``--temperature 9.0: Input should be less than or equal to 2``."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err.get("loc", ()))
        option = "--" + loc.replace("_", "-") if loc else exc.title
        value = err.get("input")
        shown = f" {value!r}" if value is not None and not isinstance(value, dict) else ""
        parts.append(f"{option}{shown}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) + " (see --help for the allowed values)"
