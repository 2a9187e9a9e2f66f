"""Estimates: what the runtime reports for one lab value of one device at one time.

Per accepted window the pipeline makes one :class:`Estimate` per model output
(``scope="window"``), and, once ``n`` accepted windows are at hand, one more per output
aggregated over the last ``n`` of them (``scope="aggregate"``), with
:func:`anyecg_edge.windows.aggregate`, the same step Pocket-K applies to the three 10 s
clips of a 30 s recording. By default the aggregate takes windows that do not overlap
(the newest accepted window, then the newest one ending before it starts, ...), so with a
2 s hop three windows still cover 30 s of ECG as the three Pocket-K clips do.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np

from .labels import LabelSpec
from .windows import AGGREGATIONS, aggregate

__all__ = ["Aggregator", "Estimate", "Latency", "iso_time", "make_estimates"]


def iso_time(t: float) -> str:
    """Unix seconds as ISO 8601 UTC with milliseconds."""
    return datetime.fromtimestamp(t, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Latency:
    """Where the time went for one window, in milliseconds.

    ``arrival_to_window``: from the arrival of the packet that completed the window to the
    window being cut (resampling, buffering); ``preprocess``: canonical preprocessing;
    ``quality``: the quality gate; ``inference``: quantise, invoke, dequantise;
    ``total``: packet arrival to estimate.
    """

    arrival_to_window: float
    preprocess: float
    quality: float
    inference: float
    total: float

    def as_dict(self) -> dict:
        return {k: round(v, 3) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class Estimate:
    """One lab value (or probability) for one device and time.

    Attributes:
        device: device id.
        time: host time (Unix seconds) of the end of the newest window used.
        lab: output name from the model's label spec.
        value: lab value in ``unit`` (regression) or probability (binary).
        unit: unit of ``value`` ("probability" for binary outputs).
        kind: "regression" or "binary".
        band: risk band from the label spec, or None where it defines none.
        above_threshold: for binary outputs with a threshold, whether ``value`` reaches it.
        scope: "window" (one window) or "aggregate" (over ``windows`` accepted windows).
        windows: number of windows the value is computed from.
        quality: quality verdict of the newest window ("ok" for estimates).
        heart_rate_bpm: heart rate the quality gate measured in the newest window.
        latency: latency breakdown of the newest window.
        window_start: host time of the first sample of the oldest window used.
    """

    device: str
    time: float
    lab: str
    value: float
    unit: str
    kind: str
    band: str | None
    above_threshold: bool | None
    scope: str
    windows: int
    quality: str
    heart_rate_bpm: float | None
    latency: Latency
    window_start: float

    def as_dict(self) -> dict:
        return {
            "type": "estimate",
            "device": self.device,
            "time": iso_time(self.time),
            "t": round(self.time, 3),
            "lab": self.lab,
            "value": round(float(self.value), 6),
            "unit": self.unit,
            "kind": self.kind,
            "band": self.band,
            "above_threshold": self.above_threshold,
            "scope": self.scope,
            "windows": self.windows,
            "quality": self.quality,
            "heart_rate_bpm": None if self.heart_rate_bpm is None else round(self.heart_rate_bpm, 1),
            "window_start": iso_time(self.window_start),
            "latency_ms": self.latency.as_dict(),
        }


def make_estimates(
    spec: LabelSpec,
    values: np.ndarray,
    *,
    device: str,
    time: float,
    window_start: float,
    scope: str,
    windows: int,
    latency: Latency,
    heart_rate_bpm: float | None = None,
    quality: str = "ok",
) -> list[Estimate]:
    """One :class:`Estimate` per output of ``spec`` from a row of model values."""
    out = []
    for output, value in zip(spec.outputs, np.asarray(values, dtype=np.float64).reshape(-1)):
        above = None if output.threshold is None else bool(value >= output.threshold)
        out.append(
            Estimate(
                device=device,
                time=time,
                lab=output.name,
                value=float(value),
                unit=output.unit,
                kind=output.kind,
                band=output.band(float(value)),
                above_threshold=above,
                scope=scope,
                windows=windows,
                quality=quality,
                heart_rate_bpm=heart_rate_bpm,
                latency=latency,
                window_start=window_start,
            )
        )
    return out


@dataclass
class Aggregator:
    """Keeps a device's recent accepted windows and combines the last ``n`` of them.

    Args:
        n: windows per aggregate (Pocket-K: 3); 0 or 1 turns aggregation off.
        method: "mean" or "median".
        non_overlapping: pick windows that do not overlap each other.
        max_age_s: windows older than this (relative to the newest) are not used.
    """

    n: int = 3
    method: str = "mean"
    non_overlapping: bool = True
    max_age_s: float = 120.0
    _history: deque = field(default_factory=lambda: deque(maxlen=64), repr=False)

    def __post_init__(self) -> None:
        if self.method not in AGGREGATIONS:
            raise ValueError(f"unknown aggregation {self.method!r}; choose from {AGGREGATIONS}")
        if self.n < 0:
            raise ValueError("n must be >= 0")

    def add(self, t_start: float, t_end: float, values: np.ndarray) -> tuple[np.ndarray, int, float] | None:
        """Record one accepted window; return (aggregate values, windows used, oldest start) or None."""
        self._history.append((t_start, t_end, np.asarray(values, dtype=np.float64)))
        if self.n <= 1:
            return None
        chosen = []
        boundary = np.inf
        for start, end, row in reversed(self._history):
            if t_end - end > self.max_age_s:
                break
            if self.non_overlapping and end > boundary + 1e-9:
                continue
            chosen.append((start, row))
            boundary = start
            if len(chosen) == self.n:
                break
        if len(chosen) < self.n:
            return None
        return aggregate(np.stack([row for _, row in chosen]), self.method), self.n, min(s for s, _ in chosen)
