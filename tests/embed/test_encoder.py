"""Encoder resolution and loading: the built-in model, other HF folders, refusals."""

import json
import socket
from pathlib import Path

import numpy as np
import pytest

from qagen.embed.config import TINY_ENCODER
from qagen.embed.encoder import load_encoder, resolve_encoder, weights_sha256
from qagen.embed.tiny import PROVENANCE_FILE, TINY_DIRNAME, tiny_model_dir
from qagen.errors import ConfigError, MissingDependencyError

SR = 24000


def _second_model(folder: Path, **overrides: object) -> Path:
    """A different HuBERT/MERT-format folder: pre-norm (like MERT-v1-330M), other dims."""
    from transformers import HubertConfig, HubertModel

    kwargs: dict[str, object] = dict(
        hidden_size=48, num_hidden_layers=3, num_attention_heads=4, intermediate_size=96,
        conv_dim=[16] * 7, conv_kernel=[10, 3, 3, 3, 3, 2, 2], conv_stride=[5, 2, 2, 2, 2, 2, 2],
        conv_bias=True, feat_extract_norm="layer", do_stable_layer_norm=True,
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)
    kwargs.update(overrides)
    HubertModel(HubertConfig(**kwargs)).save_pretrained(folder)  # type: ignore[arg-type]
    return folder


def test_tiny_model_is_built_deterministically_once(tmp_path: Path, tiny_home: Path) -> None:
    again = tiny_model_dir(cache_root=tmp_path)
    first = tiny_home / "models" / TINY_DIRNAME
    assert weights_sha256(again) == weights_sha256(first)
    assert json.loads((again / PROVENANCE_FILE).read_text())["random_init"] is True
    mtime = (again / "model.safetensors").stat().st_mtime_ns
    assert tiny_model_dir(cache_root=tmp_path) == again  # reused, not rebuilt
    assert (again / "model.safetensors").stat().st_mtime_ns == mtime
    assert not list((tmp_path / "models").glob(".*tmp*"))


def test_tiny_model_loads_through_the_folder_path(tiny_home: Path) -> None:
    builtin = resolve_encoder(TINY_ENCODER, cache_root=tiny_home)
    as_folder = resolve_encoder(str(builtin.path))
    assert builtin.random_init and as_folder.random_init
    assert builtin.weights_sha256 == as_folder.weights_sha256 and as_folder.revision is None
    enc = load_encoder(as_folder, sr=SR, device="cpu")
    assert (enc.num_states, enc.hidden_size, enc.frame_rate_hz) == (5, 64, 75.0)
    assert enc.min_samples == 400  # MERT-v1 receptive field: 400 samples, 16.7 ms at 24 kHz
    y = np.random.default_rng(0).standard_normal(5 * SR).astype(np.float32)
    sums, frames = enc.forward([y, y[::-1].copy()], frame_layer=-1)
    assert sums.shape == (2, 5, 64) and sums.dtype == np.float64
    assert frames is not None and frames.shape == (2, 374, 64)  # 5 s → 374 frames (75/s)
    # Frames of the last layer sum to the last row of sums.
    assert np.allclose(frames[0].sum(axis=0), sums[0, -1], rtol=1e-4, atol=1e-3)
    assert not np.allclose(sums[0], sums[1])


def test_another_hf_folder_loads_and_its_last_state_is_post_norm(tmp_path: Path) -> None:
    import torch

    folder = _second_model(tmp_path / "m")  # no preprocessor_config.json: a default is used
    enc = load_encoder(resolve_encoder(str(folder)), sr=SR, device="cpu")
    assert (enc.num_states, enc.hidden_size) == (4, 48) and not enc.source.random_init
    y = np.random.default_rng(1).standard_normal(SR).astype(np.float32)
    sums, frames = enc.forward([y], frame_layer=None)
    assert frames is None and sums.shape == (1, 4, 48)
    values = enc.processor([y], sampling_rate=SR, return_tensors="pt")["input_values"]
    with torch.inference_mode():
        last = enc.model(input_values=values).last_hidden_state[0]
    assert np.allclose(sums[0, -1] / last.shape[0], last.mean(dim=0).numpy(), atol=1e-5)


def test_legacy_weight_norm_names_load_like_mert_checkpoints(tmp_path: Path,
                                                             tiny_home: Path) -> None:
    """MERT's pytorch_model.bin names the positional conv weight_g / weight_v."""
    import shutil

    import torch
    from safetensors.torch import load_file

    src = tiny_model_dir(cache_root=tiny_home)
    state = {k.replace("parametrizations.weight.original0", "weight_g")
             .replace("parametrizations.weight.original1", "weight_v"): v
             for k, v in load_file(src / "model.safetensors").items()}
    assert any(k.endswith("weight_g") for k in state)
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    for name in ("config.json", "preprocessor_config.json"):
        shutil.copy(src / name, legacy / name)
    torch.save(state, legacy / "pytorch_model.bin")
    y = np.random.default_rng(2).standard_normal(SR).astype(np.float32)
    a, _ = load_encoder(resolve_encoder(str(src)), sr=SR, device="cpu").forward(
        [y], frame_layer=None)
    b, _ = load_encoder(resolve_encoder(str(legacy)), sr=SR, device="cpu").forward(
        [y], frame_layer=None)
    assert np.array_equal(a, b)


def test_weights_that_do_not_fit_are_refused(tmp_path: Path, tiny_home: Path) -> None:
    folder = _second_model(tmp_path / "m")
    (folder / "model.safetensors").unlink()
    import shutil

    shutil.copy(tiny_model_dir(cache_root=tiny_home) / "model.safetensors", folder)
    with pytest.raises(ConfigError, match="does not fit HubertModel"):
        load_encoder(resolve_encoder(str(folder)), sr=SR, device="cpu")


def test_cqt_front_end_and_wrong_rate_are_refused(tmp_path: Path, tiny_home: Path) -> None:
    import shutil

    src = tiny_model_dir(cache_root=tiny_home)
    folder = tmp_path / "cqt"
    shutil.copytree(src, folder)
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, "feature_extractor_cqt": True}))
    with pytest.raises(ConfigError, match="feature_extractor_cqt"):
        load_encoder(resolve_encoder(str(folder)), sr=SR, device="cpu")
    with pytest.raises(ConfigError, match="expects 24000 Hz"):
        load_encoder(resolve_encoder(str(src)), sr=16000, device="cpu")


def test_jukebox_is_refused_with_what_it_needs() -> None:
    with pytest.raises(MissingDependencyError, match=r"jukemirlib.*not on PyPI.*10 GB.*CUDA"):
        resolve_encoder("jukebox")


def test_uncached_hub_id_is_refused_without_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def no_network(*_a: object, **_k: object) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    repo = "qagen-tests/no-such-model-7f3a"
    pattern = f"not in the local Hugging Face cache.*hf download {repo}"
    with pytest.raises(ConfigError, match=pattern):
        resolve_encoder(repo)
    with pytest.raises(ConfigError, match="--revision v2"):
        resolve_encoder(repo, revision="v2")


@pytest.mark.parametrize("name", ["./no/such/folder", "/no/such/folder", "not an id"])
def test_missing_folders_and_bad_names_are_refused(name: str) -> None:
    with pytest.raises(ConfigError, match="neither an existing folder nor a Hugging Face id"):
        resolve_encoder(name)


def test_a_folder_without_weights_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match="holds no weights"):
        resolve_encoder(str(tmp_path))


def test_weights_with_missing_parameters_are_refused(tmp_path: Path, tiny_home: Path) -> None:
    import shutil

    from safetensors.torch import load_file, save_file

    src = tiny_model_dir(cache_root=tiny_home)
    folder = tmp_path / "partial"
    shutil.copytree(src, folder)
    state = {k: v for k, v in load_file(src / "model.safetensors").items()
             if not k.startswith("encoder.layers.3.")}
    save_file(state, folder / "model.safetensors")
    with pytest.raises(ConfigError, match=r"lack \['encoder\.layers\.3\."):
        load_encoder(resolve_encoder(str(folder)), sr=SR, device="cpu")
