"""Per-window latency of a ``.tflite`` model: timing, statistics, peak memory, machine facts.

The measurement behind ``anyecg-edge bench`` (and the TFLite rows of ``make bench``). One
*iteration* takes one raw 10 s window at 500 Hz through the canonical preprocessing
(:func:`~anyecg_edge.preprocess.preprocess_window`) and then through the model (quantise
the input, invoke, read and dequantise the output), timing the two parts separately with
``time.perf_counter``. After ``warmup`` untimed iterations, ``runs`` timed ones give the
median, p90, p99 and minimum of each part and of their sum.

Each interpreter runs in a fresh Python process (``python -m anyecg_edge.benchmark``) so that
its peak resident memory (``VmHWM``) belongs to it alone. Nothing here imports torch,
TensorFlow or ONNX.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from importlib import metadata, resources
from pathlib import Path

import numpy as np


__all__ = [
    "INTERPRETER_MODULES",
    "TFLiteWindowModel",
    "available_interpreters",
    "bench_tflite",
    "cpu_model",
    "machine_info",
    "memory_mb",
    "package_version",
    "raw_window",
    "run_isolated",
    "summarize",
    "synthetic_ecg",
]

#: Interpreter name -> (import name, distribution name).
INTERPRETER_MODULES = {"ai-edge-litert": ("ai_edge_litert", "ai-edge-litert"), "tflite-runtime": ("tflite_runtime", "tflite-runtime")}
_VERSIONED = ("numpy", "scipy", "ai-edge-litert", "tflite-runtime", "anyecg-edge")


def summarize(times_s: Sequence[float]) -> dict:
    """Median, p90, p99, min, mean and max of durations given in seconds, in milliseconds.

    Percentiles interpolate linearly between order statistics (numpy's default), so
    ``p99`` of fewer than 100 runs lies between the two largest values.

    Raises:
        ValueError: no durations.
    """
    ms = np.asarray(times_s, dtype=np.float64) * 1e3
    if ms.size == 0:
        raise ValueError("no timings to summarize")
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return {
        "n": int(ms.size),
        "median_ms": round(float(p50), 4),
        "p90_ms": round(float(p90), 4),
        "p99_ms": round(float(p99), 4),
        "min_ms": round(float(ms.min()), 4),
        "mean_ms": round(float(ms.mean()), 4),
        "max_ms": round(float(ms.max()), 4),
    }


def memory_mb() -> dict:
    """This process's memory in MiB: resident now (``rss_mb``) and at its peak (``peak_rss_mb``,
    ``VmHWM``), its proportional share of shared pages (``pss_mb``) and its private pages
    (``private_mb``). Shared libraries (numpy's BLAS, scipy) count fully in RSS but are shared
    between processes; PSS and private memory show what one more process costs.

    Where ``/proc`` is missing (macOS) the peak comes from ``getrusage`` and the rest is None.
    """
    fields: dict[str, float] = {}
    for name, keys in (("/proc/self/status", ("VmRSS", "VmHWM")), ("/proc/self/smaps_rollup", ("Pss", "Private_Clean", "Private_Dirty"))):
        try:
            with open(name) as handle:
                for line in handle:
                    key, _, value = line.partition(":")
                    if key in keys:
                        fields[key] = int(value.split()[0]) / 1024.0
        except (OSError, ValueError):
            pass
    if "VmHWM" not in fields:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        fields["VmHWM"] = peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0
    private = fields.get("Private_Clean", 0.0) + fields.get("Private_Dirty", 0.0) if "Private_Dirty" in fields else None

    def mb(value: float | None) -> float | None:
        return None if value is None else round(value, 1)

    return {"rss_mb": mb(fields.get("VmRSS")), "peak_rss_mb": mb(fields["VmHWM"]), "pss_mb": mb(fields.get("Pss")), "private_mb": mb(private)}


def cpu_model() -> str:
    """The CPU (and, on boards such as the Raspberry Pi, the board) as the OS names it."""
    names: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                key, value = key.strip(), value.strip()
                if key in ("model name", "Model", "Hardware", "CPU part") and value and key not in names:
                    names[key] = value
    except OSError:
        pass
    try:
        board = Path("/proc/device-tree/model").read_bytes().rstrip(b"\0").decode(errors="replace")
    except OSError:
        board = ""
    cpu = names.get("model name") or names.get("Hardware") or platform.processor() or platform.machine()
    board = board or names.get("Model", "")
    return f"{cpu} ({board})" if board and board not in cpu else cpu


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def machine_info() -> dict:
    """Where a result came from: date, OS, architecture, CPU, cores, Python and package versions."""
    return {
        "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "system": platform.system(),
        "release": platform.release(),
        "machine": platform.machine(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "packages": {name: package_version(name) for name in _VERSIONED},
    }


def available_interpreters() -> dict[str, str | None]:
    """Each known interpreter -> None when importable, else why not (with the install hint)."""
    out: dict[str, str | None] = {}
    for name, (module, _dist) in INTERPRETER_MODULES.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        extra = "pip install ai-edge-litert" if name == "ai-edge-litert" else "pip install 'anyecg-edge[tflite]'"
        out[name] = None if found else f"{name} is not installed ({extra})"
    return out


def synthetic_ecg(seconds: float = 10.0, fs: float = 500.0, seed: int = 0) -> np.ndarray:
    """A seeded ECG-like trace in mV: 72 bpm Gaussian P-QRS-T beats, baseline wander, mains hum, noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * fs))) / fs
    x = np.zeros_like(t)
    for beat in np.arange(0.3, seconds, 60 / 72):
        for offset, width, height in ((-0.16, 0.025, 0.12), (-0.02, 0.008, -0.1), (0.0, 0.01, 1.1), (0.025, 0.01, -0.25), (0.25, 0.05, 0.3)):
            x += height * np.exp(-0.5 * ((t - beat - offset) / width) ** 2)
    x += 0.15 * np.sin(2 * np.pi * 0.25 * t) + 0.03 * np.sin(2 * np.pi * 50 * t)
    return x + 0.01 * rng.standard_normal(t.size)


def raw_window(samples: int = 5000) -> tuple[np.ndarray, str]:
    """A raw (unfiltered) window at 500 Hz and where it came from.

    The bundled recording (CPSC 2021 ``data_35_4``, lead I, resampled from 200 Hz) when
    ``wfdb`` is installed, else :func:`synthetic_ecg`. Preprocessing time does not depend
    on the values; the real trace just keeps the numbers honest.
    """
    from .preprocess import TARGET_FS, resample

    try:
        from .records import read_record

        record = read_record(str(resources.files("anyecg_edge") / "data" / "records" / "data_35_4"))
        x = resample(record.lead("I"), record.fs, TARGET_FS)
        if x.size >= samples:
            start = (x.size - samples) // 2
            return x[start : start + samples], f"CPSC 2021 data_35_4 lead I ({record.fs:g} Hz resampled to {TARGET_FS} Hz)"
    except (ImportError, OSError, ValueError):  # no wfdb (RecordError is a ValueError), no file
        pass
    return synthetic_ecg(samples / TARGET_FS, TARGET_FS), "synthetic ECG (seed 0)"


class TFLiteWindowModel:
    """A ``.tflite`` file on one interpreter: preprocessed window in, output values out.

    Files with AnyECG-Edge metadata run through :class:`~anyecg_edge.model.EdgeModel`
    (quantise, invoke, dequantise and output transform); plain TFLite files with one input of
    ``window_samples`` values run on the bare interpreter with the same quantisation steps.
    """

    def __init__(self, content: bytes, threads: int, interpreter: str):
        from firmware_bridge.tflite_file import TFLiteFormatError, read_anyecg_metadata

        from .model import EdgeModel, load_interpreter

        try:
            read_anyecg_metadata(content)
            has_metadata = True
        except TFLiteFormatError:
            has_metadata = False
        if has_metadata:
            model = EdgeModel(content, "model", threads, interpreter)
            self.backend, self.window_samples = model.backend, model.info.window_samples
            self.mains_hz = model.info.preprocess.mains_hz
            self.run = lambda window: model.to_values(model.invoke_raw(model.quantize_input(window)))
            return
        instance, self.backend = load_interpreter(content, threads, interpreter)
        self.mains_hz = None
        inp, out = instance.get_input_details()[0], instance.get_output_details()[0]
        self.window_samples = int(np.prod(inp["shape"]))
        in_scale, in_zero = inp["quantization"]
        out_scale, out_zero = out["quantization"]

        def run(window: np.ndarray) -> np.ndarray:
            x = np.asarray(window, dtype=np.float32).reshape(inp["shape"])
            if inp["dtype"] != np.float32:
                limits = np.iinfo(inp["dtype"])
                x = np.clip(np.round(x / in_scale) + in_zero, limits.min, limits.max).astype(inp["dtype"])
            instance.set_tensor(inp["index"], x)
            instance.invoke()
            y = instance.get_tensor(out["index"]).reshape(-1)
            return (y.astype(np.float64) - out_zero) * out_scale if out["dtype"] != np.float32 else y.copy()

        self.run = run


def bench_tflite(
    model: str | Path,
    interpreter: str,
    threads: Sequence[int] = (1,),
    runs: int = 100,
    warmup: int = 10,
    mains_hz: float | None = None,
    window_file: str | None = None,
    window_source: str | None = None,
) -> dict:
    """Measure one interpreter in this process: per thread count, preprocessing, inference, total.

    Returns a dict with ``interpreter``, ``version``, ``window`` (its source), ``load_ms`` and
    ``threads`` -> {"1": {"preprocess": stats, "inference": stats, "total": stats}, ...} (stats
    as :func:`summarize`), plus ``memory`` (:func:`memory_mb`) after loading and running.
    ``mains_hz`` defaults to the model's own (its metadata), else 50 Hz.
    ``window_file`` is a ``.npy`` raw window at 500 Hz (default: :func:`raw_window`, which may
    import ``wfdb``; a worker process is given a file so its memory is the runtime's alone).
    """
    from .preprocess import PreprocessConfig, preprocess_window

    if runs < 1 or warmup < 0:
        raise ValueError("runs must be at least 1 and warmup at least 0")
    content = Path(model).read_bytes()
    before = memory_mb()
    result: dict = {"interpreter": interpreter, "available": True, "version": package_version(INTERPRETER_MODULES[interpreter][1]), "threads": {}}
    loaded = []
    for n in threads:
        start = time.perf_counter()
        runner = TFLiteWindowModel(content, int(n), interpreter)
        result.setdefault("load_ms", round((time.perf_counter() - start) * 1e3, 2))
        loaded.append((int(n), runner))
    first = loaded[0][1]
    config = PreprocessConfig(mains_hz=mains_hz or first.mains_hz or 50.0, window_samples=first.window_samples)
    result["mains_hz"] = config.mains_hz
    if window_file:
        raw, result["window"] = np.load(window_file), window_source or window_file
    else:
        raw, result["window"] = raw_window(config.window_samples)
    for n, runner in loaded:
        pre, inf = [], []
        for i in range(warmup + runs):
            t0 = time.perf_counter()
            processed = preprocess_window(raw, config)
            t1 = time.perf_counter()
            runner.run(processed)
            t2 = time.perf_counter()
            if i >= warmup:
                pre.append(t1 - t0)
                inf.append(t2 - t1)
        total = [a + b for a, b in zip(pre, inf)]
        result["threads"][str(n)] = {"preprocess": summarize(pre), "inference": summarize(inf), "total": summarize(total)}
    result["memory"] = {"before_load_rss_mb": before["rss_mb"], **memory_mb()}
    return result


def run_isolated(spec: dict, timeout: float = 600.0) -> dict:
    """Run :func:`bench_tflite` (keyword arguments in ``spec``) in a fresh Python process.

    Returns its result, or ``{"interpreter": ..., "available": False, "reason": ...}`` when the
    interpreter is missing or the process fails.
    """
    name = spec.get("interpreter", "?")
    missing = available_interpreters().get(name, f"unknown interpreter {name!r}")
    if missing:
        return {"interpreter": name, "available": False, "reason": missing}
    with tempfile.TemporaryDirectory(prefix="anyecg-bench-") as tmp:
        if not spec.get("window_file"):
            raw, source = raw_window()
            spec = {**spec, "window_file": str(Path(tmp) / "window.npy"), "window_source": source}
            np.save(spec["window_file"], raw)
        command = [sys.executable, "-m", "anyecg_edge.benchmark", json.dumps(spec)]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"interpreter": name, "available": False, "reason": f"timed out after {timeout:g} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        detail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"interpreter": name, "available": False, "reason": f"benchmark process failed: {detail}"}
    return json.loads(lines[-1])


def _worker(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    try:
        result = bench_tflite(**spec)
    except Exception as exc:  # noqa: BLE001 - reported to the parent as the reason
        result = {"interpreter": spec.get("interpreter"), "available": False, "reason": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1:]))
