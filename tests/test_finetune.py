"""Fine-tuning end to end on a tiny synthetic cohort: outputs, folding, reproducibility, errors."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from anyecg_edge.cli import main
from anyecg_edge.labels import LabelSpec
from quantize.checkpoint import load_container, load_teacher, save_checkpoint
from quantize.cohort import CohortConfig, write_cohort
from quantize.finetune import (
    FinetuneConfig,
    FinetuneError,
    evaluate_records,
    finetune,
    fold_standardisation,
    predict_windows,
    side_paths,
)
from quantize.labtable import LabTableError, read_lab_table
from quantize.net1d import Net1D, Net1DConfig

TINY = FinetuneConfig(seed=0, epochs=2, batch_size=8, lr=1e-3, width=0.0625, early_stop_patience=2)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    out = tmp_path_factory.mktemp("cohort") / "cohort"
    tails = dict(hypokalemia_weight=0.3, hyperkalemia_weight=0.3, hypocalcemia_weight=0.3, hypercalcemia_weight=0.3)
    write_cohort(out, CohortConfig(seed=20240603, subjects=24, records_per_subject=1.0, duration_s=(10, 20),
                                   val_fraction=0.25, test_fraction=0.25, **tails))
    return out


@pytest.fixture(scope="module")
def table(cohort):
    return read_lab_table(cohort / "labs.csv", LabelSpec.load(cohort / "label_spec.json"))


@pytest.fixture(scope="module")
def trained(table, tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("model") / "teacher.pth"
    return finetune(table, out, TINY, progress=False)


def test_writes_checkpoint_spec_and_metrics(trained, table):
    spec_path, metrics_path = side_paths(trained.checkpoint)
    assert spec_path == trained.label_spec_path and metrics_path == trained.metrics_path
    assert LabelSpec.load(spec_path) == table.spec
    metrics = json.loads(metrics_path.read_text())
    assert metrics["sha256"] == trained.sha256
    assert metrics["data"]["train"]["records"] + metrics["data"]["val"]["records"] + metrics["data"]["test"]["records"] \
        == len(table)
    for split in ("val", "test"):
        outputs = metrics[split]["outputs"]
        assert set(outputs) == set(table.spec.names)
        assert {"auroc", "auprc", "sensitivity", "specificity"} <= set(outputs["hyperkalemia"])
        assert {"mae", "pearson_r"} <= set(outputs["potassium"])
    assert 1 <= len(metrics["history"]) <= TINY.epochs
    # The checkpoint is an ECGFounder container that loads strictly, safely, with its spec.
    container = load_container(trained.checkpoint)
    assert set(container) >= {"state_dict", "net1d_config", "label_spec", "training"}
    teacher = load_teacher(trained.checkpoint)
    assert teacher.label_spec == table.spec and teacher.model.config.filter_list == (4, 10, 10, 25, 25, 64, 64)


def test_saved_model_outputs_potassium_in_mmol_per_litre(trained, table):
    teacher = load_teacher(trained.checkpoint)
    from quantize.finetune import load_windows

    windows = load_windows(table, np.arange(len(table)), TINY)
    outputs = predict_windows(teacher.model, windows.x)
    np.testing.assert_allclose(outputs, predict_windows(trained.model, windows.x), rtol=1e-5, atol=1e-5)
    potassium = outputs[:, table.spec.index("potassium")]
    # Folded standardisation: values land in the physiological range, not around 0.
    assert 2.0 < potassium.mean() < 8.0
    report = evaluate_records(table.spec, outputs, windows.row, table.targets())
    assert report["records"] == len(table)


def test_hop_gives_overlapping_windows_at_other_grid_positions(table):
    from anyecg_edge.preprocess import PreprocessConfig, preprocess_window, resample
    from anyecg_edge.records import read_record
    from quantize.finetune import load_windows

    rows = np.arange(len(table))
    consecutive = load_windows(table, rows, TINY)
    overlapping = load_windows(table, rows, FinetuneConfig(**{**TINY.to_dict(), "hop_seconds": 1.5}))
    for i in rows:
        row = table.rows[i]
        record = read_record(row.path, fs=row.fs)
        signal = resample(np.asarray(record.lead("I"), np.float64)[None], record.fs)
        n = signal.shape[-1]
        assert (consecutive.row == i).sum() == (n - 5000) // 5000 + 1
        assert (overlapping.row == i).sum() == (n - 5000) // 750 + 1
        if n >= 5750:  # the second window is the canonical preprocessing of 1.5 s (750 samples) later
            expected = preprocess_window(signal[:, 750:5750], PreprocessConfig(mains_hz=row.mains_hz or TINY.mains_hz))
            np.testing.assert_allclose(overlapping.x[overlapping.row == i][1], expected, atol=1e-5)
    assert len(overlapping) > 2 * len(consecutive)


def test_fold_and_unfold_are_inverse():
    torch.manual_seed(0)
    model = Net1D(Net1DConfig.ecgfounder(1, 3).scaled(0.0625))
    x = torch.randn(2, 1, 5000)
    before = model(x).detach()
    fold_standardisation(model, [0, 2], np.array([4.2, 9.4]), np.array([0.8, 0.5]))
    after = model(x).detach()
    torch.testing.assert_close(after[:, 0], before[:, 0] * 0.8 + 4.2)
    torch.testing.assert_close(after[:, 1], before[:, 1])
    fold_standardisation(model, [0, 2], np.array([4.2, 9.4]), np.array([0.8, 0.5]), inverse=True)
    torch.testing.assert_close(model(x).detach(), before, rtol=1e-5, atol=1e-5)


def test_same_seed_same_weights(table, trained, tmp_path):
    again = finetune(table, tmp_path / "again.pth", TINY, progress=False)
    assert again.metrics["weights_sha256"] == trained.metrics["weights_sha256"]
    assert again.metrics["history"][-1]["train_loss"] == trained.metrics["history"][-1]["train_loss"]


def test_fine_tune_from_a_teacher_with_a_different_head(table, tmp_path):
    torch.manual_seed(1)
    upstream = Net1D(Net1DConfig.ecgfounder(1, 150).scaled(0.0625))
    save_checkpoint(tmp_path / "upstream.pth", upstream)
    config = FinetuneConfig(seed=0, epochs=1, batch_size=8, linear_probe=True)
    result = finetune(table, tmp_path / "probe.pth", config, init=tmp_path / "upstream.pth", progress=False)
    state = result.model.state_dict()
    # Linear probing leaves the body exactly as loaded; only the (new, 5-output) head changed.
    for key, value in upstream.state_dict().items():
        if not key.startswith("dense."):
            torch.testing.assert_close(state[key], value)
    assert state["dense.weight"].shape == (5, 64)
    assert result.metrics["init"]["sha256"]


def test_a_split_without_both_classes_is_refused(cohort, tmp_path):
    rows = (cohort / "labs.csv").read_text().splitlines()
    header = rows[0].split(",")
    k = header.index("potassium")
    split = header.index("split")
    fixed = [rows[0]]
    for row in rows[1:]:  # every hyperkalaemic record goes to the test split
        cells = row.split(",")
        cells[0] = str(cohort / cells[0])
        if float(cells[k]) > 5.5:
            cells[split] = "test"
        elif cells[split] == "test":
            cells[split] = "train"
        fixed.append(",".join(cells))
    # Keep subjects in one split: the cohort has one record per subject here.
    (tmp_path / "labs.csv").write_text("\n".join(fixed) + "\n")
    table = read_lab_table(tmp_path / "labs.csv", LabelSpec.load(cohort / "label_spec.json"))
    with pytest.raises(LabTableError, match="'hyperkalemia'.* in the training split"):
        finetune(table, tmp_path / "m.pth", TINY, progress=False)
    assert not (tmp_path / "m.pth").exists() and not list(tmp_path.glob("*.json"))


def test_bad_settings():
    with pytest.raises(FinetuneError):
        FinetuneConfig(regression_loss="l1")
    with pytest.raises(FinetuneError, match="unknown"):
        FinetuneConfig.from_dict({"epoch": 3})


def test_cli_finetune_and_bad_table(cohort, tmp_path, capsys):
    out = tmp_path / "cli.pth"
    code = main(["finetune", "--labs", str(cohort / "labs.csv"), "--out", str(out), "--width", "0.0625",
                 "--epochs", "1", "--batch-size", "8", "--lr", "1e-3", "--threads", "1", "--quiet"])
    assert code == 0 and out.exists()
    printed = capsys.readouterr().out
    assert "hyperkalemia" in printed and "AUROC" in printed and "MAE" in printed
    bad = tmp_path / "bad.csv"
    bad.write_text((cohort / "labs.csv").read_text().replace("records/", "nowhere/", 1))
    code = main(["finetune", "--labs", str(bad), "--label-spec", str(cohort / "label_spec.json"),
                 "--out", str(tmp_path / "bad.pth"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and "line 2" in err and "not found" in err
    assert not (tmp_path / "bad.pth").exists()


def test_cli_cohort_and_tiny_teacher(tmp_path, capsys):
    assert main(["cohort", "--out", str(tmp_path / "c"), "--subjects", "5", "--duration", "10", "12", "--quiet"]) == 0
    assert "sha256" in capsys.readouterr().out
    assert main(["teacher", "--variant", "tiny", "--out", str(tmp_path / "t"), "--threads", "1", "--quiet"]) == 0
    build = json.loads((tmp_path / "t" / "build.json").read_text())
    metrics = json.loads((tmp_path / "t" / "teacher.metrics.json").read_text())
    assert build["checkpoint"]["sha256"] == metrics["sha256"] and metrics["cohort"]["sha256"] == build["cohort"]["sha256"]
    assert build["cohort"]["sha256"] and build["net1d"]["filter_list"] == [4, 10, 10, 25, 25, 64, 64]
    assert (tmp_path / "t" / "teacher.pth").exists()
