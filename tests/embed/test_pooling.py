"""Windowing and time pooling: bin k of the output is time [k/rate, (k+1)/rate)."""

import itertools

import numpy as np
import pytest

from qagen.embed.pooling import chunk_bounds, pool_frames


@pytest.mark.parametrize(("n", "chunk", "tail", "expected"), [
    (0, 10, 3, []),
    (7, 10, 3, [(0, 7)]),
    (20, 10, 3, [(0, 10), (10, 20)]),
    (22, 10, 3, [(0, 10), (10, 22)]),  # 2-sample tail joins the previous window
    (23, 10, 3, [(0, 10), (10, 20), (20, 23)]),
])
def test_chunk_bounds(n: int, chunk: int, tail: int, expected: list[tuple[int, int]]) -> None:
    got = chunk_bounds(n, chunk_samples=chunk, min_tail_samples=tail)
    assert got == expected
    if got:
        assert got[0][0] == 0 and got[-1][1] == n
        assert all(a[1] == b[0] for a, b in itertools.pairwise(got))


def test_pool_frames_averages_each_time_bin() -> None:
    rate_in, rate_out, seconds = 75.0, 10.0, 2.05
    times = np.arange(int(seconds * rate_in)) / rate_in
    frames = np.stack([times, -times], axis=1).astype(np.float32)
    out = pool_frames(frames, times, rate_hz=rate_out, duration_s=seconds)
    assert out.shape == (21, 2) and out.dtype == np.float32
    for k in range(21):
        inside = times[(times >= k / rate_out - 1e-9) & (times < (k + 1) / rate_out - 1e-9)]
        assert out[k, 0] == pytest.approx(inside.mean(), abs=1e-6)
        assert out[k, 1] == pytest.approx(-inside.mean(), abs=1e-6)


def test_pool_frames_fills_empty_bins_and_follows_window_times() -> None:
    # Two windows of 3 frames at 1 Hz starting at 0 s and 5 s: bins 3 and 4 hold no frame.
    times = np.array([0, 1, 2, 5, 6, 7], dtype=float)
    frames = np.arange(6, dtype=np.float32)[:, None]
    out = pool_frames(frames, times, rate_hz=1.0, duration_s=8.0)
    assert out[:, 0].tolist() == [0, 1, 2, 2, 2, 3, 4, 5]


def test_pool_frames_rejects_unsorted_times() -> None:
    with pytest.raises(ValueError, match="non-decreasing"):
        pool_frames(np.zeros((2, 1), np.float32), np.array([1.0, 0.0]), rate_hz=1.0,
                    duration_s=2.0)
