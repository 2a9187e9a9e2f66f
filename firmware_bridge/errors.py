"""Errors raised by :mod:`firmware_bridge`.

Every error derives from :class:`BridgeError`, so one ``except BridgeError`` catches them
all. Each subclass carries the data a caller needs to count, log or act on the problem;
its message says what went wrong and, where there is something to do, what to do.
"""

from __future__ import annotations

__all__ = [
    "BridgeError",
    "ControlPointError",
    "ExportError",
    "MalformedPacketError",
    "UnsupportedFrameError",
]


class BridgeError(Exception):
    """Base class of every error raised by :mod:`firmware_bridge`.

    ``str(error)`` is a complete, user-facing message.
    """


class MalformedPacketError(BridgeError, ValueError):
    """Bytes that do not form a valid packet of the named codec.

    Raised for short or over-long input, wrong type bytes, impossible counts and
    out-of-range values, both when decoding bytes and when encoding a value that the wire
    format cannot carry.

    Attributes:
        codec: which format was being decoded or encoded, e.g. ``"PMD ECG frame"``.
        reason: what was wrong, in words.
        data: the offending bytes (empty when encoding).
    """

    def __init__(self, codec: str, reason: str, data: bytes = b"") -> None:
        self.codec = codec
        self.reason = reason
        self.data = bytes(data)
        shown = self.data[:32].hex()
        more = "…" if len(self.data) > 32 else ""
        where = f" (got {len(self.data)} bytes: {shown}{more})" if self.data else ""
        super().__init__(f"malformed {codec}: {reason}{where}")


class UnsupportedFrameError(MalformedPacketError):
    """A well-formed frame of a kind this decoder does not handle.

    A receiver should count these and carry on: a device may send measurement or frame
    types that are valid but not ECG, or compressed frames this decoder does not decode.

    Attributes:
        measurement_type: the frame's measurement type (low 6 bits of byte 0).
        frame_type: the frame type byte, compression bit included.
    """

    def __init__(self, codec: str, reason: str, data: bytes, measurement_type: int, frame_type: int) -> None:
        self.measurement_type = measurement_type
        self.frame_type = frame_type
        super().__init__(codec, reason, data)


class ControlPointError(BridgeError):
    """A device answered a control-point command with an error status.

    Attributes:
        op: the command's op code (int or enum member).
        status: the status the device returned (int or enum member).
        response: the decoded response object.
    """

    def __init__(self, op: int, status: int, response: object) -> None:
        self.op = op
        self.status = status
        self.response = response
        op_name = getattr(op, "name", str(int(op)))
        status_name = getattr(status, "name", str(int(status)))
        super().__init__(f"the device refused command {op_name}: status {int(status)} ({status_name})")


class ExportError(BridgeError):
    """The microcontroller export could not be produced or checked.

    Attributes:
        path: the file concerned, if any.
    """

    def __init__(self, message: str, path: str | None = None) -> None:
        self.path = path
        super().__init__(message)
