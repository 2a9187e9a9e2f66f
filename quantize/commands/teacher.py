"""``anyecg-edge teacher``: build the demo teacher from its recipe (cohort, then fine-tuning)."""

from __future__ import annotations

import argparse

HELP = "build the demo electrolyte teacher from its recipe: synthetic cohort, then fine-tuning"
DESCRIPTION = """\
Generates the synthetic electrolyte cohort named by the recipe (quantize/recipes/
demo_teacher.json) and trains a Net1D of the ECGFounder architecture on it to predict
potassium (mmol/L) and hyper-/hypokalaemia and hyper-/hypocalcaemia from lead I.

This is a demo trained on simulated ECG, not a clinical model (see docs/demo-model.md).

Output folder (default artifacts/teacher, artifacts/teacher-tiny for --variant tiny):
  cohort/                       the generated cohort (reused when its settings and hash match)
  teacher.pth                   the checkpoint (ECGFounder container)
  teacher.label_spec.json       its label spec
  teacher.metrics.json          validation and test metrics, training history, hashes
  build.json                    recipe, cohort sha256, checkpoint sha256, versions, build time

The same recipe and seed rebuild the same cohort byte for byte and the same training run.
"""

VARIANTS = ("full", "tiny")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--variant", choices=VARIANTS, default="full",
                        help="full (the demo teacher, about 12 minutes on 2 cores) or tiny (seconds, for tests)")
    parser.add_argument("--recipe", help="recipe JSON (default: the packaged demo_teacher.json)")
    parser.add_argument("--out", help="output folder (default artifacts/teacher or artifacts/teacher-tiny)")
    parser.add_argument("--threads", type=int, help="torch threads (default: the recipe's)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or epoch lines")


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    recipe = load_recipe(args.recipe, args.variant)
    out = Path(args.out or ("artifacts/teacher" if args.variant == "full" else "artifacts/teacher-tiny"))
    log = None if args.quiet else (lambda message: print(message, file=sys.stderr, flush=True))
    build = build_teacher(recipe, out, threads=args.threads, progress=not args.quiet, log=log)

    from .finetune import print_summary

    print(f"teacher     {args.variant}: Net1D width {recipe['finetune'].get('width', 1.0):g}, "
          f"{build['parameters'] / 1e6:.2f} M parameters, built in {build['seconds'] / 60:.1f} min")
    print(f"cohort      {build['cohort']['records']} records of {build['cohort']['subjects']} subjects, "
          f"sha256 {build['cohort']['sha256']}")
    print_summary(build["metrics"], out / "teacher.pth", out / "teacher.metrics.json")
    return 0


def load_recipe(path=None, variant: str = "full") -> dict:
    """The recipe of one variant: the base settings with the variant's overrides merged in.

    Returns a dict with ``name``, ``variant``, ``label_spec`` (a path), ``threads``,
    ``cohort`` (:class:`quantize.cohort.CohortConfig` fields) and ``finetune``
    (:class:`quantize.finetune.FinetuneConfig` fields).
    """
    import json
    from pathlib import Path

    from ..finetune import FinetuneError

    recipes = Path(__file__).resolve().parent.parent / "recipes"
    path = Path(path) if path else recipes / "demo_teacher.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise FinetuneError(f"{path}: cannot read the recipe: {exc}") from None
    variants = data.get("variants", {})
    if variant not in variants:
        raise FinetuneError(f"{path}: no variant {variant!r}; it has {sorted(variants)}")
    chosen = variants[variant]
    spec = Path(data.get("label_spec", "demo_electrolytes.json"))
    return {
        "name": data.get("name", path.stem),
        "variant": variant,
        "recipe": str(path),
        "label_spec": str(spec if spec.is_absolute() else path.parent / spec),
        "threads": chosen.get("threads", data.get("threads")),
        "cohort": {**data.get("cohort", {}), **chosen.get("cohort", {})},
        "finetune": {**data.get("finetune", {}), **chosen.get("finetune", {})},
    }


def build_teacher(recipe: dict, out, threads: int | None = None, progress: bool = True, log=None) -> dict:
    """Generate (or reuse) the recipe's cohort in ``out/cohort``, fine-tune, and write ``out/build.json``.

    Returns the build record (also written to ``build.json``), with the metrics under ``metrics``.
    """
    import json
    import platform
    import time
    from pathlib import Path

    import numpy as np
    import torch

    from anyecg_edge.files import atomic_write
    from anyecg_edge.labels import LabelSpec

    from ..cohort import CohortConfig, cohort_hash, write_cohort
    from ..finetune import FinetuneConfig, finetune
    from ..labtable import read_lab_table

    log = log or (lambda message: None)
    started = time.perf_counter()
    out = Path(out)
    threads = threads or recipe.get("threads")
    if threads:
        torch.set_num_threads(int(threads))
    cohort_config = CohortConfig.from_dict(recipe["cohort"])
    finetune_config = FinetuneConfig.from_dict(recipe["finetune"])
    spec = LabelSpec.load(recipe["label_spec"])

    cohort_dir = out / "cohort"
    meta_path = cohort_dir / "cohort.json"
    reuse = False
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        reuse = meta.get("config") == cohort_config.to_dict() and meta.get("sha256") == cohort_hash(cohort_dir)
    if reuse:
        cohort = {"path": str(cohort_dir), "subjects": meta["subjects"], "records": meta["records"],
                  "sha256": meta["sha256"], "counts": meta["counts"], "seconds": 0.0, "reused": True}
        log(f"cohort: reusing {cohort_dir} (sha256 {meta['sha256'][:16]}...)")
    else:
        t0 = time.perf_counter()
        summary = write_cohort(cohort_dir, cohort_config, recipe["label_spec"], overwrite=True)
        cohort = {**summary.to_dict(), "seconds": round(time.perf_counter() - t0, 1), "reused": False}
        log(f"cohort: {summary.records} records of {summary.subjects} subjects in {cohort['seconds']:.0f} s")

    table = read_lab_table(cohort_dir / "labs.csv", spec)
    extra = {"cohort": {k: cohort[k] for k in ("sha256", "subjects", "records", "counts")},
             "recipe": {"name": recipe["name"], "variant": recipe["variant"]}}
    result = finetune(table, out / "teacher.pth", finetune_config, progress=progress, log=log, extra_metrics=extra)
    build = {
        "recipe": recipe,
        "cohort": cohort,
        "checkpoint": {"path": str(result.checkpoint), "sha256": result.sha256,
                       "weights_sha256": result.metrics["weights_sha256"]},
        "parameters": result.metrics["model"]["parameters"],
        "net1d": result.metrics["model"]["net1d"],
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__},
        "threads": torch.get_num_threads(),
        "seconds": round(time.perf_counter() - started, 1),
        "metrics": result.metrics,
    }
    atomic_write(out / "build.json", json.dumps({k: v for k, v in build.items() if k != "metrics"}, indent=2) + "\n")
    return build
