"""MQTT for gateways: the same JSON lines, one topic per device.

``open_mqtt_sink("mqtt://broker:1883/anyecg")`` publishes every record of a device to
``anyecg/<device>`` (characters MQTT reserves, ``/ + #`` and spaces, become ``_``). Needs
``paho-mqtt`` (``pip install 'anyecg-edge[mqtt]'``); paho's network thread does the I/O,
so ``emit`` never blocks the event loop.
"""

from __future__ import annotations

import re
import threading
from typing import Any
from urllib.parse import urlparse

from ..errors import SinkError
from .base import dumps, records

__all__ = ["MqttSink", "open_mqtt_sink", "device_topic"]

DEFAULT_PREFIX = "anyecg"
_RESERVED = re.compile(r"[/+#\s]+")


def device_topic(prefix: str, device: str) -> str:
    """The topic of one device's records."""
    name = _RESERVED.sub("_", device) or "_"
    return f"{prefix.strip('/')}/{name}"


class MqttSink:
    """Publishes records to a broker, one topic per device (QoS 1 by default)."""

    def __init__(self, host: str, port: int = 1883, prefix: str = DEFAULT_PREFIX, *, qos: int = 1,
                 client_id: str = "", timeout_s: float = 5.0):
        try:
            import paho.mqtt.client as mqtt
        except ImportError:
            raise SinkError("the MQTT sink needs paho-mqtt: pip install 'anyecg-edge[mqtt]'") from None
        self.prefix = prefix
        self.qos = qos
        self.published = 0
        self._connected = threading.Event()
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        self._client.on_connect = lambda client, userdata, flags, reason, props: self._connected.set()
        try:
            self._client.connect(host, port)
        except OSError as exc:
            raise SinkError(f"cannot reach the MQTT broker at {host}:{port}: {exc}") from None
        self._client.loop_start()
        if not self._connected.wait(timeout_s):
            self._client.loop_stop()
            raise SinkError(f"the MQTT broker at {host}:{port} did not accept the connection in {timeout_s:g} s")

    def emit(self, item: Any) -> None:
        for record in records(item):
            topic = device_topic(self.prefix, str(record.get("device", "gateway")))
            self._client.publish(topic, dumps(record), qos=self.qos)
            self.published += 1

    def close(self) -> None:
        """Wait for queued messages, then disconnect."""
        import time

        deadline = time.monotonic() + 5.0
        while self._client.want_write() and time.monotonic() < deadline:
            time.sleep(0.01)
        self._client.disconnect()
        self._client.loop_stop()


def open_mqtt_sink(url: str, **kwargs) -> MqttSink:
    """``mqtt://host[:port][/prefix]`` -> :class:`MqttSink` (default port 1883, prefix ``anyecg``)."""
    parsed = urlparse(url)
    if parsed.scheme != "mqtt" or not parsed.hostname:
        raise SinkError(f"MQTT sink URL must look like mqtt://host:1883/prefix, not {url!r}")
    prefix = parsed.path.strip("/") or DEFAULT_PREFIX
    return MqttSink(parsed.hostname, parsed.port or 1883, prefix, **kwargs)
