"""Run the demo teacher on real recordings and print the distribution of its outputs.

The recordings carry no lab values, so this shows what the demo teacher (trained on the
synthetic electrolyte cohort) says about real lead-I ECG: how its potassium estimates and
risk probabilities are spread, per dataset. It is a sanity check of the whole chain, not a
validation.

Usage::

    python benchmarks/teacher_on_real_ecg.py [DATA_DIR] [--checkpoint artifacts/teacher/teacher.pth]
        [--json OUT.json] [--mains-hz 50] [--threads 1]

Every WFDB record (``*.hea``) under DATA_DIR (default ``../shared/data``) with a lead I (or a
single unnamed lead, like AliveCor's) is cut into 10 s windows, preprocessed canonically,
scored, and its window outputs averaged (the mean of clip scores). Records without lead I
are listed as skipped.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", nargs="?", default=str(ROOT.parent / "shared" / "data"), help="folder of WFDB records")
    parser.add_argument("--checkpoint", default=str(ROOT / "artifacts" / "teacher" / "teacher.pth"))
    parser.add_argument("--json", help="also write per-record outputs and the summary here")
    parser.add_argument("--mains-hz", type=float, default=50.0, choices=(50.0, 60.0))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    import torch

    from anyecg_edge.errors import AnyECGError
    from anyecg_edge.preprocess import PreprocessConfig
    from anyecg_edge.records import read_record
    from anyecg_edge.windows import aggregate, record_windows
    from quantize.checkpoint import load_teacher
    from quantize.finetune import predict_windows

    torch.set_num_threads(args.threads)
    teacher = load_teacher(args.checkpoint)
    spec = teacher.label_spec
    if spec is None:
        print(f"{args.checkpoint}: the checkpoint has no label spec", file=sys.stderr)
        return 1
    binary = np.array([o.is_binary for o in spec.outputs])
    config = PreprocessConfig(mains_hz=args.mains_hz)
    per_record, skipped = [], []
    for header in sorted(Path(args.data).rglob("*.hea")):
        base = header.with_suffix("")
        try:
            record = read_record(base)
            signal = record.lead("I")
        except AnyECGError as exc:
            skipped.append((str(base.relative_to(args.data)), str(exc).split(": ")[-1]))
            continue
        windows = record_windows(signal, record.fs, config)
        outputs = predict_windows(teacher.model, windows)
        outputs[:, binary] = 1.0 / (1.0 + np.exp(-outputs[:, binary]))
        value = aggregate(outputs, "mean")
        per_record.append({"record": str(base.relative_to(args.data)), "dataset": base.parent.name,
                           "fs": record.fs, "seconds": round(record.duration, 1), "windows": len(windows),
                           **{o.name: float(v) for o, v in zip(spec.outputs, value)}})

    print(f"teacher     {args.checkpoint} (sha256 {teacher.sha256[:16]}...)")
    print(f"records     {len(per_record)} scored, {len(skipped)} skipped (no lead I), "
          f"{sum(r['windows'] for r in per_record)} windows")
    summary = {}
    groups = {"all": per_record}
    for r in per_record:
        groups.setdefault(r["dataset"], []).append(r)
    for group, rows in groups.items():
        print(f"\n{group} ({len(rows)} records)")
        summary[group] = {}
        for output in spec.outputs:
            values = np.array([r[output.name] for r in rows])
            q = np.percentile(values, [5, 25, 50, 75, 95])
            entry = {"mean": float(values.mean()), "p5": q[0], "p25": q[1], "median": q[2], "p75": q[3], "p95": q[4]}
            line = (f"  {output.name:14s} median {q[2]:6.3f}  IQR {q[1]:6.3f}-{q[3]:6.3f}  "
                    f"5-95% {q[0]:6.3f}-{q[4]:6.3f}")
            if output.is_binary:
                threshold = 0.5 if output.threshold is None else output.threshold
                entry["above_threshold"] = float(np.mean(values >= threshold))
                line += f"  >= {threshold:g}: {100 * entry['above_threshold']:5.1f} %"
            elif output.bands:
                bands = {b.name: int(sum(b.contains(v) for v in values)) for b in output.bands}
                entry["bands"] = bands
                line += "  bands " + ", ".join(f"{k} {v}" for k, v in bands.items())
            summary[group][output.name] = {k: (float(v) if not isinstance(v, dict) else v) for k, v in entry.items()}
            print(line + f" {output.unit if not output.is_binary else ''}".rstrip())
    if skipped:
        print("\nskipped: " + ", ".join(f"{name} ({why})" for name, why in skipped))
    if args.json:
        from anyecg_edge.files import atomic_write

        atomic_write(args.json, json.dumps({"checkpoint": args.checkpoint, "sha256": teacher.sha256,
                                            "summary": summary, "records": per_record,
                                            "skipped": skipped}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
