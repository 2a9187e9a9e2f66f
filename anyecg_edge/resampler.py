"""Streaming polyphase resampling to 500 Hz, equal to ``scipy.signal.resample_poly``.

:class:`StreamResampler` takes samples in blocks of any size and returns the 500 Hz
samples that are *final*: every input sample their filter taps touch has arrived. Those
equal :func:`anyecg_edge.preprocess.resample` (``resample_poly`` on the whole signal,
same ``(up, down)``, same Kaiser-windowed FIR) to float rounding; only the last few output
samples that ``resample_poly`` computes from zero-padding past the end of a recording are
never produced, because a stream has no end.

How: ``resample_poly`` is ``upfirdn(h, x, up, down)`` with a zero-padded filter, trimmed.
Output ``k`` of ``upfirdn`` reads ``x[i]`` through tap ``h[k*down - i*up]``. The resampler
keeps the input history the next outputs need, starting at an input index that is a
multiple of ``down`` so the polyphase alignment is the same as on the whole signal, and
runs ``upfirdn`` on history + new block.

References:
    ``scipy.signal.resample_poly`` and ``scipy.signal.upfirdn`` (SciPy 1.x).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.signal import firwin, upfirdn

from .preprocess import TARGET_FS, resample_ratio

__all__ = ["StreamResampler", "polyphase_filter"]


def polyphase_filter(up: int, down: int) -> tuple[np.ndarray, int, int]:
    """The filter ``resample_poly`` uses: (h zero-padded in front, n_pre_pad, n_pre_remove)."""
    max_rate = max(up, down)
    half_len = 10 * max_rate
    h = firwin(2 * half_len + 1, 1.0 / max_rate, window=("kaiser", 5.0)) * up
    n_pre_pad = down - half_len % down
    n_pre_remove = (half_len + n_pre_pad) // down
    return np.concatenate([np.zeros(n_pre_pad), h]), n_pre_pad, n_pre_remove


class StreamResampler:
    """Stateful resampler from ``fs_in`` to ``fs_out`` (default 500 Hz) for one lead.

    Args:
        fs_in: nominal input rate in Hz.
        fs_out: output rate in Hz.

    Attributes:
        up, down: the polyphase factors (:func:`anyecg_edge.preprocess.resample_ratio`).
        n_in: input samples received.
        n_out: final output samples returned.
    """

    def __init__(self, fs_in: float, fs_out: float = TARGET_FS):
        up, down = resample_ratio(fs_in, fs_out)
        g = math.gcd(up, down)
        self.fs_in = float(fs_in)
        self.fs_out = float(fs_out)
        self.up, self.down = up // g, down // g
        self.passthrough = self.up == self.down
        if not self.passthrough:
            self._h, self._first_tap, self._pre_remove = polyphase_filter(self.up, self.down)
        self.reset()

    def reset(self) -> None:
        """Forget all history (after a gap); the next sample is input index 0."""
        self.n_in = 0
        self.n_out = 0
        self._history = np.zeros(0)
        self._history_start = 0  # input index of _history[0]; a multiple of down

    def push(self, x: np.ndarray) -> np.ndarray:
        """Add input samples; return the new final output samples (float64, maybe empty)."""
        x = np.asarray(x, dtype=np.float64).reshape(-1)
        if self.passthrough:
            self.n_in += len(x)
            self.n_out += len(x)
            return x.copy()
        if len(x) == 0:
            return np.zeros(0)
        up, down, h = self.up, self.down, self._h
        self._history = np.concatenate([self._history, x])
        self.n_in += len(x)
        # Output k (before trimming) is final when its last non-zero tap reads an input we have.
        k_final = (self.n_in * up - 1 + self._first_tap) // down
        m_final = k_final - self._pre_remove + 1  # final outputs available, counted from 0
        if m_final <= self.n_out:
            return np.zeros(0)
        y = upfirdn(h, self._history, up, down)
        offset = self._history_start * up // down  # upfirdn output index of k
        k0 = self.n_out + self._pre_remove
        out = y[k0 - offset : k_final + 1 - offset].copy()
        self.n_out = m_final
        # Keep the inputs the next output needs, from a multiple of down.
        k_next = self.n_out + self._pre_remove
        i_min = max(0, -(-(k_next * down - (len(h) - 1)) // up))
        new_start = (i_min // down) * down
        if new_start > self._history_start:
            self._history = self._history[new_start - self._history_start :]
            self._history_start = new_start
        return out
