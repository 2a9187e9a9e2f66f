"""The full-size ECGFounder Net1D (random weights) through the export path: time and sizes.

Runs the same stage functions as ``anyecg-edge export`` (dynamo ONNX, onnxruntime parity with
optimisations off, onnx2tf with ``-nuo``, TFLite float32 parity, full-integer int8 calibrated on
real windows) on the 30.7 M-parameter, 1.14 GMAC teacher with one lead and five outputs, and
reports each stage's wall time, the file sizes, the float parity and int8 agreement, and the
int8 latency with ai-edge-litert (XNNPACK).

    python benchmarks/export_full_teacher.py [--data ../shared/data] [--windows 32] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data", help="real ECG for calibration (default ../shared/data)")
    parser.add_argument("--windows", type=int, default=32, help="calibration windows (default 32)")
    parser.add_argument("--parity-windows", type=int, default=8)
    parser.add_argument("--out", default="artifacts/export-full-teacher", help="where the files and JSON go")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    from quantize.export import (
        ExportConfig,
        calibration_windows,
        convert_int8,
        export_onnx,
        onnx_outputs,
        run_onnx2tf,
        tflite_outputs,
    )
    from quantize.net1d import Net1D, Net1DConfig
    from quantize.student import count_macs

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = Net1D(Net1DConfig.ecgfounder(1, 5)).eval()
    params = sum(p.numel() for p in model.parameters())
    macs = count_macs(model)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="full-teacher-", dir=out))
    times: dict[str, float] = {}
    t = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        times[name] = round(now - t, 1)
        t = now
        print(f"{name:24s} {times[name]:7.1f} s", flush=True)

    try:
        config = ExportConfig(calibration_windows=args.windows, min_calibration_windows=args.windows,
                              parity_windows=args.parity_windows, max_per_record=4)
        calibration, parity, _ = calibration_windows([args.data], config)
        with torch.inference_mode():
            reference = model(torch.from_numpy(parity)).numpy()
        lap("calibration windows")
        onnx_path = work / "teacher.onnx"
        export_onnx(model, onnx_path)
        lap("onnx export")
        onnx_diff = float(np.abs(onnx_outputs(onnx_path, parity) - reference).max())
        lap("onnx parity")
        float_path, saved_model = run_onnx2tf(onnx_path, work, 3600)
        lap("onnx2tf (float32)")
        tflite_diff = float(np.abs(tflite_outputs(float_path.read_bytes(), parity) - reference).max())
        lap("tflite float32 parity")
        int8_path = work / "teacher-int8.tflite"
        convert_int8(saved_model, calibration, int8_path, work, 3600)
        lap("int8 conversion")

        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_content=int8_path.read_bytes(), num_threads=1)
        interpreter.allocate_tensors()
        inp, outp = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
        scale, zero = inp["quantization"]
        o_scale, o_zero = outp["quantization"]
        int8_out, latencies = [], []
        for w in parity:
            q = np.clip(np.round(w.reshape(inp["shape"]) / scale) + zero, -128, 127).astype(np.int8)
            interpreter.set_tensor(inp["index"], q)
            start = time.perf_counter()
            interpreter.invoke()
            latencies.append(time.perf_counter() - start)
            int8_out.append((interpreter.get_tensor(outp["index"]).reshape(-1).astype(float) - o_zero) * o_scale)
        int8_out = np.stack(int8_out)
        corr = [float(np.corrcoef(reference[:, j], int8_out[:, j])[0, 1]) for j in range(reference.shape[1])]
        lap("int8 check")
        result = {
            "model": "ECGFounder Net1D, 1 lead, 5 outputs, random weights (seed 0)",
            "params": int(params),
            "macs": int(macs),
            "calibration_windows": int(len(calibration)),
            "parity_windows": int(len(parity)),
            "seconds": times,
            "conversion_seconds": round(sum(v for k, v in times.items() if k in
                                            ("onnx export", "onnx2tf (float32)", "int8 conversion")), 1),
            "sizes_bytes": {"onnx": onnx_path.stat().st_size, "tflite_float32": float_path.stat().st_size,
                            "tflite_int8": int8_path.stat().st_size},
            "onnx_max_abs_diff": onnx_diff,
            "tflite_float32_max_abs_diff": tflite_diff,
            "int8_pearson_per_output": corr,
            "int8_max_abs_error": float(np.abs(int8_out - reference).max()),
            "output_range": float(np.ptp(reference)),
            "int8_latency_ms_median_1_thread": round(1e3 * float(np.median(latencies)), 1),
        }
        (out / "export_full_teacher.json").write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
