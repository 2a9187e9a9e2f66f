"""Full-size ECGFounder teacher: parameter count and per-window latency in torch fp32.

Usage: python benchmarks/teacher_latency.py [--runs 30] [--leads 1]

Random weights (seed 0): latency does not depend on the values. Prints the median and
p90 of single-window forward passes after warm-up, with 1 and 2 threads, measured in
one run so the two are comparable.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import torch

from quantize.net1d import Net1D, Net1DConfig


def measure(model: torch.nn.Module, x: torch.Tensor, threads: int, runs: int, warmup: int = 3) -> list[float]:
    torch.set_num_threads(threads)
    times = []
    with torch.inference_mode():
        for i in range(warmup + runs):
            start = time.perf_counter()
            model(x)
            if i >= warmup:
                times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--leads", type=int, default=1)
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = Net1D(Net1DConfig.ecgfounder(args.leads, 150)).eval()
    params = sum(p.numel() for p in model.parameters())
    x = torch.randn(1, args.leads, 5000)
    result = {"params": params, "leads": args.leads, "torch": torch.__version__, "cpu": platform.processor() or platform.machine()}
    print(f"ECGFounder Net1D, {args.leads} lead(s): {params:,} parameters")
    for threads in (1, 2):
        times = np.array(measure(model, x, threads, args.runs)) * 1e3
        result[f"threads_{threads}"] = {"median_ms": float(np.median(times)), "p90_ms": float(np.percentile(times, 90))}
        print(f"  {threads} thread(s): median {np.median(times):7.1f} ms, p90 {np.percentile(times, 90):7.1f} ms per 10 s window ({args.runs} runs)")
    ratio = result["threads_1"]["median_ms"] / result["threads_2"]["median_ms"]
    print(f"  speed-up from 2 threads: {ratio:.2f}x")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
