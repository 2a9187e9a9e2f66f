"""One device's pipeline: blocks -> 500 Hz -> windows -> preprocessing -> quality -> model -> estimates.

::

    pipeline = DevicePipeline("H10 AE60D42F", EdgeModel.load("model.tflite"))
    for block in blocks:                      # SampleBlock objects from any source
        for report in pipeline.push(block):   # WindowReport, one per window cut
            print(report.verdict.label, [e.as_dict() for e in report.estimates])

Every step is plain code; each window's latency is stamped with ``time.perf_counter``.
The pipeline is synchronous: a gateway runs many of them in one event loop
(:mod:`anyecg_edge.gateway`).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from .errors import PreprocessingError
from .estimates import Aggregator, Estimate, Latency, iso_time, make_estimates
from .model import EdgeModel
from .preprocess import PreprocessConfig, preprocess_window
from .quality import QualityConfig, Verdict, check_processed, check_raw
from .sources.base import SampleBlock
from .windower import Window, Windower

__all__ = ["DevicePipeline", "PipelineConfig", "WindowReport"]


@dataclass(frozen=True)
class PipelineConfig:
    """Settings of a device pipeline.

    Args:
        hop_s: seconds between windows; None takes the model's ``default_hop_s``.
        aggregate_windows: accepted windows per aggregated estimate (0/1: none).
        aggregation: "mean" or "median".
        non_overlapping: aggregate over windows that do not overlap (see :mod:`.estimates`).
        quality: thresholds of the quality gate.
        mains_hz: mains frequency of the notch where the device is used; None keeps the
            model's.
    """

    hop_s: float | None = None
    aggregate_windows: int = 3
    aggregation: str = "mean"
    non_overlapping: bool = True
    quality: QualityConfig = QualityConfig()
    mains_hz: float | None = None


@dataclass(frozen=True)
class WindowReport:
    """The outcome of one window: its verdict, and estimates when it was accepted."""

    window: Window
    verdict: Verdict
    latency: Latency
    estimates: tuple[Estimate, ...] = ()
    values: np.ndarray | None = None

    @property
    def device(self) -> str:
        return self.window.device

    def as_dict(self) -> dict:
        """The ``window`` JSON line (estimates are separate lines)."""
        w = self.window
        return {
            "type": "window",
            "device": w.device,
            "time": iso_time(w.t_end),
            "t": round(w.t_end, 3),
            "accepted": self.verdict.ok,
            "quality": self.verdict.label,
            "heart_rate_bpm": None if self.verdict.heart_rate_bpm is None else round(self.verdict.heart_rate_bpm, 1),
            "segment": w.segment,
            "start_s": round(w.start / 500.0, 3),
            "metrics": {k: round(float(v), 4) for k, v in self.verdict.metrics.items()},
            "latency_ms": self.latency.as_dict(),
        }


@dataclass
class DevicePipeline:
    """The per-device pipeline (see the module docstring)."""

    device: str
    model: EdgeModel
    config: PipelineConfig = PipelineConfig()
    rejected: Counter = field(default_factory=Counter)
    accepted: int = 0

    def __post_init__(self) -> None:
        info = self.model.info
        hop = self.config.hop_s if self.config.hop_s is not None else info.default_hop_s
        self.windower = Windower(self.device, hop_s=hop, window=info.window_samples)
        self.preprocess = info.preprocess
        if self.config.mains_hz is not None:
            self.preprocess = PreprocessConfig(mains_hz=self.config.mains_hz, window_samples=info.window_samples)
        self.aggregator = Aggregator(
            self.config.aggregate_windows, self.config.aggregation, self.config.non_overlapping
        )

    @property
    def hop_s(self) -> float:
        return self.windower.hop_s

    def push(self, block: SampleBlock) -> list[WindowReport]:
        """Feed one block; returns a report for every window it completed."""
        return [self.process(window) for window in self.windower.push(block)]

    def process(self, window: Window) -> WindowReport:
        """Preprocess, gate and (if accepted) estimate one window."""
        info, gate = self.model.info, self.config.quality
        t0 = time.perf_counter()
        verdict = check_raw(window.samples, gate, lead_off=window.lead_off, saturated=window.saturated) if gate.enabled else None
        processed = None
        t1 = t2 = time.perf_counter()
        if verdict is None:
            try:
                processed = preprocess_window(window.samples, self.preprocess)
            except PreprocessingError as exc:
                verdict = Verdict(False, f"non-finite: {exc}")
            t2 = time.perf_counter()
            if verdict is None:
                verdict = check_processed(window.samples, processed, gate) if gate.enabled else Verdict(True)
        t3 = time.perf_counter()
        preprocess_ms = (t2 - t1) * 1e3
        quality_ms = ((t1 - t0) + (t3 - t2)) * 1e3
        if not verdict.ok:
            self.rejected[verdict.reason.split(":")[0]] += 1
            latency = Latency((window.ready - window.arrival) * 1e3, preprocess_ms, quality_ms, 0.0, (t3 - window.arrival) * 1e3)
            return WindowReport(window, verdict, latency)
        values = self.model.predict(processed[None])[0]
        t4 = time.perf_counter()
        self.accepted += 1
        latency = Latency(
            (window.ready - window.arrival) * 1e3, preprocess_ms, quality_ms, (t4 - t3) * 1e3, (t4 - window.arrival) * 1e3
        )
        spec = info.label_spec
        common = dict(device=self.device, time=window.t_end, latency=latency, heart_rate_bpm=verdict.heart_rate_bpm)
        estimates = make_estimates(spec, values, window_start=window.t_start, scope="window", windows=1, **common)
        combined = self.aggregator.add(window.t_start, window.t_end, values)
        if combined is not None:
            agg_values, used, oldest = combined
            estimates += make_estimates(spec, agg_values, window_start=oldest, scope="aggregate", windows=used, **common)
        return WindowReport(window, verdict, latency, tuple(estimates), values)

    def stats(self) -> dict:
        """Counters: blocks, samples, lost samples, gaps, windows, accepted, rejected by reason."""
        out = self.windower.stats.as_dict()
        out["accepted"] = self.accepted
        out["rejected"] = dict(self.rejected)
        return out
