"""Fine-tuning a Net1D (ECGFounder) on ECG records paired with lab values.

The steps, in order (:func:`finetune`):

1. split the lab table by subject (its ``split`` column, else a seeded split), so that no
   subject is in two splits;
2. cut every record into canonically preprocessed 10 s windows (:func:`load_windows`,
   via :func:`anyecg_edge.windows.record_windows`); every window carries its record's labels;
3. build the model: a teacher checkpoint with its head replaced when the label spec differs
   (upstream ECGFounder fine-tuning), or a fresh Net1D of the ECGFounder architecture,
   optionally narrowed by a width multiplier; with ``linear_probe`` only the head trains;
4. train one multi-task head: BCE-with-logits for binary outputs, MSE or Huber for
   regression outputs on standardised targets; missing labels are masked out; windows are
   drawn with class-balanced weights so rare abnormal values are seen often;
5. Adam with ``ReduceLROnPlateau`` on the validation score, early stopping when the score
   has not improved for ``early_stop_patience`` epochs or the learning rate falls below
   ``min_lr``; the best epoch's weights are kept;
6. fold the regression standardisation back into the head, so the saved model outputs lab
   values in their units (and binary logits), then score validation and test records
   (window outputs combined with :func:`anyecg_edge.windows.aggregate`, like Pocket-K's
   mean of clip scores) with :mod:`quantize.metrics`;
7. write the checkpoint (ECGFounder container), its label spec and a metrics JSON beside
   it, each atomically.

The validation score is the mean over outputs of AUROC (binary) and ``1 - MAE / SD``
(regression, SD of the training targets), so both kinds count and higher is better.

References:
    ECGFounder ``finetune_model.py`` and ``finetune_ECGFounder.ipynb`` (head replacement,
    linear probing, BCE/MSE, Adam, ReduceLROnPlateau); Pocket-K ``train.py``
    (inverse-frequency ``WeightedRandomSampler``, mean of 10 s clip scores). See
    ``docs/ecgfounder.md`` sections 2 and 5.2.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from anyecg_edge.files import atomic_write
from anyecg_edge.errors import AnyECGError, PreprocessingError, RecordError
from anyecg_edge.labels import LabelSpec
from anyecg_edge.preprocess import PREPROCESSING_VERSION, TARGET_FS, WINDOW_SAMPLES, PreprocessConfig
from anyecg_edge.records import read_record
from anyecg_edge.windows import AGGREGATIONS, aggregate, record_windows

from . import metrics as M
from .checkpoint import load_teacher, save_checkpoint
from .labtable import LabTable, LabTableError, check_classes
from .net1d import Net1D, Net1DConfig
from .settings import checked_fields

__all__ = [
    "FinetuneConfig",
    "FinetuneError",
    "FinetuneResult",
    "Windows",
    "evaluate_records",
    "finetune",
    "fold_standardisation",
    "load_windows",
    "predict_windows",
    "side_paths",
    "weights_sha256",
]


class FinetuneError(AnyECGError, ValueError):
    """Fine-tuning settings or data that cannot work (for example an empty split)."""


@dataclass(frozen=True)
class FinetuneConfig:
    """Fine-tuning settings; the defaults follow the upstream ECGFounder recipe where it has one."""

    seed: int = 0
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-4
    weight_decay: float = 1e-5
    linear_probe: bool = False
    #: Width multiplier of a Net1D trained from scratch (1.0 = the released ECGFounder size).
    width: float = 1.0
    #: Class-balanced sampling of training windows (inverse class frequency, capped).
    balance: bool = True
    balance_cap: float = 10.0
    regression_loss: str = "mse"
    huber_delta: float = 1.0
    plateau_patience: int = 2
    plateau_factor: float = 0.3
    min_lr: float = 1e-6
    early_stop_patience: int = 5
    grad_clip: float | None = 5.0
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    #: Seconds between window starts within a record (default: consecutive 10 s windows).
    hop_seconds: float | None = None
    #: Training windows per epoch (default: as many as there are).
    windows_per_epoch: int | None = None
    lead: str = "I"
    mains_hz: float = 50.0
    aggregation: str = "mean"
    deterministic: bool = True

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise FinetuneError("epochs and batch_size must be at least 1")
        if not self.lr > 0 or self.weight_decay < 0:
            raise FinetuneError("lr must be positive and weight_decay non-negative")
        if self.regression_loss not in ("mse", "huber"):
            raise FinetuneError(f"regression_loss must be 'mse' or 'huber', not {self.regression_loss!r}")
        if self.aggregation not in AGGREGATIONS:
            raise FinetuneError(f"aggregation must be one of {AGGREGATIONS}, not {self.aggregation!r}")
        if self.mains_hz not in (50.0, 60.0):
            raise FinetuneError(f"mains_hz must be 50 or 60, not {self.mains_hz!r}")
        if not 0 < self.plateau_factor < 1:
            raise FinetuneError("plateau_factor must be in (0, 1)")
        if self.balance_cap < 1:
            raise FinetuneError("balance_cap must be at least 1")
        if self.width <= 0:
            raise FinetuneError("width must be positive")
        if self.windows_per_epoch is not None and self.windows_per_epoch < 1:
            raise FinetuneError("windows_per_epoch must be positive")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "FinetuneConfig":
        return cls(**checked_fields(cls, data, "fine-tuning setting(s)", FinetuneError))


@dataclass
class Windows:
    """Preprocessed windows ``x`` (n, 1, 5000) and the table row each came from."""

    x: np.ndarray
    row: np.ndarray

    def __len__(self) -> int:
        return len(self.row)


@dataclass
class FinetuneResult:
    """What :func:`finetune` wrote and measured."""

    checkpoint: Path
    label_spec_path: Path
    metrics_path: Path
    sha256: str
    metrics: dict
    model: Net1D


def side_paths(checkpoint: str | Path) -> tuple[Path, Path]:
    """(label spec path, metrics path) written beside a checkpoint: ``NAME.label_spec.json``, ``NAME.metrics.json``."""
    checkpoint = Path(checkpoint)
    stem = checkpoint.with_suffix("") if checkpoint.suffix in (".pth", ".pt") else checkpoint
    return Path(f"{stem}.label_spec.json"), Path(f"{stem}.metrics.json")


def weights_sha256(model: nn.Module) -> str:
    """sha256 over the state_dict (key names, dtypes, shapes and bytes, in order): equal weights, equal hash."""
    digest = hashlib.sha256()
    for key, value in model.state_dict().items():
        tensor = value.detach().cpu().contiguous()
        digest.update(f"{key}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


def _bar(iterable, progress: bool, **kwargs):
    if not progress:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, disable=not sys.stderr.isatty(), leave=False, **kwargs)


def load_windows(table: LabTable, rows: np.ndarray, config: FinetuneConfig, progress: bool = False) -> Windows:
    """Read the records of ``rows`` and cut each into preprocessed windows of lead ``config.lead``.

    Raises:
        LabTableError: a record that cannot be read or preprocessed, naming its line.
    """
    chunks, owners = [], []
    for index in _bar(rows, progress, desc="preprocessing", unit="record"):
        row = table.rows[int(index)]
        try:
            record = read_record(row.path, fs=row.fs)
            signal = record.lead(config.lead)
            preprocess = PreprocessConfig(mains_hz=row.mains_hz or config.mains_hz)
            windows = record_windows(signal, record.fs, preprocess, config.hop_seconds)
        except (RecordError, PreprocessingError) as exc:
            raise LabTableError(f"record {row.path}: {exc}", table.path, row.line) from None
        chunks.append(windows)
        owners.append(np.full(len(windows), int(index)))
    if not chunks:
        return Windows(np.zeros((0, 1, WINDOW_SAMPLES), np.float32), np.zeros(0, np.int64))
    return Windows(np.concatenate(chunks), np.concatenate(owners))


@torch.inference_mode()
def predict_windows(model: nn.Module, x: np.ndarray, batch_size: int = 128) -> np.ndarray:
    """Raw model outputs (n, outputs) for windows ``x`` (n, leads, samples), in eval mode."""
    was_training = model.training
    model.eval()
    try:
        out = [model(torch.from_numpy(np.ascontiguousarray(x[i : i + batch_size]))).float().numpy()
               for i in range(0, len(x), batch_size)]
    finally:
        model.train(was_training)
    n_out = model.dense.out_features if hasattr(model, "dense") else 0
    return np.concatenate(out) if out else np.zeros((0, n_out), np.float32)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def evaluate_records(spec: LabelSpec, outputs: np.ndarray, window_rows: np.ndarray, targets: np.ndarray,
                     aggregation: str = "mean") -> dict:
    """Record-level metrics of window outputs.

    Args:
        spec: the label spec (output kinds and thresholds).
        outputs: (windows, outputs) model outputs: logits for binary, values in the output's
            unit for regression.
        window_rows: (windows,) the record (table row) of each window.
        targets: (rows, outputs) targets indexed by table row, ``nan`` = missing.
        aggregation: how window scores of one record are combined (probabilities for binary).

    Returns:
        ``{"records": n, "windows": n, "outputs": {name: binary_report | regression_report}}``.
    """
    scores = outputs.astype(np.float64).copy()
    binary = np.array([o.is_binary for o in spec.outputs])
    scores[:, binary] = _sigmoid(scores[:, binary])
    records = np.unique(window_rows)
    per_record = np.stack([aggregate(scores[window_rows == r], aggregation) for r in records]) if len(records) else \
        np.zeros((0, len(spec)))
    result: dict = {"records": int(len(records)), "windows": int(len(window_rows)), "outputs": {}}
    for j, output in enumerate(spec.outputs):
        y = targets[records, j]
        keep = ~np.isnan(y)
        if output.is_binary:
            threshold = 0.5 if output.threshold is None else output.threshold
            result["outputs"][output.name] = M.binary_report(y[keep], per_record[keep, j], threshold)
        else:
            result["outputs"][output.name] = M.regression_report(y[keep], per_record[keep, j])
    return result


def _score(report: dict, spec: LabelSpec, sd: dict[str, float]) -> float:
    """Mean over outputs of AUROC (binary) and 1 - MAE/SD (regression); higher is better."""
    parts = []
    for output in spec.outputs:
        r = report["outputs"][output.name]
        value = r["auroc"] if output.is_binary else 1.0 - r["mae"] / sd[output.name]
        if math.isfinite(value):
            parts.append(value)
    return float(np.mean(parts)) if parts else math.nan


def fold_standardisation(model: Net1D, index: list[int], mean: np.ndarray, std: np.ndarray, inverse: bool = False) -> None:
    """Make head rows ``index`` output ``value * std + mean`` (or undo it with ``inverse``), in place."""
    with torch.no_grad():
        for k, j in enumerate(index):
            w, b = model.dense.weight[j], model.dense.bias[j]
            if inverse:
                w.div_(float(std[k]))
                b.sub_(float(mean[k])).div_(float(std[k]))
            else:
                w.mul_(float(std[k]))
                b.mul_(float(std[k])).add_(float(mean[k]))


def _sample_weights(targets: np.ndarray, binary: np.ndarray, cap: float) -> np.ndarray:
    """Per-window weight: the largest inverse class frequency over its labelled binary outputs."""
    weights = np.ones(len(targets))
    for j in np.nonzero(binary)[0]:
        y = targets[:, j]
        labelled = ~np.isnan(y)
        if not labelled.any():
            continue
        positive = float(np.mean(y[labelled] == 1))
        if positive in (0.0, 1.0):
            continue
        w = np.where(y == 1, 0.5 / positive, 0.5 / (1 - positive))
        weights = np.where(labelled, np.maximum(weights, w), weights)
    return np.minimum(weights, cap)


def _loss(out: torch.Tensor, y: torch.Tensor, binary: torch.Tensor, config: FinetuneConfig) -> torch.Tensor:
    """Mean over outputs (with any label in the batch) of the masked per-output loss."""
    mask = ~torch.isnan(y)
    y0 = torch.where(mask, y, torch.zeros_like(y))
    bce = nn.functional.binary_cross_entropy_with_logits(out, y0, reduction="none")
    if config.regression_loss == "huber":
        reg = nn.functional.huber_loss(out, y0, reduction="none", delta=config.huber_delta)
    else:
        reg = (out - y0) ** 2
    per = torch.where(binary[None, :], bce, reg) * mask
    counts = mask.sum(0)
    present = counts > 0
    return (per.sum(0)[present] / counts[present]).mean()


@contextlib.contextmanager
def _deterministic(enabled: bool):
    previous = torch.are_deterministic_algorithms_enabled()
    previous_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(enabled, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous, warn_only=previous_warn)


def _build_model(spec: LabelSpec, config: FinetuneConfig, init: str | Path | None, trust: bool,
                 log: Callable[[str], None]) -> tuple[Net1D, bool, str | None]:
    """(model, head kept from the checkpoint?, checkpoint sha256)."""
    if init is None:
        cfg = Net1DConfig.ecgfounder(1, len(spec))
        if config.width != 1.0:
            try:
                cfg = cfg.scaled(config.width)
            except ValueError as exc:
                raise FinetuneError(str(exc)) from None
        log(f"model: Net1D from scratch, width {config.width:g}")
        return Net1D(cfg), False, None
    teacher = load_teacher(init, label_spec=spec, replace_head=True, trust=trust)
    if teacher.model.config.in_channels != 1:
        raise FinetuneError(f"{init}: the checkpoint takes {teacher.model.config.in_channels} leads; "
                            "fine-tuning here trains single-lead models")
    kept = teacher.report.ok
    log(f"model: {init} ({'head kept' if kept else 'new head for ' + str(len(spec)) + ' outputs'})")
    return teacher.model, kept, teacher.sha256


def _finite(value):
    """The same structure with every non-finite float replaced by ``None`` (JSON has no NaN)."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def finetune(table: LabTable, out: str | Path, config: FinetuneConfig = FinetuneConfig(), *,
             init: str | Path | None = None, trust: bool = False, progress: bool = True,
             log: Callable[[str], None] | None = None, extra_metrics: dict | None = None) -> FinetuneResult:
    """Fine-tune (or train from scratch) on ``table`` and write the checkpoint, label spec and metrics.

    Args:
        table: a checked lab table (:func:`quantize.labtable.read_lab_table`); its spec is the model's.
        out: checkpoint path; ``NAME.label_spec.json`` and ``NAME.metrics.json`` go beside it.
        config: settings.
        init: teacher checkpoint to start from (ECGFounder format); ``None`` trains from scratch.
        trust: allow full unpickling of ``init`` (see :func:`quantize.checkpoint.load_container`).
        progress: show progress bars (only on a terminal).
        log: where one-line progress messages go (default: nowhere).
        extra_metrics: more entries for the metrics JSON (for example the cohort hash).

    Returns:
        Paths, checkpoint sha256, the metrics and the trained model (eval mode, folded head).

    Raises:
        LabTableError: unreadable records or a split without both classes of a binary output.
        FinetuneError: bad settings or an empty training or validation split.
        CheckpointError: an ``init`` checkpoint that does not fit.
    """
    log = log or (lambda message: None)
    spec = table.spec
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    rng = torch.Generator().manual_seed(config.seed)

    splits = table.splits(config.seed, config.val_fraction, config.test_fraction)
    rows = {name: np.nonzero(splits == name)[0] for name in ("train", "val", "test")}
    if len(rows["train"]) == 0 or len(rows["val"]) == 0:
        raise FinetuneError(
            f"need training and validation records; the split gives {len(rows['train'])} and {len(rows['val'])} "
            "(add records or subjects, or set the split column)")
    check_classes(table, rows["train"], " in the training split")
    targets = table.targets()
    binary = np.array([o.is_binary for o in spec.outputs])
    reg_index = [j for j, o in enumerate(spec.outputs) if not o.is_binary]

    data = {name: load_windows(table, idx, config, progress) for name, idx in rows.items()}
    log("windows: " + ", ".join(f"{name} {len(w)} from {len(rows[name])} records" for name, w in data.items()))
    train = data["train"]
    y_train = targets[train.row]
    mean = np.array([np.nanmean(targets[rows["train"], j]) for j in reg_index])
    std = np.array([np.nanstd(targets[rows["train"], j]) for j in reg_index])
    std = np.where(std > 0, std, 1.0)
    sd_by_name = {spec.outputs[j].name: float(s) for j, s in zip(reg_index, std)}
    y_std = y_train.copy()
    y_std[:, reg_index] = (y_std[:, reg_index] - mean) / std

    model, head_kept, init_sha = _build_model(spec, config, init, trust, log)
    if head_kept:
        fold_standardisation(model, reg_index, mean, std, inverse=True)
    if config.linear_probe:
        for name, p in model.named_parameters():
            p.requires_grad_(name.startswith("dense."))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="max", factor=config.plateau_factor, patience=config.plateau_patience)
    weights = torch.from_numpy(_sample_weights(y_train, binary, config.balance_cap) if config.balance
                               else np.ones(len(train)))
    per_epoch = config.windows_per_epoch or len(train)
    x_train = torch.from_numpy(train.x)
    y_train_t = torch.from_numpy(y_std.astype(np.float32))
    binary_t = torch.from_numpy(binary)

    def validate() -> tuple[dict, float]:
        outputs = predict_windows(model, data["val"].x, config.batch_size * 2)
        outputs[:, reg_index] = outputs[:, reg_index] * std + mean
        report = evaluate_records(spec, outputs, data["val"].row, targets, config.aggregation)
        return report, _score(report, spec, sd_by_name)

    history = []
    best_score, best_state, best_epoch, stale = -math.inf, None, 0, 0
    with _deterministic(config.deterministic):
        for epoch in range(1, config.epochs + 1):
            epoch_start = time.perf_counter()
            model.train()
            if config.balance:
                order = torch.multinomial(weights, per_epoch, replacement=True, generator=rng)
            else:
                order = torch.randperm(len(train), generator=rng)[:per_epoch]
            losses = []
            batches = range(0, per_epoch, config.batch_size)
            for start in _bar(batches, progress, desc=f"epoch {epoch}/{config.epochs}", unit="batch"):
                idx = order[start : start + config.batch_size]
                loss = _loss(model(x_train[idx]), y_train_t[idx], binary_t, config)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if config.grad_clip:
                    nn.utils.clip_grad_norm_(params, config.grad_clip)
                optimizer.step()
                losses.append(float(loss.detach()))
            report, score = validate()
            lr = optimizer.param_groups[0]["lr"]
            entry = {"epoch": epoch, "train_loss": float(np.mean(losses)), "val_score": score, "lr": lr,
                     "seconds": round(time.perf_counter() - epoch_start, 1),
                     "val": {name: r.get("auroc", r.get("mae")) for name, r in report["outputs"].items()}}
            history.append(entry)
            log(f"epoch {epoch}: loss {entry['train_loss']:.4f}, val score {score:.4f}, lr {lr:.2g}, "
                + ", ".join(f"{k} {v:.3f}" for k, v in entry["val"].items()) + f" ({entry['seconds']:.0f} s)")
            if score > best_score or best_state is None:
                best_score, best_epoch, stale = score, epoch, 0
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                stale += 1
            scheduler.step(score if math.isfinite(score) else -math.inf)
            if stale >= config.early_stop_patience:
                log(f"early stop: no improvement for {stale} epochs")
                break
            if optimizer.param_groups[0]["lr"] < config.min_lr:
                log("early stop: learning rate below min_lr")
                break

    model.load_state_dict(best_state)
    fold_standardisation(model, reg_index, mean, std)
    model.eval()
    results = {}
    for name in ("val", "test"):
        if len(data[name]):
            outputs = predict_windows(model, data[name].x, config.batch_size * 2)
            results[name] = evaluate_records(spec, outputs, data[name].row, targets, config.aggregation)

    out = Path(out)
    spec_path, metrics_path = side_paths(out)
    n_params = sum(p.numel() for p in model.parameters())
    training = {"seed": config.seed, "best_epoch": best_epoch, "val_score": best_score,
                "preprocessing": PREPROCESSING_VERSION, "fs": TARGET_FS, "window_samples": WINDOW_SAMPLES,
                "lead": config.lead, "aggregation": config.aggregation}
    sha = save_checkpoint(out, model, spec, training=training)
    spec.save(spec_path)
    summary = {
        "checkpoint": out.name,
        "sha256": sha,
        "weights_sha256": weights_sha256(model),
        "label_spec": spec_path.name,
        "init": {"path": str(init), "sha256": init_sha} if init else None,
        "config": config.to_dict(),
        "model": {"net1d": model.config.to_dict(), "parameters": int(n_params),
                  "trainable": "head only" if config.linear_probe else "all"},
        "data": {
            "table": str(table.path),
            "table_sha256": hashlib.sha256(Path(table.path).read_bytes()).hexdigest(),
            "form": table.form,
            **{name: {"records": int(len(rows[name])), "windows": int(len(data[name])),
                      "subjects": len({table.rows[i].subject for i in rows[name]})} for name in rows},
        },
        "standardisation": {spec.outputs[j].name: {"mean": float(m), "std": float(s)}
                            for j, m, s in zip(reg_index, mean, std)},
        "best_epoch": best_epoch,
        "history": history,
        **results,
        "seconds": round(time.perf_counter() - started, 1),
        **(extra_metrics or {}),
    }
    atomic_write(metrics_path, json.dumps(_finite(summary), indent=2) + "\n")
    return FinetuneResult(out, spec_path, metrics_path, sha, summary, model)
