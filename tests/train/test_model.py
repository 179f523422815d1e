"""The MU-LLaMA adapter and the LLark projector on a tiny random Llama: zero-init gates,
frozen LM, gradients only where they belong, audio tokens and answer-only labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qagen.train.config import TrainConfig
from qagen.train.data import IGNORE_INDEX, Example, QAPairRow, tokenize_pair
from qagen.train.model import MusicLM, freeze

torch = pytest.importorskip("torch")


def load_tiny(path: Path):  # type: ignore[no-untyped-def]
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return freeze(AutoModelForCausalLM.from_pretrained(path)), AutoTokenizer.from_pretrained(path)


def examples(tok, *, n: int = 3, layers: int = 5, dim: int = 16, seed: int = 0) -> list[Example]:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        pair = QAPairRow(qa_id=f"q{i}", clip_id=f"c{i}", split="train",
                         question="What is the tempo of this piece?" + " really" * i,
                         answer="It moves at a brisk 120 beats per minute.", kind="tempo")
        prompt, answer = tokenize_pair(tok, pair, max_len=128)  # type: ignore[misc]
        feats = rng.standard_normal((layers, dim)).astype(np.float16)
        out.append(Example(pair=pair, prompt_ids=prompt, answer_ids=answer, features=feats))
    return out


def frames_examples(tok, *, lengths: tuple[int, ...] = (4, 7, 5), dim: int = 16):  # type: ignore[no-untyped-def]
    exs = examples(tok, n=len(lengths), dim=dim)
    rng = np.random.default_rng(1)
    for ex, t in zip(exs, lengths, strict=True):
        ex.features = rng.standard_normal((t, dim)).astype(np.float16)
    return exs


@pytest.mark.parametrize("prefix_len", [1, 3])
def test_untrained_adapter_leaves_logits_unchanged(tiny_lm: Path, prefix_len: int) -> None:
    lm, tok = load_tiny(tiny_lm)
    exs = examples(tok)
    batch_plain = MusicLM(lm, tok, arch="mu_llama", music=torch.nn.Identity()).compose(
        exs, with_answer=True)
    with torch.no_grad():
        ref = lm(inputs_embeds=batch_plain["inputs_embeds"],
                 attention_mask=batch_plain["attention_mask"],
                 position_ids=batch_plain["position_ids"]).logits
    cfg = TrainConfig(adapter_layers=2, prefix_len=prefix_len, adapter_blocks=2)
    model = MusicLM.build(lm, tok, config=cfg, feature_shape=exs[0].features.shape)
    batch = model.compose(exs, with_answer=True)
    with torch.no_grad(), model.music.conditioned(batch["features"]):
        got = lm(inputs_embeds=batch["inputs_embeds"], attention_mask=batch["attention_mask"],
                 position_ids=batch["position_ids"]).logits
        # the hooks really ran: a non-zero gate changes the logits
        model.music.gates.fill_(0.5)
        moved = lm(inputs_embeds=batch["inputs_embeds"], attention_mask=batch["attention_mask"],
                   position_ids=batch["position_ids"]).logits
    assert torch.equal(got, ref)
    assert not torch.allclose(moved, ref, atol=1e-4)
    model.detach_hooks()
    with torch.no_grad(), model.music.conditioned(batch["features"]):
        after = lm(inputs_embeds=batch["inputs_embeds"], attention_mask=batch["attention_mask"],
                   position_ids=batch["position_ids"]).logits
    assert torch.equal(after, ref)


def test_adapter_sits_in_the_last_layers_only(tiny_lm: Path) -> None:
    lm, tok = load_tiny(tiny_lm)
    cfg = TrainConfig(adapter_layers=2)
    model = MusicLM.build(lm, tok, config=cfg, feature_shape=(5, 16))
    assert model.music.layer_ids == [1, 2]
    capped = MusicLM.build(lm, tok, config=TrainConfig(adapter_layers=20), feature_shape=(5, 16))
    assert capped.music.layer_ids == [0, 1, 2]
    assert tuple(capped.music.gates.shape) == (3, lm.config.num_attention_heads)


@pytest.mark.parametrize("arch", ["mu_llama", "llark"])
def test_gradients_reach_only_the_music_module(tiny_lm: Path, arch: str) -> None:
    lm, tok = load_tiny(tiny_lm)
    exs = examples(tok) if arch == "mu_llama" else frames_examples(tok)
    before = {k: v.clone() for k, v in lm.state_dict().items()}
    torch.manual_seed(0)
    model = MusicLM.build(lm, tok, config=TrainConfig(arch=arch, adapter_layers=2),
                          feature_shape=exs[0].features.shape)
    if arch == "mu_llama":  # open the gates so every adapter weight gets a gradient
        with torch.no_grad():
            model.music.gates.fill_(0.3)
    model.train()
    assert not lm.training, "the frozen LM must stay in eval mode"
    opt = torch.optim.AdamW(model.music.parameters(), lr=1e-2)
    loss = model.loss(exs)
    loss.backward()
    assert all(p.grad is None for p in lm.parameters())
    grads = {n: p.grad for n, p in model.music.named_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    assert any(float(g.abs().sum()) > 0 for g in grads.values())
    opt.step()
    after = lm.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_zero_gates_get_the_first_gradient(tiny_lm: Path) -> None:
    """LLaMA-Adapter's zero-init: at step 0 only the gates can move (tanh(0) = 0 masks the
    rest), so training starts from exactly the LM's own behaviour."""
    lm, tok = load_tiny(tiny_lm)
    exs = examples(tok)
    model = MusicLM.build(lm, tok, config=TrainConfig(adapter_layers=2), feature_shape=(5, 16))
    model.loss(exs).backward()
    assert float(model.music.gates.grad.abs().sum()) > 0
    assert float(model.music.proj.weight.grad.abs().sum()) == 0


def test_llark_audio_tokens_and_answer_only_labels(tiny_lm: Path) -> None:
    lm, tok = load_tiny(tiny_lm)
    exs = frames_examples(tok, lengths=(4, 7, 5))
    model = MusicLM.build(lm, tok, config=TrainConfig(arch="llark", projector="linear"),
                          feature_shape=exs[0].features.shape)
    batch = model.compose(exs, with_answer=True, max_audio=6)
    lens = [min(t, 6) + len(e.prompt_ids) + len(e.answer_ids)
            for t, e in zip((4, 7, 5), exs, strict=True)]
    width = max(lens)
    assert tuple(batch["inputs_embeds"].shape) == (3, width, lm.config.hidden_size)
    for i, ex in enumerate(exs):
        n_audio = min(ex.features.shape[0], 6)
        pad = width - lens[i]
        mask = batch["attention_mask"][i].tolist()
        labels = batch["labels"][i].tolist()
        assert mask == [0] * pad + [1] * lens[i]
        # pad, audio and prompt carry no loss; the answer ids are the labels, in place
        assert labels[: pad + n_audio + len(ex.prompt_ids)] == [IGNORE_INDEX] * (
            pad + n_audio + len(ex.prompt_ids))
        assert labels[pad + n_audio + len(ex.prompt_ids):] == ex.answer_ids
        # the audio positions hold the projector's output for this clip's frames
        feats = torch.from_numpy(ex.features[:n_audio].astype(np.float32))
        with torch.no_grad():
            expected = model.music(feats)
        got = batch["inputs_embeds"][i, pad: pad + n_audio]
        assert torch.allclose(got, expected, atol=1e-6)
        # and the text positions the LM's own token embeddings
        text = lm.get_input_embeddings()(torch.tensor(ex.prompt_ids))
        assert torch.equal(batch["inputs_embeds"][i, pad + n_audio: pad + n_audio + len(text)],
                           text)
    assert batch["position_ids"][0, -1] == lens[0] - 1


def test_generate_returns_one_answer_per_example(tiny_lm: Path) -> None:
    lm, tok = load_tiny(tiny_lm)
    for arch, exs in (("mu_llama", examples(tok)), ("llark", frames_examples(tok))):
        model = MusicLM.build(lm, tok, config=TrainConfig(arch=arch, adapter_layers=2),
                              feature_shape=exs[0].features.shape)
        answers = model.generate(exs, max_new_tokens=4)
        assert len(answers) == len(exs) and all(isinstance(a, str) for a in answers)
        model.detach_hooks()


@pytest.mark.parametrize("prefix_len", [1, 10])
def test_cached_generation_matches_full_forward(tiny_lm: Path, prefix_len: int) -> None:
    """Greedy decoding with the KV cache (one new token a step, left-padded batch) picks the
    tokens a full forward over the whole sequence would: the adapter's queries see the same
    positions both ways."""
    lm, tok = load_tiny(tiny_lm)
    exs = examples(tok)
    model = MusicLM.build(lm, tok, config=TrainConfig(adapter_layers=3, prefix_len=prefix_len),
                          feature_shape=exs[0].features.shape)
    with torch.no_grad():
        model.music.gates.fill_(0.8)
        for p in model.music.prefix_query.parameters():
            p.normal_(std=0.5)
    steps = 4
    answers = model.generate(exs, max_new_tokens=steps)
    batch = model.compose(exs, with_answer=False)
    embeds, mask = batch["inputs_embeds"], batch["attention_mask"]
    chosen = []
    with torch.no_grad(), model.music.conditioned(batch["features"]):
        for _ in range(steps):
            pos = (mask.cumsum(-1) - 1).clamp(min=0)
            logits = lm(inputs_embeds=embeds, attention_mask=mask, position_ids=pos).logits
            nxt = logits[:, -1].argmax(-1)
            chosen.append(nxt)
            embeds = torch.cat([embeds, lm.get_input_embeddings()(nxt)[:, None]], dim=1)
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
    full = torch.stack(chosen, dim=1)
    expected = [tok.decode(row, skip_special_tokens=True).strip() for row in full]
    model.detach_hooks()
    assert answers == expected
