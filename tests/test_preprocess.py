"""The canonical preprocessing against an independent, straightforward scipy computation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal as sps

from anyecg_edge.errors import PreprocessingError
from anyecg_edge.preprocess import (
    PREPROCESSING_VERSION,
    WINDOW_SAMPLES,
    PreprocessConfig,
    check_version,
    fit_length,
    preprocess_window,
    replace_nonfinite,
    resample,
)
from anyecg_edge.records import read_record
from anyecg_edge.windows import aggregate, record_windows, window_starts



def reference(x: np.ndarray, fs: float, mains: float = 50.0) -> np.ndarray:
    """ECGFounder's dataset.py steps, written out plainly for one lead of exactly 10 s."""
    up, down = {200: (5, 2), 300: (5, 3), 360: (25, 18), 500: (1, 1), 1000: (1, 2)}[int(fs)]
    x = sps.resample_poly(x, up, down) if up != down else np.asarray(x, float)
    b, a = sps.iirnotch(mains, 30, 500)
    x = sps.filtfilt(b, a, x)
    b, a = sps.butter(N=4, Wn=[0.67, 40], btype="bandpass", fs=500)
    x = sps.filtfilt(b, a, x)
    kernel = int(0.4 * 500) + 1  # 201, already odd
    x = x - sps.medfilt(x, kernel)
    x = x[:5000]
    return (x - np.mean(x)) / (np.std(x) + 1e-8)


@pytest.mark.parametrize("fs", [200, 300, 360, 500, 1000])
def test_matches_reference_at_every_rate(fs, records_by_rate):
    record = read_record(records_by_rate[fs])
    assert record.fs == fs
    names = [n.upper() for n in record.leads]
    lead = "MLII" if "MLII" in names else "I"
    raw = record.lead(lead)[: int(10 * fs)]
    expected = reference(raw, fs)
    got = record_windows(raw, fs)[0, 0]
    assert got.dtype == np.float32 and got.shape == (WINDOW_SAMPLES,)
    np.testing.assert_allclose(got, expected, atol=2e-5)


def test_60hz_mains_setting_removes_60hz():
    t = np.arange(WINDOW_SAMPLES) / 500
    x = np.sin(2 * np.pi * 1.2 * t) + 0.5 * np.sin(2 * np.pi * 60 * t)

    def hum(config):
        spectrum = np.abs(np.fft.rfft(preprocess_window(x, config)[0]))
        return spectrum[600]  # the 60 Hz bin of a 10 s window

    assert hum(PreprocessConfig(mains_hz=60)) < hum(PreprocessConfig(mains_hz=50)) / 20


def test_output_is_zscored_over_all_leads_together():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, WINDOW_SAMPLES)) * np.array([[1.0], [5.0]])
    out = preprocess_window(x)
    assert abs(out.mean()) < 1e-5 and abs(out.std() - 1) < 1e-4
    # one z-score, not per lead: the louder lead stays louder
    assert out[1].std() > 2 * out[0].std()


def test_refuses_bad_input():
    with pytest.raises(PreprocessingError, match="non-finite"):
        x = np.zeros(WINDOW_SAMPLES)
        x[10] = np.nan
        preprocess_window(x)
    with pytest.raises(PreprocessingError, match="shorter"):
        preprocess_window(np.zeros(100))
    with pytest.raises(PreprocessingError, match="mains_hz"):
        PreprocessConfig(mains_hz=55)
    with pytest.raises(PreprocessingError, match="not implemented"):
        check_version("ecgfounder-v0")
    check_version(PREPROCESSING_VERSION)


def test_short_segment_is_padded_symmetrically_after_filtering():
    rng = np.random.default_rng(1)
    out = preprocess_window(rng.normal(size=4000))[0]
    assert out.shape == (WINDOW_SAMPLES,)
    # 500 zeros each side before the z-score: constant there
    assert np.ptp(out[:500]) == 0 and np.ptp(out[-500:]) == 0 and np.ptp(out[500:4500]) > 0


def test_fit_length_crops_centre_and_pads():
    x = np.arange(10.0)
    np.testing.assert_array_equal(fit_length(x, 6), np.arange(2.0, 8.0))
    np.testing.assert_array_equal(fit_length(x, 12), np.r_[0.0, x, 0.0])


def test_nonfinite_replaced_and_counted():
    x = np.array([1.0, np.nan, np.inf, -np.inf, 2.0])
    with pytest.warns(UserWarning, match="3 non-finite"):
        y, count = replace_nonfinite(x)
    assert count == 3 and np.array_equal(y, [1.0, 0, 0, 0, 2.0])


@pytest.mark.parametrize("fs, n_out", [(130, 5000), (250, 5000), (300, 5000), (360, 5000), (1000, 5000), (128.5, 5000)])
def test_resample_length(fs, n_out):
    x = np.sin(np.arange(int(round(10 * fs))) / fs * 2 * np.pi)
    assert abs(resample(x, fs).shape[-1] - n_out) <= 1


def test_resample_rejects_bad_rates():
    with pytest.raises(PreprocessingError):
        resample(np.zeros(10), 0)
    with pytest.raises(PreprocessingError):
        resample(np.zeros(10), float("nan"))


def test_record_windows_and_aggregation_follow_pocket_k(records_by_rate):
    record = read_record(records_by_rate[200])
    lead = record.lead("I")[: 30 * 200]  # a 30 s measurement
    windows = record_windows(lead, 200)
    assert windows.shape == (3, 1, WINDOW_SAMPLES)  # three 10 s clips
    np.testing.assert_allclose(windows[1, 0], record_windows(lead[2000:4000 + 2000], 200)[0, 0], atol=0.5)
    assert window_starts(12000, 5000, 1000) == [0, 1000, 2000, 3000, 4000, 5000, 6000, 7000]
    scores = np.array([[0.2, 4.0], [0.4, 5.0], [0.9, 6.0]])
    np.testing.assert_allclose(aggregate(scores), [0.5, 5.0])
    np.testing.assert_allclose(aggregate(scores, "median"), [0.4, 5.0])
    with pytest.raises(ValueError):
        aggregate(scores, "max")


@pytest.mark.parametrize("mains", [50.0, 60.0])
def test_zero_phase_filters_equal_scipy_filtfilt(mains):
    from anyecg_edge.preprocess import filter_coefficients

    notch, band, kernel = filter_coefficients(500, mains)
    x = np.random.default_rng(3).normal(size=(3, 1500))
    for f in (notch, band):
        np.testing.assert_array_equal(f(x), sps.filtfilt(f.b, f.a, x, axis=-1))
        np.testing.assert_array_equal(f(x[0]), sps.filtfilt(f.b, f.a, x[0]))
    assert kernel == 201
