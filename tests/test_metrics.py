"""Metrics against brute-force definitions and hand-computed cases."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantize import metrics as M


def brute_auroc(y, s):
    pos, neg = s[y == 1], s[y == 0]
    pairs = [(1.0 if p > n else 0.5 if p == n else 0.0) for p in pos for n in neg]
    return float(np.mean(pairs))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(-5, 5)), min_size=2, max_size=40))
def test_auroc_is_the_probability_a_positive_outranks_a_negative(pairs):
    y = np.array([p[0] for p in pairs], float)
    s = np.array([p[1] for p in pairs], float)
    if y.min() == y.max():
        assert math.isnan(M.auroc(y, s))
    else:
        assert M.auroc(y, s) == pytest.approx(brute_auroc(y, s))


def test_auroc_known_values():
    assert M.auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert M.auroc([0, 1], [0.2, 0.9]) == 1.0
    assert M.auroc([0, 1], [0.9, 0.2]) == 0.0
    assert M.auroc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5


def test_auprc_matches_hand_computed_average_precision():
    # Ranking: 0.8 (pos), 0.4 (neg), 0.35 (pos), 0.1 (neg): AP = 0.5 * 1 + 0.5 * 2/3.
    assert M.auprc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.5 + 1 / 3)
    assert M.auprc([1, 1, 0], [0.9, 0.8, 0.1]) == pytest.approx(1.0)
    # All tied: one operating point at prevalence.
    assert M.auprc([1, 0, 0, 0], [0.5] * 4) == pytest.approx(0.25)
    assert math.isnan(M.auprc([0, 0], [0.1, 0.2]))


def test_sensitivity_specificity_at_threshold():
    y = [1, 1, 1, 0, 0]
    s = [0.9, 0.5, 0.2, 0.5, 0.1]
    assert M.sensitivity_specificity(y, s, 0.5) == (pytest.approx(2 / 3), pytest.approx(0.5))
    sens, spec = M.sensitivity_specificity([0, 0], [0.1, 0.9], 0.5)
    assert math.isnan(sens) and spec == 0.5


def test_regression_metrics():
    y = np.array([3.0, 4.0, 5.0, 6.0])
    p = np.array([3.5, 4.0, 4.5, 7.0])
    assert M.mae(y, p) == pytest.approx(0.5)
    assert M.rmse(y, p) == pytest.approx(math.sqrt((0.25 + 0 + 0.25 + 1) / 4))
    assert M.pearson_r(y, 2 * y + 1) == pytest.approx(1.0)
    assert math.isnan(M.pearson_r(y, np.ones(4)))
    report = M.regression_report(y, p)
    assert report["bias"] == pytest.approx(0.25)
    assert report["sd_true"] == pytest.approx(np.std(y))


def test_pearson_interval_resamples_records():
    rng = np.random.default_rng(1)
    x = rng.normal(size=400)
    y = 0.8 * x + 0.6 * rng.normal(size=400)  # rho 0.8
    low, high = M.pearson_r_interval(x, y, np.arange(400))
    assert low < M.pearson_r(x, y) < high
    # Independent values: close to the Fisher z interval.
    z, se = math.atanh(M.pearson_r(x, y)), 1 / math.sqrt(400 - 3)
    assert low == pytest.approx(math.tanh(z - 1.96 * se), abs=0.015)
    assert high == pytest.approx(math.tanh(z + 1.96 * se), abs=0.015)
    assert M.pearson_r_interval(x, y, np.arange(400)) == (low, high)  # seeded
    # 80 records of 5 identical windows: as much information as 80 values, not 400.
    xs, ys = np.repeat(x[:80], 5), np.repeat(y[:80], 5)
    grouped = M.pearson_r_interval(xs, ys, np.repeat(np.arange(80), 5))
    by_window = M.pearson_r_interval(xs, ys, np.arange(400))
    assert grouped[1] - grouped[0] > 1.8 * (by_window[1] - by_window[0])
    assert M.pearson_r_interval(x, 2 * x + 1, np.arange(400) // 4) == pytest.approx((1.0, 1.0))
    assert all(math.isnan(v) for v in M.pearson_r_interval(x, y, np.zeros(400)))
    with pytest.raises(ValueError, match="groups has 3"):
        M.pearson_r_interval(x, y, [0, 1, 2])
    with pytest.raises(ValueError, match="level"):
        M.pearson_r_interval(x, y, np.arange(400), level=95)


def test_binary_report_and_bad_input():
    report = M.binary_report([0, 1, 1, 0], [0.2, 0.7, 0.6, 0.4], 0.5)
    assert report["auroc"] == 1.0 and report["positives"] == 2 and report["sensitivity"] == 1.0
    with pytest.raises(ValueError, match="only 0 and 1"):
        M.auroc([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="values"):
        M.auroc([0, 1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="non-finite"):
        M.auroc([0, 1], [0.1, float("nan")])
