"""The open ECG stream profile: packet and control codecs, and loss/gap detection."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_bridge import ecgstream as es
from firmware_bridge.errors import ControlPointError, MalformedPacketError


def test_specification_example_bytes():
    """The example in ecgstream.md §6, byte for byte."""
    packet = es.StreamPacket(7, 770, 1_700_000_000_000_000, 250, es.SampleFormat.INT16, 1.0, np.array([-5, 300]), es.PacketFlags.TIME_SYNCED)
    wire = bytes.fromhex("01 04 07 00 02 03 00 00 00 40 1e 18 24 0a 06 00 fa 00 01 02 00 00 80 3f fb ff 2c 01")
    assert bytes(packet) == wire
    decoded = es.StreamPacket.from_bytes(wire)
    assert decoded == packet and decoded.time_synced and not decoded.lead_off
    assert decoded.samples_uv[:, 0].tolist() == [-5.0, 300.0]


def test_the_specification_lists_the_uuids_of_the_code():
    from importlib import resources

    text = (resources.files("firmware_bridge") / "ecgstream.md").read_text()
    for uuid in (es.ECGSTREAM_SERVICE_UUID, es.ECGSTREAM_DATA_UUID, es.ECGSTREAM_CONTROL_UUID):
        assert uuid in text


def test_int24_multichannel_interleaving_and_flags():
    samples = np.array([[1, -2], [3, -(1 << 23)], [(1 << 23) - 1, 0]])
    packet = es.StreamPacket(65535, 2**32 - 1, 5, 500, es.SampleFormat.INT24, 0.05, samples, es.PacketFlags.LEAD_OFF | es.PacketFlags.SATURATED)
    data = bytes(packet)
    assert len(data) == es.HEADER_SIZE + 3 * 2 * 3 == packet.wire_size
    assert data[18] == 0x12 and data[19] == 3  # int24, 2 channels; 3 samples per channel
    assert data[24:27] == (1).to_bytes(3, "little", signed=True) and data[27:30] == (-2).to_bytes(3, "little", signed=True)
    decoded = es.StreamPacket.from_bytes(data)
    assert decoded.lead_off and decoded.saturated and decoded.channels == 2
    assert decoded.samples.tolist() == samples.tolist()
    assert decoded.next_sample_index == 2


def _packet(**kw):
    base = dict(sequence=0, first_sample_index=0, timestamp_us=0, sampling_rate_hz=250, sample_format=es.SampleFormat.INT16, scale_uv=1.0, samples=np.zeros(10, np.int32))
    base.update(kw)
    return es.StreamPacket(**base)


@pytest.mark.parametrize(
    "mutate, reason",
    [
        (lambda b: b[:10], "shorter"),
        (lambda b: b[:-1], "declares"),  # truncated notification
        (lambda b: b + b"\x00", "declares"),  # padded
        (lambda b: b"\x02" + b[1:], "version"),
        (lambda b: b[:18] + b"\x03" + b[19:], "format"),
        (lambda b: b[:19] + b"\x00" + b[20:], "count of 0"),
        (lambda b: b[:16] + b"\x00\x00" + b[18:], "0 Hz"),
        (lambda b: b[:20] + b"\x00\x00\xc0\x7f" + b[24:], "scale"),  # NaN
        (lambda b: b[:18] + b"\x81" + b[19:], "channels"),  # 9 channels
    ],
)
def test_malformed_packets_raise_with_a_reason(mutate, reason):
    with pytest.raises(MalformedPacketError) as info:
        es.StreamPacket.from_bytes(mutate(bytes(_packet())))
    assert reason in str(info.value)


sample_formats = st.sampled_from(list(es.SampleFormat))


@st.composite
def packets(draw):
    fmt = draw(sample_formats)
    low, high = fmt.limits
    channels = draw(st.integers(1, 8))
    count = draw(st.integers(1, 40))
    values = draw(st.lists(st.integers(low, high), min_size=count * channels, max_size=count * channels))
    return es.StreamPacket(
        draw(st.integers(0, 0xFFFF)),
        draw(st.integers(0, 2**32 - 1)),
        draw(st.integers(0, 2**64 - 1)),
        draw(st.integers(1, 0xFFFF)),
        fmt,
        draw(st.floats(min_value=0.0009765625, max_value=1024.0, width=32)),
        np.array(values).reshape(count, channels),
        draw(st.integers(0, 255)),
    )


@settings(max_examples=200, deadline=None)
@given(packets())
def test_packet_round_trip(packet):
    data = bytes(packet)
    assert len(data) == packet.wire_size
    decoded = es.StreamPacket.from_bytes(data)
    assert decoded == packet
    assert bytes(decoded) == data


commands = st.one_of(
    st.builds(es.ControlCommand.start, st.integers(1, 0xFFFF), sample_formats),
    st.just(es.ControlCommand(es.ControlOp.STOP)),
    st.just(es.ControlCommand(es.ControlOp.GET_CONFIG)),
    st.builds(lambda t: es.ControlCommand(es.ControlOp.SET_TIME, unix_time_us=t), st.integers(0, 2**64 - 1)),
)
configs = st.builds(
    es.StreamConfig,
    st.integers(1, 0xFFFF),
    sample_formats,
    st.integers(1, 8),
    st.floats(min_value=0.0009765625, max_value=1024.0, width=32),
    st.booleans(),
    st.lists(st.integers(1, 0xFFFF), max_size=10).map(tuple),
)


@settings(max_examples=100, deadline=None)
@given(commands)
def test_command_round_trip(command):
    assert es.ControlCommand.from_bytes(bytes(command)) == command


@settings(max_examples=100, deadline=None)
@given(configs, st.sampled_from(list(es.ControlOp)), st.sampled_from(list(es.ControlStatus)))
def test_response_round_trip(config, op, status):
    wants = status is es.ControlStatus.OK and op in (es.ControlOp.START, es.ControlOp.GET_CONFIG)
    response = es.ControlResponse(op, status, config if wants else None)
    assert es.ControlResponse.from_bytes(bytes(response)) == response


def test_command_bytes_and_errors():
    assert bytes(es.ControlCommand.start(500, es.SampleFormat.INT24)) == bytes.fromhex("01 f4 01 02")
    assert bytes(es.ControlCommand(es.ControlOp.STOP)) == b"\x02"
    for bad in ("", "09", "01 f4 01", "02 00", "03 00", "01 f4 01 07"):
        with pytest.raises(MalformedPacketError):
            es.ControlCommand.from_bytes(bytes.fromhex(bad))
    refused = es.ControlResponse.from_bytes(bytes.fromhex("81 03"))
    assert refused.status is es.ControlStatus.UNSUPPORTED_RATE
    with pytest.raises(ControlPointError):
        refused.raise_for_status()
    for bad in ("", "01 00", "81", "81 09", "84 00", "82 00 fa"):
        with pytest.raises(MalformedPacketError):
            es.ControlResponse.from_bytes(bytes.fromhex(bad))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120))
def test_random_bytes_give_a_value_or_a_typed_error(data):
    for decode in (es.StreamPacket.from_bytes, es.ControlCommand.from_bytes, es.ControlResponse.from_bytes, es.StreamConfig.from_bytes):
        try:
            decode(data)
        except MalformedPacketError:
            pass


def _stream(counts, start_sequence=0, start_index=0):
    sequence, index = start_sequence, start_index
    for count in counts:
        yield _packet(sequence=sequence % 65536, first_sample_index=index % 2**32, samples=np.zeros(count, np.int32))
        sequence += 1
        index += count


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(1, 30), min_size=2, max_size=60),
    st.data(),
    st.integers(0, 65535),
    st.integers(0, 2**32 - 1),
)
def test_tracker_counts_every_lost_packet_and_sample_across_wraps(counts, data, seq0, index0):
    sent = list(_stream(counts, seq0, index0))
    kept = [0] + sorted(data.draw(st.sets(st.integers(1, len(sent) - 1))))
    tracker = es.StreamTracker()
    for i in kept:
        tracker.feed(sent[i])
    last = kept[-1]
    assert tracker.lost_packets == last + 1 - len(kept)
    assert tracker.missing_samples == sum(counts[i] for i in range(last + 1) if i not in kept)
    assert tracker.restarts == 0


def test_tracker_sees_device_side_gaps_and_restarts():
    tracker = es.StreamTracker()
    assert tracker.feed(_packet(sequence=0, first_sample_index=0)).first
    gap = tracker.feed(_packet(sequence=1, first_sample_index=25))  # 15 samples discarded in the device
    assert gap.lost_packets == 0 and gap.missing_samples == 15 and gap.gap
    restart = tracker.feed(_packet(sequence=0, first_sample_index=0, flags=es.PacketFlags.STREAM_START))
    assert restart.restarted and restart.lost_packets == 0
    behind = tracker.feed(_packet(sequence=5, first_sample_index=3))  # index went back: a restart whose first packet was lost
    assert behind.restarted
    assert tracker.restarts == 2 and tracker.missing_samples == 15


def test_max_samples_per_packet():
    assert es.max_samples_per_packet(247, es.SampleFormat.INT16) == 110
    assert es.max_samples_per_packet(517, es.SampleFormat.INT16) == 245
    with pytest.raises(MalformedPacketError):
        es.max_samples_per_packet(23, es.SampleFormat.INT16)
