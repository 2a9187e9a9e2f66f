"""A virtual ECG wearable: a real Bluetooth LE peripheral that replays a recording.

Each :class:`VirtualWearable` is a bumble device (host stack, GATT server and controller)
on a :class:`~firmware_bridge.bumble_backend.VirtualAir`. It advertises, accepts one
connection at a time, and speaks one of two personalities byte for byte:

* ``"polar_h10"``: advertises ``"Polar H10 XXXXXXXX"`` with the Heart Rate service; PMD
  service with control point (read = feature bitmap, write = commands, indications =
  responses) and data characteristic (ECG frames at 130 Hz, 24-bit µV samples, up to 73
  per frame as at the H10's ATT MTU of 232); Heart Rate service with RR intervals.
  See ``pmd.py`` and ``hrs.py`` for the formats; facts from Polar's PMD specification.
* ``"ecgstream"``: the open profile in ``ecgstream.md`` (rate and format chosen by START),
  plus the Heart Rate service.

The recording (mV or µV, any rate, one lead or several) is resampled with
:func:`scipy.signal.resample_poly` to the device rate and replayed on a **body clock**
that starts when the wearable is first used (a stream start, a time set or a heart-rate
subscription) and runs ``speed`` times faster than wall time.
Samples are taken from the body clock, so a reconnection after a pause skips the samples
"recorded" meanwhile, exactly like a device worn during an outage, and timestamps say so.
The recording repeats when it ends.

Faults (:class:`Faults`) are set per wearable. Stretches (lead-off, saturation, noise)
are in body-clock seconds since the first stream start; ``disconnect_after_s`` and
``stall_after_s`` are in body seconds since the start of the stream they end, and each
happens once.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal

import numpy as np
from bumble import gatt
from scipy.signal import butter, find_peaks, resample_poly, sosfiltfilt
from bumble.device import Connection, Device

from . import ecgstream, hrs, pmd
from .bumble_backend import VirtualAir
from .errors import BridgeError, MalformedPacketError

__all__ = ["Faults", "VirtualWearable", "VirtualWearableError", "resample_to", "detect_r_peaks"]

logger = logging.getLogger(__name__)

Profile = Literal["polar_h10", "ecgstream"]
Interval = tuple[float, float]

POLAR_RATE_HZ = 130
POLAR_RESOLUTION_BITS = 14
#: The H10's ECG input range, ±20 000 µV: replayed samples are clipped to it.
POLAR_RANGE_UV = 20_000
#: Samples per frame at the H10's default ATT MTU of 232: (232 - 3 - 10) / 3.
POLAR_MAX_SAMPLES = 73
#: The H10 refuses to stream below this ATT MTU (status INVALID_MTU).
POLAR_MIN_MTU = 70
ECGSTREAM_RATES = (125, 250, 500)
ECGSTREAM_SCALE = {ecgstream.SampleFormat.INT16: 1.0, ecgstream.SampleFormat.INT24: 0.1}
ADVERTISING_INTERVAL_MS = 100


class VirtualWearableError(BridgeError):
    """A virtual wearable was configured or used wrongly."""


def _intervals(name: str, value: Sequence[Sequence[float]]) -> tuple[Interval, ...]:
    out = []
    for item in value:
        start, end = (float(v) for v in item)
        if not 0 <= start < end or not math.isfinite(end):
            raise VirtualWearableError(f"Faults.{name}: {item!r} is not a (start, end) pair with 0 <= start < end")
        out.append((start, end))
    return tuple(out)


@dataclass(frozen=True)
class Faults:
    """Faults a virtual wearable injects.

    Attributes:
        disconnect_after_s: the wearable drops the link after streaming this many body
            seconds (once); it then advertises again.
        stall_after_s: the stream silently stops after this many body seconds (once);
            the link stays up and the device answers commands. A new START resumes.
        drop_notifications: 0-based indices (counted over the wearable's life) of data
            notifications that are "lost on the air": produced, never delivered.
        drop_probability: chance that any data notification is lost (seeded).
        lead_off: body-second stretches during which an electrode is off: samples are a
            flat 0 µV and ecgstream packets carry ``LEAD_OFF``.
        saturation: stretches during which the front end sits at its positive rail:
            +20 000 µV for the H10, the largest code for ecgstream (``SATURATED`` set).
        noise_bursts: stretches with white noise of ``noise_uv`` µV RMS added.
        noise_uv: RMS of the noise bursts.
        seed: seed of the random drops and noise.
    """

    disconnect_after_s: float | None = None
    stall_after_s: float | None = None
    drop_notifications: frozenset[int] = frozenset()
    drop_probability: float = 0.0
    lead_off: tuple[Interval, ...] = ()
    saturation: tuple[Interval, ...] = ()
    noise_bursts: tuple[Interval, ...] = ()
    noise_uv: float = 300.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("disconnect_after_s", "stall_after_s"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise VirtualWearableError(f"Faults.{name} must be a positive number of seconds, not {value!r}")
        if not 0.0 <= self.drop_probability < 1.0:
            raise VirtualWearableError(f"Faults.drop_probability must be in [0, 1), not {self.drop_probability!r}")
        drops = frozenset(int(i) for i in self.drop_notifications)
        if any(i < 0 for i in drops):
            raise VirtualWearableError("Faults.drop_notifications holds notification indices, which are >= 0")
        if not (math.isfinite(self.noise_uv) and self.noise_uv >= 0):
            raise VirtualWearableError(f"Faults.noise_uv must be >= 0, not {self.noise_uv!r}")
        object.__setattr__(self, "drop_notifications", drops)
        for name in ("lead_off", "saturation", "noise_bursts"):
            object.__setattr__(self, name, _intervals(name, getattr(self, name)))

    @staticmethod
    def mask(intervals: tuple[Interval, ...], times_s: np.ndarray) -> np.ndarray:
        """Which of ``times_s`` fall inside any of ``intervals``."""
        hit = np.zeros(times_s.shape, bool)
        for start, end in intervals:
            hit |= (times_s >= start) & (times_s < end)
        return hit


def resample_to(signal: np.ndarray, fs: float, rate: float) -> np.ndarray:
    """Resample along axis 0 from ``fs`` to ``rate`` with a polyphase filter.

    The ratio is approximated by a fraction with a denominator of at most 1000.
    """
    ratio = Fraction(rate / fs).limit_denominator(1000)
    if ratio == 1:
        return np.asarray(signal, np.float64)
    return resample_poly(np.asarray(signal, np.float64), ratio.numerator, ratio.denominator, axis=0)


def detect_r_peaks(lead_uv: np.ndarray, fs: float) -> np.ndarray:
    """R-peak sample indices of one lead (a plain band-pass + peak-picking detector).

    Good enough to derive plausible heart rate and RR intervals for the Heart Rate
    service; not a clinical detector.
    """
    if lead_uv.size < int(2 * fs):
        return np.zeros(0, np.int64)
    high = min(18.0, 0.45 * fs)
    sos = butter(2, [5.0, high], btype="bandpass", fs=fs, output="sos")
    energy = np.abs(sosfiltfilt(sos, lead_uv))
    threshold = 0.35 * np.percentile(energy, 99.5)
    peaks, _ = find_peaks(energy, height=threshold, distance=max(1, int(0.3 * fs)))
    return peaks.astype(np.int64)


@dataclass
class _Session:
    connection: Connection
    task: asyncio.Task | None = None
    stalled: bool = False


class VirtualWearable:
    """A simulated ECG wearable on a :class:`VirtualAir`.

    Args:
        air: the air to appear on.
        signal: the recording, shape (n,) or (n, leads); the Polar personality uses the
            first lead.
        fs: its sampling rate in Hz.
        units: ``"mV"`` or ``"uV"``.
        profile: ``"polar_h10"`` or ``"ecgstream"``.
        name: advertised name; default ``"Polar H10 <8 hex>"`` or ``"ECG-<4 hex>"``.
        speed: body-clock speed relative to wall time (1.0 = real time).
        faults: faults to inject.

    Attributes:
        address: the Bluetooth address (``"C0:00:…"``), known after construction.
        notifications_sent: data notifications delivered so far.
        notifications_dropped: data notifications dropped by the fault injector.
        connections: connections accepted so far.
    """

    def __init__(
        self,
        air: VirtualAir,
        signal: np.ndarray,
        fs: float,
        *,
        units: Literal["mV", "uV"] = "mV",
        profile: Profile = "polar_h10",
        name: str | None = None,
        speed: float = 1.0,
        faults: Faults | None = None,
    ) -> None:
        array = np.asarray(signal, np.float64)
        if array.ndim == 1:
            array = array[:, None]
        if array.ndim != 2 or array.shape[0] < 2 or not 1 <= array.shape[1] <= ecgstream.MAX_CHANNELS:
            raise VirtualWearableError(f"signal must have shape (n,) or (n, 1..8 leads), not {np.shape(signal)}")
        if not np.all(np.isfinite(array)):
            raise VirtualWearableError("signal contains NaN or infinite values")
        if not (math.isfinite(fs) and fs > 0) or not (math.isfinite(speed) and speed > 0):
            raise VirtualWearableError(f"fs and speed must be positive, got fs={fs!r}, speed={speed!r}")
        if units not in ("mV", "uV"):
            raise VirtualWearableError(f"units must be 'mV' or 'uV', not {units!r}")
        if profile not in ("polar_h10", "ecgstream"):
            raise VirtualWearableError(f"profile must be 'polar_h10' or 'ecgstream', not {profile!r}")
        self.air = air
        self.profile: Profile = profile
        self.speed = float(speed)
        self.faults = faults or Faults()
        self._signal_uv = array * (1000.0 if units == "mV" else 1.0)
        self._fs = float(fs)
        if profile == "polar_h10":
            self._signal_uv = self._signal_uv[:, :1]
        self._resampled: dict[int, np.ndarray] = {}
        self._device, self._controller = air.make_device("virtual-wearable")
        self.address = self._device.random_address.to_string(False)
        suffix = self.address.replace(":", "")
        self.name = name or (f"Polar H10 {suffix[-8:]}" if profile == "polar_h10" else f"ECG-{suffix[-4:]}")
        self._device.name = self.name
        self._rng = np.random.default_rng(self.faults.seed)
        self._session: _Session | None = None
        self._body_origin: float | None = None  # loop time of body second 0
        self._faults_origin: float | None = None  # body second of the first stream start
        self._disconnect_done = False
        self._stall_done = False
        self.notifications_sent = 0
        self.notifications_dropped = 0
        self.connections = 0
        self._notification_index = 0
        self._clock_origin_ns = time.time_ns()
        self._ecg_rate = POLAR_RATE_HZ if profile == "polar_h10" else ECGSTREAM_RATES[1]
        self._ecg_format = ecgstream.SampleFormat.INT16
        self._time_offset_us: int | None = None
        self._hr_task: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        self._started = False
        self.samples_uv(self._ecg_rate)
        self._peaks_s = detect_r_peaks(self._signal_uv[:, 0], self._fs) / self._fs
        self._build_gatt()

    # ------------------------------------------------------------------ set-up

    def _build_gatt(self) -> None:
        props = gatt.Characteristic.Properties
        self._hr_char = gatt.Characteristic(hrs.HR_MEASUREMENT_UUID, props.NOTIFY, gatt.Characteristic.READABLE, b"")
        self._hr_char.on(self._hr_char.EVENT_SUBSCRIPTION, self._on_hr_subscription)
        heart_rate = gatt.Service(
            hrs.HRS_SERVICE_UUID,
            [self._hr_char, gatt.Characteristic(hrs.BODY_SENSOR_LOCATION_UUID, props.READ, gatt.Characteristic.READABLE, b"\x01")],
        )
        if self.profile == "polar_h10":
            self._control = gatt.Characteristic(
                pmd.PMD_CONTROL_UUID,
                props.READ | props.WRITE | props.INDICATE,
                gatt.Characteristic.READABLE | gatt.Characteristic.WRITEABLE,
                gatt.CharacteristicValue(read=self._read_features, write=self._on_pmd_command),
            )
            self._data = gatt.Characteristic(pmd.PMD_DATA_UUID, props.NOTIFY, gatt.Characteristic.READABLE, b"")
            service = gatt.Service(pmd.PMD_SERVICE_UUID, [self._control, self._data])
            self._device.add_services([heart_rate, service])
        else:
            self._control = gatt.Characteristic(
                ecgstream.ECGSTREAM_CONTROL_UUID,
                props.WRITE | props.INDICATE,
                gatt.Characteristic.WRITEABLE,
                gatt.CharacteristicValue(write=self._on_stream_command),
            )
            self._data = gatt.Characteristic(ecgstream.ECGSTREAM_DATA_UUID, props.NOTIFY, gatt.Characteristic.READABLE, b"")
            service = gatt.Service(ecgstream.ECGSTREAM_SERVICE_UUID, [self._data, self._control])
            self._device.add_services([service, heart_rate])
        self._device.on(self._device.EVENT_CONNECTION, self._on_connection)

    def advertising_data(self) -> bytes:
        """The legacy advertising payload (≤ 31 bytes): flags, service UUIDs, name."""
        flags = bytes((2, 0x01, 0x06))
        if self.profile == "polar_h10":
            uuids = bytes((3, 0x03)) + (0x180D).to_bytes(2, "little")
        else:
            uuids = bytes((17, 0x07)) + bytes(gatt.UUID(ecgstream.ECGSTREAM_SERVICE_UUID).to_bytes())
        name = self.name.encode()
        room = 31 - len(flags) - len(uuids) - 2
        kind = 0x09 if len(name) <= room else 0x08
        name = name[:room]
        return flags + uuids + bytes((len(name) + 1, kind)) + name

    async def start(self) -> None:
        """Power on and start advertising."""
        if self._started:
            return
        self._started = True
        self.air.on_close(self.stop)
        await self._device.power_on()
        await self._advertise()

    async def _advertise(self) -> None:
        await self._device.start_advertising(
            advertising_data=self.advertising_data(),
            auto_restart=True,
            advertising_interval_min=ADVERTISING_INTERVAL_MS,
            advertising_interval_max=ADVERTISING_INTERVAL_MS,
        )

    async def stop(self) -> None:
        """Stop streaming, drop any connection and leave the air."""
        if not self._started:
            return
        self._started = False
        if self._device.powered_on:
            await self._device.stop_advertising()
        await self._end_session(disconnect=True)
        for task in list(self._tasks):
            task.cancel()
        self.air.detach(self._controller)

    async def __aenter__(self) -> VirtualWearable:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ signal

    @property
    def streaming(self) -> bool:
        """True while ECG notifications are being produced."""
        session = self._session
        return session is not None and session.task is not None and not session.task.done()

    @property
    def sampling_rate_hz(self) -> int:
        """The device's current ECG rate."""
        return self._ecg_rate

    def samples_uv(self, rate: int | None = None) -> np.ndarray:
        """The recording resampled to ``rate`` (default: the current device rate), µV, shape (n, leads)."""
        rate = rate or self._ecg_rate
        if rate not in self._resampled:
            self._resampled[rate] = resample_to(self._signal_uv, self._fs, rate)
        return self._resampled[rate]

    def _body_seconds(self) -> float:
        loop = asyncio.get_running_loop()
        if self._body_origin is None:
            self._body_origin = loop.time()
        return (loop.time() - self._body_origin) * self.speed

    def _wall_due(self, body_seconds: float) -> float:
        assert self._body_origin is not None
        return self._body_origin + body_seconds / self.speed

    def _chunk_uv(self, start: int, count: int, rate: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Samples ``[start, start + count)`` at ``rate`` with noise and lead-off applied, and the lead-off and saturation masks."""
        source = self.samples_uv(rate)
        values = np.take(source, np.arange(start, start + count), axis=0, mode="wrap").copy()
        times = np.arange(start, start + count) / rate - (self._faults_origin or 0.0)
        noisy = Faults.mask(self.faults.noise_bursts, times)
        if noisy.any():
            values[noisy] += self._rng.normal(0.0, self.faults.noise_uv, size=values[noisy].shape)
        off = Faults.mask(self.faults.lead_off, times)
        values[off] = 0.0
        return values, off, Faults.mask(self.faults.saturation, times)

    # ------------------------------------------------------------------ connections

    def _on_connection(self, connection: Connection) -> None:
        self.connections += 1
        self._session = _Session(connection)
        connection.on(connection.EVENT_DISCONNECTION, lambda reason: self._on_disconnection(connection))

    def _on_disconnection(self, connection: Connection) -> None:
        session = self._session
        if session is not None and session.connection is connection:
            if session.task is not None:
                session.task.cancel()
            self._session = None
        if self._hr_task is not None:
            self._hr_task.cancel()
            self._hr_task = None

    async def _end_session(self, disconnect: bool) -> None:
        session = self._session
        if session is None:
            return
        if session.task is not None and session.task is not asyncio.current_task():
            session.task.cancel()
        if disconnect:
            try:
                await session.connection.disconnect()
            except Exception:  # noqa: BLE001 - the link may already be down
                logger.debug("virtual wearable disconnect failed", exc_info=True)

    def _spawn(self, coroutine) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _reply(self, connection: Connection, data: bytes) -> None:
        """Indicate ``data`` on the control point after the write response has gone out."""

        async def indicate() -> None:
            try:
                await self._device.indicate_subscriber(connection, self._control, data)
            except Exception:  # noqa: BLE001 - a reply to a closed link is simply lost
                logger.debug("control indication failed", exc_info=True)

        self._spawn(indicate())

    def _start_stream(self, connection: Connection) -> None:
        session = self._session
        if session is None or session.connection is not connection:
            return
        if session.task is not None:
            session.task.cancel()
        session.stalled = False
        session.task = self._spawn(self._stream(session))

    # ------------------------------------------------------------------ Polar PMD

    def _read_features(self, connection: Connection) -> bytes:
        return bytes(pmd.PmdFeatures(frozenset({pmd.MeasurementType.ECG})))

    def _on_pmd_command(self, connection: Connection, value: bytes) -> None:
        response = self._pmd_response(connection, bytes(value))
        self._reply(connection, bytes(response))
        if response.ok and response.op == pmd.PmdOp.START:
            self._start_stream(connection)
        elif response.ok and response.op == pmd.PmdOp.STOP and self._session is not None and self._session.task:
            self._session.task.cancel()

    def _pmd_response(self, connection: Connection, value: bytes) -> pmd.ControlPointResponse:
        status = pmd.PmdStatus
        if len(value) < 2:
            op = pmd.PmdOp(value[0]) if value else pmd.PmdOp.GET_SETTINGS
            return pmd.ControlPointResponse(op, pmd.MeasurementType.ECG, status.INVALID_LENGTH)
        try:
            request = pmd.ControlPointRequest.from_bytes(value)
        except MalformedPacketError:
            return pmd.ControlPointResponse(pmd.PmdOp(value[0]), pmd.MeasurementType(value[1] & 0x7F), status.INVALID_PARAMETER)

        def answer(code: pmd.PmdStatus, parameters: bytes = b"") -> pmd.ControlPointResponse:
            return pmd.ControlPointResponse(request.op, request.measurement, code, parameters=parameters)

        if request.op not in (pmd.PmdOp.GET_SETTINGS, pmd.PmdOp.START, pmd.PmdOp.STOP):
            return answer(status.INVALID_OP_CODE)
        if request.measurement != pmd.MeasurementType.ECG or request.recording_type != 0:
            return answer(status.NOT_SUPPORTED)
        if request.op == pmd.PmdOp.GET_SETTINGS:
            settings = pmd.PmdSettings({pmd.SettingType.SAMPLE_RATE: (POLAR_RATE_HZ,), pmd.SettingType.RESOLUTION: (POLAR_RESOLUTION_BITS,)})
            return answer(status.SUCCESS, bytes(settings))
        if request.op == pmd.PmdOp.STOP:
            return answer(status.SUCCESS if self.streaming else status.ALREADY_IN_STATE)
        if self.streaming:
            return answer(status.ALREADY_IN_STATE)
        if connection.att_mtu < POLAR_MIN_MTU:
            return answer(status.INVALID_MTU)
        if request.settings.get(pmd.SettingType.SAMPLE_RATE) != (POLAR_RATE_HZ,):
            return answer(status.INVALID_SAMPLE_RATE)
        if request.settings.get(pmd.SettingType.RESOLUTION) != (POLAR_RESOLUTION_BITS,):
            return answer(status.INVALID_RESOLUTION)
        return answer(status.SUCCESS)

    def _polar_packet(self, start: int, count: int, sequence: int) -> bytes:
        values, _, saturated = self._chunk_uv(start, count, POLAR_RATE_HZ)
        lead = np.clip(np.round(values[:, 0]), -POLAR_RANGE_UV, POLAR_RANGE_UV)
        lead[saturated] = POLAR_RANGE_UV
        last_ns = self._clock_origin_ns - pmd.POLAR_EPOCH_OFFSET_NS + round((start + count - 1) * 1e9 / POLAR_RATE_HZ)
        return bytes(pmd.EcgFrame(last_ns, lead.astype(np.int32)))

    # ------------------------------------------------------------------ ECG stream profile

    def _stream_config(self, streaming: bool | None = None) -> ecgstream.StreamConfig:
        return ecgstream.StreamConfig(
            self._ecg_rate,
            self._ecg_format,
            self._signal_uv.shape[1],
            ECGSTREAM_SCALE[self._ecg_format],
            self.streaming if streaming is None else streaming,
            ECGSTREAM_RATES,
        )

    def _on_stream_command(self, connection: Connection, value: bytes) -> None:
        response = self._stream_response(connection, bytes(value))
        if response.ok and response.op is ecgstream.ControlOp.START:
            self._start_stream(connection)
        elif response.ok and response.op is ecgstream.ControlOp.STOP and self._session is not None and self._session.task:
            self._session.task.cancel()
        self._reply(connection, bytes(response))

    def _stream_response(self, connection: Connection, value: bytes) -> ecgstream.ControlResponse:
        op_enum, status = ecgstream.ControlOp, ecgstream.ControlStatus
        if not value or value[0] not in op_enum.__members__.values():
            return ecgstream.ControlResponse(op_enum.GET_CONFIG, status.UNKNOWN_OP)
        op = op_enum(value[0])
        try:
            command = ecgstream.ControlCommand.from_bytes(value)
        except MalformedPacketError:
            bad_format = op is op_enum.START and len(value) == 4
            return ecgstream.ControlResponse(op, status.UNSUPPORTED_FORMAT if bad_format else status.INVALID_LENGTH)
        if op is op_enum.GET_CONFIG:
            return ecgstream.ControlResponse(op, status.OK, self._stream_config())
        if op is op_enum.SET_TIME:
            body_us = round(self._body_seconds() * 1e6)
            self._time_offset_us = command.unix_time_us - body_us  # type: ignore[operator]
            return ecgstream.ControlResponse(op, status.OK)
        if op is op_enum.STOP:
            return ecgstream.ControlResponse(op, status.OK if self.streaming else status.INVALID_STATE)
        if command.sampling_rate_hz not in ECGSTREAM_RATES:
            return ecgstream.ControlResponse(op, status.UNSUPPORTED_RATE)
        self._ecg_rate = int(command.sampling_rate_hz)  # type: ignore[arg-type]
        self._ecg_format = command.sample_format  # type: ignore[assignment]
        return ecgstream.ControlResponse(op, status.OK, self._stream_config(streaming=True))

    def _stream_packet(self, start: int, count: int, session_start: int, sequence: int) -> bytes:
        rate, fmt = self._ecg_rate, self._ecg_format
        values, off, saturated = self._chunk_uv(start, count, rate)
        low, high = fmt.limits
        raw = np.clip(np.round(values / ECGSTREAM_SCALE[fmt]), low, high).astype(np.int32)
        flags = ecgstream.PacketFlags(0)
        if saturated.any():
            raw[saturated] = high
            flags |= ecgstream.PacketFlags.SATURATED
        if off.any():
            flags |= ecgstream.PacketFlags.LEAD_OFF
        if start == session_start:
            flags |= ecgstream.PacketFlags.STREAM_START
        body_us = round(start * 1e6 / rate)
        if self._time_offset_us is not None:
            flags |= ecgstream.PacketFlags.TIME_SYNCED
            timestamp = self._time_offset_us + body_us
        else:
            timestamp = body_us
        packet = ecgstream.StreamPacket(
            sequence % ecgstream.SEQUENCE_MODULO,
            (start - session_start) % ecgstream.INDEX_MODULO,
            max(0, timestamp),
            rate,
            fmt,
            ECGSTREAM_SCALE[fmt],
            raw,
            flags=int(flags),
        )
        return bytes(packet)

    # ------------------------------------------------------------------ streaming

    def _frame_samples(self, connection: Connection) -> int:
        if self.profile == "polar_h10":
            return max(1, min(POLAR_MAX_SAMPLES, (connection.att_mtu - 3 - pmd.ECG_FRAME_HEADER_SIZE) // pmd.ECG_SAMPLE_SIZE))
        channels = self._signal_uv.shape[1]
        return ecgstream.max_samples_per_packet(connection.att_mtu, self._ecg_format, channels)

    def _drop(self) -> bool:
        index = self._notification_index
        self._notification_index += 1
        if index in self.faults.drop_notifications:
            return True
        return self.faults.drop_probability > 0 and self._rng.random() < self.faults.drop_probability

    async def _stream(self, session: _Session) -> None:
        loop = asyncio.get_running_loop()
        rate = self._ecg_rate
        start = math.ceil(self._body_seconds() * rate)
        session_start = index = start
        if self._faults_origin is None:
            self._faults_origin = start / rate
        sequence = 0
        count = self._frame_samples(session.connection)
        disconnect_at = stall_at = None
        if self.faults.disconnect_after_s is not None and not self._disconnect_done:
            disconnect_at = start + round(self.faults.disconnect_after_s * rate)
        if self.faults.stall_after_s is not None and not self._stall_done:
            stall_at = start + round(self.faults.stall_after_s * rate)
        while True:
            end = index + count
            delay = self._wall_due(end / rate) - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if disconnect_at is not None and end > disconnect_at:
                self._disconnect_done = True
                self._spawn(self._end_session(disconnect=True))
                return
            if stall_at is not None and end > stall_at:
                self._stall_done = True
                session.stalled = True
                return
            if self.profile == "polar_h10":
                data = self._polar_packet(index, count, sequence)
            else:
                data = self._stream_packet(index, count, session_start, sequence)
            sequence += 1
            index = end
            if self._drop():
                self.notifications_dropped += 1
                continue
            await self._device.notify_subscriber(session.connection, self._data, data)
            self.notifications_sent += 1

    # ------------------------------------------------------------------ heart rate

    def _on_hr_subscription(self, connection: Connection, notify: bool, indicate: bool) -> None:
        if self._hr_task is not None:
            self._hr_task.cancel()
            self._hr_task = None
        if notify:
            self._hr_task = self._spawn(self._heart_rate(connection))

    async def _heart_rate(self, connection: Connection) -> None:
        loop = asyncio.get_running_loop()
        peaks_s = self._peaks_s
        duration = self._signal_uv.shape[0] / self._fs
        second = math.floor(self._body_seconds()) + 1
        last_beat: float | None = None
        while True:
            delay = self._wall_due(second) - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            lap, position = divmod(second - 1, duration)
            window = peaks_s[(peaks_s >= position) & (peaks_s < position + 1)] + lap * duration
            rr = []
            for beat in window:
                if last_beat is not None and 0.25 < beat - last_beat < 3.0:
                    rr.append(round((beat - last_beat) * hrs.RR_UNITS_PER_SECOND))
                last_beat = float(beat)
            recent = peaks_s[(peaks_s > position - 5) & (peaks_s <= position + 1)]
            heart_rate = round(60.0 / float(np.mean(np.diff(recent)))) if recent.size > 1 else 0
            measurement = hrs.HeartRateMeasurement(min(255, heart_rate), tuple(rr[:9]))
            await self._device.notify_subscriber(connection, self._hr_char, bytes(measurement))
            second += 1
