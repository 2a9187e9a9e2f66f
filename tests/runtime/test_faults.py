"""Bad input and faults: clear errors or reported gaps, other devices keep going, no estimate from bad data."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from anyecg_edge.errors import ModelFileError
from anyecg_edge.gateway import Gateway
from anyecg_edge.model import EdgeModel
from anyecg_edge.sources.base import SampleBlock, SourceEvent
from anyecg_edge.sources.file import open_array_source
from anyecg_edge.sources.polar import PolarSession
from firmware_bridge import pmd

from .conftest import DOCUMENT


class Collect:
    def __init__(self):
        self.items = []

    def emit(self, item):
        self.items.append(item)

    def close(self):
        pass


def frames(signal_uv, n=73, t0_ns=700_000_000_000_000_000):
    for i in range(0, len(signal_uv) - n + 1, n):
        last = t0_ns + round((i + n - 1) * 1e9 / 130)
        yield bytes(pmd.EcgFrame(last, signal_uv[i : i + n].astype(np.int32)))


def test_corrupt_and_truncated_pmd_packets_are_counted_not_fatal(record_130hz):
    got = []
    session = PolarSession(client=None, device="h10", put=got.append)
    packets = list(frames(np.round(record_130hz[: 130 * 5] * 1000)))
    bad = [packets[2][:-1], b"\x00\x01", packets[3][:9], b"\x02" + packets[4][1:], packets[5][:9] + b"\x80" + packets[5][10:]]
    for data in packets[:2] + bad + packets[2:]:
        session._on_data(None, bytearray(data))
    corrupt = [g for g in got if isinstance(g, SourceEvent) and g.kind == "corrupt"]
    blocks = [g for g in got if isinstance(g, SampleBlock)]
    assert len(corrupt) == len(bad) and session.corrupt == len(bad)
    assert all("malformed" in e.message for e in corrupt)
    assert len(blocks) == len(packets) and not any(b.gap for b in blocks[1:])


def test_pmd_gap_from_timestamps_counts_lost_samples(record_130hz):
    got = []
    session = PolarSession(client=None, device="h10", put=got.append)
    packets = list(frames(np.round(record_130hz[: 130 * 5] * 1000)))
    for data in packets[:3] + packets[5:]:  # two frames lost on the air
        session._on_data(None, bytearray(data))
    blocks = [g for g in got if isinstance(g, SampleBlock)]
    assert [b.lost_samples for b in blocks] == [0, 0, 0, 146] + [0] * (len(blocks) - 4)
    gap_events = [g for g in got if isinstance(g, SourceEvent) and g.kind == "gap"]
    assert gap_events[0].data["lost_samples"] == 146


def test_saturated_pmd_samples_flag_the_block():
    got = []
    session = PolarSession(client=None, device="h10", put=got.append)
    session.put_frame(pmd.EcgFrame(10**18, np.full(73, 20_000, dtype=np.int32)))
    assert got[-1].saturated


def test_truncated_model_file_is_refused(model_path, tmp_path):
    data = model_path.read_bytes()
    cut = tmp_path / "cut.tflite"
    cut.write_bytes(data[: len(data) - 100])
    with pytest.raises(ModelFileError):
        EdgeModel.load(cut)
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a model at all" * 10)
    with pytest.raises(ModelFileError):
        EdgeModel.load(junk)


def test_unknown_preprocessing_version_is_refused_with_a_clear_message(make_model_file):
    document = copy.deepcopy(DOCUMENT)
    document["preprocessing"]["version"] = "ecgfounder-v9"
    with pytest.raises(ModelFileError, match="preprocessing version 'ecgfounder-v9' is not implemented"):
        EdgeModel.load(make_model_file(document))


class Exploding:
    device = "broken"

    async def __aiter__(self):
        yield SampleBlock("broken", np.zeros(10), 130.0, 0.0, 0, 0, restart=True)
        raise RuntimeError("radio on fire")

    async def close(self):
        pass


async def test_one_failing_device_does_not_stop_the_others(model, record_130hz):
    sink = Collect()
    gateway = Gateway(model, [sink])
    good = open_array_source(record_130hz[: 130 * 20], 130, "good")
    stats = await gateway.run([Exploding(), good])
    errors = [i for i in sink.items if isinstance(i, SourceEvent) and i.kind == "error"]
    assert errors and errors[0].device == "broken" and "radio on fire" in errors[0].message
    assert stats["devices"]["good"]["accepted"] > 0


async def test_a_bad_block_is_reported_and_the_stream_goes_on(model, record_130hz):
    class BadRate:
        device = "d"

        async def __aiter__(self):
            yield SampleBlock("d", np.zeros(10), -1.0, 0.0, 0, 0, restart=True)  # impossible rate
            for block in open_array_source(record_130hz[: 130 * 15], 130, "d").blocks():
                yield block

        async def close(self):
            pass

    sink = Collect()
    stats = await Gateway(model, [sink]).run([BadRate()])
    errors = [i for i in sink.items if isinstance(i, SourceEvent) and i.kind == "error"]
    assert errors and "sampling rate" in errors[0].message
    assert stats["devices"]["d"]["accepted"] > 0
