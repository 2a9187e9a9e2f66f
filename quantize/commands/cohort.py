"""``anyecg-edge cohort``: generate the synthetic electrolyte ECG cohort."""

from __future__ import annotations

import argparse

HELP = "generate a synthetic lead-I ECG cohort whose morphology follows potassium and calcium"
DESCRIPTION = """\
Writes single-lead (lead I) ECG records whose waves change with serum potassium and
calcium as textbooks describe (peaked T, flat P, long PR and wide QRS in hyperkalaemia;
flat T, U wave and ST depression in hypokalaemia; short or long ST segment with high or
low calcium), at wearable rates (130, 250, 500 Hz) with realistic noise. See docs/cohort.md.

Output folder:
  records/SUBJECT_VISIT.npy   float32, mV, at the rate in labs.csv
  labs.csv                    file_path, subject_id, split, fs, potassium (mmol/L),
                              calcium (mg/dL), and generation parameters
  label_spec.json             the demo electrolyte label spec
  cohort.json                 the settings and the cohort's sha256

The same settings and seed give a byte-identical cohort.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="folder to create")
    parser.add_argument("--subjects", type=int, default=100, help="number of subjects (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--records-per-subject", type=float, default=1.5,
                        help="mean records per subject, each with its own lab values (default 1.5)")
    parser.add_argument("--duration", type=float, nargs=2, metavar=("MIN", "MAX"), default=(30.0, 60.0),
                        help="record duration range in seconds (default 30 60)")
    parser.add_argument("--rates", type=int, nargs="+", default=None,
                        help="native sampling rates in Hz, used equally often (default 130 250 500, 40/30/30 %%)")
    parser.add_argument("--noise-scale", type=float, default=1.0, help="multiplies every noise amplitude (0 = clean)")
    parser.add_argument("--effect-scale", type=float, default=1.0,
                        help="multiplies every electrolyte effect (0 = ECG independent of the labs)")
    parser.add_argument("--label-spec", help="label spec to copy into the cohort (default: the demo electrolyte spec)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    import sys

    from ..cohort import CohortConfig, write_cohort

    settings = dict(seed=args.seed, subjects=args.subjects, records_per_subject=args.records_per_subject,
                    duration_s=tuple(args.duration), noise_scale=args.noise_scale, effect_scale=args.effect_scale)
    if args.rates:
        settings.update(rates=tuple(args.rates), rate_weights=tuple(1.0 for _ in args.rates))
    config = CohortConfig(**settings)
    bar = None
    if not args.quiet and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(desc="records", unit="record", leave=False)
    progress = (lambda n: bar.update(n - bar.n)) if bar is not None else None
    try:
        summary = write_cohort(args.out, config, args.label_spec, overwrite=args.overwrite, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    print(f"cohort      {summary.path}: {summary.records} records of {summary.subjects} subjects")
    for split, c in summary.counts.items():
        print(f"  {split:5s}     {c['records']:5d} records, {c['subjects']:4d} subjects; K>5.5 {c['potassium_gt_5.5']}, "
              f"K<3.5 {c['potassium_lt_3.5']}, Ca>10.5 {c['calcium_gt_10.5']}, Ca<8.5 {c['calcium_lt_8.5']}")
    print(f"sha256      {summary.sha256}")
    return 0
