"""Fidelity report: numbers, targets, markdown and plots for the session's exported tiny student."""

from __future__ import annotations

import json

import numpy as np
import pytest

from quantize.verify import (
    EvalSet,
    Targets,
    VerifyError,
    expected_calibration_error,
    output_report,
    parse_eval_set,
    render_markdown,
    roc_curve,
    verify,
)

from shrink_helpers import DATA, SPEC, exported, tiny_cohort, tiny_teacher


def test_parse_eval_set():
    assert parse_eval_set("held-out=a/cohort@test") == EvalSet("held-out", ("a/cohort",), "test")
    assert parse_eval_set("real=x,y") == EvalSet("real", ("x", "y"), None)
    assert parse_eval_set("data/cinc2021").name == "cinc2021"
    with pytest.raises(VerifyError):
        parse_eval_set("name=")


def test_calibration_error_and_roc():
    y = np.array([0, 0, 1, 1])
    assert expected_calibration_error(y, np.array([0.0, 0.0, 1.0, 1.0])) == 0
    assert expected_calibration_error(y, np.full(4, 0.5)) == pytest.approx(0.0)
    assert expected_calibration_error(np.ones(4), np.full(4, 0.25)) == pytest.approx(0.75)
    fpr, tpr = roc_curve(y, np.array([0.1, 0.2, 0.8, 0.9]))
    assert fpr[0] == tpr[0] == 0 and fpr[-1] == tpr[-1] == 1
    assert float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2)) == pytest.approx(1.0)


def test_output_report_checks_the_targets():
    from anyecg_edge.labels import LabelSpec

    spec = LabelSpec.load(SPEC)
    j = spec.index("hyperkalemia")
    rng = np.random.default_rng(0)
    labels = np.full((200, len(spec)), np.nan)
    labels[:, j] = rng.integers(0, 2, 200)
    teacher = np.clip(0.3 * labels + rng.uniform(0, 0.7, labels.shape), 0, 1)
    teacher = np.nan_to_num(teacher, nan=0.5) + rng.uniform(0, 0.01, labels.shape)
    good = output_report(j, spec, teacher, teacher, teacher + 1e-4, labels, np.arange(200), Targets())
    assert good["pass"] and good["auroc_drop_teacher_int8"] == pytest.approx(0, abs=1e-9)
    noisy = teacher + rng.normal(0, 0.3, teacher.shape)
    bad = output_report(j, spec, teacher, teacher, noisy, labels, np.arange(200), Targets())
    assert bad["pass"] is False and bad["checks"]["pearson"] is False
    low, high = bad["pearson_teacher_int8_ci95"]
    assert low < bad["pearson_teacher_int8"] < high


@pytest.mark.slow
def test_verify_writes_json_markdown_and_plots(tmp_path):
    result = exported()
    sets = [parse_eval_set(f"real={DATA}"), EvalSet("synthetic", (str(tiny_cohort()),), None)]
    report = verify(result.tflite, tiny_teacher(), sets, tmp_path / "report", max_per_record=3,
                    markdown=tmp_path / "docs" / "fidelity.md", image_dir=tmp_path / "docs" / "img",
                    log=lambda _m: None)
    saved = json.loads((tmp_path / "report" / "fidelity.json").read_text())
    assert saved["sets"].keys() == {"real", "synthetic"}
    synthetic = saved["sets"]["synthetic"]["outputs"]
    assert set(synthetic) == {"potassium", "hyperkalemia", "hypokalemia", "hypercalcemia", "hypocalcemia"}
    assert synthetic["potassium"]["mae_teacher_label"] is not None
    assert "auroc_teacher" in synthetic["hypocalcemia"]
    assert "auroc_teacher" not in saved["sets"]["real"]["outputs"]["hyperkalemia"]
    for row in synthetic.values():
        assert row["pearson_float32_int8"] is None or -1 <= row["pearson_float32_int8"] <= 1
        low, high = row["pearson_teacher_int8_ci95"]
        r = row["pearson_teacher_int8"]
        assert (low is None and high is None) if r is None else low <= r <= high
    text = (tmp_path / "docs" / "fidelity.md").read_text()
    assert "| potassium (mmol/L) |" in text and "](img/synthetic-scatter.png)" in text
    for name in ("real-scatter.png", "real-bland-altman.png", "synthetic-scatter.png", "synthetic-roc.png"):
        assert (tmp_path / "docs" / "img" / name).stat().st_size > 1000
    assert render_markdown(report).startswith("# Fidelity report")


@pytest.mark.slow
def test_verify_refuses_a_teacher_with_other_outputs(tmp_path):
    import torch

    from anyecg_edge.labels import LabelSpec
    from quantize.checkpoint import save_checkpoint
    from quantize.net1d import Net1D, Net1DConfig

    spec = LabelSpec.from_dict({"name": "one", "outputs": [{"name": "k", "kind": "regression", "unit": "mmol/L",
                                                             "definition": "potassium"}]})
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "other.pth", Net1D(Net1DConfig.ecgfounder(1, 1).scaled(0.0625)), spec)
    with pytest.raises(VerifyError, match="^teacher: its outputs"):
        verify(exported().tflite, tmp_path / "other.pth", [parse_eval_set(str(DATA))], tmp_path / "r",
               log=lambda _m: None)
    with pytest.raises(VerifyError, match="^model:"):
        verify(tmp_path / "missing.tflite", tiny_teacher(), [parse_eval_set(str(DATA))], tmp_path / "r",
               log=lambda _m: None)
