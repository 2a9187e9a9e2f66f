"""``anyecg-edge replay FILE``: the streaming pipeline on a recording, as fast as it goes."""

from __future__ import annotations

import argparse
import asyncio
import sys

from ._common import LatencyRecorder, add_pipeline_arguments, add_sink_arguments, load_model, open_sinks, pipeline_config, print_summary

HELP = "run the streaming pipeline on a recording file (JSON lines out)"
DESCRIPTION = """\
Replays one lead of a recording (WFDB, .npy or CSV) through exactly the pipeline a
wearable stream goes through: blocks -> 500 Hz resampling -> 10 s windows every hop ->
canonical preprocessing -> quality gate -> model -> per-window and aggregated estimates.
It runs as fast as the machine allows (or --speed times real time) and writes JSON lines
(one per window, estimate and event; schema in docs/runtime.md). A summary with window
counts and latency percentiles goes to stderr.

Samples are not repaired: a window holding a NaN is rejected, never estimated.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="recording: WFDB (.hea or name), .npy or .csv")
    parser.add_argument("--lead", default="I", help="lead to use (default I; a single-lead file is taken as is)")
    parser.add_argument("--fs", type=float, default=None, help="sampling rate for files that do not state it (.npy)")
    parser.add_argument("--device", default=None, help="device id in the output (default: the file name)")
    parser.add_argument("--speed", type=float, default=None, help="replay at this multiple of real time (default: as fast as possible)")
    parser.add_argument("--block", type=int, default=73, help="samples per block (default 73, a Polar H10 frame)")
    parser.add_argument("--quiet", action="store_true", help="no summary on stderr")
    add_pipeline_arguments(parser)
    add_sink_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from ..gateway import Gateway
    from ..sources.file import open_file_source

    model = load_model(args)
    source = open_file_source(args.file, lead=args.lead, fs=args.fs, device=args.device, block_samples=args.block, speed=args.speed)
    recorder = LatencyRecorder()
    gateway = Gateway(model, open_sinks(args) + [recorder], pipeline_config(args))
    try:
        stats = asyncio.run(gateway.run([source]))
    finally:
        gateway.close()
    if not args.quiet:
        print_summary(stats, recorder, model)
    return 0
