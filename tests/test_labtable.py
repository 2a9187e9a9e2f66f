"""Lab tables: the accepted forms, and a clear error naming the line for every bad input."""

import math
from pathlib import Path

import numpy as np
import pytest

from anyecg_edge.labels import LabelSpec
from quantize.labtable import LabTableError, read_lab_table, split_by_subject

RECIPES = Path(__file__).resolve().parent.parent / "quantize" / "recipes"
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture
def spec():
    return LabelSpec.load(RECIPES / "demo_electrolytes.json")


@pytest.fixture
def hyperk_spec():
    return LabelSpec.from_dict({"name": "pocket-k", "outputs": [
        {"name": "hyperkalemia", "kind": "binary", "definition": "K > 5.5 mmol/L",
         "source": {"column": "potassium", "above": 5.5}, "threshold": 0.5},
        {"name": "potassium", "kind": "regression", "unit": "mmol/L", "definition": "serum potassium"}]})


@pytest.fixture
def folder(tmp_path):
    for name in ("a", "b", "c", "d"):
        np.save(tmp_path / f"{name}.npy", np.zeros(5000, np.float32))
    return tmp_path


def table(folder, text):
    path = folder / "labs.csv"
    path.write_text(text)
    return path


GOOD = """file_path,subject_id,fs,potassium,calcium,noise_mv
a.npy,p1,500,6.1,9.4,0.1
b.npy,p1,500,3.2,8.1,0.1
c.npy,p2,250,4.4,11.0,0.2
d.npy,p3,500,,9.0,0.1
"""


def test_columns_form(folder, spec):
    t = read_lab_table(table(folder, GOOD), spec)
    assert t.form == "columns" and len(t) == 4
    assert t.rows[0].path == folder / "a.npy" and t.rows[0].line == 2 and t.rows[2].fs == 250
    y = t.targets()
    np.testing.assert_array_equal(y[0], [6.1, 1, 0, 0, 0])
    np.testing.assert_array_equal(y[1], [3.2, 0, 1, 0, 1])
    np.testing.assert_array_equal(y[2], [4.4, 0, 0, 1, 0])
    assert math.isnan(y[3, 0]) and math.isnan(y[3, 1])  # potassium not measured: masked
    assert t.subjects == ["p1", "p1", "p2", "p3"]


def test_absolute_paths_and_wfdb_records(tmp_path, hyperk_spec):
    wfdb = DATA / "cinc2021" / "E07500"
    path = table(tmp_path, f"file_path,potassium\n{wfdb},6.0\n{wfdb}.hea,4.0\n")
    t = read_lab_table(path, hyperk_spec)
    assert t.rows[0].path == wfdb and t.subjects == [str(wfdb), f"{wfdb}.hea"]


def test_pocket_k_form(folder, hyperk_spec):
    path = table(folder, "file_path,label,original_value\na.npy,1,5.9\nb.npy,0,4.1\nc.npy,0,\n")
    t = read_lab_table(path, hyperk_spec, default_fs=500)
    assert t.form == "pocket-k"
    y = t.targets()
    np.testing.assert_array_equal(y[:2], [[1, 5.9], [0, 4.1]])
    assert y[2, 0] == 0 and math.isnan(y[2, 1])
    assert t.rows[0].fs == 500


def test_pocket_k_form_needs_one_binary_output(folder, spec):
    path = table(folder, "file_path,label,original_value\na.npy,1,5.9\n")
    with pytest.raises(LabTableError, match="exactly one binary output"):
        read_lab_table(path, spec, default_fs=500)


@pytest.mark.parametrize("text, message, line", [
    (GOOD.replace("b.npy,p1,500,3.2", "missing.npy,p1,500,3.2"), "record file 'missing.npy' not found", 3),
    (GOOD.replace("4.4", "high"), "column 'potassium' holds 'high', which is not a number", 4),
    (GOOD.replace("4.4", "inf"), "must be finite", 4),
    (GOOD.replace("c.npy,p2,250", "c.npy,p2,"), "carries no sampling rate", 4),
    (GOOD.replace("c.npy,p2,250", "c.npy,p2,-1"), "fs must be a positive rate", 4),
    (GOOD.replace("d.npy,p3,500,,9.0,0.1", "d.npy,p3,500,,,0.1"), "no lab value for any output", 5),
    (GOOD.replace("d.npy,p3,500,,9.0,0.1", "d.npy,p3,500,9.0"), "4 fields, but the header has 6", 5),
    (GOOD.replace("a.npy,", ","), "empty file_path", 2),
    (GOOD.replace("calcium", "calcum"), "unknown lab name", 1),
    (GOOD.replace("file_path", "record"), "no 'file_path' column", 1),
    ("", "empty", 1),
])
def test_bad_tables_name_the_line(folder, spec, text, message, line):
    with pytest.raises(LabTableError, match=message) as info:
        read_lab_table(table(folder, text), spec)
    assert info.value.line == line
    assert f"line {line}" in str(info.value)


def test_unknown_lab_lists_the_table_columns(folder, spec):
    with pytest.raises(LabTableError) as info:
        read_lab_table(table(folder, GOOD.replace("calcium", "calcum")), spec)
    text = str(info.value)
    assert "'hypercalcemia' reads 'calcium'" in text and "'calcum'" in text


def test_all_one_class_is_refused(folder, spec):
    text = GOOD.replace("6.1", "4.0")  # nobody above 5.5 mmol/L
    with pytest.raises(LabTableError, match=r"'hyperkalemia': all 3 labelled rows \(lines 2-4\) are 0"):
        read_lab_table(table(folder, text), spec)


def test_splits(folder, spec):
    t = read_lab_table(table(folder, GOOD), spec)
    splits = t.splits(seed=0, val_fraction=0.34, test_fraction=0.34)
    assert splits[0] == splits[1]  # one subject, one split
    assert sorted(set(splits)) == ["test", "train", "val"]
    np.testing.assert_array_equal(splits, t.splits(seed=0, val_fraction=0.34, test_fraction=0.34))
    given = GOOD.replace("noise_mv", "split").replace(",0.1\n", ",train\n").replace(",0.2\n", ",validation\n")
    t = read_lab_table(table(folder, given), spec)
    assert list(t.splits()) == ["train", "train", "val", "train"]


def test_a_subject_in_two_splits_is_refused(folder, spec):
    text = GOOD.replace("noise_mv", "split").replace(",0.1\n", ",train\n").replace(",0.2\n", ",test\n")
    text = text.replace("b.npy,p1,500,3.2,8.1,train", "b.npy,p1,500,3.2,8.1,test")
    with pytest.raises(LabTableError, match="subject 'p1' is in split 'test' here but in 'train' on line 2") as info:
        read_lab_table(table(folder, text), spec)
    assert info.value.line == 3


def test_split_by_subject_is_deterministic_and_never_leaks():
    subjects = [f"s{i % 37}" for i in range(200)]
    a = split_by_subject(subjects, seed=3)
    assert np.array_equal(a, split_by_subject(subjects, seed=3))
    for s in set(subjects):
        assert len({a[i] for i, x in enumerate(subjects) if x == s}) == 1
    counts = {name: len({x for x, sp in zip(subjects, a) if sp == name}) for name in ("train", "val", "test")}
    assert counts == {"train": 25, "val": 6, "test": 6}
