"""Polar Measurement Data (PMD) codecs: control point and ECG data frames.

The PMD service is how Polar devices (the H10 chest strap among them) stream raw
measurements. This module turns its bytes into values and back; it does no I/O.

Sources: Polar ``Polar_Measurement_Data_Specification.pdf`` and ``online_measurement.pdf``
(polarofficial/polar-ble-sdk), and the SDK's Android parsers (``PmdControlPointResponse.kt``,
``PmdSetting.kt``, ``PmdDataFrame.kt``, ``model/EcgData.kt``, ``PmdTimeStampUtils.kt``).

Wire facts used here:

* Control point (``FB005C81``; read, write, indicate). A read returns ``0F`` then a feature
  bitmap in which bit *n* (counted over the bytes, little end first) is set when
  measurement type *n* is supported. A command is ``[op][measurement][settings…]`` with
  ``measurement = recording_type << 7 | measurement_type``; a setting is
  ``[type][count][count values]``. Replies arrive as indications:
  ``F0 [op][measurement][status][more][parameters…]``.
* Data (``FB005C82``; notify). Each notification is one frame:
  ``[measurement type][u64 LE timestamp, ns since 2000-01-01T00:00:00Z, of the LAST
  sample][frame type][samples…]``. For ECG frame type 0 every sample is a 24-bit signed
  little-endian value in µV, so the sample count is ``(len - 10) / 3``, never assumed.
  Bit 7 of the frame type marks a delta-compressed frame, which Polar does not use for
  ECG; such frames are rejected with :class:`~firmware_bridge.errors.UnsupportedFrameError`.

Example:
    >>> encode_start_ecg().hex(" ")
    '02 00 00 01 82 00 01 01 0e 00'
    >>> r = ControlPointResponse.from_bytes(bytes.fromhex("f0020000 00"))
    >>> (r.op, r.ok)
    (<PmdOp.START: 2>, True)
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from .errors import ControlPointError, MalformedPacketError, UnsupportedFrameError

__all__ = [
    "CONTROL_POINT_FEATURES",
    "CONTROL_POINT_RESPONSE",
    "ECG_FRAME_HEADER_SIZE",
    "ECG_SAMPLE_SIZE",
    "EcgFrame",
    "ControlPointRequest",
    "ControlPointResponse",
    "FrameType",
    "MeasurementType",
    "OpenIntEnum",
    "PMD_CONTROL_UUID",
    "PMD_DATA_UUID",
    "PMD_SERVICE_UUID",
    "POLAR_EPOCH_OFFSET_NS",
    "PmdFeatures",
    "PmdOp",
    "PmdSettings",
    "PmdStatus",
    "SettingType",
    "encode_get_settings",
    "encode_start_ecg",
    "encode_stop_ecg",
    "polar_to_unix_ns",
    "unix_to_polar_ns",
]

PMD_SERVICE_UUID = "fb005c80-02e7-f387-1cad-8acd2d8df0c8"
PMD_CONTROL_UUID = "fb005c81-02e7-f387-1cad-8acd2d8df0c8"
PMD_DATA_UUID = "fb005c82-02e7-f387-1cad-8acd2d8df0c8"

#: Nanoseconds from 1970-01-01 to 2000-01-01 (UTC); add to a PMD timestamp for Unix time.
POLAR_EPOCH_OFFSET_NS = 946_684_800_000_000_000

CONTROL_POINT_FEATURES = 0x0F
CONTROL_POINT_RESPONSE = 0xF0
ECG_FRAME_HEADER_SIZE = 10
ECG_SAMPLE_SIZE = 3
_INT24_MIN, _INT24_MAX = -(1 << 23), (1 << 23) - 1
_U64_MAX = (1 << 64) - 1


class OpenIntEnum(enum.IntEnum):
    """An int enum that keeps values it does not know instead of failing.

    ``Status(42)`` gives a pseudo-member named ``Status[42]`` whose value is 42, so an
    unknown status or frame type from newer firmware can be shown and counted.
    """

    @classmethod
    def _missing_(cls, value: object):  # noqa: D102
        if not isinstance(value, int):
            return None
        member = int.__new__(cls, value)
        member._name_ = f"{cls.__name__}[{value}]"
        member._value_ = value
        return member


class MeasurementType(OpenIntEnum):
    """PMD measurement types (low 7 bits of the measurement byte; data frames use 6)."""

    ECG = 0
    PPG = 1
    ACC = 2
    PPI = 3
    GYRO = 5
    MAGNETOMETER = 6
    SKIN_TEMPERATURE = 7
    SDK_MODE = 9
    LOCATION = 10
    PRESSURE = 11
    TEMPERATURE = 12
    OFFLINE_RECORDING = 13
    OFFLINE_HR = 14


class PmdOp(OpenIntEnum):
    """Control-point op codes."""

    GET_SETTINGS = 1
    START = 2
    STOP = 3
    GET_SDK_MODE_SETTINGS = 4
    GET_STATUS = 5


class PmdStatus(OpenIntEnum):
    """Control-point response status codes."""

    SUCCESS = 0
    INVALID_OP_CODE = 1
    INVALID_MEASUREMENT_TYPE = 2
    NOT_SUPPORTED = 3
    INVALID_LENGTH = 4
    INVALID_PARAMETER = 5
    ALREADY_IN_STATE = 6
    INVALID_RESOLUTION = 7
    INVALID_SAMPLE_RATE = 8
    INVALID_RANGE = 9
    INVALID_MTU = 10
    INVALID_NUMBER_OF_CHANNELS = 11
    INVALID_STATE = 12
    DEVICE_IN_CHARGER = 13
    DISK_FULL = 14


class SettingType(OpenIntEnum):
    """Setting types of a PMD command or settings response."""

    SAMPLE_RATE = 0
    RESOLUTION = 1
    RANGE = 2
    RANGE_MILLIUNIT = 3
    CHANNELS = 4
    FACTOR = 5
    SECURITY = 6
    DERIVED_MEASUREMENT_METHOD = 7
    SOURCE_MEASUREMENT_TYPE = 8
    SOURCE_SAMPLE_RATE = 9


class FrameType(OpenIntEnum):
    """Data frame types (low 7 bits of byte 9). The H10 sends ECG as type 0."""

    TYPE_0 = 0
    TYPE_1 = 1
    TYPE_2 = 2
    TYPE_3 = 3


#: Width in bytes of one value of each setting type (the SDK's ``PmdSetting`` table).
SETTING_SIZES: Mapping[int, int] = MappingProxyType({0: 2, 1: 2, 2: 2, 3: 4, 4: 1, 5: 4, 6: 16, 7: 1, 8: 1, 9: 2})


def polar_to_unix_ns(timestamp_ns: int) -> int:
    """Convert a PMD timestamp (ns since 2000-01-01 UTC) to ns since the Unix epoch."""
    return timestamp_ns + POLAR_EPOCH_OFFSET_NS


def unix_to_polar_ns(unix_ns: int) -> int:
    """Convert ns since the Unix epoch to a PMD timestamp (ns since 2000-01-01 UTC)."""
    return unix_ns - POLAR_EPOCH_OFFSET_NS


def _encode_value(kind: int, value: int | float | bytes) -> bytes:
    size = SETTING_SIZES[kind]
    if kind == SettingType.FACTOR:
        return struct.pack("<f", float(value))
    if kind == SettingType.SECURITY:
        raw = bytes(value)  # type: ignore[arg-type]
        if len(raw) != size:
            raise MalformedPacketError("PMD settings", f"a SECURITY value must be {size} bytes, not {len(raw)}")
        return raw
    if not isinstance(value, (int, np.integer)) or not 0 <= int(value) < 1 << (8 * size):
        raise MalformedPacketError("PMD settings", f"{SettingType(kind).name} value {value!r} does not fit {size} bytes")
    return int(value).to_bytes(size, "little")


def _decode_value(kind: int, raw: bytes) -> int | float | bytes:
    if kind == SettingType.FACTOR:
        return struct.unpack("<f", raw)[0]
    if kind == SettingType.SECURITY:
        return bytes(raw)
    return int.from_bytes(raw, "little")


@dataclass(frozen=True)
class PmdSettings:
    """A list of PMD settings: ``{SettingType: (value, …)}``, in wire order.

    A start command carries one value per setting; a settings response lists every value
    the device supports. ``FACTOR`` values are float32, ``SECURITY`` values 16 raw bytes,
    the rest unsigned integers of the width in :data:`SETTING_SIZES`.
    """

    values: Mapping[SettingType, tuple] = field(default_factory=dict)

    def __post_init__(self) -> None:
        clean = {}
        for kind, values in dict(self.values).items():
            kind = SettingType(kind)
            if kind not in SETTING_SIZES:
                raise MalformedPacketError("PMD settings", f"unknown setting type {int(kind)} (its width is not known)")
            values = tuple(values) if isinstance(values, (tuple, list)) else (values,)
            if not 1 <= len(values) <= 255:
                raise MalformedPacketError("PMD settings", f"{kind.name} needs 1..255 values, got {len(values)}")
            for value in values:
                _encode_value(kind, value)  # range check
            clean[kind] = values
        object.__setattr__(self, "values", MappingProxyType(clean))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PmdSettings) and dict(self.values) == dict(other.values)

    def __hash__(self) -> int:
        return hash(tuple(self.values.items()))

    def __getitem__(self, kind: SettingType) -> tuple:
        return self.values[kind]

    def get(self, kind: SettingType, default: tuple = ()) -> tuple:
        """The values of one setting type, or ``default``."""
        return self.values.get(kind, default)

    @classmethod
    def from_bytes(cls, data: bytes) -> PmdSettings:
        """Decode a settings list.

        Raises:
            MalformedPacketError: an unknown setting type, a zero count, a repeated type
                or a list that runs past the end.
        """
        data = bytes(data)
        out: dict[SettingType, tuple] = {}
        pos = 0
        while pos < len(data):
            if pos + 2 > len(data):
                raise MalformedPacketError("PMD settings", f"a setting header at offset {pos} is cut short", data)
            kind, count = SettingType(data[pos]), data[pos + 1]
            if kind not in SETTING_SIZES:
                raise MalformedPacketError("PMD settings", f"unknown setting type {int(kind)} at offset {pos}", data)
            if count == 0:
                raise MalformedPacketError("PMD settings", f"{kind.name} has a count of 0", data)
            if kind in out:
                raise MalformedPacketError("PMD settings", f"{kind.name} appears twice", data)
            size = SETTING_SIZES[kind]
            end = pos + 2 + size * count
            if end > len(data):
                raise MalformedPacketError("PMD settings", f"{kind.name} declares {count} values but the data ends", data)
            out[kind] = tuple(_decode_value(kind, data[p : p + size]) for p in range(pos + 2, end, size))
            pos = end
        return cls(out)

    def __bytes__(self) -> bytes:
        parts = []
        for kind, values in self.values.items():
            parts.append(bytes((int(kind), len(values))))
            parts.extend(_encode_value(kind, v) for v in values)
        return b"".join(parts)


def _measurement_byte(measurement: int, recording_type: int) -> int:
    if not 0 <= int(measurement) < 0x80 or recording_type not in (0, 1):
        raise MalformedPacketError("PMD command", f"measurement {measurement} / recording type {recording_type} out of range")
    return (recording_type << 7) | int(measurement)


@dataclass(frozen=True)
class ControlPointRequest:
    """A command written to the PMD control point.

    Attributes:
        op: the op code.
        measurement: the measurement type.
        recording_type: 0 for an online stream, 1 for an offline recording.
        settings: settings sent with the command (start only, usually).
    """

    op: PmdOp
    measurement: MeasurementType = MeasurementType.ECG
    recording_type: int = 0
    settings: PmdSettings = field(default_factory=PmdSettings)

    def __post_init__(self) -> None:
        if not 0 <= int(self.op) <= 0xFF:
            raise MalformedPacketError("PMD command", f"op code {self.op} out of range")
        _measurement_byte(self.measurement, self.recording_type)
        object.__setattr__(self, "op", PmdOp(self.op))
        object.__setattr__(self, "measurement", MeasurementType(self.measurement))

    @classmethod
    def from_bytes(cls, data: bytes) -> ControlPointRequest:
        """Decode a command as a device receives it.

        Raises:
            MalformedPacketError: fewer than 2 bytes or malformed settings.
        """
        data = bytes(data)
        if len(data) < 2:
            raise MalformedPacketError("PMD command", "a command needs at least an op code and a measurement byte", data)
        return cls(PmdOp(data[0]), MeasurementType(data[1] & 0x7F), data[1] >> 7, PmdSettings.from_bytes(data[2:]))

    def __bytes__(self) -> bytes:
        return bytes((int(self.op), _measurement_byte(self.measurement, self.recording_type))) + bytes(self.settings)


def encode_start_ecg(rate: int = 130, resolution: int = 14) -> bytes:
    """The command that starts an online ECG stream.

    Args:
        rate: sample rate in Hz (the H10 supports only 130).
        resolution: sample resolution in bits (the H10 supports only 14).

    Returns:
        ``02 00 00 01 <rate u16> 01 01 <resolution u16>``.
    """
    settings = PmdSettings({SettingType.SAMPLE_RATE: (rate,), SettingType.RESOLUTION: (resolution,)})
    return bytes(ControlPointRequest(PmdOp.START, MeasurementType.ECG, 0, settings))


def encode_stop_ecg() -> bytes:
    """The command that stops the online ECG stream: ``03 00``."""
    return bytes(ControlPointRequest(PmdOp.STOP, MeasurementType.ECG))


def encode_get_settings(measurement: MeasurementType | int = MeasurementType.ECG) -> bytes:
    """The command that asks which settings a measurement supports: ``01 <type>``."""
    return bytes(ControlPointRequest(PmdOp.GET_SETTINGS, MeasurementType(measurement)))


@dataclass(frozen=True)
class ControlPointResponse:
    """A control-point reply (an indication starting with ``F0``).

    Attributes:
        op: the op code answered.
        measurement: the measurement type answered.
        status: the device's status; unknown values are kept.
        more: the parameters continue in a further indication.
        parameters: the raw parameter bytes after the 5-byte header.
        recording_type: bit 7 of the measurement byte.
    """

    op: PmdOp
    measurement: MeasurementType
    status: PmdStatus = PmdStatus.SUCCESS
    more: bool = False
    parameters: bytes = b""
    recording_type: int = 0

    def __post_init__(self) -> None:
        if not 0 <= int(self.op) <= 0xFF or not 0 <= int(self.status) <= 0xFF:
            raise MalformedPacketError("PMD control point response", "op code and status must be bytes")
        _measurement_byte(self.measurement, self.recording_type)
        object.__setattr__(self, "op", PmdOp(self.op))
        object.__setattr__(self, "measurement", MeasurementType(self.measurement))
        object.__setattr__(self, "status", PmdStatus(self.status))
        object.__setattr__(self, "parameters", bytes(self.parameters))

    @property
    def ok(self) -> bool:
        """True when the status is SUCCESS."""
        return self.status == PmdStatus.SUCCESS

    def settings(self) -> PmdSettings:
        """The parameters decoded as a settings list (the reply to GET_SETTINGS).

        Raises:
            MalformedPacketError: the parameters are not a valid settings list.
        """
        return PmdSettings.from_bytes(self.parameters)

    def raise_for_status(self) -> ControlPointResponse:
        """Return self when the status is SUCCESS.

        Raises:
            ControlPointError: with the op and status, otherwise.
        """
        if not self.ok:
            raise ControlPointError(self.op, self.status, self)
        return self

    @classmethod
    def from_bytes(cls, data: bytes) -> ControlPointResponse:
        """Decode a control-point indication.

        A 4-byte reply (no "more" byte), which some firmware sends for errors, is accepted.

        Raises:
            MalformedPacketError: fewer than 4 bytes, or the first byte is not ``F0``.
        """
        data = bytes(data)
        if len(data) < 4:
            raise MalformedPacketError("PMD control point response", "needs at least 4 bytes", data)
        if data[0] != CONTROL_POINT_RESPONSE:
            raise MalformedPacketError(
                "PMD control point response", f"first byte is 0x{data[0]:02X}, expected 0x{CONTROL_POINT_RESPONSE:02X}", data
            )
        more = len(data) > 4 and data[4] != 0
        return cls(PmdOp(data[1]), MeasurementType(data[2] & 0x7F), PmdStatus(data[3]), more, data[5:], data[2] >> 7)

    def __bytes__(self) -> bytes:
        head = (
            CONTROL_POINT_RESPONSE,
            int(self.op),
            _measurement_byte(self.measurement, self.recording_type),
            int(self.status),
            int(self.more),
        )
        return bytes(head) + self.parameters


@dataclass(frozen=True)
class PmdFeatures:
    """The feature bitmap read from the control point: which measurements exist.

    Attributes:
        measurements: the supported measurement types.
        size: the bitmap's length in bytes (the H10 sends 2).
    """

    measurements: frozenset[MeasurementType] = frozenset()
    size: int = 2

    def __post_init__(self) -> None:
        kinds = frozenset(MeasurementType(m) for m in self.measurements)
        if not 1 <= self.size <= 32:
            raise MalformedPacketError("PMD features", f"bitmap size {self.size} out of range 1..32")
        if any(not 0 <= int(m) < 8 * self.size for m in kinds):
            raise MalformedPacketError("PMD features", f"a measurement type does not fit a {self.size}-byte bitmap")
        object.__setattr__(self, "measurements", kinds)

    def supports(self, measurement: MeasurementType | int) -> bool:
        """True when the device lists this measurement type."""
        return MeasurementType(measurement) in self.measurements

    @classmethod
    def from_bytes(cls, data: bytes) -> PmdFeatures:
        """Decode a control-point read: ``0F`` then at least one bitmap byte.

        Raises:
            MalformedPacketError: too short, or the first byte is not ``0F``.
        """
        data = bytes(data)
        if len(data) < 2 or len(data) > 33:
            raise MalformedPacketError("PMD features", "expected 0x0F and 1..32 bitmap bytes", data)
        if data[0] != CONTROL_POINT_FEATURES:
            raise MalformedPacketError("PMD features", f"first byte is 0x{data[0]:02X}, expected 0x0F", data)
        bits = int.from_bytes(data[1:], "little")
        return cls(frozenset(MeasurementType(i) for i in range(8 * (len(data) - 1)) if bits >> i & 1), len(data) - 1)

    def __bytes__(self) -> bytes:
        bits = sum(1 << int(m) for m in self.measurements)
        return bytes((CONTROL_POINT_FEATURES,)) + bits.to_bytes(self.size, "little")


def _pack_int24(samples: np.ndarray) -> bytes:
    as_u32 = samples.astype("<i4").view("<u4")
    raw = as_u32.view(np.uint8).reshape(-1, 4)[:, :3]
    return raw.tobytes()


def _unpack_int24(data: bytes, offset: int, count: int) -> np.ndarray:
    raw = np.frombuffer(data, np.uint8, count=3 * count, offset=offset).reshape(count, 3)
    padded = np.zeros((count, 4), np.uint8)
    padded[:, 1:] = raw
    out = padded.view("<i4").reshape(count) >> 8
    out.flags.writeable = False
    return out


@dataclass(frozen=True, eq=False)
class EcgFrame:
    """One PMD ECG data frame (frame type 0: 24-bit signed µV samples).

    Attributes:
        timestamp_ns: device clock, ns since 2000-01-01T00:00:00Z, of the LAST sample.
        samples_uv: the samples in µV, a read-only ``np.int32`` array.
        frame_type: the frame type byte (0 for the H10).
        measurement_byte: byte 0 as sent; its low 6 bits are the measurement type (0).
    """

    timestamp_ns: int
    samples_uv: np.ndarray
    frame_type: FrameType = FrameType.TYPE_0
    measurement_byte: int = 0

    def __post_init__(self) -> None:
        samples = np.asarray(self.samples_uv)
        if samples.ndim != 1 or samples.size == 0:
            raise MalformedPacketError("PMD ECG frame", "a frame needs a 1-D array of at least one sample")
        if samples.dtype.kind not in "iu":
            raise MalformedPacketError("PMD ECG frame", f"samples must be integers in µV, not {samples.dtype}")
        if samples.min() < _INT24_MIN or samples.max() > _INT24_MAX:
            raise MalformedPacketError("PMD ECG frame", "a sample does not fit 24 signed bits")
        if not 0 <= int(self.timestamp_ns) <= _U64_MAX:
            raise MalformedPacketError("PMD ECG frame", f"timestamp {self.timestamp_ns} does not fit 64 unsigned bits")
        if int(self.frame_type) != FrameType.TYPE_0:
            raise MalformedPacketError("PMD ECG frame", f"only frame type 0 can be encoded, not {int(self.frame_type)}")
        if not 0 <= self.measurement_byte <= 0xFF or self.measurement_byte & 0x3F != MeasurementType.ECG:
            raise MalformedPacketError("PMD ECG frame", f"measurement byte 0x{self.measurement_byte:02X} is not ECG")
        frozen = samples.astype(np.int32)
        frozen.flags.writeable = False
        object.__setattr__(self, "samples_uv", frozen)
        object.__setattr__(self, "timestamp_ns", int(self.timestamp_ns))
        object.__setattr__(self, "frame_type", FrameType(self.frame_type))

    @property
    def unix_timestamp_ns(self) -> int:
        """The last sample's time in ns since the Unix epoch (device clock)."""
        return polar_to_unix_ns(self.timestamp_ns)

    def __len__(self) -> int:
        return int(self.samples_uv.size)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EcgFrame):
            return NotImplemented
        return (
            self.timestamp_ns == other.timestamp_ns
            and self.frame_type == other.frame_type
            and self.measurement_byte == other.measurement_byte
            and np.array_equal(self.samples_uv, other.samples_uv)
        )

    __hash__ = None  # type: ignore[assignment]

    def sample_times_ns(self, previous_timestamp_ns: int | None, sampling_rate_hz: float = 130.0) -> np.ndarray:
        """Device-clock time of every sample, as the Polar SDK assigns them.

        With the previous frame's timestamp the samples are spread evenly over
        ``(previous, this]``; for the first frame they step back from this frame's
        timestamp at ``1 / sampling_rate_hz``.

        Args:
            previous_timestamp_ns: the previous frame's ``timestamp_ns`` or None.
            sampling_rate_hz: the nominal rate, used only for the first frame.

        Returns:
            int64 ns since 2000-01-01, one per sample, the last equal to ``timestamp_ns``.
        """
        n = len(self)
        if previous_timestamp_ns is None or previous_timestamp_ns >= self.timestamp_ns:
            step = 1e9 / sampling_rate_hz
        else:
            step = (self.timestamp_ns - previous_timestamp_ns) / n
        offsets = np.round(np.arange(n - 1, -1, -1) * step).astype(np.int64)
        return np.int64(self.timestamp_ns) - offsets

    @classmethod
    def from_bytes(cls, data: bytes) -> EcgFrame:
        """Decode one notification from the PMD data characteristic.

        Raises:
            UnsupportedFrameError: a valid frame that is not ECG, is compressed, or has a
                frame type other than 0.
            MalformedPacketError: shorter than a header plus one sample, or a length that
                is not ``10 + 3·n``.
        """
        data = bytes(data)
        if len(data) < ECG_FRAME_HEADER_SIZE + ECG_SAMPLE_SIZE:
            raise MalformedPacketError("PMD ECG frame", "shorter than a 10-byte header plus one sample", data)
        measurement, frame_type = data[0], data[9]
        if measurement & 0x3F != MeasurementType.ECG:
            raise UnsupportedFrameError(
                "PMD ECG frame", f"measurement type {measurement & 0x3F} is not ECG", data, measurement & 0x3F, frame_type
            )
        if frame_type != FrameType.TYPE_0:
            what = "a compressed (delta) frame" if frame_type & 0x80 else f"frame type {frame_type}"
            raise UnsupportedFrameError("PMD ECG frame", f"{what} is not supported for ECG", data, 0, frame_type)
        payload = len(data) - ECG_FRAME_HEADER_SIZE
        if payload % ECG_SAMPLE_SIZE:
            raise MalformedPacketError("PMD ECG frame", f"{payload} sample bytes is not a whole number of 3-byte samples", data)
        frame = object.__new__(cls)
        object.__setattr__(frame, "timestamp_ns", int.from_bytes(data[1:9], "little"))
        object.__setattr__(frame, "samples_uv", _unpack_int24(data, ECG_FRAME_HEADER_SIZE, payload // ECG_SAMPLE_SIZE))
        object.__setattr__(frame, "frame_type", FrameType.TYPE_0)
        object.__setattr__(frame, "measurement_byte", measurement)
        return frame

    def __bytes__(self) -> bytes:
        head = bytes((self.measurement_byte,)) + self.timestamp_ns.to_bytes(8, "little") + bytes((int(self.frame_type),))
        return head + _pack_int24(self.samples_uv)

