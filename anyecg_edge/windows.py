"""Cutting recordings into 10 s windows, and combining window scores into one estimate.

Pocket-K's handheld path cuts a 30 s measurement into three 10 s clips and reports the
mean of the clip scores; :func:`aggregate` is that step, shared by fine-tuning,
evaluation and the device runtime.
"""

from __future__ import annotations

import numpy as np

from .errors import PreprocessingError
from .preprocess import (
    MIN_SECONDS,
    TARGET_FS,
    PreprocessConfig,
    preprocess_window,
    replace_nonfinite,
    resample,
)

__all__ = ["AGGREGATIONS", "aggregate", "record_windows", "window_starts"]

AGGREGATIONS = ("mean", "median")


def window_starts(n_samples: int, window: int, hop: int) -> list[int]:
    """Start indices of full windows; a signal shorter than one window gives ``[0]``.

    Any tail shorter than a window after the last full one is left out, as in Pocket-K.
    """
    if hop <= 0 or window <= 0:
        raise ValueError("window and hop must be positive")
    if n_samples <= window:
        return [0]
    return list(range(0, n_samples - window + 1, hop))


def record_windows(
    signal: np.ndarray,
    fs: float,
    config: PreprocessConfig = PreprocessConfig(),
    hop_seconds: float | None = None,
) -> np.ndarray:
    """Canonically preprocessed windows of a whole recording: float32 (n, leads, samples).

    Non-finite samples are replaced by zeros (with an :class:`AnyECGWarning`), the
    signal is resampled to 500 Hz, cut into windows every ``hop_seconds`` (default: one
    window length, i.e. consecutive clips) and each window goes through
    :func:`preprocess_window`.
    """
    x = np.asarray(signal, dtype=np.float64)
    if x.ndim == 1:
        x = x[None, :]
    if x.shape[-1] < MIN_SECONDS * fs:
        raise PreprocessingError(f"recording of {x.shape[-1] / fs:.2f} s is shorter than {MIN_SECONDS:g} s")
    x, _ = replace_nonfinite(x)
    x = resample(x, fs, TARGET_FS)
    window = config.window_samples
    hop = window if hop_seconds is None else int(round(hop_seconds * TARGET_FS))
    return np.stack([preprocess_window(x[:, s : s + window], config) for s in window_starts(x.shape[-1], window, hop)])


def aggregate(scores: np.ndarray, method: str = "mean") -> np.ndarray:
    """Combine per-window outputs (n_windows, n_outputs) into one row (n_outputs,).

    Probabilities of binary outputs and values of regression outputs are averaged alike;
    ``median`` is more robust to one noisy window.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim == 1:
        scores = scores[:, None]
    if scores.shape[0] == 0:
        raise ValueError("no windows to aggregate")
    if method == "mean":
        return scores.mean(axis=0)
    if method == "median":
        return np.median(scores, axis=0)
    raise ValueError(f"unknown aggregation {method!r}; choose from {AGGREGATIONS}")
