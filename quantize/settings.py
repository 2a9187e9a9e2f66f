"""Settings dataclasses read from recipes and JSON: one check for keys they do not have."""

from __future__ import annotations

import dataclasses

__all__ = ["checked_fields"]


def checked_fields(cls, data: dict, what: str, error: type[Exception] = ValueError) -> dict:
    """``data`` unchanged when every key is a field of the dataclass ``cls``.

    Raises:
        error: naming the unknown keys and the known ones (``what`` says whose, e.g.
            "export settings").
    """
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - fields
    if unknown:
        raise error(f"unknown {what} {sorted(unknown)}; known: {sorted(fields)}")
    return data
