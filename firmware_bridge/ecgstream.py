"""The open ECG stream profile: codec for custom firmware (ADS1292/MAX30003-class boards).

The specification is ``ecgstream.md`` next to this file; this module implements it byte for
byte and does no I/O. In short:

* service ``9aa40001-1cab-4b58-9228-7b28c20897e6`` with a data characteristic
  ``…0002`` (notify) and a control characteristic ``…0003`` (write, indicate);
* every data notification is a :class:`StreamPacket`: a 24-byte little-endian header
  (version, flags, 16-bit sequence, 32-bit first-sample index, 64-bit first-sample
  timestamp in µs, rate, format, channels, samples per channel, µV scale) and then the
  samples, interleaved by channel, int16 or int24;
* the control characteristic takes :class:`ControlCommand` writes and answers each with a
  :class:`ControlResponse` indication;
* :class:`StreamTracker` is the reference receiver logic that turns the sequence and
  sample-index fields into counts of lost packets and missing samples.
"""

from __future__ import annotations

import enum
import math
import struct
from dataclasses import dataclass, field

import numpy as np

from .errors import ControlPointError, MalformedPacketError

__all__ = [
    "ECGSTREAM_CONTROL_UUID",
    "ECGSTREAM_DATA_UUID",
    "ECGSTREAM_SERVICE_UUID",
    "HEADER_SIZE",
    "INDEX_MODULO",
    "PROTOCOL_VERSION",
    "SEQUENCE_MODULO",
    "Continuity",
    "ControlCommand",
    "ControlOp",
    "ControlResponse",
    "ControlStatus",
    "PacketFlags",
    "SampleFormat",
    "StreamConfig",
    "StreamPacket",
    "StreamTracker",
]

ECGSTREAM_SERVICE_UUID = "9aa40001-1cab-4b58-9228-7b28c20897e6"
ECGSTREAM_DATA_UUID = "9aa40002-1cab-4b58-9228-7b28c20897e6"
ECGSTREAM_CONTROL_UUID = "9aa40003-1cab-4b58-9228-7b28c20897e6"

PROTOCOL_VERSION = 1
HEADER_SIZE = 24
#: The sequence number counts packets modulo 2**16.
SEQUENCE_MODULO = 1 << 16
#: The first-sample index counts samples (per channel) modulo 2**32.
INDEX_MODULO = 1 << 32
MAX_CHANNELS = 8

_HEADER = struct.Struct("<BBHIQHBBf")
assert _HEADER.size == HEADER_SIZE
_PACKET = "ecgstream packet"
_COMMAND = "ecgstream command"
_RESPONSE = "ecgstream response"


class SampleFormat(enum.IntEnum):
    """How one sample is stored: signed little-endian integers, times ``scale_uv``."""

    INT16 = 1
    INT24 = 2

    @property
    def size(self) -> int:
        """Bytes per sample."""
        return 2 if self is SampleFormat.INT16 else 3

    @property
    def limits(self) -> tuple[int, int]:
        """The smallest and largest raw value."""
        bits = 8 * self.size
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


class PacketFlags(enum.IntFlag):
    """Bits of the packet's flags byte. Bits 4-7 are reserved: sent as 0, ignored on receipt."""

    LEAD_OFF = 0x01
    SATURATED = 0x02
    TIME_SYNCED = 0x04
    STREAM_START = 0x08


def _format(value: int) -> SampleFormat:
    try:
        return SampleFormat(value)
    except ValueError:
        raise MalformedPacketError(_PACKET, f"unknown sample format {value}") from None


def _check_scale(scale: float, codec: str) -> float:
    scale32 = float(np.float32(scale))
    if not math.isfinite(scale32) or scale32 <= 0:
        raise MalformedPacketError(codec, f"scale must be a finite positive float32, not {scale!r}")
    return scale32


@dataclass(frozen=True, eq=False)
class StreamPacket:
    """One data notification.

    Attributes:
        sequence: packet counter, +1 per packet sent, modulo 2**16; 0 on the first packet
            after START.
        first_sample_index: index of the first sample (per channel) since START, modulo
            2**32; firmware advances it over samples it had to discard, so a jump means a
            gap even when no packet was lost.
        timestamp_us: device clock of the first sample, µs (Unix time when
            ``TIME_SYNCED`` is set, else since boot).
        sampling_rate_hz: nominal samples per second per channel.
        sample_format: int16 or int24.
        scale_uv: µV per least significant bit (float32).
        samples: raw values, int32 array of shape (samples per channel, channels).
        flags: :class:`PacketFlags`; unknown bits are kept.
        version: protocol version, 1.
    """

    sequence: int
    first_sample_index: int
    timestamp_us: int
    sampling_rate_hz: int
    sample_format: SampleFormat
    scale_uv: float
    samples: np.ndarray
    flags: int = 0
    version: int = PROTOCOL_VERSION

    def __post_init__(self) -> None:
        if self.version != PROTOCOL_VERSION:
            raise MalformedPacketError(_PACKET, f"unsupported protocol version {self.version} (this codec reads {PROTOCOL_VERSION})")
        for name, value, limit in (
            ("flags", self.flags, 1 << 8),
            ("sequence", self.sequence, SEQUENCE_MODULO),
            ("first_sample_index", self.first_sample_index, INDEX_MODULO),
            ("timestamp_us", self.timestamp_us, 1 << 64),
        ):
            if not 0 <= int(value) < limit:
                raise MalformedPacketError(_PACKET, f"{name} {value} out of range 0..{limit - 1}")
        if not 1 <= self.sampling_rate_hz <= 0xFFFF:
            raise MalformedPacketError(_PACKET, f"sampling rate {self.sampling_rate_hz} Hz out of range 1..65535")
        fmt = _format(int(self.sample_format))
        samples = np.asarray(self.samples)
        if samples.ndim == 1:
            samples = samples[:, None]
        if samples.ndim != 2 or samples.dtype.kind not in "iu":
            raise MalformedPacketError(_PACKET, "samples must be an integer array of shape (n, channels)")
        n, channels = samples.shape
        if not 1 <= channels <= MAX_CHANNELS or not 1 <= n <= 255:
            raise MalformedPacketError(_PACKET, f"{n} samples × {channels} channels: need 1..255 × 1..{MAX_CHANNELS}")
        low, high = fmt.limits
        if samples.min() < low or samples.max() > high:
            raise MalformedPacketError(_PACKET, f"a sample does not fit {fmt.name}")
        frozen = samples.astype(np.int32)
        frozen.flags.writeable = False
        object.__setattr__(self, "samples", frozen)
        object.__setattr__(self, "sample_format", fmt)
        object.__setattr__(self, "scale_uv", _check_scale(self.scale_uv, _PACKET))
        object.__setattr__(self, "flags", int(self.flags))

    @property
    def count(self) -> int:
        """Samples per channel in this packet."""
        return int(self.samples.shape[0])

    @property
    def channels(self) -> int:
        """Number of channels (leads)."""
        return int(self.samples.shape[1])

    @property
    def lead_off(self) -> bool:
        """An electrode was off during this packet."""
        return bool(self.flags & PacketFlags.LEAD_OFF)

    @property
    def saturated(self) -> bool:
        """The front end clipped during this packet."""
        return bool(self.flags & PacketFlags.SATURATED)

    @property
    def time_synced(self) -> bool:
        """``timestamp_us`` is Unix time (the host set the clock with SET_TIME)."""
        return bool(self.flags & PacketFlags.TIME_SYNCED)

    @property
    def stream_start(self) -> bool:
        """This is the first packet after a START command."""
        return bool(self.flags & PacketFlags.STREAM_START)

    @property
    def samples_uv(self) -> np.ndarray:
        """Samples in µV, float64, shape (n, channels)."""
        return self.samples * self.scale_uv

    @property
    def next_sample_index(self) -> int:
        """The index the next packet's first sample has when nothing is missing."""
        return (self.first_sample_index + self.count) % INDEX_MODULO

    @property
    def wire_size(self) -> int:
        """Length of the encoded packet in bytes."""
        return HEADER_SIZE + self.count * self.channels * self.sample_format.size

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StreamPacket):
            return NotImplemented
        head = ("sequence", "first_sample_index", "timestamp_us", "sampling_rate_hz", "sample_format", "scale_uv", "flags", "version")
        return all(getattr(self, k) == getattr(other, k) for k in head) and np.array_equal(self.samples, other.samples)

    __hash__ = None  # type: ignore[assignment]

    @classmethod
    def from_bytes(cls, data: bytes) -> StreamPacket:
        """Decode one data notification.

        Raises:
            MalformedPacketError: shorter than the header, unknown version or format, a
                channel or sample count of 0, or a length that differs from what the
                header declares (a truncated or padded packet).
        """
        data = bytes(data)
        if len(data) < HEADER_SIZE:
            raise MalformedPacketError(_PACKET, f"shorter than the {HEADER_SIZE}-byte header", data)
        version, flags, seq, index, ts, rate, layout, count, scale = _HEADER.unpack_from(data)
        if version != PROTOCOL_VERSION:
            raise MalformedPacketError(_PACKET, f"unsupported protocol version {version} (this codec reads {PROTOCOL_VERSION})", data)
        try:
            fmt = SampleFormat(layout & 0x0F)
        except ValueError:
            raise MalformedPacketError(_PACKET, f"unknown sample format {layout & 0x0F}", data) from None
        channels = (layout >> 4) + 1
        if channels > MAX_CHANNELS:
            raise MalformedPacketError(_PACKET, f"{channels} channels declared, at most {MAX_CHANNELS} allowed", data)
        if count == 0:
            raise MalformedPacketError(_PACKET, "a sample count of 0", data)
        if rate == 0:
            raise MalformedPacketError(_PACKET, "a sampling rate of 0 Hz", data)
        if not math.isfinite(scale) or scale <= 0:
            raise MalformedPacketError(_PACKET, f"scale {scale} µV/LSB is not a finite positive number", data)
        expected = HEADER_SIZE + count * channels * fmt.size
        if len(data) != expected:
            raise MalformedPacketError(
                _PACKET, f"the header declares {count}×{channels} {fmt.name} samples ({expected} bytes in all)", data
            )
        raw = np.frombuffer(data, np.uint8, offset=HEADER_SIZE).reshape(-1, fmt.size)
        if fmt is SampleFormat.INT16:
            values = raw.view("<i2").astype(np.int32)
        else:
            padded = np.zeros((raw.shape[0], 4), np.uint8)
            padded[:, 1:] = raw
            values = padded.view("<i4") >> 8
        samples = values.reshape(count, channels)
        samples.flags.writeable = False
        packet = object.__new__(cls)
        for name, value in (
            ("sequence", seq),
            ("first_sample_index", index),
            ("timestamp_us", ts),
            ("sampling_rate_hz", rate),
            ("sample_format", fmt),
            ("scale_uv", scale),
            ("samples", samples),
            ("flags", flags),
            ("version", version),
        ):
            object.__setattr__(packet, name, value)
        return packet

    def __bytes__(self) -> bytes:
        layout = int(self.sample_format) | (self.channels - 1) << 4
        head = _HEADER.pack(
            self.version,
            self.flags,
            self.sequence,
            self.first_sample_index,
            self.timestamp_us,
            self.sampling_rate_hz,
            layout,
            self.count,
            self.scale_uv,
        )
        flat = self.samples.reshape(-1)
        if self.sample_format is SampleFormat.INT16:
            body = flat.astype("<i2").tobytes()
        else:
            body = flat.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
        return head + body


def max_samples_per_packet(att_mtu: int, sample_format: SampleFormat, channels: int = 1) -> int:
    """How many samples per channel fit one notification at this ATT MTU (at most 255).

    A notification carries ``att_mtu - 3`` bytes.

    Raises:
        MalformedPacketError: the MTU cannot carry even one sample.
    """
    room = (att_mtu - 3 - HEADER_SIZE) // (SampleFormat(sample_format).size * channels)
    if room < 1:
        raise MalformedPacketError(_PACKET, f"ATT MTU {att_mtu} is too small for one {channels}-channel sample")
    return min(room, 255)


class ControlOp(enum.IntEnum):
    """Op codes written to the control characteristic."""

    START = 0x01
    STOP = 0x02
    SET_TIME = 0x03
    GET_CONFIG = 0x04


class ControlStatus(enum.IntEnum):
    """Status byte of a control response."""

    OK = 0
    UNKNOWN_OP = 1
    INVALID_LENGTH = 2
    UNSUPPORTED_RATE = 3
    UNSUPPORTED_FORMAT = 4
    INVALID_STATE = 5


_COMMAND_SIZES = {ControlOp.START: 4, ControlOp.STOP: 1, ControlOp.SET_TIME: 9, ControlOp.GET_CONFIG: 1}


@dataclass(frozen=True)
class ControlCommand:
    """A command written to the control characteristic.

    ``START [01][u16 rate_hz][u8 sample_format]``, ``STOP [02]``,
    ``SET_TIME [03][u64 unix_time_us]``, ``GET_CONFIG [04]``.

    Attributes:
        op: the op code.
        sampling_rate_hz: START only: the requested rate.
        sample_format: START only: the requested sample format.
        unix_time_us: SET_TIME only: the host's Unix time in µs.
    """

    op: ControlOp
    sampling_rate_hz: int | None = None
    sample_format: SampleFormat | None = None
    unix_time_us: int | None = None

    def __post_init__(self) -> None:
        op = ControlOp(self.op)
        object.__setattr__(self, "op", op)
        start = op is ControlOp.START
        if start != (self.sampling_rate_hz is not None) or start != (self.sample_format is not None):
            raise MalformedPacketError(_COMMAND, "START, and only START, carries a sampling rate and a sample format")
        if (op is ControlOp.SET_TIME) != (self.unix_time_us is not None):
            raise MalformedPacketError(_COMMAND, "SET_TIME, and only SET_TIME, carries a time")
        if start:
            if not 1 <= self.sampling_rate_hz <= 0xFFFF:  # type: ignore[operator]
                raise MalformedPacketError(_COMMAND, f"sampling rate {self.sampling_rate_hz} out of range 1..65535")
            try:
                object.__setattr__(self, "sample_format", SampleFormat(self.sample_format))
            except ValueError:
                raise MalformedPacketError(_COMMAND, f"unknown sample format {self.sample_format}") from None
        if self.unix_time_us is not None and not 0 <= self.unix_time_us < 1 << 64:
            raise MalformedPacketError(_COMMAND, f"time {self.unix_time_us} does not fit 64 unsigned bits")

    @classmethod
    def start(cls, sampling_rate_hz: int, sample_format: SampleFormat = SampleFormat.INT16) -> ControlCommand:
        """A START command."""
        return cls(ControlOp.START, sampling_rate_hz, sample_format)

    @classmethod
    def from_bytes(cls, data: bytes) -> ControlCommand:
        """Decode a command as firmware receives it.

        Raises:
            MalformedPacketError: empty, an unknown op code, or a length that does not
                match the op code; the matching response status is in ``reason``.
        """
        data = bytes(data)
        if not data:
            raise MalformedPacketError(_COMMAND, "empty command", data)
        try:
            op = ControlOp(data[0])
        except ValueError:
            raise MalformedPacketError(_COMMAND, f"unknown op code 0x{data[0]:02X}", data) from None
        if len(data) != _COMMAND_SIZES[op]:
            raise MalformedPacketError(_COMMAND, f"{op.name} is {_COMMAND_SIZES[op]} bytes long", data)
        if op is ControlOp.START:
            return cls(op, int.from_bytes(data[1:3], "little"), data[3])
        if op is ControlOp.SET_TIME:
            return cls(op, unix_time_us=int.from_bytes(data[1:9], "little"))
        return cls(op)

    def __bytes__(self) -> bytes:
        out = bytes((int(self.op),))
        if self.op is ControlOp.START:
            out += self.sampling_rate_hz.to_bytes(2, "little") + bytes((int(self.sample_format),))  # type: ignore[union-attr]
        elif self.op is ControlOp.SET_TIME:
            out += self.unix_time_us.to_bytes(8, "little")  # type: ignore[union-attr]
        return out


_CONFIG = struct.Struct("<HBBfBB")


@dataclass(frozen=True)
class StreamConfig:
    """What a device streams and can stream: the payload of START and GET_CONFIG replies.

    Layout: ``u16 rate_hz, u8 sample_format, u8 channels, f32 scale_uv, u8 streaming,
    u8 n, n × u16 supported rates``.
    """

    sampling_rate_hz: int
    sample_format: SampleFormat
    channels: int
    scale_uv: float
    streaming: bool
    supported_rates_hz: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        codec = "ecgstream config"
        if not 1 <= self.sampling_rate_hz <= 0xFFFF:
            raise MalformedPacketError(codec, f"sampling rate {self.sampling_rate_hz} out of range")
        try:
            object.__setattr__(self, "sample_format", SampleFormat(self.sample_format))
        except ValueError:
            raise MalformedPacketError(codec, f"unknown sample format {self.sample_format}") from None
        if not 1 <= self.channels <= MAX_CHANNELS:
            raise MalformedPacketError(codec, f"{self.channels} channels out of range 1..{MAX_CHANNELS}")
        rates = tuple(int(r) for r in self.supported_rates_hz)
        if len(rates) > 255 or any(not 1 <= r <= 0xFFFF for r in rates):
            raise MalformedPacketError(codec, "supported rates must be at most 255 values in 1..65535")
        object.__setattr__(self, "supported_rates_hz", rates)
        object.__setattr__(self, "scale_uv", _check_scale(self.scale_uv, codec))
        object.__setattr__(self, "streaming", bool(self.streaming))

    @classmethod
    def from_bytes(cls, data: bytes) -> StreamConfig:
        """Decode a config payload.

        Raises:
            MalformedPacketError: a wrong length or invalid field.
        """
        data = bytes(data)
        if len(data) < _CONFIG.size:
            raise MalformedPacketError("ecgstream config", f"needs at least {_CONFIG.size} bytes", data)
        rate, fmt, channels, scale, streaming, n = _CONFIG.unpack_from(data)
        if len(data) != _CONFIG.size + 2 * n or streaming > 1:
            raise MalformedPacketError("ecgstream config", f"declares {n} rates", data)
        rates = struct.unpack_from(f"<{n}H", data, _CONFIG.size)
        if not math.isfinite(scale) or scale <= 0 or fmt not in SampleFormat.__members__.values():
            raise MalformedPacketError("ecgstream config", "invalid scale or sample format", data)
        return cls(rate, SampleFormat(fmt), channels, scale, bool(streaming), rates)

    def __bytes__(self) -> bytes:
        head = _CONFIG.pack(
            self.sampling_rate_hz, int(self.sample_format), self.channels, self.scale_uv, int(self.streaming), len(self.supported_rates_hz)
        )
        return head + struct.pack(f"<{len(self.supported_rates_hz)}H", *self.supported_rates_hz)


@dataclass(frozen=True)
class ControlResponse:
    """The indication that answers a command: ``[0x80 | op][status][payload]``.

    The payload is a :class:`StreamConfig` for a successful START or GET_CONFIG and empty
    otherwise.
    """

    op: ControlOp
    status: ControlStatus = ControlStatus.OK
    config: StreamConfig | None = None

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "op", ControlOp(self.op))
            object.__setattr__(self, "status", ControlStatus(self.status))
        except ValueError as exc:
            raise MalformedPacketError(_RESPONSE, str(exc)) from None
        wants_config = self.status is ControlStatus.OK and self.op in (ControlOp.START, ControlOp.GET_CONFIG)
        if wants_config != (self.config is not None):
            raise MalformedPacketError(_RESPONSE, "a config comes with, and only with, a successful START or GET_CONFIG")

    @property
    def ok(self) -> bool:
        """True when the status is OK."""
        return self.status is ControlStatus.OK

    def raise_for_status(self) -> ControlResponse:
        """Return self when the status is OK.

        Raises:
            ControlPointError: otherwise.
        """
        if not self.ok:
            raise ControlPointError(self.op, self.status, self)
        return self

    @classmethod
    def from_bytes(cls, data: bytes) -> ControlResponse:
        """Decode a control indication.

        Raises:
            MalformedPacketError: shorter than 2 bytes, no response bit, an unknown op or
                status, or a payload that does not fit the op.
        """
        data = bytes(data)
        if len(data) < 2 or not data[0] & 0x80:
            raise MalformedPacketError(_RESPONSE, "expected [0x80 | op][status]…", data)
        try:
            op, status = ControlOp(data[0] & 0x7F), ControlStatus(data[1])
        except ValueError as exc:
            raise MalformedPacketError(_RESPONSE, str(exc), data) from None
        payload = data[2:]
        config = StreamConfig.from_bytes(payload) if payload else None
        try:
            return cls(op, status, config)
        except MalformedPacketError as exc:
            raise MalformedPacketError(_RESPONSE, exc.reason, data) from None

    def __bytes__(self) -> bytes:
        return bytes((0x80 | int(self.op), int(self.status))) + (bytes(self.config) if self.config else b"")


@dataclass(frozen=True)
class Continuity:
    """What one packet says about the stream before it.

    Attributes:
        lost_packets: packets missing between the previous packet and this one.
        missing_samples: samples per channel missing before this packet's first sample
            (lost packets plus samples the firmware discarded).
        restarted: the stream started again (STREAM_START, or the sample index went
            back); nothing is counted as lost across a restart.
        first: this is the first packet the tracker has seen.
    """

    lost_packets: int = 0
    missing_samples: int = 0
    restarted: bool = False
    first: bool = False

    @property
    def gap(self) -> bool:
        """Samples are missing before this packet."""
        return self.missing_samples > 0


@dataclass
class StreamTracker:
    """Receiver-side loss and gap detection for one stream (pure; feed it packets).

    Rules (``ecgstream.md`` §5): lost packets = ``(sequence - last - 1) mod 2**16``;
    missing samples = ``(first_sample_index - expected) mod 2**32`` where ``expected``
    is the previous packet's ``next_sample_index``; a packet with ``STREAM_START`` or
    an index behind the expected one (by the modular difference reading as negative)
    starts a new stream.

    Attributes:
        packets: packets fed.
        lost_packets: lost packets in all.
        missing_samples: missing samples per channel in all.
        gaps: number of packets that followed a gap.
        restarts: number of restarts seen.
    """

    packets: int = 0
    lost_packets: int = 0
    missing_samples: int = 0
    gaps: int = 0
    restarts: int = 0
    _last_sequence: int | None = field(default=None, repr=False)
    _expected_index: int | None = field(default=None, repr=False)

    def reset(self) -> None:
        """Forget the last packet (call after sending START): the next packet is a first."""
        self._last_sequence = None
        self._expected_index = None

    def feed(self, packet: StreamPacket) -> Continuity:
        """Account for one packet and say what was lost before it."""
        self.packets += 1
        first = self._last_sequence is None
        ahead = 0 if first else (packet.first_sample_index - self._expected_index) % INDEX_MODULO  # type: ignore[operator]
        restarted = not first and (packet.stream_start or ahead >= INDEX_MODULO // 2)
        if first or restarted:
            result = Continuity(restarted=restarted, first=first)
            self.restarts += int(restarted)
        else:
            lost = (packet.sequence - self._last_sequence - 1) % SEQUENCE_MODULO  # type: ignore[operator]
            result = Continuity(lost_packets=lost, missing_samples=ahead)
            self.lost_packets += lost
            self.missing_samples += ahead
            self.gaps += int(ahead > 0)
        self._last_sequence = packet.sequence
        self._expected_index = packet.next_sample_index
        return result
