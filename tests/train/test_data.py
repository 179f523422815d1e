"""Pairs → examples: clip-level splits, answer-only labels, skipped pairs counted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qagen.errors import ConfigError
from qagen.train.data import (
    InMemoryEmbeddings,
    QAPairRow,
    batch_indices,
    build_examples,
    load_pairs,
    render_answer,
    split_clips,
    tokenize_pair,
)
from tests.train.conftest import random_embeddings, write_qa_work


def rows(splits: dict[str, str]) -> list[QAPairRow]:
    return [QAPairRow(qa_id=f"{c}-{j}", clip_id=c, split=s, question="What key is it in?",
                      answer="It sits in A minor.", kind="key")
            for c, s in splits.items() for j in range(2)]


def test_dataset_split_is_used_when_both_sides_exist() -> None:
    train, held, rule = split_clips(rows({"a": "train", "b": "train", "c": "test",
                                          "d": "valid"}), eval_fraction=0.2)
    assert (train, held, rule) == ({"a", "b"}, {"c"}, "dataset")


def test_valid_clips_train_when_there_is_no_train_split() -> None:
    train, held, rule = split_clips(rows({"a": "valid", "b": "test"}), eval_fraction=0.2)
    assert (train, held, rule) == ({"a"}, {"b"}, "dataset")


def test_hash_split_when_a_side_is_empty_is_deterministic_and_disjoint() -> None:
    pairs = rows({f"clip{i}": "unsplit" for i in range(20)})
    train, held, rule = split_clips(pairs, eval_fraction=0.2)
    assert rule == "hash"
    assert not train & held and len(train | held) == 20 and len(held) == 4
    # order of the pairs does not matter, only the clip ids
    assert split_clips(list(reversed(pairs)), eval_fraction=0.2)[:2] == (train, held)
    # a tiny set still gets both sides
    two = split_clips(rows({"x": "train", "y": "train"}), eval_fraction=0.2)
    assert len(two[0]) == 1 and len(two[1]) == 1


def test_one_clip_is_refused() -> None:
    with pytest.raises(ConfigError, match="at least 2 clips"):
        split_clips(rows({"a": "train"}), eval_fraction=0.2)


def test_answer_tokens_follow_the_chat_template(tiny_lm: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_lm)
    pair = rows({"a": "train"})[0]
    prompt, answer = tokenize_pair(tok, pair, max_len=128)  # type: ignore[misc]
    assert tok.decode(prompt).endswith("<|im_start|>assistant\n")
    assert "What key is it in?" in tok.decode(prompt)
    assert tok.decode(answer) == "It sits in A minor.<|im_end|>\n"
    assert render_answer(tok, pair.question, pair.answer).startswith(pair.answer)
    cut = tokenize_pair(tok, pair, max_len=len(prompt) + 8)
    assert cut is not None and len(cut[0]) + len(cut[1]) == len(prompt) + 8
    assert tokenize_pair(tok, pair, max_len=len(prompt) + 4) is None


def test_base_lm_without_template_gets_mu_llamas_prompt(tiny_lm: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_lm)
    tok.chat_template = None
    prompt, answer = tokenize_pair(tok, rows({"a": "train"})[0], max_len=256)  # type: ignore[misc]
    assert tok.decode(prompt).endswith("### Response:")
    assert tok.decode(answer).strip() == "It sits in A minor.<|im_end|>"


def test_pairs_without_embedding_are_skipped_and_counted(tiny_lm: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    root, ids = write_qa_work(tmp_path, clips=8, splits={5: "valid"})
    arrays = random_embeddings(ids)
    del arrays[(ids[0], "layers")]
    data = build_examples(load_pairs(root / "qa"), tokenizer=AutoTokenizer.from_pretrained(tiny_lm),
                          embeddings=InMemoryEmbeddings(arrays), kind="layers", max_len=128,
                          eval_fraction=0.2)
    c = data.counts
    assert c.skipped == {"no_embedding": 2, "unused_split": 2}
    assert (c.pairs, c.train_pairs, c.eval_pairs) == (16, 8, 4)
    assert {e.pair.clip_id for e in data.train}.isdisjoint({e.pair.clip_id for e in data.eval})
    assert all(e.pair.split == "test" for e in data.eval)


def test_batches_are_a_seeded_stateless_shuffle() -> None:
    n, bs = 10, 4
    seen = [i for k in range(5) for i in batch_indices(n, seed=3, batch_size=bs, index=k)]
    assert sorted(seen[:10]) == list(range(10)) and sorted(seen[10:20]) == list(range(10))
    assert batch_indices(n, seed=3, batch_size=bs, index=2) == seen[8:12]
    assert seen != [i for k in range(5) for i in batch_indices(n, seed=4, batch_size=bs, index=k)]
    assert np.unique(seen[:10]).size == 10


def test_a_run_learns_from_the_kinds_it_names_only(tiny_lm: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    from qagen.train.config import TrainConfig
    from qagen.train.evaluate import plan_evaluation

    root, ids = write_qa_work(tmp_path, clips=8)
    tok = AutoTokenizer.from_pretrained(tiny_lm)
    source = InMemoryEmbeddings(random_embeddings(ids))

    def build(kinds: frozenset[str] | None) -> tuple[int, dict[str, int]]:
        data = build_examples(load_pairs(root / "qa"), tokenizer=tok, embeddings=source,
                              kind="layers", max_len=128, eval_fraction=0.2, qa_kinds=kinds)
        return len(data.train) + len(data.eval), data.counts.skipped

    key_only = TrainConfig(qa_kinds=["key"]).trained_kinds()
    assert key_only == frozenset({"key"}) and TrainConfig().trained_kinds() is None
    assert build(key_only) == (0, {"kind_not_trained": 16})  # every pair is a description
    assert build(frozenset({"key", "description"})) == (16, {})
    assert TrainConfig(qa_kinds=["key"]).fingerprint() != TrainConfig().fingerprint()
    shards = {"demo-00000": root / "qa" / "qa-demo-00000.parquet"}
    held_out = set(ids[:4])
    plans = [plan_evaluation(shards, held_out=held_out, kind="layers", source=source,
                             max_pairs=None, shuffled=True, qa_kinds=k)
             for k in (None, key_only)]
    assert sum(map(len, plans[0].chosen.values())) == 8 and plans[1].chosen == {}
