"""``anyecg-edge demo``: a virtual Polar H10 replays a real recording into live lab estimates."""

from __future__ import annotations

import argparse
import asyncio
import sys
from importlib import resources
from pathlib import Path

from ._common import LatencyRecorder, add_model_arguments, load_model

HELP = "live lab estimates from a virtual Polar H10 replaying a real ECG (no hardware needed)"
DESCRIPTION = """\
Starts a virtual Polar H10 chest strap (a real Bluetooth LE peripheral on an in-process
radio) that replays the bundled recording (CPSC 2021 record data_35_4, lead I, CC BY 4.0)
at the strap's 130 Hz, connects to it through bleak's scanner and client API exactly as
'anyecg-edge run' connects to a real strap, and prints live lab estimates with their
latencies from the bundled demo model. The recording is replayed faster than real time
(--speed) so the demo ends by itself in well under a minute.

The demo model was trained on simulated ECG: its numbers show the pipeline working, they
are not clinical estimates.
"""

EXPLANATION = """\
What the numbers mean:
  * Every {hop:g} s of ECG the pipeline cuts a 10 s window (500 Hz), preprocesses it exactly
    as the model was trained, checks its quality, and runs the int8 model.
  * potassium is an estimate in mmol/L; hyper-/hypokalemia and hyper-/hypocalcemia are
    probabilities (0-1) that the lab value is outside its reference range. The word after
    each value is its risk band from the model's own metadata.
  * "[3 win]" means the value is the mean of three non-overlapping accepted windows (30 s
    of ECG), as Pocket-K averages three 10 s clips; rejected windows never count.
  * Latency: preprocessing + quality gate + inference, and the total from the arrival of the
    Bluetooth packet that completed the window to the finished estimate.
  * The ECG was replayed {speed:g}x faster than real time; a real strap sends 130 samples/s.

The demo model was trained on simulated ECG. It is NOT a clinical model: do not use these
numbers for any decision about a person's health."""


def bundled_record() -> Path:
    return Path(str(resources.files("anyecg_edge") / "data" / "records" / "data_35_4"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    parser.add_argument("--seconds", type=float, default=40.0, help="how long the demo runs (default 40 s)")
    parser.add_argument("--speed", type=float, default=4.0, help="replay speed relative to real time (default 4)")
    parser.add_argument("--record", type=Path, default=None, help="recording to replay (default: the bundled CPSC 2021 data_35_4)")
    parser.add_argument("--lead", default="I", help="lead of the recording (default I)")


def run(args: argparse.Namespace) -> int:
    from ..errors import SourceError
    from ..records import read_record

    model = load_model(args)
    try:
        import bumble  # noqa: F401
    except ImportError:
        raise SourceError("the demo's virtual wearable needs bumble: pip install 'anyecg-edge[virtual]'") from None
    if args.seconds <= 0 or args.speed <= 0:
        raise SourceError("--seconds and --speed must be positive")
    record = read_record(args.record or bundled_record())
    signal = record.lead(args.lead)
    return asyncio.run(_demo(args, model, signal, record))


async def _demo(args, model, signal, record) -> int:
    from firmware_bridge.bumble_backend import VirtualAir
    from firmware_bridge.virtual import VirtualWearable

    from ..errors import SourceError
    from ..gateway import Gateway
    from ..live import LiveView
    from ..sources.ble import open_ble_source, scan

    out = sys.stdout
    spec = model.label_spec
    print(f"model   {Path(model.source).name}: {', '.join(f'{o.name} ({o.unit})' for o in spec.outputs)}; "
          f"{model.backend}, {model.threads} thread(s)", file=out)
    print(f"ECG     {Path(record.path).name}, lead {args.lead}, {record.duration:.0f} s recorded at {record.fs:g} Hz "
          f"(CPSC 2021, CC BY 4.0)", file=out)
    async with VirtualAir() as air:
        strap = VirtualWearable(air, signal, record.fs, units="mV", profile="polar_h10", speed=args.speed)
        await strap.start()
        print(f"device  virtual {strap.name} replaying it at 130 Hz, {args.speed:g}x real time; scanning with bleak ...", file=out)
        found = [f for f in await scan(2.0, backend=air) if f.profile == "polar_h10"]
        if not found:
            raise SourceError("the virtual Polar H10 was not found by the scan")
        print(f"found   {found[0].name} ({found[0].address}), profile {found[0].profile}; "
              f"first estimate after 10 s of ECG, then one every {model.info.default_hop_s:g} s of ECG\n", file=out)
        live = LiveView(out)
        recorder = LatencyRecorder()
        gateway = Gateway(model, [live, recorder])
        source = open_ble_source(found[0].name, backend=air)
        stats = await gateway.run([source], duration_s=args.seconds)
    device = next(iter(stats["devices"].values()), None)
    print("", file=out)
    if device is None:
        print("no windows were completed; try a longer --seconds", file=out)
        return 1
    rejected = ", ".join(f"{k} {v}" for k, v in device["rejected"].items()) or "none"
    print(f"{device['windows']} windows from {device['samples'] / 130:.0f} s of ECG: {device['accepted']} accepted, "
          f"rejected: {rejected}; {device['lost_samples']} samples lost", file=out)
    print(f"latency per accepted window ({model.backend}), milliseconds:", file=out)
    for line in recorder.table():
        print(line, file=out)
    print("", file=out)
    print(EXPLANATION.format(hop=model.info.default_hop_s, speed=args.speed), file=out)
    return 0
