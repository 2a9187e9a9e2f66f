"""Runs inside the virtme-ng guest: bumble controller on /dev/vhci, BlueZ, bleak's BlueZ backend.

The path exercised is the one a Raspberry Pi gateway takes:
bleak (BlueZ D-Bus backend) -> bluetoothd -> kernel hci_vhci -> bumble controller ->
LocalLink -> virtual Polar H10 (bumble peripheral). Writes the result as JSON to the path
given as the first argument and logs progress to stderr.

Usage: guest_run.py RESULT_JSON
"""

from __future__ import annotations

import time

T0 = time.monotonic()

import asyncio  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
RECORD = ROOT / "tests" / "data" / "cpsc2021" / "data_101_6"
MIN_FRAMES = 20
sys.path.insert(0, str(ROOT))


def log(message: str) -> None:
    print(f"[guest_run {time.monotonic() - T0:6.1f}s] {message}", file=sys.stderr, flush=True)


def read_lead_mv(record: Path) -> tuple[np.ndarray, float]:
    """Lead I of a WFDB format-16 record in mV, and its rate (what wfdb's p_signal gives)."""
    header = record.with_suffix(".hea").read_text().splitlines()
    channels, fs = int(header[0].split()[1]), float(header[0].split()[2])
    gain, baseline = re.search(r" 16 ([\d.]+)\((-?\d+)\)", header[1]).groups()
    raw = np.fromfile(record.with_suffix(".dat"), "<i2").reshape(-1, channels)[:, 0]
    return (raw - int(baseline)) / float(gain), fs


async def power_on_adapter(timeout: float) -> str:
    """Wait for BlueZ to list an adapter (org.bluez.Adapter1), power it on and return its path."""
    from dbus_fast import BusType, Message, MessageType, Variant
    from dbus_fast.aio import MessageBus

    bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            await asyncio.sleep(2.0)
            reply = await bus.call(
                Message(destination="org.bluez", path="/", interface="org.freedesktop.DBus.ObjectManager", member="GetManagedObjects")
            )
            adapters = [path for path, ifaces in reply.body[0].items() if "org.bluez.Adapter1" in ifaces] if reply.body else []
            if not adapters:
                log("no adapter in BlueZ yet")
                continue
            reply = await bus.call(
                Message(
                    destination="org.bluez",
                    path=adapters[0],
                    interface="org.freedesktop.DBus.Properties",
                    member="Set",
                    signature="ssv",
                    body=["org.bluez.Adapter1", "Powered", Variant("b", True)],
                )
            )
            if reply.message_type == MessageType.METHOD_RETURN:
                return adapters[0]
            log(f"power on {adapters[0]}: {reply.error_name} {reply.body}")
        raise TimeoutError("BlueZ listed no adapter that could be powered on")
    finally:
        bus.disconnect()


async def run(result: dict) -> None:
    # Everything is imported and set up before /dev/vhci is opened: once it is, the kernel
    # gives the bumble controller 2 s per HCI command, and a slow import would exceed that.
    import bleak.backends.bluezdbus.client  # noqa: F401
    import bleak.backends.bluezdbus.scanner  # noqa: F401
    import dbus_fast.aio  # noqa: F401
    from bleak import BleakClient, BleakScanner
    from bumble import hci
    from bumble.controller import Controller
    from bumble.transport import open_transport

    from firmware_bridge import pmd
    from firmware_bridge.bumble_backend import VirtualAir
    from firmware_bridge.virtual import POLAR_RANGE_UV, POLAR_RATE_HZ, VirtualWearable

    log("imported bleak, bumble and firmware_bridge")
    signal_mv, fs = read_lead_mv(RECORD)
    async with VirtualAir() as air:
        wearable = VirtualWearable(air, signal_mv, fs, profile="polar_h10")
        result["stage"] = "power_on"
        for attempt in range(1, 4):
            log(f"opening /dev/vhci (attempt {attempt})")
            transport = await open_transport("vhci")
            # The controller BlueZ drives, on the same link as the wearable.
            controller = Controller("bluez-side", host_source=transport.source, host_sink=transport.sink, link=air.link)
            # BlueZ times out on connect with these on (bumble sends the legacy Connection Complete).
            controller.le_features &= ~(hci.LeFeatureMask.LL_PRIVACY | hci.LeFeatureMask.LE_EXTENDED_ADVERTISING)
            try:
                adapter = await power_on_adapter(timeout=60)
                break
            except TimeoutError as exc:
                log(f"{exc}; the kernel probably timed out an HCI command (see hci.btsnoop)")
                air.detach(controller)
                await transport.close()
        else:
            raise TimeoutError("no BlueZ adapter after 3 attempts")
        result["power_on_s"] = round(time.monotonic() - T0, 1)
        result["vhci_attempts"] = attempt
        log(f"{adapter} powered on")

        await wearable.start()
        result["stage"] = "scan"
        t = time.monotonic()
        device = await BleakScanner.find_device_by_name(wearable.name, timeout=120)
        if device is None:
            raise TimeoutError(f"{wearable.name} not found by BleakScanner")
        result["find_s"] = round(time.monotonic() - t, 1)
        log(f"found {device.name} {device.address} after {result['find_s']} s")

        replies: asyncio.Queue = asyncio.Queue()
        frames: list[pmd.EcgFrame] = []
        sizes: set[int] = set()

        def on_control(_, data: bytearray) -> None:
            # BlueZ also hands the value of a plain read of this characteristic to the
            # notify callback (here the 0F feature bitmap); only F0 bytes are responses.
            if data[:1] == bytes((pmd.CONTROL_POINT_RESPONSE,)):
                replies.put_nowait(pmd.ControlPointResponse.from_bytes(data))
            else:
                result["control_read_echoes"] = result.get("control_read_echoes", 0) + 1

        def on_data(_, data: bytearray) -> None:
            sizes.add(len(data))
            frames.append(pmd.EcgFrame.from_bytes(data))

        result["stage"] = "connect"
        t = time.monotonic()
        async with BleakClient(device, timeout=120) as client:
            result["connect_s"] = round(time.monotonic() - t, 1)
            result["backend"] = str(client.backend_id)
            result["max_write_without_response_size"] = client.services.get_characteristic(pmd.PMD_CONTROL_UUID).max_write_without_response_size
            log(f"connected after {result['connect_s']} s, backend {result['backend']}")
            result["stage"] = "gatt"
            await client.start_notify(pmd.PMD_CONTROL_UUID, on_control)
            result["features"] = (await client.read_gatt_char(pmd.PMD_CONTROL_UUID)).hex()
            await client.start_notify(pmd.PMD_DATA_UUID, on_data)
            await client.write_gatt_char(pmd.PMD_CONTROL_UUID, pmd.encode_start_ecg(), response=True)
            started = await asyncio.wait_for(replies.get(), 60)
            result["start_status"] = started.status.name
            started.raise_for_status()
            log(f"start ECG: {started.status.name}, features {result['features']}")
            result["stage"] = "stream"
            t = time.monotonic()
            while len(frames) < MIN_FRAMES and time.monotonic() - t < 180:
                await asyncio.sleep(0.2)
            result["stream_s"] = round(time.monotonic() - t, 1)
            log(f"{len(frames)} frames in {result['stream_s']} s")
            await client.stop_notify(pmd.PMD_DATA_UUID)
            result["stage"] = "stop"
            await client.write_gatt_char(pmd.PMD_CONTROL_UUID, pmd.encode_stop_ecg(), response=True)
            stopped = await asyncio.wait_for(replies.get(), 60)
            result["stop_status"] = stopped.status.name
        result["stage"] = "done"
        log("disconnected")
        await transport.close()

        # The received samples must be a contiguous stretch of the wearable's recording
        # (resampled to 130 Hz, in µV, clipped to the H10 range; it repeats when it ends).
        expected = np.clip(np.round(wearable.samples_uv(POLAR_RATE_HZ)[:, 0]), -POLAR_RANGE_UV, POLAR_RANGE_UV).astype(np.int32)
        samples = np.concatenate([f.samples_uv for f in frames]) if frames else np.zeros(0, np.int32)
        exact = samples.size > 0 and any(
            np.array_equal(np.take(expected, np.arange(i, i + samples.size), mode="wrap"), samples)
            for i in np.flatnonzero(expected == samples[0])
        )
        result.update(
            frames=len(frames),
            samples=int(samples.size),
            frame_bytes=sorted(sizes),
            samples_exact=bool(exact),
            notifications_sent=wearable.notifications_sent,
        )
        result["ok"] = bool(
            "bluez" in result["backend"].lower()
            and result["stop_status"] == "SUCCESS"
            and len(frames) >= MIN_FRAMES
            and exact
        )


async def main(path: Path) -> int:
    log("python started")
    result: dict = {"ok": False, "stage": "start"}
    try:
        await asyncio.wait_for(run(result), timeout=600)
    except Exception as exc:  # noqa: BLE001 - recorded in the result for the host
        result["error"] = f"{type(exc).__name__}: {exc}"
        log(f"failed at {result['stage']}: {result['error']}")
    result["total_s"] = round(time.monotonic() - T0, 1)
    path.write_text(json.dumps(result) + "\n")
    log(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(Path(sys.argv[1]))))
