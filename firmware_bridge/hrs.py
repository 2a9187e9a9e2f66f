"""Heart Rate service (0x180D) codec: the Heart Rate Measurement characteristic (0x2A37).

The fallback when a device streams no ECG: heart rate plus RR intervals (beat-to-beat
times), enough for HRV and rhythm screening. Pure bytes in, values out; no I/O.

Source: Bluetooth SIG *Heart Rate Service 1.0*, §3.1 (Heart Rate Measurement), and the
SIG assigned numbers. Layout of a 0x2A37 notification:

====== =====================================================================
flags  bit0 HR value is uint16 (else uint8); bit1 sensor contact detected;
       bit2 sensor contact feature supported; bit3 Energy Expended present;
       bit4 RR intervals present; bits 5-7 reserved
HR     uint8 or uint16 LE, beats per minute
EE     uint16 LE, kJ (only when bit3)
RR     uint16 LE each, in 1/1024 s, up to the end of the packet (only when bit4)
====== =====================================================================
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import MalformedPacketError

__all__ = [
    "BODY_SENSOR_LOCATION_UUID",
    "HRS_SERVICE_UUID",
    "HR_CONTROL_POINT_UUID",
    "HR_MEASUREMENT_UUID",
    "HeartRateMeasurement",
    "RR_UNITS_PER_SECOND",
]

HRS_SERVICE_UUID = "0000180d-0000-1000-8000-00805f9b34fb"
HR_MEASUREMENT_UUID = "00002a37-0000-1000-8000-00805f9b34fb"
BODY_SENSOR_LOCATION_UUID = "00002a38-0000-1000-8000-00805f9b34fb"
HR_CONTROL_POINT_UUID = "00002a39-0000-1000-8000-00805f9b34fb"

#: RR intervals are counted in 1/1024 s.
RR_UNITS_PER_SECOND = 1024

_CODEC = "Heart Rate Measurement"
_UINT16_HR = 0x01
_CONTACT_DETECTED = 0x02
_CONTACT_SUPPORTED = 0x04
_ENERGY = 0x08
_RR = 0x10


@dataclass(frozen=True)
class HeartRateMeasurement:
    """One Heart Rate Measurement notification.

    Attributes:
        heart_rate: beats per minute.
        rr_intervals: RR intervals in 1/1024 s, oldest first.
        sensor_contact: None when the device does not report contact, else whether the
            sensor touches the skin.
        energy_expended: kJ since the last reset, or None when absent.
        uint16_format: the HR value is sent as uint16 (required above 255 bpm).
    """

    heart_rate: int
    rr_intervals: tuple[int, ...] = ()
    sensor_contact: bool | None = None
    energy_expended: int | None = None
    uint16_format: bool = False

    def __post_init__(self) -> None:
        limit = 0xFFFF if self.uint16_format else 0xFF
        if not 0 <= self.heart_rate <= limit:
            raise MalformedPacketError(_CODEC, f"heart rate {self.heart_rate} does not fit {'uint16' if self.uint16_format else 'uint8'}")
        if self.energy_expended is not None and not 0 <= self.energy_expended <= 0xFFFF:
            raise MalformedPacketError(_CODEC, f"energy expended {self.energy_expended} does not fit uint16")
        rr = tuple(int(v) for v in self.rr_intervals)
        if any(not 0 <= v <= 0xFFFF for v in rr):
            raise MalformedPacketError(_CODEC, "an RR interval does not fit uint16")
        object.__setattr__(self, "rr_intervals", rr)

    @property
    def rr_intervals_s(self) -> tuple[float, ...]:
        """RR intervals in seconds."""
        return tuple(v / RR_UNITS_PER_SECOND for v in self.rr_intervals)

    @property
    def rr_intervals_ms(self) -> tuple[float, ...]:
        """RR intervals in milliseconds."""
        return tuple(v * 1000 / RR_UNITS_PER_SECOND for v in self.rr_intervals)

    @classmethod
    def from_bytes(cls, data: bytes) -> HeartRateMeasurement:
        """Decode a 0x2A37 notification.

        A packet with the RR flag set but no RR value decodes to an empty tuple.

        Raises:
            MalformedPacketError: empty, cut short before a flagged field, or an odd number
                of bytes left for the RR intervals.
        """
        data = bytes(data)
        if not data:
            raise MalformedPacketError(_CODEC, "empty packet", data)
        flags = data[0]
        pos = 1
        hr_size = 2 if flags & _UINT16_HR else 1
        if len(data) < pos + hr_size:
            raise MalformedPacketError(_CODEC, "the heart-rate value is missing", data)
        heart_rate = int.from_bytes(data[pos : pos + hr_size], "little")
        pos += hr_size
        energy = None
        if flags & _ENERGY:
            if len(data) < pos + 2:
                raise MalformedPacketError(_CODEC, "energy expended is flagged but missing", data)
            energy = int.from_bytes(data[pos : pos + 2], "little")
            pos += 2
        rest = data[pos:]
        if rest and not flags & _RR:
            raise MalformedPacketError(_CODEC, f"{len(rest)} trailing bytes without the RR flag", data)
        if len(rest) % 2:
            raise MalformedPacketError(_CODEC, f"{len(rest)} RR bytes is not a whole number of uint16 values", data)
        rr = tuple(int.from_bytes(rest[i : i + 2], "little") for i in range(0, len(rest), 2))
        contact = bool(flags & _CONTACT_DETECTED) if flags & _CONTACT_SUPPORTED else None
        return cls(heart_rate, rr, contact, energy, bool(flags & _UINT16_HR))

    def __bytes__(self) -> bytes:
        flags = _UINT16_HR if self.uint16_format else 0
        if self.sensor_contact is not None:
            flags |= _CONTACT_SUPPORTED | (_CONTACT_DETECTED if self.sensor_contact else 0)
        if self.energy_expended is not None:
            flags |= _ENERGY
        if self.rr_intervals:
            flags |= _RR
        out = bytearray((flags,))
        out += self.heart_rate.to_bytes(2 if self.uint16_format else 1, "little")
        if self.energy_expended is not None:
            out += self.energy_expended.to_bytes(2, "little")
        for value in self.rr_intervals:
            out += value.to_bytes(2, "little")
        return bytes(out)
