"""The virtual wearable through bleak's public API, over bumble's in-process BLE stack."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

pytest.importorskip("bumble")

from bleak import BleakClient, BleakScanner  # noqa: E402
from bleak.exc import BleakDeviceNotFoundError, BleakError  # noqa: E402

from firmware_bridge import ecgstream as es  # noqa: E402
from firmware_bridge import hrs, pmd  # noqa: E402
from firmware_bridge.virtual import POLAR_RANGE_UV, Faults, VirtualWearable, VirtualWearableError  # noqa: E402

SPEED = 20.0  # body seconds per wall second
LIVENESS = 20.0  # generous bound so a stuck stream fails instead of hanging


class Inbox:
    """Collects notifications; ``take(n)`` waits until n have arrived."""

    def __init__(self, decode=bytes):
        self.items: list = []
        self._decode = decode
        self._event = asyncio.Event()

    def __call__(self, _characteristic, data: bytearray) -> None:
        self.items.append(self._decode(data))
        self._event.set()

    async def take(self, n: int) -> list:
        async def wait():
            while len(self.items) < n:
                self._event.clear()
                await self._event.wait()

        await asyncio.wait_for(wait(), LIVENESS)
        return self.items[:n]


async def polar_session(air, wearable):
    device = await BleakScanner.find_device_by_name(wearable.name, timeout=LIVENESS, backend=air.scanner_backend)
    assert device is not None
    return device


def find_offset(expected: np.ndarray, received: np.ndarray) -> int:
    """Where ``received`` sits inside ``expected`` (exact match), or -1."""
    for i in np.flatnonzero(expected[: len(expected) - len(received) + 1] == received[0]):
        if np.array_equal(expected[i : i + len(received)], received):
            return int(i)
    return -1


async def test_scanner_sees_polar_and_open_profile_adverts(air, cpsc):
    signal, fs = cpsc
    polar = VirtualWearable(air, signal[:, 0], fs)
    custom = VirtualWearable(air, signal, fs, profile="ecgstream")
    await polar.start()
    await custom.start()
    assert polar.name.startswith("Polar H10 ") and len(polar.name.split()[-1]) == 8
    found = await BleakScanner.discover(timeout=0.5, return_adv=True, backend=air.scanner_backend)
    names = {adv.local_name: adv for _, adv in found.values()}
    assert hrs.HRS_SERVICE_UUID in names[polar.name].service_uuids
    assert es.ECGSTREAM_SERVICE_UUID in names[custom.name].service_uuids
    only = await BleakScanner.discover(timeout=0.5, service_uuids=[es.ECGSTREAM_SERVICE_UUID], backend=air.scanner_backend)
    assert [d.name for d in only] == [custom.name]


async def test_polar_h10_session_streams_the_recording_byte_exact(air, cpsc):
    signal, fs = cpsc
    wearable = VirtualWearable(air, signal[:, 0], fs, speed=SPEED)
    await wearable.start()
    device = await polar_session(air, wearable)
    replies, frames = Inbox(pmd.ControlPointResponse.from_bytes), Inbox(pmd.EcgFrame.from_bytes)
    async with BleakClient(device, backend=air.client_backend) as client:
        features = pmd.PmdFeatures.from_bytes(await client.read_gatt_char(pmd.PMD_CONTROL_UUID))
        assert features.supports(pmd.MeasurementType.ECG)
        await client.start_notify(pmd.PMD_CONTROL_UUID, replies)  # indications
        await client.start_notify(pmd.PMD_DATA_UUID, frames)
        await client.write_gatt_char(pmd.PMD_CONTROL_UUID, pmd.encode_get_settings(), response=True)
        (settings,) = await replies.take(1)
        assert settings.settings()[pmd.SettingType.SAMPLE_RATE] == (130,)
        await client.write_gatt_char(pmd.PMD_CONTROL_UUID, pmd.encode_start_ecg(), response=True)
        started = (await replies.take(2))[1]
        assert started.op is pmd.PmdOp.START and started.ok
        received = await frames.take(6)
        await client.write_gatt_char(pmd.PMD_CONTROL_UUID, pmd.encode_stop_ecg(), response=True)
        assert (await replies.take(3))[2].ok
    assert all(len(f) == 73 for f in received)  # ATT MTU 517: the H10's 73 samples per frame
    steps = np.diff([f.timestamp_ns for f in received])
    assert np.allclose(steps, 73 * 1e9 / 130, atol=1)
    samples = np.concatenate([f.samples_uv for f in received])
    expected = np.clip(np.round(wearable.samples_uv(130)[:, 0]), -POLAR_RANGE_UV, POLAR_RANGE_UV).astype(np.int32)
    assert find_offset(expected, samples) >= 0
    assert 200 < np.ptp(samples) < 5000  # a real ECG in µV, not mV or raw counts


async def test_polar_refuses_bad_commands_with_documented_status(air, cpsc):
    signal, fs = cpsc
    wearable = VirtualWearable(air, signal[:, 0], fs, speed=SPEED)
    await wearable.start()
    device = await polar_session(air, wearable)
    replies = Inbox(pmd.ControlPointResponse.from_bytes)
    async with BleakClient(device, backend=air.client_backend) as client:
        await client.start_notify(pmd.PMD_CONTROL_UUID, replies)
        for command in (
            pmd.encode_start_ecg(rate=250),
            pmd.encode_start_ecg(resolution=16),
            pmd.encode_stop_ecg(),
            bytes.fromhex("02 01 00 01 87 00"),  # start PPG
            bytes.fromhex("07 00"),
        ):
            await client.write_gatt_char(pmd.PMD_CONTROL_UUID, command, response=True)
        statuses = [r.status for r in await replies.take(5)]
    assert statuses == [
        pmd.PmdStatus.INVALID_SAMPLE_RATE,
        pmd.PmdStatus.INVALID_RESOLUTION,
        pmd.PmdStatus.ALREADY_IN_STATE,
        pmd.PmdStatus.NOT_SUPPORTED,
        pmd.PmdStatus.INVALID_OP_CODE,
    ]


async def test_heart_rate_fallback_gives_plausible_rate_and_rr(air, cpsc):
    signal, fs = cpsc
    wearable = VirtualWearable(air, signal[:, 0], fs, speed=SPEED)
    await wearable.start()
    device = await polar_session(air, wearable)
    inbox = Inbox(hrs.HeartRateMeasurement.from_bytes)
    async with BleakClient(device, backend=air.client_backend) as client:
        await client.start_notify("2a37", inbox)  # 16-bit form resolves through bleak
        measurements = await inbox.take(8)
    rates = [m.heart_rate for m in measurements[2:]]
    rr = [v for m in measurements for v in m.rr_intervals_s]
    assert all(30 <= r <= 200 for r in rates)
    assert rr and all(0.3 < v < 2.0 for v in rr)
    assert abs(60 / np.mean(rr) - np.mean(rates)) < 15


async def test_disconnect_fault_fires_callback_and_the_device_comes_back(air, cpsc):
    signal, fs = cpsc
    wearable = VirtualWearable(air, signal[:, 0], fs, speed=SPEED, faults=Faults(disconnect_after_s=3.0))
    await wearable.start()
    device = await polar_session(air, wearable)
    lost = asyncio.Event()
    frames = Inbox(pmd.EcgFrame.from_bytes)
    client = BleakClient(device, disconnected_callback=lambda _: lost.set(), backend=air.client_backend)
    await client.connect()
    await client.start_notify(pmd.PMD_CONTROL_UUID, Inbox())
    await client.start_notify(pmd.PMD_DATA_UUID, frames)
    await client.write_gatt_char(pmd.PMD_CONTROL_UUID, pmd.encode_start_ecg(), response=True)
    await asyncio.wait_for(lost.wait(), LIVENESS)
    assert not client.is_connected
    assert sum(len(f) for f in frames.items) <= 3.0 * 130
    with pytest.raises(BleakError):
        await client.read_gatt_char(pmd.PMD_CONTROL_UUID)
    again = await polar_session(air, wearable)  # advertising again
    async with BleakClient(again, backend=air.client_backend) as client2:
        assert client2.is_connected
    assert wearable.connections == 2


async def test_client_disconnect_and_unknown_device(air, cpsc):
    signal, fs = cpsc
    wearable = VirtualWearable(air, signal[:, 0], fs)
    await wearable.start()
    device = await polar_session(air, wearable)
    called = []
    client = BleakClient(device, disconnected_callback=called.append, backend=air.client_backend)
    await client.connect()
    await client.disconnect()
    assert not client.is_connected and called == [client]
    with pytest.raises(BleakDeviceNotFoundError):
        await BleakClient("C0:FF:FF:FF:FF:FF", backend=air.client_backend).connect()


async def start_ecgstream(client, replies, rate=250, fmt=es.SampleFormat.INT16):
    before = len(replies.items)
    await client.write_gatt_char(es.ECGSTREAM_CONTROL_UUID, bytes(es.ControlCommand.start(rate, fmt)), response=True)
    return (await replies.take(before + 1))[-1]


async def test_ecgstream_session_faults_and_gap_accounting(air, cpsc):
    signal, fs = cpsc
    faults = Faults(drop_notifications=frozenset({2, 5, 6}), lead_off=((2.0, 3.0),), saturation=((4.0, 4.5),))
    wearable = VirtualWearable(air, signal, fs, profile="ecgstream", speed=SPEED, faults=faults)
    await wearable.start()
    (device,) = await BleakScanner.discover(timeout=0.3, service_uuids=[es.ECGSTREAM_SERVICE_UUID], backend=air.scanner_backend)
    replies, packets = Inbox(es.ControlResponse.from_bytes), Inbox(es.StreamPacket.from_bytes)
    async with BleakClient(device, backend=air.client_backend) as client:
        await client.start_notify(es.ECGSTREAM_CONTROL_UUID, replies)
        await client.start_notify(es.ECGSTREAM_DATA_UUID, packets)
        refused = await start_ecgstream(client, replies, rate=300)
        assert refused.status is es.ControlStatus.UNSUPPORTED_RATE
        await client.write_gatt_char(es.ECGSTREAM_CONTROL_UUID, bytes(es.ControlCommand(es.ControlOp.SET_TIME, unix_time_us=1_700_000_000_000_000)), response=True)
        assert (await replies.take(2))[1].ok
        await asyncio.sleep(0.1)  # the clock runs from the time set; the stretches count from the stream start
        started = await start_ecgstream(client, replies, rate=250)
        assert started.ok and started.config.streaming and started.config.channels == 2
        received = await packets.take(14)
    tracker = es.StreamTracker()
    continuity = [tracker.feed(p) for p in received]
    assert received[0].stream_start and received[0].time_synced
    assert tracker.lost_packets == 3 and tracker.gaps == 2
    assert tracker.missing_samples == 3 * received[0].count
    assert [c.lost_packets for c in continuity if c.lost_packets] == [1, 2]
    for packet in received:
        t0 = packet.first_sample_index / 250
        t1 = t0 + packet.count / 250
        assert packet.lead_off == (t0 < 3.0 and t1 > 2.0)
        assert packet.saturated == (t0 < 4.5 and t1 > 4.0)
        if packet.saturated:
            assert packet.samples.max() == es.SampleFormat.INT16.limits[1]
    clean = next(p for p in received if not p.lead_off and not p.saturated)
    assert clean.timestamp_us >= 1_700_000_000_000_000
    assert np.ptp(clean.samples_uv[:, 1]) > 100  # lead II of a real ECG in µV


async def test_noise_bursts_and_stall(air, cpsc):
    signal, fs = cpsc
    faults = Faults(noise_bursts=((1.0, 2.0),), noise_uv=2000.0, stall_after_s=3.0)
    wearable = VirtualWearable(air, signal[:, 0], fs, profile="ecgstream", speed=SPEED, faults=faults)
    await wearable.start()
    replies, packets = Inbox(es.ControlResponse.from_bytes), Inbox(es.StreamPacket.from_bytes)
    async with BleakClient(wearable.address, backend=air.client_backend) as client:
        await client.start_notify(es.ECGSTREAM_CONTROL_UUID, replies)
        await client.start_notify(es.ECGSTREAM_DATA_UUID, packets)
        await start_ecgstream(client, replies)
        # the stream stalls after 3 body seconds: wait until the wearable says so
        await asyncio.wait_for(_until(lambda: not wearable.streaming), LIVENESS)
        stalled_at = len(packets.items)
        assert client.is_connected
        await client.write_gatt_char(es.ECGSTREAM_CONTROL_UUID, bytes(es.ControlCommand(es.ControlOp.GET_CONFIG)), response=True)
        config = (await replies.take(2))[1]
        assert config.ok and not config.config.streaming
        assert sum(p.count for p in packets.items) <= 3 * 250
        assert len(packets.items) == stalled_at
        resumed = await start_ecgstream(client, replies)
        assert resumed.ok
        await packets.take(stalled_at + 1)
    samples = np.concatenate([p.samples_uv[:, 0] for p in packets.items[:stalled_at]])
    times = np.concatenate([p.first_sample_index + np.arange(p.count) for p in packets.items[:stalled_at]]) / 250
    burst, quiet = samples[(times >= 1.0) & (times < 2.0)], samples[(times >= 2.0) & (times < 3.0)]
    assert np.std(np.diff(burst)) > 3 * np.std(np.diff(quiet))


async def _until(condition):
    while not condition():
        await asyncio.sleep(0.01)


async def test_many_wearables_stream_at_once(air, cpsc):
    signal, fs = cpsc
    wearables = [VirtualWearable(air, signal[:, 0], fs, speed=5.0) for _ in range(12)]
    for w in wearables:
        await w.start()
    assert len({w.address for w in wearables}) == 12
    inboxes = []
    clients = []
    for w in wearables:
        client = BleakClient(w.address, backend=air.client_backend)
        await client.connect()
        inbox = Inbox(pmd.EcgFrame.from_bytes)
        await client.start_notify(pmd.PMD_CONTROL_UUID, Inbox())
        await client.start_notify(pmd.PMD_DATA_UUID, inbox)
        await client.write_gatt_char(pmd.PMD_CONTROL_UUID, pmd.encode_start_ecg(), response=True)
        clients.append(client)
        inboxes.append(inbox)
    await asyncio.gather(*(inbox.take(3) for inbox in inboxes))
    for client in clients:
        await client.disconnect()


def test_bad_configuration_is_refused():
    from firmware_bridge.bumble_backend import VirtualAir

    air = VirtualAir()
    with pytest.raises(VirtualWearableError):
        VirtualWearable(air, np.zeros(10), 0.0)
    with pytest.raises(VirtualWearableError):
        VirtualWearable(air, np.zeros((10, 9)), 100.0)
    with pytest.raises(VirtualWearableError):
        Faults(lead_off=((3.0, 2.0),))
    with pytest.raises(VirtualWearableError):
        Faults(drop_probability=1.5)
