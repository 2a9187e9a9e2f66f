"""The per-device pipeline: estimates with every field, aggregates, latencies, rejections."""

from __future__ import annotations

import numpy as np

from anyecg_edge.pipeline import DevicePipeline, PipelineConfig
from anyecg_edge.sources.file import open_array_source


def run(model, signal, fs=130, **config):
    pipe = DevicePipeline("dev", model, PipelineConfig(**config))
    reports = [r for b in open_array_source(signal, fs, "dev").blocks() for r in pipe.push(b)]
    return pipe, reports


def test_estimates_carry_every_field(model, record_130hz):
    pipe, reports = run(model, record_130hz[: 130 * 40])
    assert reports and all(r.verdict.ok for r in reports)
    first = reports[0]
    labs = [o.name for o in model.label_spec.outputs]
    assert [e.lab for e in first.estimates] == labs
    e = first.estimates[0].as_dict()
    for key in ("device", "time", "lab", "value", "unit", "band", "quality", "windows", "latency_ms", "scope"):
        assert key in e
    assert e["unit"] == "mmol/L" and e["band"] in ("low", "normal", "high") and e["windows"] == 1
    prob = first.estimates[1]
    assert 0 <= prob.value <= 1 and prob.above_threshold == (prob.value >= 0.5)
    lat = first.latency
    assert lat.total >= lat.preprocess + lat.inference and lat.inference > 0
    assert pipe.stats()["accepted"] == len(reports)


def test_aggregate_over_non_overlapping_windows(model, record_130hz):
    _, reports = run(model, record_130hz[: 130 * 60], aggregate_windows=3)
    with_agg = [r for r in reports if any(e.scope == "aggregate" for e in r.estimates)]
    assert with_agg, "no aggregate in 60 s"
    first = with_agg[0]
    # the first aggregate needs three windows that do not overlap: 0-10, 10-20, 20-30 s
    assert first.window.start == 20 * 500
    by_start = {r.window.start: r.values for r in reports}
    expected = np.mean([by_start[0], by_start[5000], by_start[10000]], axis=0)
    agg = [e.value for e in first.estimates if e.scope == "aggregate"]
    np.testing.assert_allclose(agg, expected, rtol=1e-12)
    assert all(e.windows == 3 for e in first.estimates if e.scope == "aggregate")


def test_rejected_windows_make_no_estimate(model, record_130hz):
    x = record_130hz[: 130 * 30].copy()
    x[130 * 5] = np.nan
    pipe, reports = run(model, x, aggregate_windows=2, non_overlapping=False)
    bad = [r for r in reports if not r.verdict.ok]
    assert bad and all(r.estimates == () for r in bad)
    assert all(r.verdict.reason.startswith("non-finite") for r in bad)
    assert pipe.stats()["rejected"] == {"non-finite": len(bad)}
    accepted = [r for r in reports if r.verdict.ok]
    for previous, current in zip(accepted, accepted[1:]):  # aggregates only use accepted windows
        agg = [e.value for e in current.estimates if e.scope == "aggregate"]
        np.testing.assert_allclose(agg, (previous.values + current.values) / 2, rtol=1e-12)


def test_hop_from_model_metadata_and_override(model, record_130hz):
    pipe, reports = run(model, record_130hz[: 130 * 20])
    assert pipe.hop_s == 2.0 and [r.window.start for r in reports][:2] == [0, 1000]
    pipe, reports = run(model, record_130hz[: 130 * 20], hop_s=5.0)
    assert [r.window.start for r in reports][:2] == [0, 2500]
