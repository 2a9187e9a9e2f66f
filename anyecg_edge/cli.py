"""The ``anyecg-edge`` command.

Subcommands are plug-ins: each is a module registered under the ``anyecg_edge.commands``
entry-point group (see ``pyproject.toml``) that defines

* ``HELP``: one line for the command list,
* ``DESCRIPTION``: the longer text of ``anyecg-edge NAME --help``,
* ``add_arguments(parser)``: its options,
* ``run(args) -> int``: the work; heavy imports (torch, TensorFlow) go inside ``run``.

The runtime therefore never imports the shrink pipeline, and a device install lists
every command while only the ones whose extras are installed can run.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from importlib.metadata import entry_points

from firmware_bridge.errors import BridgeError

from . import __version__
from .errors import AnyECGError

GROUP = "anyecg_edge.commands"
#: The order commands appear in ``--help``: the user's path from model to device.
ORDER = ("demo", "run", "replay", "inspect", "bench", "finetune", "cohort", "teacher", "distill", "export", "verify", "export-c")


def _commands() -> dict[str, str]:
    found = {ep.name: ep.value for ep in entry_points(group=GROUP)}
    return dict(sorted(found.items(), key=lambda kv: (ORDER.index(kv[0]) if kv[0] in ORDER else len(ORDER), kv[0])))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="anyecg-edge",
        description=(
            "Run ECG foundation models on wearables: shrink a fine-tuned ECGFounder into an int8 "
            "TFLite student, stream single-lead ECG from BLE wearables into lab estimates, and "
            "measure latency and fidelity."
        ),
        epilog="Run 'anyecg-edge COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name, target in _commands().items():
        module = importlib.import_module(target)
        command = sub.add_parser(
            name,
            help=module.HELP,
            description=getattr(module, "DESCRIPTION", module.HELP),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(command)
        command.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except (AnyECGError, BridgeError) as exc:
        print(f"anyecg-edge {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except ModuleNotFoundError as exc:
        extra = "convert" if exc.name in ("torch", "tensorflow", "onnx", "onnx2tf", "onnxruntime", "onnxscript") else "dev"
        print(
            f"anyecg-edge {args.command}: error: this command needs the package {exc.name!r}; "
            f"install it with: pip install 'anyecg-edge[{extra}]'",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
