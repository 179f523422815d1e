"""A tiny random Llama and a tiny byte-level BPE tokenizer with a ChatML template, so the
train and evaluate code runs end to end in seconds without any downloaded weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CORPUS = [
    "What is the tempo of this piece?", "It moves at a brisk 120 beats per minute.",
    "Which instruments do you hear?", "A solo piano with a soft string pad.",
    "Describe the mood of the music.", "Calm and dreamy, with a slow build.",
    "What key is it in?", "It sits in A minor.",
]


def tiny_tokenizer_dir(root: Path) -> Path:
    """Train a ~300-token byte-level BPE on a few sentences and save it as an HF tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320, special_tokens=["<|pad|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<|pad|>",
                                   eos_token="<|im_end|>", bos_token="<|im_start|>")
    fast.chat_template = CHATML
    fast.save_pretrained(root)
    return root


def tiny_lm_dir(root: Path, *, vocab: int, seed: int = 0) -> Path:
    """A random 2-layer LlamaForCausalLM (hidden 48, 4 heads, 2 KV heads) saved as a folder."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=vocab, hidden_size=48, intermediate_size=96,
                         num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=512, pad_token_id=0, eos_token_id=2,
                         bos_token_id=1, tie_word_embeddings=True, initializer_range=0.3)
    LlamaForCausalLM(config).save_pretrained(root)
    return root


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder holding a tiny random Llama and its tokenizer (load with from_pretrained)."""
    root = tmp_path_factory.mktemp("tiny-lm")
    tiny_tokenizer_dir(root)
    from transformers import AutoTokenizer

    tiny_lm_dir(root, vocab=len(AutoTokenizer.from_pretrained(root)))
    return root


def random_embeddings(clip_ids: list[str], *, seed: int = 0, layers: int = 5, dim: int = 16,
                      frames: int = 6) -> dict[tuple[str, str], np.ndarray]:
    """Per-clip random ``layers`` [L+1, H] and ``frames`` [T, H] arrays (fp16, like the store)."""
    rng = np.random.default_rng(seed)
    out: dict[tuple[str, str], np.ndarray] = {}
    for i, cid in enumerate(clip_ids):
        out[(cid, "layers")] = rng.standard_normal((layers, dim)).astype(np.float16)
        out[(cid, "frames")] = rng.standard_normal((frames + i % 3, dim)).astype(np.float16)
    return out


ANSWERS = ["It moves at a brisk 120 beats per minute.", "Calm and dreamy, with a slow build.",
           "A solo piano with a soft string pad.", "It sits in A minor."]
QUESTIONS = ["What is the tempo of this piece?", "Describe the mood of the music.",
             "Which instruments do you hear?", "What key is it in?"]


def write_qa_work(root: Path, *, clips: int = 8, splits: dict[int, str] | None = None,
                  pairs_per_clip: int = 2) -> tuple[Path, list[str]]:
    """A work dir whose ``qa/`` holds QARecords: clip i answers with ANSWERS[i % 4], so the
    answer is predictable from the clip (and its embedding). Returns (root, clip ids)."""
    from qagen.manifest import write_records
    from qagen.records.qa import QAKind, QARecord

    splits = splits or {}
    records, clip_ids = [], []
    for i in range(clips):
        cid = f"demo-{i:03d}"
        clip_ids.append(cid)
        split = splits.get(i, "test" if i % 4 == 3 else "train")
        for j in range(pairs_per_clip):
            q = QUESTIONS[(i + j) % 4]
            records.append(QARecord(
                template_id="t", template_version="1", template_hash="h", backend="b",
                model_id="m", sampling="{}", seed=0, attempt=1, request_id=f"r{i}-{j}",
                raw_output="", created_at="2026-01-01T00:00:00+00:00",
                qa_id=QARecord.make_id(cid, "t", q), clip_id=cid, source="demo", split=split,
                question=q, answer=ANSWERS[i % 4], kind=QAKind.description))
    write_records(root / "qa" / "qa-demo-00000.parquet", records, QARecord)
    return root, clip_ids
