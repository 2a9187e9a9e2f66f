"""Windows every hop at the offline positions, never across a gap, lost samples counted."""

from __future__ import annotations

import numpy as np

from anyecg_edge.preprocess import resample
from anyecg_edge.sources.base import SampleBlock
from anyecg_edge.windower import Windower
from anyecg_edge.windows import window_starts


def blocks(x, fs, size=73, *, start_seq=0, t0=1000.0, restart_first=True, device="d"):
    out = []
    for i in range(0, len(x), size):
        out.append(SampleBlock(device, x[i : i + size], fs, t0 + i / fs, start_seq + i, start_seq + i, restart=restart_first and i == 0))
    return out


def test_windows_at_offline_positions_with_offline_samples():
    rng = np.random.default_rng(1)
    x = rng.standard_normal(130 * 40)
    w = Windower("d", hop_s=2.0)
    got = [win for b in blocks(x, 130) for win in w.push(b)]
    ref = resample(x, 130)
    starts = [s for s in window_starts(len(ref), 5000, 1000) if s + 5000 <= w._resampler.n_out]
    assert [g.start for g in got] == starts
    for g in got:
        np.testing.assert_allclose(g.samples, ref[g.start : g.start + 5000], atol=1e-12)
        assert g.t_start == 1000.0 + g.start / 500
    assert w.stats.windows == len(got) and w.stats.gaps == 0


def test_a_sequence_gap_starts_a_new_segment_and_counts_lost_samples():
    x = np.sin(np.arange(130 * 40) / 7.0)
    bl = blocks(x, 130)
    lost = bl.pop(30)  # one notification lost on the air
    b = bl[30]
    bl[30] = SampleBlock(b.device, b.samples, b.fs, b.t_first, b.sequence, lost.sequence)
    w = Windower("d", hop_s=2.0)
    got = [win for blk in bl for win in w.push(blk)]
    assert w.stats.gaps == 1 and w.stats.lost_samples == 73 and w.stats.segments == 2
    gap_time = b.t_first
    for g in got:  # no window spans the gap
        assert g.t_end <= lost.t_first + 1e-9 or g.t_start >= gap_time - 1e-9
    assert {g.segment for g in got} == {0, 1}
    assert [g.start for g in got if g.segment == 1][0] == 0


def test_restart_after_reconnect_is_not_stitched():
    x = np.cos(np.arange(130 * 25) / 5.0)
    w = Windower("d", hop_s=2.0)
    first = [win for b in blocks(x[: 130 * 12], 130) for win in w.push(b)]
    second = [win for b in blocks(x[130 * 12 :], 130, start_seq=0, t0=2000.0) for win in w.push(b)]
    assert w.stats.restarts == 1 and w.stats.lost_samples == 0
    assert all(g.segment == 0 for g in first) and all(g.segment == 1 for g in second)
    assert second and second[0].t_start == 2000.0


def test_flags_follow_the_samples():
    x = np.sin(np.arange(130 * 30) / 7.0)
    bl = blocks(x, 130)
    b = bl[5]
    bl[5] = SampleBlock(b.device, b.samples, b.fs, b.t_first, b.sequence, b.expected_sequence, lead_off=True)
    w = Windower("d", hop_s=2.0)
    got = [win for blk in bl for win in w.push(blk)]
    flagged = [g.lead_off for g in got]
    assert flagged[0] and not flagged[-1]


def test_500hz_input_passes_through():
    x = np.arange(500 * 12, dtype=float)
    w = Windower("d", hop_s=1.0)
    got = [win for b in blocks(x, 500, size=250) for win in w.push(b)]
    assert [g.start for g in got] == [0, 500, 1000]
    np.testing.assert_array_equal(got[1].samples, x[500:5500])
