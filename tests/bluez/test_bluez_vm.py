"""bleak's real BlueZ backend against the virtual wearable, in a virtme-ng QEMU guest.

Opt-in (it installs Debian packages and boots a VM, about 2-3 minutes without KVM):
``ANYECG_BLUEZ_VM=1 pytest tests/bluez`` or ``make bluez-test``. Needs root, Debian
packages qemu-system-x86, linux-image-amd64, bluez and dbus, and pip virtme-ng.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

pytestmark = pytest.mark.skipif(
    os.environ.get("ANYECG_BLUEZ_VM") != "1",
    reason="boots a QEMU guest with BlueZ; set ANYECG_BLUEZ_VM=1 (or run 'make bluez-test') to run it",
)


def test_bleak_bluez_backend_streams_from_the_virtual_h10(tmp_path):
    run = subprocess.run(
        ["sh", str(HERE / "run_vm.sh")],
        env={**os.environ, "ANYECG_BLUEZ_OUT": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=900,
    )
    result_file = tmp_path / "result.json"
    assert result_file.exists(), f"the guest wrote no result\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    first = result_file.read_text().splitlines()[0]
    result = json.loads(first)
    assert result["ok"], result
    assert result["backend"].endswith("BLUEZ_DBUS") or "bluez" in result["backend"].lower()
    assert result["samples_exact"] and result["frames"] >= 20
