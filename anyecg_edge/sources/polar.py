"""Polar H10 ECG over the Polar Measurement Data (PMD) service, through bleak.

Session steps on a connected ``BleakClient`` (``ble.md`` §1 and §5):

1. enable indications on the PMD control point (responses arrive there);
2. subscribe to the PMD data characteristic;
3. write START ECG (130 Hz, 14 bit) and wait for the response (ALREADY_IN_STATE is fine);
4. decode every notification with :class:`firmware_bridge.pmd.EcgFrame`.

Sample times: a frame's timestamp stamps its *last* sample on the device clock. The
first frame maps the device clock onto host time. Between frames, the timestamp advance
``Δt`` says how many samples should have arrived (``Δt·fs``); when more than half a
frame (and at least 3 samples) is missing, the difference is a gap of that many samples;
a timestamp that goes back, or far fewer samples than frames claim, restarts the stream.
Samples at the ±20 000 µV input range mark the block saturated.

Use :func:`open_polar_source` (or :func:`anyecg_edge.sources.ble.open_ble_source`, which
picks the profile itself).
"""

from __future__ import annotations

import asyncio
import time
from typing import Callable

import numpy as np

from firmware_bridge import pmd
from firmware_bridge.errors import BridgeError, MalformedPacketError

from ..errors import SourceError
from .base import SampleBlock, SourceEvent, SourceItem

__all__ = ["PolarSession", "open_polar_source"]

POLAR_RATE_HZ = 130
POLAR_RANGE_UV = 20_000


class PolarSession:
    """One connection's PMD ECG stream; puts :class:`SampleBlock`/:class:`SourceEvent` via ``put``."""

    profile = "polar_h10"
    service_uuid = pmd.PMD_SERVICE_UUID
    #: Time between frames at the default MTU (73 samples at 130 Hz).
    frame_period_s = 73 / POLAR_RATE_HZ

    def __init__(self, client, device: str, put: Callable[[SourceItem], None], *, response_timeout_s: float = 5.0):
        self.client = client
        self.device = device
        self.put = put
        self.fs = float(POLAR_RATE_HZ)
        self.response_timeout_s = response_timeout_s
        self._responses: asyncio.Queue = asyncio.Queue()
        self._prev_ts: int | None = None
        self._next_seq = 0
        self._offset_s = 0.0
        self.frames = 0
        self.corrupt = 0

    async def start(self) -> None:
        """Enable indications, subscribe to data, send START and check the reply."""
        await self.client.start_notify(pmd.PMD_CONTROL_UUID, self._on_control)
        await self.client.start_notify(pmd.PMD_DATA_UUID, self._on_data)
        response = await self._command(pmd.encode_start_ecg(POLAR_RATE_HZ))
        if not response.ok and response.status != pmd.PmdStatus.ALREADY_IN_STATE:
            raise SourceError(f"the device refused START ECG: status {int(response.status)} ({response.status.name})", self.device)

    async def stop(self) -> None:
        """Send STOP ECG (the H10 streams until told or the link drops)."""
        try:
            await self._command(pmd.encode_stop_ecg(), timeout_s=2.0)
        finally:
            for uuid in (pmd.PMD_DATA_UUID, pmd.PMD_CONTROL_UUID):
                try:
                    await self.client.stop_notify(uuid)
                except Exception:  # noqa: BLE001 - the link may be gone already
                    pass

    async def _command(self, data: bytes, timeout_s: float | None = None) -> pmd.ControlPointResponse:
        while not self._responses.empty():
            self._responses.get_nowait()
        await self.client.write_gatt_char(pmd.PMD_CONTROL_UUID, data, response=True)
        try:
            return await asyncio.wait_for(self._responses.get(), timeout_s or self.response_timeout_s)
        except asyncio.TimeoutError:
            raise SourceError(f"no PMD control point response to {data.hex(' ')} (indications enabled?)", self.device) from None

    def _on_control(self, _char, data: bytearray) -> None:
        try:
            response = pmd.ControlPointResponse.from_bytes(bytes(data))
        except MalformedPacketError as exc:
            self.put(SourceEvent(self.device, "corrupt", f"control point: {exc}"))
            return
        self._responses.put_nowait(response)

    def _on_data(self, _char, data: bytearray) -> None:
        arrival = time.perf_counter()
        try:
            frame = pmd.EcgFrame.from_bytes(bytes(data))
        except BridgeError as exc:
            self.corrupt += 1
            self.put(SourceEvent(self.device, "corrupt", str(exc), data={"corrupt_packets": self.corrupt}))
            return
        self.put_frame(frame, arrival)

    def put_frame(self, frame: pmd.EcgFrame, arrival: float | None = None) -> SampleBlock:
        """Turn one decoded frame into a block (gap detection from timestamps) and put it."""
        arrival = time.perf_counter() if arrival is None else arrival
        n = len(frame)
        ts = frame.timestamp_ns
        restart = self._prev_ts is None
        sequence = expected = self._next_seq
        if restart:
            self._offset_s = time.time() - pmd.polar_to_unix_ns(ts) / 1e9
        else:
            missing = (ts - self._prev_ts) * self.fs / 1e9 - n
            tolerance = max(3.0, 0.5 * n)
            if ts <= self._prev_ts or missing < -tolerance:
                restart = True
                self.put(SourceEvent(self.device, "gap", "device timestamps went back or ran short; stream restarted"))
            elif missing > tolerance:
                lost = int(round(missing))
                sequence = expected + lost
                self.put(SourceEvent(self.device, "gap", f"{lost} samples missing ({lost / self.fs:.2f} s)", data={"lost_samples": lost}))
        self._prev_ts = ts
        self._next_seq = sequence + n
        samples_uv = frame.samples_uv
        block = SampleBlock(
            device=self.device,
            samples=samples_uv / 1000.0,
            fs=self.fs,
            t_first=pmd.polar_to_unix_ns(ts) / 1e9 - (n - 1) / self.fs + self._offset_s,
            sequence=sequence,
            expected_sequence=expected,
            restart=restart,
            saturated=bool(np.any(np.abs(samples_uv) >= POLAR_RANGE_UV)),
            arrival=arrival,
        )
        self.frames += 1
        self.put(block)
        return block


def open_polar_source(target: str | None = None, *, backend=None, **options):
    """A :class:`~anyecg_edge.sources.ble.BleSource` for a Polar H10 (name, address or None: the first found).

    ``options`` are those of :class:`~anyecg_edge.sources.ble.BleSource`.
    """
    from .ble import BleSource

    return BleSource(target, profile="polar_h10", backend=backend, **options)
