"""Loading and saving ECGFounder-format checkpoints, safely and strictly.

The official files are ``torch.save``'d dicts whose ``'state_dict'`` holds the Net1D
weights, often beside optimizer and scheduler state. We load with
``torch.load(weights_only=True)``; a file that needs arbitrary unpickling is refused unless
the caller passes ``trust=True`` (the ``--trust-checkpoint`` flag), because unpickling can
run code. Our own checkpoints use the same container and add the Net1D config and the
label spec as plain JSON-like values, so they stay loadable by upstream code.
"""

from __future__ import annotations

import pickle
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from anyecg_edge.files import atomic_path
from anyecg_edge.files import sha256_file as file_sha256
from anyecg_edge.errors import AnyECGError, AnyECGWarning
from anyecg_edge.labels import LabelSpec

from .net1d import Net1D, Net1DConfig

__all__ = [
    "CheckpointError",
    "KeyReport",
    "Teacher",
    "compare_state_dicts",
    "file_sha256",
    "load_container",
    "load_teacher",
    "save_checkpoint",
]


class CheckpointError(AnyECGError, ValueError):
    """A checkpoint that cannot be loaded as asked; the message says why and what to do."""


@dataclass
class KeyReport:
    """How a checkpoint's tensors line up with a model's."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple, tuple]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    @property
    def only_head_differs(self) -> bool:
        keys = self.missing + self.unexpected + [k for k, _, _ in self.mismatched]
        return bool(keys) and all(k.startswith("dense.") for k in keys)

    def __str__(self) -> str:
        lines = []

        def listing(title: str, items: list[str]) -> None:
            if items:
                shown = ", ".join(items[:8]) + (f", ... ({len(items) - 8} more)" if len(items) > 8 else "")
                lines.append(f"{len(items)} {title}: {shown}")

        listing("missing key(s)", self.missing)
        listing("unexpected key(s)", self.unexpected)
        listing(
            "shape mismatch(es)",
            [f"{k} checkpoint {list(a)} vs model {list(b)}" for k, a, b in self.mismatched],
        )
        return "; ".join(lines) if lines else "all keys and shapes match"


@dataclass
class Teacher:
    """A loaded teacher: the model, its label spec (if the checkpoint had one) and provenance."""

    model: Net1D
    label_spec: LabelSpec | None
    path: str
    sha256: str
    report: KeyReport


def load_container(path: str | Path, trust: bool = False) -> dict:
    """Load a checkpoint file into a dict with a ``'state_dict'`` entry.

    Args:
        path: the ``.pth`` file.
        trust: allow full unpickling when the safe loader refuses the file. Only for files
            from a source you trust: unpickling can execute arbitrary code.

    Raises:
        CheckpointError: missing, truncated or unreadable file; or a file that needs
            ``trust=True``.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, AttributeError, TypeError) as exc:
        if _looks_truncated(path, exc):
            raise CheckpointError(f"{path}: the file is truncated or corrupt ({exc})") from None
        if not trust:
            raise CheckpointError(
                f"{path}: the safe loader (weights_only=True) refused this file: it holds Python objects "
                "beyond tensors, typically optimizer or scheduler state. Unpickling it can run code. "
                "If you trust where it came from, pass --trust-checkpoint (trust=True)."
            ) from None
        warnings.warn(f"{path}: loading with full unpickling because trust was given", AnyECGWarning, stacklevel=2)
        try:
            obj = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc2:  # any failure here means an unusable file
            raise CheckpointError(f"{path}: cannot load checkpoint: {exc2}") from None
    except (EOFError, zipfile.BadZipFile, OSError) as exc:
        raise CheckpointError(f"{path}: the file is truncated or corrupt ({exc})") from None
    if isinstance(obj, dict) and "state_dict" in obj:
        container = dict(obj)
    elif isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        container = {"state_dict": obj}
    else:
        raise CheckpointError(f"{path}: no 'state_dict' in the checkpoint (top-level keys: {_keys(obj)})")
    state = container["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: 'state_dict' is not a mapping of tensors")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}  # saved from DistributedDataParallel
    container["state_dict"] = state
    return container


def _keys(obj) -> str:
    return str(sorted(obj)[:10]) if isinstance(obj, dict) else type(obj).__name__


def _looks_truncated(path: Path, exc: Exception) -> bool:
    text = str(exc).lower()
    if any(s in text for s in ("central directory", "failed finding", "unexpected eof", "truncated", "ran out of input")):
        return True
    return not zipfile.is_zipfile(path) and path.stat().st_size < 64


def compare_state_dicts(checkpoint: dict, model_state: dict) -> KeyReport:
    """Missing, unexpected and shape-mismatched keys of ``checkpoint`` against ``model_state``."""
    report = KeyReport()
    report.missing = [k for k in model_state if k not in checkpoint]
    report.unexpected = [k for k in checkpoint if k not in model_state]
    report.mismatched = [
        (k, tuple(checkpoint[k].shape), tuple(model_state[k].shape))
        for k in model_state
        if k in checkpoint and tuple(checkpoint[k].shape) != tuple(model_state[k].shape)
    ]
    return report


def load_teacher(
    path: str | Path,
    config: Net1DConfig | None = None,
    label_spec: LabelSpec | None = None,
    strict: bool = True,
    replace_head: bool = False,
    trust: bool = False,
) -> Teacher:
    """Build a Net1D and load a checkpoint into it.

    Args:
        path: checkpoint file (official ECGFounder container or ours).
        config: the architecture; by default the one stored in the checkpoint, else the
            one inferred from its tensors.
        label_spec: the outputs wanted. If it is given and the checkpoint's head has a
            different width, the head is replaced (with ``replace_head=True``), as upstream
            fine-tuning does. Without it, the checkpoint's own spec is used.
        strict: refuse any key or shape mismatch (other than a replaced head).
        replace_head: allow a fresh ``dense`` layer when the head does not fit.
        trust: see :func:`load_container`.

    Raises:
        CheckpointError: with a readable report of missing/unexpected keys and shapes.
    """
    container = load_container(path, trust=trust)
    state = container["state_dict"]
    if config is None:
        stored = container.get("net1d_config")
        try:
            config = Net1DConfig.from_dict(stored) if stored else Net1DConfig.from_state_dict(state)
        except ValueError as exc:
            raise CheckpointError(f"{path}: {exc}") from None
    stored_spec = container.get("label_spec")
    spec = label_spec or (LabelSpec.from_dict(stored_spec) if stored_spec else None)
    n_classes = len(spec) if spec is not None else config.n_classes
    model = Net1D(Net1DConfig.from_dict({**config.to_dict(), "n_classes": n_classes}))
    report = compare_state_dicts(state, model.state_dict())
    if report.ok:
        model.load_state_dict(state, strict=True)
    elif report.only_head_differs and replace_head:
        body = {k: v for k, v in state.items() if not k.startswith("dense.")}
        model.load_state_dict(body, strict=False)
    elif report.only_head_differs:
        raise CheckpointError(
            f"{path}: the checkpoint's head does not fit the {n_classes} outputs asked for ({report}); "
            "pass replace_head=True (fine-tuning does) to start a fresh head"
        )
    elif strict:
        raise CheckpointError(f"{path}: checkpoint does not match the Net1D config: {report}")
    else:
        loadable = {k: v for k, v in state.items() if k in model.state_dict() and k not in {m for m, _, _ in report.mismatched}}
        model.load_state_dict(loadable, strict=False)
        warnings.warn(f"{path}: loaded non-strictly: {report}", AnyECGWarning, stacklevel=2)
    model.eval()
    return Teacher(model, spec, str(path), file_sha256(path), report)


def save_checkpoint(path: str | Path, model: Net1D, label_spec: LabelSpec | None = None, **extra) -> str:
    """Save in the ECGFounder container format (plus config and label spec); returns the sha256.

    The write is atomic. ``extra`` entries must be plain values (numbers, strings, lists,
    dicts) so that the file loads with ``weights_only=True``.
    """
    if label_spec is not None and len(label_spec) != model.config.n_classes:
        raise CheckpointError(
            f"label spec has {len(label_spec)} outputs but the model head has {model.config.n_classes}"
        )
    container = {
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
        "net1d_config": model.config.to_dict(),
        **extra,
    }
    if label_spec is not None:
        container["label_spec"] = label_spec.to_dict()
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        torch.save(container, handle)  # a file handle keeps the archive name fixed: same weights, same bytes
    return file_sha256(path)
