"""Corpus, augmentations, the distillation loss, and distillation itself (one and two processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from anyecg_edge.cli import main
from anyecg_edge.errors import AnyECGWarning
from anyecg_edge.labels import LabelSpec
from anyecg_edge.preprocess import WINDOW_SAMPLES
from quantize.augment import AugmentConfig, augment_segment, center_window, mix_segments
from anyecg_edge.records import read_record
from quantize.corpus import (
    CorpusError,
    discover,
    frontal_projection,
    load_segments,
    preprocess_windows,
    record_targets,
    shard,
)
from quantize.checkpoint import load_teacher
from quantize.distill import (
    DistillConfig,
    DistillError,
    build_shard,
    cache_key,
    distill,
    distill_loss,
    load_student,
    update_average,
    with_fresh_norm_stats,
)
from quantize.student import Student, preset

from shrink_helpers import DATA, SPEC, distill_settings, tiny_cohort, tiny_student, tiny_teacher, workdir


# --------------------------------------------------------------------------------------------
# augmentations


def test_augment_is_seeded_and_keeps_the_window_length():
    segment = np.sin(np.linspace(0, 60, WINDOW_SAMPLES + 2 * AugmentConfig().margin_samples))
    a = augment_segment(segment, np.random.default_rng(3))
    b = augment_segment(segment, np.random.default_rng(3))
    c = augment_segment(segment, np.random.default_rng(4))
    assert a.shape == (WINDOW_SAMPLES,)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert np.all(np.isfinite(a))


def test_augment_off_is_the_centre_window():
    quiet = AugmentConfig(rate_jitter=0, max_shift_s=0, scale_range=(1, 1), wander_p=0, noise_p=0, mains_p=0)
    segment = np.random.default_rng(0).normal(size=WINDOW_SAMPLES + 2 * quiet.margin_samples)
    out = augment_segment(segment, np.random.default_rng(0), quiet)
    np.testing.assert_allclose(out, center_window(segment), atol=1e-9)


def test_reversed_lead_negates_the_window_and_leaves_the_other_draws_alone():
    segment = np.sin(np.linspace(0, 60, WINDOW_SAMPLES + 2 * AugmentConfig().margin_samples))
    plain = augment_segment(segment, np.random.default_rng(5))
    reversed_ = augment_segment(segment, np.random.default_rng(5), AugmentConfig(invert_p=1.0))
    np.testing.assert_array_equal(reversed_, -plain)
    # A few reversed out of many: the share follows invert_p.
    rng = np.random.default_rng(6)
    config = AugmentConfig(invert_p=0.25, scale_range=(1, 1), rate_jitter=0, max_shift_s=0,
                           wander_p=0, noise_p=0, mains_p=0)
    signs = [np.sign(augment_segment(segment, rng, config) @ center_window(segment)) for _ in range(400)]
    assert 0.15 < signs.count(-1) / len(signs) < 0.35


def test_a_mixture_leans_to_its_own_segment_at_equal_power():
    quiet = AugmentConfig(rate_jitter=0, max_shift_s=0, scale_range=(1, 1), wander_p=0, noise_p=0, mains_p=0)
    t = np.arange(WINDOW_SAMPLES + 2 * quiet.margin_samples) / 500
    own, partner = np.sin(2 * np.pi * 1.1 * t), 300 * np.sin(2 * np.pi * 7.3 * t) + 50
    for seed in range(20):
        out = mix_segments(own, partner, np.random.default_rng(seed), quiet)
        # out = w * own + (1 - w) * partner scaled to own's power, with w in [0.5, 1]
        w_own, w_partner = np.linalg.lstsq(
            np.stack([center_window(own), center_window((partner - 50) / 300)], axis=1), out, rcond=None)[0]
        assert 0.5 <= w_own <= 1 and w_partner == pytest.approx(1 - w_own, abs=1e-6)
    np.testing.assert_array_equal(mix_segments(own, partner, np.random.default_rng(1)),
                                  mix_segments(own, partner, np.random.default_rng(1)))
    only_own = mix_segments(own, partner, np.random.default_rng(2), quiet, min_weight=1.0)
    np.testing.assert_allclose(only_own, center_window(own), atol=1e-9)


def test_augment_short_segment_never_reads_past_the_end():
    out = augment_segment(np.ones(WINDOW_SAMPLES), np.random.default_rng(0), AugmentConfig(noise_p=0, wander_p=0, mains_p=0))
    assert out.shape == (WINDOW_SAMPLES,)
    with pytest.raises(ValueError):
        augment_segment(np.ones(100), np.random.default_rng(0))


@pytest.mark.parametrize("change", [{"rate_jitter": 0.5}, {"scale_range": (2, 1)}, {"noise_p": 2}, {"wander_mv": -1},
                                    {"invert_p": 1.5}])
def test_augment_config_refuses_bad_values(change):
    with pytest.raises(ValueError):
        AugmentConfig(**change)


# --------------------------------------------------------------------------------------------
# corpus


def test_discover_wfdb_folder_and_segments():
    entries = discover([DATA])
    assert {e.subject for e in entries} >= {"E07500", "A00001", "100"}
    segments = load_segments(entries, margin=100, hop_s=5.0, max_per_record=2)
    assert segments.raw.shape[1] == WINDOW_SAMPLES + 200
    assert set(segments.record_index.tolist()) == set(range(len(entries)))
    assert np.bincount(segments.record_index).max() <= 2
    windows = preprocess_windows(segments.raw[:3])
    assert windows.shape == (3, 1, WINDOW_SAMPLES) and windows.dtype == np.float32


def test_frontal_projection_reproduces_the_limb_leads():
    record = read_record(DATA / "cinc2021" / "E07500")
    lead = {name: record.signal[i] for i, name in enumerate(record.leads)}
    np.testing.assert_allclose(frontal_projection(lead["I"], lead["II"], 0.0), lead["I"], atol=1e-12)
    np.testing.assert_allclose(frontal_projection(lead["I"], lead["II"], 60.0), lead["II"], atol=1e-12)
    # The augmented leads come out at the bipolar leads' gain (2 / sqrt 3); the stored aVL
    # and aVF are rounded to the microvolt, hence the tolerance.
    gain = 2 / np.sqrt(3)
    np.testing.assert_allclose(frontal_projection(lead["I"], lead["II"], 90.0), gain * lead["aVF"], atol=2e-3)
    np.testing.assert_allclose(frontal_projection(lead["I"], lead["II"], -30.0), gain * lead["aVL"], atol=2e-3)


def test_projections_add_leads_only_to_records_with_limb_leads():
    twelve = discover([DATA / "cinc2021" / "E07500"])
    single = discover([DATA / "cinc2017"])[:1]
    plain = load_segments(twelve + single, max_per_record=1)
    projected = load_segments(twelve + single, max_per_record=1, projections=3, rng=np.random.default_rng(1))
    assert np.bincount(plain.record_index).tolist() == [1, 1]
    assert np.bincount(projected.record_index).tolist() == [4, 1]
    # The record's own lead I comes first and unchanged; the projections differ from it.
    np.testing.assert_array_equal(projected.raw[0], plain.raw[0])
    assert all(not np.allclose(projected.raw[k], plain.raw[0]) for k in (1, 2, 3))
    again = load_segments(twelve + single, max_per_record=1, projections=3, rng=np.random.default_rng(1))
    np.testing.assert_array_equal(again.raw, projected.raw)


def test_extra_leads_add_each_named_lead_once():
    twelve = discover([DATA / "cinc2021" / "E07500"])
    single = discover([DATA / "cinc2017"])[:1]
    record = read_record(DATA / "cinc2021" / "E07500")
    lead = {name: record.signal[i] for i, name in enumerate(record.leads)}
    # Lead I is the record's chosen lead already, V2 is named twice, X does not exist.
    segments = load_segments(twelve + single, max_per_record=1, extra_leads=("V2", "v5", "I", "V2", "X"))
    assert np.bincount(segments.record_index).tolist() == [3, 1]
    np.testing.assert_allclose(segments.raw[0], lead["I"], atol=1e-5)
    np.testing.assert_allclose(segments.raw[1], lead["V2"], atol=1e-5)
    np.testing.assert_allclose(segments.raw[2], lead["V5"], atol=1e-5)


def test_cohort_splits_and_targets():
    spec = LabelSpec.load(SPEC)
    everything = discover([tiny_cohort()])
    test = discover([tiny_cohort()], split="test")
    assert 0 < len(test) < len(everything)
    assert {e.split for e in test} == {"test"}
    targets = record_targets(spec, everything)
    k = np.array([e.labs["potassium"] for e in everything])
    np.testing.assert_allclose(targets[:, spec.index("potassium")], k)
    np.testing.assert_array_equal(targets[:, spec.index("hyperkalemia")], (k > 5.5).astype(float))
    assert np.all(np.isnan(record_targets(spec, discover([DATA]))))


def test_npz_shard_source(tmp_path):
    signal = np.random.default_rng(0).normal(size=(3, 3000))
    np.savez(tmp_path / "part.npz", signal=signal, fs=250.0)
    segments = load_segments(discover([tmp_path / "part.npz"]))
    assert len(segments) == 3 and segments.raw.shape[1] == WINDOW_SAMPLES


def test_shards_are_disjoint_and_cover():
    items = list(range(11))
    parts = [shard(items, r, 3) for r in range(3)]
    assert sorted(sum(parts, [])) == items
    with pytest.raises(ValueError):
        shard(items, 3, 3)


def test_missing_source_is_a_clear_error(tmp_path):
    with pytest.raises(CorpusError, match="not found"):
        discover([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="no records"):
        discover([tmp_path / "empty"])


# --------------------------------------------------------------------------------------------
# loss


def test_loss_is_zero_when_the_student_matches():
    config = DistillConfig(hint_weight=1.0)
    z = torch.randn(6, 3)
    mean, std = torch.tensor([0.5, -1.0, 4.0]), torch.tensor([2.0, 1.5, 0.3])
    binary = torch.tensor([True, True, False])
    feats = torch.randn(6, 8)
    loss, parts = distill_loss(z, z, mean, std, binary, config, hint=feats, feat_teacher=feats)
    assert abs(float(loss)) < 1e-6
    assert set(parts) == {"regression", "soft_bce", "logit", "hint"}
    worse, _ = distill_loss(z + 0.5, z, mean, std, binary, config, hint=feats, feat_teacher=feats)
    assert float(worse) > 0.1


def test_label_term_ignores_missing_labels():
    config = DistillConfig(label_weight=1.0)
    z = torch.zeros(2, 2)
    labels = torch.tensor([[float("nan"), 1.0], [float("nan"), float("nan")]])
    _, parts = distill_loss(z, z, torch.zeros(2), torch.ones(2), torch.tensor([False, True]), config, labels=labels)
    assert parts["labels"] == pytest.approx(float(torch.nn.functional.softplus(torch.tensor(0.0))), rel=1e-5)


def test_an_output_weight_scales_that_outputs_terms_only():
    config = DistillConfig(label_weight=1.0)
    mean, std = torch.tensor([0.5, -1.0, 4.0]), torch.tensor([2.0, 1.5, 0.3])
    binary = torch.tensor([True, True, False])
    z = torch.randn(6, 3)
    labels = torch.tensor([[1.0, 0.0, 4.5]] * 6)
    plain, plain_parts = distill_loss(z, z, mean, std, binary, config, labels=labels)
    ones, _ = distill_loss(z, z, mean, std, binary, config, labels=labels, weights=torch.ones(3))
    assert float(ones) == pytest.approx(float(plain))
    off = z.clone()
    off[:, 1] += 0.7  # the student is off on the second binary output only
    base, base_parts = distill_loss(off, z, mean, std, binary, config, labels=labels)
    heavy, heavy_parts = distill_loss(off, z, mean, std, binary, config, labels=labels, weights=torch.tensor([1.0, 3.0, 1.0]))
    for part in ("soft_bce", "logit"):
        assert heavy_parts[part] == pytest.approx(3 * base_parts[part], rel=1e-5)
    assert heavy_parts["regression"] == pytest.approx(base_parts["regression"])
    assert float(heavy) > float(base)


# --------------------------------------------------------------------------------------------
# distillation


def test_cache_shard_labels_follow_each_window_to_its_record():
    spec = LabelSpec.load(SPEC)
    # An unlabelled record with several segments first, then two labelled cohort records:
    # every window must carry its own record's labels (NaN for the unlabelled one).
    entries = discover([DATA / "mitdb"])[:1] + discover([tiny_cohort()], split="train")[:2]
    config = DistillConfig.from_dict(distill_settings(max_per_record=3, augment_copies=1))
    data = build_shard(load_teacher(tiny_teacher()), entries, set(), config, rank=0, log=lambda _m: None)
    margin = config.augment_config.margin_samples
    per_segment = 1 + config.augment_copies  # the clean window and its augmented copies
    per_record = [len(load_segments([e], margin=margin, hop_s=config.hop_s, max_per_record=3)) for e in entries]
    assert per_record[0] > 1
    expected = np.repeat(record_targets(spec, entries), np.array(per_record) * per_segment, axis=0)
    np.testing.assert_array_equal(data["labels"], expected.astype(np.float32))
    assert np.isnan(data["labels"][: per_record[0] * per_segment]).all()
    assert np.isfinite(data["labels"][-per_segment:]).all()


def test_mixed_windows_come_from_training_records_only_and_carry_no_labels():
    entries = discover([tiny_cohort()], split="train")[:2] + discover([tiny_cohort()], split="val")[:1]
    held = {entries[-1].path}
    config = DistillConfig.from_dict(distill_settings(max_per_record=2, augment_copies=1, mix_copies=2))
    teacher = load_teacher(tiny_teacher())
    data = build_shard(teacher, entries, held, config, rank=0, log=lambda _m: None)
    unmixed = DistillConfig.from_dict(distill_settings(max_per_record=2, augment_copies=1))
    plain = build_shard(teacher, entries, held, unmixed, rank=0, log=lambda _m: None)
    margin = config.augment_config.margin_samples
    segments = [len(load_segments([e], margin=margin, hop_s=config.hop_s, max_per_record=2)) for e in entries]
    # Training segments: clean + 1 augmented + 2 mixed; held-out segments are never mixed.
    assert len(data["windows"]) == 4 * sum(segments[:2]) + 2 * segments[2]
    assert data["held_out"].sum() == plain["held_out"].sum() == 2 * segments[2]
    mixed = data["augmented"] & np.isnan(data["labels"]).all(axis=1)
    assert mixed.sum() == 2 * sum(segments[:2]) and not (mixed & data["held_out"]).any()
    assert np.isfinite(data["labels"][~mixed]).all()


def test_distill_writes_a_loadable_student_and_resumes():
    bundle = load_student(tiny_student())
    assert bundle.config.n_outputs == 5
    assert bundle.label_spec.names == LabelSpec.load(SPEC).names
    assert bundle.info["corpus"]["training_windows"] > 0
    assert len(bundle.info["history"]) == 2
    assert np.all(bundle.target_std > 0)
    assert bundle.teacher["sha256"] and bundle.teacher["path_name"] == "tiny_teacher.pth"
    # Resume: a three-epoch run from the two-epoch checkpoint trains one more epoch on the cached targets.
    result = distill(tiny_teacher(), [DATA, tiny_cohort()], workdir() / "distill",
                     DistillConfig.from_dict(distill_settings(epochs=3)), resume=True, threads=1, log=lambda _m: None)
    assert [row["epoch"] for row in result.history] == [1, 2, 3]
    windows = np.zeros((2, 1, WINDOW_SAMPLES), np.float32)
    values = load_student(result.path).values(windows)
    assert values.shape == (2, 5) and np.all(np.isfinite(values))


def test_the_weight_average_moves_a_fraction_towards_the_student():
    student = Student(preset("x0.5", 5))
    student.train()(torch.randn(4, 1, WINDOW_SAMPLES))  # running statistics and a batch count
    average = Student(preset("x0.5", 5))
    before = {k: v.clone() for k, v in average.state_dict().items()}
    update_average(average, student, 0.75)
    for name, value in average.state_dict().items():
        target = student.state_dict()[name]
        if value.is_floating_point():
            torch.testing.assert_close(value, 0.75 * before[name] + 0.25 * target)
        else:
            assert torch.equal(value, target), name
    assert all(int(v) == 1 for k, v in average.state_dict().items() if k.endswith("num_batches_tracked"))


def test_fresh_norm_stats_are_those_of_the_given_windows():
    model = Student(preset("x0.5", 5)).eval()
    windows = torch.randn(40, WINDOW_SAMPLES) * torch.linspace(0.5, 2.0, 40)[:, None] + 0.3
    fresh = with_fresh_norm_stats(model, windows, batch_size=20)
    with torch.no_grad():
        stem = model.stem[0][0](windows.unsqueeze(1))
    torch.testing.assert_close(fresh.stem[0][1].running_mean, stem.mean(dim=(0, 2)), rtol=1e-4, atol=1e-5)
    assert not fresh.training
    assert torch.equal(model.stem[0][1].running_mean, torch.zeros(8))  # the original is left alone


def test_with_ema_decay_the_saved_student_is_the_weight_average(tmp_path):
    settings = distill_settings(max_per_record=2, augment_copies=0, label_weight=0.0)
    config = DistillConfig.from_dict({**settings, "ema_decay": 0.9})
    result = distill(tiny_teacher(), [DATA], tmp_path / "ema", config, threads=1, log=lambda _m: None)
    state = torch.load(tmp_path / "ema" / "checkpoint.pt", weights_only=True)
    saved = load_student(result.path).model.state_dict()
    raw = {k.removeprefix("student."): v for k, v in state["net"].items() if k.startswith("student.")}
    assert saved.keys() == state["average"].keys() == raw.keys()
    weights = [k for k in saved if "running" not in k and "num_batches" not in k]
    assert all(torch.equal(saved[k], state["average"][k]) for k in weights)
    assert not all(torch.equal(saved[k], raw[k]) for k in weights)
    # Batch-norm statistics are measured afresh for the averaged weights.
    assert not torch.equal(saved["stem.0.1.running_var"], state["average"]["stem.0.1.running_var"])
    # A checkpoint written without the average cannot be resumed with one.
    distill(tiny_teacher(), [DATA], tmp_path / "plain", DistillConfig.from_dict(settings), threads=1, log=lambda _m: None)
    with pytest.raises(DistillError, match="^resume:.*ema_decay"):
        distill(tiny_teacher(), [DATA], tmp_path / "plain", DistillConfig.from_dict({**settings, "epochs": 2, "ema_decay": 0.9}),
                resume=True, threads=1, log=lambda _m: None)


def test_teacher_that_does_not_match_the_label_spec(tmp_path):
    spec = LabelSpec.from_dict({"name": "one", "outputs": [{"name": "k", "kind": "regression", "unit": "mmol/L",
                                                             "definition": "potassium"}]})
    with pytest.raises(DistillError, match="^teacher:"):
        distill(tiny_teacher(), [DATA], tmp_path / "out", DistillConfig(), label_spec=spec, log=lambda _m: None)
    assert not (tmp_path / "out" / "student.pt").exists()


def test_a_student_out_of_step_with_the_teachers_downsampling_is_warned_about(tmp_path):
    student = preset("x0.5", 5, strides=(2, 2, 2, 2, 2)).to_dict()
    config = DistillConfig.from_dict(distill_settings(max_per_record=1, augment_copies=0, student=student))
    with pytest.warns(AnyECGWarning, match="downsamples 64x and the teacher 256x"):
        distill(tiny_teacher(), [DATA], tmp_path / "out", config, threads=1, log=lambda _m: None)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="unknown"):
        DistillConfig.from_dict({"epoch": 3})
    with pytest.raises(ValueError):
        DistillConfig(augment={"rate_jitter": 0.9})
    with pytest.raises(ValueError, match="mix_min"):
        DistillConfig(mix_copies=1, mix_min=0.0)
    with pytest.raises(ValueError, match="ema_decay"):
        DistillConfig(ema_decay=1.0)
    with pytest.raises(ValueError, match="output_weights"):
        DistillConfig(output_weights={"hypocalcemia": 0})
    with pytest.raises(ValueError, match="output_weights"):
        DistillConfig(output_weights={"hypocalcemia": float("nan")})


def test_an_output_weight_must_name_an_output_of_the_teacher(tmp_path, capsys):
    config = DistillConfig.from_dict(distill_settings(output_weights={"calcium": 2.0}))
    with pytest.raises(DistillError, match=r"^settings: output_weights names \['calcium'\]"):
        distill(tiny_teacher(), [DATA], tmp_path / "out", config, threads=1, log=lambda _m: None)
    assert not (tmp_path / "out").exists()
    args = ["distill", "--teacher", str(tiny_teacher()), "--data", str(DATA), "--out", str(tmp_path / "cli")]
    assert main([*args, "--output-weight", "hypocalcemia"]) == 1
    assert "--output-weight takes NAME=WEIGHT, got 'hypocalcemia'" in capsys.readouterr().err


@pytest.mark.slow
def test_the_cache_key_follows_the_corpus_settings():
    entries = discover([DATA / "cinc2021" / "E07500"])
    plain = cache_key("sha", entries, DistillConfig())
    assert cache_key("sha", entries, DistillConfig(projections=0, extra_leads=[])) == plain
    assert len({plain, cache_key("sha", entries, DistillConfig(extra_leads=["V2"])),
                cache_key("sha", entries, DistillConfig(mix_copies=1)),
                cache_key("other", entries, DistillConfig())}) == 4


def test_two_process_torchrun(tmp_path):
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps({"distill": distill_settings(epochs=1, max_per_record=2, augment_copies=0)}))
    out = tmp_path / "ddp"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "anyecg_edge.cli", "distill", "--teacher", str(tiny_teacher()), "--data", str(DATA),
        "--out", str(out), "--recipe", str(recipe), "--threads", "1",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((out / "distill.json").read_text())
    assert report["throughput"]["processes"] == 2
    shards = sorted((out / "cache").glob("*/shard-*-of-002.npz"))
    assert len(shards) == 2
    assert load_student(out / "student.pt").config.n_outputs == 5


def test_a_source_can_be_weighted():
    once = discover([DATA / "cinc2021"])
    thrice = discover([f"{DATA / 'cinc2021'}*3"])
    assert len(thrice) == 3 * len(once) and {e.path for e in thrice} == {e.path for e in once}
