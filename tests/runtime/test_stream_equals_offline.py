"""Train/serve skew is impossible by construction: streamed estimates equal offline ones.

The same 130 Hz µV stream (a real recording at the Polar H10 rate, as the H10 sends it)
goes (a) offline through ``record_windows`` (resample the whole record, cut, preprocess)
and the model, and (b) block by block through the streaming pipeline, here from the
source interface and in ``test_ble_sources.py`` through a virtual Polar H10 over bleak.
For every window position both produce, the estimates must agree to float tolerance.
"""

from __future__ import annotations

import numpy as np
import pytest

from anyecg_edge.pipeline import DevicePipeline, PipelineConfig
from anyecg_edge.sources.file import open_array_source
from anyecg_edge.windows import record_windows


def offline_values(model, signal_mv, fs, hop_s=2.0):
    windows = record_windows(signal_mv, fs, hop_seconds=hop_s)
    return {i * int(hop_s * 500): v for i, v in enumerate(model.predict(windows))}


def assert_stream_equals_offline(model, reports, signal_mv, fs, hop_s=2.0, *, min_windows=5):
    offline = offline_values(model, signal_mv, fs, hop_s)
    compared = 0
    for r in reports:
        assert r.verdict.ok, r.verdict.reason
        np.testing.assert_allclose(r.values, offline[r.window.start], rtol=1e-6, atol=1e-6)
        compared += 1
    assert compared >= min_windows
    return compared


@pytest.mark.parametrize("block", [1, 73, 200])
def test_block_pipeline_equals_offline(model, record_130hz, block):
    uv = np.round(record_130hz[: 130 * 40] * 1000)  # what the H10 sends: integer µV
    mv = uv / 1000
    pipe = DevicePipeline("h10", model, PipelineConfig(hop_s=2.0))
    reports = [r for b in open_array_source(mv, 130, "h10", block_samples=block).blocks() for r in pipe.push(b)]
    n = assert_stream_equals_offline(model, reports, mv, 130)
    assert n == len(offline_values(model, mv, 130)) - 1  # all but the window touching the unfinished tail


def test_preprocessed_windows_are_identical(model, record_130hz):
    from anyecg_edge.preprocess import preprocess_window
    from anyecg_edge.windower import Windower

    mv = record_130hz[: 130 * 30]
    w = Windower("x", hop_s=2.0)
    streamed = [win for b in open_array_source(mv, 130).blocks() for win in w.push(b)]
    offline = record_windows(mv, 130, hop_seconds=2.0)
    for win in streamed:
        np.testing.assert_allclose(preprocess_window(win.samples), offline[win.start // 1000], atol=1e-5)
