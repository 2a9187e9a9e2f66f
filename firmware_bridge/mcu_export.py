"""Microcontroller export: an int8 ``.tflite`` as C source, filters as biquads, TFLM checks.

What a firmware author needs to run a model on a microcontroller with TensorFlow Lite
Micro (TFLM):

* the model as a 16-byte-aligned ``const unsigned char`` array and its length;
* the facts to feed and read it, as C constants: window length, sampling rate, input and
  output quantisation, label names, kinds and units (from the model's ``anyecg_edge``
  metadata, when present);
* the canonical ECGFounder preprocessing for on-device use: a 50/60 Hz IIR notch (Q 30)
  and a 4th-order Butterworth band-pass 0.67-40 Hz, both as second-order sections
  (``b0 b1 b2 a0 a1 a2`` rows, ``a0 = 1``), applied forward then backward over the
  window (zero phase, like ``scipy.signal.filtfilt``); then a 201-sample median
  baseline is subtracted and the window is z-scored;
* the tensor arena TFLM needs, measured by running the model in TFLM's Python
  interpreter, and proof that TFLM's outputs equal the TFLite interpreter's on the same
  int8 inputs.

Nothing here imports TensorFlow. The TFLM and TFLite interpreters (``tflite-micro`` and
``ai-edge-litert``) are imported only by the functions that run models.

References: TFLM ``RecordingMicroAllocator`` and ``python/tflite_micro/runtime.py``
(tflite-micro); SciPy ``iirnotch``, ``butter``, ``tf2sos``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import ExportError
from .tflite_file import TFLiteFormatError, TensorInfo, read_io_tensors, read_metadata

__all__ = [
    "ArenaReport",
    "ExportResult",
    "ModelFacts",
    "ParityReport",
    "check_tflm_parity",
    "export_c",
    "measure_arena",
    "model_facts",
    "preprocessing_sos",
    "render_c",
]

#: The canonical preprocessing (ECGFounder "ecgfounder-v1") at its native rate.
PREPROCESSING_RATE_HZ = 500
NOTCH_Q = 30.0
BANDPASS_HZ = (0.67, 40.0)
BANDPASS_ORDER = 4
BASELINE_MEDIAN_SAMPLES = 201
#: Arena alignment TFLM applies to the buffer it is given.
ARENA_ALIGNMENT = 16


@dataclass(frozen=True)
class ModelFacts:
    """What a firmware needs to know about a model, from its file alone.

    Attributes:
        input: the input tensor (shape, dtype, scale, zero point).
        output: the output tensor.
        window_samples: samples per window (from metadata, else the input shape).
        sampling_rate_hz: the window's rate, or None when the file does not say.
        labels: the label spec's outputs (``name``, ``kind``, ``unit``), or () without metadata.
        label_spec_name: the label spec's name, or None.
        preprocessing_version: e.g. ``"ecgfounder-v1"``, or None.
        mains_hz: the notch frequency the model was trained with, or None.
        has_metadata: the file carries ``anyecg_edge`` metadata.
    """

    input: TensorInfo
    output: TensorInfo
    window_samples: int
    sampling_rate_hz: float | None
    labels: tuple[dict, ...] = ()
    label_spec_name: str | None = None
    preprocessing_version: str | None = None
    mains_hz: float | None = None
    has_metadata: bool = False


def model_facts(data: bytes) -> ModelFacts:
    """Read tensor facts and (optional) AnyECG-Edge metadata from a ``.tflite`` file's bytes.

    Raises:
        ExportError: not a TFLite file, not exactly one input and one output, not int8
            input and output with per-tensor quantisation, or unreadable metadata.
    """
    try:
        inputs, outputs = read_io_tensors(data)
        entries = read_metadata(data)
    except TFLiteFormatError as exc:
        raise ExportError(f"cannot read the model: {exc}") from None
    if len(inputs) != 1 or len(outputs) != 1:
        raise ExportError(f"the model has {len(inputs)} inputs and {len(outputs)} outputs; export-c expects one of each")
    (tensor_in,), (tensor_out,) = inputs, outputs
    for role, tensor in (("input", tensor_in), ("output", tensor_out)):
        if tensor.dtype != "int8" or tensor.scale is None:
            raise ExportError(
                f"the model's {role} is {tensor.dtype} without per-tensor quantisation; export-c needs a "
                "full-integer int8 model (int8 input and output)"
            )
    meta: dict = {}
    if "anyecg_edge" in entries:
        try:
            meta = json.loads(entries["anyecg_edge"].decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ExportError(f"the model's anyecg_edge metadata is not valid JSON: {exc}") from None
        if not isinstance(meta, dict):
            raise ExportError("the model's anyecg_edge metadata is not a JSON object")
    window = meta.get("window_samples")
    if window is None:
        sizes = [d for d in tensor_in.shape[1:] if d > 1]
        window = sizes[0] if len(sizes) == 1 else int(np.prod(tensor_in.shape[1:]))
    spec = meta.get("label_spec") or {}
    labels = tuple(
        {"name": str(o.get("name", f"output_{i}")), "kind": str(o.get("kind", "")), "unit": str(o.get("unit") or "")}
        for i, o in enumerate(spec.get("outputs", ()))
    )
    n_out = int(np.prod(tensor_out.shape[1:])) if len(tensor_out.shape) > 1 else int(np.prod(tensor_out.shape))
    if labels and len(labels) != n_out:
        raise ExportError(f"the metadata names {len(labels)} labels but the output tensor has {n_out} values")
    pre = meta.get("preprocessing") or {}
    rate = meta.get("sampling_rate_hz")
    return ModelFacts(
        tensor_in,
        tensor_out,
        int(window),
        float(rate) if rate is not None else None,
        labels,
        spec.get("name"),
        pre.get("version"),
        float(pre["mains_hz"]) if pre.get("mains_hz") is not None else None,
        bool(meta),
    )


def preprocessing_sos(sampling_rate_hz: float = PREPROCESSING_RATE_HZ, mains_hz: float = 50.0) -> dict[str, np.ndarray]:
    """The canonical filters as second-order sections (float64, shape (n, 6)).

    Returns:
        ``{"notch": (1, 6), "bandpass": (4, 6)}``: ``iirnotch(mains_hz, 30)`` and
        ``butter(4, [0.67, 40], "bandpass")`` at ``sampling_rate_hz``. Apply each forward
        then backward (``scipy.signal.sosfiltfilt``), notch first.

    Raises:
        ExportError: the mains frequency is not below Nyquist.
    """
    from scipy.signal import butter, iirnotch, tf2sos

    if not 0 < mains_hz < sampling_rate_hz / 2 or not BANDPASS_HZ[1] < sampling_rate_hz / 2:
        raise ExportError(f"mains {mains_hz} Hz and the 40 Hz band edge must lie below Nyquist ({sampling_rate_hz / 2} Hz)")
    b, a = iirnotch(mains_hz, NOTCH_Q, fs=sampling_rate_hz)
    notch = tf2sos(b, a)
    bandpass = butter(BANDPASS_ORDER, list(BANDPASS_HZ), btype="bandpass", fs=sampling_rate_hz, output="sos")
    return {"notch": notch, "bandpass": bandpass}


@dataclass(frozen=True)
class ArenaReport:
    """Tensor-arena needs of a model under TFLM.

    Attributes:
        used_bytes: arena bytes TFLM's recording allocator used (head + tail) on this host.
        recommended_bytes: ``used_bytes`` plus 16 bytes for buffer alignment, rounded up to
            16; verified to allocate and invoke.
        allocations: TFLM's own breakdown (``print_allocations``).
    """

    used_bytes: int
    recommended_bytes: int
    allocations: str


@dataclass(frozen=True)
class ParityReport:
    """TFLM against the TFLite interpreter on the same int8 inputs.

    Attributes:
        inputs: how many inputs were compared.
        max_abs_diff: largest output difference, in int8 steps.
        equal: every output was identical.
    """

    inputs: int
    max_abs_diff: int
    equal: bool


@contextlib.contextmanager
def _capture_stderr_fd() -> Iterator[list[str]]:
    """Capture what native code writes to file descriptor 2."""
    out: list[str] = []
    with tempfile.TemporaryFile(mode="w+b") as sink:
        saved = os.dup(2)
        try:
            os.dup2(sink.fileno(), 2)
            yield out
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            out.append(sink.read().decode("utf-8", errors="replace"))


def _tflm(data: bytes, arena_size: int):
    try:
        from tflite_micro import runtime
    except ModuleNotFoundError as exc:
        raise ExportError(
            "checking under TensorFlow Lite Micro needs the 'tflite-micro' package (pip install tflite-micro), "
            "or skip the check with --no-check"
        ) from exc
    with _capture_stderr_fd():
        try:
            return runtime.Interpreter.from_bytes(bytes(data), arena_size=arena_size)
        except RuntimeError as exc:
            raise ExportError(f"TFLM could not prepare the model with a {arena_size}-byte arena: {exc}") from None


def _tflm_run(interpreter, x: np.ndarray) -> np.ndarray:
    interpreter.set_input(x, 0)
    with _capture_stderr_fd():
        interpreter.invoke()
    return np.array(interpreter.get_output(0))


def _probe_input(facts: ModelFacts, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(-128, 128, size=facts.input.shape, dtype=np.int64).astype(np.int8)


def measure_arena(data: bytes, facts: ModelFacts | None = None) -> ArenaReport:
    """Run the model once in TFLM and report the tensor arena it needs.

    Raises:
        ExportError: TFLM is missing or cannot run the model.
    """
    facts = facts or model_facts(data)
    generous = max(4 * 1024 * 1024, 10 * len(data))
    interpreter = _tflm(data, generous)
    _tflm_run(interpreter, _probe_input(facts, np.random.default_rng(0)))
    with _capture_stderr_fd() as captured:
        interpreter.print_allocations()
    text = captured[0] if captured else ""
    found = re.search(r"Arena allocation total (\d+) bytes", text)
    if not found:
        raise ExportError("TFLM did not report its arena use (no 'Arena allocation total' line)")
    used = int(found.group(1))
    recommended = math.ceil((used + ARENA_ALIGNMENT) / ARENA_ALIGNMENT) * ARENA_ALIGNMENT
    _tflm_run(_tflm(data, recommended), _probe_input(facts, np.random.default_rng(1)))
    return ArenaReport(used, recommended, text.strip())


def check_tflm_parity(data: bytes, facts: ModelFacts | None = None, n_inputs: int = 8, seed: int = 0) -> ParityReport:
    """Compare TFLM with the TFLite interpreter (reference kernels) on seeded int8 inputs.

    Raises:
        ExportError: an interpreter is missing or cannot run the model.
    """
    facts = facts or model_facts(data)
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ModuleNotFoundError as exc:
        raise ExportError("the parity check needs the TFLite interpreter 'ai-edge-litert' (pip install ai-edge-litert)") from exc
    reference = Interpreter(model_content=bytes(data), experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    reference.allocate_tensors()
    in_index = reference.get_input_details()[0]["index"]
    out_index = reference.get_output_details()[0]["index"]
    micro = _tflm(data, max(4 * 1024 * 1024, 10 * len(data)))
    rng = np.random.default_rng(seed)
    worst = 0
    for _ in range(n_inputs):
        x = _probe_input(facts, rng)
        reference.set_tensor(in_index, x)
        reference.invoke()
        want = reference.get_tensor(out_index).astype(np.int32)
        got = _tflm_run(micro, x).astype(np.int32)
        if got.shape != want.shape:
            raise ExportError(f"TFLM output shape {got.shape} differs from TFLite's {want.shape}")
        worst = max(worst, int(np.abs(got - want).max()))
    return ParityReport(n_inputs, worst, worst == 0)


def c_identifier(name: str) -> str:
    """A C identifier made from ``name`` (lower case, ``_`` for anything else)."""
    ident = re.sub(r"[^0-9a-zA-Z_]", "_", name).strip("_").lower() or "model"
    return f"m_{ident}" if ident[0].isdigit() else ident


def _c_string(text: str) -> str:
    escaped = text.encode("utf-8").decode("ascii", errors="backslashreplace").replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _c_float(value: float) -> str:
    text = f"{float(np.float32(value)):.9g}"
    if "e" not in text and "." not in text and "inf" not in text:
        text += ".0"
    return text + "f"


def render_c(
    data: bytes,
    facts: ModelFacts,
    name: str,
    sos: dict[str, np.ndarray] | None = None,
    filter_rate_hz: float | None = None,
    mains_hz: float | None = None,
    arena: ArenaReport | None = None,
) -> tuple[str, str]:
    """The header and source text.

    Args:
        data: the ``.tflite`` bytes.
        facts: from :func:`model_facts`.
        name: C identifier prefix (see :func:`c_identifier`).
        sos: filters from :func:`preprocessing_sos`, or None to leave them out.
        filter_rate_hz: the rate the filters were designed for.
        mains_hz: the notch frequency.
        arena: from :func:`measure_arena`, or None.

    Returns:
        ``(header, source)``; the source includes ``<name>.h``.
    """
    ident = c_identifier(name)
    macro = ident.upper()
    guard = f"{macro}_H_"
    lines = [
        f"/* {ident}.h: int8 TFLite model and preprocessing constants for TensorFlow Lite Micro.",
        " * Generated by 'anyecg-edge export-c'. Do not edit.",
        " *",
        f" * Model: {len(data)} bytes, input {list(facts.input.shape)} {facts.input.dtype}, output {list(facts.output.shape)} {facts.output.dtype}.",
        " * Quantisation: real = scale * (q - zero_point).",
    ]
    if not facts.has_metadata:
        lines.append(" * The model carries no anyecg_edge metadata: no label constants; quantisation read from the tensors.")
    if facts.preprocessing_version:
        lines.append(f" * Preprocessing: {facts.preprocessing_version}.")
    if sos is not None:
        lines += [
            " *",
            f" * Preprocessing of one window at {filter_rate_hz:g} Hz, in this order:",
            f" *   1. notch at {mains_hz:g} Hz (Q {NOTCH_Q:g}), then",
            f" *   2. Butterworth band-pass {BANDPASS_HZ[0]:g}-{BANDPASS_HZ[1]:g} Hz (order {BANDPASS_ORDER}),",
            " *      each applied zero-phase (filtfilt): run the cascade of second-order sections",
            " *      forward over the window, then run it again backward over the result",
            " *      (reverse the samples, filter, reverse back). Rows are {b0, b1, b2, a0, a1, a2}",
            " *      with a0 = 1: y[n] = b0 x[n] + b1 x[n-1] + b2 x[n-2] - a1 y[n-1] - a2 y[n-2].",
            " *      scipy.signal.sosfiltfilt also pads the ends (odd extension) and sets the initial",
            " *      state from the steady-state response; do the same to match it at the edges.",
            f" *   3. subtract a running median of {BASELINE_MEDIAN_SAMPLES} samples (baseline), then",
            " *   4. z-score the window: (x - mean) / std.",
            " *   5. quantise: q = round(x / INPUT_SCALE) + INPUT_ZERO_POINT, clamped to [-128, 127].",
        ]
    lines += [" */", f"#ifndef {guard}", f"#define {guard}", "", "#include <stddef.h>", "#include <stdint.h>", ""]
    lines += ["#ifdef __cplusplus", 'extern "C" {', "#endif", ""]
    defines = [
        ("MODEL_LEN", f"{len(data)}u"),
        ("WINDOW_SAMPLES", str(facts.window_samples)),
    ]
    if facts.sampling_rate_hz is not None:
        defines.append(("SAMPLING_RATE_HZ", f"{facts.sampling_rate_hz:g}"))
    defines += [
        ("INPUT_SCALE", _c_float(facts.input.scale)),  # type: ignore[arg-type]
        ("INPUT_ZERO_POINT", f"({facts.input.zero_point})"),
        ("OUTPUT_SCALE", _c_float(facts.output.scale)),  # type: ignore[arg-type]
        ("OUTPUT_ZERO_POINT", f"({facts.output.zero_point})"),
        ("NUM_OUTPUTS", str(int(np.prod(facts.output.shape[1:] or facts.output.shape)))),
    ]
    if facts.labels:
        defines.append(("NUM_LABELS", str(len(facts.labels))))
    if arena is not None:
        defines.append(("TENSOR_ARENA_SIZE", f"{arena.recommended_bytes}u"))
    if sos is not None:
        defines += [
            ("FILTER_RATE_HZ", f"{filter_rate_hz:g}"),
            ("NOTCH_HZ", f"{mains_hz:g}"),
            ("NOTCH_SECTIONS", str(len(sos["notch"]))),
            ("BANDPASS_SECTIONS", str(len(sos["bandpass"]))),
            ("BASELINE_MEDIAN_SAMPLES", str(BASELINE_MEDIAN_SAMPLES)),
        ]
    width = max(len(k) for k, _ in defines) + len(macro) + 2
    lines += [f"#define {(macro + '_' + k).ljust(width)} {v}" for k, v in defines]
    if arena is not None:
        lines.append(f"/* Arena: TFLM used {arena.used_bytes} bytes on a 64-bit host; the size above adds alignment slack. */")
    lines += [
        "",
        "/* The .tflite flatbuffer, 16-byte aligned as TFLM requires. */",
        f"extern const unsigned char {ident}_data[];",
        f"extern const unsigned int {ident}_data_len;",
    ]
    if facts.labels:
        lines += [
            "",
            f"/* Output i is label i{': ' + facts.label_spec_name if facts.label_spec_name else ''}. kind: binary (logit) or regression. */",
            f"extern const char *const {ident}_label_names[{macro}_NUM_LABELS];",
            f"extern const char *const {ident}_label_kinds[{macro}_NUM_LABELS];",
            f"extern const char *const {ident}_label_units[{macro}_NUM_LABELS];",
        ]
    if sos is not None:
        lines += [
            "",
            f"extern const float {ident}_notch_sos[{macro}_NOTCH_SECTIONS][6];",
            f"extern const float {ident}_bandpass_sos[{macro}_BANDPASS_SECTIONS][6];",
        ]
    lines += ["", "#ifdef __cplusplus", "}", "#endif", "", f"#endif /* {guard} */", ""]
    header = "\n".join(lines)

    body = [
        f"/* {ident}.c: generated by 'anyecg-edge export-c'. Do not edit. */",
        f'#include "{ident}.h"',
        "",
        "#if defined(__GNUC__) || defined(__clang__)",
        "#define MODEL_ALIGN __attribute__((aligned(16)))",
        "#elif defined(_MSC_VER)",
        "#define MODEL_ALIGN __declspec(align(16))",
        "#else",
        "#define MODEL_ALIGN",
        "#endif",
        "",
        f"MODEL_ALIGN const unsigned char {ident}_data[] = {{",
    ]
    hexed = [f"0x{b:02x}" for b in data]
    body += ["  " + ", ".join(hexed[i : i + 12]) + "," for i in range(0, len(hexed), 12)]
    body += ["};", f"const unsigned int {ident}_data_len = {len(data)}u;"]
    if facts.labels:
        for key in ("name", "kind", "unit"):
            values = ", ".join(_c_string(label[key]) for label in facts.labels)
            body.append(f"const char *const {ident}_label_{key}s[{macro}_NUM_LABELS] = {{{values}}};")
    if sos is not None:
        for key in ("notch", "bandpass"):
            rows = ",\n".join("  {" + ", ".join(_c_float(v) for v in row) + "}" for row in sos[key])
            body.append(f"const float {ident}_{key}_sos[{macro}_{key.upper()}_SECTIONS][6] = {{\n{rows}\n}};")
    body.append("")
    return header, "\n".join(body)


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_c` wrote and measured.

    Attributes:
        header: path of the ``.h`` file.
        source: path of the ``.c`` file.
        facts: the model facts.
        arena: the arena report, or None without the TFLM check.
        parity: the TFLM parity report, or None without the check.
        notes: things the user should know (e.g. missing metadata).
    """

    header: Path
    source: Path
    facts: ModelFacts
    arena: ArenaReport | None = None
    parity: ParityReport | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


def export_c(
    tflite_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    name: str | None = None,
    *,
    mains_hz: float | None = None,
    filters: bool = True,
    check: bool = True,
) -> ExportResult:
    """Write ``<name>.h`` and ``<name>.c`` for a full-integer int8 ``.tflite`` model.

    Args:
        tflite_path: the model.
        out_dir: where to write (created if missing).
        name: C identifier prefix; default from the file name.
        mains_hz: the notch frequency; default the model's metadata, else 50.
        filters: include the preprocessing filters.
        check: run the model under TFLM, measure its arena and compare with TFLite.

    Raises:
        ExportError: unreadable or unsuitable model, a TFLM mismatch, or a missing
            interpreter while ``check`` is on.
    """
    path = Path(tflite_path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ExportError(f"cannot read {path}: {exc.strerror}", str(path)) from None
    facts = model_facts(data)
    notes = []
    if not facts.has_metadata:
        notes.append("the model has no anyecg_edge metadata: quantisation taken from its tensors, no label constants written")
    ident = c_identifier(name or path.stem)
    sos = rate = notch = None
    if filters:
        rate = facts.sampling_rate_hz or PREPROCESSING_RATE_HZ
        notch = mains_hz or facts.mains_hz or 50.0
        sos = preprocessing_sos(rate, notch)
    arena = parity = None
    if check:
        parity = check_tflm_parity(data, facts)
        if not parity.equal:
            raise ExportError(
                f"TFLM and the TFLite interpreter disagree by up to {parity.max_abs_diff} int8 steps on the same inputs; "
                "the model uses an op whose micro kernel differs", str(path)
            )
        arena = measure_arena(data, facts)
    header, source = render_c(data, facts, ident, sos, rate, notch, arena)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    header_path, source_path = out / f"{ident}.h", out / f"{ident}.c"
    header_path.write_text(header)
    source_path.write_text(source)
    return ExportResult(header_path, source_path, facts, arena, parity, tuple(notes))
