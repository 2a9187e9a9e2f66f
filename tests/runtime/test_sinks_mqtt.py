"""Sinks: JSON lines, and MQTT against a real mosquitto broker (one topic per device)."""

from __future__ import annotations

import io
import json
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from anyecg_edge.errors import SinkError
from anyecg_edge.gateway import Gateway
from anyecg_edge.sinks.jsonl import JsonlSink
from anyecg_edge.sinks.mqtt import device_topic, open_mqtt_sink
from anyecg_edge.sources.file import open_array_source


def _mosquitto() -> str | None:
    return shutil.which("mosquitto") or next((p for p in ("/usr/sbin/mosquitto",) if Path(p).exists()), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def broker(tmp_path):
    binary = _mosquitto()
    if binary is None:
        pytest.skip("mosquitto is not installed (apt-get install mosquitto, or make system-deps)")
    port = _free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("mosquitto did not start")
    yield port
    proc.terminate()
    proc.wait(5)


def subscribe(port: int, topic: str):
    import paho.mqtt.client as mqtt

    got: list[tuple[str, dict]] = []
    ready = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.on_connect = lambda c, u, f, r, p: c.subscribe(topic, qos=1)
    client.on_subscribe = lambda c, u, mid, codes, p: ready.set()
    client.on_message = lambda c, u, msg: got.append((msg.topic, json.loads(msg.payload)))
    client.connect("127.0.0.1", port)
    client.loop_start()
    assert ready.wait(5)
    return client, got


async def test_mqtt_one_topic_per_device(broker, model, record_130hz):
    client, got = subscribe(broker, "ward/#")
    sink = open_mqtt_sink(f"mqtt://127.0.0.1:{broker}/ward")
    gateway = Gateway(model, [sink])
    sources = [open_array_source(record_130hz[: 130 * 14], 130, name) for name in ("H10 A", "ECG/B")]
    await gateway.run(sources)
    gateway.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and sink.published > len(got):
        time.sleep(0.05)
    client.loop_stop()
    client.disconnect()
    assert sink.published == len(got) > 0
    topics = {t for t, _ in got}
    assert topics == {"ward/H10_A", "ward/ECG_B"}
    for topic, record in got:
        assert topic == device_topic("ward", record["device"])
    kinds = {r["type"] for _, r in got}
    assert {"window", "estimate", "event"} <= kinds


def test_unreachable_broker_is_a_clear_error():
    with pytest.raises(SinkError, match="cannot reach the MQTT broker|did not accept"):
        open_mqtt_sink(f"mqtt://127.0.0.1:{_free_port()}/x", timeout_s=1.0)


def test_bad_url():
    with pytest.raises(SinkError, match="mqtt://host"):
        open_mqtt_sink("http://x")


async def test_jsonl_sink_lines_are_json(model, record_130hz):
    stream = io.StringIO()
    gateway = Gateway(model, [JsonlSink(stream)])
    await gateway.run([open_array_source(record_130hz[: 130 * 12], 130, "d")])
    lines = [json.loads(l) for l in stream.getvalue().splitlines()]
    assert [l["type"] for l in lines][:3] == ["window", "estimate", "estimate"]
    assert lines[-1]["event"] == "end"
