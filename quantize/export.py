"""Exporting a distilled student to a self-describing full-integer int8 TFLite file.

The pipeline is a list of stages (:data:`STAGES`), each a function that checks what it made;
a failure raises :class:`ExportError` naming the stage, and nothing reaches the output
folder until every stage has passed:

1. ``student``: load ``student.pt``, fold batch norm into the convolutions and clamp the
   input to +-``input_clip`` (the range the int8 input covers);
2. ``calibration``: draw real ECG windows (default 200) from the data the user gives,
   preprocessed canonically; refuse too few windows or non-finite samples;
3. ``onnx``: ``torch.onnx.export(dynamo=True, opset_version=18)``, optimised, saved;
4. ``onnx parity``: onnxruntime with every graph optimisation off (its Pad+MaxPool fusion
   changes results) against torch;
5. ``onnx2tf``: a subprocess on a *copy* of the ONNX file (onnx2tf rewrites its input) with
   ``-nuo`` (no onnxsim: it makes the same wrong fusion) and ``-osd``: TFLite float32 and a
   saved model;
6. ``tflite float32 parity``: TFLite float32 against torch (max abs diff below ``float_atol``);
7. ``int8``: a subprocess converts the saved model to full-integer int8 (int8 input and
   output) with the calibration windows as representative data, in NWC layout. This is
   the converter call ``onnx2tf -oiqt`` makes, without the int16-activation variants it
   would also build. The int8 output is then widened to cover at least +-``output_range``
   (:func:`quantize.tflite_edit.widen_output_range`): real calibration windows seldom reach
   the extreme outputs, which are the very cases the model exists to find;
8. ``metadata``: embed the JSON document (label spec, preprocessing, rates, quantisation,
   output transform, hashes, fidelity) in the int8 and float32 files;
9. ``int8 parity``: the int8 file through :class:`anyecg_edge.model.EdgeModel`, the
   runtime's own code path, against the float student: Pearson r and max error per output;
10. ``write``: move ``NAME.tflite``, ``NAME-float32.tflite``, ``NAME.onnx`` and
    ``NAME.export.json`` into the output folder.

The student predicts standardised outputs ``z``; ``output_transform`` (``value =
activation(std * z + mean)``) maps them back to logits/lab values, so one int8 tensor
carries all outputs at a similar resolution.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from anyecg_edge import __version__
from anyecg_edge.errors import AnyECGError
from anyecg_edge.preprocess import PREPROCESSING_VERSION, TARGET_FS, WINDOW_SAMPLES, PreprocessConfig

from .metrics import pearson_r
from .settings import checked_fields

__all__ = [
    "ExportConfig",
    "ExportError",
    "ExportResult",
    "STAGES",
    "calibration_windows",
    "convert_int8",
    "export",
    "export_onnx",
    "onnx_outputs",
    "run_onnx2tf",
    "tflite_outputs",
]

STAGES = (
    "student", "calibration", "onnx", "onnx parity", "onnx2tf", "tflite float32 parity",
    "int8", "metadata", "int8 parity", "write",
)


class ExportError(AnyECGError, RuntimeError):
    """A stage of the export failed; ``stage`` names it."""

    def __init__(self, stage: str, message: str):
        super().__init__(f"{stage}: {message}")
        self.stage = stage


@dataclass(frozen=True)
class ExportConfig:
    """Settings of an export (a recipe's ``export`` section).

    Attributes:
        name: file stem of the outputs.
        calibration_windows: windows drawn for int8 calibration.
        min_calibration_windows: fewer available windows than this is an error.
        parity_windows: windows (not used for calibration where possible) for the parity checks.
        float_atol: largest allowed |torch - ONNX| and |torch - TFLite float32|.
        hop_s: hop between calibration windows within a record (seconds).
        max_per_record: windows per record at most, so one long record cannot dominate.
        default_hop_s: the hop the runtime uses by default (written into the metadata).
        mains_hz: mains frequency of the canonical preprocessing.
        seed: seeds the window draw.
        input_clip: the exported model clamps its (z-scored) input to +-``input_clip``, and
            calibration sees clamped windows, so the int8 input step covers that range
            instead of the rarest spikes' (finer steps for the P and T waves); None keeps
            the full range.
        output_range: the int8 output covers at least +-``output_range`` standardised units
            (teacher standard deviations over the distillation windows) besides what the
            calibration windows reach, so an extreme output is not clipped; None keeps the
            calibrated range.
        onnx2tf_timeout_s: limit for each converter subprocess.
    """

    name: str = "model"
    calibration_windows: int = 200
    min_calibration_windows: int = 200
    parity_windows: int = 64
    float_atol: float = 1e-4
    hop_s: float = 5.0
    max_per_record: int = 20
    default_hop_s: float = 2.0
    mains_hz: float = 50.0
    seed: int = 0
    input_clip: float | None = 8.0
    output_range: float | None = 5.0
    onnx2tf_timeout_s: float = 3600.0

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name:
            raise ValueError("name must be a plain file stem")
        if self.calibration_windows < 1 or self.min_calibration_windows < 1 or self.parity_windows < 1:
            raise ValueError("window counts must be at least 1")
        if self.input_clip is not None and self.input_clip <= 0:
            raise ValueError("input_clip must be positive (or None)")
        if self.output_range is not None and self.output_range <= 0:
            raise ValueError("output_range must be positive (or None)")
        if self.float_atol <= 0 or self.default_hop_s <= 0 or self.hop_s <= 0:
            raise ValueError("float_atol, hop_s and default_hop_s must be positive")
        PreprocessConfig(mains_hz=self.mains_hz)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ExportConfig":
        return cls(**checked_fields(cls, data, "export settings"))


@dataclass
class ExportResult:
    """Paths written and every parity number measured."""

    tflite: Path
    tflite_float32: Path
    onnx: Path
    report_path: Path
    report: dict
    metadata: dict
    seconds: dict = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Stage helpers


def calibration_windows(
    sources, config: ExportConfig = ExportConfig(), windows_file: str | Path | None = None,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """(calibration, parity) preprocessed windows (n, 1, 5000) and a description of them.

    Either ``windows_file`` (a ``.npy`` of already preprocessed windows, (n, 5000) or
    (n, 1, 5000)) or ``sources`` (records, see :func:`quantize.corpus.discover`) cut into
    windows and canonically preprocessed.

    Raises:
        ExportError: (stage ``calibration``) no data, non-finite samples, too few windows.
    """
    from .corpus import CorpusError, discover, load_segments, preprocess_windows, source_name

    stage = "calibration"
    rng = np.random.default_rng(config.seed)
    if windows_file is not None:
        try:
            windows = np.load(windows_file, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ExportError(stage, f"cannot read {windows_file}: {exc}") from None
        if windows.ndim not in (2, 3) or windows.shape[-1] != WINDOW_SAMPLES:
            raise ExportError(stage, f"{windows_file}: expected (n, {WINDOW_SAMPLES}) windows, got {windows.shape}")
        windows = windows.reshape(-1, 1, WINDOW_SAMPLES).astype(np.float32)
        bad = int((~np.isfinite(windows)).sum())
        if bad:
            raise ExportError(stage, f"{windows_file} holds {bad} non-finite values (NaN/Inf); clean the set first")
        source = {"file": Path(windows_file).name}
    else:
        try:
            entries = discover(sources)
        except CorpusError as exc:
            raise ExportError(stage, str(exc)) from None
        _check_finite(entries)
        segments = load_segments(entries, hop_s=config.hop_s, max_per_record=config.max_per_record)
        if len(segments) == 0:
            raise ExportError(stage, "no readable windows in the calibration data")
        windows = preprocess_windows(segments.raw, PreprocessConfig(mains_hz=config.mains_hz))
        source = {"records": len(entries), "sources": sorted({source_name(e.source) for e in entries})}
    order = rng.permutation(len(windows))
    n_cal = min(config.calibration_windows, len(windows))
    if n_cal < config.min_calibration_windows:
        raise ExportError(
            stage,
            f"only {len(windows)} windows available but at least {config.min_calibration_windows} are needed "
            "for int8 calibration; give more recordings",
        )
    calibration = windows[order[:n_cal]]
    rest = order[n_cal:]
    parity = windows[rest[: config.parity_windows]] if len(rest) else calibration[: config.parity_windows]
    return calibration, parity, {**source, "windows": int(n_cal), "parity_windows": int(len(parity))}


def _check_finite(entries) -> None:
    from .corpus import _read_signals

    for entry in entries:
        try:
            signals = _read_signals(entry, ("I",))
        except Exception:
            continue  # unreadable records are skipped (with a warning) when windows are cut
        for signal, _fs in signals:
            bad = int((~np.isfinite(signal)).sum())
            if bad:
                raise ExportError(
                    "calibration", f"{entry.path} holds {bad} non-finite samples (NaN/Inf); "
                    "calibration data must be clean ECG"
                )


def export_onnx(model, path: Path) -> None:
    """torch -> ONNX with the dynamo exporter, opset 18, input ``x`` (1, leads, 5000), output ``y``."""
    import logging
    import warnings

    import torch

    x = torch.zeros(1, model.config.in_channels, WINDOW_SAMPLES)
    registry_log = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registry_log.level
    registry_log.setLevel(logging.ERROR)  # "torchvision is not installed": irrelevant here
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            program = torch.onnx.export(
                model, (x,), dynamo=True, opset_version=18, input_names=["x"], output_names=["y"], verbose=False,
            )
    finally:
        registry_log.setLevel(level)
    program.optimize()
    program.save(str(path))


def onnx_outputs(path: Path, windows: np.ndarray) -> np.ndarray:
    """onnxruntime with every graph optimisation off (the default ones fuse a zero Pad into MaxPool)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: w[None].astype(np.float32)})[0] for w in windows])


def tflite_outputs(content: bytes, windows: np.ndarray) -> np.ndarray:
    """A float32 TFLite model over (n, 1, 5000) windows, one window per invoke."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content, num_threads=1)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    results = []
    for w in windows:
        interpreter.set_tensor(inp["index"], w.reshape(inp["shape"]).astype(np.float32))
        interpreter.invoke()
        results.append(interpreter.get_tensor(out["index"]).reshape(-1).copy())
    return np.stack(results)


def clipped(model, limit: float | None):
    """``model`` behind a clamp of its input to +-``limit`` (the int8 input range)."""
    import torch

    if limit is None:
        return model

    class InputClip(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model
            self.config = model.config

        def forward(self, x):
            return self.model(torch.clamp(x, -limit, limit))

    return InputClip().eval()


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _subprocess(stage: str, command: list[str], log_path: Path, timeout: float) -> None:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES", "")}
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        raise ExportError(stage, f"the converter ran longer than {timeout:.0f} s and was stopped") from None
    except OSError as exc:
        raise ExportError(stage, f"cannot start the converter: {exc}") from None
    log_path.write_text(f"$ {' '.join(command)}\n{done.stdout}\n{done.stderr}")
    if done.returncode != 0:
        raise ExportError(stage, f"the converter failed (exit {done.returncode}):\n{_tail(done.stdout + done.stderr)}")


def _onnx2tf_command() -> list[str]:
    script = Path(sys.executable).parent / "onnx2tf"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "onnx2tf"]


def run_onnx2tf(onnx_path: Path, work: Path, timeout: float) -> tuple[Path, Path]:
    """onnx2tf on a copy of ``onnx_path``; returns (float32 .tflite, saved model folder)."""
    copy = work / "onnx2tf_input.onnx"
    shutil.copyfile(onnx_path, copy)
    out = work / "tf"
    _subprocess("onnx2tf", _onnx2tf_command() + ["-i", str(copy), "-o", str(out), "-osd", "-nuo"],
                work / "onnx2tf.log", timeout)
    found = sorted(out.glob("*_float32.tflite"))
    if not found or not (out / "saved_model.pb").is_file():
        raise ExportError("onnx2tf", f"the converter wrote no float32 TFLite/saved model (see {work / 'onnx2tf.log'})")
    return found[0], out


def convert_int8(saved_model: Path, calibration: np.ndarray, out: Path, work: Path, timeout: float) -> None:
    """Full-integer int8 conversion in a subprocess, calibrated on (n, 1, 5000) windows."""
    calib_path = work / "calibration_nwc.npy"
    np.save(calib_path, calibration.reshape(len(calibration), WINDOW_SAMPLES, 1).astype(np.float32))
    _subprocess("int8", [sys.executable, "-m", "quantize.export", "int8", str(saved_model), str(calib_path), str(out)],
                work / "int8.log", timeout)
    if not out.is_file():
        raise ExportError("int8", "the converter wrote no int8 model")


def int8_convert(saved_model: str, calibration_npy: str, out: str) -> None:
    """Full-integer int8 conversion of a saved model (run in a subprocess: imports TensorFlow)."""
    import tensorflow as tf

    data = np.load(calibration_npy)
    loaded = tf.saved_model.load(saved_model)
    signature = loaded.signatures["serving_default"]
    input_key = list(signature.structured_input_signature[1].keys())[0]

    def representative():
        for window in data:
            yield {input_key: tf.convert_to_tensor(window[None], dtype=tf.float32)}

    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.representative_dataset = representative
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    Path(out).write_bytes(converter.convert())


def _metadata(bundle, int8_bytes: bytes, calibration_info: dict, fidelity: dict, config: ExportConfig) -> dict:
    from firmware_bridge.tflite_file import read_io_tensors

    inputs, outputs = read_io_tensors(int8_bytes)
    if len(inputs) != 1 or len(outputs) != 1:
        raise ExportError("metadata", f"expected one input and one output tensor, got {len(inputs)} and {len(outputs)}")
    i, o = inputs[0], outputs[0]
    info = bundle.info
    return {
        "format": "anyecg-edge-model",
        "format_version": 1,
        "label_spec": bundle.label_spec.to_dict(),
        "preprocessing": {"version": PREPROCESSING_VERSION, "mains_hz": float(config.mains_hz)},
        "sampling_rate_hz": TARGET_FS,
        "window_samples": WINDOW_SAMPLES,
        "default_hop_s": float(config.default_hop_s),
        "input": {"name": i.name, "dtype": i.dtype, "shape": list(i.shape), "layout": "NWC",
                  "scale": i.scale, "zero_point": i.zero_point, "clip": config.input_clip},
        "output": {"name": o.name, "dtype": o.dtype, "shape": list(o.shape), "scale": o.scale,
                   "zero_point": o.zero_point},
        "output_transform": [
            {"scale": float(s), "offset": float(m), "activation": "sigmoid" if out.is_binary else "identity"}
            for s, m, out in zip(bundle.target_std, bundle.target_mean, bundle.label_spec.outputs)
        ],
        "teacher": bundle.teacher,
        "student": {"sha256": bundle.sha256, "config": bundle.config.to_dict(),
                    "params": int(info.get("params", 0)), "macs": int(info.get("macs", 0))},
        "fidelity": fidelity,
        "calibration": {"windows": calibration_info.get("windows"), "source": calibration_info},
        "toolkit_version": __version__,
        "created_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


# --------------------------------------------------------------------------------------------
# The pipeline


def export(
    student_path: str | Path,
    out_dir: str | Path,
    calibration_sources=None,
    config: ExportConfig = ExportConfig(),
    *,
    calibration_file: str | Path | None = None,
    keep_work: str | Path | None = None,
    log: Callable[[str], None] = print,
) -> ExportResult:
    """Run every stage of :data:`STAGES`; outputs appear in ``out_dir`` only if all pass.

    Args:
        student_path: ``student.pt`` written by :func:`quantize.distill.distill`.
        out_dir: folder for ``NAME.tflite`` (int8), ``NAME-float32.tflite``, ``NAME.onnx``
            and ``NAME.export.json``.
        calibration_sources: real ECG records (folders, WFDB, .npy, cohort folders).
        config: the settings.
        calibration_file: preprocessed windows (.npy) instead of ``calibration_sources``.
        keep_work: copy the intermediate folder (converter logs, saved model) here.
        log: where the stage lines go.

    Raises:
        ExportError: naming the stage that failed.
    """
    import torch

    from anyecg_edge.files import atomic_path
    from anyecg_edge.model import EdgeModel

    from .checkpoint import CheckpointError
    from .distill import load_student
    from .tflite_edit import embed_metadata, widen_output_range

    out_dir = Path(out_dir)
    seconds: dict[str, float] = {}
    report: dict = {"stages": {}}
    clock = time.perf_counter()

    def done(stage: str, line: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[stage] = round(now - clock, 2)
        clock = now
        report["stages"][stage] = line
        log(f"[{stage}] {line} ({seconds[stage]:.1f} s)")

    # 1. student
    try:
        bundle = load_student(student_path)
    except CheckpointError as exc:
        raise ExportError("student", str(exc)) from None
    model = clipped(bundle.model.fused(), config.input_clip)
    done("student", f"{Path(student_path).name}: {bundle.info.get('params')} parameters, "
         f"{bundle.info.get('macs', 0) / 1e6:.2f} M MACs, {len(bundle.label_spec)} outputs")

    # 2. calibration
    if calibration_file is None and not calibration_sources:
        raise ExportError("calibration", "no calibration data given (records or a .npy of windows)")
    calibration, parity, cal_info = calibration_windows(calibration_sources, config, calibration_file)
    if config.input_clip is not None:
        calibration = np.clip(calibration, -config.input_clip, config.input_clip)
    done("calibration", f"{len(calibration)} calibration and {len(parity)} parity windows")
    with torch.inference_mode():
        reference = model(torch.from_numpy(parity)).double().numpy()

    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{config.name}.export.", dir=out_dir))
    try:
        # 3. onnx
        onnx_path = work / f"{config.name}.onnx"
        try:
            export_onnx(model, onnx_path)
        except Exception as exc:  # the exporter raises many types
            raise ExportError("onnx", f"{type(exc).__name__}: {exc}") from None
        done("onnx", f"{onnx_path.stat().st_size / 1024:.0f} KB, opset 18 (dynamo)")

        # 4. onnx parity
        try:
            onnx_out = onnx_outputs(onnx_path, parity)
        except Exception as exc:
            raise ExportError("onnx parity", f"onnxruntime cannot run the model: {exc}") from None
        diff = float(np.max(np.abs(onnx_out - reference)))
        report["onnx_max_abs_diff"] = diff
        if not diff < config.float_atol:
            raise ExportError("onnx parity", f"ONNX differs from torch by {diff:.3g} (limit {config.float_atol:g})")
        done("onnx parity", f"torch vs onnxruntime (optimisations off): max abs diff {diff:.2e}")

        # 5. onnx2tf
        float_path, saved_model = run_onnx2tf(onnx_path, work, config.onnx2tf_timeout_s)
        done("onnx2tf", f"TFLite float32 {float_path.stat().st_size / 1024:.0f} KB and a saved model")

        # 6. tflite float32 parity
        try:
            tfl_out = tflite_outputs(float_path.read_bytes(), parity)
        except Exception as exc:
            raise ExportError("tflite float32 parity", f"the interpreter cannot run the float32 model: {exc}") from None
        diff = float(np.max(np.abs(tfl_out - reference)))
        report["tflite_float32_max_abs_diff"] = diff
        if not diff < config.float_atol:
            raise ExportError(
                "tflite float32 parity", f"TFLite float32 differs from torch by {diff:.3g} (limit {config.float_atol:g})"
            )
        done("tflite float32 parity", f"torch vs TFLite float32: max abs diff {diff:.2e}")

        # 7. int8
        int8_raw = work / "int8_raw.tflite"
        convert_int8(saved_model, calibration, int8_raw, work, config.onnx2tf_timeout_s)
        range_note = ""
        if config.output_range is not None:
            widened, (low, high) = widen_output_range(int8_raw.read_bytes(), -config.output_range, config.output_range)
            int8_raw.write_bytes(widened)
            range_note = f", output range [{low:.2f}, {high:.2f}] standardised"
        done("int8", f"full-integer int8 {int8_raw.stat().st_size / 1024:.0f} KB, {len(calibration)} calibration "
             f"windows{range_note}")

        # 8. metadata (the int8 parity numbers are filled in below, then embedded once more)
        provisional = _metadata(bundle, int8_raw.read_bytes(), cal_info, {}, config)
        probe = EdgeModel(embed_metadata(int8_raw.read_bytes(), provisional), source="int8 model")
        done("metadata", f"document of {len(json.dumps(provisional))} bytes; the runtime accepts it")

        # 9. int8 parity, through the runtime's own path
        float_values = _values(reference * bundle.target_std + bundle.target_mean, bundle)
        int8_values = probe.predict(parity)
        per_output = {}
        for j, output in enumerate(bundle.label_spec.outputs):
            a, b = float_values[:, j], int8_values[:, j]
            per_output[output.name] = {
                "pearson_r": pearson_r(a, b),
                "max_abs_error": float(np.max(np.abs(a - b))),
                "mean_abs_error": float(np.mean(np.abs(a - b))),
                "unit": output.unit,
            }
        report["int8_vs_float"] = per_output
        fidelity = {
            "int8_vs_float_student": {k: {"pearson_r": round(v["pearson_r"], 5),
                                          "max_abs_error": round(v["max_abs_error"], 5)} for k, v in per_output.items()},
            "student_vs_teacher_held_out": {k: {"pearson_r": round(v["pearson_r"], 5), "mae": round(v["mae"], 5)}
                                            for k, v in bundle.info.get("held_out", {}).items()},
            "float_max_abs_diff": {"onnx": report["onnx_max_abs_diff"],
                                   "tflite_float32": report["tflite_float32_max_abs_diff"]},
            "parity_windows": int(len(parity)),
        }
        document = _metadata(bundle, int8_raw.read_bytes(), cal_info, fidelity, config)
        int8_bytes = embed_metadata(int8_raw.read_bytes(), document)
        float_bytes = embed_metadata(float_path.read_bytes(), {**document, "input": {
            **document["input"], "dtype": "float32", "scale": None, "zero_point": None}, "output": {
            **document["output"], "dtype": "float32", "scale": None, "zero_point": None}})
        EdgeModel(int8_bytes, source="int8 model")
        done("int8 parity", "; ".join(f"{k} r={v['pearson_r']:.5f} max err {v['max_abs_error']:.4f} {v['unit']}"
                                      for k, v in per_output.items()))

        # 10. write
        report.update({"metadata": document, "sizes": {"tflite_int8": len(int8_bytes), "tflite_float32": len(float_bytes),
                                                       "onnx": onnx_path.stat().st_size}, "seconds": seconds})
        staged = {
            out_dir / f"{config.name}.tflite": int8_bytes,
            out_dir / f"{config.name}-float32.tflite": float_bytes,
            out_dir / f"{config.name}.onnx": onnx_path.read_bytes(),
            out_dir / f"{config.name}.export.json": (json.dumps(report, indent=2, default=float) + "\n").encode(),
        }
        for path, data in staged.items():
            with atomic_path(path) as tmp:
                tmp.write_bytes(data)
                tmp.chmod(0o644)
        done("write", f"{out_dir / (config.name + '.tflite')} ({len(int8_bytes) / 1024:.1f} KB int8)")
        if keep_work:
            shutil.copytree(work, keep_work, dirs_exist_ok=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return ExportResult(
        out_dir / f"{config.name}.tflite", out_dir / f"{config.name}-float32.tflite", out_dir / f"{config.name}.onnx",
        out_dir / f"{config.name}.export.json", report, document, seconds,
    )


def _values(raw: np.ndarray, bundle) -> np.ndarray:
    from .distill import outputs_to_values

    return outputs_to_values(raw, bundle.label_spec)


if __name__ == "__main__":
    # ``python -m quantize.export int8 SAVED_MODEL CALIBRATION.npy OUT.tflite`` (the int8 stage's subprocess).
    if len(sys.argv) != 5 or sys.argv[1] != "int8":
        print("usage: python -m quantize.export int8 SAVED_MODEL CALIBRATION.npy OUT.tflite", file=sys.stderr)
        sys.exit(2)
    int8_convert(sys.argv[2], sys.argv[3], sys.argv[4])
