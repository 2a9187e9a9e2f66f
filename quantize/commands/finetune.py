"""``anyecg-edge finetune``: fine-tune an ECGFounder teacher on ECG records with lab values."""

from __future__ import annotations

import argparse

HELP = "fine-tune an ECGFounder checkpoint (or train from scratch) on ECG records with lab values"
DESCRIPTION = """\
Reads a lab table (CSV: file_path, one column per lab, optional subject_id, fs, mains_hz,
split; Pocket-K's file_path,label,original_value also works) and a label spec, cuts every
record into canonically preprocessed 10 s windows of one lead, and trains one multi-task
head: BCE-with-logits for binary outputs, MSE or Huber for regression outputs.

Subjects never cross splits. Training windows are drawn class-balanced; Adam with
ReduceLROnPlateau and early stopping watch the validation score (mean AUROC of binary
outputs and 1 - MAE/SD of regression outputs, per record: the mean of its window scores).

Writes the checkpoint (ECGFounder container: state_dict, net1d_config, label_spec), and
beside it NAME.label_spec.json and NAME.metrics.json (AUROC, AUPRC, sensitivity and
specificity at the spec's thresholds, MAE, per split), each atomically.

Without --init the model is a fresh Net1D of the ECGFounder architecture (--width narrows it).
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--labs", required=True, help="lab table (CSV)")
    parser.add_argument("--label-spec", help="label spec JSON (default: label_spec.json beside the lab table)")
    parser.add_argument("--out", required=True, help="checkpoint to write (.pth)")
    parser.add_argument("--init", help="teacher checkpoint to start from (ECGFounder format); default: from scratch")
    parser.add_argument("--trust-checkpoint", action="store_true",
                        help="allow full unpickling of --init (only for files you trust)")
    parser.add_argument("--width", type=float, default=1.0,
                        help="width multiplier of a model trained from scratch (default 1.0 = ECGFounder size)")
    parser.add_argument("--linear-probe", action="store_true", help="train only the head")
    parser.add_argument("--epochs", type=int, default=30, help="maximum epochs (default 30)")
    parser.add_argument("--batch-size", type=int, default=64, help="windows per batch (default 64)")
    parser.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate (default 1e-4)")
    parser.add_argument("--weight-decay", type=float, default=1e-5, help="Adam weight decay (default 1e-5)")
    parser.add_argument("--regression-loss", choices=("mse", "huber"), default="mse", help="default mse")
    parser.add_argument("--no-balance", action="store_true", help="draw training windows uniformly")
    parser.add_argument("--patience", type=int, default=5, help="early-stopping patience in epochs (default 5)")
    parser.add_argument("--windows-per-epoch", type=int, help="training windows per epoch (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--val-fraction", type=float, default=0.15, help="subjects for validation without a split column")
    parser.add_argument("--test-fraction", type=float, default=0.15, help="subjects for test without a split column")
    parser.add_argument("--fs", type=float, help="sampling rate of .npy records whose row has no fs")
    parser.add_argument("--lead", default="I", help="lead to train on (default I)")
    parser.add_argument("--mains-hz", type=float, choices=(50.0, 60.0), default=50.0,
                        help="notch frequency for rows without mains_hz (default 50)")
    parser.add_argument("--hop", type=float,
                        help="seconds between window starts (default 10: consecutive windows); overlapping "
                             "windows at a hop that is not a multiple of 0.512 s (Net1D's 256-sample grid) "
                             "show each record at many grid positions, so the answer moves less when the "
                             "window does")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or epoch lines")


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    import torch

    from anyecg_edge.labels import LabelSpec

    from ..finetune import FinetuneConfig, finetune
    from ..labtable import LabTableError, read_lab_table

    if args.threads:
        torch.set_num_threads(args.threads)
    spec_path = args.label_spec or Path(args.labs).parent / "label_spec.json"
    if not args.label_spec and not Path(spec_path).exists():
        raise LabTableError("no --label-spec given and no label_spec.json beside the lab table", args.labs)
    spec = LabelSpec.load(spec_path)
    config = FinetuneConfig(
        seed=args.seed, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
        linear_probe=args.linear_probe, width=args.width, balance=not args.no_balance,
        regression_loss=args.regression_loss, early_stop_patience=args.patience,
        windows_per_epoch=args.windows_per_epoch, val_fraction=args.val_fraction,
        test_fraction=args.test_fraction, hop_seconds=args.hop, lead=args.lead, mains_hz=args.mains_hz)
    table = read_lab_table(args.labs, spec, default_fs=args.fs)
    log = None if args.quiet else (lambda message: print(message, file=sys.stderr, flush=True))
    result = finetune(table, args.out, config, init=args.init, trust=args.trust_checkpoint,
                      progress=not args.quiet, log=log)
    print_summary(result.metrics, result.checkpoint, result.metrics_path)
    return 0


def print_summary(metrics: dict, checkpoint, metrics_path) -> None:
    """The per-output record-level results of each split, one line each."""
    print(f"checkpoint  {checkpoint} (sha256 {metrics['sha256']})")
    print(f"metrics     {metrics_path}")
    for split in ("val", "test"):
        if split not in metrics:
            continue
        result = metrics[split]
        print(f"{split:5s}       {result['records']} records")
        for name, r in result["outputs"].items():
            if "auroc" in r:
                print(f"  {name:14s} AUROC {_f(r['auroc'])}  AUPRC {_f(r['auprc'])}  sens {_f(r['sensitivity'])}  "
                      f"spec {_f(r['specificity'])} at {r['threshold']:g}  ({r['positives']}/{r['n']} positive)")
            else:
                print(f"  {name:14s} MAE {_f(r['mae'])}  r {_f(r['pearson_r'])}  bias {_f(r['bias'])}  "
                      f"(SD {_f(r['sd_true'])}, n {r['n']})")


def _f(value) -> str:
    return "  n/a" if value is None or value != value else f"{value:.3f}"
