"""``anyecg-edge inspect MODEL.tflite``: a model's metadata, tensors and quantisation."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = "show a model's metadata, tensors and quantisation"
DESCRIPTION = """\
Reads a self-describing .tflite file without running it: the embedded label spec (outputs,
units, thresholds, risk bands), preprocessing version and mains frequency, sampling rate,
window length and default hop, the other metadata it carries (provenance, hashes), and
the input and output tensors with their int8 scale and zero point. It then says whether
this toolkit can serve the model (known preprocessing version, consistent sizes) and,
with --load, whether an interpreter accepts it.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help="the .tflite file")
    parser.add_argument("--json", action="store_true", help="print the metadata document and tensors as JSON")
    parser.add_argument("--load", action="store_true", help="also load it into the interpreter")


def _tensor_line(t) -> str:
    quant = f"scale {t.scale:.6g}, zero point {t.zero_point}" if t.scale is not None else "not quantised"
    return f"  {t.name}: {t.dtype} {list(t.shape)} ({quant})"


def run(args: argparse.Namespace) -> int:
    from firmware_bridge.tflite_file import TFLiteFormatError, read_anyecg_metadata, read_io_tensors

    from ..errors import ModelFileError
    from ..model import EdgeModel, ModelInfo

    path: Path = args.model
    if not path.is_file():
        raise ModelFileError(f"{path}: model file not found")
    data = path.read_bytes()
    try:
        document = read_anyecg_metadata(data)
        inputs, outputs = read_io_tensors(data)
    except TFLiteFormatError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    if args.json:
        tensors = {
            "inputs": [t.__dict__ | {"shape": list(t.shape)} for t in inputs],
            "outputs": [t.__dict__ | {"shape": list(t.shape)} for t in outputs],
        }
        print(json.dumps({"metadata": document, "tensors": tensors, "file_bytes": len(data)}, indent=2))
    else:
        print(f"{path}  ({len(data) / 1024:.1f} KiB)")
        spec = document.get("label_spec", {})
        print(f"label spec {spec.get('name', '?')!r}:")
        for i, out in enumerate(spec.get("outputs", [])):
            extra = f", threshold {out['threshold']}" if "threshold" in out else ""
            bands = ", ".join(
                f"{b['name']} [{b.get('min', '-inf')}, {b.get('max', 'inf')})" for b in out.get("bands", [])
            )
            print(f"  [{i}] {out.get('name')}: {out.get('kind')} in {out.get('unit', 'probability')}{extra}"
                  + (f"; bands {bands}" if bands else ""))
            if out.get("definition"):
                print(f"      {out['definition']}")
        pre = document.get("preprocessing", {})
        print(f"preprocessing {pre.get('version')!r}, mains {pre.get('mains_hz')} Hz; "
              f"{document.get('sampling_rate_hz')} Hz, window {document.get('window_samples')} samples, "
              f"default hop {document.get('default_hop_s')} s")
        shown = {"label_spec", "preprocessing", "sampling_rate_hz", "window_samples", "default_hop_s", "format", "format_version"}
        for key in sorted(set(document) - shown):
            value = json.dumps(document[key], sort_keys=True)
            print(f"{key}: {value if len(value) <= 100 else value[:97] + '...'}")
        print("inputs:")
        for t in inputs:
            print(_tensor_line(t))
        print("outputs:")
        for t in outputs:
            print(_tensor_line(t))
    try:
        ModelInfo.from_document(document, str(path))
    except ModelFileError as exc:
        print(f"not servable: {exc}")
        return 1
    if args.load:
        model = EdgeModel(data, str(path))
        print(f"loads with {model.backend}: OK")
    elif not args.json:
        print("servable by this toolkit: yes")
    return 0
