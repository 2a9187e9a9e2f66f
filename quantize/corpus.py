"""A corpus of raw 500 Hz ECG segments for distillation, calibration and evaluation.

Sources, mixed freely:

* a **folder** of WFDB records (every ``*.hea`` below it), ``.npy`` records and ``.npz`` shards;
* a **cohort** folder (one with ``labs.csv``: ``file_path, subject_id, split, fs`` and lab
  columns; see :mod:`quantize.cohort`), optionally filtered by split;
* a single WFDB record, ``.npy`` record (at ``npy_fs``) or ``.npz`` shard.

A source written ``PATH*N`` is taken N times: with random segment draws and augmentation,
a small source (real recordings beside a large synthetic cohort) then weighs N times more.

An ``.npz`` shard holds ``signal`` (n, samples) already cut into segments, ``fs`` (scalar)
and optionally ``subject`` (n,) strings.

Each record is read, one lead chosen by name (:data:`LEAD_PREFERENCE`), non-finite samples
zeroed, resampled to 500 Hz and cut into *segments*: a 10 s window plus a margin on each
side, so an augmentation can shift and stretch without reading past the record. The centre
of a segment is the un-augmented window. Segments are raw (mV): the canonical preprocessing
is applied later, after augmentation, by :func:`preprocess_windows`.

A record with limb leads I and II can also give *frontal-plane projections*
(``projections=K`` in :func:`load_segments`): K more single-lead signals, each the heart's
frontal vector seen along a random axis between aVL (-30 degrees) and aVF (+90 degrees),
:func:`frontal_projection`. A wearable's "lead I" depends on where the electrodes sit, so
one twelve-lead recording then stands for several plausible wearable leads of that heart.
``extra_leads`` names further leads to take from a record as signals of their own (the chest
leads V1-V6 of a twelve-lead recording, the second lead of a Holter recording): a chest strap
or patch sees the heart much as a chest lead does.

Records, not segments, are the unit of sharding across ranks (:func:`shard`) and of the
train/held-out split, so windows of one recording never straddle two shards or splits.
"""

from __future__ import annotations

import csv
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from anyecg_edge.errors import AnyECGError, AnyECGWarning, PreprocessingError, RecordError
from anyecg_edge.labels import LabelSpec
from anyecg_edge.preprocess import (
    TARGET_FS,
    WINDOW_SAMPLES,
    PreprocessConfig,
    fit_length,
    preprocess_window,
    replace_nonfinite,
    resample,
)
from anyecg_edge.records import Record, normalise_lead_name, read_record

__all__ = [
    "LEAD_PREFERENCE",
    "CorpusError",
    "RecordEntry",
    "Segments",
    "discover",
    "frontal_projection",
    "load_segments",
    "pick_lead",
    "preprocess_windows",
    "record_targets",
    "shard",
    "source_name",
]

#: The lead taken from a multi-lead record: the first of these it has, else its first channel.
LEAD_PREFERENCE = ("I", "ECG", "II", "MLII")
#: Axis range of frontal-plane projections, degrees (0 = lead I, 60 = lead II, 90 = aVF).
PROJECTION_AXES = (-30.0, 90.0)
_COHORT_META = {"file_path", "subject_id", "split", "fs"}


class CorpusError(AnyECGError, ValueError):
    """A corpus source that cannot be used (missing, empty, malformed lab table)."""


@dataclass(frozen=True)
class RecordEntry:
    """One record of the corpus: where it is and what is known about it."""

    path: str
    kind: str  # "wfdb", "npy", "npz"
    fs: float | None = None
    subject: str = ""
    split: str = ""
    source: str = ""
    labs: dict = field(default_factory=dict)


@dataclass
class Segments:
    """Raw segments (n, segment_samples) float32 in mV at 500 Hz, with their records."""

    raw: np.ndarray
    record_index: np.ndarray
    entries: list[RecordEntry]

    def __len__(self) -> int:
        return int(self.raw.shape[0])

    @property
    def subjects(self) -> np.ndarray:
        return np.array([self.entries[i].subject for i in self.record_index], dtype=object)

    def targets(self, spec: LabelSpec) -> np.ndarray:
        """Per-segment targets (n, outputs) from the records' labs; NaN where unknown."""
        per_record = record_targets(spec, self.entries)
        return per_record[self.record_index] if len(self) else np.zeros((0, len(spec)))


def discover(sources, split: str | None = None, npy_fs: float = TARGET_FS) -> list[RecordEntry]:
    """All records of the given sources, in a stable order.

    Args:
        sources: paths (folders, cohort folders, record files, shards).
        split: keep only cohort records of this split (``train``, ``val``, ``test``);
            records without a split (WFDB, plain files) are kept either way.
        npy_fs: sampling rate of plain ``.npy`` records.

    Raises:
        CorpusError: a source that does not exist or holds no records.
    """
    if isinstance(sources, (str, Path)):
        sources = [sources]
    entries: list[RecordEntry] = []
    for source in sources:
        source, repeat = _repeat(str(source))
        path = Path(source)
        if path.is_dir() and (path / "labs.csv").is_file():
            found = _cohort_entries(path / "labs.csv", split)
        elif path.name == "labs.csv" and path.is_file():
            found = _cohort_entries(path, split)
        elif path.is_dir():
            found = _folder_entries(path, npy_fs)
        elif path.suffix == ".npz" and path.is_file():
            found = [RecordEntry(str(path), "npz", source=str(source))]
        elif path.suffix == ".npy" and path.is_file():
            found = [RecordEntry(str(path), "npy", fs=npy_fs, subject=path.stem, source=str(source))]
        elif path.with_suffix(".hea").is_file():
            base = path.with_suffix("")
            found = [RecordEntry(str(base), "wfdb", subject=base.name, source=str(source))]
        else:
            raise CorpusError(f"{path}: corpus source not found (a folder, labs.csv, WFDB record, .npy or .npz)")
        if not found:
            raise CorpusError(f"{path}: no records found" + (f" in split {split!r}" if split else ""))
        entries.extend(found * repeat)
    return entries


def _repeat(source: str) -> tuple[str, int]:
    """``PATH*N`` -> (PATH, N): a source listed N times (its records drawn N times)."""
    head, star, count = source.rpartition("*")
    if star and count.isdigit() and int(count) >= 1 and head:
        return head, int(count)
    return source, 1


def _folder_entries(folder: Path, npy_fs: float) -> list[RecordEntry]:
    entries = []
    for path in sorted(folder.rglob("*")):
        if path.suffix == ".hea":
            base = path.with_suffix("")
            entries.append(RecordEntry(str(base), "wfdb", subject=base.name, source=str(folder)))
        elif path.suffix == ".npy":
            entries.append(RecordEntry(str(path), "npy", fs=npy_fs, subject=path.stem, source=str(folder)))
        elif path.suffix == ".npz":
            entries.append(RecordEntry(str(path), "npz", source=str(folder)))
    return entries


def _cohort_entries(labs: Path, split: str | None) -> list[RecordEntry]:
    with labs.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"file_path", "fs"} - set(reader.fieldnames or [])
        if missing:
            raise CorpusError(f"{labs}: lab table lacks column(s) {sorted(missing)}")
        rows = list(reader)
    entries = []
    for line, row in enumerate(rows, start=2):
        if split and row.get("split", "") != split:
            continue
        try:
            fs = float(row["fs"])
        except ValueError:
            raise CorpusError(f"{labs}: line {line}: fs {row['fs']!r} is not a number") from None
        labs_row = {}
        for key, value in row.items():
            if key in _COHORT_META or value is None:
                continue
            try:
                labs_row[key] = float(value)
            except ValueError:
                continue
        entries.append(RecordEntry(
            str(labs.parent / row["file_path"]), "npy", fs=fs, subject=row.get("subject_id", ""),
            split=row.get("split", ""), source=str(labs.parent), labs=labs_row,
        ))
    return entries


def source_name(source: str | Path) -> str:
    """How reports name a source: a folder by its name, a single record by its folder's name."""
    path = Path(_repeat(str(source))[0])
    return path.name if path.is_dir() else path.parent.name


def shard(entries: list, rank: int, world: int) -> list:
    """The records of one rank: every ``world``-th, starting at ``rank``."""
    if not 0 <= rank < world:
        raise ValueError(f"rank {rank} is outside a world of {world}")
    return entries[rank::world]


def pick_lead(record: Record, preference=LEAD_PREFERENCE) -> np.ndarray:
    """The first preferred lead the record has (by name), else its first channel."""
    return record.signal[_lead_index([normalise_lead_name(n) for n in record.leads], preference)]


def _lead_index(names: list[str], preference) -> int:
    """Index of the first preferred lead among normalised ``names``, else 0."""
    for wanted in preference:
        key = normalise_lead_name(wanted)
        if key in names:
            return names.index(key)
    return 0


def record_targets(spec: LabelSpec, entries: list[RecordEntry]) -> np.ndarray:
    """(records, outputs) targets: lab value (regression) or 0/1 (binary cut-off); NaN if unknown."""
    out = np.full((len(entries), len(spec)), np.nan)
    for j, output in enumerate(spec.outputs):
        column = output.source.column
        for i, entry in enumerate(entries):
            value = entry.labs.get(column)
            if value is None or not math.isfinite(value):
                continue
            if output.is_binary:
                if output.source.above is not None:
                    value = float(value > output.source.above)
                elif output.source.below is not None:
                    value = float(value < output.source.below)
                elif value not in (0.0, 1.0):
                    continue
            out[i, j] = value
    return out


def frontal_projection(lead_i: np.ndarray, lead_ii: np.ndarray, degrees: float) -> np.ndarray:
    """The frontal-plane ECG along an axis at ``degrees`` (hexaxial convention), from leads I and II.

    With aVF = II - I/2 (Einthoven and Goldberger), the lead at angle a is
    ``I cos a + (2 / sqrt 3) aVF sin a``: 0 gives lead I, 60 gives lead II, -30 gives aVL
    times 2/sqrt(3) (the augmented leads' gain) and 90 gives aVF times 2/sqrt(3).
    """
    a = math.radians(degrees)
    lead_i, lead_ii = np.asarray(lead_i, dtype=np.float64), np.asarray(lead_ii, dtype=np.float64)
    avf = lead_ii - lead_i / 2
    return lead_i * math.cos(a) + 2 / math.sqrt(3) * avf * math.sin(a)


def _read_signals(
    entry: RecordEntry, lead_preference, projections: int = 0, rng: np.random.Generator | None = None,
    extra_leads: tuple[str, ...] = (),
) -> list[tuple[np.ndarray, float]]:
    if entry.kind == "npz":
        try:
            with np.load(entry.path, allow_pickle=False) as data:
                signal, fs = np.asarray(data["signal"], dtype=np.float64), float(data["fs"])
        except (OSError, KeyError, ValueError) as exc:
            raise RecordError(f"not a segment shard (needs 'signal' and 'fs'): {exc}", entry.path) from None
        signal = signal.reshape(-1, signal.shape[-1])
        return [(row, fs) for row in signal]
    record = read_record(entry.path, fs=entry.fs)
    names = [normalise_lead_name(n) for n in record.leads]
    chosen = _lead_index(names, lead_preference)
    signals = [(record.signal[chosen], record.fs)]
    if projections and "I" in names and "II" in names:
        lead_i, lead_ii = record.signal[names.index("I")], record.signal[names.index("II")]
        rng = rng if rng is not None else np.random.default_rng(0)
        for degrees in rng.uniform(*PROJECTION_AXES, size=projections):
            signals.append((frontal_projection(lead_i, lead_ii, degrees), record.fs))
    for name in dict.fromkeys(normalise_lead_name(n) for n in extra_leads):
        if name in names and names.index(name) != chosen:
            signals.append((record.signal[names.index(name)], record.fs))
    return signals


def load_segments(
    entries: list[RecordEntry],
    margin: int = 0,
    hop_s: float = 5.0,
    max_per_record: int | None = None,
    lead_preference=LEAD_PREFERENCE,
    rng: np.random.Generator | None = None,
    projections: int = 0,
    extra_leads: tuple[str, ...] = (),
) -> Segments:
    """Cut the records into raw segments of ``WINDOW_SAMPLES + 2 * margin`` at 500 Hz.

    A record shorter than a segment is mirrored at its ends to full length (the centre
    window stays real signal as far as the record reaches). With ``max_per_record`` a longer
    record contributes that many segments, drawn with ``rng`` (evenly spaced without it).
    With ``projections`` a record that has leads I and II adds that many frontal-plane
    projections at random axes (:func:`frontal_projection`), each cut like the lead itself,
    and each lead named in ``extra_leads`` that the record has (besides the one chosen) is cut
    the same way.
    Unreadable records are skipped with an :class:`AnyECGWarning`.
    """
    length = WINDOW_SAMPLES + 2 * margin
    hop = max(1, int(round(hop_s * TARGET_FS)))
    raws: list[np.ndarray] = []
    index: list[int] = []
    for i, entry in enumerate(entries):
        try:
            signals = _read_signals(entry, lead_preference, projections, rng, tuple(extra_leads))
        except (RecordError, PreprocessingError) as exc:
            warnings.warn(f"skipping record: {exc}", AnyECGWarning, stacklevel=2)
            continue
        for signal, fs in signals:
            x, _ = replace_nonfinite(signal, warn=False)
            x = resample(x, fs, TARGET_FS)
            if x.shape[-1] < length:
                pad = length - x.shape[-1]
                x = np.pad(x, (pad // 2, pad - pad // 2), mode="symmetric")
            starts = np.arange(0, x.shape[-1] - length + 1, hop)
            if max_per_record is not None and len(starts) > max_per_record:
                if rng is None:
                    starts = starts[np.linspace(0, len(starts) - 1, max_per_record).round().astype(int)]
                else:
                    starts = np.sort(rng.choice(starts, max_per_record, replace=False))
            for s in starts:
                raws.append(x[s : s + length].astype(np.float32))
                index.append(i)
    raw = np.stack(raws) if raws else np.zeros((0, length), np.float32)
    return Segments(raw, np.asarray(index, dtype=np.int64), list(entries))


def preprocess_windows(raw_windows: np.ndarray, config: PreprocessConfig = PreprocessConfig()) -> np.ndarray:
    """Canonical preprocessing of raw 500 Hz windows (n, samples) -> float32 (n, 1, WINDOW_SAMPLES)."""
    raw_windows = np.asarray(raw_windows)
    if raw_windows.ndim == 1:
        raw_windows = raw_windows[None]
    out = np.empty((raw_windows.shape[0], 1, config.window_samples), np.float32)
    for i, window in enumerate(raw_windows):
        out[i] = preprocess_window(fit_length(np.asarray(window, np.float64), config.window_samples), config)
    return out
