"""The synthetic electrolyte cohort: determinism, subject splits, lab distributions, and each
electrolyte effect measured on the generated waveforms."""

import csv
import json

import numpy as np
import pytest

from anyecg_edge.labels import LabelSpec
from anyecg_edge.records import read_record
from anyecg_edge.windows import record_windows
from quantize.cohort import (
    LAB_COLUMNS,
    CohortConfig,
    CohortError,
    cohort_hash,
    draw_calcium,
    draw_potassium,
    electrolyte_effects,
    generate_cohort,
    generate_record,
    write_cohort,
)
from quantize.cohort import _subjects

SMALL = CohortConfig(seed=7, subjects=12, duration_s=(10, 20))


def read_labs(folder):
    with open(folder / "labs.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_same_seed_gives_a_byte_identical_cohort(tmp_path):
    a = write_cohort(tmp_path / "a", SMALL)
    b = write_cohort(tmp_path / "b", SMALL)
    assert a.sha256 == b.sha256 == cohort_hash(tmp_path / "a")
    assert (tmp_path / "a" / "labs.csv").read_bytes() == (tmp_path / "b" / "labs.csv").read_bytes()
    c = write_cohort(tmp_path / "c", CohortConfig(seed=8, subjects=12, duration_s=(10, 20)))
    assert c.sha256 != a.sha256


def test_layout_labs_and_records(tmp_path):
    summary = write_cohort(tmp_path / "cohort", SMALL)
    folder = summary.path
    rows = read_labs(folder)
    assert list(rows[0]) == list(LAB_COLUMNS)
    assert summary.records == len(rows) >= SMALL.subjects
    LabelSpec.load(folder / "label_spec.json")
    meta = json.loads((folder / "cohort.json").read_text())
    assert meta["sha256"] == summary.sha256 and meta["config"] == SMALL.to_dict()
    for row in rows:
        fs = float(row["fs"])
        assert fs in (130, 250, 500) and row["mains_hz"] in ("50", "60")
        record = read_record(folder / row["file_path"], fs=fs)
        assert record.signal.dtype == np.float64 and record.leads == ("I",)
        assert record.duration == pytest.approx(float(row["duration_s"]))
        assert np.all(np.isfinite(record.signal)) and np.abs(record.signal).max() < 20
    # Every record resamples to 500 Hz and cuts into whole 10 s windows.
    windows = record_windows(read_record(folder / rows[0]["file_path"], fs=float(rows[0]["fs"])).lead("I"),
                             float(rows[0]["fs"]))
    assert windows.shape[1:] == (1, 5000)


def test_subjects_never_cross_splits(tmp_path):
    rows = [row for _, _, row in generate_cohort(CohortConfig(seed=1, subjects=40, duration_s=(10, 10)))]
    split_of = {}
    for row in rows:
        assert split_of.setdefault(row["subject_id"], row["split"]) == row["split"]
    assert set(split_of.values()) == {"train", "val", "test"}


def test_an_existing_folder_is_not_replaced_silently(tmp_path):
    write_cohort(tmp_path / "c", SMALL)
    with pytest.raises(CohortError, match="already exists"):
        write_cohort(tmp_path / "c", SMALL)
    write_cohort(tmp_path / "c", SMALL, overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["c"]  # no temporary folder left behind


def test_bad_configs_are_refused():
    with pytest.raises(CohortError):
        CohortConfig(subjects=2)
    with pytest.raises(CohortError):
        CohortConfig(duration_s=(5, 10))
    with pytest.raises(CohortError, match="twice the mains"):
        CohortConfig(rates=(110,), rate_weights=(1.0,))
    with pytest.raises(CohortError, match="unknown"):
        CohortConfig.from_dict({"subject": 3})


def test_lab_distributions_have_emergency_department_tails():
    rng = np.random.default_rng(0)
    k = draw_potassium(rng, 20000)
    ca = draw_calcium(rng, 20000)
    assert 3.9 < np.median(k) < 4.3
    assert 2.3 <= k.min() and k.max() <= 8.5
    assert 0.05 < np.mean(k > 5.5) < 0.2 and 0.05 < np.mean(k < 3.5) < 0.2
    assert np.mean(k > 7.0) > 0.005  # a real tail, not a truncated normal
    assert 9.2 < np.median(ca) < 9.6
    assert 0.04 < np.mean(ca > 10.5) < 0.15 and 0.04 < np.mean(ca < 8.5) < 0.15


def test_effects_are_smooth_and_point_the_textbook_way():
    normal = electrolyte_effects(4.2, 9.4)
    hyper = electrolyte_effects(7.0, 9.4)
    hypo = electrolyte_effects(2.8, 9.4)
    assert hyper["t_amp"] > 1.5 and hyper["t_width"] < 0.8 and hyper["p_amp"] < 0.5
    assert hyper["pr_ms"] > 20 and hyper["qrs_width"] > 1.1
    assert hypo["t_amp"] < 0.6 and hypo["u_mv"] > 0.05 and hypo["st_mv"] < -0.03
    assert electrolyte_effects(4.2, 11.5)["st_ms"] < normal["st_ms"] < electrolyte_effects(4.2, 7.5)["st_ms"]
    for key, value in normal.items():  # a normal potassium changes almost nothing
        expected = {"st_ms": 0.0, "pr_ms": 0.0, "u_mv": 0.0, "st_mv": 0.0, "t_symmetry": value}.get(key, 1.0)
        assert value == pytest.approx(expected, abs=2.0 if key.endswith("_ms") else 0.08), key
    t_amp = [electrolyte_effects(k, 9.4)["t_amp"] for k in np.linspace(2.5, 8.0, 56)]
    assert np.all(np.diff(np.log(t_amp)) > -0.2) and np.all(np.diff(np.log(t_amp)) < 0.2)  # no jumps
    assert electrolyte_effects(7.5, 12.0, scale=0.0) == electrolyte_effects(4.0, 9.4, scale=0.0)


def clean_beat(potassium, calcium, subject=0):
    """The average clean beat (500 Hz, no noise, no ectopy) of one subject, aligned on R."""
    config = CohortConfig(seed=3, subjects=4, noise_scale=0.0, saturation_fraction=0.0)
    s = _subjects(np.random.default_rng(0), config)
    s["pvc_per_min"][:] = 0
    s["pac_per_min"][:] = 0
    s["hr"][:] = 60
    s["rsa"][:] = s["lf"][:] = s["rr_jitter"][:] = 0
    x, _ = generate_record(np.random.default_rng(1), s, subject, potassium, calcium, 500, 50, 12, config)
    r = [i for i in range(300, len(x) - 700) if x[i] == x[i - 150 : i + 150].max() and x[i] > 0.3]
    return np.mean([x[i - 300 : i + 700] for i in r], axis=0)  # 0.6 s before R to 1.4 s after


def test_waveform_measurements_follow_potassium_and_calcium():
    beats = {k: clean_beat(k, 9.4) for k in (2.6, 4.2, 7.2)}
    def t_peak(beat):  # T peak: maximum 150-500 ms after R
        seg = beat[300 + 75 : 300 + 250]
        return seg.max(), 75 + int(seg.argmax())
    def p_peak(beat):  # P: maximum 300-120 ms before R
        return beat[300 - 150 : 300 - 60].max()
    t_normal, _ = t_peak(beats[4.2])
    t_high, _ = t_peak(beats[7.2])
    t_low, _ = t_peak(beats[2.6])
    assert t_high > 1.8 * t_normal > 1.8 * t_low
    assert p_peak(beats[7.2]) < 0.6 * p_peak(beats[4.2])
    # Hypokalaemia: a U wave after the T and a depressed ST segment.
    _, t_at = t_peak(beats[4.2])
    u_window = slice(300 + t_at + 60, 300 + t_at + 130)
    assert beats[2.6][u_window].max() > beats[4.2][u_window].max() + 0.03
    # Calcium: the T wave moves along the ST segment (the QT shortens as calcium rises).
    _, t_hyper_ca = t_peak(clean_beat(4.2, 12.0))
    _, t_hypo_ca = t_peak(clean_beat(4.2, 7.5))
    assert t_hypo_ca - t_hyper_ca > 40  # samples at 500 Hz, i.e. > 80 ms


def test_noise_artefacts_are_present_at_every_rate():
    config = CohortConfig(seed=0, subjects=4, saturation_fraction=1.0)
    s = _subjects(np.random.default_rng(0), config)
    for fs in (130, 250, 500):
        x, params = generate_record(np.random.default_rng(fs), s, 1, 4.2, 9.4, fs, 60, 30, config)
        assert len(x) == 30 * fs and x.dtype == np.float32
        assert params["saturated"] == 1
        assert np.mean(np.abs(x) >= np.abs(x).max() - 1e-6) > 0.003  # clipped plateaus
        spectrum = np.abs(np.fft.rfft(x - x.mean()))
        freqs = np.fft.rfftfreq(len(x), 1 / fs)
        assert spectrum[np.argmin(np.abs(freqs - 60))] > 3 * np.median(spectrum[(freqs > 45) & (freqs < 64)])
