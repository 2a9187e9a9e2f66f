"""Models the benchmark suite converts itself, built once and cached under ``artifacts/bench/``.

Usage: python benchmarks/bench_artifacts.py teacher [--out artifacts/bench] [--force]
(``make bench-teacher``; several minutes: onnx2tf and the int8 converter on 30.7 M parameters).

**The full-size ECGFounder teacher** as ONNX fp32 and full-int8 TFLite.

The teacher is Net1D with the released ECGFounder configuration, one lead and the demo label
spec's five outputs, random weights (seed 0): latency does not depend on the values. It goes through the export
path's own stages (:mod:`quantize.export`): the dynamo ONNX export at opset 18, the parity
check with onnxruntime (optimisations off), onnx2tf with ``-nuo -osd`` on a copy, the float32
parity check and the full-integer int8 conversion calibrated on canonically preprocessed
windows of the bundled recording (CPSC 2021 ``data_35_4``, lead I, one every 5 s).

Writes into ``--out``: ``teacher.onnx``, ``teacher-float32.tflite``, ``teacher-int8.tflite``
and ``teacher.json`` (configuration, parameters, MACs, sizes, hashes, parity, seconds).
``make bench`` reads them; a configuration change makes the manifest stale and the suite
says so.

**The student as float32 TFLite** (:func:`student_float32`), when the demo model's float32
twin is not at hand: the architecture from the demo model's metadata with random weights
(seed 0), batch norm folded, through the same ONNX and onnx2tf stages (about a minute).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from anyecg_edge.benchmark import package_version  # noqa: E402
from anyecg_edge.files import sha256_file  # noqa: E402

DEFAULT_OUT = ROOT / "artifacts" / "bench"
#: The demo label spec's outputs: the teacher of the demo model has this head.
N_CLASSES = len(json.loads((ROOT / "quantize" / "recipes" / "demo_electrolytes.json").read_text())["outputs"])
CALIBRATION_HOP_S = 5.0
MANIFEST = "teacher.json"
FILES = {"onnx": "teacher.onnx", "tflite_float32": "teacher-float32.tflite", "tflite_int8": "teacher-int8.tflite"}


def toolchain() -> dict:
    return {name: package_version(name) for name in ("torch", "onnx", "onnxruntime", "onnx2tf", "tensorflow")}


def net1d_config() -> dict:
    from quantize.net1d import Net1DConfig

    return dataclasses.asdict(Net1DConfig.ecgfounder(1, N_CLASSES))


def load(out: Path = DEFAULT_OUT) -> tuple[dict | None, str | None]:
    """(manifest, None) when the cached artifacts are complete and current, else (None, why not)."""
    path = out / MANIFEST
    if not path.is_file():
        return None, f"{path} not found; build it with 'make bench-teacher'"
    manifest = json.loads(path.read_text())
    missing = [name for name in FILES.values() if not (out / name).is_file()]
    if missing:
        return None, f"{', '.join(missing)} missing in {out}; rebuild with 'make bench-teacher'"
    if manifest.get("net1d") != json.loads(json.dumps(net1d_config())):
        return None, f"{path} was built for another teacher configuration; rebuild with 'make bench-teacher'"
    return manifest, None


def calibration_windows() -> np.ndarray:
    from anyecg_edge.records import read_record
    from anyecg_edge.windows import record_windows

    record = read_record(str(resources.files("anyecg_edge") / "data" / "records" / "data_35_4"))
    return record_windows(record.lead("I"), record.fs, hop_seconds=CALIBRATION_HOP_S).astype(np.float32)


def build(out: Path = DEFAULT_OUT, log=print) -> dict:
    """Build every artifact into ``out`` (atomically per file) and return the manifest."""
    import torch

    from quantize import export as ex
    from quantize.net1d import Net1D, Net1DConfig
    from quantize.student import count_macs, count_params

    out.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def step(name: str, line: str) -> None:
        nonlocal clock
        seconds[name] = round(time.perf_counter() - clock, 1)
        clock = time.perf_counter()
        log(f"[teacher {name}] {line} ({seconds[name]:.0f} s)")

    torch.manual_seed(0)
    model = Net1D(Net1DConfig.ecgfounder(1, N_CLASSES)).eval()
    params, macs = count_params(model), count_macs(model)
    windows = calibration_windows()
    parity = windows[:8]
    with torch.inference_mode():
        reference = model(torch.from_numpy(parity)).double().numpy()
    step("model", f"Net1D ECGFounder, {params / 1e6:.2f} M parameters, {macs / 1e9:.2f} G MACs, {len(windows)} windows")
    work = Path(tempfile.mkdtemp(prefix=".teacher.", dir=out))
    try:
        onnx_path = work / FILES["onnx"]
        ex.export_onnx(model, onnx_path)
        step("onnx", f"{onnx_path.stat().st_size / 1e6:.1f} MB")
        onnx_diff = float(np.max(np.abs(ex.onnx_outputs(onnx_path, parity) - reference)))
        step("onnx parity", f"max abs diff vs torch {onnx_diff:.2e}")
        float_path, saved_model = ex.run_onnx2tf(onnx_path, work, 3600.0)
        tfl_diff = float(np.max(np.abs(ex.tflite_outputs(float_path.read_bytes(), parity) - reference)))
        step("onnx2tf", f"TFLite float32 {float_path.stat().st_size / 1e6:.1f} MB, max abs diff vs torch {tfl_diff:.2e}")
        int8_path = work / FILES["tflite_int8"]
        ex.convert_int8(saved_model, windows, int8_path, work, 3600.0)
        step("int8", f"{int8_path.stat().st_size / 1e6:.1f} MB, {len(windows)} calibration windows")
        int8_out = _int8_outputs(int8_path, parity)
        r = float(np.corrcoef(int8_out.ravel(), reference.ravel())[0, 1])
        step("int8 parity", f"Pearson r vs torch {r:.4f} over {reference.size} outputs")
        shutil.move(str(onnx_path), out / FILES["onnx"])
        shutil.move(str(float_path), out / FILES["tflite_float32"])
        shutil.move(str(int8_path), out / FILES["tflite_int8"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    manifest = {
        "net1d": net1d_config(),
        "weights": "random, torch.manual_seed(0)",
        "params": params,
        "macs": macs,
        "calibration": f"{len(windows)} windows of CPSC 2021 data_35_4 lead I, hop {CALIBRATION_HOP_S:g} s",
        "parity": {"onnx_max_abs_diff": onnx_diff, "tflite_float32_max_abs_diff": tfl_diff, "int8_pearson_r": r},
        "files": {key: {"name": name, "size_bytes": (out / name).stat().st_size, "sha256": sha256_file(out / name)}
                  for key, name in FILES.items()},
        "toolchain": toolchain(),
        "seconds": seconds,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _int8_outputs(path: Path, windows: np.ndarray) -> np.ndarray:
    from anyecg_edge.benchmark import TFLiteWindowModel

    model = TFLiteWindowModel(path.read_bytes(), 1, "ai-edge-litert")
    return np.stack([model.run(w) for w in windows])


def student_float32(config: dict, out: Path = DEFAULT_OUT, log=print) -> Path:
    """A float32 TFLite of a student architecture (random weights), cached by its configuration."""
    import hashlib

    import torch

    from quantize import export as ex
    from quantize.student import Student, StudentConfig

    key = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]
    path = out / f"student-{key}-float32.tflite"
    if path.is_file():
        return path
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = Student(StudentConfig.from_dict(config)).fused()
    work = Path(tempfile.mkdtemp(prefix=".student.", dir=out))
    try:
        onnx_path = work / "student.onnx"
        ex.export_onnx(model, onnx_path)
        float_path, _ = ex.run_onnx2tf(onnx_path, work, 1800.0)
        probe = calibration_windows()[:4]
        with torch.inference_mode():
            reference = model(torch.from_numpy(probe)).double().numpy()
        diff = float(np.max(np.abs(ex.tflite_outputs(float_path.read_bytes(), probe) - reference)))
        if not diff < 1e-4:
            raise RuntimeError(f"student float32 TFLite differs from torch by {diff:.3g}")
        shutil.move(str(float_path), path)
        log(f"[student float32] {path.name}: {path.stat().st_size / 1024:.0f} KB, max abs diff vs torch {diff:.1e}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["teacher"], help="what to build")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--force", action="store_true", help="rebuild even when the cache is current")
    args = parser.parse_args()
    manifest, reason = load(args.out)
    if manifest and not args.force:
        print(f"teacher artifacts in {args.out} are current (use --force to rebuild)")
        return 0
    build(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
