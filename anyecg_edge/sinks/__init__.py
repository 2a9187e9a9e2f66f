"""Sinks: where reports go. ``open_sink(spec)`` picks one by its spec.

* ``-`` or ``jsonl:-``: JSON lines on stdout;
* ``jsonl:PATH`` or a path ending in ``.jsonl``: JSON lines appended to a file;
* ``mqtt://host:port/prefix``: MQTT, one topic per device.
"""

from __future__ import annotations

from .base import Sink, records

__all__ = ["Sink", "open_sink", "records"]


def open_sink(spec: str) -> Sink:
    """Open a sink from its spec (see the module docstring); imports its module lazily."""
    if spec.startswith("mqtt://"):
        from .mqtt import open_mqtt_sink

        return open_mqtt_sink(spec)
    from .jsonl import open_jsonl_sink

    return open_jsonl_sink(spec[len("jsonl:") :] if spec.startswith("jsonl:") else spec)
