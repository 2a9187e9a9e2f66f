"""Our open ECG stream profile (``firmware_bridge/ecgstream.md``) through bleak.

Session steps: enable indications on the control characteristic, subscribe to data,
write SET_TIME (so packet timestamps are Unix time), then START at the requested rate,
and decode every notification with :class:`firmware_bridge.ecgstream.StreamPacket`.
Gaps come from the packet sequence numbers and first-sample indices
(:class:`firmware_bridge.ecgstream.StreamTracker`): the block's ``sequence`` is the
first-sample index, so missing samples are counted exactly. Lead-off and saturation
flags travel with the block. The first channel is the lead used.
"""

from __future__ import annotations

import asyncio
import time
from typing import Callable

from firmware_bridge import ecgstream as es
from firmware_bridge.errors import BridgeError, MalformedPacketError

from ..errors import SourceError
from .base import SampleBlock, SourceEvent, SourceItem

__all__ = ["EcgStreamSession", "open_ecgstream_source"]


class EcgStreamSession:
    """One connection's open-profile stream; puts blocks and events via ``put``."""

    profile = "ecgstream"
    service_uuid = es.ECGSTREAM_SERVICE_UUID
    frame_period_s = 0.5

    def __init__(self, client, device: str, put: Callable[[SourceItem], None], *, rate_hz: int = 250,
                 sample_format: es.SampleFormat = es.SampleFormat.INT16, response_timeout_s: float = 5.0):
        self.client = client
        self.device = device
        self.put = put
        self.rate_hz = rate_hz
        self.sample_format = sample_format
        self.response_timeout_s = response_timeout_s
        self.tracker = es.StreamTracker()
        self._responses: asyncio.Queue = asyncio.Queue()
        self._offset_s: float | None = None
        self.corrupt = 0
        self.config: es.StreamConfig | None = None

    async def start(self) -> None:
        await self.client.start_notify(es.ECGSTREAM_CONTROL_UUID, self._on_control)
        await self.client.start_notify(es.ECGSTREAM_DATA_UUID, self._on_data)
        await self._command(es.ControlCommand(es.ControlOp.SET_TIME, unix_time_us=int(time.time() * 1e6)))
        self.tracker.reset()
        response = await self._command(es.ControlCommand.start(self.rate_hz, self.sample_format))
        if not response.ok and response.status is not es.ControlStatus.INVALID_STATE:
            raise SourceError(f"the device refused START: {response.status.name}", self.device)
        self.config = response.config
        if self.config is not None:
            self.frame_period_s = es.max_samples_per_packet(self.client.mtu_size, self.sample_format) / self.config.sampling_rate_hz

    async def stop(self) -> None:
        try:
            await self._command(es.ControlCommand(es.ControlOp.STOP), timeout_s=2.0)
        finally:
            for uuid in (es.ECGSTREAM_DATA_UUID, es.ECGSTREAM_CONTROL_UUID):
                try:
                    await self.client.stop_notify(uuid)
                except Exception:  # noqa: BLE001 - the link may be gone already
                    pass

    async def _command(self, command: es.ControlCommand, timeout_s: float | None = None) -> es.ControlResponse:
        while not self._responses.empty():
            self._responses.get_nowait()
        await self.client.write_gatt_char(es.ECGSTREAM_CONTROL_UUID, bytes(command), response=True)
        try:
            return await asyncio.wait_for(self._responses.get(), timeout_s or self.response_timeout_s)
        except asyncio.TimeoutError:
            raise SourceError(f"no response to {command.op.name}", self.device) from None

    def _on_control(self, _char, data: bytearray) -> None:
        try:
            self._responses.put_nowait(es.ControlResponse.from_bytes(bytes(data)))
        except MalformedPacketError as exc:
            self.put(SourceEvent(self.device, "corrupt", f"control: {exc}"))

    def _on_data(self, _char, data: bytearray) -> None:
        arrival = time.perf_counter()
        try:
            packet = es.StreamPacket.from_bytes(bytes(data))
        except BridgeError as exc:
            self.corrupt += 1
            self.put(SourceEvent(self.device, "corrupt", str(exc), data={"corrupt_packets": self.corrupt}))
            return
        self.put_packet(packet, arrival)

    def put_packet(self, packet: es.StreamPacket, arrival: float | None = None) -> SampleBlock:
        """Turn one decoded packet into a block (gaps from sequence numbers) and put it."""
        arrival = time.perf_counter() if arrival is None else arrival
        continuity = self.tracker.feed(packet)
        restart = continuity.first or continuity.restarted
        if continuity.gap:
            lost = continuity.missing_samples
            self.put(SourceEvent(self.device, "gap", f"{lost} samples missing ({continuity.lost_packets} packets lost)",
                                 data={"lost_samples": lost, "lost_packets": continuity.lost_packets}))
        fs = float(packet.sampling_rate_hz)
        device_s = packet.timestamp_us / 1e6
        if packet.time_synced:
            t_first = device_s
        else:
            if restart or self._offset_s is None:
                self._offset_s = time.time() - (device_s + packet.count / fs)
            t_first = device_s + self._offset_s
        sequence = packet.first_sample_index
        block = SampleBlock(
            device=self.device,
            samples=packet.samples_uv[:, 0] / 1000.0,
            fs=fs,
            t_first=t_first,
            sequence=sequence,
            expected_sequence=sequence - (0 if restart else continuity.missing_samples),
            restart=restart,
            lead_off=packet.lead_off,
            saturated=packet.saturated,
            arrival=arrival,
        )
        self.put(block)
        return block


def open_ecgstream_source(target: str | None = None, *, backend=None, rate_hz: int = 250, **options):
    """A :class:`~anyecg_edge.sources.ble.BleSource` for an open-profile wearable."""
    from .ble import BleSource

    return BleSource(target, profile="ecgstream", backend=backend, session_options={"rate_hz": rate_hz}, **options)
