"""JSON lines to stdout or a file: one line per window, estimate and event."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO, Any

from .base import dumps, records

__all__ = ["JsonlSink", "open_jsonl_sink"]


class JsonlSink:
    """Writes every record as one JSON line and flushes after each item."""

    def __init__(self, stream: IO[str], *, owns: bool = False):
        self.stream = stream
        self._owns = owns
        self.lines = 0

    def emit(self, item: Any) -> None:
        for record in records(item):
            self.stream.write(dumps(record) + "\n")
            self.lines += 1
        self.stream.flush()

    def close(self) -> None:
        if self._owns:
            self.stream.close()
        else:
            self.stream.flush()


def open_jsonl_sink(target: str | Path = "-") -> JsonlSink:
    """``"-"`` for stdout, else a file path (appended to, created with its folder)."""
    if str(target) == "-":
        return JsonlSink(sys.stdout)
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    return JsonlSink(path.open("a", encoding="utf-8"), owns=True)
