"""How many concurrent 130 Hz ECG streams one core keeps in real time at a 2 s hop.

What is simulated: N Polar H10 streams in ONE asyncio event loop pinned to ONE core.
Each stream is a real recording (CPSC 2021 data_35_4, lead I, resampled to 130 Hz, a
different starting point per stream) encoded as PMD ECG frames of 73 samples (229 bytes,
as the H10 sends at ATT MTU 232), delivered at real-time pace (one frame per stream every
73/130 s, phases staggered). Every frame goes through the runtime's own path: PMD decode
and timestamp gap detection (``PolarSession``), resampling to 500 Hz, the ring buffer, a
window every 2 s, canonical preprocessing, the quality gate, the int8 model and the
estimates (``Gateway.handle``). What is NOT included: the Bluetooth stack (BlueZ or the
bumble virtual radio) and sinks; a first 10 s of frames per stream is pushed before the
clock starts so every stream produces windows from the first second.

A run "keeps up" when, over the measured seconds, the 99th percentile lag (frame
processed minus frame due) stays under 1 s and the loop is not late at the end. N grows
until it does not keep up.

    python benchmarks/gateway_scaling.py [--model M.tflite] [--seconds 12] [--max 1600]

Prints a table and writes ``benchmarks/results/gateway_scaling.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FRAME = 73
FS = 130
PERIOD = FRAME / FS


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def recording_uv() -> np.ndarray:
    from anyecg_edge.preprocess import resample
    from anyecg_edge.records import read_record

    record = read_record(ROOT / "anyecg_edge" / "data" / "records" / "data_35_4")
    return np.round(resample(record.lead("I"), record.fs, FS) * 1000).astype(np.int32)


def tiny_model_bytes() -> bytes:
    """A small int8 Conv1D model with metadata, for when the demo model is not installed."""
    import tensorflow as tf

    from quantize.tflite_edit import embed_metadata

    tf.keras.utils.set_random_seed(0)
    inputs = tf.keras.Input((5000, 1), batch_size=1)
    x = tf.keras.layers.Conv1D(8, 15, strides=5, activation="relu")(inputs)
    x = tf.keras.layers.Conv1D(16, 9, strides=4, activation="relu")(x)
    x = tf.keras.layers.GlobalAveragePooling1D()(x)
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(2)(x))
    rng = np.random.default_rng(0)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([rng.standard_normal((1, 5000, 1)).astype(np.float32)] for _ in range(8))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    spec = {"name": "bench", "outputs": [
        {"name": "potassium", "kind": "regression", "unit": "mmol/L", "definition": "serum potassium"},
        {"name": "hyperkalemia", "kind": "binary", "definition": "serum potassium > 5.5 mmol/L", "threshold": 0.5}]}
    doc = {"format": "anyecg-edge-model", "format_version": 1, "label_spec": spec,
           "preprocessing": {"version": "ecgfounder-v1", "mains_hz": 50}, "sampling_rate_hz": 500,
           "window_samples": 5000, "default_hop_s": 2.0}
    return embed_metadata(converter.convert(), doc)


def load_model(path: Path | None):
    from anyecg_edge.commands._common import bundled_model
    from anyecg_edge.model import EdgeModel

    path = path or bundled_model()
    if path.is_file():
        return EdgeModel.load(path), str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return EdgeModel(tiny_model_bytes(), "tiny-bench-model"), "tiny Conv1D int8 model (demo model not installed)"


async def run_streams(n: int, model, signal_uv: np.ndarray, seconds: float) -> dict:
    from firmware_bridge.pmd import EcgFrame

    from anyecg_edge.gateway import Gateway
    from anyecg_edge.sources.polar import PolarSession

    gc.collect()
    rss0 = rss_mb()
    gateway = Gateway(model, [])
    sessions = [PolarSession(None, f"H10-{i:04d}", gateway.handle) for i in range(n)]
    offsets = [(i * 7919 * FRAME) % (len(signal_uv) - 60 * FS) for i in range(n)]
    counters = [0] * n
    t0_ns = 800_000_000_000_000_000

    def frame(i: int) -> bytes:
        k = counters[i]
        counters[i] += 1
        start = (offsets[i] + k * FRAME) % (len(signal_uv) - FRAME)
        last_ns = t0_ns + round((k * FRAME + FRAME - 1) * 1e9 / FS)
        return bytes(EcgFrame(last_ns, signal_uv[start : start + FRAME]))

    prefill = int(np.ceil(10.0 / PERIOD))
    for i, s in enumerate(sessions):
        for _ in range(prefill):
            s._on_data(None, frame(i))
    windows_before = sum(p.stats()["windows"] for p in gateway.pipelines.values())
    loop = asyncio.get_running_loop()
    start = loop.time()
    due = np.array([start + PERIOD * (i / n) for i in range(n)])  # staggered phases
    lags: list[float] = []
    cpu0 = time.process_time()
    end = start + seconds
    while True:
        now = loop.time()
        if now >= end:
            break
        ready = np.flatnonzero(due <= now)
        for i in ready:
            sessions[i]._on_data(None, frame(i))
            lags.append(loop.time() - due[i])
            due[i] += PERIOD
        await asyncio.sleep(max(0.0, min(due.min(), end) - loop.time()))
    wall = loop.time() - start
    cpu = time.process_time() - cpu0
    late_s = max(0.0, loop.time() - due.min())
    windows = sum(p.stats()["windows"] for p in gateway.pipelines.values()) - windows_before
    accepted = sum(p.stats()["accepted"] for p in gateway.pipelines.values())
    rss1 = rss_mb()
    lag = np.array(lags) if lags else np.zeros(1)
    keeps_up = bool(np.percentile(lag, 99) < 1.0 and late_s < 1.0)
    result = {
        "streams": n,
        "seconds": round(wall, 2),
        "frames": len(lags),
        "windows": windows,
        "windows_per_s": round(windows / wall, 1),
        "accepted_total": accepted,
        "cpu_core_fraction": round(cpu / wall, 3),
        "cpu_per_stream_pct": round(100 * cpu / wall / n, 3),
        "lag_p50_ms": round(1e3 * float(np.percentile(lag, 50)), 2),
        "lag_p99_ms": round(1e3 * float(np.percentile(lag, 99)), 2),
        "late_at_end_s": round(late_s, 3),
        "rss_delta_mb": round(rss1 - rss0, 2),
        "memory_per_stream_kb": round(1024 * (rss1 - rss0) / n, 1),
        "keeps_up": keeps_up,
    }
    del gateway, sessions
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--seconds", type=float, default=12.0, help="measured seconds per N (default 12)")
    parser.add_argument("--start", type=int, default=50)
    parser.add_argument("--max", type=int, default=1600)
    parser.add_argument("--core", type=int, default=0, help="CPU core to pin to (default 0)")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "gateway_scaling.json")
    args = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.core})
    model, model_name = load_model(args.model)
    signal_uv = recording_uv()
    print(f"model: {model_name} ({model.backend}, 1 thread); one event loop pinned to core {args.core}; "
          f"130 Hz PMD frames of {FRAME} samples, hop 2 s, {args.seconds:g} s per step")
    print(f"{'streams':>8} {'windows/s':>10} {'CPU core':>9} {'CPU/stream':>11} {'lag p50':>9} {'lag p99':>9} {'mem/stream':>11}  keeps up")
    rows = []
    n = args.start
    while n <= args.max:
        row = asyncio.run(run_streams(n, model, signal_uv, args.seconds))
        rows.append(row)
        print(f"{n:>8} {row['windows_per_s']:>10} {row['cpu_core_fraction']:>9.2f} {row['cpu_per_stream_pct']:>10.3f}% "
              f"{row['lag_p50_ms']:>7.1f}ms {row['lag_p99_ms']:>7.1f}ms {row['memory_per_stream_kb']:>8.1f} KB  {row['keeps_up']}",
              flush=True)
        if not row["keeps_up"]:
            break
        n *= 2
    kept = [r for r in rows if r["keeps_up"]]
    kept_or_all = kept or rows
    best = max((r["streams"] for r in kept), default=0)
    mem = [r["memory_per_stream_kb"] for r in rows if r["streams"] >= 100] or [r["memory_per_stream_kb"] for r in rows]
    summary = {
        "benchmark": "gateway_scaling",
        "what": "N Polar H10 130 Hz PMD streams, real-time pace, one asyncio loop on one core, hop 2 s; "
                "PMD decode + full pipeline; no Bluetooth stack, no sinks",
        "model": model_name,
        "interpreter": model.backend,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "streams_per_core_kept_up": best,
        "cpu_bound_streams_per_core": int(100 / kept_or_all[-1]["cpu_per_stream_pct"]) if kept_or_all else None,
        "load_average_at_end": list(os.getloadavg()),
        "first_failing_streams": next((r["streams"] for r in rows if not r["keeps_up"]), None),
        "cpu_per_stream_pct": kept[-1]["cpu_per_stream_pct"] if kept else None,
        "memory_per_stream_kb": round(float(np.median(mem)), 1) if mem else None,
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rows": rows,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\nCPU per stream {summary['cpu_per_stream_pct'] or kept_or_all[-1]['cpu_per_stream_pct']}% of a core: "
          f"a free core carries about {summary['cpu_bound_streams_per_core']} streams "
          f"(load average during the run {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    print(f"kept real time with {best} streams on one core "
          f"(next step {summary['first_failing_streams']} fell behind); "
          f"about {summary['memory_per_stream_kb']} KB and {summary['cpu_per_stream_pct']}% of a core per stream. "
          f"-> {args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
