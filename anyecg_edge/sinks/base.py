"""What a sink receives and the JSON lines it writes.

A *sink* has ``emit(item)`` and ``close()``. An item is a
:class:`~anyecg_edge.pipeline.WindowReport` (one ``window`` line, then one ``estimate``
line per estimate), a :class:`~anyecg_edge.sources.base.SourceEvent` (one ``event``
line) or a plain dict (written as is, e.g. a ``stats`` line). See ``docs/runtime.md`` for
the schema.
"""

from __future__ import annotations

import json
from typing import Any, Protocol, runtime_checkable

from ..estimates import iso_time
from ..sources.base import SourceEvent

__all__ = ["Sink", "records", "dumps"]


@runtime_checkable
class Sink(Protocol):
    def emit(self, item: Any) -> None: ...

    def close(self) -> None: ...


def event_record(event: SourceEvent) -> dict:
    return {
        "type": "event",
        "device": event.device,
        "time": iso_time(event.time),
        "t": round(event.time, 3),
        "event": event.kind,
        "message": event.message,
        **({"data": event.data} if event.data else {}),
    }


def records(item: Any) -> list[dict]:
    """The JSON-line dicts of one item, in order."""
    if isinstance(item, dict):
        return [item]
    if isinstance(item, SourceEvent):
        return [event_record(item)]
    as_dict = getattr(item, "as_dict", None)
    if as_dict is None:
        raise TypeError(f"a sink cannot write {type(item).__name__}")
    return [as_dict()] + [e.as_dict() for e in getattr(item, "estimates", ())]


def dumps(record: dict) -> str:
    """One compact JSON line (no trailing newline)."""
    return json.dumps(record, separators=(",", ":"), allow_nan=False, default=_default)


def _default(value):
    try:
        return value.item()  # numpy scalars
    except AttributeError:
        raise TypeError(f"not JSON serialisable: {type(value).__name__}") from None
