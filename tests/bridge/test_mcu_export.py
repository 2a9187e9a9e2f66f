"""``export-c``: C arrays and constants from an int8 model, SOS filters, TFLM parity and arena."""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess

import numpy as np
import pytest

from firmware_bridge.commands import export_c as command
from firmware_bridge.errors import BridgeError, ExportError
from firmware_bridge.mcu_export import export_c, model_facts, preprocessing_sos
from quantize.tflite_edit import embed_metadata
from tiny_models import conv1d_tflite

WINDOW = 5000


def _convert(int8: bool) -> bytes:
    pytest.importorskip("tensorflow")
    return conv1d_tflite([(8, 7, 4), (16, 5, 4)], outputs=3, int8=int8, calibration_windows=8)


METADATA = {
    "label_spec": {
        "name": "labs-demo",
        "outputs": [
            {"name": "potassium_high", "kind": "binary", "unit": None},
            {"name": "hemoglobin", "kind": "regression", "unit": "g/dL"},
            {"name": "creatinine \"mg\"", "kind": "regression", "unit": "mg/dL"},
        ],
    },
    "preprocessing": {"version": "ecgfounder-v1", "mains_hz": 60},
    "sampling_rate_hz": 500,
    "window_samples": WINDOW,
}


@pytest.fixture(scope="module")
def int8_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "student.tflite"
    path.write_bytes(_convert(int8=True))
    return path


@pytest.fixture(scope="module")
def labelled_model(int8_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "labelled.tflite"
    path.write_bytes(embed_metadata(int8_model.read_bytes(), METADATA))
    return path


def define(header: str, name: str) -> str:
    """The value of ``#define name value`` in a header."""
    found = re.search(rf"^#define {name}\s+(.+)$", header, re.MULTILINE)
    assert found, f"{name} is not defined"
    return found.group(1).strip()


def _compile_and_dump(out_dir, ident: str, macro: str) -> bytes:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    main = out_dir / "main.c"
    main.write_text(
        f'#include <stdio.h>\n#include "{ident}.h"\n'
        "int main(void) {\n"
        f"  if ((size_t){ident}_data % 16 != 0) return 3;\n"
        f"  if ({ident}_data_len != {macro}_MODEL_LEN) return 4;\n"
        f"  fwrite({ident}_data, 1, {ident}_data_len, stdout);\n"
        "  return 0;\n}\n"
    )
    exe = out_dir / "dump"
    subprocess.run([cc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-o", str(exe), str(main), str(out_dir / f"{ident}.c")], check=True)
    return subprocess.run([str(exe)], check=True, capture_output=True).stdout


def test_export_without_metadata_compiles_and_holds_the_exact_model(int8_model, tmp_path):
    result = export_c(int8_model, tmp_path, "student")
    header = result.header.read_text()
    assert _compile_and_dump(tmp_path, "student", "STUDENT") == int8_model.read_bytes()
    facts = result.facts
    assert not facts.has_metadata and facts.window_samples == WINDOW
    assert define(header, "STUDENT_INPUT_ZERO_POINT") == f"({facts.input.zero_point})"
    assert define(header, "STUDENT_NUM_OUTPUTS") == "3" and define(header, "STUDENT_WINDOW_SAMPLES") == "5000"
    assert abs(float(define(header, "STUDENT_INPUT_SCALE").rstrip("f")) - facts.input.scale) < 1e-9
    assert "label" not in result.source.read_text()
    assert any("no anyecg_edge metadata" in note for note in result.notes)
    assert result.parity.equal and result.parity.max_abs_diff == 0
    assert 0 < result.arena.used_bytes <= result.arena.recommended_bytes <= 128 * 1024
    assert define(header, "STUDENT_TENSOR_ARENA_SIZE") == f"{result.arena.recommended_bytes}u"


def test_export_with_metadata_writes_labels_rate_and_mains(labelled_model, tmp_path):
    result = export_c(labelled_model, tmp_path, check=False)
    assert result.header.name == "labelled.h"
    header, source = result.header.read_text(), result.source.read_text()
    assert define(header, "LABELLED_SAMPLING_RATE_HZ") == "500" and define(header, "LABELLED_NOTCH_HZ") == "60"
    assert define(header, "LABELLED_NUM_LABELS") == "3"
    assert "ecgfounder-v1" in header
    assert 'label_names[LABELLED_NUM_LABELS] = {"potassium_high", "hemoglobin", "creatinine \\"mg\\""}' in source
    assert '"g/dL"' in source and '"binary"' in source
    assert _compile_and_dump(tmp_path, "labelled", "LABELLED") == labelled_model.read_bytes()


def test_c_coefficients_reproduce_the_reference_filtfilt(cpsc):
    from scipy.signal import butter, filtfilt, iirnotch, resample_poly, sosfiltfilt

    signal, fs = cpsc
    x = resample_poly(signal[:4000, 0], 5, 2)  # 200 Hz -> 500 Hz: one 8 s stretch
    sos = preprocessing_sos(500, 50)
    as_float32 = {k: v.astype(np.float32).astype(np.float64) for k, v in sos.items()}  # what the C file holds
    b, a = iirnotch(50, 30, fs=500)
    reference = filtfilt(*butter(4, [0.67, 40], btype="bandpass", fs=500), filtfilt(b, a, x))
    ours = sosfiltfilt(as_float32["bandpass"], sosfiltfilt(as_float32["notch"], x))
    assert sos["notch"].shape == (1, 6) and sos["bandpass"].shape == (4, 6)
    assert np.max(np.abs(ours - reference)) < 1e-3 * np.ptp(reference)


def test_unsuitable_models_are_refused_with_a_clear_error(tmp_path):
    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(b"not a model at all")
    with pytest.raises(ExportError, match="cannot read the model"):
        export_c(garbage, tmp_path)
    with pytest.raises(ExportError, match="cannot read"):
        export_c(tmp_path / "missing.tflite", tmp_path)
    float_model = tmp_path / "float.tflite"
    float_model.write_bytes(_convert(int8=False))
    with pytest.raises(ExportError, match="int8") as info:
        model_facts(float_model.read_bytes())
    assert isinstance(info.value, BridgeError)


def test_cli_plugin_contract(int8_model, tmp_path, capsys):
    assert command.HELP and "\n" not in command.HELP and command.DESCRIPTION
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    args = parser.parse_args([str(int8_model), "-o", str(tmp_path), "--name", "ecg-student", "--mains-hz", "60"])
    assert command.run(args) == 0
    printed = capsys.readouterr().out
    assert "arena" in printed and "outputs equal TFLite's" in printed
    assert "ECG_STUDENT_NOTCH_HZ" in (tmp_path / "ecg_student.h").read_text()
