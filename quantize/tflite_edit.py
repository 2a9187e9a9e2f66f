"""Editing a converted ``.tflite`` file: embedded metadata and the int8 output range.

* :func:`embed_metadata`: the AnyECG-Edge document goes into ``Model.metadata`` under
  :data:`firmware_bridge.tflite_file.METADATA_NAME` as UTF-8 JSON in a buffer of its own,
  the standard place TFLite keeps model metadata; interpreters ignore it, and the runtime
  reads it with :func:`firmware_bridge.tflite_file.read_anyecg_metadata`.
* :func:`widen_output_range`: the int8 output tensor's scale and zero point are rewritten
  so that its range covers at least a given interval. TFLite and TFLite Micro kernels derive
  their requantisation multipliers from the tensors' scales when the model is prepared, so
  the producing operator then writes into the wider range; nothing else changes.
"""

from __future__ import annotations

import json

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema

from firmware_bridge.tflite_file import FILE_IDENTIFIER, METADATA_NAME

__all__ = ["embed_metadata", "widen_output_range"]


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


def widen_output_range(tflite: bytes, low: float, high: float) -> tuple[bytes, tuple[float, float]]:
    """Return ``tflite`` with every int8 graph output covering at least ``[low, high]``.

    The new range is the union of the calibrated range and ``[low, high]``; outputs that
    already cover it are left as they are. Also returns the (low, high) of the first output
    after the edit.

    Raises:
        ValueError: ``low >= 0 or high <= 0`` (an int8 range must hold zero), or an output
            that is not per-tensor int8.
    """
    if not low < 0 < high:
        raise ValueError(f"the output range must contain zero, got [{low}, {high}]")
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(tflite, 0))
    covered = None
    for graph in model.subgraphs:
        for index in graph.outputs:
            tensor = graph.tensors[index]
            q = tensor.quantization
            if tensor.type != schema.TensorType.INT8 or q is None or q.scale is None or len(q.scale) != 1:
                raise ValueError(f"output {tensor.name!r} is not a per-tensor int8 tensor")
            scale, zero = float(q.scale[0]), int(q.zeroPoint[0])
            lo, hi = (-128 - zero) * scale, (127 - zero) * scale
            if low < lo or high > hi:
                lo, hi = min(low, lo), max(high, hi)
                # 254 steps and a rounded-up zero point: both ends stay inside the 256 codes.
                scale = (hi - lo) / 254.0
                zero = int(np.clip(np.ceil(-128 - lo / scale), -128, 127))
                q.scale, q.zeroPoint = [scale], [zero]
                q.min, q.max = [lo], [hi]
            if covered is None:
                covered = ((-128 - zero) * scale, (127 - zero) * scale)
    builder = flatbuffers.Builder(len(tflite) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=FILE_IDENTIFIER)
    return bytes(builder.Output()), covered


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
