"""A bleak backend over bumble's in-process Bluetooth LE stack: a radio for tests.

Code written against bleak's public API (``BleakScanner``, ``BleakClient``) runs unchanged
against virtual wearables: pass ``backend=air.scanner_backend`` or
``backend=air.client_backend``. Below bleak's public classes everything is real Bluetooth
LE: bumble host stacks (HCI, L2CAP, ATT, GATT) on bumble controllers that exchange link
layer PDUs over one :class:`bumble.link.LocalLink`, the "air". No kernel, D-Bus or BlueZ is
involved, so this does not test bleak's BlueZ code; ``tests/bluez`` does that in a VM.

bleak instantiates a backend class itself, so each :class:`VirtualAir` makes its own
subclasses of :class:`VirtualScanner` and :class:`VirtualClient` bound to it. Create one
air per test (per event loop)::

    async with VirtualAir() as air:
        wearable = VirtualWearable(air, signal_mv, fs=500)
        await wearable.start()
        device = await BleakScanner.find_device_by_name(wearable.name, backend=air.scanner_backend)
        async with BleakClient(device, backend=air.client_backend) as client:
            ...

Interfaces implemented: ``bleak.backends.scanner.BaseBleakScanner`` and
``bleak.backends.client.BaseBleakClient`` (bleak 3.1). The disconnected callback fires on
every link loss, including one the client asked for, as bleak's BlueZ backend does.
Requires the ``virtual`` extra (bumble).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from typing import Any

from bleak.args import SizedBuffer
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakDeviceNotFoundError, BleakError
from bleak.uuids import normalize_uuid_str
from bumble import core as bumble_core
from bumble import gatt, hci
from bumble.controller import Controller
from bumble.device import Advertisement, Connection, Device, Peer
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink

from .errors import BridgeError

__all__ = ["VirtualAir", "VirtualClient", "VirtualLinkError", "VirtualScanner", "parse_advertising_data"]

logger = logging.getLogger(__name__)

#: The ATT MTU the virtual central asks for (BlueZ asks for 517 too).
DEFAULT_MTU = 517
_PROPERTY_NAMES = {
    gatt.Characteristic.Properties.BROADCAST: "broadcast",
    gatt.Characteristic.Properties.READ: "read",
    gatt.Characteristic.Properties.WRITE_WITHOUT_RESPONSE: "write-without-response",
    gatt.Characteristic.Properties.WRITE: "write",
    gatt.Characteristic.Properties.NOTIFY: "notify",
    gatt.Characteristic.Properties.INDICATE: "indicate",
    gatt.Characteristic.Properties.AUTHENTICATED_SIGNED_WRITES: "authenticated-signed-writes",
    gatt.Characteristic.Properties.EXTENDED_PROPERTIES: "extended-properties",
}


class VirtualLinkError(BridgeError, BleakError):
    """A GATT operation over the virtual air failed (not connected, ATT error, link lost).

    Being a :class:`bleak.exc.BleakError`, it is caught by code written for real radios.
    """


def _uuid_str(uuid: bumble_core.UUID) -> str:
    return normalize_uuid_str(uuid.to_hex_str("-"))


def parse_advertising_data(data: bytes) -> dict[str, Any]:
    """Split legacy advertising data into the fields of bleak's ``AdvertisementData``.

    Malformed trailing structures are ignored, as scanners do.

    Returns:
        ``local_name``, ``manufacturer_data``, ``service_data``, ``service_uuids`` and
        ``tx_power`` (None when absent).
    """
    fields: dict[str, Any] = {
        "local_name": None,
        "manufacturer_data": {},
        "service_data": {},
        "service_uuids": [],
        "tx_power": None,
    }
    pos = 0
    while pos < len(data):
        length = data[pos]
        if length == 0 or pos + 1 + length > len(data):
            break
        kind, value = data[pos + 1], bytes(data[pos + 2 : pos + 1 + length])
        pos += 1 + length
        if kind in (0x08, 0x09) and (kind == 0x09 or fields["local_name"] is None):
            fields["local_name"] = value.decode("utf-8", errors="replace")
        elif kind in (0x02, 0x03, 0x04, 0x05, 0x06, 0x07):
            width = {0x02: 2, 0x03: 2, 0x04: 4, 0x05: 4, 0x06: 16, 0x07: 16}[kind]
            for i in range(0, len(value) - width + 1, width):
                fields["service_uuids"].append(_uuid_str(bumble_core.UUID.from_bytes(value[i : i + width])))
        elif kind in (0x16, 0x20, 0x21):
            width = {0x16: 2, 0x20: 4, 0x21: 16}[kind]
            if len(value) >= width:
                key = _uuid_str(bumble_core.UUID.from_bytes(value[:width]))
                fields["service_data"][key] = value[width:]
        elif kind == 0xFF and len(value) >= 2:
            fields["manufacturer_data"][int.from_bytes(value[:2], "little")] = value[2:]
        elif kind == 0x0A and len(value) == 1:
            fields["tx_power"] = int.from_bytes(value, "little", signed=True)
    return fields


class VirtualAir:
    """One simulated radio environment: a bumble ``LocalLink`` plus a central.

    Every virtual wearable and every bleak client/scanner made from this air's backend
    classes share it. Use it as an async context manager (or call :meth:`close`) inside
    the event loop that runs the test.

    Attributes:
        link: the bumble link all controllers attach to.
        scanner_backend: a ``BaseBleakScanner`` subclass bound to this air, for
            ``BleakScanner(backend=...)``.
        client_backend: a ``BaseBleakClient`` subclass bound to this air, for
            ``BleakClient(..., backend=...)``.
        mtu: the ATT MTU clients request.
    """

    def __init__(self, mtu: int = DEFAULT_MTU) -> None:
        self.link = LocalLink()
        self.mtu = mtu
        self._central: Device | None = None
        self._central_controller: Controller | None = None
        self._central_lock: asyncio.Lock | None = None
        self._connect_lock: asyncio.Lock | None = None
        self._scanners: set[VirtualScanner] = set()
        self._addresses = itertools.count(1)
        self._closables: list[Callable[[], Any]] = []
        self._devices: list[Device] = []
        air = self
        self.scanner_backend: type[VirtualScanner] = type("VirtualScanner", (VirtualScanner,), {"air": air})
        self.client_backend: type[VirtualClient] = type("VirtualClient", (VirtualClient,), {"air": air})

    async def __aenter__(self) -> VirtualAir:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def allocate_address(self) -> hci.Address:
        """A fresh random static address on this air (``C0:…`` upwards)."""
        n = next(self._addresses)
        octets = [0xC0 | (n >> 40 & 0x3F), n >> 32 & 0xFF, n >> 24 & 0xFF, n >> 16 & 0xFF, n >> 8 & 0xFF, n & 0xFF]
        return hci.Address(":".join(f"{o:02X}" for o in octets), hci.Address.RANDOM_DEVICE_ADDRESS)

    def make_device(self, name: str, address: hci.Address | None = None) -> tuple[Device, Controller]:
        """A bumble ``Device`` with its own controller on this air (not yet powered on)."""
        address = address or self.allocate_address()
        controller = Controller(name, link=self.link, public_address=address.to_string(False))
        controller.random_address = address
        device = Device(name=name, address=address, host=Host(controller, AsyncPipeSink(controller)))
        self._devices.append(device)
        return device, controller

    def detach(self, controller: Controller) -> None:
        """Take a controller off the air (it can no longer be seen or reached)."""
        self.link.controllers.discard(controller)

    def has_device(self, address: hci.Address) -> bool:
        """True when a controller on this air answers to ``address``."""
        return self.link.find_le_controller(address) is not None

    async def central(self) -> Device:
        """The central that scanners and clients share, powered on at first use."""
        if self._central_lock is None:
            self._central_lock = asyncio.Lock()
        async with self._central_lock:
            if self._central is None:
                central, self._central_controller = self.make_device("virtual-central")
                await central.power_on()
                central.on(central.EVENT_ADVERTISEMENT, self._on_advertisement)
                self._central = central
        return self._central

    def connect_lock(self) -> asyncio.Lock:
        """Serialises LE connection attempts (a controller has one pending at a time)."""
        if self._connect_lock is None:
            self._connect_lock = asyncio.Lock()
        return self._connect_lock

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        for scanner in list(self._scanners):
            scanner.on_advertisement(advertisement)

    async def add_scanner(self, scanner: VirtualScanner) -> None:
        central = await self.central()
        self._scanners.add(scanner)
        if not central.scanning:
            await central.start_scanning(active=False, filter_duplicates=False)

    async def remove_scanner(self, scanner: VirtualScanner) -> None:
        self._scanners.discard(scanner)
        central = self._central
        if central is not None and not self._scanners and central.scanning:
            await central.stop_scanning()

    def on_close(self, callback: Callable[[], Any]) -> None:
        """Run ``callback`` (a function or coroutine function) when the air closes."""
        self._closables.append(callback)

    async def close(self) -> None:
        """Stop everything on this air: registered wearables first, then the central."""
        for callback in reversed(self._closables):
            result = callback()
            if asyncio.iscoroutine(result):
                await result
        self._closables.clear()
        self._scanners.clear()
        central, self._central = self._central, None
        if central is not None:
            for connection in list(central.connections.values()):
                try:
                    await connection.disconnect()
                except Exception:  # noqa: BLE001 - closing: the link may already be gone
                    logger.debug("disconnect during close failed", exc_info=True)
            if central.scanning:
                await central.stop_scanning()
            if self._central_controller is not None:
                self.detach(self._central_controller)
        await self._settle()

    async def _settle(self, max_rounds: int = 200) -> None:
        """Let HCI commands still in flight (e.g. an advertising restart) complete."""
        for _ in range(max_rounds):
            if all(device.host.pending_command is None and not device.host.command_semaphore.locked() for device in self._devices):
                break
            await asyncio.sleep(0.001)
        self._devices.clear()


class VirtualScanner(BaseBleakScanner):
    """``BaseBleakScanner`` over a :class:`VirtualAir`; use ``air.scanner_backend``."""

    air: VirtualAir

    def __init__(
        self,
        detection_callback: Any,
        service_uuids: list[str] | None,
        scanning_mode: str = "active",
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        self._scanning = False

    async def start(self) -> None:
        """Start receiving advertisements (clears ``seen_devices``)."""
        self.seen_devices = {}
        self._scanning = True
        await self.air.add_scanner(self)

    async def stop(self) -> None:
        """Stop receiving advertisements."""
        self._scanning = False
        await self.air.remove_scanner(self)

    def on_advertisement(self, advertisement: Advertisement) -> None:
        """Turn one bumble advertisement report into bleak's device and callbacks."""
        if not self._scanning:
            return
        fields = parse_advertising_data(advertisement.data_bytes)
        if not self.is_allowed_uuid(fields["service_uuids"]):
            return
        rssi = advertisement.rssi if advertisement.rssi != Advertisement.RSSI_NOT_AVAILABLE else -60
        adv = AdvertisementData(
            local_name=fields["local_name"],
            manufacturer_data=fields["manufacturer_data"],
            service_data=fields["service_data"],
            service_uuids=fields["service_uuids"],
            tx_power=fields["tx_power"],
            rssi=rssi,
            platform_data=(advertisement,),
        )
        address = advertisement.address.to_string(False)
        device = self.create_or_update_device(address, address, fields["local_name"], advertisement.address, adv)
        self.call_detection_callbacks(device, adv)


class VirtualClient(BaseBleakClient):
    """``BaseBleakClient`` over a :class:`VirtualAir`; use ``air.client_backend``."""

    air: VirtualAir

    def __init__(self, address_or_ble_device: BLEDevice | str, **kwargs: Any) -> None:
        super().__init__(
            address_or_ble_device,
            disconnected_callback=kwargs.pop("disconnected_callback", None),
            timeout=kwargs.pop("timeout", 10.0),
        )
        if isinstance(address_or_ble_device, BLEDevice):
            self._name = address_or_ble_device.name or self.address
            details = address_or_ble_device.details
            self._peer_address = details if isinstance(details, hci.Address) else self._parse(self.address)
        else:
            self._name = self.address
            self._peer_address = self._parse(self.address)
        self._connection: Connection | None = None
        self._peer: Peer | None = None
        self._subscribers: dict[int, Callable[[bytes], None]] = {}

    @staticmethod
    def _parse(address: str) -> hci.Address:
        try:
            return hci.Address(address, hci.Address.RANDOM_DEVICE_ADDRESS)
        except (ValueError, bumble_core.InvalidArgumentError) as exc:
            raise BleakDeviceNotFoundError(address, f"not a Bluetooth address: {address!r}") from exc

    @property
    def name(self) -> str:
        """The advertised name, or the address."""
        return self._name

    @property
    def mtu_size(self) -> int:
        """The negotiated ATT MTU (23 before connecting)."""
        return self._connection.att_mtu if self._connection is not None else 23

    @property
    def is_connected(self) -> bool:
        """True while the link is up."""
        return self._connection is not None

    async def connect(self, pair: bool = False, **kwargs: Any) -> None:
        """Connect, exchange MTU and discover all services.

        Raises:
            BleakDeviceNotFoundError: no device with this address is on the air.
            TimeoutError: the device did not accept the connection in time.
        """
        if not self.air.has_device(self._peer_address):
            raise BleakDeviceNotFoundError(self.address, f"device {self.address} was not found on the virtual air")
        central = await self.air.central()
        async with self.air.connect_lock():
            try:
                connection = await central.connect(self._peer_address, timeout=self._timeout)
            except (asyncio.TimeoutError, bumble_core.TimeoutError) as exc:
                raise TimeoutError(f"connecting to {self.address} timed out after {self._timeout} s") from exc
            except bumble_core.BaseBumbleError as exc:
                raise VirtualLinkError(f"connecting to {self.address} failed: {exc}") from exc
        self._connection = connection
        connection.on(connection.EVENT_DISCONNECTION, self._on_disconnection)
        try:
            peer = Peer(connection)
            await peer.request_mtu(self.air.mtu)
            await peer.discover_all()
        except Exception:
            await self.disconnect()
            raise
        self._peer = peer
        self.services = self._service_collection(peer)

    def _service_collection(self, peer: Peer) -> BleakGATTServiceCollection:
        collection = BleakGATTServiceCollection()
        for service in peer.services:
            bleak_service = BleakGATTService(service, service.handle, _uuid_str(service.uuid))
            collection.add_service(bleak_service)
            for characteristic in service.characteristics:
                properties = [name for flag, name in _PROPERTY_NAMES.items() if characteristic.properties & flag]
                bleak_char = BleakGATTCharacteristic(
                    characteristic,
                    characteristic.handle,
                    _uuid_str(characteristic.uuid),
                    properties,  # type: ignore[arg-type]
                    lambda: self.mtu_size - 3,
                    bleak_service,
                )
                collection.add_characteristic(bleak_char)
                for descriptor in characteristic.descriptors:
                    collection.add_descriptor(
                        BleakGATTDescriptor(descriptor, descriptor.handle, _uuid_str(descriptor.type), bleak_char)
                    )
        return collection

    def _on_disconnection(self, reason: int) -> None:
        if self._connection is None:
            return
        self._connection = None
        self._peer = None
        self._subscribers.clear()
        self.services = None
        if self._disconnected_callback is not None:
            self._disconnected_callback()

    async def disconnect(self) -> None:
        """Disconnect; returns once the link is down. A no-op when not connected."""
        connection = self._connection
        if connection is None:
            return
        try:
            await connection.disconnect()
        except bumble_core.BaseBumbleError as exc:
            logger.debug("disconnect: %s", exc)
        finally:
            self._on_disconnection(hci.HCI_REMOTE_USER_TERMINATED_CONNECTION_ERROR)

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        """Pairing is not simulated; the virtual wearables need none."""
        raise VirtualLinkError("pairing is not supported on the virtual air")

    async def unpair(self) -> None:
        """Pairing is not simulated."""
        raise VirtualLinkError("pairing is not supported on the virtual air")

    def _require_peer(self) -> Peer:
        if self._peer is None:
            raise VirtualLinkError(f"not connected to {self.address}")
        return self._peer

    async def _gatt(self, what: str, operation: Any) -> Any:
        try:
            return await operation
        except (bumble_core.BaseBumbleError, hci.HCI_Error) as exc:
            raise VirtualLinkError(f"{what} on {self.address} failed: {exc}") from exc
        except (asyncio.TimeoutError, ConnectionError) as exc:
            raise VirtualLinkError(f"{what} on {self.address} failed: link lost ({exc!r})") from exc

    async def read_gatt_char(self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **kwargs: Any) -> bytearray:
        """Read a characteristic's value."""
        peer = self._require_peer()
        return bytearray(await self._gatt("read", peer.read_value(characteristic.obj)))

    async def read_gatt_descriptor(self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any) -> bytearray:
        """Read a descriptor's value."""
        peer = self._require_peer()
        return bytearray(await self._gatt("descriptor read", peer.read_value(descriptor.obj)))

    async def write_gatt_char(self, characteristic: BleakGATTCharacteristic, data: SizedBuffer, response: bool) -> None:
        """Write a characteristic (with or without response)."""
        peer = self._require_peer()
        await self._gatt("write", peer.write_value(characteristic.obj, bytes(data), with_response=response))

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor, data: SizedBuffer) -> None:
        """Write a descriptor."""
        peer = self._require_peer()
        await self._gatt("descriptor write", peer.write_value(descriptor.obj, bytes(data), with_response=True))

    async def start_notify(self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any) -> None:
        """Subscribe (notifications preferred, else indications) and call ``callback(bytearray)``."""
        peer = self._require_peer()

        def subscriber(value: bytes) -> None:
            callback(bytearray(value))

        self._subscribers[characteristic.handle] = subscriber
        await self._gatt("subscribe", peer.subscribe(characteristic.obj, subscriber, prefer_notify=True))

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        """Unsubscribe."""
        peer = self._require_peer()
        subscriber = self._subscribers.pop(characteristic.handle, None)
        await self._gatt("unsubscribe", peer.unsubscribe(characteristic.obj, subscriber))
