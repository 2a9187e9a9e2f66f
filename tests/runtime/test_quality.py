"""The quality gate: clean real ECG passes; each fault is rejected with its reason."""

from __future__ import annotations

import numpy as np
import pytest

from anyecg_edge.preprocess import preprocess_window, resample
from anyecg_edge.quality import QualityConfig, assess, detect_r_peaks, heart_rate
from anyecg_edge.records import read_record

from .conftest import DATA


@pytest.fixture(scope="module")
def clean() -> np.ndarray:
    """Ten seconds of real lead I at 500 Hz, mV (mitdb 100 is 360 Hz)."""
    record = read_record(DATA / "mitdb" / "100")
    return resample(record.lead("MLII")[: 360 * 10 + 200], 360)[:5000]


def gate(raw, **flags):
    processed = preprocess_window(raw)[0] if np.all(np.isfinite(raw)) else None
    return assess(raw, processed, QualityConfig(), **flags)


def test_clean_real_ecg_passes_with_a_plausible_heart_rate(clean):
    verdict = gate(clean)
    assert verdict.ok, verdict.reason
    assert 60 <= verdict.heart_rate_bpm <= 90  # mitdb 100: sinus rhythm about 75 bpm


@pytest.mark.parametrize("path,lead", [("cinc2021/E07500", "I"), ("cpsc2021/data_101_6", "I"), ("ptbdb/s0010_re", "i")])
def test_other_real_records_pass(path, lead):
    record = read_record(DATA / path)
    raw = resample(record.lead(lead), record.fs)[:5000]
    assert gate(raw).ok


def test_flat_line(clean):
    raw = clean.copy()
    raw[1000:2000] = raw[1000]
    verdict = gate(raw)
    assert not verdict.ok and verdict.reason.startswith("flat line")


def test_clipped_signal_is_saturation(clean):
    raw = clean.copy()
    raw[2000:2600] = 20.0
    verdict = gate(raw)
    assert not verdict.ok and verdict.reason.startswith("saturation")


def test_device_flags(clean):
    assert gate(clean, lead_off=True).reason.startswith("lead-off")
    assert gate(clean, saturated=True).reason.startswith("saturation")


def test_noise_burst(clean):
    raw = clean.copy()
    raw[3000:3700] += np.random.default_rng(0).normal(0, 0.5, 700)
    verdict = gate(raw)
    assert not verdict.ok and verdict.reason.startswith("excessive noise"), verdict


def test_non_finite(clean):
    raw = clean.copy()
    raw[10] = np.nan
    verdict = gate(raw)
    assert not verdict.ok and verdict.reason.startswith("non-finite")


def beats(bpm: float) -> np.ndarray:
    x = np.zeros(5000)
    x[np.arange(100, 5000, int(round(500 * 60 / bpm)))] = 1.0
    return np.convolve(x, np.hanning(25), mode="same") + 0.01 * np.sin(np.arange(5000) / 50)


@pytest.mark.parametrize("bpm", [22, 250])
def test_implausible_heart_rate(bpm):
    verdict = gate(beats(bpm))
    assert not verdict.ok and verdict.reason.startswith("implausible heart rate"), verdict


def test_plausible_synthetic_rate_passes():
    assert gate(beats(60)).ok


def test_r_peak_detector_on_synthetic_beats():
    x = np.zeros(5000)
    x[np.arange(100, 5000, 400)] = 1.0  # 75 bpm
    x = np.convolve(x, np.hanning(25), mode="same")
    peaks = detect_r_peaks(x)
    assert heart_rate(peaks) == pytest.approx(75, abs=0.5)
