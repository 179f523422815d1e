"""Feature standardisation: fitted on training clips, identity before, saved with the adapter."""

import numpy as np
import torch

from qagen.train.adapter import MuLlamaAdapter
from qagen.train.feature_norm import FeatureNorm
from qagen.train.projector import LlarkProjector


def test_fit_standardises_each_dimension_and_leaves_constants_alone() -> None:
    rng = np.random.default_rng(0)
    clips = [np.stack([rng.normal(5.0, 0.01, 4), np.full(4, 3.0)]) for _ in range(50)]
    norm = FeatureNorm((2, 4))
    x = torch.from_numpy(np.stack(clips)).float()
    assert torch.equal(norm(x), x)  # identity until fitted
    assert norm.fit(clips) == 50
    y = norm(x)
    assert torch.allclose(y[:, 0].mean(0), torch.zeros(4), atol=1e-4)
    assert torch.allclose(y[:, 0].std(0, unbiased=False), torch.ones(4), atol=1e-3)
    assert torch.allclose(y[:, 1], torch.zeros(4))  # constant: centred, not divided by ~0


def test_frames_are_pooled_over_time_for_the_projector() -> None:
    rng = np.random.default_rng(1)
    clips = [rng.normal(2.0, 3.0, size=(int(rng.integers(5, 20)), 6)) for _ in range(30)]
    proj = LlarkProjector(enc_dim=6, lm_dim=8, kind="linear")
    assert proj.feature_norm.fit(clips) == sum(len(c) for c in clips)
    frames = np.concatenate(clips)
    assert np.allclose(proj.feature_norm.mean.numpy(), frames.mean(0), atol=1e-5)
    assert np.allclose(proj.feature_norm.std.numpy(), frames.std(0), atol=1e-5)


def test_the_statistics_travel_in_the_adapters_state_dict() -> None:
    a = MuLlamaAdapter(enc_layers=3, enc_dim=5, lm_dim=8, lm_heads=2, lm_layers=2, n_layers=1,
                       prefix_len=1, blocks=1, ffn_mult=2)
    a.feature_norm.fit([np.full((3, 5), 7.0), np.full((3, 5), 9.0)])
    b = MuLlamaAdapter(enc_layers=3, enc_dim=5, lm_dim=8, lm_heads=2, lm_layers=2, n_layers=1,
                       prefix_len=1, blocks=1, ffn_mult=2)
    b.load_state_dict(a.state_dict())
    assert torch.allclose(b.feature_norm.mean, torch.full((3, 5), 8.0))
    assert torch.allclose(b.feature_norm.std, torch.ones(3, 5))
