"""BLE wearables through bleak: scan, pick the profile, stream, reconnect, stop cleanly.

:class:`BleSource` is the source for one wearable. Each connection attempt (``ble.md`` §5):

1. rescan for the device (BlueZ forgets devices when scanning stops, so never reuse an
   old ``BLEDevice``);
2. connect with ``BleakClient(device, disconnected_callback=..., backend=...)``;
3. pick the profile from the discovered services (Polar PMD, then our open profile, then
   the Heart Rate service) unless one was named;
4. start the stream (the profile session enables indications, subscribes and sends START:
   re-sent on every reconnect, as the H10 ends the stream when the link closes);
5. yield blocks and events; a no-data watchdog and the disconnected callback both end
   the connection;
6. on loss: close the client, wait with exponential backoff plus jitter, go to 1.

``close()`` (and cancelling the task, as Ctrl-C does) sends STOP, then disconnects.

Only bleak's public API is used. ``backend`` is handed to bleak: None for the platform's
own (BlueZ on Linux), or anything with ``scanner_backend`` and ``client_backend``
attributes (such as :class:`firmware_bridge.bumble_backend.VirtualAir`), or a
``(scanner_backend, client_backend)`` pair.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import AsyncIterator

from ..errors import SourceError
from .base import SourceEvent, SourceItem

__all__ = ["Backoff", "BleSource", "Found", "choose_profile", "open_ble_source", "scan"]

_CLOSE = object()


def _sessions() -> dict:
    from .ecgstream import EcgStreamSession
    from .hrs import HeartRateSession
    from .polar import PolarSession

    return {"polar_h10": PolarSession, "ecgstream": EcgStreamSession, "hrs": HeartRateSession}


def _uuids():
    from firmware_bridge.ecgstream import ECGSTREAM_SERVICE_UUID
    from firmware_bridge.hrs import HRS_SERVICE_UUID
    from firmware_bridge.pmd import PMD_SERVICE_UUID

    return PMD_SERVICE_UUID, ECGSTREAM_SERVICE_UUID, HRS_SERVICE_UUID


PROFILES = ("polar_h10", "ecgstream", "hrs")


def choose_profile(service_uuids) -> str | None:
    """The best profile among discovered (or advertised) service UUIDs, or None."""
    found = {str(u).lower() for u in service_uuids}
    for profile, uuid in zip(PROFILES, _uuids()):
        if uuid in found:
            return profile
    return None


def _split_backend(backend) -> tuple:
    if backend is None:
        return None, None
    if isinstance(backend, tuple):
        return backend
    return getattr(backend, "scanner_backend", None), getattr(backend, "client_backend", None)


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter: ``min(cap, first * factor**attempt) * (1 ± jitter)``."""

    first_s: float = 1.0
    factor: float = 2.0
    cap_s: float = 30.0
    jitter: float = 0.2

    def delay(self, attempt: int, rng: random.Random = random.Random()) -> float:
        base = min(self.cap_s, self.first_s * self.factor ** max(0, attempt))
        return max(0.0, base * (1 + self.jitter * (2 * rng.random() - 1)))


@dataclass(frozen=True)
class Found:
    """A wearable seen while scanning: bleak's device, its name and the profile it suggests."""

    device: object
    name: str | None
    address: str
    profile: str | None
    rssi: int | None

    @property
    def label(self) -> str:
        return self.name or self.address


def _guess_profile(name: str | None, advertised) -> str | None:
    if name and name.startswith("Polar H10"):
        return "polar_h10"
    return choose_profile(advertised)


async def scan(timeout_s: float = 5.0, *, backend=None, include_hrs: bool = False) -> list[Found]:
    """Scan and list ECG wearables (Polar H10 by name, our profile by service UUID).

    Devices advertising only the Heart Rate service are listed with ``include_hrs``.
    """
    from bleak import BleakScanner

    scanner_backend, _ = _split_backend(backend)
    seen = await BleakScanner.discover(timeout=timeout_s, return_adv=True, backend=scanner_backend)
    found = []
    for device, adv in seen.values():
        profile = _guess_profile(adv.local_name or device.name, adv.service_uuids)
        if profile is None or (profile == "hrs" and not include_hrs):
            continue
        found.append(Found(device, adv.local_name or device.name, device.address, profile, adv.rssi))
    return sorted(found, key=lambda f: f.label)


class BleSource:
    """One BLE wearable as a source (see the module docstring).

    Args:
        target: advertised name or address; None takes the first ECG wearable found.
        profile: "polar_h10", "ecgstream", "hrs" or None (choose from the services).
        backend: see the module docstring.
        device: device id used in blocks and reports (default: ``target``, else the
            name found).
        scan_timeout_s: how long one scan looks for the device.
        connect_timeout_s: timeout of one connection attempt.
        watchdog_s: no data for this long on a started stream ends the connection.
        first_data_s: grace for the first frame after START (the H10 can be slow).
        backoff: delays between attempts.
        max_attempts: give up after this many failed attempts in a row (None: never).
        session_options: passed to the profile session (e.g. ``rate_hz``).
    """

    def __init__(
        self,
        target: str | None = None,
        *,
        profile: str | None = None,
        backend=None,
        device: str | None = None,
        scan_timeout_s: float = 10.0,
        connect_timeout_s: float = 15.0,
        watchdog_s: float = 5.0,
        first_data_s: float = 35.0,
        backoff: Backoff = Backoff(),
        max_attempts: int | None = None,
        session_options: dict | None = None,
        rng: random.Random | None = None,
    ):
        if profile is not None and profile not in PROFILES:
            raise SourceError(f"unknown profile {profile!r}; choose from {PROFILES}")
        self.target = target
        self.profile = profile
        self.backend = backend
        self.device = device or target or "ble"
        self.scan_timeout_s = scan_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.watchdog_s = watchdog_s
        self.first_data_s = max(first_data_s, watchdog_s)
        self.backoff = backoff
        self.max_attempts = max_attempts
        self.session_options = dict(session_options or {})
        self.rng = rng or random.Random()
        self.connections = 0
        self.active_profile: str | None = None
        self._closing = False
        self._queue: asyncio.Queue | None = None

    def _matches(self, device, adv) -> bool:
        name = adv.local_name or device.name
        if self.target is None:
            profile = _guess_profile(name, adv.service_uuids)
            return profile is not None and (self.profile is None or profile == self.profile or profile == "hrs")
        t = self.target.lower()
        return device.address.lower() == t or (name or "").lower() == t

    async def _find(self):
        from bleak import BleakScanner

        scanner_backend, _ = _split_backend(self.backend)
        found = await BleakScanner.find_device_by_filter(self._matches, timeout=self.scan_timeout_s, backend=scanner_backend)
        if found is None:
            what = repr(self.target) if self.target else "an ECG wearable"
            raise SourceError(f"{what} not found in a {self.scan_timeout_s:g} s scan", self.device)
        if self.target is None and self.device == "ble":
            self.device = found.name or found.address
        return found

    async def close(self) -> None:
        """Stop streaming and disconnect; the iteration ends."""
        self._closing = True
        if self._queue is not None:
            self._queue.put_nowait(_CLOSE)

    def _event(self, kind: str, message: str, **data) -> SourceEvent:
        return SourceEvent(self.device, kind, message, data=data)

    async def __aiter__(self) -> AsyncIterator[SourceItem]:
        from bleak import BleakClient
        from bleak.exc import BleakError
        from firmware_bridge.errors import BridgeError

        _, client_backend = _split_backend(self.backend)
        failures = 0
        while not self._closing:
            queue: asyncio.Queue = asyncio.Queue()
            self._queue = queue
            client = session = None
            streaming = False
            try:
                ble_device = await self._find()
                client = BleakClient(
                    ble_device,
                    disconnected_callback=lambda _c: queue.put_nowait(None),
                    timeout=self.connect_timeout_s,
                    backend=client_backend,
                )
                await client.connect()
                uuids = [s.uuid for s in client.services]
                profile = self.profile or choose_profile(uuids)
                if profile is None:
                    raise SourceError("offers none of the supported services (Polar PMD, ECG stream, Heart Rate)", self.device)
                session = _sessions()[profile](client, self.device, queue.put_nowait, **self.session_options)
                await session.start()
                streaming = True
                self.active_profile = profile
                self.connections += 1
                failures = 0
                yield self._event("connected", f"connected ({profile}), streaming", profile=profile, connection=self.connections)
                timeout = self.first_data_s
                while True:
                    try:
                        item = await asyncio.wait_for(queue.get(), timeout)
                    except asyncio.TimeoutError:
                        yield self._event("stalled", f"no data for {timeout:g} s; reconnecting")
                        break
                    if item is _CLOSE:
                        break
                    if item is None:
                        yield self._event("disconnected", "the link was lost")
                        streaming = False
                        break
                    timeout = self.watchdog_s
                    yield item
            except (BleakError, BridgeError, SourceError, OSError, asyncio.TimeoutError) as exc:
                failures += 1
                yield self._event("error", f"{type(exc).__name__}: {exc}", attempt=failures)
                if self.max_attempts is not None and failures >= self.max_attempts:
                    raise SourceError(f"giving up after {failures} failed attempts: {exc}", self.device) from exc
            finally:
                await self._shutdown(client, session, streaming)
            if self._closing:
                break
            delay = self.backoff.delay(failures, self.rng)
            yield self._event("reconnecting", f"reconnecting in {delay:.1f} s", delay_s=round(delay, 3), attempt=failures + 1)
            await asyncio.sleep(delay)
        yield self._event("end", "stopped")

    async def _shutdown(self, client, session, streaming: bool) -> None:
        """STOP (if the link is up), then disconnect; never raises."""
        if client is None:
            return
        try:
            if session is not None and streaming and client.is_connected:
                await asyncio.wait_for(session.stop(), 3.0)
        except Exception:  # noqa: BLE001 - best effort: the device may be gone
            pass
        try:
            await asyncio.wait_for(client.disconnect(), 5.0)
        except Exception:  # noqa: BLE001
            pass


def open_ble_source(target: str | None = None, *, backend=None, profile: str | None = None, **options) -> BleSource:
    """A :class:`BleSource`; the profile is chosen from the device's services unless given."""
    return BleSource(target, profile=profile, backend=backend, **options)
