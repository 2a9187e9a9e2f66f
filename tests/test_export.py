"""Export: one tiny student through ONNX, onnx2tf and int8; parity, metadata and bad input."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

from anyecg_edge.model import EdgeModel
from firmware_bridge.tflite_file import read_anyecg_metadata, read_io_tensors
from quantize.distill import load_student
from quantize.export import ExportConfig, ExportError, calibration_windows, export
from quantize.tflite_edit import widen_output_range

from shrink_helpers import DATA, exported, tiny_student
from tiny_models import conv1d_tflite

pytestmark = pytest.mark.slow


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_outputs_and_float_parity():
    result = exported()
    for path in (result.tflite, result.tflite_float32, result.onnx, result.report_path):
        assert path.is_file()
    assert _leftovers(result.tflite.parent) == sorted(
        ["tiny.tflite", "tiny-float32.tflite", "tiny.onnx", "tiny.export.json"])
    report = json.loads(result.report_path.read_text())
    assert report["onnx_max_abs_diff"] < 1e-4
    assert report["tflite_float32_max_abs_diff"] < 1e-4
    assert list(result.report["stages"]) == ["student", "calibration", "onnx", "onnx parity", "onnx2tf",
                                      "tflite float32 parity", "int8", "metadata", "int8 parity", "write"]


def test_metadata_is_readable_without_tensorflow():
    result = exported()
    data = result.tflite.read_bytes()
    doc = read_anyecg_metadata(data)
    inputs, outputs = read_io_tensors(data)
    assert doc["format"] == "anyecg-edge-model" and doc["format_version"] == 1
    assert doc["preprocessing"]["version"] == "ecgfounder-v1"
    assert doc["sampling_rate_hz"] == 500 and doc["window_samples"] == 5000
    assert doc["input"]["dtype"] == "int8" and doc["input"]["layout"] == "NWC"
    assert doc["input"]["scale"] == pytest.approx(inputs[0].scale)
    assert doc["output"]["zero_point"] == outputs[0].zero_point
    # The int8 output covers the default +-5 standardised units whatever calibration reached.
    scale, zero = outputs[0].scale, outputs[0].zero_point
    assert (-128 - zero) * scale <= -5 + 1e-6 and (127 - zero) * scale >= 5 - 1e-6
    assert int(doc["file_size"]) == len(data)
    bundle = load_student(tiny_student())
    assert doc["student"]["sha256"] == bundle.sha256
    assert doc["teacher"]["sha256"] == bundle.teacher["sha256"]
    assert [t["activation"] for t in doc["output_transform"]] == [
        "sigmoid" if o.is_binary else "identity" for o in bundle.label_spec.outputs]
    assert doc["calibration"]["windows"] == 24
    assert set(doc["fidelity"]["int8_vs_float_student"]) == set(bundle.label_spec.names)


def test_int8_tracks_the_float_student():
    result = exported()
    bundle = load_student(tiny_student())
    model = EdgeModel.load(result.tflite)
    _, parity, _ = calibration_windows([DATA], ExportConfig(calibration_windows=24, min_calibration_windows=16,
                                                            parity_windows=16))
    float_values = bundle.values(parity)
    int8_values = model.predict(parity)
    assert int8_values.shape == float_values.shape
    # Every output within 10 % of its spread plus one int8 output step (in the output's unit;
    # a sigmoid only shrinks a step) of the float student.
    doc = read_anyecg_metadata(result.tflite.read_bytes())
    step = doc["output"]["scale"] * np.array([t["scale"] for t in doc["output_transform"]])
    spread = np.ptp(float_values, axis=0)
    assert np.all(np.abs(int8_values - float_values).max(axis=0) <= 0.1 * spread + 1.5 * step)
    float32 = EdgeModel.load(result.tflite_float32)
    np.testing.assert_allclose(float32.predict(parity), float_values, atol=1e-4)


def _run_int8(content: bytes, windows: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    (in_scale, in_zero), (out_scale, out_zero) = inp["quantization"], out["quantization"]
    results = []
    for window in windows:
        q = np.clip(np.round(window.reshape(inp["shape"]) / in_scale + in_zero), -128, 127).astype(np.int8)
        interpreter.set_tensor(inp["index"], q)
        interpreter.invoke()
        results.append((interpreter.get_tensor(out["index"]).astype(np.float64) - out_zero) * out_scale)
    return np.concatenate(results)


def test_widening_the_output_range_keeps_the_answers():
    original = conv1d_tflite([(4, 9, 4), (8, 9, 4)], outputs=3)
    (before,) = read_io_tensors(original)[1]
    calibrated = ((-128 - before.zero_point) * before.scale, (127 - before.zero_point) * before.scale)
    wide = 4 * max(abs(v) for v in calibrated)
    widened, (low, high) = widen_output_range(original, -wide, wide)
    (after,) = read_io_tensors(widened)[1]
    assert low <= -wide + 1e-6 and high >= wide - 1e-6
    assert after.scale > before.scale
    windows = np.random.default_rng(3).standard_normal((6, 5000)).astype(np.float32)
    np.testing.assert_allclose(_run_int8(widened, windows), _run_int8(original, windows),
                               atol=before.scale + after.scale)
    # A range the calibration already covers changes nothing.
    same, _ = widen_output_range(original, -1e-3, 1e-3)
    (kept,) = read_io_tensors(same)[1]
    assert (kept.scale, kept.zero_point) == (before.scale, before.zero_point)
    with pytest.raises(ValueError, match="contain zero"):
        widen_output_range(original, 0.5, 2.0)


def test_too_few_calibration_windows(tmp_path):
    with pytest.raises(ExportError, match="^calibration: only") as info:
        export(tiny_student(), tmp_path / "out", [DATA / "cinc2021"], ExportConfig(), log=lambda _m: None)
    assert info.value.stage == "calibration"
    assert _leftovers(tmp_path / "out") == []


def test_calibration_with_nan(tmp_path):
    windows = np.random.default_rng(0).normal(size=(300, 5000)).astype(np.float32)
    windows[7, 100] = np.nan
    np.save(tmp_path / "calib.npy", windows)
    with pytest.raises(ExportError, match="^calibration: .*non-finite"):
        export(tiny_student(), tmp_path / "out", None, ExportConfig(), calibration_file=tmp_path / "calib.npy",
               log=lambda _m: None)
    record = np.sin(np.linspace(0, 300, 6000))
    record[50] = np.nan
    (tmp_path / "recs").mkdir()
    np.save(tmp_path / "recs" / "r.npy", record)
    with pytest.raises(ExportError, match="non-finite samples"):
        export(tiny_student(), tmp_path / "out", [tmp_path / "recs"], ExportConfig(), log=lambda _m: None)
    assert _leftovers(tmp_path / "out") == []


def test_student_that_does_not_match_its_label_spec(tmp_path):
    data = torch.load(tiny_student(), weights_only=True)
    data["label_spec"]["outputs"] = data["label_spec"]["outputs"][:2]
    torch.save(data, tmp_path / "student.pt")
    with pytest.raises(ExportError, match="^student: .*5 outputs but its label spec 2"):
        export(tmp_path / "student.pt", tmp_path / "out", [DATA], ExportConfig(), log=lambda _m: None)
    assert _leftovers(tmp_path / "out") == []


def test_onnx2tf_failure_names_the_stage_and_leaves_nothing(tmp_path, monkeypatch):
    import quantize.export as export_module

    fail = [sys.executable, "-c", "import sys; print('simulated converter crash'); sys.exit(3)"]
    monkeypatch.setattr(export_module, "_onnx2tf_command", lambda: fail)
    config = ExportConfig(calibration_windows=16, min_calibration_windows=16, parity_windows=4)
    with pytest.raises(ExportError, match=r"(?s)^onnx2tf: .*exit 3.*simulated converter crash") as info:
        export(tiny_student(), tmp_path / "out", [DATA], config, log=lambda _m: None)
    assert info.value.stage == "onnx2tf"
    assert _leftovers(tmp_path / "out") == []


def test_cli_error_is_one_line(tmp_path, capsys):
    from anyecg_edge.cli import main

    code = main(["export", "--student", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "o"),
                 "--calibration", str(DATA)])
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.count("\n") == 0 and "student:" in err
