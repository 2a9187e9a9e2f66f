"""Reading ECG records (WFDB, ``.npy``, CSV) and choosing a lead by name.

WFDB needs the optional ``wfdb`` package (``pip install anyecg-edge[records]``); ``.npy``
and CSV need nothing beyond numpy.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import RecordError
from .preprocess import MIN_SECONDS

__all__ = ["Record", "STANDARD_LEADS", "read_record", "normalise_lead_name"]

STANDARD_LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
_TIME_COLUMNS = {"time", "t", "timestamp", "seconds", "time_s"}


def normalise_lead_name(name: str) -> str:
    """Canonical spelling used for matching: 'lead i', ' I ', 'i' -> 'I'; 'avl' -> 'aVL'; 'mlii' -> 'MLII'."""
    key = str(name).strip()
    if key.lower().startswith("lead"):
        key = key[4:].strip(" _-")
    for lead in STANDARD_LEADS:
        if key.lower() == lead.lower():
            return lead
    return key.upper()


@dataclass(frozen=True)
class Record:
    """A multi-lead recording: ``signal`` is (leads, samples) float64 in mV."""

    signal: np.ndarray
    fs: float
    leads: tuple[str, ...]
    path: str = ""

    @property
    def duration(self) -> float:
        return self.signal.shape[-1] / self.fs

    def lead(self, name: str | None = "I") -> np.ndarray:
        """One lead as a 1-D array, chosen by name (never by position).

        A single-channel record is accepted as the requested lead unless its own name is
        a *different* standard lead. ``name=None`` takes a single-channel record as is.
        """
        names = [normalise_lead_name(n) for n in self.leads]
        if name is None:
            if len(names) == 1:
                return self.signal[0]
            raise RecordError(f"record has {len(names)} leads {list(self.leads)}; name the one to use", self.path)
        wanted = normalise_lead_name(name)
        if wanted in names:
            return self.signal[names.index(wanted)]
        if len(names) == 1 and names[0] not in STANDARD_LEADS:
            return self.signal[0]
        raise RecordError(f"no lead {name!r}; the record has {list(self.leads)}", self.path)


def read_record(
    path: str | Path,
    fs: float | None = None,
    leads: list[str] | tuple[str, ...] | None = None,
    min_seconds: float = MIN_SECONDS,
) -> Record:
    """Read a WFDB record (``.hea``, or the name without extension), a ``.npy`` or a CSV file.

    Args:
        path: the record. WFDB records may be given with or without ``.hea``.
        fs: sampling rate in Hz; required for ``.npy`` and for CSV without a time column.
        leads: lead names for ``.npy`` files; 12-channel files default to the standard
            order I, II, III, aVR, aVL, aVF, V1-V6 and 1-channel files to lead I.
        min_seconds: shortest duration accepted.

    Raises:
        RecordError: missing file, unknown format, empty or too-short signal.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        record = _read_npy(path, fs, leads)
    elif suffix in (".csv", ".txt"):
        record = _read_csv(path, fs)
    elif suffix in ("", ".hea", ".dat", ".mat") or path.with_suffix(".hea").exists():
        record = _read_wfdb(path.with_suffix("") if suffix in (".hea", ".dat", ".mat") else path)
    else:
        raise RecordError(f"unknown record format {suffix!r} (use WFDB, .npy or .csv)", str(path))
    return _checked(record, min_seconds)


def _checked(record: Record, min_seconds: float) -> Record:
    if record.signal.size == 0:
        raise RecordError("the record holds no samples", record.path)
    if not np.isfinite(record.fs) or record.fs <= 0:
        raise RecordError(f"invalid sampling rate {record.fs!r}", record.path)
    if record.duration < min_seconds:
        raise RecordError(
            f"the record lasts {record.duration:.2f} s, shorter than the {min_seconds:g} s needed", record.path
        )
    return record


def _read_wfdb(base: Path) -> Record:
    if not base.with_suffix(".hea").exists():
        raise RecordError("file not found (expected a WFDB header .hea)", str(base))
    try:
        import wfdb
    except ImportError:
        raise RecordError("reading WFDB needs the wfdb package: pip install 'anyecg-edge[records]'", str(base)) from None
    try:
        rec = wfdb.rdrecord(str(base))
    except Exception as exc:  # wfdb raises bare ValueError/OSError with terse messages
        raise RecordError(f"cannot read WFDB record: {exc}", str(base)) from exc
    if rec.p_signal is None or rec.p_signal.size == 0:
        raise RecordError("the record holds no samples", str(base))
    signal = np.asarray(rec.p_signal, dtype=np.float64).T
    units = [str(u).lower() for u in (rec.units or [])]
    scale = np.array([1e-3 if u in ("uv", "µv") else 1.0 for u in units] or [1.0] * signal.shape[0])
    return Record(signal * scale[:, None], float(rec.fs), tuple(rec.sig_name), str(base))


def _read_npy(path: Path, fs: float | None, leads) -> Record:
    if not path.exists():
        raise RecordError("file not found", str(path))
    if fs is None:
        raise RecordError(".npy records carry no sampling rate; pass fs", str(path))
    try:
        data = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise RecordError(f"cannot read .npy: {exc}", str(path)) from exc
    data = np.asarray(data, dtype=np.float64)
    if data.ndim == 1:
        data = data[None, :]
    elif data.ndim != 2:
        raise RecordError(f"expected a 1-D or 2-D array, got shape {data.shape}", str(path))
    elif data.shape[0] > data.shape[1]:
        data = data.T  # (time, leads) -> (leads, time): leads are the short axis
    n_leads = data.shape[0]
    if leads is None:
        if n_leads == 12:
            leads = STANDARD_LEADS
        elif n_leads == 1:
            leads = ("I",)
        else:
            raise RecordError(f"{n_leads}-channel .npy needs lead names (leads=...)", str(path))
    if len(leads) != n_leads:
        raise RecordError(f"{len(leads)} lead names for {n_leads} channels", str(path))
    return Record(data, float(fs), tuple(leads), str(path))


def _read_csv(path: Path, fs: float | None) -> Record:
    if not path.exists():
        raise RecordError("file not found", str(path))
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise RecordError("empty CSV file", str(path))
        header = [h.strip() for h in header]
        rows = []
        for line_no, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise RecordError(f"line {line_no} has {len(row)} fields, the header has {len(header)}", str(path))
            try:
                rows.append([float(v) if v.strip() else np.nan for v in row])
            except ValueError:
                raise RecordError(f"line {line_no} holds a non-numeric value", str(path)) from None
    if not rows:
        raise RecordError("the CSV holds a header but no samples", str(path))
    data = np.asarray(rows, dtype=np.float64).T
    names = list(header)
    if names[0].lower() in _TIME_COLUMNS:
        times, data, names = data[0], data[1:], names[1:]
        if fs is None:
            steps = np.diff(times)
            if len(steps) == 0 or np.median(steps) <= 0:
                raise RecordError("cannot infer the sampling rate from the time column", str(path))
            fs = float(round(1.0 / np.median(steps), 6))
    if fs is None:
        raise RecordError("CSV without a time column needs fs", str(path))
    if not names:
        raise RecordError("the CSV has no signal columns", str(path))
    return Record(data, float(fs), tuple(names), str(path))
