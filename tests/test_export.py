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

from shrink_helpers import DATA, exported, tiny_student

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
    # Every output within a few int8 output steps of the float student.
    spread = np.ptp(float_values, axis=0)
    assert np.all(np.abs(int8_values - float_values).max(axis=0) <= 0.1 * spread + 0.01)
    float32 = EdgeModel.load(result.tflite_float32)
    np.testing.assert_allclose(float32.predict(parity), float_values, atol=1e-4)


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
