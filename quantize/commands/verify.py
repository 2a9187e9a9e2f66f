"""``anyecg-edge verify``: fidelity of an int8 student against its teacher."""

from __future__ import annotations

import argparse

HELP = "measure an int8 student's fidelity to its teacher (JSON, markdown, plots)"
DESCRIPTION = """\
Runs the teacher, the float32 student and the int8 student (through the device runtime)
on every evaluation set and reports per output: Pearson r and MAE teacher vs int8 (r with a
95 % interval from resampling whole records, so a small set's luck is visible), AUROC of
teacher, float32 and int8 student against labels where the set has them, the AUROC drops,
calibration (ECE, Brier), and for regression outputs the error against the lab value.
Checks the targets (r >= 0.98, AUROC drop <= 0.01, float32 -> int8 drop <= 0.002).

--data takes NAME=PATH[,PATH...][@SPLIT], e.g.
  --data held-out=artifacts/cohort@test --data real=../shared/data/cinc2021
Writes OUT/fidelity.json, OUT/fidelity.md and PNG plots. Exit status 1 if a target fails
and --strict is given.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="the int8 .tflite")
    parser.add_argument("--teacher", required=True, help="the teacher checkpoint")
    parser.add_argument("--data", action="append", required=True, metavar="[NAME=]PATH[@SPLIT]",
                        help="evaluation set (repeatable)")
    parser.add_argument("--out", required=True, help="report folder")
    parser.add_argument("--float-model", help="float32 .tflite (default: NAME-float32.tflite beside --model)")
    parser.add_argument("--student", help="student.pt, when there is no float32 .tflite")
    parser.add_argument("--markdown", help="also write the markdown report here (plots linked relatively)")
    parser.add_argument("--images", help="folder for the plots (default: --out)")
    parser.add_argument("--hop", type=float, default=5.0, help="hop between windows of a record, s (default 5)")
    parser.add_argument("--max-per-record", type=int, default=12, help="windows per record at most (default 12)")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--trust-checkpoint", action="store_true",
                        help="allow full unpickling of the teacher file (only for files you trust)")


def run(args: argparse.Namespace) -> int:
    from ..verify import parse_eval_set, verify

    sets = [parse_eval_set(text) for text in args.data]
    report = verify(args.model, args.teacher, sets, args.out, float_model=args.float_model,
                    student_path=args.student, hop_s=args.hop, max_per_record=args.max_per_record,
                    plots=not args.no_plots, markdown=args.markdown, image_dir=args.images,
                    trust=args.trust_checkpoint)
    print(f"fidelity: {'pass' if report['pass'] else 'FAIL'}; report in {args.out}/fidelity.md")
    return 1 if args.strict and not report["pass"] else 0
