"""Distilling a Net1D teacher into a small student, on one process or many (``torchrun``).

The steps, in order (:func:`distill`):

1. **corpus**: the records of every source (:mod:`quantize.corpus`), split by record into
   a training part and a held-out part (cohort ``val`` records, else a seeded fraction);
   each rank takes every ``world``-th record;
2. **teacher cache**: every rank cuts its records into raw segments and writes one shard
   with, per segment, the clean window, ``augment_copies`` augmented ones (raw signal
   augmented, *then* canonically preprocessed) and, for training segments, ``mix_copies``
   mixed with another training segment (:func:`quantize.augment.mix_segments`), the
   teacher's outputs and pooled features for each, and the labels where the corpus has
   them (none for a mixture). Shards are keyed by the teacher's hash and every setting
   that changes them, so a resumed or repeated run reuses them.
   Running the teacher once per window and training many epochs on the cached targets
   costs a fraction of on-the-fly targets (see ``docs/shrink.md`` for the measurement);
3. **targets**: every output is standardised, ``z = (t - mean) / std`` over the training
   windows, so one int8 output tensor can carry logits and lab values at the same
   resolution; the export folds ``std`` and ``mean`` back in as the output transform;
4. **training**: the student (wrapped in ``DistributedDataParallel`` when ``world > 1``,
   gloo on CPU, nccl on GPUs) with a ``DistributedSampler``, AdamW and a one-cycle cosine
   schedule (optionally on a seeded subset of ``max_train_windows``; a warning when the
   student's downsampling is not a multiple of the teacher's), minimising per output

   * binary: soft-target BCE at temperature ``T`` (scaled by ``T**2``),
     ``BCE(sigmoid(s / T), sigmoid(t / T))`` on logits ``s`` and ``t``, plus
     ``logit_weight`` times the squared error of the standardised logits,
   * regression: the squared error of the standardised values,
   * optionally ``hint_weight`` times the squared error between a linear projection of the
     student's pooled features and the teacher's standardised pooled features,
   * optionally ``label_weight`` times the ground-truth loss where labels exist;
   With ``ema_decay`` > 0 every rank also keeps an exponential moving average of the
   student's weights, ``ema = decay * ema + (1 - decay) * w`` after every step; that
   average, with its batch-norm statistics measured afresh on ``NORM_WINDOWS`` training
   windows (running statistics gathered under moving weights do not fit averaged ones), is
   the student scored and saved;
5. after every epoch rank 0 scores the held-out windows (Pearson r and MAE per output,
   teacher vs student) and writes a resumable checkpoint atomically;
6. rank 0 writes ``student.pt``: the student's weights and config, the label spec, the
   output standardisation, the teacher's provenance, the settings and the history.

References:
    Hinton G., Vinyals O., Dean J. Distilling the knowledge in a neural network. 2015
    (temperature, ``T**2`` scaling). Romero A. et al. FitNets: hints for thin deep nets.
    ICLR 2015 (feature hint through a learned projection). Polyak B. T., Juditsky A. B.
    Acceleration of stochastic approximation by averaging. SIAM J. Control Optim. 1992
    (averaged weights).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from anyecg_edge.files import atomic_path
from anyecg_edge.errors import AnyECGError, AnyECGWarning
from anyecg_edge.labels import LabelSpec
from anyecg_edge.preprocess import PREPROCESSING_VERSION, PreprocessConfig

from .augment import AugmentConfig, augment_segment, center_window, mix_segments
from .checkpoint import CheckpointError, Teacher, load_teacher
from .corpus import CorpusError, RecordEntry, discover, load_segments, preprocess_windows, shard
from .metrics import pearson_r
from .settings import checked_fields
from .student import DEFAULT_PRESET, Student, StudentConfig, count_macs, count_params, preset

__all__ = [
    "DistillConfig",
    "DistillError",
    "DistillResult",
    "StudentBundle",
    "distill",
    "load_student",
]

STUDENT_FORMAT = "anyecg-edge-student"
# Part of the cache key: a change to what a shard holds makes older shards unusable.
SHARD_FORMAT = 2


class DistillError(AnyECGError, RuntimeError):
    """Distillation could not run; the message names the stage."""


@dataclass(frozen=True)
class DistillConfig:
    """Every setting of a distillation run (a recipe's ``distill`` section).

    ``student`` is a full :class:`StudentConfig` as a dict; without it the preset
    ``student_preset`` is used with the teacher's number of outputs.
    """

    student_preset: str = DEFAULT_PRESET
    student: dict | None = None
    epochs: int = 10
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    warmup_fraction: float = 0.05
    temperature: float = 2.0
    logit_weight: float = 1.0
    hint_weight: float = 0.0
    label_weight: float = 0.0
    ema_decay: float = 0.0
    output_weights: dict = field(default_factory=dict)
    augment_copies: int = 2
    mix_copies: int = 0
    mix_min: float = 0.5
    augment: dict = field(default_factory=dict)
    hop_s: float = 5.0
    max_per_record: int | None = 30
    projections: int = 0
    extra_leads: tuple[str, ...] = ()
    max_train_windows: int | None = None
    val_fraction: float = 0.1
    splits: tuple[str, ...] = ("train", "val")
    mains_hz: float = 50.0
    teacher_batch: int = 32
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "splits", tuple(self.splits))
        object.__setattr__(self, "extra_leads", tuple(self.extra_leads))
        if self.epochs < 1 or self.batch_size < 1 or self.teacher_batch < 1:
            raise ValueError("epochs, batch_size and teacher_batch must be at least 1")
        if self.lr <= 0 or self.temperature <= 0:
            raise ValueError("lr and temperature must be positive")
        if min(self.logit_weight, self.hint_weight, self.label_weight, self.weight_decay) < 0:
            raise ValueError("loss weights and weight_decay must be >= 0")
        if not 0 <= self.ema_decay < 1:
            raise ValueError("ema_decay must be in [0, 1)")
        bad = {k: v for k, v in self.output_weights.items()
               if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < math.inf}
        if bad:
            raise ValueError(f"output_weights must be positive numbers, got {bad}")
        if min(self.augment_copies, self.mix_copies, self.projections) < 0:
            raise ValueError("augment_copies, mix_copies and projections must be >= 0")
        if not 0 < self.mix_min <= 1:
            raise ValueError("mix_min must be in (0, 1]")
        if not 0 <= self.val_fraction < 1 or not 0 <= self.warmup_fraction < 1:
            raise ValueError("val_fraction and warmup_fraction must be in [0, 1)")
        if self.max_per_record is not None and self.max_per_record < 1:
            raise ValueError("max_per_record must be at least 1")
        if self.max_train_windows is not None and self.max_train_windows < 2:
            raise ValueError("max_train_windows must be at least 2")
        AugmentConfig.from_dict(self.augment)
        if self.student is not None:
            StudentConfig.from_dict(self.student)
        PreprocessConfig(mains_hz=self.mains_hz)

    @property
    def augment_config(self) -> AugmentConfig:
        return AugmentConfig.from_dict(self.augment)

    def student_config(self, n_outputs: int) -> StudentConfig:
        if self.student is not None:
            config = StudentConfig.from_dict(self.student)
            if config.n_outputs != n_outputs:
                config = dataclasses.replace(config, n_outputs=n_outputs)
            return config
        return preset(self.student_preset, n_outputs)

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["splits"] = list(self.splits)
        data["extra_leads"] = list(self.extra_leads)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "DistillConfig":
        return cls(**checked_fields(cls, data, "distillation settings"))


@dataclass
class StudentBundle:
    """A distilled student as saved in ``student.pt``."""

    model: Student
    config: StudentConfig
    label_spec: LabelSpec
    target_mean: np.ndarray
    target_std: np.ndarray
    teacher: dict
    info: dict
    path: str = ""
    sha256: str = ""

    def values(self, windows: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Float student on preprocessed windows (n, 1, 5000) -> values (probabilities / units)."""
        z = predict(self.model, windows, batch_size)
        return outputs_to_values(z * self.target_std + self.target_mean, self.label_spec)


@dataclass
class DistillResult:
    """What a distillation run produced (on rank 0; other ranks get ``path=None``)."""

    path: Path | None
    history: list[dict]
    throughput: dict
    held_out: dict


# --------------------------------------------------------------------------------------------
# Small helpers


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))


def outputs_to_values(raw: np.ndarray, spec: LabelSpec) -> np.ndarray:
    """Teacher-convention outputs (logits / units) -> values (probabilities / units)."""
    binary = np.array([o.is_binary for o in spec.outputs])
    raw = np.asarray(raw, dtype=np.float64)
    return np.where(binary, _sigmoid(raw), raw)


def predict(model: nn.Module, windows: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Run a model in eval mode over (n, 1, samples) windows; returns float64 (n, outputs)."""
    model.eval()
    outs = []
    with torch.inference_mode():
        for i in range(0, len(windows), batch_size):
            out = model(torch.as_tensor(np.asarray(windows[i : i + batch_size], dtype=np.float32)))
            outs.append((out[0] if isinstance(out, tuple) else out).double().numpy())
    return np.concatenate(outs) if outs else np.zeros((0, 0))


def teacher_outputs(teacher: nn.Module, windows: np.ndarray, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Teacher logits/values and pooled features for preprocessed windows."""
    teacher.eval()
    outs, feats = [], []
    with torch.inference_mode():
        for i in range(0, len(windows), batch_size):
            x = torch.as_tensor(np.asarray(windows[i : i + batch_size], dtype=np.float32))
            f = teacher.features(x)
            outs.append(teacher.dense(f).double().numpy())
            feats.append(f.float().numpy())
    return np.concatenate(outs), np.concatenate(feats)


def agreement(teacher_values: np.ndarray, student_values: np.ndarray, spec: LabelSpec) -> dict:
    """Per output: Pearson r and MAE between teacher and student values."""
    return {
        o.name: {"pearson_r": pearson_r(teacher_values[:, j], student_values[:, j]),
                 "mae": float(np.mean(np.abs(teacher_values[:, j] - student_values[:, j])))}
        for j, o in enumerate(spec.outputs)
    }


# --------------------------------------------------------------------------------------------
# Distributed set-up


@dataclass(frozen=True)
class _Dist:
    rank: int
    world: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


def _init_distributed(threads: int | None) -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    use_cuda = torch.cuda.is_available()
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    if use_cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")
    # One intra-op thread by default: on a shared CPU more threads slowed these small
    # convolutions down about tenfold; parallelism comes from processes instead.
    torch.set_num_threads(threads or 1)
    return _Dist(rank, world, device)


# --------------------------------------------------------------------------------------------
# Stage 1-2: corpus and teacher cache


def split_entries(entries: list[RecordEntry], val_fraction: float, seed: int) -> tuple[list, list]:
    """(training, held-out) records: cohort ``val`` records, else a seeded fraction by subject."""
    if any(e.split for e in entries):
        train = [e for e in entries if e.split != "val"]
        held = [e for e in entries if e.split == "val"]
        if held:
            return train, held
    subjects = sorted({e.subject or e.path for e in entries})
    rng = np.random.default_rng(seed)
    n_held = int(round(val_fraction * len(subjects)))
    held_subjects = set(rng.permutation(subjects)[:n_held].tolist()) if n_held else set()
    return ([e for e in entries if (e.subject or e.path) not in held_subjects],
            [e for e in entries if (e.subject or e.path) in held_subjects])


def cache_key(teacher_sha: str, entries: list[RecordEntry], config: DistillConfig) -> str:
    relevant = {
        "teacher": teacher_sha,
        "records": [(e.path, e.split) for e in entries],
        "augment": config.augment_config.to_dict(),
        "copies": config.augment_copies,
        **({"mix": [config.mix_copies, config.mix_min]} if config.mix_copies else {}),
        "hop_s": config.hop_s,
        "max_per_record": config.max_per_record,
        "projections": config.projections,
        **({"extra_leads": list(config.extra_leads)} if config.extra_leads else {}),
        "mains_hz": config.mains_hz,
        "seed": config.seed,
        "preprocessing": PREPROCESSING_VERSION,
        "shard_format": SHARD_FORMAT,
    }
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


def build_shard(
    teacher: Teacher, entries: list[RecordEntry], held_out: set[str], config: DistillConfig, rank: int,
    log: Callable[[str], None] = print,
) -> dict:
    """Segments of ``entries``, augmented, preprocessed and labelled by the teacher."""
    rng = np.random.default_rng([config.seed, rank])
    augment = config.augment_config
    pre = PreprocessConfig(mains_hz=config.mains_hz)
    segments = load_segments(entries, margin=augment.margin_samples, hop_s=config.hop_s,
                             max_per_record=config.max_per_record, rng=rng, projections=config.projections,
                             extra_leads=config.extra_leads)
    spec = teacher.label_spec
    labels = segments.targets(spec) if spec is not None else np.zeros((len(segments), 0))
    held_segment = np.array([segments.entries[r].path in held_out for r in segments.record_index], dtype=bool)
    partners = np.nonzero(~held_segment)[0]
    raw, rec, kind = [], [], []  # kind per window: 0 clean, 1 augmented, 2 mixed
    for i, segment in enumerate(segments.raw):
        own = [center_window(segment)]
        own += [augment_segment(segment, rng, augment, mains_hz=config.mains_hz) for _ in range(config.augment_copies)]
        kind += [0] + [1] * config.augment_copies
        if not held_segment[i]:
            own += [mix_segments(segment, segments.raw[rng.choice(partners)], rng, augment,
                                 min_weight=config.mix_min, mains_hz=config.mains_hz) for _ in range(config.mix_copies)]
            kind += [2] * config.mix_copies
        raw += own
        rec += [i] * len(own)
    t0 = time.perf_counter()
    windows = preprocess_windows(np.asarray(raw), pre) if raw else np.zeros((0, 1, 5000), np.float32)
    t1 = time.perf_counter()
    outputs, features = teacher_outputs(teacher.model, windows, config.teacher_batch)
    t2 = time.perf_counter()
    rec, kind = np.asarray(rec, dtype=np.int64), np.asarray(kind)
    targets = labels[rec].astype(np.float32)
    targets[kind == 2] = np.nan  # a mixture has no ground truth
    log(f"rank {rank}: {len(segments)} segments -> {len(windows)} windows; preprocessing "
        f"{len(windows) / max(t1 - t0, 1e-9):.0f}/s, teacher {len(windows) / max(t2 - t1, 1e-9):.1f}/s")
    return {
        "windows": windows[:, 0].astype(np.float16),
        "teacher": outputs.astype(np.float32),
        "features": features.astype(np.float16),
        "labels": targets,
        "augmented": kind > 0,
        "held_out": held_segment[rec],
        "seconds": np.array([t1 - t0, t2 - t1]),
    }


def _complete_shards(cache_dir: Path, prefer: int | None = None) -> list[Path] | None:
    """A complete set of shards (any process count; ``prefer`` first), or None."""
    worlds = sorted({int(p.stem.rsplit("-", 1)[1]) for p in cache_dir.glob("shard-*-of-*.npz")},
                    key=lambda w: (w != prefer, w))
    for world in worlds:
        paths = [cache_dir / f"shard-{r:03d}-of-{world:03d}.npz" for r in range(world)]
        if all(p.is_file() for p in paths):
            return paths
    return None


def _load_shards(paths: list[Path]) -> dict:
    parts = [dict(np.load(p, allow_pickle=False)) for p in paths]
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0] if k != "seconds"}
    out["seconds"] = np.stack([p["seconds"] for p in parts])  # (shards, [preprocessing, teacher])
    return out


# --------------------------------------------------------------------------------------------
# Stage 4: the loss


class _DistillNet(nn.Module):
    """The student plus the hint projection (training only)."""

    def __init__(self, student: Student, teacher_dim: int, hint: bool):
        super().__init__()
        self.student = student
        self.project = nn.Linear(student.config.feature_dim, teacher_dim) if hint else None

    def forward(self, x: torch.Tensor):
        out, feat = self.student(x)
        return out, (self.project(feat) if self.project is not None else None)


def distill_loss(
    z_student: torch.Tensor, z_teacher: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, binary: torch.Tensor,
    config: DistillConfig, hint: torch.Tensor | None = None, feat_teacher: torch.Tensor | None = None,
    labels: torch.Tensor | None = None, weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict]:
    """The distillation loss on standardised outputs; returns (loss, parts).

    ``weights`` (one per output, default 1) scales each output's terms before they are averaged.
    """
    parts: dict[str, torch.Tensor] = {}
    if weights is None:
        weights = torch.ones_like(mean)
    sq = (z_student - z_teacher) ** 2 * weights
    if (~binary).any():
        parts["regression"] = sq[:, ~binary].mean()
    if binary.any():
        t = config.temperature
        s_logit = (z_student * std + mean)[:, binary]
        t_logit = (z_teacher * std + mean)[:, binary]
        soft = F.binary_cross_entropy_with_logits(s_logit / t, torch.sigmoid(t_logit / t), reduction="none")
        floor = F.binary_cross_entropy_with_logits(t_logit / t, torch.sigmoid(t_logit / t), reduction="none")
        parts["soft_bce"] = ((soft - floor) * weights[binary]).mean() * t * t
        if config.logit_weight:
            parts["logit"] = config.logit_weight * sq[:, binary].mean()
    if hint is not None and feat_teacher is not None and config.hint_weight:
        parts["hint"] = config.hint_weight * ((hint - feat_teacher) ** 2).mean()
    if labels is not None and config.label_weight:
        known = torch.isfinite(labels)
        if known.any():
            value = z_student * std + mean
            y = torch.where(known, labels, torch.zeros_like(labels))
            reg = ((value - y) / std) ** 2
            bce = F.binary_cross_entropy_with_logits(value, y.clamp(0, 1), reduction="none")
            per = torch.where(binary, bce, reg) * weights
            parts["labels"] = config.label_weight * per[known].mean()
    return sum(parts.values()), {k: float(v.detach()) for k, v in parts.items()}


# --------------------------------------------------------------------------------------------
# The run


#: Training windows over which an averaged student's batch-norm statistics are measured.
NORM_WINDOWS = 4096


def update_average(average: nn.Module, model: nn.Module, decay: float) -> None:
    """``average = decay * average + (1 - decay) * model``, for weights and running statistics."""
    with torch.no_grad():
        for a, m in zip(average.state_dict().values(), model.state_dict().values()):
            if a.is_floating_point():
                a.lerp_(m, 1 - decay)
            else:
                a.copy_(m)


def with_fresh_norm_stats(model: nn.Module, windows: torch.Tensor, batch_size: int = 256) -> nn.Module:
    """A copy of ``model`` whose batch-norm statistics are measured on ``windows`` (n, samples)."""
    model = copy.deepcopy(model)
    batches = (windows[i : i + batch_size].float().unsqueeze(1) for i in range(0, len(windows), batch_size))
    torch.optim.swa_utils.update_bn(batches, model)
    return model.eval()


def _teacher_info(teacher: Teacher) -> dict:
    return {
        "sha256": teacher.sha256,
        "path_name": Path(teacher.path).name,
        "config": teacher.model.config.to_dict(),
        "label_spec_name": teacher.label_spec.name if teacher.label_spec else None,
    }


def distill(
    teacher_path: str | Path,
    sources: list[str | Path],
    out: str | Path,
    config: DistillConfig = DistillConfig(),
    *,
    label_spec: LabelSpec | None = None,
    resume: bool = False,
    threads: int | None = None,
    trust: bool = False,
    cache_dir: str | Path | None = None,
    log: Callable[[str], None] | None = None,
) -> DistillResult:
    """Distil ``teacher_path`` into a student; run once per process (``torchrun`` for many).

    Args:
        teacher_path: the teacher checkpoint (with its label spec, or pass ``label_spec``).
        sources: corpus sources (see :func:`quantize.corpus.discover`).
        out: output folder: ``student.pt``, ``checkpoint.pt``, ``cache/``, ``distill.json``.
        config: the settings.
        label_spec: the outputs; must match the teacher's head.
        resume: continue from ``out/checkpoint.pt`` if it exists.
        threads: torch threads per process (default 1; run more processes for parallelism).
        trust: allow full unpickling of the teacher checkpoint.
        cache_dir: where the teacher cache lives (default ``out/cache``); runs that differ
            only in the student or the training settings can share one.
        log: where progress lines go (rank 0 only); default ``print``.

    Raises:
        DistillError: naming the stage that failed (teacher, corpus, cache, training).
    """
    ctx = _init_distributed(threads)
    say = (log or print) if ctx.main else (lambda _msg: None)
    out = Path(out)
    torch.manual_seed(config.seed)

    # 1. teacher
    try:
        teacher = load_teacher(teacher_path, label_spec=label_spec, trust=trust)
    except CheckpointError as exc:
        raise DistillError(f"teacher: {exc}") from None
    spec = teacher.label_spec
    if spec is None:
        raise DistillError(f"teacher: {teacher_path} carries no label spec; pass one (--label-spec)")
    if label_spec is not None and label_spec.to_dict() != spec.to_dict():
        raise DistillError("teacher: the label spec given does not match the teacher checkpoint's")
    n_out = len(spec)
    binary_np = np.array([o.is_binary for o in spec.outputs])
    unknown = sorted(set(config.output_weights) - set(spec.names))
    if unknown:
        raise DistillError(f"settings: output_weights names {unknown}, not outputs of the teacher ({spec.names})")
    weights_np = np.array([float(config.output_weights.get(name, 1.0)) for name in spec.names], dtype=np.float32)

    # 2. corpus
    try:
        entries = discover(sources, split=None)
    except CorpusError as exc:
        raise DistillError(f"corpus: {exc}") from None
    entries = [e for e in entries if not e.split or e.split in config.splits]
    if not entries:
        raise DistillError(f"corpus: no records in splits {list(config.splits)}")
    train_entries, held_entries = split_entries(entries, config.val_fraction, config.seed)
    held_paths = {e.path for e in held_entries}
    say(f"corpus: {len(entries)} records ({len(train_entries)} training, {len(held_entries)} held out)")

    # 3. teacher cache, one shard per rank
    key = cache_key(teacher.sha256, entries, config)
    cache_dir = Path(cache_dir or out / "cache") / key
    cache_dir.mkdir(parents=True, exist_ok=True)
    shard_path = cache_dir / f"shard-{ctx.rank:03d}-of-{ctx.world:03d}.npz"
    if _complete_shards(cache_dir) is None and not shard_path.is_file():
        try:
            data = build_shard(teacher, shard(entries, ctx.rank, ctx.world), held_paths, config, ctx.rank, log=say)
        except Exception as exc:
            raise DistillError(f"teacher cache: {type(exc).__name__}: {exc}") from exc
        with atomic_path(shard_path) as tmp:
            with open(tmp, "wb") as handle:
                np.savez(handle, **data)
    ctx.barrier()
    cache = _load_shards(_complete_shards(cache_dir, prefer=ctx.world))
    train_idx = np.nonzero(~cache["held_out"])[0]
    if config.max_train_windows is not None and len(train_idx) > config.max_train_windows:
        pick = np.random.default_rng(config.seed).choice(len(train_idx), config.max_train_windows, replace=False)
        train_idx = np.sort(train_idx[pick])
    held_idx = np.nonzero(cache["held_out"] & ~cache["augmented"])[0]
    if len(train_idx) < 2:
        raise DistillError(f"corpus: only {len(train_idx)} training windows; give more records")
    # The shards were built in parallel: the slowest one sets the wall time.
    cache_rate = len(cache["teacher"]) / max(float(cache["seconds"].sum(axis=1).max()), 1e-9)
    shard_count = len(cache["seconds"])
    say(f"cache: {len(cache['teacher'])} windows ({len(train_idx)} training, {len(held_idx)} held-out clean), "
        f"built at {cache_rate:.1f} windows/s by {shard_count} process(es)")

    # 4. standardisation and model
    t_train = cache["teacher"][train_idx].astype(np.float64)
    mean = t_train.mean(axis=0)
    std = np.maximum(t_train.std(axis=0), 1e-6)
    f_train = cache["features"][train_idx].astype(np.float32)
    f_mean, f_std = f_train.mean(axis=0), f_train.std(axis=0) + 1e-6
    student_config = config.student_config(n_out)
    teacher_downsampling = teacher.model.config.downsampling
    if student_config.downsampling % teacher_downsampling:
        warnings.warn(
            f"the student downsamples {student_config.downsampling}x and the teacher {teacher_downsampling}x: "
            f"the teacher's answer changes with the window's start in a pattern that repeats every "
            f"{teacher_downsampling} samples, which this student cannot follow; choose strides whose "
            "product times 2 is a multiple of the teacher's (docs/shrink.md, section 2)", AnyECGWarning, stacklevel=2)
    student = Student(student_config, return_features=True)
    net = _DistillNet(student, cache["features"].shape[1], hint=config.hint_weight > 0).to(ctx.device)
    model = nn.parallel.DistributedDataParallel(net) if ctx.world > 1 else net
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)

    windows_t = torch.from_numpy(cache["windows"])
    z_t = torch.from_numpy(((cache["teacher"] - mean) / std).astype(np.float32))
    feat_t = torch.from_numpy(((cache["features"].astype(np.float32) - f_mean) / f_std).astype(np.float32))
    labels_t = torch.from_numpy(cache["labels"].astype(np.float32)) if cache["labels"].size else None
    averaged = norm_windows = None
    if config.ema_decay:
        averaged = copy.deepcopy(student)
        norm_windows = windows_t[np.sort(np.random.default_rng(config.seed).choice(
            train_idx, min(NORM_WINDOWS, len(train_idx)), replace=False))]

    def scored() -> nn.Module:
        """The student to score and save: the last weights, or the average with fresh statistics."""
        if averaged is None:
            return student
        return with_fresh_norm_stats(averaged, norm_windows)

    dataset = torch.utils.data.TensorDataset(torch.from_numpy(train_idx))
    sampler = torch.utils.data.distributed.DistributedSampler(
        dataset, num_replicas=ctx.world, rank=ctx.rank, shuffle=True, seed=config.seed, drop_last=True
    ) if ctx.world > 1 else None
    generator = torch.Generator().manual_seed(config.seed)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=config.batch_size, sampler=sampler, shuffle=sampler is None,
        drop_last=len(train_idx) // ctx.world > config.batch_size, generator=generator if sampler is None else None,
    )
    steps_per_epoch = max(1, len(loader))
    total_steps = steps_per_epoch * config.epochs
    warmup = max(1, int(config.warmup_fraction * total_steps))

    def lr_at(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
    mean_t = torch.from_numpy(mean.astype(np.float32)).to(ctx.device)
    std_t = torch.from_numpy(std.astype(np.float32)).to(ctx.device)
    binary_t = torch.from_numpy(binary_np).to(ctx.device)
    weights_t = torch.from_numpy(weights_np).to(ctx.device)

    ckpt_path = out / "checkpoint.pt"
    start_epoch, history = 0, []
    if resume and ckpt_path.is_file():
        state = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        if state.get("cache_key") != key or state.get("world") != ctx.world:
            raise DistillError(f"resume: {ckpt_path} belongs to a different run (data, teacher or process count)")
        net.load_state_dict(state["net"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if averaged is not None:
            if "average" not in state:
                raise DistillError(f"resume: {ckpt_path} was written without ema_decay; resume with the same settings")
            averaged.load_state_dict(state["average"])
        start_epoch, history = int(state["epoch"]), json.loads(state["history"])
        generator.set_state(state["generator"])
        say(f"resume: from epoch {start_epoch} of {config.epochs}")

    held_teacher = outputs_to_values(cache["teacher"][held_idx], spec)
    train_seconds, train_windows = 0.0, 0
    for epoch in range(start_epoch, config.epochs):
        if sampler is not None:
            sampler.set_epoch(epoch)
        model.train()
        t0 = time.perf_counter()
        sums: dict[str, float] = {}
        n_batches = 0
        for (batch_idx,) in loader:
            x = windows_t[batch_idx].float().unsqueeze(1).to(ctx.device)
            out_s, hint = model(x)
            loss, parts = distill_loss(
                out_s, z_t[batch_idx].to(ctx.device), mean_t, std_t, binary_t, config,
                hint=hint, feat_teacher=feat_t[batch_idx].to(ctx.device),
                labels=labels_t[batch_idx].to(ctx.device) if labels_t is not None else None, weights=weights_t,
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            if averaged is not None:
                update_average(averaged, student, config.ema_decay)
            n_batches += 1
            train_windows += len(batch_idx) * ctx.world
            for k, v in {"loss": float(loss.detach()), **parts}.items():
                sums[k] = sums.get(k, 0.0) + v
        if not math.isfinite(sums.get("loss", 0.0)):
            raise DistillError(f"training: the loss became non-finite in epoch {epoch + 1}; lower the learning rate")
        epoch_seconds = time.perf_counter() - t0
        train_seconds += epoch_seconds
        row = {"epoch": epoch + 1, "seconds": round(epoch_seconds, 2),
               **{k: round(v / max(1, n_batches), 6) for k, v in sums.items()}}
        if ctx.main and len(held_idx):
            z = predict(scored(), cache["windows"][held_idx].astype(np.float32)[:, None])
            fit = agreement(held_teacher, outputs_to_values(z * std + mean, spec), spec)
            row["held_out_pearson"] = {k: round(v["pearson_r"], 5) for k, v in fit.items()}
        history.append(row)
        say(f"epoch {epoch + 1}/{config.epochs}: " + json.dumps({k: v for k, v in row.items() if k != "epoch"}))
        if ctx.main:
            state = {"net": net.state_dict(), "optimizer": optimizer.state_dict(),
                     "scheduler": scheduler.state_dict(), "epoch": epoch + 1, "history": json.dumps(history),
                     "generator": generator.get_state(), "cache_key": key, "world": ctx.world}
            if averaged is not None:
                state["average"] = averaged.state_dict()
            with atomic_path(ckpt_path) as tmp:
                torch.save(state, tmp)
        ctx.barrier()

    throughput = {
        "processes": ctx.world,
        "cache_windows": int(len(cache["teacher"])),
        "cache_windows_per_s": round(cache_rate, 2),
        "cache_processes": shard_count,
        "train_windows_per_s": round(train_windows / train_seconds, 1) if train_seconds else None,
        "train_seconds": round(train_seconds, 1),
    }
    held_report = {}
    path = None
    if ctx.main:
        student = scored().eval()
        if len(held_idx):
            z = predict(student, cache["windows"][held_idx].astype(np.float32)[:, None])
            held_report = agreement(held_teacher, outputs_to_values(z * std + mean, spec), spec)
        student.return_features = False
        fused = student.fused()
        info = {
            "distill_config": config.to_dict(),
            "params": count_params(fused),
            "macs": count_macs(fused),
            "history": history,
            "throughput": throughput,
            "held_out": held_report,
            "corpus": {"records": len(entries), "training_windows": int(len(train_idx)),
                       "held_out_windows": int(len(held_idx)), "cache_key": key,
                       "sources": [str(s) for s in sources]},
        }
        path = out / "student.pt"
        save_student(path, student, spec, mean, std, _teacher_info(teacher), info)
        with atomic_path(out / "distill.json") as tmp:
            tmp.write_text(json.dumps({"teacher": _teacher_info(teacher), **info}, indent=2, default=float) + "\n")
        say(f"student: {path} ({info['params']} parameters, {info['macs'] / 1e6:.2f} M MACs); held-out agreement "
            + ", ".join(f"{k} r={v['pearson_r']:.4f}" for k, v in held_report.items()))
    ctx.barrier()
    return DistillResult(path, history, throughput, held_report)


def save_student(path: str | Path, student: Student, spec: LabelSpec, mean: np.ndarray, std: np.ndarray,
                 teacher: dict, info: dict) -> None:
    """Write ``student.pt`` (loads with ``weights_only=True``), atomically."""
    container = {
        "format": STUDENT_FORMAT,
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in student.state_dict().items()},
        "student_config": student.config.to_dict(),
        "label_spec": spec.to_dict(),
        "target_mean": [float(v) for v in mean],
        "target_std": [float(v) for v in std],
        "teacher": json.dumps(teacher),
        "info": json.dumps(info, default=float),
    }
    with atomic_path(path) as tmp:
        torch.save(container, tmp)


def load_student(path: str | Path) -> StudentBundle:
    """Read ``student.pt``.

    Raises:
        CheckpointError: not a student file, or weights that do not fit its config.
    """
    from .checkpoint import file_sha256

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: student file not found")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: cannot read the student file: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != STUDENT_FORMAT:
        raise CheckpointError(f"{path}: not a student file written by 'anyecg-edge distill'")
    config = StudentConfig.from_dict(data["student_config"])
    spec = LabelSpec.from_dict(data["label_spec"])
    if config.n_outputs != len(spec):
        raise CheckpointError(f"{path}: the student has {config.n_outputs} outputs but its label spec {len(spec)}")
    model = Student(config)
    try:
        model.load_state_dict(data["state_dict"], strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: the weights do not match the student config: {exc}") from None
    model.eval()
    return StudentBundle(
        model, config, spec, np.asarray(data["target_mean"]), np.asarray(data["target_std"]),
        json.loads(data["teacher"]), json.loads(data["info"]), str(path), file_sha256(path),
    )
