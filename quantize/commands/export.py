"""``anyecg-edge export``: a distilled student to a self-describing int8 TFLite file."""

from __future__ import annotations

import argparse
import json

HELP = "export a student to full-integer int8 TFLite (with ONNX and float32 TFLite), parity-checked"
DESCRIPTION = """\
torch -> ONNX (dynamo, opset 18) -> onnx2tf -> TFLite float32 -> full-integer int8,
calibrated on real ECG windows preprocessed canonically. Parity is checked at every stage:
torch vs onnxruntime (optimisations off) and vs TFLite float32 must agree to --float-atol,
and the int8 model (run through the device runtime) is compared with the float student
per output. The label spec, preprocessing, sampling rate, window, hop, quantisation,
output transform, hashes and a fidelity summary are embedded in the .tflite.

Writes OUT/NAME.tflite (int8), OUT/NAME-float32.tflite, OUT/NAME.onnx, OUT/NAME.export.json;
nothing is written unless every stage passes.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--student", required=True, help="student.pt written by 'anyecg-edge distill'")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--calibration", action="append", metavar="PATH",
                        help="real ECG for int8 calibration (repeatable): folder, WFDB record, .npy, cohort folder")
    parser.add_argument("--calibration-windows-file", metavar="NPY",
                        help="preprocessed windows (n, 5000) instead of --calibration records")
    parser.add_argument("--recipe", help="JSON recipe; its 'export' section sets the defaults")
    parser.add_argument("--name", help="file stem of the outputs (default 'model')")
    parser.add_argument("--windows", type=int, dest="calibration_windows", help="calibration windows (default 200)")
    parser.add_argument("--min-windows", type=int, dest="min_calibration_windows",
                        help="fail with fewer calibration windows than this (default 200)")
    parser.add_argument("--float-atol", type=float, help="torch vs ONNX / TFLite float32 tolerance (default 1e-4)")
    parser.add_argument("--default-hop", type=float, dest="default_hop_s", help="runtime default hop in s (default 2)")
    parser.add_argument("--mains-hz", type=float, help="mains frequency of the preprocessing (50 or 60)")
    parser.add_argument("--output-range", type=float,
                        help="the int8 output covers at least +-this many standardised units (default 5)")
    parser.add_argument("--keep-work", metavar="DIR", help="keep the converter logs and saved model here")


def run(args: argparse.Namespace) -> int:
    from ..export import ExportConfig, ExportError, export

    settings: dict = {}
    if args.recipe:
        with open(args.recipe) as handle:
            settings.update(json.load(handle).get("export", {}))
    for key in ("name", "calibration_windows", "min_calibration_windows", "float_atol", "default_hop_s", "mains_hz",
                "output_range"):
        value = getattr(args, key)
        if value is not None:
            settings[key] = value
    try:
        config = ExportConfig.from_dict(settings)
    except (TypeError, ValueError) as exc:
        raise ExportError("settings", str(exc)) from None
    result = export(args.student, args.out, args.calibration, config,
                    calibration_file=args.calibration_windows_file, keep_work=args.keep_work)
    print(f"wrote {result.tflite} ({result.tflite.stat().st_size / 1024:.1f} KB), "
          f"{result.tflite_float32.name}, {result.onnx.name}, {result.report_path.name}")
    return 0
