"""``anyecg-edge export-c``: an int8 ``.tflite`` model as a C header/source pair for microcontrollers."""

from __future__ import annotations

import argparse

HELP = "write an int8 .tflite model and the preprocessing filters as C source for TensorFlow Lite Micro"
DESCRIPTION = """\
Writes NAME.h and NAME.c for firmware that runs the model with TensorFlow Lite Micro:

  * the model as a 16-byte-aligned byte array and its length;
  * constants: window length, sampling rate, input/output scale and zero point, the
    label names, kinds and units (when the model carries anyecg_edge metadata), and the
    tensor arena size to allocate;
  * the canonical preprocessing filters (mains notch, Q 30; Butterworth band-pass
    0.67-40 Hz, order 4) as second-order sections, applied forward then backward.

Unless --no-check is given, the model is first run under TensorFlow Lite Micro: its
outputs must equal the TFLite interpreter's on the same int8 inputs, and the tensor
arena it needs is measured (needs the 'tflite-micro' package).
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="full-integer int8 .tflite file")
    parser.add_argument("-o", "--out-dir", default=".", help="output directory (default: the current one)")
    parser.add_argument("--name", help="C identifier prefix and file name (default: from the model file name)")
    parser.add_argument("--mains-hz", type=float, choices=(50.0, 60.0), help="notch frequency (default: the model's, else 50)")
    parser.add_argument("--no-filters", action="store_true", help="leave out the preprocessing filter coefficients")
    parser.add_argument("--no-check", action="store_true", help="skip the TFLM run (no arena size, no parity check)")


def run(args: argparse.Namespace) -> int:
    from firmware_bridge.mcu_export import export_c

    result = export_c(
        args.model,
        args.out_dir,
        args.name,
        mains_hz=args.mains_hz,
        filters=not args.no_filters,
        check=not args.no_check,
    )
    facts = result.facts
    print(f"wrote       {result.header}")
    print(f"wrote       {result.source}")
    rate = f"{facts.sampling_rate_hz:g} Hz" if facts.sampling_rate_hz else "rate not recorded"
    print(f"window      {facts.window_samples} samples, {rate}")
    print(f"input       scale {facts.input.scale:.6g}, zero point {facts.input.zero_point}")
    print(f"output      scale {facts.output.scale:.6g}, zero point {facts.output.zero_point}, {len(facts.labels)} labels")
    if result.parity is not None:
        print(f"TFLM        outputs equal TFLite's on {result.parity.inputs} int8 inputs")
    if result.arena is not None:
        used, size = result.arena.used_bytes, result.arena.recommended_bytes
        print(f"arena       {used} bytes used ({used / 1024:.1f} KiB); allocate {size} bytes")
    for note in result.notes:
        print(f"note        {note}")
    return 0
