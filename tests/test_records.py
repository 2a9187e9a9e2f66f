"""Reading WFDB, .npy and CSV records, choosing leads by name, and refusing bad files clearly."""

from __future__ import annotations

import numpy as np
import pytest

from anyecg_edge.errors import RecordError
from anyecg_edge.records import STANDARD_LEADS, normalise_lead_name, read_record


def test_wfdb_leads_by_name_not_position(records_by_rate):
    twelve = read_record(records_by_rate[500])
    assert twelve.leads[:3] == ("I", "II", "III") and twelve.signal.shape == (12, 5000)
    ptb = read_record(str(records_by_rate[1000]) + ".hea")  # lower-case names, with extension
    assert ptb.leads[0] == "i" and ptb.fs == 1000
    np.testing.assert_array_equal(ptb.lead("I"), ptb.signal[0])
    np.testing.assert_array_equal(ptb.lead("aVL"), ptb.signal[ptb.leads.index("avl")])
    # a record whose leads come in another order is still read by name
    reordered = twelve.__class__(twelve.signal[::-1], twelve.fs, twelve.leads[::-1], "x")
    np.testing.assert_array_equal(reordered.lead("I"), twelve.lead("I"))


def test_unknown_lead_names_the_ones_present(records_by_rate):
    mitdb = read_record(records_by_rate[360])
    with pytest.raises(RecordError, match=r"no lead 'I'.*MLII"):
        mitdb.lead("I")
    assert mitdb.lead("mlii").shape == (650000,)


def test_single_channel_record_is_taken_as_the_requested_lead(records_by_rate):
    alivecor = read_record(records_by_rate[300])
    assert alivecor.leads == ("ECG",) and alivecor.lead("I").shape == (9000,)


def test_npy_layouts(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.normal(size=(5000, 12))
    np.save(tmp_path / "t_by_l.npy", data)
    np.save(tmp_path / "l_by_t.npy", data.T)
    np.save(tmp_path / "one.npy", data[:, 0])
    a = read_record(tmp_path / "t_by_l.npy", fs=500)
    b = read_record(tmp_path / "l_by_t.npy", fs=500)
    np.testing.assert_array_equal(a.signal, b.signal)
    assert a.leads == STANDARD_LEADS
    np.testing.assert_array_equal(read_record(tmp_path / "one.npy", fs=500).lead("I"), data[:, 0])
    with pytest.raises(RecordError, match="pass fs"):
        read_record(tmp_path / "one.npy")
    np.save(tmp_path / "three.npy", data[:, :3])
    with pytest.raises(RecordError, match="lead names"):
        read_record(tmp_path / "three.npy", fs=500)
    assert read_record(tmp_path / "three.npy", fs=500, leads=["I", "II", "V1"]).lead("V1").shape == (5000,)


def test_csv_with_time_column(tmp_path):
    t = np.arange(3000) / 250
    path = tmp_path / "rec.csv"
    rows = "\n".join(f"{ti:.6f},{np.sin(ti):.6f},{np.cos(ti):.6f}" for ti in t)
    path.write_text("time,I,II\n" + rows + "\n")
    record = read_record(path)
    assert record.fs == 250 and record.leads == ("I", "II")
    np.testing.assert_allclose(record.lead("I"), np.sin(t), atol=1e-6)


def test_csv_errors_name_the_line(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("I\n" + "0.1\n" * 1500 + "abc\n")
    with pytest.raises(RecordError, match="line 1502"):
        read_record(path, fs=500)
    path.write_text("I\n")
    with pytest.raises(RecordError, match="no samples"):
        read_record(path, fs=500)
    path.write_text("")
    with pytest.raises(RecordError, match="empty"):
        read_record(path, fs=500)


def test_missing_empty_and_short(tmp_path):
    with pytest.raises(RecordError, match="not found"):
        read_record(tmp_path / "nothing")
    with pytest.raises(RecordError, match="not found"):
        read_record(tmp_path / "nothing.npy", fs=500)
    np.save(tmp_path / "empty.npy", np.zeros(0))
    with pytest.raises(RecordError, match="no samples"):
        read_record(tmp_path / "empty.npy", fs=500)
    np.save(tmp_path / "short.npy", np.zeros(500))
    with pytest.raises(RecordError, match="shorter"):
        read_record(tmp_path / "short.npy", fs=500)
    with pytest.raises(RecordError, match="unknown record format"):
        read_record(tmp_path / "x.edf")


def test_corrupt_wfdb_header(tmp_path):
    (tmp_path / "broken.hea").write_text("this is not a header\n")
    with pytest.raises(RecordError, match="cannot read WFDB"):
        read_record(tmp_path / "broken")


@pytest.mark.parametrize("raw, name", [("lead I", "I"), (" i ", "I"), ("AVL", "aVL"), ("v5", "V5"), ("MLII", "MLII")])
def test_lead_name_normalisation(raw, name):
    assert normalise_lead_name(raw) == name
