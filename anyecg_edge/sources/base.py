"""What every source yields: timestamped blocks of samples with sequence information.

A *source* is an async iterator. BLE wearables, a replayed record file and the virtual
wearable all yield the same two things:

* :class:`SampleBlock`: consecutive samples of one lead in mV with the host time of the
  first sample, the device's sample index of the first sample (``sequence``) and the
  index the stream would have reached without loss (``expected_sequence``), so a gap is
  visible as ``sequence != expected_sequence`` and its size in samples is known;
* :class:`SourceEvent`: something to report that is not samples (connected,
  disconnected, a gap, a corrupt packet, a stalled stream, a heart rate from the Heart
  Rate service).

A source never stitches samples across a reconnect: the first block of a new connection
has ``restart=True``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import AsyncIterator, Protocol, Union, runtime_checkable

import numpy as np

__all__ = ["SampleBlock", "SourceEvent", "Source", "SourceItem", "EVENT_KINDS"]

#: Kinds of :class:`SourceEvent`.
EVENT_KINDS = (
    "connected",
    "disconnected",
    "reconnecting",
    "gap",
    "corrupt",
    "stalled",
    "heart_rate",
    "error",
    "end",
)


@dataclass(frozen=True)
class SampleBlock:
    """Consecutive samples of one lead from one device.

    Attributes:
        device: device id (BLE address or name, file name).
        samples: 1-D float64 samples in mV.
        fs: nominal sampling rate in Hz.
        t_first: host time (seconds since the Unix epoch) of ``samples[0]``; for BLE the
            device clock mapped onto host time.
        sequence: index of ``samples[0]`` in the device's sample stream (from packet
            sequence numbers or timestamps).
        expected_sequence: the index the stream would have reached had nothing been lost
            (the previous block's ``sequence + len(samples)``); equal to ``sequence`` when
            the stream is contiguous.
        restart: first block of a new connection or stream; never joined to earlier samples.
        lead_off: the device reports an electrode off (or sample values are invalid).
        saturated: the device reports its input range exceeded.
        arrival: ``time.perf_counter()`` when the packet reached the host; the start of
            every latency measurement.
    """

    device: str
    samples: np.ndarray
    fs: float
    t_first: float
    sequence: int
    expected_sequence: int
    restart: bool = False
    lead_off: bool = False
    saturated: bool = False
    arrival: float = field(default_factory=time.perf_counter)

    @property
    def gap(self) -> bool:
        """True when this block does not continue the previous one."""
        return self.restart or self.sequence != self.expected_sequence

    @property
    def lost_samples(self) -> int:
        """Samples missing between the previous block and this one (0 when contiguous)."""
        return max(0, self.sequence - self.expected_sequence) if not self.restart else 0

    @property
    def duration(self) -> float:
        return len(self.samples) / self.fs


@dataclass(frozen=True)
class SourceEvent:
    """A report from a source that is not samples.

    Attributes:
        device: device id.
        kind: one of :data:`EVENT_KINDS`.
        message: a sentence for people.
        time: host time (Unix seconds).
        data: machine-readable details (``lost_samples``, ``heart_rate_bpm``,
            ``rr_intervals_s``, ``attempt``, ``delay_s`` ...).
    """

    device: str
    kind: str
    message: str = ""
    time: float = field(default_factory=time.time)
    data: dict = field(default_factory=dict)


SourceItem = Union[SampleBlock, SourceEvent]


@runtime_checkable
class Source(Protocol):
    """An async iterator of :class:`SampleBlock` and :class:`SourceEvent` for one device.

    ``close()`` ends the iteration cleanly (for BLE: stop command, then disconnect).
    """

    device: str

    def __aiter__(self) -> AsyncIterator[SourceItem]: ...

    async def close(self) -> None: ...
