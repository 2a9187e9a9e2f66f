"""One gateway, several virtual wearables in one event loop; a faulty one never stops the rest."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("bumble")

from anyecg_edge.gateway import Gateway  # noqa: E402
from anyecg_edge.sources.ble import Backoff, open_ble_source  # noqa: E402


class Count:
    def __init__(self):
        self.events = []

    def emit(self, item):
        if hasattr(item, "kind"):
            self.events.append(item)

    def close(self):
        pass


async def test_many_wearables_one_loop(model, record_130hz):
    from firmware_bridge.bumble_backend import VirtualAir
    from firmware_bridge.virtual import Faults, VirtualWearable

    uv = np.round(record_130hz[: 130 * 60] * 1000)
    async with VirtualAir() as air:
        straps = [VirtualWearable(air, uv, 130, units="uV", speed=8.0) for _ in range(1)]
        straps.append(VirtualWearable(air, uv, 130, units="uV", speed=8.0, faults=Faults(drop_notifications=frozenset({30}))))
        straps.append(VirtualWearable(air, uv, 250, units="uV", profile="ecgstream", speed=8.0))
        for s in straps:
            await s.start()
        sink = Count()
        gateway = Gateway(model, [sink])
        sources = [open_ble_source(s.name, backend=air, backoff=Backoff(0.05, cap_s=0.2)) for s in straps]
        sources.append(open_ble_source("nobody", backend=air, scan_timeout_s=0.2, max_attempts=1))
        stats = await gateway.run(sources, duration_s=3.0)
    devices = stats["devices"]
    assert set(devices) == {s.name for s in straps}
    assert all(d["accepted"] > 0 for d in devices.values())
    assert devices[straps[1].name]["gaps"] == 1
    assert any(e.kind == "error" and e.device == "nobody" for e in sink.events)
