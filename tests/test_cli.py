"""The anyecg-edge command: every subcommand listed with its help, and --help stays light."""

from __future__ import annotations

import subprocess
import sys

from anyecg_edge.cli import build_parser, main


def test_help_lists_registered_commands(capsys):
    parser = build_parser()
    names = set(parser._subparsers._group_actions[0].choices)
    assert "demo" in names
    assert main([]) == 2  # no command: print help, exit non-zero
    assert "commands" in capsys.readouterr().out


def test_help_imports_no_heavy_package():
    code = (
        "import sys\n"
        "from anyecg_edge.cli import build_parser\n"
        "build_parser().format_help()\n"
        "heavy = [m for m in ('torch', 'tensorflow', 'onnx', 'onnx2tf', 'onnxruntime') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
