"""The model card of a train run: what was trained, on what, and how it scores."""

from __future__ import annotations

from qagen.records.training import EvalReport, TrainReport
from qagen.train.config import TrainConfig

_ARCH_TEXT = {
    "mu_llama": "MU-LLaMA-style adapter: pooled encoder layers → Conv1d (L+1→1) → Linear → "
                "residual gated dense blocks → prefix keys/values attended by the last "
                "{n} LM layers through zero-initialised tanh gates",
    "llark": "LLark-style projector ({proj}): encoder frames → LM token-embedding space, "
             "prepended to the question as audio tokens",
}


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


#: The MIR rows of the card: label, metric, the count metric it was scored on.
MIR_ROWS = (("key accuracy", "mir_key_acc", "mir_key_n"),
            ("key, MIREX weighted", "mir_key_weighted", "mir_key_n"),
            ("tempo within 4 %", "mir_tempo_acc1", "mir_tempo_n"),
            ("tempo within 4 %, octave errors forgiven", "mir_tempo_acc2", "mir_tempo_n"),
            ("tempo within 8 %, octave errors forgiven", "mir_tempo_octave8", "mir_tempo_n"),
            ("meter accuracy", "mir_meter_acc", "mir_meter_n"),
            ("instruments (set F1)", "mir_instruments_f1", "mir_instruments_n"),
            ("genre (set F1)", "mir_genre_f1", "mir_genre_n"),
            ("yes/no questions (accuracy)", "mir_yes_no_acc", "mir_yes_no_n"))


def mir_table(columns: list[tuple[str, dict[str, float | None]]]) -> list[str]:
    """The card's MIR accuracy table: does the adapter answer music questions right, and
    does it need the clip's own audio to (the "another clip's audio" column)?"""
    names = [name for name, _ in columns]
    lines = ["### MIR accuracy", "",
             "Facts read out of each answer and checked against what the reference pair states "
             "(measured key, tempo, meter; the dataset's instruments and genres). If the "
             "adapter used the audio, feeding it another clip's audio scores lower; if it only "
             "learned a prior over the answers, the two score the same.", "",
             "| metric | pairs | " + " | ".join(names) + " |",
             "|---|---|" + "---|" * len(columns)]
    first = columns[0][1]
    for label, key, count in MIR_ROWS:
        n = first.get(count)
        lines.append(f"| {label} | {0 if n is None else int(n)} | "
                     + " | ".join(_fmt(values.get(key)) for _, values in columns) + " |")
    return lines


def render_card(report: TrainReport, *, config: TrainConfig,
                evaluation: EvalReport | None = None) -> str:
    """Markdown model card (YAML front matter + sections) for ``WORKDIR/train/<run>/``."""
    arch = _ARCH_TEXT[report.arch].format(n=config.adapter_layers, proj=config.projector)
    d = report.data
    skipped = ", ".join(f"{k}: {v}" for k, v in d.skipped.items()) or "none"
    lines = [
        "---",
        "library_name: qagen",
        f"base_model: {report.lm}",
        "tags: [music, music-understanding, adapter, qagen]",
        "---",
        "",
        f"# {report.run}: {report.arch} adapter on {report.lm}",
        "",
        f"Architecture: {arch}. The LM and the encoder are frozen; only the adapter "
        f"({report.trainable_params:,} parameters; LM {report.frozen_params:,}) was trained, "
        "and only its weights are in `adapter.safetensors`.",
        "",
        "## Training data",
        "",
        f"- QA pairs from this work directory's `qa/` (generate stage): {d.pairs} pairs.",
        f"- Train: {d.train_pairs} pairs over {d.train_clips} clips; held out: {d.eval_pairs} "
        f"pairs over {d.eval_clips} clips; split rule: `{d.split_rule}` (no clip on both "
        "sides).",
        f"- Skipped pairs: {skipped}.",
        f"- Audio encoder (precomputed embeddings): `{report.encoder}`"
        + (" — random weights: its embeddings carry no music, so this adapter cannot hear; "
           "use `qagen/madmom-features` or a real MERT." if report.encoder_random_init
           else "."),
        "",
        "## Training",
        "",
        f"- {report.steps} steps, batch {config.batch_size} × accumulation {config.grad_accum},"
        f" AdamW lr {config.lr:g} (warmup {config.warmup_steps}, cosine to "
        f"{config.min_lr_ratio:g}×), weight decay {config.weight_decay:g}, seed {config.seed}, "
        f"max length {config.max_len} tokens; loss on answer tokens only.",
        f"- Device {report.device}, precision {report.precision}, {report.seconds:.1f} s"
        + (f" ({report.seconds_per_step:.2f} s/step)" if report.seconds_per_step else "")
        + ".",
        f"- Loss: step 1 {_fmt(report.first_loss)}, mean of the last fifth "
        f"{_fmt(report.last_loss)} "
        "(`loss.jsonl`).",
        f"- Answer-token loss over the whole training set: {_fmt(report.train_loss_before)} "
        f"untrained (the LM alone) → {_fmt(report.train_loss_after)} trained; held-out pairs: "
        f"{_fmt(report.heldout_loss_before)} → {_fmt(report.heldout_loss_after)}.",
        "",
        "## Evaluation",
        "",
    ]
    if evaluation is None:
        lines.append("Not evaluated yet (`qagen evaluate`).")
    else:
        lines += [f"Greedy answers to {evaluation.pairs} held-out pairs "
                  "(`eval/predictions.jsonl`).", ""]
        columns = [("adapter", evaluation.metrics)]
        if evaluation.baseline_metrics is not None:
            columns.append(("LM alone", evaluation.baseline_metrics))
        if evaluation.shuffled_metrics is not None:
            columns.append(("adapter, another clip's audio", evaluation.shuffled_metrics))
        lines += mir_table(columns)
        lines += ["", "### Text similarity to the reference answers", "",
                  "| metric | " + " | ".join(name for name, _ in columns) + " |",
                  "|---|" + "---|" * len(columns)]
        for name in evaluation.metrics:
            if not name.startswith("mir_"):
                lines.append(f"| {name} | "
                             + " | ".join(_fmt(values.get(name)) for _, values in columns)
                             + " |")
    lines += ["", "## Limitations", "",
              "Trained on machine-generated QA pairs; answers inherit their errors. A small LM "
              "and a few hundred steps exercise the pipeline; they do not make a useful model.",
              ""]
    return "\n".join(lines)
