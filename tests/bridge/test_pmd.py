"""Polar PMD codecs: golden bytes from Polar's documents, round trips, malformed input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_bridge import pmd
from firmware_bridge.errors import BridgeError, ControlPointError, MalformedPacketError, UnsupportedFrameError

int24 = st.integers(-(1 << 23), (1 << 23) - 1)
u64 = st.integers(0, (1 << 64) - 1)


def test_start_stop_settings_commands_match_the_documented_bytes():
    assert pmd.encode_start_ecg() == bytes.fromhex("02 00 00 01 82 00 01 01 0E 00")
    assert pmd.encode_stop_ecg() == bytes.fromhex("03 00")
    assert pmd.encode_get_settings(pmd.MeasurementType.ECG) == bytes.fromhex("01 00")
    assert pmd.encode_get_settings(pmd.MeasurementType.ACC) == bytes.fromhex("01 02")


def test_h10_settings_reply_decodes_to_130_hz_14_bit():
    reply = pmd.ControlPointResponse.from_bytes(bytes.fromhex("F0 01 00 00 00  00 01 82 00  01 01 0E 00"))
    assert reply.op is pmd.PmdOp.GET_SETTINGS and reply.measurement is pmd.MeasurementType.ECG
    assert reply.ok and not reply.more
    settings = reply.settings()
    assert settings[pmd.SettingType.SAMPLE_RATE] == (130,)
    assert settings[pmd.SettingType.RESOLUTION] == (14,)


def test_error_status_is_kept_and_raised_with_its_data():
    reply = pmd.ControlPointResponse.from_bytes(bytes.fromhex("F0 02 00 08 00"))
    assert not reply.ok and reply.status is pmd.PmdStatus.INVALID_SAMPLE_RATE
    with pytest.raises(ControlPointError) as info:
        reply.raise_for_status()
    assert info.value.status == 8 and info.value.op == pmd.PmdOp.START
    assert "INVALID_SAMPLE_RATE" in str(info.value)


def test_unknown_status_and_op_are_kept_not_fatal():
    reply = pmd.ControlPointResponse.from_bytes(bytes.fromhex("F0 2A 00 63"))
    assert int(reply.op) == 0x2A and int(reply.status) == 0x63 and not reply.ok
    assert "63" in reply.status.name or "99" in reply.status.name


def test_feature_bitmap_of_an_h10():
    features = pmd.PmdFeatures.from_bytes(bytes.fromhex("0F 05 00"))
    assert features.supports(pmd.MeasurementType.ECG) and features.supports(pmd.MeasurementType.ACC)
    assert not features.supports(pmd.MeasurementType.PPG)
    assert bytes(features) == bytes.fromhex("0F 05 00")


def test_ecg_frame_layout_timestamp_and_sign_extension():
    frame = pmd.EcgFrame(123_456_789, np.array([-1, 0, 1, -(1 << 23), (1 << 23) - 1, 1500]))
    data = bytes(frame)
    assert data[0] == 0x00 and data[9] == 0x00
    assert int.from_bytes(data[1:9], "little") == 123_456_789
    assert data[10:13] == b"\xff\xff\xff"
    decoded = pmd.EcgFrame.from_bytes(data)
    assert decoded.samples_uv.tolist() == [-1, 0, 1, -(1 << 23), (1 << 23) - 1, 1500]
    assert decoded.samples_uv.dtype == np.int32
    assert decoded.unix_timestamp_ns == 123_456_789 + pmd.POLAR_EPOCH_OFFSET_NS


def test_sample_count_comes_from_the_frame_length():
    for n in (1, 2, 73, 168):
        frame = pmd.EcgFrame.from_bytes(bytes(10) + bytes(3 * n))
        assert len(frame) == n


def test_sample_times_follow_the_sdk_rule():
    frame = pmd.EcgFrame(10_000_000_000, np.zeros(4, np.int32))
    times = frame.sample_times_ns(previous_timestamp_ns=9_000_000_000)
    assert times.tolist() == [9_250_000_000, 9_500_000_000, 9_750_000_000, 10_000_000_000]
    first = frame.sample_times_ns(None, sampling_rate_hz=100)
    assert first.tolist() == [9_970_000_000, 9_980_000_000, 9_990_000_000, 10_000_000_000]


@pytest.mark.parametrize(
    "data, error",
    [
        (b"", MalformedPacketError),
        (bytes(12), MalformedPacketError),  # header + 2 bytes: less than one sample
        (bytes(10) + bytes(4), MalformedPacketError),  # not a multiple of 3
        (bytes([0x02]) + bytes(9) + bytes(6), UnsupportedFrameError),  # ACC, not ECG
        (bytes(9) + bytes([0x80]) + bytes(6), UnsupportedFrameError),  # compressed
        (bytes(9) + bytes([0x01]) + bytes(6), UnsupportedFrameError),  # frame type 1
    ],
)
def test_malformed_frames_raise_typed_errors(data, error):
    with pytest.raises(error) as info:
        pmd.EcgFrame.from_bytes(data)
    assert isinstance(info.value, BridgeError) and isinstance(info.value, ValueError)
    assert info.value.codec == "PMD ECG frame"


def test_unsupported_frame_error_carries_the_types():
    with pytest.raises(UnsupportedFrameError) as info:
        pmd.EcgFrame.from_bytes(bytes(9) + bytes([0x80]) + bytes(6))
    assert info.value.frame_type == 0x80 and info.value.measurement_type == 0


@pytest.mark.parametrize(
    "data",
    ["", "F0 01 00", "0F 02 00 00 00", "F0"],
)
def test_malformed_responses_raise(data):
    with pytest.raises(MalformedPacketError):
        pmd.ControlPointResponse.from_bytes(bytes.fromhex(data))


@pytest.mark.parametrize(
    "data",
    [
        "00 01 82",  # rate declared, value cut short
        "00 02 82 00",  # two rates declared, one present
        "00 00",  # zero count
        "0B 01 00",  # unknown setting type
        "00 01 82 00 00 01 82 00",  # repeated type
        "00",  # half a setting header
    ],
)
def test_malformed_settings_raise(data):
    with pytest.raises(MalformedPacketError):
        pmd.PmdSettings.from_bytes(bytes.fromhex(data))


@pytest.mark.parametrize("data", ["", "F0 05", "0F", "0F" + "00" * 33])
def test_malformed_features_raise(data):
    with pytest.raises(MalformedPacketError):
        pmd.PmdFeatures.from_bytes(bytes.fromhex(data))


def test_values_the_wire_cannot_carry_are_refused():
    with pytest.raises(MalformedPacketError):
        pmd.EcgFrame(0, np.array([1 << 23]))
    with pytest.raises(MalformedPacketError):
        pmd.EcgFrame(-1, np.array([0]))
    with pytest.raises(MalformedPacketError):
        pmd.encode_start_ecg(rate=70_000)


@settings(max_examples=200, deadline=None)
@given(u64, st.lists(int24, min_size=1, max_size=170), st.integers(0, 3))
def test_ecg_frame_round_trip(timestamp, samples, upper_bits):
    frame = pmd.EcgFrame(timestamp, np.array(samples), measurement_byte=upper_bits << 6)
    data = bytes(frame)
    assert len(data) == 10 + 3 * len(samples)
    assert pmd.EcgFrame.from_bytes(data) == frame
    assert bytes(pmd.EcgFrame.from_bytes(data)) == data


setting_values = {
    pmd.SettingType.SAMPLE_RATE: st.integers(0, 0xFFFF),
    pmd.SettingType.RESOLUTION: st.integers(0, 0xFFFF),
    pmd.SettingType.RANGE: st.integers(0, 0xFFFF),
    pmd.SettingType.RANGE_MILLIUNIT: st.integers(0, 0xFFFFFFFF),
    pmd.SettingType.CHANNELS: st.integers(0, 0xFF),
    pmd.SettingType.FACTOR: st.floats(width=32, allow_nan=False),
    pmd.SettingType.SECURITY: st.binary(min_size=16, max_size=16),
}
settings_strategy = st.dictionaries(
    st.sampled_from(sorted(setting_values)), st.just(None), max_size=len(setting_values)
).flatmap(
    lambda keys: st.fixed_dictionaries({k: st.lists(setting_values[k], min_size=1, max_size=4).map(tuple) for k in keys})
)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(list(pmd.PmdOp)) | st.integers(0, 255),
    st.integers(0, 127),
    st.integers(0, 255),
    st.booleans(),
    settings_strategy,
    st.integers(0, 1),
)
def test_control_point_response_round_trip(op, measurement, status, more, values, recording):
    params = bytes(pmd.PmdSettings(values))
    response = pmd.ControlPointResponse(op, measurement, status, more, params, recording)
    decoded = pmd.ControlPointResponse.from_bytes(bytes(response))
    assert decoded == response
    assert decoded.settings() == pmd.PmdSettings(values)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(list(pmd.PmdOp)), st.integers(0, 127), st.integers(0, 1), settings_strategy)
def test_control_point_request_round_trip(op, measurement, recording, values):
    request = pmd.ControlPointRequest(op, measurement, recording, pmd.PmdSettings(values))
    assert pmd.ControlPointRequest.from_bytes(bytes(request)) == request


@settings(max_examples=100, deadline=None)
@given(st.frozensets(st.integers(0, 15)))
def test_features_round_trip(kinds):
    features = pmd.PmdFeatures(frozenset(pmd.MeasurementType(k) for k in kinds))
    assert pmd.PmdFeatures.from_bytes(bytes(features)) == features


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_escape_as_untyped_errors(data):
    for decode in (
        pmd.EcgFrame.from_bytes,
        pmd.ControlPointResponse.from_bytes,
        pmd.ControlPointRequest.from_bytes,
        pmd.PmdFeatures.from_bytes,
        pmd.PmdSettings.from_bytes,
    ):
        try:
            decode(data)
        except MalformedPacketError:
            pass
