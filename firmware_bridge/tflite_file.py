"""Reading a ``.tflite`` file's metadata and tensor facts without TensorFlow.

A TFLite model is a FlatBuffer (schema ``tensorflow/compiler/mlir/lite/schema/schema.fbs``,
file identifier ``TFL3``). Models exported by AnyECG-Edge carry a JSON document in the
``Model.metadata`` list under the name :data:`METADATA_NAME`; this module reads it, and the
input/output tensors' shapes, types and quantisation, with nothing but the standard library.

Only the tables needed here are decoded:

* ``Model``: 2 ``subgraphs``, 4 ``buffers``, 6 ``metadata``;
* ``Metadata``: 0 ``name``, 1 ``buffer``; ``Buffer``: 0 ``data``, 1 ``offset``, 2 ``size``;
* ``SubGraph``: 0 ``tensors``, 1 ``inputs``, 2 ``outputs``;
* ``Tensor``: 0 ``shape``, 1 ``type``, 3 ``name``, 4 ``quantization``;
* ``QuantizationParameters``: 2 ``scale``, 3 ``zero_point``.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass

__all__ = [
    "METADATA_NAME",
    "TFLiteFormatError",
    "TensorInfo",
    "read_anyecg_metadata",
    "read_io_tensors",
    "read_metadata",
]

METADATA_NAME = "anyecg_edge"
FILE_IDENTIFIER = b"TFL3"
TENSOR_TYPES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 6: "bool", 7: "int16", 9: "int8"}


class TFLiteFormatError(ValueError):
    """The bytes are not a readable TFLite model (truncated, wrong identifier, bad offsets)."""


@dataclass(frozen=True)
class TensorInfo:
    """An input or output tensor: name, shape, dtype and per-tensor quantisation (if any)."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    scale: float | None
    zero_point: int | None


class _Reader:
    def __init__(self, data: bytes):
        self.data = memoryview(data)

    def _unpack(self, fmt: str, pos: int):
        try:
            return struct.unpack_from(fmt, self.data, pos)[0]
        except struct.error:
            raise TFLiteFormatError(f"offset {pos} is outside the {len(self.data)}-byte file (truncated?)") from None

    def u8(self, pos: int) -> int:
        return self._unpack("<B", pos)

    def u16(self, pos: int) -> int:
        return self._unpack("<H", pos)

    def u32(self, pos: int) -> int:
        return self._unpack("<I", pos)

    def i32(self, pos: int) -> int:
        return self._unpack("<i", pos)

    def field(self, table: int, index: int) -> int | None:
        """Absolute position of field ``index`` of the table at ``table``, or None if absent."""
        vtable = table - self.i32(table)
        vt_size = self.u16(vtable)
        slot = 4 + 2 * index
        if slot >= vt_size:
            return None
        offset = self.u16(vtable + slot)
        return table + offset if offset else None

    def deref(self, pos: int) -> int:
        return pos + self.u32(pos)

    def table(self, table: int, index: int) -> int | None:
        pos = self.field(table, index)
        return None if pos is None else self.deref(pos)

    def vector(self, table: int, index: int) -> tuple[int, int]:
        """(start, length) of a vector field; (0, 0) if absent."""
        pos = self.field(table, index)
        if pos is None:
            return 0, 0
        start = self.deref(pos)
        return start + 4, self.u32(start)

    def tables(self, table: int, index: int) -> list[int]:
        start, length = self.vector(table, index)
        return [self.deref(start + 4 * i) for i in range(length)]

    def string(self, table: int, index: int) -> str:
        start, length = self.vector(table, index)
        if start + length > len(self.data):
            raise TFLiteFormatError("a string runs past the end of the file (truncated?)")
        return bytes(self.data[start : start + length]).decode("utf-8", errors="replace")

    def scalars(self, table: int, index: int, fmt: str) -> list:
        start, length = self.vector(table, index)
        size = struct.calcsize(fmt)
        if start + size * length > len(self.data):
            raise TFLiteFormatError("a vector runs past the end of the file (truncated?)")
        return list(struct.unpack_from(f"<{length}{fmt}", self.data, start)) if length else []

    def scalar(self, table: int, index: int, fmt: str, default):
        pos = self.field(table, index)
        return default if pos is None else self._unpack("<" + fmt, pos)


def _model(data: bytes) -> tuple[_Reader, int]:
    if len(data) < 8:
        raise TFLiteFormatError(f"{len(data)} bytes is too short for a TFLite model")
    if bytes(data[4:8]) != FILE_IDENTIFIER:
        raise TFLiteFormatError(f"not a TFLite model: file identifier {bytes(data[4:8])!r}, expected {FILE_IDENTIFIER!r}")
    reader = _Reader(data)
    return reader, reader.deref(0)


def _buffer_bytes(reader: _Reader, buffer: int) -> bytes:
    start, length = reader.vector(buffer, 0)
    if length:
        if start + length > len(reader.data):
            raise TFLiteFormatError("a buffer runs past the end of the file (truncated?)")
        return bytes(reader.data[start : start + length])
    offset = reader.scalar(buffer, 1, "Q", 0)
    size = reader.scalar(buffer, 2, "Q", 0)
    if offset > 1 and size:
        if offset + size > len(reader.data):
            raise TFLiteFormatError("an external buffer runs past the end of the file (truncated?)")
        return bytes(reader.data[offset : offset + size])
    return b""


def read_metadata(data: bytes) -> dict[str, bytes]:
    """All ``Model.metadata`` entries as {name: bytes}."""
    reader, model = _model(data)
    buffers = reader.tables(model, 4)
    entries: dict[str, bytes] = {}
    for meta in reader.tables(model, 6):
        name = reader.string(meta, 0)
        index = reader.scalar(meta, 1, "I", 0)
        if index >= len(buffers):
            raise TFLiteFormatError(f"metadata {name!r} points at buffer {index} of {len(buffers)}")
        entries[name] = _buffer_bytes(reader, buffers[index])
    return entries


def read_anyecg_metadata(data: bytes) -> dict:
    """The AnyECG-Edge JSON document embedded in a model.

    Raises:
        TFLiteFormatError: not a TFLite file, truncated, or no (valid) AnyECG-Edge metadata.
    """
    entries = read_metadata(data)
    if METADATA_NAME not in entries:
        raise TFLiteFormatError(
            f"the model carries no {METADATA_NAME!r} metadata (entries: {sorted(entries) or 'none'}); "
            "export it with 'anyecg-edge export'"
        )
    try:
        document = json.loads(entries[METADATA_NAME].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TFLiteFormatError(f"the {METADATA_NAME!r} metadata is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise TFLiteFormatError(f"the {METADATA_NAME!r} metadata is not a JSON object")
    return document


def _tensor(reader: _Reader, tensor: int) -> TensorInfo:
    shape = tuple(reader.scalars(tensor, 0, "i"))
    dtype = TENSOR_TYPES.get(reader.scalar(tensor, 1, "b", 0), "unknown")
    name = reader.string(tensor, 3)
    scale = zero_point = None
    quant = reader.table(tensor, 4)
    if quant is not None:
        scales = reader.scalars(quant, 2, "f")
        zeros = reader.scalars(quant, 3, "q")
        if len(scales) == 1:
            scale, zero_point = float(scales[0]), int(zeros[0]) if zeros else 0
    return TensorInfo(name, shape, dtype, scale, zero_point)


def read_io_tensors(data: bytes) -> tuple[list[TensorInfo], list[TensorInfo]]:
    """(inputs, outputs) of the first subgraph."""
    reader, model = _model(data)
    subgraphs = reader.tables(model, 2)
    if not subgraphs:
        raise TFLiteFormatError("the model has no subgraph")
    graph = subgraphs[0]
    tensors = reader.tables(graph, 0)

    def pick(index: int) -> list[TensorInfo]:
        out = []
        for i in reader.scalars(graph, index, "i"):
            if not 0 <= i < len(tensors):
                raise TFLiteFormatError(f"tensor index {i} out of range")
            out.append(_tensor(reader, tensors[i]))
        return out

    return pick(1), pick(2)
