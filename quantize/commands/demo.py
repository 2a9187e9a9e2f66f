"""``anyecg-edge demo``: preprocess a bundled real recording and run a teacher on it."""

from __future__ import annotations

import argparse
import time
from importlib import resources

HELP = "run the bundled demo: a real recording through preprocessing and the teacher"
DESCRIPTION = """\
Reads the bundled recording (CPSC 2021 record data_35_4, lead I, 200 Hz; CC BY 4.0),
cuts it into 10 s windows, applies the canonical ECGFounder preprocessing and runs a
Net1D teacher on every window, printing per-stage timings.

Without --checkpoint the teacher has the full ECGFounder architecture with random
weights (seed 0): its outputs are meaningless, the timings are real.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", help="teacher checkpoint (ECGFounder format); default: random full-size Net1D")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from anyecg_edge.records import read_record
    from anyecg_edge.windows import record_windows

    from ..checkpoint import load_teacher
    from ..net1d import Net1D, Net1DConfig

    torch.set_num_threads(args.threads)
    path = resources.files("anyecg_edge") / "data" / "records" / "data_35_4"
    t0 = time.perf_counter()
    record = read_record(str(path))
    signal = record.lead("I")
    t1 = time.perf_counter()
    windows = record_windows(signal, record.fs)
    t2 = time.perf_counter()
    if args.checkpoint:
        model = load_teacher(args.checkpoint).model
        origin = args.checkpoint
    else:
        torch.manual_seed(0)
        model = Net1D(Net1DConfig.ecgfounder(1, 150)).eval()
        origin = "full-size ECGFounder Net1D, random weights (outputs meaningless)"
    params = sum(p.numel() for p in model.parameters())
    latencies = []
    with torch.inference_mode():
        for window in windows:
            start = time.perf_counter()
            logits = model(torch.from_numpy(window[None]))
            latencies.append(time.perf_counter() - start)
    print(f"record      {path.name}: {record.duration:.1f} s at {record.fs:g} Hz, leads {list(record.leads)}")
    print(f"teacher     {origin}; {params / 1e6:.2f} M parameters")
    print(f"read        {1e3 * (t1 - t0):8.1f} ms")
    print(f"preprocess  {1e3 * (t2 - t1) / len(windows):8.2f} ms per window ({len(windows)} windows of 10 s)")
    print(f"inference   {1e3 * float(np.median(latencies)):8.2f} ms per window (median, {args.threads} thread(s))")
    print(f"last window: {logits.shape[-1]} logits, first three {logits[0, :3].numpy().round(3).tolist()}")
    return 0
