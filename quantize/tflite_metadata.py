"""Embedding AnyECG-Edge metadata into a ``.tflite`` file (the reader is in firmware_bridge).

The document goes into ``Model.metadata`` under :data:`firmware_bridge.tflite_file.METADATA_NAME`
as UTF-8 JSON in a buffer of its own, the standard place TFLite keeps model metadata;
interpreters ignore it, and the runtime reads it with :func:`read_anyecg_metadata`.
"""

from __future__ import annotations

import json

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema

from firmware_bridge.tflite_file import FILE_IDENTIFIER, METADATA_NAME

__all__ = ["embed_metadata"]


def embed_metadata(tflite: bytes, document: dict, name: str = METADATA_NAME) -> bytes:
    """Return ``tflite`` with ``document`` (JSON-serialisable) stored as metadata ``name``.

    An existing entry of the same name is replaced; everything else is kept. The
    document gains ``file_size``, the byte length of the returned file as a fixed-width
    decimal string, so a reader can tell a truncated file from a whole one.
    """
    sized = {**document, "file_size": "0" * 12}
    first = _embed(tflite, sized, name)
    sized["file_size"] = f"{len(first):012d}"
    final = _embed(tflite, sized, name)
    assert len(final) == len(first), "fixed-width file_size must not change the file length"
    return final


def _embed(tflite: bytes, document: dict, name: str) -> bytes:
    payload = json.dumps(document, sort_keys=True, separators=(",", ":")).encode("utf-8")
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(tflite, 0))
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(payload, dtype=np.uint8)
    model.buffers = list(model.buffers or []) + [buffer]
    entry = schema.MetadataT()
    entry.name = name
    entry.buffer = len(model.buffers) - 1
    kept = [m for m in (model.metadata or []) if (m.name.decode() if isinstance(m.name, bytes) else m.name) != name]
    model.metadata = kept + [entry]
    builder = flatbuffers.Builder(len(tflite) + len(payload) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=FILE_IDENTIFIER)
    return bytes(builder.Output())
