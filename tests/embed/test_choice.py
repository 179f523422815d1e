"""``encoder="auto"``: a MERT in the local HF cache, else the embedded madmom features."""

import logging
from pathlib import Path

import pytest

from qagen.embed.choice import MERT_IDS, choose_encoder
from qagen.embed.madmom_features import MADMOM_ENCODER


def fake_snapshot(cache: Path, repo_id: str) -> None:
    """The layout huggingface_hub's cache uses: refs/main → snapshots/<rev>/config.json."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    snap = repo / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}")


@pytest.fixture
def hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    import huggingface_hub.constants as constants

    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache


def test_named_encoders_pass_through(hf_cache: Path) -> None:
    assert choose_encoder("qagen/mert-tiny-random") == "qagen/mert-tiny-random"
    assert choose_encoder("/some/folder") == "/some/folder"


def test_without_cached_mert_auto_is_the_madmom_encoder(
        hf_cache: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert choose_encoder(None, cuda=False) == MADMOM_ENCODER
    with caplog.at_level(logging.WARNING, logger="qagen.embed.choice"):
        assert choose_encoder("auto", cuda=True) == MADMOM_ENCODER
    assert "hf download m-a-p/MERT-v1-330M" in caplog.text


def test_a_cached_mert_wins_the_larger_first(hf_cache: Path) -> None:
    fake_snapshot(hf_cache, MERT_IDS[1])
    assert choose_encoder("auto", cuda=False) == "m-a-p/MERT-v1-95M"
    fake_snapshot(hf_cache, MERT_IDS[0])
    assert choose_encoder(None, cuda=False) == "m-a-p/MERT-v1-330M"
