"""bleak's real BlueZ backend against the virtual wearable, in a virtme-ng QEMU guest.

Opt-in (it installs Debian packages and boots a VM under TCG, several minutes):
``ANYECG_BLUEZ_VM=1 pytest -s tests/bluez`` or ``make bluez-test``. Needs root, the Debian
packages qemu-system-x86, linux-image-amd64, bluez, dbus, kmod and busybox-static, and pip
virtme-ng; ``run_vm.sh`` installs the missing ones. The guest writes ``result.json``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from firmware_bridge import pmd

HERE = Path(__file__).resolve().parent
VM_TIMEOUT_S = 900

pytestmark = [pytest.mark.timeout(VM_TIMEOUT_S + 60), pytest.mark.skipif(
    os.environ.get("ANYECG_BLUEZ_VM") != "1",
    reason="boots a QEMU guest with BlueZ; set ANYECG_BLUEZ_VM=1 (or run 'make bluez-test') to run it",
)]


def test_bleak_bluez_backend_streams_from_the_virtual_h10(tmp_path):
    # run_vm.sh prints the guest's progress; its own process group is killed on timeout.
    proc = subprocess.Popen(["sh", str(HERE / "run_vm.sh")], env={**os.environ, "ANYECG_BLUEZ_OUT": str(tmp_path)}, start_new_session=True)
    try:
        proc.wait(timeout=VM_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    result_file = tmp_path / "result.json"
    log = (tmp_path / "vm.log").read_text() if (tmp_path / "vm.log").exists() else ""
    assert result_file.exists(), f"the guest wrote no result (logs in {tmp_path})\n{log[-3000:]}"
    result = json.loads(result_file.read_text())
    print(
        f"\nBlueZ VM: {result.get('frames')} frames ({result.get('samples')} samples, {result.get('frame_bytes')} B), "
        f"found in {result.get('find_s')} s, connected in {result.get('connect_s')} s, "
        f"streamed in {result.get('stream_s')} s, guest script {result.get('total_s')} s, backend {result.get('backend')}"
    )
    assert result["ok"], f"{result} (logs in {tmp_path})"
    assert "bluez" in result["backend"].lower()
    assert pmd.PmdFeatures.from_bytes(bytes.fromhex(result["features"])).supports(pmd.MeasurementType.ECG)
    assert result["start_status"] == "SUCCESS" and result["stop_status"] == "SUCCESS"
    assert result["frames"] >= 20 and result["samples_exact"]
