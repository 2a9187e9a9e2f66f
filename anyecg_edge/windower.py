"""Per-device ring buffer: 500 Hz samples in, a 10 s window every hop out, never across a gap.

:class:`Windower` takes :class:`~anyecg_edge.sources.base.SampleBlock` objects of one
device, resamples them to 500 Hz with :class:`~anyecg_edge.resampler.StreamResampler`
and emits a :class:`Window` each time ``hop`` new final samples complete one. Window
positions count from the start of the current *segment* (a run of contiguous samples),
``0, hop, 2*hop, ...`` exactly as the offline :func:`anyecg_edge.windows.record_windows`
counts them from the start of a recording.

A block that does not continue the previous one (a sequence jump, a restart after a
reconnect, a change of rate) ends the segment: the resampler history and the buffer are
dropped, the lost samples are counted, and windows start again from the next block.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .preprocess import TARGET_FS, WINDOW_SAMPLES
from .resampler import StreamResampler
from .sources.base import SampleBlock

__all__ = ["Window", "Windower", "WindowerStats"]

_LEAD_OFF = 1
_SATURATED = 2


@dataclass(frozen=True)
class Window:
    """One window of final 500 Hz samples (mV) of one device.

    Attributes:
        device: device id.
        samples: float64 (window_samples,) at 500 Hz.
        segment: number of the contiguous segment the window belongs to (0, 1, ...).
        start: index of the first sample in the segment (500 Hz samples).
        t_start: host time (Unix seconds) of the first sample.
        lead_off, saturated: a block whose samples are in the window carried the flag.
        arrival: ``perf_counter`` arrival of the block that completed the window.
        ready: ``perf_counter`` when the window was cut.
    """

    device: str
    samples: np.ndarray
    segment: int
    start: int
    t_start: float
    lead_off: bool
    saturated: bool
    arrival: float
    ready: float

    @property
    def t_end(self) -> float:
        return self.t_start + len(self.samples) / TARGET_FS


@dataclass
class WindowerStats:
    """Counters of one device's stream."""

    blocks: int = 0
    samples: int = 0
    lost_samples: int = 0
    gaps: int = 0
    restarts: int = 0
    windows: int = 0
    segments: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Windower:
    """Cut one device's stream into windows of ``window`` samples every ``hop`` samples at 500 Hz.

    Args:
        device: device id (stamped on windows).
        hop_s: seconds between window starts (rounded to whole 500 Hz samples as offline).
        window: samples per window (5000).
    """

    device: str
    hop_s: float = 2.0
    window: int = WINDOW_SAMPLES
    stats: WindowerStats = field(default_factory=WindowerStats)

    def __post_init__(self) -> None:
        self.hop = int(round(self.hop_s * TARGET_FS))
        if self.hop <= 0:
            raise ValueError(f"hop must be positive, not {self.hop_s!r} s")
        self._resampler: StreamResampler | None = None
        self._buf = np.zeros(2 * self.window + self.hop)
        self._flags = np.zeros(len(self._buf), dtype=np.uint8)
        self._segment = -1
        self._new_segment()

    def _new_segment(self) -> None:
        self._segment += 1
        self._fill = 0  # samples in _buf
        self._buf_start = 0  # segment index of _buf[0]
        self._next_start = 0  # segment index of the next window's first sample
        self._t0: float | None = None
        if self._resampler is not None:
            self._resampler.reset()

    def push(self, block: SampleBlock) -> list[Window]:
        """Add one block; return the windows it completes (often none)."""
        stats = self.stats
        stats.blocks += 1
        stats.samples += len(block.samples)
        if self._resampler is None or self._resampler.fs_in != float(block.fs):
            self._resampler = StreamResampler(block.fs)
            if self._t0 is not None:
                self._new_segment()
        elif block.gap and self._t0 is not None:
            stats.gaps += not block.restart
            stats.restarts += block.restart
            stats.lost_samples += block.lost_samples
            self._new_segment()
        if self._t0 is None:
            self._t0 = block.t_first
            stats.segments += 1
        y = self._resampler.push(block.samples)
        if len(y) == 0:
            return []
        flags = (_LEAD_OFF if block.lead_off else 0) | (_SATURATED if block.saturated else 0)
        self._append(y, flags)
        return self._cut(block.arrival)

    def _append(self, y: np.ndarray, flags: int) -> None:
        if self._fill + len(y) > len(self._buf):
            drop = min(self._next_start - self._buf_start, self._fill)
            keep = self._fill - drop
            self._buf[:keep] = self._buf[drop : self._fill]
            self._flags[:keep] = self._flags[drop : self._fill]
            self._buf_start += drop
            self._fill = keep
            if self._fill + len(y) > len(self._buf):
                size = max(2 * len(self._buf), self._fill + len(y))
                self._buf = np.concatenate([self._buf, np.zeros(size - len(self._buf))])
                self._flags = np.concatenate([self._flags, np.zeros(size - len(self._flags), dtype=np.uint8)])
        self._buf[self._fill : self._fill + len(y)] = y
        self._flags[self._fill : self._fill + len(y)] = flags
        self._fill += len(y)

    def _cut(self, arrival: float) -> list[Window]:
        out = []
        while self._buf_start + self._fill >= self._next_start + self.window:
            a = self._next_start - self._buf_start
            flags = np.bitwise_or.reduce(self._flags[a : a + self.window])
            out.append(
                Window(
                    device=self.device,
                    samples=self._buf[a : a + self.window].copy(),
                    segment=self._segment,
                    start=self._next_start,
                    t_start=self._t0 + self._next_start / TARGET_FS,
                    lead_off=bool(flags & _LEAD_OFF),
                    saturated=bool(flags & _SATURATED),
                    arrival=arrival,
                    ready=time.perf_counter(),
                )
            )
            self._next_start += self.hop
            self.stats.windows += 1
        return out

    @property
    def buffered_seconds(self) -> float:
        """500 Hz samples held in the current segment that no window has used yet, in seconds."""
        return max(0, self._buf_start + self._fill - self._next_start) / TARGET_FS
