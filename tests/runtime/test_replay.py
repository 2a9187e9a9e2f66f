"""``anyecg-edge replay``: JSON lines from a recording, identical to the offline path."""

from __future__ import annotations

import json

import numpy as np

from anyecg_edge.cli import main
from anyecg_edge.records import read_record
from anyecg_edge.windows import record_windows

from .conftest import DATA


def read_lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_replay_writes_json_lines_equal_to_offline(model_path, model, tmp_path, capsys):
    out = tmp_path / "out.jsonl"
    record = DATA / "cpsc2021" / "data_101_6"
    assert main(["replay", str(record), "--model", str(model_path), "-o", str(out), "--aggregate", "0"]) == 0
    lines = read_lines(out)
    windows = [l for l in lines if l["type"] == "window"]
    estimates = [l for l in lines if l["type"] == "estimate"]
    assert windows and all(w["accepted"] for w in windows)
    assert lines[-1]["type"] == "event" and lines[-1]["event"] == "end"
    rec = read_record(record)
    offline = model.predict(record_windows(rec.lead("I"), rec.fs, hop_seconds=2.0))
    potassium = [e["value"] for e in estimates if e["lab"] == "potassium"]
    starts = [int(round(w["start_s"] / 2)) for w in windows]
    np.testing.assert_allclose(potassium, offline[starts, 0], atol=1e-5)
    assert "latency per accepted window" in capsys.readouterr().err


def test_replay_rejects_windows_with_nan_and_keeps_going(model_path, tmp_path):
    rec = read_record(DATA / "cpsc2021" / "data_101_6")
    signal = rec.lead("I")[: int(rec.fs * 40)].copy()
    signal[int(rec.fs * 15)] = np.nan
    npy = tmp_path / "nan.npy"
    np.save(npy, signal)
    out = tmp_path / "out.jsonl"
    assert main(["replay", str(npy), "--fs", str(rec.fs), "--model", str(model_path), "-o", str(out), "--quiet"]) == 0
    windows = [l for l in read_lines(out) if l["type"] == "window"]
    rejected = [w for w in windows if not w["accepted"]]
    assert rejected and all(w["quality"].startswith("non-finite") for w in rejected)
    assert any(w["accepted"] for w in windows)
    # no estimate is stamped with the time of a rejected window
    est_times = {l["t"] for l in read_lines(out) if l["type"] == "estimate"}
    assert not est_times & {w["t"] for w in rejected}


def test_replay_of_a_missing_model_is_a_clear_error(tmp_path, capsys):
    code = main(["replay", str(DATA / "cpsc2021" / "data_101_6"), "--model", str(tmp_path / "nope.tflite")])
    assert code == 1 and "model file not found" in capsys.readouterr().err
