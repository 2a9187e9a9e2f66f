"""The live terminal view: one line per window with estimates and latencies, plain ANSI.

It is a sink (``emit``/``close``), so the gateway feeds it like any other. Colours are used
only on a terminal (and never when ``NO_COLOR`` is set).
"""

from __future__ import annotations

import os
import sys
from datetime import datetime
from typing import IO, Any

import numpy as np

from .pipeline import WindowReport
from .sources.base import SourceEvent

__all__ = ["LiveView"]

_COLOURS = {"ok": "32", "reject": "33", "event": "36", "high": "31", "low": "34", "dim": "2"}


class LiveView:
    """Prints window verdicts, estimates (window or aggregate) and latencies as they come.

    Args:
        stream: where to print (stdout).
        scope: "aggregate" shows aggregated estimates once available, "window" always
            the single-window values.
        colour: None decides from the stream (a terminal and no ``NO_COLOR``).
    """

    def __init__(self, stream: IO[str] | None = None, *, scope: str = "aggregate", colour: bool | None = None):
        self.stream = stream or sys.stdout
        self.scope = scope
        if colour is None:
            colour = hasattr(self.stream, "isatty") and self.stream.isatty() and not os.environ.get("NO_COLOR")
        self.colour = colour
        self.latencies: dict[str, list[float]] = {k: [] for k in ("arrival_to_window", "preprocess", "quality", "inference", "total")}
        self.windows = 0
        self.accepted = 0

    def _c(self, text: str, key: str) -> str:
        return f"\x1b[{_COLOURS[key]}m{text}\x1b[0m" if self.colour else text

    def emit(self, item: Any) -> None:
        if isinstance(item, SourceEvent):
            if item.kind != "heart_rate":
                self._print(f"{_clock(item.time)}  {item.device}  {self._c(item.kind, 'event')}: {item.message}")
            else:
                self._print(f"{_clock(item.time)}  {item.device}  heart rate {item.data.get('heart_rate_bpm')} bpm")
            return
        if not isinstance(item, WindowReport):
            return
        self.windows += 1
        lat = item.latency
        for key in self.latencies:
            self.latencies[key].append(getattr(lat, key))
        head = f"{_clock(item.window.t_end)}  {item.device}"
        if not item.verdict.ok:
            self._print(f"{head}  {self._c('rejected', 'reject')}: {item.verdict.reason}")
            return
        self.accepted += 1
        chosen = [e for e in item.estimates if e.scope == "aggregate"] if self.scope == "aggregate" else []
        chosen = chosen or [e for e in item.estimates if e.scope == "window"]
        parts = []
        for e in chosen:
            value = f"{e.value:.2f} {e.unit}" if e.kind == "regression" else f"p={e.value:.2f}"
            band = f" {self._c(e.band, 'high' if e.band == 'high' else 'low' if e.band == 'low' else 'dim')}" if e.band else ""
            parts.append(f"{e.lab} {value}{band}")
        used = chosen[0].windows if chosen else 1
        hr = f"HR {item.verdict.heart_rate_bpm:.0f}" if item.verdict.heart_rate_bpm else "HR -"
        self._print(
            f"{head}  {self._c('ok', 'ok')} {hr}  [{used} win]  " + ", ".join(parts)
            + self._c(f"  | {lat.preprocess:.1f}+{lat.quality:.1f}+{lat.inference:.1f} ms, total {lat.total:.1f} ms", "dim")
        )

    def _print(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()

    def summary(self) -> dict[str, tuple[float, float]]:
        """(p50, p99) in ms of every latency stage seen so far."""
        return {
            k: (float(np.percentile(v, 50)), float(np.percentile(v, 99))) for k, v in self.latencies.items() if v
        }

    def close(self) -> None:
        self.stream.flush()


def _clock(t: float) -> str:
    return datetime.fromtimestamp(t).strftime("%H:%M:%S")
