"""The canonical ECGFounder window preprocessing: the one place it is implemented.

Training, calibration, evaluation and the device runtime all call :func:`preprocess_window`
on 500 Hz windows, so what a model sees on a wearable is what it saw in training.

Steps (ECGFounder ``dataset.py`` + ``util.py``, version ``ecgfounder-v1``), per lead:

1. zero-phase IIR notch at the mains frequency, Q = 30 (``iirnotch`` + ``filtfilt``);
2. zero-phase 4th-order Butterworth band-pass 0.67-40 Hz (``butter`` + ``filtfilt``);
3. baseline removal: subtract a median filter of ``int(0.4 * fs) + 1`` samples, forced odd
   (201 at 500 Hz), zero-padded at the ends as ``scipy.signal.medfilt`` does;
4. crop (centred) or zero-pad (symmetric) to the window length, as Pocket-K's deploy code;
5. one z-score over the whole (leads x time) array: ``(x - mean) / (std + 1e-8)``.

Resampling to 500 Hz (polyphase, :func:`resample`) and non-finite handling
(:func:`replace_nonfinite`) happen before, on the record or stream.

References:
    ECGFounder ``dataset.py``/``util.py`` (PKUDigitalHealth/ECGFounder, MIT); Pocket-K
    ``deploy_test_inference.py``; see ``docs/preprocessing.md``.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from scipy import signal

from .errors import AnyECGWarning, PreprocessingError

__all__ = [
    "PREPROCESSING_VERSION",
    "SUPPORTED_VERSIONS",
    "TARGET_FS",
    "WINDOW_SECONDS",
    "WINDOW_SAMPLES",
    "MIN_SECONDS",
    "PreprocessConfig",
    "check_version",
    "fit_length",
    "preprocess_window",
    "replace_nonfinite",
    "resample",
    "resample_ratio",
]

PREPROCESSING_VERSION = "ecgfounder-v1"
SUPPORTED_VERSIONS = (PREPROCESSING_VERSION,)
TARGET_FS = 500
WINDOW_SECONDS = 10
WINDOW_SAMPLES = TARGET_FS * WINDOW_SECONDS
#: Shortest segment the preprocessing accepts; shorter input is refused, not padded into noise.
MIN_SECONDS = 2.0


@dataclass(frozen=True)
class PreprocessConfig:
    """Settings of the canonical preprocessing. Only the mains frequency is a user choice."""

    mains_hz: float = 50.0
    window_samples: int = WINDOW_SAMPLES
    version: str = PREPROCESSING_VERSION

    notch_q = 30.0
    band_hz = (0.67, 40.0)
    band_order = 4
    baseline_seconds = 0.4
    eps = 1e-8

    def __post_init__(self) -> None:
        if self.mains_hz not in (50.0, 60.0):
            raise PreprocessingError(f"mains_hz must be 50 or 60, not {self.mains_hz!r}")
        if self.window_samples < MIN_SECONDS * TARGET_FS:
            raise PreprocessingError(f"window_samples must be at least {int(MIN_SECONDS * TARGET_FS)}")
        check_version(self.version)


def check_version(version: str) -> None:
    """Raise :class:`PreprocessingError` unless ``version`` is one this toolkit implements."""
    if version not in SUPPORTED_VERSIONS:
        raise PreprocessingError(
            f"preprocessing version {version!r} is not implemented by this toolkit "
            f"(it implements {', '.join(SUPPORTED_VERSIONS)}); upgrade anyecg-edge or re-export the model"
        )


@dataclass(frozen=True)
class ZeroPhaseFilter:
    """``scipy.signal.filtfilt(b, a, x, axis=-1)`` with its initial conditions solved once.

    filtfilt pads ``3 * max(len(a), len(b))`` samples by odd extension at each end and starts
    each pass from ``lfilter_zi(b, a)`` scaled by the first sample; solving for that vector
    on every call goes through LAPACK, which under load (and with a multi-threaded BLAS) can
    cost more than the filtering itself. The arithmetic is otherwise the same.
    """

    b: np.ndarray
    a: np.ndarray
    zi: np.ndarray
    padlen: int

    @classmethod
    def from_ba(cls, b: np.ndarray, a: np.ndarray) -> "ZeroPhaseFilter":
        return cls(b, a, signal.lfilter_zi(b, a), 3 * max(len(a), len(b)))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        n = self.padlen
        if x.shape[-1] <= n:
            raise PreprocessingError(f"segment of {x.shape[-1]} samples is too short to filter")
        ext = np.concatenate(
            [2 * x[..., :1] - x[..., n:0:-1], x, 2 * x[..., -1:] - x[..., -2 : -n - 2 : -1]], axis=-1
        )
        y, _ = signal.lfilter(self.b, self.a, ext, axis=-1, zi=self.zi * ext[..., :1])
        y = y[..., ::-1]
        y, _ = signal.lfilter(self.b, self.a, y, axis=-1, zi=self.zi * y[..., :1])
        return y[..., ::-1][..., n:-n]


@functools.lru_cache(maxsize=8)
def filter_coefficients(fs: float, mains_hz: float) -> tuple[ZeroPhaseFilter, ZeroPhaseFilter, int]:
    """(notch, band-pass, median kernel) for a sampling rate: the ECGFounder filters."""
    cfg = PreprocessConfig
    notch = ZeroPhaseFilter.from_ba(*signal.iirnotch(mains_hz, cfg.notch_q, fs))
    band = ZeroPhaseFilter.from_ba(*signal.butter(cfg.band_order, list(cfg.band_hz), btype="bandpass", fs=fs))
    kernel = int(cfg.baseline_seconds * fs) + 1
    if kernel % 2 == 0:
        kernel += 1
    return notch, band, kernel


def _as_leads_by_time(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        return x[None, :]
    if x.ndim != 2:
        raise PreprocessingError(f"expected a (samples,) or (leads, samples) array, got shape {x.shape}")
    return x


def replace_nonfinite(x: np.ndarray, *, warn: bool = True) -> tuple[np.ndarray, int]:
    """Replace NaN/Inf by 0 (as ECGFounder does) and return (array, count replaced).

    The count lets callers report the repair; the runtime instead rejects such windows.
    """
    x = np.asarray(x, dtype=np.float64)
    bad = ~np.isfinite(x)
    count = int(bad.sum())
    if count:
        x = np.where(bad, 0.0, x)
        if warn:
            warnings.warn(f"{count} non-finite samples replaced by 0", AnyECGWarning, stacklevel=2)
    return x, count


def resample_ratio(fs_in: float, fs_out: float = TARGET_FS) -> tuple[int, int]:
    """Polyphase (up, down) factors for ``fs_in -> fs_out`` (denominator capped at 1000)."""
    if not np.isfinite(fs_in) or fs_in <= 0:
        raise PreprocessingError(f"sampling rate must be a positive number, not {fs_in!r}")
    ratio = (Fraction(fs_out) / Fraction(fs_in).limit_denominator(10_000)).limit_denominator(1000)
    return ratio.numerator, ratio.denominator


def resample(x: np.ndarray, fs_in: float, fs_out: float = TARGET_FS) -> np.ndarray:
    """Polyphase resampling along the last axis (``scipy.signal.resample_poly``)."""
    x = np.asarray(x, dtype=np.float64)
    up, down = resample_ratio(fs_in, fs_out)
    if up == down:
        return x.copy()
    return signal.resample_poly(x, up, down, axis=-1)


def fit_length(x: np.ndarray, n: int) -> np.ndarray:
    """Centre-crop or symmetrically zero-pad the last axis to ``n`` samples."""
    length = x.shape[-1]
    if length == n:
        return x
    if length > n:
        start = (length - n) // 2
        return x[..., start : start + n]
    before = (n - length) // 2
    pad = [(0, 0)] * (x.ndim - 1) + [(before, n - length - before)]
    return np.pad(x, pad)


def preprocess_window(window: np.ndarray, config: PreprocessConfig = PreprocessConfig()) -> np.ndarray:
    """Canonical preprocessing of one 500 Hz segment; returns float32 (leads, window_samples).

    Args:
        window: (samples,) or (leads, samples) at 500 Hz, all values finite. A segment of
            exactly ``config.window_samples`` is the normal case; shorter ones (at least
            ``MIN_SECONDS``) are zero-padded after filtering, longer ones centre-cropped.
        config: mains frequency and window length.

    Returns:
        float32 array (leads, config.window_samples).

    Raises:
        PreprocessingError: non-finite samples, a segment shorter than ``MIN_SECONDS``,
            or a bad shape.
    """
    x = _as_leads_by_time(window)
    if x.shape[-1] < MIN_SECONDS * TARGET_FS:
        raise PreprocessingError(
            f"segment of {x.shape[-1]} samples is shorter than {MIN_SECONDS:g} s at {TARGET_FS} Hz"
        )
    if not np.all(np.isfinite(x)):
        raise PreprocessingError(
            f"segment holds {int((~np.isfinite(x)).sum())} non-finite samples; "
            "repair them first (replace_nonfinite) or reject the segment"
        )
    notch, band, kernel = filter_coefficients(TARGET_FS, config.mains_hz)
    x = band(notch(x))
    x = x - np.stack([signal.medfilt(lead, kernel) for lead in x])
    x = fit_length(x, config.window_samples)
    x = (x - x.mean()) / (x.std() + config.eps)
    return x.astype(np.float32)
