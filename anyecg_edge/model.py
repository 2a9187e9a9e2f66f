"""A self-describing int8 TFLite model on the device: metadata, interpreter, predictions.

The ``.tflite`` file carries a JSON document (see ``docs/model-format.md``) with the label
spec, preprocessing version, sampling rate, window length, default hop, input/output
quantisation and the per-output transform from the int8 output to a lab value or a
probability. :class:`EdgeModel` reads it without TensorFlow, refuses a file it cannot
serve, and runs the interpreter:

* ``ai-edge-litert`` when installed (XNNPACK handles int8),
* ``tflite-runtime`` otherwise (no XNNPACK for int8: 9-14x slower).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from firmware_bridge.tflite_file import TFLiteFormatError, read_anyecg_metadata

from .errors import LabelSpecError, ModelFileError, PreprocessingError
from .labels import LabelSpec
from .preprocess import TARGET_FS, PreprocessConfig, check_version

__all__ = ["FORMAT", "FORMAT_VERSION", "INTERPRETERS", "EdgeModel", "ModelInfo", "load_interpreter"]

FORMAT = "anyecg-edge-model"
FORMAT_VERSION = 1
INTERPRETERS = ("auto", "ai-edge-litert", "tflite-runtime")


@dataclass(frozen=True)
class OutputTransform:
    """value = activation(scale * raw + offset), raw being the dequantised model output."""

    scale: float = 1.0
    offset: float = 0.0
    activation: str = "identity"


@dataclass(frozen=True)
class ModelInfo:
    """What a model file says about itself, validated."""

    label_spec: LabelSpec
    preprocess: PreprocessConfig
    sampling_rate_hz: int
    window_samples: int
    default_hop_s: float
    transforms: tuple[OutputTransform, ...]
    document: dict

    @classmethod
    def from_document(cls, doc: dict, source: str = "model") -> "ModelInfo":
        def need(key: str):
            if key not in doc:
                raise ModelFileError(f"{source}: metadata lacks {key!r}")
            return doc[key]

        if doc.get("format") != FORMAT:
            raise ModelFileError(f"{source}: metadata format is {doc.get('format')!r}, expected {FORMAT!r}")
        if int(doc.get("format_version", 0)) > FORMAT_VERSION:
            raise ModelFileError(
                f"{source}: model format version {doc.get('format_version')} is newer than this toolkit reads "
                f"({FORMAT_VERSION}); upgrade anyecg-edge"
            )
        try:
            spec = LabelSpec.from_dict(need("label_spec"))
        except LabelSpecError as exc:
            raise ModelFileError(f"{source}: embedded label spec is invalid: {exc}") from None
        pre = need("preprocessing")
        try:
            check_version(str(pre.get("version")))
            config = PreprocessConfig(
                mains_hz=float(pre.get("mains_hz", 50.0)), window_samples=int(need("window_samples"))
            )
        except PreprocessingError as exc:
            raise ModelFileError(f"{source}: {exc}") from None
        rate = int(need("sampling_rate_hz"))
        if rate != TARGET_FS:
            raise ModelFileError(f"{source}: model expects {rate} Hz; this toolkit preprocesses to {TARGET_FS} Hz")
        raw_transforms = doc.get("output_transform") or [
            {"activation": "sigmoid" if o.is_binary else "identity"} for o in spec.outputs
        ]
        if len(raw_transforms) != len(spec):
            raise ModelFileError(f"{source}: {len(raw_transforms)} output transforms for {len(spec)} outputs")
        transforms = []
        for t in raw_transforms:
            activation = t.get("activation", "identity")
            if activation not in ("identity", "sigmoid"):
                raise ModelFileError(f"{source}: unknown output activation {activation!r}")
            transforms.append(OutputTransform(float(t.get("scale", 1.0)), float(t.get("offset", 0.0)), activation))
        hop = float(doc.get("default_hop_s", 2.0))
        if not math.isfinite(hop) or hop <= 0:
            raise ModelFileError(f"{source}: invalid default_hop_s {hop!r}")
        return cls(spec, config, rate, config.window_samples, hop, tuple(transforms), doc)


def _interpreter_class(interpreter: str):
    if interpreter not in INTERPRETERS:
        raise ValueError(f"interpreter must be one of {INTERPRETERS}")
    candidates = ("ai-edge-litert", "tflite-runtime") if interpreter == "auto" else (interpreter,)
    for name in candidates:
        try:
            if name == "ai-edge-litert":
                from ai_edge_litert.interpreter import Interpreter
            else:
                from tflite_runtime.interpreter import Interpreter
        except ImportError:
            continue
        return Interpreter, name
    raise ModelFileError(f"no TFLite interpreter ({' or '.join(candidates)}) is installed: pip install ai-edge-litert")


def load_interpreter(model_content: bytes, threads: int = 1, interpreter: str = "auto"):
    """Create and allocate a TFLite interpreter; returns (interpreter, backend name)."""
    cls, name = _interpreter_class(interpreter)
    try:
        instance = cls(model_content=model_content, num_threads=threads)
        instance.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise ModelFileError(f"the interpreter cannot load the model: {exc}") from None
    return instance, name


class EdgeModel:
    """An exported AnyECG-Edge model ready to run on preprocessed windows."""

    def __init__(self, content: bytes, source: str = "model", threads: int = 1, interpreter: str = "auto"):
        try:
            document = read_anyecg_metadata(content)
        except TFLiteFormatError as exc:
            raise ModelFileError(f"{source}: {exc}") from None
        declared = document.get("file_size")
        if declared is not None and int(declared) != len(content):
            raise ModelFileError(
                f"{source}: the file has {len(content)} bytes but the model declares {int(declared)}; "
                "it is truncated or was modified"
            )
        self.source = source
        self.info = ModelInfo.from_document(document, source)
        self.interpreter, self.backend = load_interpreter(content, threads, interpreter)
        self.threads = threads
        self.size_bytes = len(content)
        self._input = self.interpreter.get_input_details()[0]
        self._output = self.interpreter.get_output_details()[0]
        n_in = int(np.prod(self._input["shape"]))
        if n_in != self.info.window_samples:
            raise ModelFileError(f"{source}: input tensor has {n_in} values, metadata says {self.info.window_samples}")
        n_out = int(np.prod(self._output["shape"]))
        if n_out != len(self.info.label_spec):
            raise ModelFileError(f"{source}: output tensor has {n_out} values for {len(self.info.label_spec)} outputs")
        self._in_scale, self._in_zero = self._input["quantization"]
        self._out_scale, self._out_zero = self._output["quantization"]
        transforms = self.info.transforms
        self._t_scale = np.array([t.scale for t in transforms])
        self._t_offset = np.array([t.offset for t in transforms])
        self._sigmoid = np.array([t.activation == "sigmoid" for t in transforms])

    @classmethod
    def load(cls, path: str | Path, threads: int = 1, interpreter: str = "auto") -> "EdgeModel":
        path = Path(path)
        if not path.is_file():
            raise ModelFileError(f"{path}: model file not found")
        return cls(path.read_bytes(), str(path), threads, interpreter)

    @property
    def label_spec(self) -> LabelSpec:
        return self.info.label_spec

    @property
    def input_dtype(self):
        return self._input["dtype"]

    def quantize_input(self, window: np.ndarray) -> np.ndarray:
        """A preprocessed float window as the model's input tensor (int8 for full-integer models)."""
        x = np.asarray(window, dtype=np.float32).reshape(self._input["shape"])
        if self._input["dtype"] == np.float32:
            return x
        info = np.iinfo(self._input["dtype"])
        q = np.round(x / self._in_scale) + self._in_zero
        return np.clip(q, info.min, info.max).astype(self._input["dtype"])

    def invoke_raw(self, tensor: np.ndarray) -> np.ndarray:
        """Run one input tensor; returns the output tensor as stored (int8 or float)."""
        self.interpreter.set_tensor(self._input["index"], tensor)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self._output["index"]).reshape(-1).copy()

    def to_values(self, raw: np.ndarray) -> np.ndarray:
        """Output tensor(s) -> lab values (regression) and probabilities (binary)."""
        raw = np.asarray(raw)
        if self._output["dtype"] != np.float32:
            raw = (raw.astype(np.float64) - self._out_zero) * self._out_scale
        values = raw.astype(np.float64) * self._t_scale + self._t_offset
        return np.where(self._sigmoid, 1.0 / (1.0 + np.exp(-np.clip(values, -60, 60))), values)

    def predict(self, windows: np.ndarray) -> np.ndarray:
        """Preprocessed windows (n, 1, samples) or (samples,) -> values (n, outputs)."""
        windows = np.asarray(windows, dtype=np.float32)
        windows = windows.reshape(-1, self.info.window_samples)
        return np.stack([self.to_values(self.invoke_raw(self.quantize_input(w))) for w in windows])
