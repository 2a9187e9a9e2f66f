"""Fidelity of an exported int8 student against its teacher: JSON, a markdown table, plots.

For every evaluation set (cohort split, folder of real recordings, ...) the windows are
cut and canonically preprocessed once, then run through

* the **teacher** (torch, float32),
* the **float32 student** (the exported ``-float32.tflite``, or ``student.pt``),
* the **int8 student** through :class:`anyecg_edge.model.EdgeModel`, the device path.

Per output it reports Pearson r and MAE between teacher and int8 student (and float32 vs
int8); where the set has labels, AUROC of teacher, float32 and int8 student with the drops
teacher -> int8 and float32 -> int8 (binary outputs), MAE and r against the lab value
(regression outputs), and calibration (expected calibration error in 10 bins and the Brier
score for binary outputs; mean bias against the teacher for regression outputs). Every
number is at the window level; record-level AUROC (mean of a record's window probabilities,
as the runtime aggregates) is reported beside it. The teacher-vs-int8 r comes with a 95 %
bootstrap interval that resamples whole records (windows of one recording are not
independent), so a reader can tell a real miss of a target from the luck of the sample.

The targets (:class:`Targets`) are checked per output and set; plots are a scatter of teacher
vs int8 per output, ROC curves and Bland-Altman plots for regression outputs.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from anyecg_edge.errors import AnyECGError
from anyecg_edge.labels import LabelSpec

from . import metrics

__all__ = ["EvalSet", "Targets", "VerifyError", "parse_eval_set", "render_markdown", "verify"]


#: Bootstrap draws behind the interval of teacher-vs-int8 r (resampling whole records).
INTERVAL_DRAWS = 2000


class VerifyError(AnyECGError, RuntimeError):
    """Verification could not run; the message names the stage."""


@dataclass(frozen=True)
class Targets:
    """The fidelity targets: every one must hold for a set to pass."""

    min_pearson: float = 0.98
    max_auroc_drop: float = 0.01
    max_int8_auroc_drop: float = 0.002


@dataclass(frozen=True)
class EvalSet:
    """A named evaluation set: corpus sources and an optional cohort split."""

    name: str
    sources: tuple[str, ...]
    split: str | None = None


def parse_eval_set(text: str) -> EvalSet:
    """``NAME=PATH[,PATH...][@SPLIT]`` or ``PATH[@SPLIT]`` -> :class:`EvalSet`."""
    name, _, rest = text.partition("=") if "=" in text else ("", "", text)
    split = None
    if "@" in rest:
        rest, split = rest.rsplit("@", 1)
    sources = tuple(s for s in rest.split(",") if s)
    if not sources:
        raise VerifyError(f"data: {text!r} names no source")
    return EvalSet(name or Path(sources[0]).name + (f"-{split}" if split else ""), sources, split or None)


# --------------------------------------------------------------------------------------------
# Metrics beyond quantize.metrics


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """|mean label - mean probability| over equal-width probability bins, weighted by count."""
    y, p = np.asarray(y, float), np.asarray(p, float)
    if y.size == 0:
        return math.nan
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.sum() * abs(y[mask].mean() - p[mask].mean())
    return float(total / y.size)


def roc_curve(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate) over every threshold."""
    order = np.argsort(-np.asarray(s, float), kind="mergesort")
    y = np.asarray(y, float)[order]
    tp = np.r_[0, np.cumsum(y)]
    fp = np.r_[0, np.cumsum(1 - y)]
    return fp / max(fp[-1], 1), tp / max(tp[-1], 1)


def _r(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), 5)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, float), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def _record_mean(values: np.ndarray, record: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ids = np.unique(record)
    return ids, np.stack([values[record == i].mean(axis=0) for i in ids])


def output_report(j: int, spec: LabelSpec, teacher: np.ndarray, fp32: np.ndarray, int8: np.ndarray,
                  labels: np.ndarray, record: np.ndarray, targets: Targets) -> dict:
    """Every number for output ``j`` of one set (values: probabilities / units)."""
    output = spec.outputs[j]
    t, f, q = teacher[:, j], fp32[:, j], int8[:, j]
    row: dict = {
        "kind": output.kind,
        "unit": output.unit,
        "windows": int(t.size),
        "pearson_teacher_int8": _r(metrics.pearson_r(t, q)),
        "pearson_teacher_int8_ci95": [_r(v) for v in metrics.pearson_r_interval(t, q, record, 0.95, INTERVAL_DRAWS)],
        "mae_teacher_int8": _r(metrics.mae(t, q)),
        "pearson_teacher_float32": _r(metrics.pearson_r(t, f)),
        "pearson_float32_int8": _r(metrics.pearson_r(f, q)),
        "max_abs_float32_int8": _r(float(np.max(np.abs(f - q)))) if t.size else None,
        "teacher_sd": _r(float(np.std(t))),
    }
    if output.is_binary:
        # Probabilities near 0 or 1 squash differences; the logit scale shows them.
        row["pearson_teacher_int8_logit"] = _r(metrics.pearson_r(_logit(t), _logit(q)))
    known = np.isfinite(labels[:, j])
    if output.is_binary:
        y = labels[known, j]
        if known.any() and 0 < y.sum() < y.size:
            a_t, a_f, a_q = (metrics.auroc(y, v[known]) for v in (t, f, q))
            ids, means = _record_mean(np.stack([t, f, q, labels[:, j]], axis=1)[known], record[known])
            rec = [metrics.auroc(means[:, 3], means[:, k]) if 0 < means[:, 3].sum() < len(ids) else math.nan
                   for k in range(3)]
            row.update({
                "positives": int(y.sum()),
                "auroc_teacher": _r(a_t), "auroc_float32": _r(a_f), "auroc_int8": _r(a_q),
                "auroc_drop_teacher_int8": _r(a_t - a_q), "auroc_drop_float32_int8": _r(a_f - a_q),
                "record_auroc_teacher": _r(rec[0]), "record_auroc_float32": _r(rec[1]), "record_auroc_int8": _r(rec[2]),
                "ece_teacher": _r(expected_calibration_error(y, t[known])),
                "ece_int8": _r(expected_calibration_error(y, q[known])),
                "brier_teacher": _r(float(np.mean((t[known] - y) ** 2))),
                "brier_int8": _r(float(np.mean((q[known] - y) ** 2))),
            })
    else:
        row["bias_int8_minus_teacher"] = _r(float(np.mean(q - t))) if t.size else None
        if known.sum() > 1:
            y = labels[known, j]
            row.update({
                "mae_teacher_label": _r(metrics.mae(y, t[known])),
                "mae_int8_label": _r(metrics.mae(y, q[known])),
                "pearson_teacher_label": _r(metrics.pearson_r(y, t[known])),
                "pearson_int8_label": _r(metrics.pearson_r(y, q[known])),
            })
    checks = {}
    if row["pearson_teacher_int8"] is not None:
        checks["pearson"] = row["pearson_teacher_int8"] >= targets.min_pearson
    if row.get("auroc_drop_teacher_int8") is not None:
        checks["auroc_drop"] = row["auroc_drop_teacher_int8"] <= targets.max_auroc_drop
        checks["int8_auroc_drop"] = row["auroc_drop_float32_int8"] <= targets.max_int8_auroc_drop
    row["checks"] = checks
    row["pass"] = all(checks.values()) if checks else None
    return row


# --------------------------------------------------------------------------------------------
# Plots


def _plots(name: str, spec: LabelSpec, teacher, fp32, int8, labels, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    n = len(spec)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.6 * rows), squeeze=False)
    for j, output in enumerate(spec.outputs):
        ax = axes[j // cols][j % cols]
        ax.scatter(teacher[:, j], int8[:, j], s=4, alpha=0.5)
        lo, hi = float(min(teacher[:, j].min(), int8[:, j].min())), float(max(teacher[:, j].max(), int8[:, j].max()))
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.set_title(f"{output.name} (r={metrics.pearson_r(teacher[:, j], int8[:, j]):.4f})", fontsize=9)
        ax.set_xlabel(f"teacher [{output.unit}]", fontsize=8)
        ax.set_ylabel(f"int8 student [{output.unit}]", fontsize=8)
    for k in range(n, rows * cols):
        axes[k // cols][k % cols].axis("off")
    fig.suptitle(f"{name}: teacher vs int8 student", fontsize=10)
    fig.tight_layout()
    path = out / f"{name}-scatter.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    written.append(path.name)

    binary = [j for j, o in enumerate(spec.outputs)
              if o.is_binary and np.isfinite(labels[:, j]).any()
              and 0 < np.nansum(labels[:, j]) < np.isfinite(labels[:, j]).sum()]
    if binary:
        cols = min(len(binary), 4)
        fig, axes = plt.subplots(1, cols, figsize=(3.6 * cols, 3.6), squeeze=False)
        for k, j in enumerate(binary[:cols]):
            ax = axes[0][k]
            known = np.isfinite(labels[:, j])
            for values, label in ((teacher, "teacher"), (fp32, "float32"), (int8, "int8")):
                fpr, tpr = roc_curve(labels[known, j], values[known, j])
                ax.plot(fpr, tpr, lw=1, label=f"{label} {metrics.auroc(labels[known, j], values[known, j]):.3f}")
            ax.plot([0, 1], [0, 1], "k:", lw=0.6)
            ax.set_title(spec.outputs[j].name, fontsize=9)
            ax.set_xlabel("false positive rate", fontsize=8)
            ax.set_ylabel("true positive rate", fontsize=8)
            ax.legend(fontsize=7, loc="lower right")
        fig.suptitle(f"{name}: ROC (window level)", fontsize=10)
        fig.tight_layout()
        path = out / f"{name}-roc.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path.name)

    regression = [j for j, o in enumerate(spec.outputs) if not o.is_binary]
    if regression:
        fig, axes = plt.subplots(1, len(regression), figsize=(4.2 * len(regression), 3.6), squeeze=False)
        for k, j in enumerate(regression):
            ax = axes[0][k]
            mean = (teacher[:, j] + int8[:, j]) / 2
            diff = int8[:, j] - teacher[:, j]
            bias, sd = float(diff.mean()), float(diff.std())
            ax.scatter(mean, diff, s=4, alpha=0.5)
            for level, style in ((bias, "-"), (bias + 1.96 * sd, "--"), (bias - 1.96 * sd, "--")):
                ax.axhline(level, color="k", ls=style, lw=0.8)
            ax.set_title(f"{spec.outputs[j].name}: bias {bias:+.4f}, LoA +-{1.96 * sd:.4f}", fontsize=9)
            ax.set_xlabel(f"mean of teacher and int8 [{spec.outputs[j].unit}]", fontsize=8)
            ax.set_ylabel("int8 - teacher", fontsize=8)
        fig.suptitle(f"{name}: Bland-Altman, int8 student vs teacher", fontsize=10)
        fig.tight_layout()
        path = out / f"{name}-bland-altman.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path.name)
    return written


# --------------------------------------------------------------------------------------------
# Markdown


def _fmt(value, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    return f"{value:.{digits}f}"


def _interval(row: dict) -> str:
    low, high = row.get("pearson_teacher_int8_ci95") or (None, None)
    return "" if low is None or high is None else f" ({low:.3f}–{high:.3f})"


def render_markdown(report: dict, image_prefix: str = "") -> str:
    """The report as markdown: one table per set, targets and plots."""
    t = report["targets"]
    lines = [
        f"# Fidelity report: {report['model']['name']}",
        "",
        f"Model `{report['model']['name']}` ({report['model']['size_bytes'] / 1024:.1f} KB int8, "
        f"{report['model'].get('params', '?')} parameters, {report['model'].get('macs', 0) / 1e6:.2f} M MACs per window); "
        f"teacher `{report['teacher']['path_name']}` (sha256 `{report['teacher']['sha256'][:12]}…`).",
        "",
        f"Targets: teacher-vs-int8 Pearson r ≥ {t['min_pearson']}, AUROC drop teacher→int8 ≤ {t['max_auroc_drop']}, "
        f"AUROC drop float32→int8 ≤ {t['max_int8_auroc_drop']}. All numbers are per 10 s window unless marked "
        "\"record\" (mean of a record's window probabilities). In brackets after r: its 95 % interval from "
        f"resampling whole records (bootstrap, {INTERVAL_DRAWS:,} draws), since windows of one recording are not "
        "independent.",
        "",
    ]
    for name, block in report["sets"].items():
        lines += [
            f"## {name}",
            "",
            f"{block['windows']} windows from {block['records']} records ({', '.join(block['sources'])}"
            + (f", split `{block['split']}`" if block.get("split") else "") + ").",
            "",
            "| output | r teacher–int8 | MAE teacher–int8 | r float32–int8 | AUROC teacher | AUROC float32 | AUROC int8 "
            "| drop T→int8 | drop f32→int8 | record AUROC T / int8 | ECE T / int8 | label MAE T / int8 | pass |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for out_name, row in block["outputs"].items():
            record = (f"{_fmt(row.get('record_auroc_teacher'), 3)} / {_fmt(row.get('record_auroc_int8'), 3)}"
                      if "record_auroc_teacher" in row else "–")
            ece = f"{_fmt(row.get('ece_teacher'), 3)} / {_fmt(row.get('ece_int8'), 3)}" if "ece_teacher" in row else "–"
            label_mae = (f"{_fmt(row.get('mae_teacher_label'), 3)} / {_fmt(row.get('mae_int8_label'), 3)}"
                         if "mae_teacher_label" in row else "–")
            lines.append(
                f"| {out_name} ({row['unit']}) | {_fmt(row['pearson_teacher_int8'])}{_interval(row)} "
                f"| {_fmt(row['mae_teacher_int8'])} "
                f"| {_fmt(row['pearson_float32_int8'])} | {_fmt(row.get('auroc_teacher'))} | {_fmt(row.get('auroc_float32'))} "
                f"| {_fmt(row.get('auroc_int8'))} | {_fmt(row.get('auroc_drop_teacher_int8'))} "
                f"| {_fmt(row.get('auroc_drop_float32_int8'))} | {record} | {ece} | {label_mae} | {_fmt(row['pass'])} |"
            )
        lines.append("")
        lines += [f"![{name} {p}]({image_prefix}{p})" for p in block["plots"]]
        lines.append("")
    verdict = "pass" if report["pass"] else "**fail**"
    lines.append(f"Overall: {verdict}.")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# The run


def verify(
    model_path: str | Path,
    teacher_path: str | Path,
    sets: list[EvalSet],
    out_dir: str | Path,
    *,
    float_model: str | Path | None = None,
    student_path: str | Path | None = None,
    targets: Targets = Targets(),
    hop_s: float = 5.0,
    max_per_record: int | None = 12,
    plots: bool = True,
    markdown: str | Path | None = None,
    image_dir: str | Path | None = None,
    trust: bool = False,
    log: Callable[[str], None] = print,
) -> dict:
    """Measure fidelity; writes ``fidelity.json``, ``fidelity.md`` and PNG plots to ``out_dir``.

    Args:
        model_path: the int8 ``.tflite`` written by export.
        teacher_path: the teacher checkpoint.
        sets: evaluation sets.
        out_dir: where the report goes.
        float_model: the float32 student (``-float32.tflite``); default: beside ``model_path``.
        student_path: ``student.pt``, used when there is no float32 ``.tflite``.
        targets: thresholds to check.
        hop_s, max_per_record: how windows are cut from each record.
        plots: write PNG plots.
        markdown: also write the markdown to this path (images referenced relative to it).
        image_dir: folder for the plots (default ``out_dir``).
        trust: allow full unpickling of the teacher checkpoint.
        log: where progress lines go.

    Raises:
        VerifyError: naming the stage (model, teacher, data) that failed.
    """
    from anyecg_edge.files import atomic_write
    from anyecg_edge.errors import ModelFileError
    from anyecg_edge.model import EdgeModel
    from anyecg_edge.preprocess import PreprocessConfig

    from .checkpoint import CheckpointError, load_teacher
    from .corpus import CorpusError, discover, load_segments, preprocess_windows, source_name
    from .distill import load_student, outputs_to_values, teacher_outputs

    model_path = Path(model_path)
    out_dir = Path(out_dir)
    try:
        int8 = EdgeModel.load(model_path)
    except ModelFileError as exc:
        raise VerifyError(f"model: {exc}") from None
    spec = int8.label_spec
    float_model = Path(float_model) if float_model else model_path.with_name(model_path.stem + "-float32.tflite")
    fp32_model = fp32_student = None
    if float_model.is_file():
        try:
            fp32_model = EdgeModel.load(float_model)
        except ModelFileError as exc:
            raise VerifyError(f"float32 model: {exc}") from None
    elif student_path:
        try:
            fp32_student = load_student(student_path)
        except CheckpointError as exc:
            raise VerifyError(f"float32 model: {exc}") from None
    else:
        raise VerifyError(f"float32 model: {float_model} not found; pass --float-model or --student")
    try:
        teacher = load_teacher(teacher_path, trust=trust)
    except CheckpointError as exc:
        raise VerifyError(f"teacher: {exc}") from None
    if teacher.label_spec is None or teacher.label_spec.names != spec.names:
        raise VerifyError(
            f"teacher: its outputs {teacher.label_spec.names if teacher.label_spec else None} "
            f"do not match the model's {spec.names}"
        )
    doc = int8.info.document
    if doc.get("teacher", {}).get("sha256") not in (None, teacher.sha256):
        log(f"note: the model was distilled from teacher {doc['teacher']['sha256'][:12]}…, "
            f"this teacher is {teacher.sha256[:12]}…")
    pre = PreprocessConfig(mains_hz=int8.info.preprocess.mains_hz)
    image_dir = Path(image_dir) if image_dir else out_dir
    image_dir.mkdir(parents=True, exist_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)

    report: dict = {
        "model": {"name": model_path.name, "size_bytes": int8.size_bytes,
                  "params": doc.get("student", {}).get("params"), "macs": doc.get("student", {}).get("macs"),
                  "sha256": doc.get("student", {}).get("sha256")},
        "teacher": {"path_name": Path(teacher.path).name, "sha256": teacher.sha256},
        "targets": {"min_pearson": targets.min_pearson, "max_auroc_drop": targets.max_auroc_drop,
                    "max_int8_auroc_drop": targets.max_int8_auroc_drop},
        "sets": {},
    }
    for eval_set in sets:
        try:
            entries = discover(eval_set.sources, split=eval_set.split)
        except CorpusError as exc:
            raise VerifyError(f"data ({eval_set.name}): {exc}") from None
        segments = load_segments(entries, hop_s=hop_s, max_per_record=max_per_record)
        if len(segments) == 0:
            raise VerifyError(f"data ({eval_set.name}): no readable windows")
        windows = preprocess_windows(segments.raw, pre)
        t_raw, _ = teacher_outputs(teacher.model, windows)
        t_values = outputs_to_values(t_raw, spec)
        f_values = fp32_model.predict(windows) if fp32_model is not None else fp32_student.values(windows)
        q_values = int8.predict(windows)
        labels = segments.targets(spec)
        outputs = {o.name: output_report(j, spec, t_values, f_values, q_values, labels, segments.record_index, targets)
                   for j, o in enumerate(spec.outputs)}
        written = _plots(eval_set.name, spec, t_values, f_values, q_values, labels, image_dir) if plots else []
        block = {
            "sources": list(dict.fromkeys(source_name(s) for s in eval_set.sources)), "split": eval_set.split,
            "records": int(len(np.unique(segments.record_index))), "windows": int(len(windows)),
            "outputs": outputs, "plots": written,
            "pass": all(r["pass"] is not False for r in outputs.values()),
        }
        report["sets"][eval_set.name] = block
        log(f"{eval_set.name}: {block['windows']} windows; "
            + ", ".join(f"{k} r={_fmt(v['pearson_teacher_int8'])}{_interval(v)}" for k, v in outputs.items())
            + f" -> {'pass' if block['pass'] else 'FAIL'}")
    report["pass"] = all(b["pass"] for b in report["sets"].values())
    atomic_write(out_dir / "fidelity.json", json.dumps(report, indent=2) + "\n")
    prefix = ""
    if markdown:
        markdown = Path(markdown)
        prefix = Path(os.path.relpath(image_dir, markdown.parent)).as_posix() + "/"
        atomic_write(markdown, render_markdown(report, prefix))
    local_prefix = Path(os.path.relpath(image_dir, out_dir)).as_posix() + "/"
    atomic_write(out_dir / "fidelity.md", render_markdown(report, "" if local_prefix == "./" else local_prefix))
    return report
