"""The student width table: parameters, MACs, int8 size, latency and fidelity per width preset.

Every preset is distilled from the same teacher on the same cached teacher targets (the demo
recipe's corpus and settings, fewer epochs), exported to full-integer int8 through the same
pipeline as ``anyecg-edge export``, timed with ai-edge-litert (XNNPACK, 1 thread, median of
``--runs`` single-window invokes) and verified against the teacher on the cohort's held-out
test subjects and on unseen real recordings.

    python benchmarks/student_widths.py --teacher artifacts/teacher/teacher.pth \
        --cohort artifacts/teacher/cohort --data ../shared/data --epochs 4

Writes OUT/widths.json and OUT/widths.md (default OUT = artifacts/widths).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def _latency_ms(path: Path, windows: np.ndarray, runs: int) -> float:
    from anyecg_edge.model import EdgeModel

    model = EdgeModel.load(path, threads=1)
    tensors = [model.quantize_input(w) for w in windows[:8]]
    for t in tensors:
        model.invoke_raw(t)
    times = []
    for i in range(runs):
        start = time.perf_counter()
        model.invoke_raw(tensors[i % len(tensors)])
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", default="artifacts/teacher/teacher.pth")
    parser.add_argument("--cohort", default="artifacts/teacher/cohort")
    parser.add_argument("--data", default="../shared/data", help="real ECG folder (default ../shared/data)")
    parser.add_argument("--recipe", default="quantize/recipes/demo_model.json")
    parser.add_argument("--widths", default="x0.5,x0.75,x1,x1.25,x1.5")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-windows", type=int, default=5000, help="training windows per width (seeded subset)")
    parser.add_argument("--cache", default="artifacts/student/cache", help="teacher cache shared with the demo build")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--eval-per-record", type=int, default=3, help="evaluation windows per record")
    parser.add_argument("--out", default="artifacts/widths")
    args = parser.parse_args()

    from quantize.distill import DistillConfig, distill, load_student
    from quantize.export import ExportConfig, export
    from quantize.verify import EvalSet, verify

    recipe = json.loads(Path(args.recipe).read_text())
    data = Path(args.data)
    corpus = [args.cohort, f"{data / 'cinc2017'}*4", f"{data / 'cpsc2021'}*4", f"{data / 'mitdb'}*4"]
    calibration = [data / "cinc2017", data / "cpsc2021", data / "mitdb"]
    sets = [EvalSet("held-out-synthetic", (args.cohort,), "test"),
            EvalSet("real-unseen", (str(data / "cinc2021"), str(data / "ptbdb")), None)]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in [w for w in args.widths.split(",") if w]:
        folder = out / name
        config = DistillConfig.from_dict({**recipe["distill"], "student": None, "student_preset": name,
                                         "epochs": args.epochs, "max_train_windows": args.train_windows})
        t0 = time.perf_counter()
        result = distill(args.teacher, corpus, folder, config, cache_dir=args.cache, threads=args.threads)
        seconds = time.perf_counter() - t0
        bundle = load_student(result.path)
        exported = export(result.path, folder, calibration,
                          ExportConfig.from_dict({**recipe["export"], "name": name}))
        report = verify(exported.tflite, args.teacher, sets, folder / "fidelity", max_per_record=args.eval_per_record,
                        plots=False)
        from quantize.corpus import discover, load_segments, preprocess_windows

        windows = preprocess_windows(load_segments(discover([data / "cinc2021"])[:8]).raw)
        row = {
            "preset": name,
            "params": bundle.info["params"],
            "macs": bundle.info["macs"],
            "int8_bytes": exported.tflite.stat().st_size,
            "latency_ms": round(_latency_ms(exported.tflite, windows, args.runs), 3),
            "distill_seconds": round(seconds, 1),
            "train_windows_per_s": result.throughput["train_windows_per_s"],
        }
        for set_name, block in report["sets"].items():
            rs = [v["pearson_teacher_int8"] for v in block["outputs"].values() if v["pearson_teacher_int8"] is not None]
            drops = [v["auroc_drop_teacher_int8"] for v in block["outputs"].values()
                     if v.get("auroc_drop_teacher_int8") is not None]
            row[f"{set_name}_min_r"] = min(rs) if rs else None
            row[f"{set_name}_mean_r"] = round(float(np.mean(rs)), 5) if rs else None
            row[f"{set_name}_max_auroc_drop"] = max(drops) if drops else None
        rows.append(row)
        print(json.dumps(row), flush=True)
        (out / "widths.json").write_text(json.dumps(rows, indent=2) + "\n")

    lines = ["| preset | params | MACs / window | int8 size | latency (1 thread) | min r synthetic | min r real "
             "| max AUROC drop | distil time |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['preset']} | {r['params']:,} | {r['macs'] / 1e6:.2f} M | {r['int8_bytes'] / 1024:.1f} KB "
            f"| {r['latency_ms']:.2f} ms | {r['held-out-synthetic_min_r']:.4f} | {r['real-unseen_min_r']:.4f} "
            f"| {r['held-out-synthetic_max_auroc_drop'] if r['held-out-synthetic_max_auroc_drop'] is not None else '–'} "
            f"| {r['distill_seconds'] / 60:.1f} min |"
        )
    (out / "widths.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
