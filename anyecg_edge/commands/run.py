"""``anyecg-edge run``: live lab estimates from BLE wearables (one or many)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from ._common import LatencyRecorder, add_pipeline_arguments, add_sink_arguments, load_model, open_sinks, pipeline_config, print_summary

HELP = "stream from BLE wearables (Polar H10, open ECG profile) into live lab estimates"
DESCRIPTION = """\
Connects to one or more wearables by name or address, or scans for them, picks the
profile from their services (Polar H10 PMD, the open ECG stream profile, or Heart Rate
only), starts the ECG stream and serves every device in one event loop. Disconnects are
retried with exponential backoff plus jitter (rescanning, and re-sending START, as the
H10 needs); a no-data watchdog reconnects stalled streams. Ctrl-C stops cleanly: STOP is
sent to each device, then it is disconnected.

The terminal shows one line per window: quality verdict, heart rate, estimates with risk
bands and latencies. -o FILE writes JSON lines, --mqtt publishes them (one topic per
device); --jsonl prints JSON lines instead of the live view.

Without devices named, it scans for --scan seconds and serves every ECG wearable found
(Heart Rate-only devices are served only when named). --virtual N starts N virtual
Polar H10 straps replaying the bundled recording, to try the gateway without hardware.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("devices", nargs="*", metavar="DEVICE", help="advertised name or address (default: scan)")
    parser.add_argument("--scan", type=float, default=5.0, metavar="SECONDS", help="scan time (default 5 s)")
    parser.add_argument("--list", action="store_true", help="only scan and list the wearables found")
    parser.add_argument("--profile", choices=("auto", "polar_h10", "ecgstream", "hrs"), default="auto",
                        help="profile (default: chosen from the device's services)")
    parser.add_argument("--rate", type=int, default=250, help="sampling rate asked of open-profile devices (default 250)")
    parser.add_argument("--watchdog", type=float, default=5.0, metavar="SECONDS", help="reconnect after this long without data (default 5 s)")
    parser.add_argument("--duration", type=float, default=None, metavar="SECONDS", help="stop after this long (default: until Ctrl-C)")
    parser.add_argument("--jsonl", action="store_true", help="JSON lines on stdout instead of the live view")
    parser.add_argument("--virtual", type=int, default=0, metavar="N", help="serve N virtual Polar H10 straps (needs bumble)")
    parser.add_argument("--speed", type=float, default=1.0, help="replay speed of --virtual straps (default 1)")
    add_pipeline_arguments(parser)
    add_sink_arguments(parser, default_output=None)


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))


async def _virtual_air(args, stack):
    from ..errors import SourceError
    from ..records import read_record
    from .demo import bundled_record

    try:
        from firmware_bridge.bumble_backend import VirtualAir
        from firmware_bridge.virtual import VirtualWearable
    except ImportError:
        raise SourceError("--virtual needs bumble: pip install 'anyecg-edge[virtual]'") from None
    air = await stack.enter_async_context(VirtualAir())
    record = read_record(bundled_record())
    for _ in range(args.virtual):
        await VirtualWearable(air, record.lead("I"), record.fs, speed=args.speed).start()
    return air


async def _run(args: argparse.Namespace) -> int:
    import contextlib

    from ..errors import SourceError
    from ..gateway import Gateway
    from ..live import LiveView
    from ..sources.ble import open_ble_source, scan

    model = None if args.list else load_model(args)
    async with contextlib.AsyncExitStack() as stack:
        backend = await _virtual_air(args, stack) if args.virtual else None
        targets = list(args.devices)
        if not targets:
            found = await scan(args.scan, backend=backend, include_hrs=args.profile == "hrs")
            for f in found:
                print(f"found {f.label} ({f.address}), {f.profile}, RSSI {f.rssi}", file=sys.stderr)
            if args.list:
                return 0
            if not found:
                raise SourceError(f"no ECG wearable found in a {args.scan:g} s scan; name one, or scan longer (--scan)")
            targets = [f.name or f.address for f in found]
        elif args.list:
            return 0
        profile = None if args.profile == "auto" else args.profile
        sources = [
            open_ble_source(t, backend=backend, profile=profile, watchdog_s=args.watchdog, scan_timeout_s=max(args.scan, 5.0),
                            **({"session_options": {"rate_hz": args.rate}} if profile == "ecgstream" else {}))
            for t in targets
        ]
        recorder = LatencyRecorder()
        view = [] if args.jsonl else [LiveView(sys.stdout)]
        sinks = open_sinks(argparse.Namespace(output="-" if args.jsonl and not args.output else args.output, mqtt=args.mqtt))
        gateway = Gateway(model, sinks + view + [recorder], pipeline_config(args))
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        serving = asyncio.ensure_future(gateway.run(sources, duration_s=args.duration))
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not serving.done():
            print("stopping: sending STOP and disconnecting ...", file=sys.stderr)
            serving.cancel()
        stopping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
        gateway.close()
        print_summary(gateway.stats(), recorder, model)
    return 0
