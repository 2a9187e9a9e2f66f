"""Replay a recording (or an array) as a source: the blocks a wearable would send, as fast as asked.

``open_file_source("rec.hea", lead="I")`` reads the record with
:func:`anyecg_edge.records.read_record` and yields :class:`SampleBlock` objects of
``block_samples`` samples at the record's own rate, numbered contiguously. Samples are
passed on untouched: a NaN in the file reaches the quality gate, which rejects every
window it falls in.

``speed=None`` replays as fast as the pipeline goes; ``speed=1.0`` paces blocks in real
time, ``speed=10`` ten times faster.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import AsyncIterator

import numpy as np

from ..records import read_record
from .base import SampleBlock, SourceEvent, SourceItem

__all__ = ["ArraySource", "open_array_source", "open_file_source"]


class ArraySource:
    """Yields an in-memory single-lead signal (mV) as blocks.

    Args:
        samples: 1-D signal in mV.
        fs: sampling rate in Hz.
        device: device id.
        block_samples: samples per block (73: a Polar H10 frame at ATT MTU 232).
        speed: None for as fast as possible, else the replay speed relative to real time.
        t0: host time of the first sample (default: now).
    """

    def __init__(
        self,
        samples: np.ndarray,
        fs: float,
        device: str = "replay",
        *,
        block_samples: int = 73,
        speed: float | None = None,
        t0: float | None = None,
    ):
        self.samples = np.asarray(samples, dtype=np.float64).reshape(-1)
        self.fs = float(fs)
        self.device = device
        self.block_samples = int(block_samples)
        if self.block_samples <= 0:
            raise ValueError("block_samples must be positive")
        if speed is not None and speed <= 0:
            raise ValueError("speed must be positive (or None for as fast as possible)")
        self.speed = speed
        self.t0 = time.time() if t0 is None else float(t0)
        self._closed = False

    async def close(self) -> None:
        self._closed = True

    def blocks(self) -> list[SampleBlock]:
        """All blocks at once (synchronous use, tests and benchmarks)."""
        out = []
        for start in range(0, len(self.samples), self.block_samples):
            out.append(self._block(start))
        return out

    def _block(self, start: int) -> SampleBlock:
        chunk = self.samples[start : start + self.block_samples]
        return SampleBlock(
            device=self.device,
            samples=chunk,
            fs=self.fs,
            t_first=self.t0 + start / self.fs,
            sequence=start,
            expected_sequence=start,
            restart=start == 0,
        )

    async def __aiter__(self) -> AsyncIterator[SourceItem]:
        began = time.perf_counter()
        for start in range(0, len(self.samples), self.block_samples):
            if self._closed:
                break
            if self.speed is None:
                await asyncio.sleep(0)
            else:
                due = began + (start + self.block_samples) / self.fs / self.speed
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
            yield self._block(start)
        yield SourceEvent(self.device, "end", f"end of recording after {len(self.samples) / self.fs:.1f} s")


def open_array_source(samples: np.ndarray, fs: float, device: str = "replay", **kwargs) -> ArraySource:
    """An :class:`ArraySource` (same options)."""
    return ArraySource(samples, fs, device, **kwargs)


def open_file_source(
    path: str | Path,
    *,
    lead: str | None = "I",
    fs: float | None = None,
    device: str | None = None,
    **kwargs,
) -> ArraySource:
    """Replay one lead of a record file (WFDB, ``.npy``, CSV; see :func:`read_record`).

    Args:
        path: the record.
        lead: lead name; a single-lead record is taken as is.
        fs: sampling rate for files that do not state it.
        device: device id (default: the file name).
        **kwargs: ``block_samples``, ``speed``, ``t0`` of :class:`ArraySource`.

    Raises:
        RecordError: the file cannot be read or has no such lead.
    """
    record = read_record(path, fs=fs)
    return ArraySource(record.lead(lead), record.fs, device or Path(path).name, **kwargs)
