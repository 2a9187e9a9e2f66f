"""The standard Heart Rate service through bleak: heart rate and RR intervals, no ECG.

A device that offers only the Heart Rate service (0x180D) cannot feed a lab model; its
notifications become ``heart_rate`` :class:`SourceEvent` objects (``data`` holds
``heart_rate_bpm``, ``rr_intervals_s`` and ``sensor_contact``) and no windows are made.
"""

from __future__ import annotations

from typing import Callable

from firmware_bridge import hrs
from firmware_bridge.errors import BridgeError

from .base import SourceEvent, SourceItem

__all__ = ["HeartRateSession", "open_hrs_source"]


class HeartRateSession:
    """One connection's Heart Rate Measurement notifications."""

    profile = "hrs"
    service_uuid = hrs.HRS_SERVICE_UUID
    frame_period_s = 1.0

    def __init__(self, client, device: str, put: Callable[[SourceItem], None], **_options):
        self.client = client
        self.device = device
        self.put = put
        self.corrupt = 0

    async def start(self) -> None:
        await self.client.start_notify(hrs.HR_MEASUREMENT_UUID, self._on_measurement)

    async def stop(self) -> None:
        try:
            await self.client.stop_notify(hrs.HR_MEASUREMENT_UUID)
        except Exception:  # noqa: BLE001 - the link may be gone already
            pass

    def _on_measurement(self, _char, data: bytearray) -> None:
        try:
            m = hrs.HeartRateMeasurement.from_bytes(bytes(data))
        except BridgeError as exc:
            self.corrupt += 1
            self.put(SourceEvent(self.device, "corrupt", str(exc), data={"corrupt_packets": self.corrupt}))
            return
        self.put(SourceEvent(
            self.device,
            "heart_rate",
            f"{m.heart_rate} bpm",
            data={"heart_rate_bpm": m.heart_rate, "rr_intervals_s": [round(r, 4) for r in m.rr_intervals_s],
                  "sensor_contact": m.sensor_contact},
        ))


def open_hrs_source(target: str | None = None, *, backend=None, **options):
    """A :class:`~anyecg_edge.sources.ble.BleSource` that reads only heart rate and RR."""
    from .ble import BleSource

    return BleSource(target, profile="hrs", backend=backend, **options)
