"""Heart Rate Measurement codec (Bluetooth Heart Rate Service 1.0, 0x2A37)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_bridge.errors import MalformedPacketError
from firmware_bridge.hrs import HeartRateMeasurement


def test_uint8_heart_rate_with_rr_intervals():
    m = HeartRateMeasurement.from_bytes(bytes.fromhex("10 48 00 04 00 02"))  # 72 bpm, RR 1024 and 512
    assert m.heart_rate == 72
    assert m.rr_intervals == (1024, 512)
    assert m.rr_intervals_s == (1.0, 0.5)
    assert m.sensor_contact is None and m.energy_expended is None


def test_uint16_contact_and_energy():
    m = HeartRateMeasurement.from_bytes(bytes.fromhex("0F 2C 01 10 27"))
    assert m.heart_rate == 300 and m.uint16_format
    assert m.sensor_contact is True
    assert m.energy_expended == 10_000
    assert HeartRateMeasurement.from_bytes(bytes.fromhex("04 3C")).sensor_contact is False


@pytest.mark.parametrize(
    "data",
    ["", "01 48", "08 48 00", "10 48 00", "00 48 00", "10 48 00 04 00"],
)
def test_malformed_measurements_raise(data):
    with pytest.raises(MalformedPacketError):
        HeartRateMeasurement.from_bytes(bytes.fromhex(data))


@pytest.mark.parametrize(
    "uint16, contact, energy, rr",
    list(itertools.product([False, True], [None, False, True], [None, 0, 65535], [(), (800,), (1, 65535, 700)])),
)
def test_every_combination_of_optional_fields_round_trips(uint16, contact, energy, rr):
    m = HeartRateMeasurement(200, rr, contact, energy, uint16)
    assert HeartRateMeasurement.from_bytes(bytes(m)) == m


@settings(max_examples=200, deadline=None)
@given(
    st.booleans().flatmap(lambda wide: st.tuples(st.just(wide), st.integers(0, 0xFFFF if wide else 0xFF))),
    st.none() | st.booleans(),
    st.none() | st.integers(0, 0xFFFF),
    st.lists(st.integers(0, 0xFFFF), max_size=20).map(tuple),
)
def test_round_trip(hr, contact, energy, rr):
    wide, heart_rate = hr
    m = HeartRateMeasurement(heart_rate, rr, contact, energy, wide)
    assert HeartRateMeasurement.from_bytes(bytes(m)) == m


def test_values_the_wire_cannot_carry_are_refused():
    with pytest.raises(MalformedPacketError):
        HeartRateMeasurement(256)
    with pytest.raises(MalformedPacketError):
        HeartRateMeasurement(60, (70_000,))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=40))
def test_random_bytes_give_a_value_or_a_typed_error(data):
    try:
        HeartRateMeasurement.from_bytes(data)
    except MalformedPacketError:
        pass
