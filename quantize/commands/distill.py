"""``anyecg-edge distill``: distil a teacher checkpoint into a small student."""

from __future__ import annotations

import argparse
import json

HELP = "distil a teacher into a small int8-ready student (runs under torchrun for many processes)"
DESCRIPTION = """\
Learns a small 1-D CNN student from a Net1D teacher on unlabeled ECG: every record of
--data (WFDB folders, .npy records, .npz shards, cohort folders with labs.csv) is cut into
10 s windows, augmented as a wearable sees it (rate jitter, shift, gain, baseline wander,
noise, mains hum), optionally mixed with another record (--mix-copies), canonically
preprocessed and labelled by the teacher once (cached in OUT/cache); the student then
matches the teacher per output (soft-target BCE with temperature for binary outputs, MSE
on standardised values for regression), optionally with a feature hint and a ground-truth
term.

Writes OUT/student.pt (the input of 'anyecg-edge export'), OUT/distill.json and a
resumable OUT/checkpoint.pt.

Many processes (gloo on CPU, nccl on GPUs):
  torchrun --nproc-per-node 2 -m anyecg_edge.cli distill --teacher T.pth --data DIR --out OUT
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--teacher", required=True, help="teacher checkpoint (with its label spec)")
    parser.add_argument("--data", action="append", required=True, metavar="PATH",
                        help="corpus source (repeatable): folder, cohort folder, WFDB record, .npy or .npz")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--recipe", help="JSON recipe; its 'distill' section (or the whole object) sets the defaults")
    parser.add_argument("--label-spec", help="label spec JSON; must match the teacher's")
    parser.add_argument("--student", dest="student_preset", help="student width preset (x0.5, x0.75, x1, x1.25, x1.5, x2)")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--temperature", type=float)
    parser.add_argument("--hint-weight", type=float, help="weight of the pooled-feature hint (0 = off)")
    parser.add_argument("--label-weight", type=float, help="weight of the ground-truth term where labels exist")
    parser.add_argument("--ema-decay", type=float,
                        help="keep an exponential moving average of the student's weights with this decay per step "
                             "(e.g. 0.999) and save the average (default 0: save the last weights)")
    parser.add_argument("--output-weight", action="append", metavar="NAME=WEIGHT",
                        help="scale one output's loss terms (repeatable; default 1 for every output), e.g. "
                             "hypocalcemia=3 to follow the teacher more closely on that output")
    parser.add_argument("--augment-copies", type=int, help="augmented windows per segment in the cache")
    parser.add_argument("--mix-copies", type=int,
                        help="windows per training segment mixed with another training segment (weight 0.5-1 "
                             "on its own, equal power), augmented and labelled by the teacher; they teach the "
                             "student the teacher's answers between the recordings of a small corpus")
    parser.add_argument("--max-per-record", type=int, help="segments per record at most")
    parser.add_argument("--projections", type=int,
                        help="extra frontal-plane leads (random axes, -30 to 90 degrees) per record with leads I and II")
    parser.add_argument("--extra-leads", metavar="NAMES",
                        help="more leads to take from multi-lead records as signals of their own, comma-separated "
                             "(e.g. V1,V2,V3,V4,V5,V6: a chest strap or patch sees the heart much as a chest lead does)")
    parser.add_argument("--splits", help="cohort splits to learn from, comma-separated (default train,val)")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--threads", type=int, help="torch threads per process (default 1: use processes for parallelism)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    parser.add_argument("--cache", help="teacher-cache folder (default OUT/cache); shareable between runs")
    parser.add_argument("--trust-checkpoint", action="store_true",
                        help="allow full unpickling of the teacher file (only for files you trust)")


def run(args: argparse.Namespace) -> int:
    from anyecg_edge.labels import LabelSpec

    from ..distill import DistillConfig, distill

    settings: dict = {}
    if args.recipe:
        with open(args.recipe) as handle:
            recipe = json.load(handle)
        settings.update(recipe.get("distill", recipe))
    for key in ("student_preset", "epochs", "batch_size", "lr", "temperature", "hint_weight", "label_weight",
                "ema_decay", "augment_copies", "mix_copies", "max_per_record", "projections", "seed"):
        value = getattr(args, key)
        if value is not None:
            settings[key] = value
    if args.output_weight:
        settings["output_weights"] = {**settings.get("output_weights", {}), **_output_weights(args.output_weight)}
    if args.splits:
        settings["splits"] = [s for s in args.splits.split(",") if s]
    if args.extra_leads:
        settings["extra_leads"] = [s.strip() for s in args.extra_leads.split(",") if s.strip()]
    try:
        config = DistillConfig.from_dict(settings)
    except (TypeError, ValueError) as exc:
        from ..distill import DistillError

        raise DistillError(f"settings: {exc}") from None
    spec = LabelSpec.load(args.label_spec) if args.label_spec else None
    distill(args.teacher, args.data, args.out, config, label_spec=spec, resume=args.resume,
            threads=args.threads, trust=args.trust_checkpoint, cache_dir=args.cache)
    return 0


def _output_weights(items: list[str]) -> dict[str, float]:
    """``["hypocalcemia=3"]`` -> ``{"hypocalcemia": 3.0}``."""
    from ..distill import DistillError

    weights = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            weight = float(value) if sep and name.strip() else None
        except ValueError:
            weight = None
        if weight is None:
            raise DistillError(f"settings: --output-weight takes NAME=WEIGHT, got {item!r}")
        weights[name.strip()] = weight
    return weights
