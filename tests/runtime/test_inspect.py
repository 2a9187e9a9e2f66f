"""``anyecg-edge inspect``: metadata, tensors, quantisation; refusals are explained."""

from __future__ import annotations

import copy
import json

from anyecg_edge.cli import main

from .conftest import DOCUMENT


def test_inspect_shows_metadata_and_tensors(model_path, capsys):
    assert main(["inspect", str(model_path), "--load"]) == 0
    out = capsys.readouterr().out
    for text in ("potassium", "mmol/L", "hyperkalemia", "threshold 0.5", "ecgfounder-v1", "int8 [1, 5000, 1]", "scale", "zero point", "loads with"):
        assert text in out


def test_inspect_json(model_path, capsys):
    assert main(["inspect", str(model_path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["metadata"]["window_samples"] == 5000
    assert doc["tensors"]["inputs"][0]["dtype"] == "int8"


def test_inspect_says_why_a_model_is_not_servable(make_model_file, capsys):
    document = copy.deepcopy(DOCUMENT)
    document["preprocessing"]["version"] = "ecgfounder-v9"
    assert main(["inspect", str(make_model_file(document))]) == 1
    assert "not servable" in capsys.readouterr().out
