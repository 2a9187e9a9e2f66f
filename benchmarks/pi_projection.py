"""Raspberry Pi 4: does the device install resolve for aarch64, and a latency PROJECTION.

Usage: python benchmarks/pi_projection.py [--student-macs N --student-ms MS] [--no-download] [--json PATH]

There is no Pi here, so nothing in this file is a Pi measurement.

1. **Install check.** ``pip download --only-binary=:all: --no-deps --python-version 311
   --abi cp311 --implementation cp`` with the ``manylinux_2_XX_aarch64`` platform tags a
   glibc accepts (pip does not widen one explicit tag to the others), into a temporary folder,
   for the device install's compiled and pure packages; once for Raspberry Pi OS Bookworm
   (glibc 2.36) and once for Bullseye (glibc 2.31). Then a full resolution with dependencies
   (``pip install --dry-run --report``, metadata only) of the base install plus the ``edge``
   extra, and of the ``tflite`` extra. pip evaluates environment markers for this machine,
   not the target, which matters only for packages with ``platform_machine`` markers.

2. **Projection** of the int8 student's per-window latency on a Pi 4 (Cortex-A72, 4 cores),
   by two methods, both stated in the output:

   A. *MAC count*: the Pi 4's effective throughput on XNNPACK's published end-to-end
      benchmark (MobileNet v2 1.0X 224: 300 M MACs in 44 ms; v1: 569 M MACs in 75 ms;
      4 threads, fp32, BCM2711 at 1.5 GHz, Raspbian Buster; google/XNNPACK README,
      "Performance / Raspberry Pi", benchmarked 2020-02-12) divided into the student's MACs.
      It assumes the student runs at MobileNet's efficiency (optimistic for a small model,
      whose per-operator overheads weigh more) and that int8 through XNNPACK's QS8 kernels is
      at least as fast as fp32 on the A72 (ARMv8.0, no dot-product instructions); a single
      thread takes at most 4x the 4-thread time.
   B. *Reference workload*: MobileNet v2 1.0X 224 (Keras architecture, random weights, fp32
      TFLite, ai-edge-litert with XNNPACK, all cores) is timed on this machine; the ratio of
      the published Pi 4 time to it scales the student's measured latency here. It carries
      the student's real overheads over, but assumes the int8/fp32 speed ratio of this CPU
      holds on the A72 (x86 CPUs with VNNI gain more from int8, so B leans optimistic).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: google/XNNPACK README, "Performance / Raspberry Pi" (multi-threaded, fp32, 2020-02-12).
PUBLISHED = {
    "source": "google/XNNPACK README, section 'Performance / Raspberry Pi': end2end-bench, "
              "multi-threaded (4 threads), fp32, randomized weights, Raspbian Buster, benchmarked 2020-02-12",
    "board": "Raspberry Pi 4 (BCM2711, 4x Cortex-A72 @ 1.5 GHz)",
    "models": {
        "mobilenet_v1_1.0_224": {"ms": 75.0, "macs": 569e6},
        "mobilenet_v2_1.0_224": {"ms": 44.0, "macs": 300e6},
    },
}
PI_THREADS = 4
PYTHON = {"version": "311", "abi": "cp311", "implementation": "cp"}
TARGETS = {"bookworm (glibc 2.36)": 36, "bullseye (glibc 2.31)": 31}
PACKAGES = ["numpy", "scipy", "bleak", "ai-edge-litert", "tflite-runtime"]
BASE_REQUIREMENTS = ["numpy>=1.24", "scipy>=1.10", "bleak>=1.0", "ai-edge-litert>=2.1.0"]
EDGE_REQUIREMENTS = ["wfdb>=4.1", "bumble==0.0.236", "paho-mqtt>=2.0"]
TFLITE_REQUIREMENTS = ["tflite-runtime==2.14.0", "numpy<2", "scipy>=1.10", "bleak>=1.0"]


def platform_args(glibc_minor: int) -> list[str]:
    tags = ["manylinux2014_aarch64"] + [f"manylinux_2_{minor}_aarch64" for minor in range(17, glibc_minor + 1)]
    args = []
    for tag in tags:
        args += ["--platform", tag]
    return args


def _pip(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, timeout=timeout)


def _error(done: subprocess.CompletedProcess) -> str:
    lines = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
    return (lines or done.stderr.strip().splitlines()[-1:] or ["pip failed"])[0][:300]


def download_check(glibc_minor: int, timeout: float = 300.0) -> dict:
    """``pip download --no-deps`` of each package for aarch64/cp311; the wheel found or pip's error."""
    out = {}
    common = ["--only-binary=:all:", "--no-deps", "--python-version", PYTHON["version"], "--abi", PYTHON["abi"],
              "--implementation", PYTHON["implementation"], *platform_args(glibc_minor), "--disable-pip-version-check"]
    with tempfile.TemporaryDirectory(prefix="anyecg-pi-") as dest:
        for package in PACKAGES:
            before = set(Path(dest).iterdir())
            try:
                done = _pip(["download", *common, "-d", dest, "-q", package], timeout)
            except subprocess.TimeoutExpired:
                out[package] = {"resolved": False, "error": f"pip timed out after {timeout:g} s"}
                continue
            wheels = [p.name for p in set(Path(dest).iterdir()) - before if p.suffix == ".whl"]
            if done.returncode == 0 and wheels:
                name = wheels[0]
                out[package] = {"resolved": True, "version": name.split("-")[1], "wheel": name,
                                "platform_tag": name[:-4].split("-")[-1]}
            else:
                out[package] = {"resolved": False, "error": _error(done)}
    return out


def resolution_check(requirements: list[str], glibc_minor: int, timeout: float = 300.0) -> dict:
    """Full resolution with dependencies (metadata only): every distribution and its wheel tag."""
    with tempfile.TemporaryDirectory(prefix="anyecg-pi-") as tmp:
        report = Path(tmp) / "report.json"
        args = ["install", "--dry-run", "--ignore-installed", "--quiet", "--disable-pip-version-check",
                "--report", str(report), "--target", str(Path(tmp) / "target"), "--only-binary=:all:",
                "--python-version", PYTHON["version"], "--abi", PYTHON["abi"],
                "--implementation", PYTHON["implementation"], *platform_args(glibc_minor), *requirements]
        try:
            done = _pip(args, timeout)
        except subprocess.TimeoutExpired:
            return {"resolved": False, "error": f"pip timed out after {timeout:g} s"}
        if done.returncode != 0 or not report.is_file():
            return {"resolved": False, "error": _error(done)}
        items = json.loads(report.read_text())["install"]
    return {"resolved": True, "requirements": requirements, "distributions": {
        i["metadata"]["name"]: {"version": i["metadata"]["version"],
                                "platform_tag": i["download_info"]["url"].rsplit("/", 1)[-1][:-4].split("-")[-1]}
        for i in items}}


def install_check(download: bool = True) -> dict:
    """The aarch64/cp311 resolution report for Bookworm and Bullseye."""
    out: dict = {"python": "cp311", "targets": {}}
    for label, minor in TARGETS.items():
        entry: dict = {}
        if download:
            entry["download_no_deps"] = download_check(minor)
        entry["device_install"] = resolution_check(BASE_REQUIREMENTS + EDGE_REQUIREMENTS, minor)
        entry["tflite_extra"] = resolution_check(TFLITE_REQUIREMENTS, minor)
        out["targets"][label] = entry
    return out


def mobilenet_v2_here(cache: Path, threads: int, runs: int = 30) -> dict:
    """MobileNet v2 1.0X 224 (random weights) as fp32 TFLite, median ms on this machine (ai-edge-litert)."""
    import numpy as np

    path = cache / "mobilenet_v2_1.0_224-float32.tflite"
    if not path.is_file():
        code = (
            "import sys, tensorflow as tf\n"
            "tf.keras.utils.set_random_seed(0)\n"
            "m = tf.keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3))\n"
            "open(sys.argv[1], 'wb').write(tf.lite.TFLiteConverter.from_keras_model(m).convert())\n"
        )
        cache.mkdir(parents=True, exist_ok=True)
        done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=900,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""})
        if done.returncode != 0:
            raise RuntimeError(f"building MobileNet v2 failed: {_error(done)}")
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=threads)
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    interpreter.set_tensor(inp["index"], np.random.default_rng(0).standard_normal(inp["shape"]).astype(np.float32))
    times = []
    for i in range(runs + 3):
        t0 = time.perf_counter()
        interpreter.invoke()
        if i >= 3:
            times.append(time.perf_counter() - t0)
    return {"median_ms": float(np.median(times)) * 1e3, "threads": threads, "runs": runs}


def project(student_macs: int, student_ms_here: float | None, mobilenet_ms_here: float | None) -> dict:
    """The projection (see the module docstring); every number is labelled as projected."""
    rates = {name: m["macs"] / (m["ms"] / 1e3) for name, m in PUBLISHED["models"].items()}
    low, high = min(rates.values()), max(rates.values())
    out: dict = {
        "kind": "PROJECTION, not a measurement: no Raspberry Pi was used",
        "published_reference": PUBLISHED,
        "method_a_mac_count": {
            "method": "student MACs / Pi 4 effective MAC rate on published MobileNet v1/v2 (4 threads); "
                      "1 thread at most 4x that",
            "pi4_effective_gmacs": [round(low / 1e9, 2), round(high / 1e9, 2)],
            "student_macs": student_macs,
            "projected_ms_4_threads": [round(student_macs / high * 1e3, 3), round(student_macs / low * 1e3, 3)],
            "projected_ms_1_thread_at_most": round(PI_THREADS * student_macs / low * 1e3, 3),
        },
    }
    if student_ms_here is not None and mobilenet_ms_here:
        ratio = PUBLISHED["models"]["mobilenet_v2_1.0_224"]["ms"] / mobilenet_ms_here
        out["method_b_reference_workload"] = {
            "method": "student int8 latency here x (Pi 4 MobileNet v2 fp32 published / MobileNet v2 fp32 here), "
                      "all cores on both machines",
            "mobilenet_v2_here_ms": round(mobilenet_ms_here, 3),
            "pi4_over_here": round(ratio, 2),
            "student_ms_here": round(student_ms_here, 4),
            "projected_ms": round(student_ms_here * ratio, 3),
        }
    else:
        out["method_b_reference_workload"] = {"available": False,
                                              "reason": "needs the student's latency here and MobileNet v2 timed here"}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--student-macs", type=int, help="MACs of one window (default: the x1 student preset)")
    parser.add_argument("--student-ms", type=float, help="the int8 student's median inference ms measured here")
    parser.add_argument("--no-download", action="store_true", help="skip the pip checks")
    parser.add_argument("--cache", type=Path, default=ROOT / "artifacts" / "bench")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    macs = args.student_macs
    if macs is None:
        from quantize.student import Student, count_macs, preset

        macs = count_macs(Student(preset("x1", 1)).fused())
    result = {"install": install_check() if not args.no_download else {"available": False, "reason": "--no-download"}}
    mobilenet = mobilenet_v2_here(args.cache, os.cpu_count() or 1)["median_ms"] if args.student_ms else None
    result["projection"] = project(macs, args.student_ms, mobilenet)
    text = json.dumps(result, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
