"""Options and helpers shared by ``run``, ``replay`` and ``demo``."""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path

import numpy as np

from ..errors import ModelFileError
from ..model import INTERPRETERS, EdgeModel
from ..pipeline import PipelineConfig

DEMO_MODEL = "demo-electrolytes-int8.tflite"
STAGES = ("arrival_to_window", "preprocess", "quality", "inference", "total")


def bundled_model() -> Path:
    """Path of the bundled demo model (it may be missing in a source checkout)."""
    return Path(str(resources.files("anyecg_edge") / "data" / "models" / DEMO_MODEL))


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, default=None, help=f"self-describing .tflite model (default: the bundled {DEMO_MODEL})")
    parser.add_argument("--threads", type=int, default=1, help="interpreter threads (default 1)")
    parser.add_argument("--interpreter", choices=INTERPRETERS, default="auto", help="TFLite interpreter (default: ai-edge-litert if installed)")


def add_pipeline_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    parser.add_argument("--hop", type=float, default=None, help="seconds between windows (default: the model's, usually 2)")
    parser.add_argument("--aggregate", type=int, default=3, metavar="N", help="accepted windows per aggregated estimate (default 3; 0 = none)")
    parser.add_argument("--aggregation", choices=("mean", "median"), default="mean", help="how windows are combined (default mean)")
    parser.add_argument("--mains", type=float, choices=(50.0, 60.0), default=None, help="mains frequency for the notch (default: the model's)")


def add_sink_arguments(parser: argparse.ArgumentParser, default_output: str | None = "-") -> None:
    parser.add_argument("-o", "--output", default=default_output, metavar="FILE",
                        help="JSON lines to FILE ('-' = stdout)" + (" (default: stdout)" if default_output == "-" else ""))
    parser.add_argument("--mqtt", metavar="URL", help="also publish to MQTT, e.g. mqtt://localhost:1883/anyecg (one topic per device)")


def load_model(args: argparse.Namespace) -> EdgeModel:
    path = args.model or bundled_model()
    if args.model is None and not path.is_file():
        raise ModelFileError(
            f"the bundled demo model is not installed ({path}); pass a model with --model MODEL.tflite"
        )
    return EdgeModel.load(path, threads=args.threads, interpreter=args.interpreter)


def pipeline_config(args: argparse.Namespace) -> PipelineConfig:
    return PipelineConfig(
        hop_s=args.hop, aggregate_windows=args.aggregate, aggregation=args.aggregation, mains_hz=getattr(args, "mains", None)
    )


def open_sinks(args: argparse.Namespace) -> list:
    from ..sinks import open_sink

    sinks = []
    if args.output:
        sinks.append(open_sink(args.output if args.output == "-" else f"jsonl:{args.output}"))
    if args.mqtt:
        sinks.append(open_sink(args.mqtt))
    return sinks


class LatencyRecorder:
    """A sink that keeps every window's latency stages for the closing summary."""

    def __init__(self) -> None:
        self.values: dict[str, list[float]] = {k: [] for k in STAGES}

    def emit(self, item) -> None:
        latency = getattr(item, "latency", None)
        if latency is not None and getattr(item, "verdict", None) is not None and item.verdict.ok:
            for key in STAGES:
                self.values[key].append(getattr(latency, key))

    def close(self) -> None:
        pass

    def table(self) -> list[str]:
        lines = []
        for key in STAGES:
            v = self.values[key]
            if v:
                lines.append(f"  {key:<18} p50 {np.percentile(v, 50):8.2f} ms   p99 {np.percentile(v, 99):8.2f} ms")
        return lines


def print_summary(stats: dict, recorder: LatencyRecorder, model: EdgeModel, stream=None) -> None:
    stream = stream or sys.stderr
    for device, s in stats["devices"].items():
        rejected = ", ".join(f"{k} {v}" for k, v in s["rejected"].items()) or "none"
        print(
            f"{device}: {s['windows']} windows, {s['accepted']} accepted, rejected: {rejected}; "
            f"{s['samples']} samples, {s['lost_samples']} lost in {s['gaps']} gaps, {s['restarts']} restarts",
            file=stream,
        )
    print(f"latency per accepted window ({model.backend}, {model.threads} thread(s)):", file=stream)
    for line in recorder.table():
        print(line, file=stream)
