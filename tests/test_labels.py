"""Label specs: a valid spec round-trips; every kind of mistake is named."""

from __future__ import annotations

import copy

import pytest

from anyecg_edge.errors import LabelSpecError
from anyecg_edge.labels import LabelSpec

SPEC = {
    "name": "electrolytes",
    "outputs": [
        {
            "name": "potassium",
            "kind": "regression",
            "unit": "mmol/L",
            "definition": "serum potassium",
            "bands": [{"name": "low", "max": 3.5}, {"name": "normal", "min": 3.5, "max": 5.5}, {"name": "high", "min": 5.5}],
        },
        {
            "name": "hyperkalemia",
            "kind": "binary",
            "definition": "serum potassium > 5.5 mmol/L",
            "source": {"column": "potassium", "above": 5.5},
            "threshold": 0.5,
            "bands": [{"name": "low", "max": 0.2}, {"name": "medium", "min": 0.2, "max": 0.5}, {"name": "high", "min": 0.5}],
        },
    ],
}


def test_round_trip_and_bands(tmp_path):
    spec = LabelSpec.from_dict(SPEC)
    assert spec.names == ["potassium", "hyperkalemia"]
    assert spec.outputs[1].unit == "probability" and spec.outputs[1].source.above == 5.5
    assert spec.outputs[0].source.column == "potassium"
    assert [spec.outputs[0].band(v) for v in (3.0, 3.5, 5.49, 5.5, 9)] == ["low", "normal", "normal", "high", "high"]
    path = tmp_path / "spec.json"
    spec.save(path)
    assert LabelSpec.load(path) == spec
    assert not list(tmp_path.glob(".*tmp"))


def broken(edit):
    data = copy.deepcopy(SPEC)
    edit(data)
    return data


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d["outputs"][0].update(kind="ordinal"), r"outputs\[0\] \(potassium\)\.kind"),
        (lambda d: d["outputs"][1].update(threshold=1.5), r"threshold of a binary output"),
        (lambda d: d["outputs"][0]["bands"][1].update(min=3.0), r"bands 'low' and 'normal' overlap"),
        (lambda d: d["outputs"][1]["source"].update(below=3.0), r"not both"),
        (lambda d: d["outputs"][0].update(source={"column": "k", "above": 5}), r"regression output cannot have a cut-off"),
        (lambda d: d["outputs"].append(copy.deepcopy(d["outputs"][0])), r"unique"),
        (lambda d: d["outputs"][0].update(colour="red"), r"unknown field"),
        (lambda d: d["outputs"][0].update(unit=""), r"unit must be"),
        (lambda d: d["outputs"][0]["bands"].append({"name": "x"}), r"needs min, max or both"),
        (lambda d: d.update(outputs=[]), r"non-empty list"),
    ],
)
def test_invalid_specs_are_named(edit, message):
    with pytest.raises(LabelSpecError, match=message):
        LabelSpec.from_dict(broken(edit))


def test_file_errors(tmp_path):
    with pytest.raises(LabelSpecError, match="not found"):
        LabelSpec.load(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(LabelSpecError, match="bad.json: label spec is not valid JSON"):
        LabelSpec.load(tmp_path / "bad.json")
