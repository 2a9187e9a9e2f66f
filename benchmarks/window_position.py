"""How much a network's answer moves when the 10 s window moves by a few samples.

A strided network sees its input on a grid (Net1D downsamples 256x, so a 10 s window at
500 Hz lands on 20 positions). Move the window by a fraction of that stride and the answer
can change; move it by a whole multiple and the same pattern comes back. A teacher whose
answer moves a lot with the window is hard to distil and gives a wearable a jumpy estimate.

Windows are cut from each WFDB record in DATA (folders or record paths; the first of lead
I, ECG, II, MLII; one window per record unless ``--per-record``), moved by each shift in
turn, preprocessed canonically and scored by every teacher checkpoint (torch) and every
``.tflite`` model given. For each network and shift it prints the Pearson r of every output
against the unmoved window (probabilities for binary outputs). For each ``.tflite`` it also
prints r against its teacher at that shift (the given teacher whose sha256 the model's
metadata names, else the first) and against that teacher's mean over all the shifts: the
part of the teacher's answer that does not depend on where the window starts. A student
closer to the mean than to the teacher at its own shift does not follow the teacher's
wobble; one closer to the teacher at its shift follows it, and what it misses is the
position-independent part.

    python benchmarks/window_position.py ../shared/data --teacher artifacts/teacher/teacher.pth \
        --model anyecg_edge/data/models/demo-electrolytes-int8.tflite --json OUT.json

Writes nothing unless ``--json`` or ``--plot`` is given.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHIFTS = (0, 4, 16, 64, 128, 192, 256)


def _correlations(values: dict, reference: dict) -> dict:
    """Per shift, the Pearson r of every output between ``values[shift]`` and ``reference[shift]``."""
    from quantize.metrics import pearson_r

    return {k: [pearson_r(v[:, j], reference[k][:, j]) for j in range(v.shape[1])] for k, v in values.items()}


def _print_rows(title: str, table: dict) -> None:
    print(title)
    for k, row in table.items():
        print(f"  {k:5d}  " + " ".join(f"{r:13.3f}" for r in row))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", nargs="*", default=[str(ROOT.parent / "shared" / "data")],
                        help="folders of WFDB records, or records (default %(default)s)")
    parser.add_argument("--teacher", action="append", default=[],
                        help="teacher checkpoint (repeatable; default artifacts/teacher/teacher.pth without --model)")
    parser.add_argument("--model", action="append", default=[], help=".tflite model (repeatable)")
    parser.add_argument("--shifts", default=",".join(map(str, SHIFTS)),
                        help="comma-separated shifts in samples at 500 Hz (default %(default)s)")
    parser.add_argument("--per-record", type=int, default=1, metavar="N",
                        help="windows per record, evenly spread over it (default %(default)s)")
    parser.add_argument("--json", help="write the table here")
    parser.add_argument("--plot", help="write a PNG of r against shift here")
    parser.add_argument("--threads", type=int, default=1, help="torch and interpreter threads (default 1)")
    args = parser.parse_args(argv)
    try:
        shifts = sorted({int(s) for s in args.shifts.split(",") if s.strip()} | {0})
    except ValueError:
        parser.error(f"--shifts must be comma-separated whole numbers, not {args.shifts!r}")
    if shifts[0] < 0:
        parser.error("shifts must be non-negative")
    if args.per_record < 1:
        parser.error("--per-record must be at least 1")
    if not args.teacher and not args.model:
        args.teacher = [str(ROOT / "artifacts" / "teacher" / "teacher.pth")]

    import numpy as np
    import torch

    from anyecg_edge.errors import AnyECGError
    from anyecg_edge.model import EdgeModel
    from anyecg_edge.preprocess import WINDOW_SAMPLES
    from quantize.checkpoint import load_teacher
    from quantize.corpus import discover, load_segments, preprocess_windows
    from quantize.distill import outputs_to_values, teacher_outputs

    torch.set_num_threads(args.threads)
    try:
        entries = discover(args.data)
        segments = load_segments(entries, margin=(shifts[-1] + 1) // 2, max_per_record=args.per_record)
    except AnyECGError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if len(segments.raw) < 3:
        print(f"{len(segments.raw)} window(s) from {len(entries)} record(s): a correlation needs at least 3; "
              "give more records or --per-record", file=sys.stderr)
        return 1
    windows = {k: preprocess_windows(segments.raw[:, k : k + WINDOW_SAMPLES]) for k in shifts}
    print(f"{len(segments.raw)} windows from {len(entries)} record(s) (at most {args.per_record} per record); "
          f"shifts {shifts} samples")

    networks = []  # (path, label spec, score function, teacher sha256 or None, is a teacher)
    try:
        for path in args.teacher:
            teacher = load_teacher(path)
            spec = teacher.label_spec
            if spec is None:
                raise AnyECGError(f"{path}: the checkpoint has no label spec")
            score = lambda x, t=teacher, s=spec: outputs_to_values(teacher_outputs(t.model, x)[0], s)  # noqa: E731
            networks.append((path, spec, score, teacher.sha256, True))
        for path in args.model:
            model = EdgeModel.load(path, threads=args.threads)
            teacher_sha = model.info.document.get("teacher", {}).get("sha256")
            networks.append((path, model.label_spec, model.predict, teacher_sha, False))
    except AnyECGError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    results: dict = {"data": args.data, "windows": int(len(segments.raw)), "shifts": shifts, "networks": {}}
    teachers: dict[str, tuple] = {}  # sha256 -> (path, values per shift)
    for name, spec, score, sha, is_teacher in networks:
        values = {k: score(windows[k]) for k in shifts}
        names = [o.name for o in spec.outputs]
        moved = _correlations(values, {k: values[0] for k in shifts})
        entry = {"outputs": names, "r_vs_unmoved": moved}
        _print_rows(f"\n{name}: r against the unmoved window\n  shift  " + " ".join(f"{n[:13]:>13s}" for n in names),
                    moved)
        if is_teacher:
            teachers.setdefault(sha, (name, values))
        elif teachers:
            teacher_name, reference = teachers.get(sha) or next(iter(teachers.values()))
            mean = dict.fromkeys(shifts, np.mean([reference[k] for k in shifts], axis=0))  # the same at every shift
            entry.update(teacher=teacher_name, r_vs_teacher=_correlations(values, reference),
                         r_vs_teacher_mean=_correlations(values, mean),
                         teacher_r_vs_own_mean=_correlations(reference, mean))
            _print_rows(f"  r against {teacher_name} at the same shift", entry["r_vs_teacher"])
            _print_rows(f"  r against {teacher_name}'s mean over the shifts", entry["r_vs_teacher_mean"])
            _print_rows(f"  {teacher_name} itself against its mean over the shifts", entry["teacher_r_vs_own_mean"])
        results["networks"][name] = entry

    if args.json:
        from anyecg_edge.files import atomic_write

        atomic_write(args.json, json.dumps(results, indent=2) + "\n")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        first = next(iter(results["networks"].values()))["outputs"]
        fig, axes = plt.subplots(1, len(first), figsize=(3.2 * len(first), 3.2), sharey=True, squeeze=False)
        axes = axes[0]
        for j, (ax, output) in enumerate(zip(axes, first)):
            for name, entry in results["networks"].items():
                label = "/".join(Path(name).parts[-2:])
                ax.plot(shifts, [entry["r_vs_unmoved"][k][j] for k in shifts], marker="o", label=label)
            ax.set_title(output)
            ax.set_xlabel("shift (samples at 500 Hz)")
            ax.grid(alpha=0.3)
        axes[0].set_ylabel("r against the unmoved window")
        axes[0].legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=110)
        print(f"\nplot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
