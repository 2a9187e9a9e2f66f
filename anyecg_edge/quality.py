"""The quality gate: is a window good enough to estimate from? A verdict with its reason.

Checks, in order (the first failure is the reason):

1. ``non-finite``: NaN or infinite samples (a corrupt file or packet);
2. ``lead-off``: the device flagged an electrode off for samples in the window;
3. ``saturation``: the device flagged its range exceeded, or the raw signal sits for a
   run of samples at an extreme value far from its median (a clipped amplifier);
4. ``flat line``: a second of the raw window with almost no variation (no contact, a
   stalled converter);
5. ``excessive noise``: on the preprocessed window, one second whose robust amplitude is
   far above the window's median (a motion or EMG burst), or too much power above the
   ECG band in the raw window;
6. ``implausible heart rate``: R peaks found by a simple detector give fewer than three
   beats or a rate outside 30-220 bpm.

Rejected windows never reach the model. The verdict also carries the measured numbers so
a sink can report why.

References:
    Pan J, Tompkins WJ. A real-time QRS detection algorithm. IEEE TBME 1985 (the
    band-pass, square and integrate idea of :func:`detect_r_peaks`, much simplified).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
from scipy import signal

from .preprocess import TARGET_FS

__all__ = ["QualityConfig", "Verdict", "assess", "detect_r_peaks", "heart_rate"]

REASONS = ("non-finite", "lead-off", "saturation", "flat line", "excessive noise", "implausible heart rate")


@dataclass(frozen=True)
class QualityConfig:
    """Thresholds of the gate (amplitudes in mV)."""

    flat_std_mv: float = 0.005
    saturation_run_s: float = 0.1
    noise_burst_ratio: float = 4.0
    hf_power_ratio: float = 0.25
    hf_band_hz: tuple[float, float] = (45.0, 95.0)
    min_bpm: float = 30.0
    max_bpm: float = 220.0
    enabled: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.min_bpm < self.max_bpm:
            raise ValueError("need 0 < min_bpm < max_bpm")


@dataclass(frozen=True)
class Verdict:
    """Outcome of the gate for one window.

    Attributes:
        ok: True when the window may be used.
        reason: the failed check (one of :data:`REASONS`) with a short detail, or None.
        heart_rate_bpm: the detector's heart rate, when it got that far.
        metrics: numbers the checks measured.
    """

    ok: bool
    reason: str | None = None
    heart_rate_bpm: float | None = None
    metrics: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return "ok" if self.ok else (self.reason or "rejected")


def _reject(reason: str, **metrics) -> Verdict:
    return Verdict(False, reason, metrics.pop("heart_rate_bpm", None), metrics)


def _longest_run(mask: np.ndarray) -> int:
    if not mask.any():
        return 0
    padded = np.concatenate([[0], mask.astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(padded))
    return int((edges[1::2] - edges[::2]).max())


def check_raw(raw: np.ndarray, config: QualityConfig, *, lead_off: bool = False, saturated: bool = False) -> Verdict | None:
    """Checks 1-4 on the raw 500 Hz window (mV); None when they pass."""
    bad = ~np.isfinite(raw)
    if bad.any():
        return _reject(f"non-finite: {int(bad.sum())} samples", non_finite=int(bad.sum()))
    if lead_off:
        return _reject("lead-off: reported by the device")
    if saturated:
        return _reject("saturation: reported by the device")
    run_limit = int(config.saturation_run_s * TARGET_FS)
    top, bottom = raw.max(), raw.min()
    span = top - bottom
    if span > 0:
        tol = 5e-3 * span
        centre = np.median(raw)
        run = max(
            _longest_run(raw >= top - tol) if top - centre > 0.5 * span else 0,
            _longest_run(raw <= bottom + tol) if centre - bottom > 0.5 * span else 0,
        )
        if run >= run_limit:
            return _reject(f"saturation: {run / TARGET_FS:.2f} s at the signal's extreme", saturation_run_s=run / TARGET_FS)
    seconds = raw[: len(raw) // TARGET_FS * TARGET_FS].reshape(-1, TARGET_FS)
    std = seconds.std(axis=1)
    flat = int((std < config.flat_std_mv).sum())
    if flat:
        return _reject(f"flat line: {flat} s below {config.flat_std_mv * 1000:g} uV", flat_seconds=flat)
    return None


def detect_r_peaks(x: np.ndarray, fs: float = TARGET_FS) -> np.ndarray:
    """Indices of R peaks in a band-passed ECG (a preprocessed window): a small Pan-Tompkins.

    The signal is band-passed to the QRS band (8-20 Hz, which damps tall T waves), squared
    and integrated over 100 ms; peaks of that envelope at least 200 ms apart and above 30 %
    of the median of its per-second maxima (robust to one artefact) are beats, each placed
    on the largest absolute value of ``x`` near it.
    """
    x = np.asarray(x, dtype=np.float64)
    if len(x) < fs:
        return np.zeros(0, dtype=int)
    qrs = signal.sosfiltfilt(_qrs_band(fs), x)
    width = max(1, int(0.1 * fs))
    envelope = np.convolve(qrs**2, np.ones(width) / width, mode="same")
    seconds = envelope[: len(envelope) // int(fs) * int(fs)].reshape(-1, int(fs))
    level = float(np.median(seconds.max(axis=1)))
    if level <= 0:
        return np.zeros(0, dtype=int)
    peaks, _ = signal.find_peaks(envelope, height=0.3 * level, distance=int(0.2 * fs))
    half = int(0.06 * fs)
    return np.array(
        [max(0, p - half) + int(np.argmax(np.abs(x[max(0, p - half) : p + half]))) for p in peaks], dtype=int
    )


@functools.lru_cache(maxsize=4)
def _qrs_band(fs: float) -> np.ndarray:
    return signal.butter(2, [8.0, 20.0], btype="bandpass", fs=fs, output="sos")


def heart_rate(peaks: np.ndarray, fs: float = TARGET_FS) -> float | None:
    """Median-RR heart rate in bpm, or None with fewer than three beats."""
    if len(peaks) < 3:
        return None
    return float(60.0 * fs / np.median(np.diff(peaks)))


def check_processed(raw: np.ndarray, processed: np.ndarray, config: QualityConfig) -> Verdict:
    """Checks 5-6 on the preprocessed window (and the raw one for out-of-band power)."""
    x = np.asarray(processed, dtype=np.float64).reshape(-1)
    seconds = x[: len(x) // TARGET_FS * TARGET_FS].reshape(-1, TARGET_FS)
    mad = np.median(np.abs(seconds - np.median(seconds, axis=1, keepdims=True)), axis=1)
    burst = float(mad.max() / max(np.median(mad), 1e-9))
    if burst > config.noise_burst_ratio:
        return _reject(f"excessive noise: a noise burst ({burst:.1f}x the window's level)", noise_burst_ratio=burst)
    freqs, power = signal.welch(raw - raw.mean(), fs=TARGET_FS, nperseg=1024)
    lo, hi = config.hf_band_hz
    ecg = power[(freqs >= 0.67) & (freqs < 40.0)].sum()
    hf = power[(freqs >= lo) & (freqs < hi)].sum()
    hf_ratio = float(hf / max(ecg, 1e-20))
    if hf_ratio > config.hf_power_ratio:
        return _reject(f"excessive noise: out-of-band power {hf_ratio:.2f} of the ECG band", hf_power_ratio=hf_ratio)
    bpm = heart_rate(detect_r_peaks(x))
    metrics = {"noise_burst_ratio": burst, "hf_power_ratio": hf_ratio}
    if bpm is None:
        return _reject("implausible heart rate: fewer than three beats found", **metrics)
    if not config.min_bpm <= bpm <= config.max_bpm:
        return _reject(f"implausible heart rate: {bpm:.0f} bpm", heart_rate_bpm=bpm, **metrics)
    return Verdict(True, None, bpm, metrics)


def assess(raw: np.ndarray, processed: np.ndarray | None, config: QualityConfig = QualityConfig(), **flags) -> Verdict:
    """The whole gate in one call (``processed`` None runs only the raw checks)."""
    verdict = check_raw(np.asarray(raw, dtype=np.float64), config, **flags)
    if verdict is not None:
        return verdict
    if processed is None:
        return Verdict(True)
    return check_processed(raw, processed, config)
