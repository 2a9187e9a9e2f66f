"""Runs inside the virtme-ng guest: bumble controller on /dev/vhci, BlueZ, bleak's BlueZ backend.

The path exercised is the one a Raspberry Pi gateway takes:
bleak (BlueZ D-Bus backend) -> bluetoothd -> kernel hci_vhci -> bumble controller ->
LocalLink -> virtual Polar H10 (bumble peripheral). Prints one JSON line with the result.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import numpy as np


async def main() -> dict:
    import wfdb
    from bleak import BleakClient, BleakScanner
    from bumble import hci
    from bumble.controller import Controller
    from bumble.transport import open_transport

    from firmware_bridge import pmd
    from firmware_bridge.bumble_backend import VirtualAir
    from firmware_bridge.virtual import VirtualWearable

    t0 = time.monotonic()
    record = wfdb.rdrecord(str(Path(__file__).resolve().parents[1] / "data" / "cpsc2021" / "data_101_6"))
    async with VirtualAir() as air:
        transport = await open_transport("vhci")
        controller = Controller("bluez-side", host_source=transport.source, host_sink=transport.sink, link=air.link)
        # BlueZ times out on connect with these on (bumble sends the legacy Connection Complete).
        controller.le_features &= ~(hci.LeFeatureMask.LL_PRIVACY | hci.LeFeatureMask.LE_EXTENDED_ADVERTISING)
        await asyncio.sleep(2.0)  # let bluetoothd pick up hci0
        proc = await asyncio.create_subprocess_exec("bluetoothctl", "power", "on")
        await proc.wait()
        wearable = VirtualWearable(air, record.p_signal[:, 0], record.fs, speed=4.0)
        await wearable.start()
        device = await BleakScanner.find_device_by_name(wearable.name, timeout=30)
        if device is None:
            return {"ok": False, "stage": "scan"}
        found = time.monotonic() - t0
        replies: asyncio.Queue = asyncio.Queue()
        frames: list = []
        async with BleakClient(device, timeout=30) as client:
            backend = str(client.backend_id)
            features_hex = (await client.read_gatt_char(pmd.PMD_CONTROL_UUID)).hex()
            await client.start_notify(pmd.PMD_CONTROL_UUID, lambda _, d: replies.put_nowait(pmd.ControlPointResponse.from_bytes(d)))
            await client.start_notify(pmd.PMD_DATA_UUID, lambda _, d: frames.append(pmd.EcgFrame.from_bytes(d)))
            await client.write_gatt_char(pmd.PMD_CONTROL_UUID, pmd.encode_start_ecg(), response=True)
            started = await asyncio.wait_for(replies.get(), 30)
            deadline = time.monotonic() + 60
            while len(frames) < 20 and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            await client.write_gatt_char(pmd.PMD_CONTROL_UUID, pmd.encode_stop_ecg(), response=True)
        samples = np.concatenate([f.samples_uv for f in frames]) if frames else np.zeros(0)
        expected = np.clip(np.round(wearable.samples_uv(130)[:, 0]), -20000, 20000).astype(np.int32)
        exact = bool(samples.size) and any(np.array_equal(expected[i : i + samples.size], samples) for i in np.flatnonzero(expected == samples[0]))
        transport_close = getattr(transport, "close", None)
        if transport_close:
            await transport_close()
        return {
            "ok": started.ok and len(frames) >= 20 and exact,
            "backend": backend,
            "features": features_hex,
            "frames": len(frames),
            "frame_bytes": sorted({10 + 3 * len(f) for f in frames}),
            "samples_exact": exact,
            "found_after_s": round(found, 1),
            "total_s": round(time.monotonic() - t0, 1),
        }


if __name__ == "__main__":
    result = asyncio.run(main())
    print(json.dumps(result))
    sys.exit(0 if result.get("ok") else 1)
