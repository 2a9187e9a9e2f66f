"""Sources: async iterators of timestamped sample blocks (see :mod:`.base`).

One factory per kind, imported lazily so a replay needs no Bluetooth stack:

* :func:`open_file_source` / :func:`open_array_source`: a recording or an array;
* :func:`open_ble_source`: a BLE wearable, profile chosen from its services;
* :func:`open_polar_source`, :func:`open_ecgstream_source`, :func:`open_hrs_source`:
  one profile.
"""

from __future__ import annotations

from .base import SampleBlock, Source, SourceEvent

__all__ = [
    "SampleBlock",
    "Source",
    "SourceEvent",
    "open_array_source",
    "open_ble_source",
    "open_ecgstream_source",
    "open_file_source",
    "open_hrs_source",
    "open_polar_source",
]

_FACTORIES = {
    "open_array_source": "file",
    "open_file_source": "file",
    "open_ble_source": "ble",
    "open_polar_source": "polar",
    "open_ecgstream_source": "ecgstream",
    "open_hrs_source": "hrs",
}


def __getattr__(name: str):
    module = _FACTORIES.get(name)
    if module is None:
        raise AttributeError(name)
    from importlib import import_module

    return getattr(import_module(f"{__name__}.{module}"), name)
