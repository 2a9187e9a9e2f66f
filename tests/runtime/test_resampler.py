"""The streaming resampler equals resample_poly on the whole signal, block size regardless."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anyecg_edge.preprocess import resample
from anyecg_edge.resampler import StreamResampler


def stream(x: np.ndarray, fs: float, sizes) -> np.ndarray:
    r = StreamResampler(fs)
    out, i = [], 0
    for n in sizes:
        out.append(r.push(x[i : i + n]))
        i += n
    out.append(r.push(x[i:]))
    return np.concatenate(out)


@pytest.mark.parametrize("fs", [130, 200, 250, 300, 360, 500, 1000, 257])
def test_equals_resample_poly_except_the_tail(fs):
    rng = np.random.default_rng(fs)
    x = rng.standard_normal(3000)
    sizes = rng.integers(1, 200, size=100)
    y = stream(x, fs, sizes)
    ref = resample(x, fs)
    assert 0 <= len(ref) - len(y) <= 60
    np.testing.assert_allclose(y, ref[: len(y)], rtol=0, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 97), min_size=1, max_size=40), st.sampled_from([130, 200, 360]))
def test_any_block_sizes_give_the_same_output(sizes, fs):
    x = np.sin(np.arange(sum(sizes) + 50) * 0.37)
    whole = stream(x, fs, [])
    pieces = stream(x, fs, sizes)
    np.testing.assert_array_equal(whole, pieces)


def test_history_stays_small_and_reset_forgets():
    r = StreamResampler(130)
    for _ in range(200):
        r.push(np.ones(73))
    assert len(r._history) < 200
    r.reset()
    assert r.n_in == r.n_out == 0
    first = r.push(np.arange(100.0))
    np.testing.assert_allclose(first, resample(np.arange(100.0), 130)[: len(first)], atol=1e-12)


def test_empty_push_is_harmless():
    r = StreamResampler(130)
    assert r.push(np.zeros(0)).size == 0
