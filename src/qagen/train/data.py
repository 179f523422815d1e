"""QA pairs + precomputed embeddings → tokenised, split training examples.

Why here and not in the loop: the split (never the same clip on both sides), the chat
formatting and the answer-only labels decide what the adapter learns; they are pure functions
of the records, the tokenizer and the embedding store, testable without a model.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np
import pyarrow.parquet as pq

from qagen.errors import ConfigError
from qagen.records.training import DataCounts
from qagen.workdir import WorkDir

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Labels of positions that carry no loss (prompt, audio, padding).
IGNORE_INDEX = -100
#: The embedding kind each architecture reads: MU-LLaMA pooled layers, LLark frames.
KIND_BY_ARCH = {"mu_llama": "layers", "llark": "frames"}
#: MU-LLaMA's prompt, used when the LM's tokenizer has no chat template (base Llama-2).
ALPACA_PROMPT = (
    "Below is an instruction that describes a task. Write a response that appropriately "
    "completes the request.\n\n### Instruction:\n{question}\n\n### Response:"
)
_QA_COLUMNS = ["qa_id", "clip_id", "split", "question", "answer", "kind"]


@runtime_checkable
class EmbeddingSource(Protocol):
    """Where per-clip embeddings come from (the embed stage's store, or memory in tests).

    ``load(clip_id, kind)`` returns the array (``layers``: [L+1, H]; ``frames``: [T, H]) or
    None when the clip has no embedding of that kind.
    """

    def load(self, clip_id: str, kind: str) -> np.ndarray | None: ...


@dataclass(frozen=True)
class InMemoryEmbeddings:
    """An ``EmbeddingSource`` over a dict ``{(clip_id, kind): array}`` (tests, notebooks)."""

    arrays: Mapping[tuple[str, str], np.ndarray]
    encoder_id: str = "in-memory"

    def load(self, clip_id: str, kind: str) -> np.ndarray | None:
        return self.arrays.get((clip_id, kind))


@dataclass(frozen=True)
class QAPairRow:
    """The fields of a ``QARecord`` that training needs."""

    qa_id: str
    clip_id: str
    split: str
    question: str
    answer: str
    kind: str
    facts: dict[str, Any] | None = None  # what the reference states (evaluate's MIR scores)
    question_form: str = "open"  # open, yes_no, multiple_choice: how MIR answers are scored


@dataclass
class Example:
    """One tokenised pair: prompt ids (chat-formatted question), answer ids (with the
    end-of-turn tokens, so the model learns to stop), and its clip's embedding."""

    pair: QAPairRow
    prompt_ids: list[int]
    answer_ids: list[int]
    features: np.ndarray


@dataclass
class SplitData:
    """Training and held-out examples plus the counts the report shows."""

    train: list[Example] = field(default_factory=list)
    eval: list[Example] = field(default_factory=list)
    counts: DataCounts = field(default_factory=DataCounts)


def read_pair_shard(path: Path, *, only: set[str] | None = None) -> list[QAPairRow]:
    """The pairs of one ``qa-<shard>.parquet`` (only the columns training needs), optionally
    only those whose ``qa_id`` is in ``only``."""
    names = set(pq.ParquetFile(path).schema_arrow.names)
    columns = _QA_COLUMNS + [c for c in ("facts", "question_form") if c in names]
    rows = pq.read_table(path, columns=columns).to_pylist()
    return [QAPairRow(**r) for r in rows if only is None or r["qa_id"] in only]


def iter_pair_shards(qa_dir: Path) -> Iterator[tuple[str, list[QAPairRow]]]:
    """``(shard key, its pairs)`` of ``qa_dir/qa-<shard>.parquet``, one shard in memory."""
    for key, path in WorkDir.shard_files(qa_dir, "qa").items():
        yield key, read_pair_shard(path)


def load_pairs(qa_dir: Path) -> list[QAPairRow]:
    """Every accepted pair in ``qa_dir/qa-*.parquet`` (only the columns training needs)."""
    return [pair for _, pairs in iter_pair_shards(qa_dir) for pair in pairs]


def _clip_hash(clip_id: str) -> bytes:
    return hashlib.blake2b(clip_id.encode(), digest_size=8).digest()


def split_clips(pairs: Iterable[QAPairRow], *,
                eval_fraction: float) -> tuple[set[str], set[str], str]:
    """Train and held-out clip ids, and the rule used (``dataset`` or ``hash``).

    The records' own splits are used when both sides are non-empty: train = ``train`` clips
    (``valid`` clips when there are none), held out = ``test`` clips. Otherwise every clip is
    ordered by a hash of its id and the first ``eval_fraction`` (at least one) is held out: a
    deterministic split in which no clip is on both sides.
    """
    by_split: dict[str, set[str]] = {}
    for p in pairs:
        by_split.setdefault(p.split, set()).add(p.clip_id)
    return _split_of(by_split, eval_fraction=eval_fraction)


def split_clips_in(qa_dir: Path, *,
                   eval_fraction: float) -> tuple[int, tuple[set[str], set[str], str] | None]:
    """:func:`split_clips` over ``qa_dir`` reading only the ``clip_id`` and ``split`` columns,
    one shard at a time; returns the number of pairs and the split (None without pairs)."""
    by_split: dict[str, set[str]] = {}
    n = 0
    for path in WorkDir.shard_files(qa_dir, "qa").values():
        cols = pq.read_table(path, columns=["clip_id", "split"]).to_pydict()
        n += len(cols["clip_id"])
        for clip, split in zip(cols["clip_id"], cols["split"], strict=True):
            by_split.setdefault(split, set()).add(clip)
    return n, (_split_of(by_split, eval_fraction=eval_fraction) if n else None)


def _split_of(by_split: dict[str, set[str]], *,
              eval_fraction: float) -> tuple[set[str], set[str], str]:
    train = by_split.get("train") or by_split.get("valid") or set()
    held = by_split.get("test", set())
    if train and held and not (train & held):
        return train, held, "dataset"
    clips = sorted({c for ids in by_split.values() for c in ids}, key=_clip_hash)
    if len(clips) < 2:
        raise ConfigError(f"training needs QA pairs over at least 2 clips, found {len(clips)}:"
                          " run `qagen generate` on more clips")
    n_eval = min(len(clips) - 1, max(1, round(eval_fraction * len(clips))))
    return set(clips[n_eval:]), set(clips[:n_eval]), "hash"


def render_prompt(tokenizer: Any, question: str) -> str:
    """The question as the LM expects a user turn, ending where the answer starts."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True)
    return ALPACA_PROMPT.format(question=question)


def render_answer(tokenizer: Any, question: str, answer: str) -> str:
    """The text that follows the prompt in a full conversation: the answer and the template's
    end-of-turn marker (or the EOS token when there is no template)."""
    prompt = render_prompt(tokenizer, question)
    if getattr(tokenizer, "chat_template", None):
        full = tokenizer.apply_chat_template(
            [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
            tokenize=False)
        if full.startswith(prompt):
            return full[len(prompt):]
        log.warning("chat template does not extend the generation prompt; using answer + EOS")
    return " " + answer + (tokenizer.eos_token or "")


def tokenize_pair(tokenizer: Any, pair: QAPairRow, *,
                  max_len: int) -> tuple[list[int], list[int]] | None:
    """Prompt and answer token ids, the answer cut so both fit ``max_len``; None when the
    prompt alone leaves fewer than 8 answer tokens.

    The prompt is tokenised on its own (with the tokenizer's special tokens, e.g. BOS) exactly
    as at generation time; the answer text is tokenised without special tokens and appended.
    """
    prompt_ids = tokenizer(render_prompt(tokenizer, pair.question))["input_ids"]
    answer_ids = tokenizer(render_answer(tokenizer, pair.question, pair.answer),
                           add_special_tokens=False)["input_ids"]
    room = max_len - len(prompt_ids)
    if room < 8:
        return None
    return list(prompt_ids), list(answer_ids[:room])


def build_examples(
    pairs: Iterable[QAPairRow],
    *,
    tokenizer: Any,
    embeddings: EmbeddingSource,
    kind: str,
    max_len: int,
    eval_fraction: float,
    clip_split: tuple[set[str], set[str], str] | None = None,
    keep_text: bool = True,
    qa_kinds: Collection[str] | None = None,
) -> SplitData:
    """Split, tokenise and attach embeddings; pairs that cannot be used are counted by reason
    (``no_embedding``, ``prompt_too_long``, ``unused_split`` for clips on neither side, e.g.
    ``valid`` clips). ``clip_split`` (train ids, held-out ids, rule) replaces
    :func:`split_clips` — given it, ``pairs`` is read once, as it streams (shard by shard).
    ``keep_text=False`` keeps only ids of each pair beside its tokens (training needs no text).
    ``qa_kinds`` keeps only pairs of those kinds (others counted as ``kind_not_trained``).
    """
    if clip_split is None:
        pairs = list(pairs)
        clip_split = split_clips(pairs, eval_fraction=eval_fraction)
    train_ids, eval_ids, rule = clip_split
    out = SplitData()
    skipped: Counter[str] = Counter()
    features: dict[str, np.ndarray | None] = {}
    seen = 0
    for pair in pairs:
        seen += 1
        if qa_kinds is not None and pair.kind not in qa_kinds:
            skipped["kind_not_trained"] += 1
            continue
        side = out.train if pair.clip_id in train_ids else (
            out.eval if pair.clip_id in eval_ids else None)
        if side is None:
            skipped["unused_split"] += 1
            continue
        if pair.clip_id not in features:
            features[pair.clip_id] = embeddings.load(pair.clip_id, kind)
        array = features[pair.clip_id]
        if array is None:
            skipped["no_embedding"] += 1
            continue
        ids = tokenize_pair(tokenizer, pair, max_len=max_len)
        if ids is None:
            skipped["prompt_too_long"] += 1
            continue
        if not keep_text:
            pair = QAPairRow(qa_id=pair.qa_id, clip_id=pair.clip_id, split=pair.split,
                             question="", answer="", kind=pair.kind)
        side.append(Example(pair=pair, prompt_ids=ids[0], answer_ids=ids[1], features=array))
    out.counts = DataCounts(
        pairs=seen, train_pairs=len(out.train), eval_pairs=len(out.eval),
        train_clips=len({e.pair.clip_id for e in out.train}),
        eval_clips=len({e.pair.clip_id for e in out.eval}),
        split_rule=rule, skipped=dict(sorted(skipped.items())),
    )
    if skipped:
        log.info("pairs skipped: %s", dict(skipped))
    return out


def open_embeddings(work: WorkDir) -> EmbeddingSource:
    """The embed stage's store under ``WORKDIR/embeddings/``.

    Raises
    ------
    ConfigError
        No embeddings there yet (the message says to run ``qagen embed``).
    """
    from qagen.embedding_store import EmbeddingStore

    try:
        return EmbeddingStore(work)
    except FileNotFoundError as exc:
        raise ConfigError(f"{exc}: run `qagen embed` first, or pass embeddings= to "
                          "train/evaluate") from exc


def spread_sample(examples: Sequence[Example], n: int | None) -> list[Example]:
    """At most ``n`` examples taken round-robin over clips (first of each clip, then the
    second, …), in a fixed order: a capped evaluation still covers every clip and kind,
    where a plain prefix would cover the first clips only."""
    return spread(examples, n, clip_of=lambda e: e.pair.clip_id)


def spread(items: Sequence[T], n: int | None, *, clip_of: Callable[[T], str]) -> list[T]:
    """:func:`spread_sample` over any items (``clip_of`` names each one's clip)."""
    if n is None or len(items) <= n:
        return list(items)
    by_clip: dict[str, list[T]] = {}
    for item in items:
        by_clip.setdefault(clip_of(item), []).append(item)
    ranked = sorted(((i, clip, e) for clip, es in by_clip.items() for i, e in enumerate(es)),
                    key=lambda t: (t[0], t[1]))
    return [e for _, _, e in ranked[:n]]


def batch_indices(n: int, *, seed: int, batch_size: int, index: int) -> list[int]:
    """Indices of micro-batch ``index`` in an endless, seeded shuffle of ``n`` examples.

    Stateless (epoch e uses permutation seed+e), so a resumed run sees exactly the batches
    the uninterrupted run would have seen.
    """
    out: list[int] = []
    perms: dict[int, np.ndarray] = {}
    start = index * batch_size
    for pos in range(start, start + batch_size):
        epoch, offset = divmod(pos, n)
        if epoch not in perms:
            perms[epoch] = np.random.default_rng(seed + epoch).permutation(n)
        out.append(int(perms[epoch][offset]))
    return out
