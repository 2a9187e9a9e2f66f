"""Reading and checking lab tables: which ECG record goes with which lab values.

A lab table is a CSV file with a header. Columns:

* ``file_path`` (required): the record, relative to the CSV's folder or absolute; WFDB
  (with or without ``.hea``), ``.npy`` or CSV, as :func:`anyecg_edge.records.read_record` reads;
* one column per lab that the label spec reads (``source.column``, by default the output's
  name), for example ``potassium``; an empty cell (or ``NA``) means "not measured" and is
  left out of that output's loss and metrics;
* ``subject_id`` (optional): the patient. Without it every record is its own subject;
* ``fs`` (optional): the sampling rate in Hz, needed for ``.npy`` records;
* ``mains_hz`` (optional): 50 or 60, the notch frequency used for that record;
* ``split`` (optional): ``train``, ``val`` (or ``validation``) or ``test``; without it the
  subjects are split at random, seeded;
* any other column is kept out of training.

Pocket-K's form ``file_path,label,original_value`` is read too: ``label`` (0/1) becomes the
target of the spec's single binary output and ``original_value`` the lab value of the
column that output reads (for example ``potassium``), so a regression output on that lab is
trained as well.

Every problem is a :class:`LabTableError` that names the line of the CSV (the header is
line 1) and the column, so the table can be fixed without guessing.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from anyecg_edge.errors import AnyECGError
from anyecg_edge.labels import LabelSpec, Output

__all__ = [
    "LabRow",
    "LabTable",
    "LabTableError",
    "RESERVED_COLUMNS",
    "check_classes",
    "read_lab_table",
    "split_by_subject",
]

RESERVED_COLUMNS = ("file_path", "subject_id", "fs", "mains_hz", "split")
_POCKET_K = ("label", "original_value")
_MISSING = {"", "na", "n/a", "nan", "null", "none"}
_SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


class LabTableError(AnyECGError, ValueError):
    """A lab table that cannot be used; ``path`` and ``line`` say where the problem is."""

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None):
        where = str(path) if path else ""
        if line is not None:
            where = f"{where}, line {line}" if where else f"line {line}"
        super().__init__(f"{where}: {message}" if where else message)
        self.path = None if path is None else str(path)
        self.line = line


@dataclass(frozen=True)
class LabRow:
    """One record with its targets (one per output of the spec, ``nan`` = not measured)."""

    line: int
    path: Path
    subject: str
    targets: tuple[float, ...]
    fs: float | None = None
    mains_hz: float | None = None
    split: str | None = None


@dataclass(frozen=True)
class LabTable:
    """A checked lab table, its rows in file order."""

    path: Path
    spec: LabelSpec
    rows: tuple[LabRow, ...]
    form: str  # "columns" or "pocket-k"

    def __len__(self) -> int:
        return len(self.rows)

    def targets(self) -> np.ndarray:
        """(records, outputs) float array; ``nan`` where a lab was not measured."""
        return np.array([row.targets for row in self.rows], dtype=np.float64).reshape(len(self.rows), len(self.spec))

    @property
    def subjects(self) -> list[str]:
        return [row.subject for row in self.rows]

    def splits(self, seed: int = 0, val_fraction: float = 0.15, test_fraction: float = 0.15) -> np.ndarray:
        """The split of every row: the table's own ``split`` column, else a seeded split by subject."""
        given = [row.split for row in self.rows]
        if all(s is not None for s in given):
            return np.array(given, dtype=object)
        return split_by_subject(self.subjects, seed, val_fraction, test_fraction)


def split_by_subject(subjects: list[str], seed: int = 0, val_fraction: float = 0.15,
                     test_fraction: float = 0.15) -> np.ndarray:
    """Assign every row to ``train``/``val``/``test`` so that no subject is in two splits.

    Subjects are sorted, permuted with ``numpy.random.default_rng(seed)`` and cut by the
    fractions (at least one subject in a split whose fraction is positive, when there are
    at least three subjects). Deterministic for a given list of subjects and seed.
    """
    if not (0 <= val_fraction and 0 <= test_fraction and val_fraction + test_fraction < 1):
        raise ValueError("val_fraction and test_fraction must be >= 0 and sum to less than 1")
    unique = sorted(set(subjects))
    order = np.random.default_rng(seed).permutation(len(unique))
    n = len(unique)

    def count(fraction: float) -> int:
        return 0 if fraction == 0 or n < 3 else max(1, round(fraction * n))

    n_test, n_val = count(test_fraction), count(val_fraction)
    name = {}
    for rank, index in enumerate(order):
        name[unique[index]] = "test" if rank < n_test else "val" if rank < n_test + n_val else "train"
    return np.array([name[s] for s in subjects], dtype=object)


def _record_exists(path: Path) -> bool:
    if path.exists():
        return path.is_file()
    return path.with_suffix(".hea").exists() or Path(f"{path}.hea").exists()


def _number(text: str, path: Path, line: int, column: str) -> float:
    """A finite float, ``nan`` for an empty/NA cell, else a :class:`LabTableError`."""
    value = text.strip()
    if value.lower() in _MISSING:
        return math.nan
    try:
        number = float(value)
    except ValueError:
        raise LabTableError(f"column {column!r} holds {text!r}, which is not a number", path, line) from None
    if not math.isfinite(number):
        raise LabTableError(f"column {column!r} holds {text!r}; lab values must be finite", path, line)
    return number


def _target(output: Output, value: float, path: Path, line: int) -> float:
    """The training target of ``output`` given its lab value."""
    if math.isnan(value):
        return math.nan
    if not output.is_binary:
        return value
    if output.source.above is not None:
        return float(value > output.source.above)
    if output.source.below is not None:
        return float(value < output.source.below)
    if value not in (0.0, 1.0):
        raise LabTableError(
            f"column {output.source.column!r} of binary output {output.name!r} must hold 0 or 1 "
            f"(or the spec must give a cut-off), not {value:g}", path, line)
    return value


def _pocket_k_columns(spec: LabelSpec, header: list[str], path: Path) -> tuple[int, str]:
    """(index of the binary output fed by ``label``, the lab column fed by ``original_value``)."""
    binary = [i for i, o in enumerate(spec.outputs) if o.is_binary]
    if len(binary) != 1:
        raise LabTableError(
            f"a table in Pocket-K form (file_path,label,original_value) needs a label spec with exactly one "
            f"binary output; this spec has {len(binary)}: {[spec.outputs[i].name for i in binary]}", path, 1)
    return binary[0], spec.outputs[binary[0]].source.column


def read_lab_table(path: str | Path, spec: LabelSpec, *, check_files: bool = True,
                   default_fs: float | None = None) -> LabTable:
    """Read and check a lab table against a label spec.

    Args:
        path: the CSV file.
        spec: the outputs to train; every ``source.column`` must be in the table (or the
            table must be in Pocket-K form).
        check_files: check that every record file exists.
        default_fs: sampling rate for ``.npy`` records of rows without an ``fs``.

    Returns:
        The checked table.

    Raises:
        LabTableError: missing table, header or columns; unknown lab columns; a missing
            record file; a non-numeric value; a bad rate or split; a subject in two splits;
            a row without any label; a binary output with only one class. The message
            names the line and column.
    """
    path = Path(path)
    if not path.is_file():
        raise LabTableError("lab table not found", path)
    with path.open(newline="", encoding="utf-8-sig") as handle:
        lines = list(csv.reader(handle))
    if not lines or not any(cell.strip() for cell in lines[0]):
        raise LabTableError("the lab table is empty (no header)", path, 1)
    header = [h.strip() for h in lines[0]]
    if len(set(header)) != len(header):
        duplicates = sorted({h for h in header if header.count(h) > 1})
        raise LabTableError(f"duplicate column(s) {duplicates}", path, 1)
    if "file_path" not in header:
        raise LabTableError(f"no 'file_path' column; the header has {header}", path, 1)
    missing_columns = [o for o in spec.outputs if o.source.column not in header]
    pocket_k = bool(missing_columns) and all(c in header for c in _POCKET_K)
    label_output, value_column = _pocket_k_columns(spec, header, path) if pocket_k else (None, None)
    if pocket_k:
        missing_columns = [o for o in missing_columns if o.source.column != value_column]
    if missing_columns:
        known = [h for h in header if h not in RESERVED_COLUMNS]
        names = ", ".join(f"{o.name!r} reads {o.source.column!r}" for o in missing_columns)
        raise LabTableError(
            f"unknown lab name(s): output(s) {names}, which the table lacks; its lab columns are {known}", path, 1)

    col = {name: i for i, name in enumerate(header)}
    rows: list[LabRow] = []
    subject_split: dict[str, tuple[str, int]] = {}
    base = path.parent
    for line, cells in enumerate(lines[1:], start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            raise LabTableError(f"{len(cells)} fields, but the header has {len(header)}", path, line)
        cell = {name: cells[i].strip() for name, i in col.items()}
        if not cell["file_path"]:
            raise LabTableError("empty file_path", path, line)
        record = Path(cell["file_path"])
        record = record if record.is_absolute() else base / record
        if check_files and not _record_exists(record):
            raise LabTableError(f"record file {cell['file_path']!r} not found (looked for {record})", path, line)
        fs = None
        if cell.get("fs"):
            fs = _number(cell["fs"], path, line, "fs")
            if math.isnan(fs) or fs <= 0:
                raise LabTableError(f"fs must be a positive rate in Hz, not {cell['fs']!r}", path, line)
        if fs is None and record.suffix.lower() == ".npy":
            fs = default_fs
            if fs is None:
                raise LabTableError(
                    f"record {cell['file_path']!r} is .npy, which carries no sampling rate; "
                    "add an 'fs' column or pass --fs", path, line)
        mains = None
        if cell.get("mains_hz"):
            mains = _number(cell["mains_hz"], path, line, "mains_hz")
            if mains not in (50.0, 60.0):
                raise LabTableError(f"mains_hz must be 50 or 60, not {cell['mains_hz']!r}", path, line)
        split = None
        if "split" in cell:
            split = _SPLIT_NAMES.get(cell["split"].lower())
            if split is None:
                raise LabTableError(f"split must be train, val or test, not {cell['split']!r}", path, line)
        subject = cell.get("subject_id") or cell["file_path"]
        if split is not None:
            seen = subject_split.setdefault(subject, (split, line))
            if seen[0] != split:
                raise LabTableError(
                    f"subject {subject!r} is in split {split!r} here but in {seen[0]!r} on line {seen[1]}; "
                    "a subject must stay in one split", path, line)
        targets = []
        for index, output in enumerate(spec.outputs):
            if pocket_k and index == label_output:
                value = _number(cell["label"], path, line, "label")
                if not math.isnan(value) and value not in (0.0, 1.0):
                    raise LabTableError(f"column 'label' must hold 0 or 1, not {cell['label']!r}", path, line)
                targets.append(value)
                continue
            column = output.source.column
            if pocket_k and column == value_column and column not in cell:
                column = "original_value"
            targets.append(_target(output, _number(cell[column], path, line, column), path, line))
        if all(math.isnan(t) for t in targets):
            raise LabTableError("the row has no lab value for any output", path, line)
        rows.append(LabRow(line, record, subject, tuple(targets), fs, mains, split))
    if not rows:
        raise LabTableError("the lab table has a header but no rows", path)
    if any(r.split is None for r in rows) and any(r.split is not None for r in rows):
        line = next(r.line for r in rows if r.split is None)
        raise LabTableError("empty split; fill the split column for every row or for none", path, line)
    table = LabTable(path, spec, tuple(rows), "pocket-k" if pocket_k else "columns")
    check_classes(table)
    return table


def check_classes(table: LabTable, rows: np.ndarray | None = None, where: str = "") -> None:
    """Raise :class:`LabTableError` if a binary output has only one class among ``rows`` (default: all)."""
    targets = table.targets()
    chosen = np.arange(len(table.rows)) if rows is None else np.asarray(rows)
    for index, output in enumerate(table.spec.outputs):
        if not output.is_binary:
            continue
        values = targets[chosen, index]
        labelled = chosen[~np.isnan(values)]
        values = values[~np.isnan(values)]
        if values.size == 0:
            raise LabTableError(f"binary output {output.name!r} has no labelled row{where}", table.path)
        if np.all(values == values[0]):
            first = table.rows[int(labelled[0])].line
            last = table.rows[int(labelled[-1])].line
            raise LabTableError(
                f"binary output {output.name!r}: all {values.size} labelled rows{where} (lines {first}-{last}) "
                f"are {int(values[0])}; training needs both classes", table.path)
