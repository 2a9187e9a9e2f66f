"""``anyecg-edge bench``: per-window latency and peak memory of a model on this machine."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

HELP = "measure per-window latency (preprocessing + inference) and peak memory of a model"
DESCRIPTION = """\
Like TFLite's benchmark_model, but for whole ECG windows. Every iteration takes one raw
10 s window at 500 Hz through the canonical preprocessing and then through the model
(quantise, invoke, dequantise); after --warmup untimed iterations, --runs timed ones give
the median, p90, p99 and minimum of each part, for each thread count and each installed
interpreter (ai-edge-litert, tflite-runtime). Each interpreter runs in a fresh process so
its peak resident memory (VmHWM) is its own.

Memory: peak RSS (VmHWM) counts shared libraries (numpy's BLAS, scipy) in full; PSS is the
process's proportional share, closer to what one more process costs.

The table goes to stdout; --json writes the full result to compare devices:
  machine   date_utc, system, release, machine, cpu_model, cpu_count, python, packages
  model     path, size_bytes, sha256, input, output, anyecg_metadata, label_spec
  window    where the raw window came from; settings: threads, runs, warmup, mains_hz
  runs      per interpreter: available (and reason), version, load_ms, memory
            (before_load_rss_mb, rss_mb, peak_rss_mb, pss_mb, private_mb) and threads ->
            {preprocess, inference, total} -> n, median_ms, p90_ms, p99_ms, min_ms, mean_ms, max_ms

Examples:
  anyecg-edge bench                                   # the bundled demo model
  anyecg-edge bench model.tflite --threads 1,2,4 --runs 500 --json pi4.json
  anyecg-edge bench --interpreter tflite-runtime --json - > result.json
"""

INTERPRETER_CHOICES = ("all", "ai-edge-litert", "tflite-runtime")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?", help="a .tflite model (default: the bundled int8 demo model)")
    parser.add_argument(
        "--threads", default=None,
        help="thread counts: '1,2,4' or '1-4' (default: 1 to the number of CPU cores)",
    )
    parser.add_argument("--interpreter", choices=INTERPRETER_CHOICES, default="all", help="default: every installed one")
    parser.add_argument("--runs", type=int, default=100, help="timed windows per thread count (default 100)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed windows first (default 10)")
    parser.add_argument("--mains", type=float, choices=(50.0, 60.0), default=None,
                        help="mains frequency of the notch in Hz (default: the model's own, else 50)")
    parser.add_argument("--json", metavar="PATH", help="write the result as JSON ('-': stdout, the table then goes to stderr)")
    parser.add_argument(
        "--in-process", action="store_true",
        help="run every interpreter in this process (peak memory then covers all of them)",
    )


def parse_threads(spec: str | None, cores: int | None = None) -> list[int]:
    """'1,2,4' or '1-4' -> [1, 2, 4] / [1, 2, 3, 4]; None -> 1..cores."""
    if spec is None:
        return list(range(1, max(1, cores or os.cpu_count() or 1) + 1))
    values: set[int] = set()
    try:
        for part in spec.split(","):
            low, sep, high = part.strip().partition("-")
            values.update(range(int(low), int(high) + 1) if sep else [int(low)])
    except ValueError:
        raise ValueError(f"--threads must look like '1,2,4' or '1-4', not {spec!r}") from None
    if not values or min(values) < 1:
        raise ValueError("--threads needs positive thread counts")
    return sorted(values)


def _fmt(stats: dict) -> str:
    return f"{stats['median_ms']:7.2f} {stats['p90_ms']:7.2f} {stats['p99_ms']:7.2f} {stats['min_ms']:7.2f}"


def render_table(result: dict) -> str:
    """The human-readable table of a bench result."""
    m, model = result["machine"], result["model"]
    lines = [
        f"model    {model['path']}",
        f"         {model['size_bytes'] / 1024:.1f} KiB, sha256 {model['sha256'][:16]}…, input {model['input']}",
        f"machine  {m['machine']}, {m['cpu_model']}, {m['cpu_count']} cores, {m['system']} {m['release']}, "
        f"Python {m['python']}, numpy {m['packages']['numpy']}",
        f"window   {result['window']}; {result['settings']['runs']} runs after {result['settings']['warmup']} warm-up",
        "",
        f"{'interpreter':<22} {'thr':>3}  {'preprocess ms (med p90 p99 min)':<31}  "
        f"{'inference ms (med p90 p99 min)':<31}  {'total med':>9} {'p99':>7}  {'peak RSS':>9} {'PSS':>8}",
    ]
    for run in result["runs"]:
        label = f"{run['interpreter']} {run.get('version') or ''}".strip()
        if not run.get("available", False):
            lines.append(f"{label:<22}  not available: {run['reason']}")
            continue
        memory = run["memory"]
        pss = f"{memory['pss_mb']:5.1f} MB" if memory.get("pss_mb") is not None else "    n/a"
        for threads, stats in run["threads"].items():
            lines.append(
                f"{label:<22} {threads:>3}  {_fmt(stats['preprocess'])}  {_fmt(stats['inference'])}  "
                f"{stats['total']['median_ms']:9.2f} {stats['total']['p99_ms']:7.2f}  {memory['peak_rss_mb']:6.1f} MB {pss}"
            )
    return "\n".join(lines)


def _model_facts(path: Path) -> dict:
    from firmware_bridge.tflite_file import TFLiteFormatError, read_anyecg_metadata, read_io_tensors

    from ..files import sha256_file

    content = path.read_bytes()
    inputs, outputs = read_io_tensors(content)
    try:
        document = read_anyecg_metadata(content)
    except TFLiteFormatError:
        document = {}
    spec = document.get("label_spec") or {}
    return {
        "path": str(path),
        "size_bytes": len(content),
        "sha256": sha256_file(path),
        "input": f"{inputs[0].dtype} {list(inputs[0].shape)}",
        "output": f"{outputs[0].dtype} {list(outputs[0].shape)}",
        "anyecg_metadata": bool(document),
        "label_spec": spec.get("name"),
    }


def run(args: argparse.Namespace) -> int:
    from firmware_bridge.tflite_file import TFLiteFormatError

    from ..benchmark import INTERPRETER_MODULES, available_interpreters, bench_tflite, machine_info, run_isolated
    from ..errors import ModelFileError
    from ._common import bundled_model

    try:
        if args.runs < 1 or args.warmup < 0:
            raise ValueError("--runs must be at least 1 and --warmup at least 0")
        threads = parse_threads(args.threads)
    except ValueError as exc:
        print(f"anyecg-edge bench: error: {exc}", file=sys.stderr)
        return 2
    path = Path(args.model) if args.model else bundled_model()
    if not path.is_file():
        raise ModelFileError(f"{path}: model file not found")
    try:
        model = _model_facts(path)
    except TFLiteFormatError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    missing = available_interpreters()
    names = list(INTERPRETER_MODULES) if args.interpreter == "all" else [args.interpreter]
    runs = []
    for name in names:
        spec = {"model": str(path.resolve()), "interpreter": name, "threads": threads, "runs": args.runs,
                "warmup": args.warmup, "mains_hz": args.mains}
        if missing[name]:
            runs.append({"interpreter": name, "available": False, "reason": missing[name]})
        elif args.in_process:
            try:
                runs.append(bench_tflite(**spec))
            except (ModelFileError, ValueError, RuntimeError) as exc:
                runs.append({"interpreter": name, "available": False, "reason": str(exc)})
        else:
            runs.append(run_isolated(spec))
    window = next((r["window"] for r in runs if r.get("available")), "n/a")
    mains = args.mains or next((r["mains_hz"] for r in runs if r.get("available")), None)
    result = {
        "tool": "anyecg-edge bench",
        "machine": machine_info(),
        "model": model,
        "window": window,
        "settings": {"threads": threads, "runs": args.runs, "warmup": args.warmup, "mains_hz": mains,
                     "isolated_processes": not args.in_process},
        "runs": runs,
    }
    table_out = sys.stderr if args.json == "-" else sys.stdout
    print(render_table(result), file=table_out)
    if args.json == "-":
        print(json.dumps(result, indent=2))
    elif args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nwrote {args.json}", file=table_out)
    if not any(r.get("available") for r in runs):
        print(f"anyecg-edge bench: error: no interpreter could run {path}", file=sys.stderr)
        return 1
    return 0
