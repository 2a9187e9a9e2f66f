"""Many wearables in one event loop: a pipeline per device, shared model and sinks.

::

    gateway = Gateway(EdgeModel.load("model.tflite"), sinks=[open_sink("mqtt://pi:1883/ward3")])
    await gateway.run([open_ble_source("Polar H10 AE60D42F"), open_ble_source("ECG-1A2B")])

Each source is served by its own task. A failing device (a decode error, an exception in
its source, a bad block) is reported as an ``error`` event and never stops the others; a
failing sink is reported on stderr once and skipped from then on.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass, field
from typing import Any, Iterable

from .errors import AnyECGError
from .model import EdgeModel
from .pipeline import DevicePipeline, PipelineConfig
from .sources.base import SampleBlock, Source, SourceEvent

__all__ = ["Gateway"]


@dataclass
class Gateway:
    """Serves sources into per-device pipelines and sends every report to every sink.

    Args:
        model: the model all devices share (one interpreter; the loop runs one window at a time).
        sinks: objects with ``emit(item)`` and ``close()``.
        config: pipeline settings for every device.
    """

    model: EdgeModel
    sinks: list = field(default_factory=list)
    config: PipelineConfig = PipelineConfig()
    pipelines: dict[str, DevicePipeline] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)

    def pipeline(self, device: str) -> DevicePipeline:
        """The pipeline of ``device`` (made on first use)."""
        pipe = self.pipelines.get(device)
        if pipe is None:
            pipe = self.pipelines[device] = DevicePipeline(device, self.model, self.config)
        return pipe

    def emit(self, item: Any) -> None:
        """Send one report or event to every working sink."""
        for sink in list(self.sinks):
            try:
                sink.emit(item)
            except Exception as exc:  # noqa: BLE001 - one broken sink must not stop the devices
                print(f"anyecg-edge: sink {type(sink).__name__} failed and is disabled: {exc}", file=sys.stderr)
                self.sinks.remove(sink)

    def handle(self, item: SampleBlock | SourceEvent) -> list:
        """Process one item from a source; returns the window reports it produced."""
        if isinstance(item, SourceEvent):
            self.events[item.kind] = self.events.get(item.kind, 0) + 1
            self.emit(item)
            return []
        try:
            reports = self.pipeline(item.device).push(item)
        except (AnyECGError, ValueError) as exc:
            self.emit(SourceEvent(item.device, "error", f"block dropped: {exc}"))
            return []
        for report in reports:
            self.emit(report)
        return reports

    async def serve(self, source: Source) -> None:
        """Run one source to its end; errors become ``error`` events."""
        device = getattr(source, "device", "?")
        iterator = source.__aiter__()
        try:
            async for item in iterator:
                self.handle(item)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported, and the other devices go on
            self.emit(SourceEvent(getattr(source, "device", device), "error", f"{type(exc).__name__}: {exc}"))
        finally:
            try:
                aclose = getattr(iterator, "aclose", None)
                if aclose is not None:
                    await aclose()
                await source.close()
            except Exception as exc:  # noqa: BLE001
                self.emit(SourceEvent(device, "error", f"closing failed: {type(exc).__name__}: {exc}"))

    async def run(self, sources: Iterable[Source], *, duration_s: float | None = None) -> dict:
        """Serve all sources until they end (or ``duration_s`` passes, or the task is cancelled).

        Returns:
            :meth:`stats`.
        """
        tasks = [asyncio.ensure_future(self.serve(s)) for s in sources]
        try:
            done, pending = await asyncio.wait(tasks, timeout=duration_s) if tasks else (set(), set())
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return self.stats()

    def stats(self) -> dict:
        """Per-device counters (see :meth:`DevicePipeline.stats`) and event counts."""
        return {"devices": {name: p.stats() for name, p in self.pipelines.items()}, "events": dict(self.events)}

    def close(self) -> None:
        """Close every sink."""
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as exc:  # noqa: BLE001
                print(f"anyecg-edge: closing sink {type(sink).__name__} failed: {exc}", file=sys.stderr)
