"""Nothing on the device path imports torch, TensorFlow, ONNX or onnx2tf.

Every module of ``anyecg_edge`` and ``firmware_bridge`` is imported in a fresh
interpreter; afterwards none of the heavy packages may be in ``sys.modules``.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("torch", "tensorflow", "onnx", "onnx2tf", "onnxruntime")

SCRIPT = r"""
import importlib, json, pkgutil, sys
failed = {}
names = []
for package in ("anyecg_edge", "firmware_bridge"):
    root = importlib.import_module(package)
    for info in pkgutil.walk_packages(root.__path__, package + "."):
        names.append(info.name)
        try:
            importlib.import_module(info.name)
        except ImportError as exc:
            failed[info.name] = f"{type(exc).__name__}: {exc}"
heavy = sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)
print(json.dumps({"names": names, "failed": failed, "heavy": heavy}))
"""


def test_device_modules_import_nothing_heavy():
    code = f"HEAVY = {HEAVY!r}\n" + SCRIPT
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert "anyecg_edge.pipeline" in report["names"] and "firmware_bridge.pmd" in report["names"]
    # only the virtual wearable may need an optional extra (bumble)
    optional = {"firmware_bridge.virtual", "firmware_bridge.bumble_backend"}
    assert set(report["failed"]) <= optional, report["failed"]
    assert report["heavy"] == [], f"device path imported {report['heavy']}"
