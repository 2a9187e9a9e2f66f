"""Shared, cached artefacts of the shrink-pipeline tests: one tiny teacher, one student, one export.

Each is built at most once per test session (``functools.cache``) in a temporary folder, so
``test_distill``, ``test_export`` and ``test_verify`` share a single onnx2tf conversion.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

DATA = Path(__file__).parent / "data"
SPEC = Path(__file__).parent.parent / "quantize" / "recipes" / "demo_electrolytes.json"


@functools.cache
def workdir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="anyecg-shrink-tests-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


@functools.cache
def tiny_teacher() -> Path:
    """A seeded Net1D at 1/16 of ECGFounder's width, head scaled so its outputs vary."""
    import torch

    from anyecg_edge.labels import LabelSpec
    from quantize.checkpoint import save_checkpoint
    from quantize.net1d import Net1D, Net1DConfig

    spec = LabelSpec.load(SPEC)
    torch.manual_seed(0)
    model = Net1D(Net1DConfig.ecgfounder(1, len(spec)).scaled(0.0625)).eval()
    with torch.no_grad():
        model.dense.weight.mul_(40.0)
    path = workdir() / "tiny_teacher.pth"
    save_checkpoint(path, model, spec)
    return path


@functools.cache
def tiny_cohort() -> Path:
    from quantize.cohort import CohortConfig, write_cohort

    path = workdir() / "cohort"
    write_cohort(path, CohortConfig(seed=1, subjects=8, records_per_subject=1.0, duration_s=(12, 14),
                                    val_fraction=0.25, test_fraction=0.25))
    return path


def distill_settings(**overrides) -> dict:
    settings = {"epochs": 1, "batch_size": 8, "max_per_record": 3, "augment_copies": 1, "hint_weight": 0.5,
                "label_weight": 0.1, "student_preset": "x0.5", "val_fraction": 0.25, "seed": 0}
    settings.update(overrides)
    return settings


@functools.cache
def tiny_student() -> Path:
    """A student distilled for two epochs on the real test records and the tiny cohort."""
    from quantize.distill import DistillConfig, distill

    result = distill(tiny_teacher(), [DATA, tiny_cohort()], workdir() / "distill",
                     DistillConfig.from_dict(distill_settings(epochs=2)), threads=1, log=lambda _m: None)
    return result.path


@functools.cache
def exported():
    """The one onnx2tf conversion of the session."""
    from quantize.export import ExportConfig, export

    config = ExportConfig(name="tiny", calibration_windows=24, min_calibration_windows=16, parity_windows=16)
    return export(tiny_student(), workdir() / "export", [DATA], config, log=lambda _m: None)
