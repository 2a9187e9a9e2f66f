"""The benchmark suite (``make bench``): the int8 student against its teacher, one run, one machine.

Usage: python benchmarks/run_all.py [--quick] [--only SECTION ...] [--out benchmarks/results]

Sections, each a function returning a dict (see ``benchmarks/README.md`` for what each measures):

* ``inference``: per-window inference, 1 and 2 threads, of the full-size teacher (torch fp32,
  onnxruntime fp32, int8 TFLite) and the demo student (torch fp32, TFLite fp32, int8 on
  ai-edge-litert and on tflite-runtime), plus the canonical preprocessing, measured side by
  side (:mod:`runtimes`); medians, and ratios against the teacher in torch fp32;
* ``stream``: the demo model behind a virtual Polar H10 (bumble GATT server, bleak client,
  PMD decode, resampling, windowing, preprocessing, quality gate, inference): latency from the
  arrival of the packet that completes a window to the estimate;
* ``gateway``: ``gateway_scaling.py`` (streams per core, CPU and memory per stream);
* ``size_memory``: file sizes, parameters, MACs, peak memory of the runtime with the model
  loaded (``anyecg-edge bench``'s isolated process), the TFLite Micro arena;
* ``fidelity``: the verify report's headline numbers for the demo model;
* ``distillation``: distillation windows per second with 1 and 2 DDP processes;
* ``raspberry_pi``: the aarch64/cp311 install check and a projection of Pi 4 latency.

A section that fails, or whose piece is missing, is recorded as ``{"available": false,
"reason": ...}``; the others go on. Writes ``latest.json``, ``latest.md`` and the plots into
``--out``; progress lines go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from anyecg_edge.benchmark import (  # noqa: E402
    available_interpreters,
    machine_info,
    package_version,
    raw_window,
    run_isolated,
    summarize,
)
from anyecg_edge.files import sha256_file  # noqa: E402

THREADS = (1, 2)
TEACHER_TORCH = "teacher · torch fp32"
TEACHER_ORT = "teacher · onnxruntime fp32"
TEACHER_INT8 = "teacher · int8 TFLite (ai-edge-litert)"
STUDENT_TORCH = "student · torch fp32"
STUDENT_FP32 = "student · TFLite fp32 (ai-edge-litert)"
STUDENT_INT8 = "student · int8 (ai-edge-litert)"
STUDENT_INT8_TFLRT = "student · int8 (tflite-runtime)"
PREPROCESS = "preprocessing (numpy/scipy)"
PREPROCESS_BLAS1 = "preprocessing, OPENBLAS_NUM_THREADS=1"
TARGETS = {
    "int8_vs_teacher_torch": 100.0,
    "int8_vs_teacher_onnxruntime": 10.0,
    "stream_total_p99_ms": 10.0,
    "streams_per_core": 200,
    "runtime_peak_rss_mb": 100.0,
}


@dataclass
class Suite:
    """What the sections share: settings, paths, the demo model and finished sections."""

    out: Path
    artifacts: Path
    quick: bool
    work: Path
    model: Path | None = None
    results: dict = field(default_factory=dict)

    def log(self, message: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    @property
    def demo(self) -> Path:
        """The student under test: ``--model``, else the bundled demo model, else the one
        ``make model`` exports before it bundles it (``artifacts/model/``)."""
        from anyecg_edge.commands._common import bundled_model

        if self.model:
            return self.model
        bundled = bundled_model()
        built = ROOT / "artifacts" / "model" / bundled.name
        return built if not bundled.is_file() and built.is_file() else bundled

    def demo_document(self) -> dict:
        """The demo model's metadata; raises LookupError with the reason when it is missing."""
        from firmware_bridge.tflite_file import read_anyecg_metadata

        if not self.demo.is_file():
            raise LookupError(f"the demo model {_rel(self.demo)} is not there")
        document = read_anyecg_metadata(self.demo.read_bytes())
        if not isinstance(document.get("student"), dict) or "config" not in document["student"]:
            raise LookupError(f"{_rel(self.demo)} carries no student architecture in its metadata")
        return document


def _rel(path: Path) -> str:
    path = Path(path)
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def unavailable(reason: str) -> dict:
    return {"available": False, "reason": reason}


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 1) if a and b else None


# --------------------------------------------------------------------------------------------
# inference


def demo_float32(suite: Suite, document: dict) -> tuple[Path, str]:
    """The demo student as float32 TFLite: its exported twin, else rebuilt from its architecture."""
    from firmware_bridge.tflite_file import TFLiteFormatError, read_anyecg_metadata

    names = (suite.demo.stem + "-float32.tflite", suite.demo.stem.replace("-int8", "") + "-float32.tflite")
    for folder in (suite.demo.parent, ROOT / "artifacts" / "model"):
        for candidate in (folder / name for name in names):
            try:
                twin = read_anyecg_metadata(candidate.read_bytes()) if candidate.is_file() else {}
            except TFLiteFormatError:
                continue
            if twin.get("student", {}).get("sha256") == document["student"].get("sha256"):
                return candidate, f"the exported float32 twin ({_rel(candidate)})"
    from bench_artifacts import student_float32

    return student_float32(document["student"]["config"], suite.artifacts, log=suite.log), \
        "the demo architecture with random weights (seed 0), converted by the export stages"


def inference(suite: Suite) -> dict:
    from bench_artifacts import N_CLASSES, net1d_config
    from bench_artifacts import load as load_teacher
    from runtimes import compare

    from anyecg_edge.preprocess import preprocess_window

    raw, source = raw_window()
    raw_path = suite.work / "raw_window.npy"
    np.save(raw_path, raw)
    window = preprocess_window(raw)[0]
    manifest, teacher_reason = load_teacher(suite.artifacts)
    specs: dict[str, dict] = {TEACHER_TORCH: {"kind": "torch", "net1d": net1d_config()}}
    if manifest:
        specs[TEACHER_ORT] = {"kind": "onnxruntime", "path": str(suite.artifacts / manifest["files"]["onnx"]["name"])}
        specs[TEACHER_INT8] = {"kind": "tflite", "interpreter": "ai-edge-litert",
                               "path": str(suite.artifacts / manifest["files"]["tflite_int8"]["name"])}
    else:
        specs[TEACHER_ORT] = specs[TEACHER_INT8] = {"unavailable": teacher_reason}
    notes = {"window": source, "teacher": f"Net1D ECGFounder configuration, 1 lead, {N_CLASSES} outputs, random weights (seed 0)"}
    try:
        document = suite.demo_document()
        demo_teacher = (document.get("teacher") or {}).get("config")
        if demo_teacher and demo_teacher != json.loads(json.dumps(net1d_config())):
            width = demo_teacher["filter_list"][0] / net1d_config()["filter_list"][0]
            name = f"demo teacher (Net1D x{width:g}) · torch fp32"
            specs[name] = {"kind": "torch", "net1d": demo_teacher}
            notes["demo_teacher"] = ("the architecture the demo student was distilled from (from the model's "
                                     "metadata), random weights; the ratios use the full-size teacher")
        specs[STUDENT_TORCH] = {"kind": "torch", "student": document["student"]["config"]}
        notes["student_torch"] = "the demo architecture, random weights (seed 0), batch norm folded"
        try:
            fp32, how = demo_float32(suite, document)
            specs[STUDENT_FP32] = {"kind": "tflite", "interpreter": "ai-edge-litert", "path": str(fp32)}
            notes["student_fp32"] = how
        except Exception as exc:  # noqa: BLE001 - recorded as the reason
            specs[STUDENT_FP32] = {"unavailable": f"building the float32 student failed: {exc}"}
        missing = available_interpreters()
        specs[STUDENT_INT8] = {"kind": "tflite", "interpreter": "ai-edge-litert", "path": str(suite.demo)}
        specs[STUDENT_INT8_TFLRT] = ({"unavailable": missing["tflite-runtime"]} if missing["tflite-runtime"] else
                                     {"kind": "tflite", "interpreter": "tflite-runtime", "path": str(suite.demo)})
    except LookupError as exc:
        for name in (STUDENT_TORCH, STUDENT_FP32, STUDENT_INT8, STUDENT_INT8_TFLRT):
            specs[name] = {"unavailable": str(exc)}
    specs[PREPROCESS] = {"kind": "preprocess", "raw": str(raw_path), "threads": [1]}
    specs[PREPROCESS_BLAS1] = {"kind": "preprocess", "raw": str(raw_path), "threads": [1],
                               "env": {"OPENBLAS_NUM_THREADS": "1"}}
    notes["preprocessing"] = ("the same raw window through preprocess_window; the second row limits numpy's "
                              "OpenBLAS to one thread, to show the preprocessing does not depend on BLAS threads")
    rounds, burst = (3, 0.25) if suite.quick else (8, 0.6)
    suite.log(f"inference: {sum('kind' in s for s in specs.values())} runtimes, {rounds} interleaved rounds")
    rows = compare(specs, window, suite.work / "inference", THREADS, rounds=rounds, burst_s=burst, log=suite.log)
    base = rows[TEACHER_TORCH].get("threads", {})
    for name, row in rows.items():
        if row.get("available") and name not in (PREPROCESS, PREPROCESS_BLAS1):
            row["vs_teacher_torch"] = {t: ratio(base.get(t, {}).get("median_ms"), s["median_ms"])
                                       for t, s in row["threads"].items()}
    return {"notes": notes, "rows": rows, "targets": inference_targets(rows)}


def _median(rows: dict, name: str, threads: str) -> float | None:
    row = rows.get(name, {})
    return row.get("threads", {}).get(threads, {}).get("median_ms") if row.get("available") else None


def inference_targets(rows: dict) -> dict:
    out = {}
    for key, teacher in (("int8_vs_teacher_torch", TEACHER_TORCH), ("int8_vs_teacher_onnxruntime", TEACHER_ORT)):
        speedups = {t: ratio(_median(rows, teacher, t), _median(rows, STUDENT_INT8, t)) for t in map(str, THREADS)}
        known = [v for v in speedups.values() if v is not None]
        out[key] = {"target": f">= {TARGETS[key]:g}x", "speedup": speedups,
                    "met": (all(v >= TARGETS[key] for v in known) if known else None)}
    pre, inf = _median(rows, PREPROCESS, "1"), _median(rows, STUDENT_INT8, "1")
    out["preprocess_le_inference"] = {"target": "preprocessing median <= int8 inference median (1 thread)",
                                      "preprocess_ms": pre, "inference_ms": inf,
                                      "met": (pre <= inf) if pre is not None and inf is not None else None}
    return out


# --------------------------------------------------------------------------------------------
# stream


class _Collector:
    def __init__(self):
        self.reports = []

    def emit(self, item) -> None:
        if hasattr(item, "latency") and hasattr(item, "verdict"):
            self.reports.append(item)

    def close(self) -> None:
        pass


async def _stream(model_path: Path, seconds: float, speed: float) -> tuple[list, dict]:
    from firmware_bridge.bumble_backend import VirtualAir
    from firmware_bridge.virtual import VirtualWearable

    from anyecg_edge.gateway import Gateway
    from anyecg_edge.model import EdgeModel
    from anyecg_edge.records import read_record
    from anyecg_edge.sources.ble import open_ble_source

    record = read_record(str(ROOT / "anyecg_edge" / "data" / "records" / "data_35_4"))
    collector = _Collector()
    async with VirtualAir() as air:
        wearable = VirtualWearable(air, record.lead("I"), record.fs, speed=speed)
        await wearable.start()
        gateway = Gateway(EdgeModel.load(model_path), sinks=[collector])
        source = open_ble_source(wearable.name, backend=air, max_attempts=3)
        stats = await gateway.run([source], duration_s=seconds)
        await wearable.stop()
    return collector.reports, stats


STREAM_PARTS = ("total", "arrival_to_window", "preprocess", "quality", "inference")


def stream_worker(model: str, seconds: float, speed: float) -> None:
    """Run :func:`_stream` and print the accepted windows' latencies (ms) as one JSON line."""
    reports, stats = asyncio.run(_stream(Path(model), seconds, speed))
    accepted = [r for r in reports if r.verdict.ok]
    print(json.dumps({"windows": len(reports), "accepted": len(accepted), "events": stats.get("events"),
                      "latency_ms": {p: [getattr(r.latency, p) for r in accepted] for p in STREAM_PARTS}}))


def _stream_run(suite: Suite, seconds: float, speed: float, env: dict) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--stream-worker", str(suite.demo), str(seconds), str(speed)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 300, cwd=ROOT, env={**os.environ, **env})
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return unavailable(f"the stream failed: {(done.stderr.strip().splitlines() or ['no output'])[-1]}")
    data = json.loads(lines[-1])
    if not data["accepted"]:
        return unavailable(f"no accepted window in {data['windows']} windows (events {data['events']})")
    latency = {p: summarize([v / 1e3 for v in data["latency_ms"][p]]) for p in STREAM_PARTS}
    return {"windows": data["windows"], "accepted": data["accepted"], "env": env, "latency_ms": latency}


def stream(suite: Suite) -> dict:
    suite.demo_document()
    seconds, speed = (20.0, 5.0) if suite.quick else (60.0, 4.0)
    suite.log(f"stream: virtual Polar H10 -> bleak -> pipeline for {seconds:g} s of wall time at {speed:g}x body time")
    result = _stream_run(suite, seconds, speed, {})
    if not result.get("available", True):
        return result
    latency = result["latency_ms"]
    p99 = latency["total"]["p99_ms"]
    suite.log("stream: again with OPENBLAS_NUM_THREADS=1")
    variant = _stream_run(suite, seconds, speed, {"OPENBLAS_NUM_THREADS": "1"})
    return {
        "what": "virtual Polar H10 (bumble GATT server, 130 Hz PMD frames of 73 samples) -> bleak client -> "
                "PMD decode -> 500 Hz -> 10 s window every 2 s -> preprocessing -> quality gate -> int8 model "
                "(ai-edge-litert, 1 thread) -> estimates; latency from the arrival of the packet completing "
                "a window to its estimates",
        "wall_seconds": seconds, "body_speed": speed, "windows": result["windows"], "accepted": result["accepted"],
        "latency_ms": latency,
        "openblas_one_thread": variant,
        "targets": {"total_p99_ms": {"target": f"< {TARGETS['stream_total_p99_ms']:g} ms", "value": p99,
                                     "met": p99 < TARGETS["stream_total_p99_ms"]},
                    "preprocess_le_inference": {
                        "target": "stream preprocessing median <= inference median",
                        "preprocess_ms": latency["preprocess"]["median_ms"],
                        "inference_ms": latency["inference"]["median_ms"],
                        "met": latency["preprocess"]["median_ms"] <= latency["inference"]["median_ms"]}},
    }


# --------------------------------------------------------------------------------------------
# gateway scaling


def gateway(suite: Suite) -> dict:
    script = HERE / "gateway_scaling.py"
    if not script.is_file():
        return unavailable(f"{_rel(script)} is not there")
    suite.demo_document()
    output = suite.out / "gateway_scaling.json"
    command = [sys.executable, str(script), "--model", str(suite.demo), "--output", str(output)]
    if suite.quick:
        command += ["--seconds", "5", "--max", "400"]
    suite.log("gateway: " + " ".join(_rel(Path(c)) if c.startswith(str(ROOT)) else c for c in command[1:]))
    done = subprocess.run(command, capture_output=True, text=True, timeout=1500, cwd=ROOT)
    (suite.work / "gateway_scaling.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0 or not output.is_file():
        return unavailable(f"gateway_scaling.py failed: {(done.stderr.strip().splitlines() or ['no output'])[-1]}")
    data = json.loads(output.read_text())
    best = data.get("streams_per_core_kept_up")
    return {**data, "targets": {"streams_per_core": {
        "target": f">= {TARGETS['streams_per_core']} streams per core", "value": best,
        "met": best is not None and best >= TARGETS["streams_per_core"]}}}


# --------------------------------------------------------------------------------------------
# size and memory


def size_memory(suite: Suite) -> dict:
    import torch

    from bench_artifacts import N_CLASSES
    from bench_artifacts import load as load_teacher
    from quantize.net1d import Net1D, Net1DConfig
    from quantize.student import count_macs, count_params

    torch.manual_seed(0)
    teacher = Net1D(Net1DConfig.ecgfounder(1, N_CLASSES)).eval()
    t_params = count_params(teacher)
    out: dict = {"teacher": {"params": t_params, "macs": count_macs(teacher),
                             "torch_fp32_weights_bytes": 4 * t_params}}
    del teacher
    manifest, reason = load_teacher(suite.artifacts)
    if manifest:
        out["teacher"]["files"] = {k: v["size_bytes"] for k, v in manifest["files"].items()}
    else:
        out["teacher"]["files"] = unavailable(reason)
    try:
        document = suite.demo_document()
    except LookupError as exc:
        out["student"] = unavailable(str(exc))
        return out
    demo_teacher = (document.get("teacher") or {}).get("config")
    if demo_teacher:
        model = Net1D(Net1DConfig.from_dict(demo_teacher)).eval()
        out["demo_teacher"] = {"params": count_params(model), "macs": count_macs(model), "config": demo_teacher}
        del model
    student = {"params": document["student"].get("params"), "macs": document["student"].get("macs"),
               "files": {"tflite_int8": suite.demo.stat().st_size}, "sha256": sha256_file(suite.demo)}
    try:
        fp32, how = demo_float32(suite, document)
        student["files"]["tflite_float32"] = fp32.stat().st_size
        student["tflite_float32_from"] = how
    except Exception as exc:  # noqa: BLE001 - recorded as the reason
        student["files"]["tflite_float32"] = unavailable(f"{type(exc).__name__}: {exc}")
    out["student"] = student
    out["ratios"] = {"macs_teacher_over_student": ratio(out["teacher"]["macs"], student["macs"]),
                     "params_teacher_over_student": ratio(t_params, student["params"])}
    suite.log("size_memory: peak memory of each interpreter in its own process")
    runs = 20 if suite.quick else 50
    memory = {}
    for name in ("ai-edge-litert", "tflite-runtime"):
        result = run_isolated({"model": str(suite.demo), "interpreter": name, "threads": [1], "runs": runs, "warmup": 5})
        memory[name] = result.get("memory") if result.get("available") else unavailable(result.get("reason", "?"))
    out["runtime_memory_mb"] = memory
    peak = memory.get("ai-edge-litert", {}).get("peak_rss_mb")
    out["targets"] = {"runtime_peak_rss_mb": {
        "target": f"< {TARGETS['runtime_peak_rss_mb']:g} MB peak RSS (ai-edge-litert, model loaded, windows run)",
        "value": peak, "met": (peak < TARGETS["runtime_peak_rss_mb"]) if peak is not None else None}}
    for key, path in (("teacher_export", ROOT / "artifacts" / "export-full-teacher" / "export_full_teacher.json"),
                      ("student_widths", ROOT / "artifacts" / "widths" / "widths.json")):
        if path.is_file():
            out[key] = {"from": _rel(path), "result": json.loads(path.read_text())}
    try:
        from firmware_bridge.mcu_export import measure_arena

        arena = measure_arena(suite.demo.read_bytes())
        out["tflm_arena"] = {"used_bytes": arena.used_bytes, "recommended_bytes": arena.recommended_bytes}
    except Exception as exc:  # noqa: BLE001 - recorded as the reason
        out["tflm_arena"] = unavailable(f"{type(exc).__name__}: {exc}")
    return out


# --------------------------------------------------------------------------------------------
# fidelity


def verify_reports(suite: Suite) -> list[Path]:
    """Verify reports (``fidelity.json`` layout) about the demo model, newest first."""
    found = []
    student_sha = suite.demo_document()["student"].get("sha256")
    for pattern in ("docs/**/*.json", "artifacts/**/fidelity.json", "anyecg_edge/data/models/*.json"):
        for path in ROOT.glob(pattern):
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if isinstance(data, dict) and "sets" in data and isinstance(data.get("model"), dict):
                if data["model"].get("name") in (None, suite.demo.name) and data["model"].get("sha256") in (None, student_sha):
                    found.append(path)
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def fidelity(suite: Suite) -> dict:
    import shutil

    document = suite.demo_document()
    headline = document.get("fidelity") or {}
    out: dict = {"from_model_metadata": headline or unavailable("the demo model's metadata has no fidelity block")}
    reports = verify_reports(suite)
    if not reports:
        out["verify_report"] = unavailable("no verify report (fidelity.json) about the demo model under docs/ or artifacts/")
    else:
        report = json.loads(reports[0].read_text())
        out["verify_report"] = {"path": _rel(reports[0]), "pass": report.get("pass"), "targets": report.get("targets"),
                                "sets": {name: {"windows": s.get("windows"), "records": s.get("records"), "pass": s.get("pass"),
                                                "outputs": {k: {m: v.get(m) for m in v if not isinstance(v.get(m), (dict, list))}
                                                            for k, v in s.get("outputs", {}).items()}}
                                         for name, s in report.get("sets", {}).items()}}
        scatters = [name for s in report.get("sets", {}).values() for name in s.get("plots", []) if name.endswith("-scatter.png")]
        for name in scatters:
            hits = [p for d in (reports[0].parent, ROOT / "docs", ROOT / "artifacts") for p in d.glob(f"**/{name}")]
            if hits:
                shutil.copyfile(hits[0], suite.out / "fidelity_scatter.png")
                out["scatter_plot"] = "fidelity_scatter.png"
                out["scatter_source"] = _rel(hits[0])
                break
    doc_md = ROOT / "docs" / "demo-model-fidelity.md"
    out["markdown"] = _rel(doc_md) if doc_md.is_file() else None
    return out


# --------------------------------------------------------------------------------------------
# distillation


def distillation(suite: Suite) -> dict:
    """``anyecg-edge distill`` under ``torchrun`` with 1 and 2 processes on the same small corpus.

    The teacher is the full-size Net1D (random weights, the demo label spec); the corpus is the
    bundled recording plus the test records (one per sampling rate). Every process uses one
    torch thread, so 2 processes use 2 cores where 1 uses one: the ratio is DDP's scaling, not
    a thread setting. Each run builds its own teacher cache, so both phases are timed for both
    process counts; the numbers are the ``throughput`` block distillation writes into
    ``distill.json``.
    """
    import torch

    from bench_artifacts import N_CLASSES, net1d_config
    from quantize.checkpoint import save_checkpoint
    from quantize.net1d import Net1D, Net1DConfig

    from anyecg_edge.labels import LabelSpec

    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.is_file():
        return unavailable(f"torchrun not found beside {sys.executable}")
    spec = LabelSpec.from_dict(json.loads((ROOT / "quantize" / "recipes" / "demo_electrolytes.json").read_text()))
    torch.manual_seed(0)
    teacher = suite.work / "teacher.pt"
    save_checkpoint(teacher, Net1D(Net1DConfig.ecgfounder(1, N_CLASSES)), spec)
    data = [ROOT / "anyecg_edge" / "data" / "records", ROOT / "tests" / "data"]
    epochs, per_record = (3, 4) if suite.quick else (20, 12)
    settings = {"epochs": epochs, "max_per_record": per_record, "augment_copies": 1, "batch_size": 32,
                "torch_threads_per_process": 1}
    runs = {}
    for processes in (1, 2):
        out = suite.work / f"distill-{processes}"
        command = [str(torchrun), "--standalone", f"--nproc_per_node={processes}", "-m", "anyecg_edge.cli", "distill",
                   "--teacher", str(teacher), "--out", str(out), "--epochs", str(epochs),
                   "--max-per-record", str(per_record), "--augment-copies", "1", "--batch-size", "32", "--threads", "1"]
        for folder in data:
            command += ["--data", str(folder)]
        suite.log(f"distillation: {processes} process(es), {epochs} epochs")
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        done = subprocess.run(command, capture_output=True, text=True, timeout=1500, cwd=ROOT, env=env)
        (suite.work / f"distill-{processes}.log").write_text(done.stdout + done.stderr)
        report = out / "distill.json"
        if done.returncode != 0 or not report.is_file():
            tail = (done.stderr.strip().splitlines() or done.stdout.strip().splitlines() or ["no output"])[-1]
            runs[str(processes)] = unavailable(f"distill with {processes} process(es) failed: {tail}")
            continue
        info = json.loads(report.read_text())
        runs[str(processes)] = _find_key(info, "throughput") or unavailable("distill.json has no throughput block")
    one, two = runs.get("1", {}), runs.get("2", {})
    demo_run = ROOT / "artifacts" / "student" / "distill.json"
    info = json.loads(demo_run.read_text()) if demo_run.is_file() else {}
    own = _find_key(info, "throughput")
    teacher_cfg = (info.get("teacher") or {}).get("config") or {}
    width = teacher_cfg["filter_list"][0] / net1d_config()["filter_list"][0] if teacher_cfg.get("filter_list") else None
    return {
        "demo_model_run": {"from": _rel(demo_run), "throughput": own,
                           "teacher": f"Net1D x{width:g}" if width else "unknown"} if own else
                          unavailable(f"{_rel(demo_run)} (the demo model's own distillation) is not there"),
        "what": "anyecg-edge distill under torchrun (gloo, CPU): teacher cache (full-size teacher forward per "
                "window) and student training, windows per second",
        "settings": {**settings, "teacher": f"Net1D ECGFounder, {N_CLASSES} outputs, random weights",
                     "data": [_rel(d) for d in data]},
        "processes": runs,
        "scaling_2_over_1": {k: round(two[k] / one[k], 2) if two.get(k) and one.get(k) else None
                             for k in ("cache_windows_per_s", "train_windows_per_s")},
    }


def _find_key(data, key: str):
    if isinstance(data, dict):
        if key in data:
            return data[key]
        for value in data.values():
            found = _find_key(value, key)
            if found is not None:
                return found
    return None


# --------------------------------------------------------------------------------------------
# Raspberry Pi


def raspberry_pi(suite: Suite) -> dict:
    import pi_projection

    document = suite.demo_document()
    macs = int(document["student"]["macs"])
    rows = suite.results.get("inference", {}).get("rows", {})
    here = [_median(rows, STUDENT_INT8, t) for t in map(str, THREADS)]
    here = [v for v in here if v is not None]
    suite.log("raspberry_pi: aarch64/cp311 install check (pip) and MobileNet v2 reference timing")
    out: dict = {"install": pi_projection.install_check(download=True)}
    mobilenet = None
    if here:
        try:
            mobilenet = pi_projection.mobilenet_v2_here(suite.artifacts, os.cpu_count() or 1)["median_ms"]
        except Exception as exc:  # noqa: BLE001 - method B is then reported unavailable
            suite.log(f"raspberry_pi: MobileNet v2 reference not available: {exc}")
    out["projection"] = pi_projection.project(macs, min(here) if here else None, mobilenet)
    return out


SECTIONS: dict[str, Callable[[Suite], dict]] = {
    "inference": inference,
    "stream": stream,
    "gateway": gateway,
    "size_memory": size_memory,
    "fidelity": fidelity,
    "distillation": distillation,
    "raspberry_pi": raspberry_pi,
}


def run_section(suite: Suite, name: str) -> dict:
    suite.log(f"section {name} ...")
    start = time.perf_counter()
    try:
        result = SECTIONS[name](suite)
    except LookupError as exc:
        result = unavailable(str(exc))
    except Exception as exc:  # noqa: BLE001 - one section's failure must not stop the suite
        (suite.work / f"{name}.traceback").write_text(traceback.format_exc())
        result = unavailable(f"{type(exc).__name__}: {exc}")
    result.setdefault("available", True)
    result["seconds"] = round(time.perf_counter() - start, 1)
    state = "done" if result["available"] else f"not available: {result['reason']}"
    suite.log(f"section {name} {state} ({result['seconds']:.0f} s)")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer runs and shorter streams (a smoke test)")
    parser.add_argument("--only", nargs="+", choices=list(SECTIONS), help="run only these sections")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--artifacts", type=Path, default=ROOT / "artifacts" / "bench")
    parser.add_argument("--model", type=Path, help="the int8 student to measure (default: the bundled demo model)")
    parser.add_argument("--stream-worker", nargs=3, metavar=("MODEL", "SECONDS", "SPEED"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.stream_worker:
        stream_worker(args.stream_worker[0], float(args.stream_worker[1]), float(args.stream_worker[2]))
        return 0
    from report import write_report

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="anyecg-bench-") as work:
        suite = Suite(args.out, args.artifacts, args.quick, Path(work), args.model.resolve() if args.model else None)
        started = time.perf_counter()
        machine = {**machine_info(), "load_average_start": [round(v, 2) for v in os.getloadavg()]}
        machine["packages"].update({name: package_version(name) for name in ("torch", "onnxruntime", "onnx2tf", "tensorflow")})
        for name in args.only or SECTIONS:
            suite.results[name] = run_section(suite, name)
        machine["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
        student = {"path": _rel(suite.demo), "sha256": sha256_file(suite.demo)} if suite.demo.is_file() else \
            unavailable(f"{_rel(suite.demo)} is not there")
        result = {"suite": "anyecg-edge benchmarks", "quick": args.quick, "machine": machine, "student_model": student,
                  "seconds": round(time.perf_counter() - started, 1), "sections": suite.results}
        paths = write_report(result, args.out, log=suite.log)
    suite.log("wrote " + ", ".join(_rel(p) for p in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
