"""BLE sources through bleak's public API against virtual wearables on a bumble air.

The same 130 Hz µV stream goes through a virtual Polar H10 (PMD over GATT, bleak
``backend=``) and through the offline path; the estimates must be equal.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("bumble")

from anyecg_edge.gateway import Gateway  # noqa: E402
from anyecg_edge.pipeline import PipelineConfig, WindowReport  # noqa: E402
from anyecg_edge.sources.ble import Backoff, open_ble_source, scan  # noqa: E402
from anyecg_edge.sources.base import SourceEvent  # noqa: E402

from .test_stream_equals_offline import assert_stream_equals_offline  # noqa: E402

SPEED = 20.0
FAST = Backoff(first_s=0.05, cap_s=0.2)


class Collect:
    def __init__(self):
        self.reports: list[WindowReport] = []
        self.events: list[SourceEvent] = []

    def emit(self, item):
        (self.events if isinstance(item, SourceEvent) else self.reports).append(item)

    def close(self):
        pass

    def kinds(self):
        return [e.kind for e in self.events]


@pytest.fixture
async def air():
    from firmware_bridge.bumble_backend import VirtualAir

    async with VirtualAir() as the_air:
        yield the_air


@pytest.fixture(scope="module")
def uv_130(record_130hz):
    return np.round(record_130hz[: 130 * 60] * 1000)


async def wearable(air, signal, fs=130, **kwargs):
    from firmware_bridge.virtual import VirtualWearable

    w = VirtualWearable(air, signal, fs, units="uV", speed=kwargs.pop("speed", SPEED), **kwargs)
    await w.start()
    return w


async def serve(model, source, seconds, **config):
    sink = Collect()
    gateway = Gateway(model, [sink], PipelineConfig(**config))
    stats = await gateway.run([source], duration_s=seconds)
    return sink, stats


class Tap:
    """Passes a source through and keeps its first sample block."""

    def __init__(self, source):
        self.source = source
        self.device = source.device
        self.first = None

    async def __aiter__(self):
        from anyecg_edge.sources.base import SampleBlock

        async for item in self.source:
            if self.first is None and isinstance(item, SampleBlock):
                self.first = item
            yield item

    async def close(self):
        await self.source.close()


def offset_in(signal_uv, block) -> int:
    """Where the stream's first block starts in the replayed recording (the wearable's
    body clock has run a moment before START, so the stream begins a sample or two in)."""
    head = np.round(block.samples * 1000)
    n = len(head)
    hits = [i for i in range(200) if np.array_equal(signal_uv[i : i + n], head)]
    assert len(hits) == 1
    return hits[0]


async def test_scan_finds_both_profiles(air, uv_130):
    h10 = await wearable(air, uv_130)
    other = await wearable(air, uv_130, profile="ecgstream")
    found = {f.name: f.profile for f in await scan(0.5, backend=air)}
    assert found == {h10.name: "polar_h10", other.name: "ecgstream"}


async def test_virtual_h10_stream_equals_offline(air, model, uv_130):
    h10 = await wearable(air, uv_130)
    tap = Tap(open_ble_source(h10.name, backend=air, backoff=FAST))
    sink, stats = await serve(model, tap, 2.6, hop_s=2.0)
    assert sink.kinds()[0] == "connected"
    device = stats["devices"][h10.name]
    assert device["gaps"] == device["lost_samples"] == 0
    k = offset_in(uv_130, tap.first)
    assert_stream_equals_offline(model, sink.reports, uv_130[k:] / 1000, 130, min_windows=8)
    assert not h10.streaming  # STOP was sent on the way out


async def test_open_profile_is_chosen_from_services(air, model, record_130hz):
    from anyecg_edge.preprocess import resample

    uv_250 = np.round(resample(record_130hz[: 130 * 40], 130, 250) * 1000)
    dev = await wearable(air, uv_250, fs=250, profile="ecgstream")
    source = open_ble_source(dev.name, backend=air, backoff=FAST)
    tap = Tap(source)
    sink, stats = await serve(model, tap, 2.0)
    assert source.active_profile == "ecgstream"
    k = offset_in(uv_250, tap.first)
    assert_stream_equals_offline(model, sink.reports, uv_250[k:] / 1000, 250, min_windows=4)


async def test_heart_rate_only(air, model, uv_130):
    h10 = await wearable(air, uv_130, speed=1.0)
    sink, stats = await serve(model, open_ble_source(h10.name, backend=air, profile="hrs"), 2.5)
    beats = [e for e in sink.events if e.kind == "heart_rate"]
    assert beats and 40 < beats[-1].data["heart_rate_bpm"] < 180
    assert sink.reports == [] and stats["devices"] == {}


async def test_disconnect_reconnects_and_never_stitches(air, model, uv_130):
    from firmware_bridge.virtual import Faults

    h10 = await wearable(air, uv_130, faults=Faults(disconnect_after_s=14.0))
    sink, stats = await serve(model, open_ble_source(h10.name, backend=air, backoff=FAST), 3.5)
    kinds = sink.kinds()
    assert kinds.count("connected") >= 2 and "disconnected" in kinds and "reconnecting" in kinds
    device = stats["devices"][h10.name]
    assert device["restarts"] >= 1
    segments = {r.window.segment for r in sink.reports}
    assert len(segments) >= 2
    for r in sink.reports:  # each window lies within one connection
        assert r.window.start >= 0 and r.verdict.ok


async def test_dropped_notifications_are_gaps_from_timestamps(air, model, uv_130):
    from firmware_bridge.virtual import Faults

    h10 = await wearable(air, uv_130, faults=Faults(drop_notifications=frozenset({20, 21})))
    sink, stats = await serve(model, open_ble_source(h10.name, backend=air, backoff=FAST), 2.5)
    device = stats["devices"][h10.name]
    assert device["gaps"] == 1 and device["lost_samples"] == 2 * 73
    assert [e.data.get("lost_samples") for e in sink.events if e.kind == "gap"] == [146]
    assert len({r.window.segment for r in sink.reports}) == 2


async def test_stalled_stream_trips_the_watchdog(air, model, uv_130):
    from firmware_bridge.virtual import Faults

    h10 = await wearable(air, uv_130, faults=Faults(stall_after_s=4.0))
    source = open_ble_source(h10.name, backend=air, backoff=FAST, watchdog_s=0.4, first_data_s=2.0)
    sink, stats = await serve(model, source, 3.0)
    kinds = sink.kinds()
    assert "stalled" in kinds and kinds.count("connected") >= 2
    assert stats["devices"][h10.name]["blocks"] > 0


async def test_device_flags_and_noise_are_rejected_with_reasons(air, model, record_130hz):
    from anyecg_edge.preprocess import resample
    from firmware_bridge.virtual import Faults

    uv_250 = np.round(resample(record_130hz[: 130 * 60], 130, 250) * 1000)
    faults = Faults(lead_off=[(12.0, 13.0)], saturation=[(24.0, 25.0)], noise_bursts=[(36.0, 37.0)], noise_uv=1500.0)
    dev = await wearable(air, uv_250, fs=250, profile="ecgstream", faults=faults)
    sink, _ = await serve(model, open_ble_source(dev.name, backend=air, backoff=FAST), 3.2)
    reasons = {r.verdict.reason.split(":")[0] for r in sink.reports if not r.verdict.ok}
    assert {"lead-off", "saturation", "excessive noise"} <= reasons
    for r in sink.reports:
        assert (r.estimates != ()) == r.verdict.ok


async def test_missing_device_is_reported_and_retried(air, model):
    source = open_ble_source("Polar H10 DEADBEEF", backend=air, backoff=FAST, scan_timeout_s=0.2, max_attempts=2)
    sink, _ = await serve(model, source, 5.0)
    errors = [e for e in sink.events if e.kind == "error"]
    assert len(errors) >= 2 and "not found" in errors[0].message
