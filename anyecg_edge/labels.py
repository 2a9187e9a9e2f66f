"""Label specs: which lab values a model predicts, in which units, with which risk bands.

A label spec travels with a teacher checkpoint and is embedded in every exported model.
JSON layout::

    {
      "name": "demo-electrolytes",
      "outputs": [
        {"name": "potassium", "kind": "regression", "unit": "mmol/L",
         "definition": "serum potassium",
         "bands": [{"name": "low", "max": 3.5}, {"name": "normal", "min": 3.5, "max": 5.5},
                   {"name": "high", "min": 5.5}]},
        {"name": "hyperkalemia", "kind": "binary", "unit": "probability",
         "definition": "serum potassium > 5.5 mmol/L",
         "source": {"column": "potassium", "above": 5.5},
         "threshold": 0.5,
         "bands": [{"name": "low", "max": 0.2}, {"name": "medium", "min": 0.2, "max": 0.5},
                   {"name": "high", "min": 0.5}]}
      ]
    }

Output ``i`` of the model is ``outputs[i]``. Binary outputs are logits in the model and
probabilities after a sigmoid; regression outputs are in ``unit``. ``source`` says how a
lab table gives the target: a column (default: the output's name) and, for a binary output,
an optional cut-off (``above`` or ``below``) that turns a lab value into 0/1.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from .files import atomic_write
from .errors import LabelSpecError

__all__ = ["Band", "LabelSpec", "Output", "Source"]

KINDS = ("binary", "regression")


def _number(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise LabelSpecError(f"{where} must be a finite number, not {value!r}")
    return float(value)


def _only(data: dict, allowed: set[str], where: str) -> None:
    if not isinstance(data, dict):
        raise LabelSpecError(f"{where} must be a JSON object")
    unknown = set(data) - allowed
    if unknown:
        raise LabelSpecError(f"{where} has unknown field(s) {sorted(unknown)}; allowed: {sorted(allowed)}")


@dataclass(frozen=True)
class Band:
    """A named value range ``[min, max)``; an open end is ``None``."""

    name: str
    min: float | None = None
    max: float | None = None

    @classmethod
    def from_dict(cls, data: dict, where: str) -> "Band":
        _only(data, {"name", "min", "max"}, where)
        if not isinstance(data.get("name"), str) or not data["name"]:
            raise LabelSpecError(f"{where}.name must be a non-empty string")
        lo = None if data.get("min") is None else _number(data["min"], f"{where}.min")
        hi = None if data.get("max") is None else _number(data["max"], f"{where}.max")
        if lo is None and hi is None:
            raise LabelSpecError(f"{where} needs min, max or both")
        if lo is not None and hi is not None and lo >= hi:
            raise LabelSpecError(f"{where}: min {lo} must be below max {hi}")
        return cls(data["name"], lo, hi)

    def to_dict(self) -> dict:
        out: dict = {"name": self.name}
        if self.min is not None:
            out["min"] = self.min
        if self.max is not None:
            out["max"] = self.max
        return out

    def contains(self, value: float) -> bool:
        return (self.min is None or value >= self.min) and (self.max is None or value < self.max)


@dataclass(frozen=True)
class Source:
    """Where a training target comes from: a lab column, optionally cut at a threshold."""

    column: str
    above: float | None = None
    below: float | None = None

    def to_dict(self) -> dict:
        out: dict = {"column": self.column}
        if self.above is not None:
            out["above"] = self.above
        if self.below is not None:
            out["below"] = self.below
        return out


@dataclass(frozen=True)
class Output:
    """One model output."""

    name: str
    kind: str
    unit: str
    definition: str
    source: Source
    threshold: float | None = None
    bands: tuple[Band, ...] = field(default_factory=tuple)

    @property
    def is_binary(self) -> bool:
        return self.kind == "binary"

    def band(self, value: float) -> str | None:
        """Name of the band that holds ``value``, or None if no bands are defined."""
        for band in self.bands:
            if band.contains(value):
                return band.name
        return None

    def to_dict(self) -> dict:
        out = {
            "name": self.name,
            "kind": self.kind,
            "unit": self.unit,
            "definition": self.definition,
            "source": self.source.to_dict(),
        }
        if self.threshold is not None:
            out["threshold"] = self.threshold
        if self.bands:
            out["bands"] = [b.to_dict() for b in self.bands]
        return out

    @classmethod
    def from_dict(cls, data: dict, where: str) -> "Output":
        _only(data, {"name", "kind", "unit", "definition", "source", "threshold", "bands"}, where)
        for key in ("name", "kind", "definition"):
            if not isinstance(data.get(key), str) or not data[key].strip():
                raise LabelSpecError(f"{where}.{key} must be a non-empty string")
        name, kind = data["name"], data["kind"]
        where = f"{where} ({name})"
        if kind not in KINDS:
            raise LabelSpecError(f"{where}.kind must be one of {KINDS}, not {kind!r}")
        unit = data.get("unit", "probability" if kind == "binary" else None)
        if not isinstance(unit, str) or not unit:
            raise LabelSpecError(f"{where}.unit must be a non-empty string")
        raw_source = data.get("source", {"column": name})
        _only(raw_source, {"column", "above", "below"}, f"{where}.source")
        column = raw_source.get("column", name)
        if not isinstance(column, str) or not column:
            raise LabelSpecError(f"{where}.source.column must be a non-empty string")
        above = None if raw_source.get("above") is None else _number(raw_source["above"], f"{where}.source.above")
        below = None if raw_source.get("below") is None else _number(raw_source["below"], f"{where}.source.below")
        if above is not None and below is not None:
            raise LabelSpecError(f"{where}.source takes 'above' or 'below', not both")
        if kind == "regression" and (above is not None or below is not None):
            raise LabelSpecError(f"{where}: a regression output cannot have a cut-off in its source")
        threshold = data.get("threshold")
        if threshold is not None:
            threshold = _number(threshold, f"{where}.threshold")
            if kind == "binary" and not 0.0 < threshold < 1.0:
                raise LabelSpecError(f"{where}.threshold of a binary output is a probability in (0, 1)")
        raw_bands = data.get("bands", [])
        if not isinstance(raw_bands, list):
            raise LabelSpecError(f"{where}.bands must be a list")
        bands = tuple(Band.from_dict(b, f"{where}.bands[{i}]") for i, b in enumerate(raw_bands))
        ordered = sorted(bands, key=lambda b: -math.inf if b.min is None else b.min)
        for left, right in zip(ordered, ordered[1:]):
            if left.max is None or right.min is None or left.max > right.min:
                raise LabelSpecError(f"{where}: bands {left.name!r} and {right.name!r} overlap")
        if len({b.name for b in bands}) != len(bands):
            raise LabelSpecError(f"{where}: band names must be unique")
        return cls(name, kind, unit, data["definition"], Source(column, above, below), threshold, bands)


@dataclass(frozen=True)
class LabelSpec:
    """The ordered outputs of a model."""

    name: str
    outputs: tuple[Output, ...]

    def __post_init__(self) -> None:
        if not self.outputs:
            raise LabelSpecError("a label spec needs at least one output")
        names = [o.name for o in self.outputs]
        if len(set(names)) != len(names):
            raise LabelSpecError(f"output names must be unique: {names}")

    def __len__(self) -> int:
        return len(self.outputs)

    @property
    def names(self) -> list[str]:
        return [o.name for o in self.outputs]

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise LabelSpecError(f"no output named {name!r}; the spec has {self.names}") from None

    def to_dict(self) -> dict:
        return {"name": self.name, "outputs": [o.to_dict() for o in self.outputs]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: dict) -> "LabelSpec":
        _only(data, {"name", "outputs"}, "label spec")
        if not isinstance(data.get("name"), str) or not data["name"]:
            raise LabelSpecError("label spec.name must be a non-empty string")
        outputs = data.get("outputs")
        if not isinstance(outputs, list) or not outputs:
            raise LabelSpecError("label spec.outputs must be a non-empty list")
        return cls(data["name"], tuple(Output.from_dict(o, f"outputs[{i}]") for i, o in enumerate(outputs)))

    @classmethod
    def from_json(cls, text: str) -> "LabelSpec":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise LabelSpecError(f"label spec is not valid JSON: {exc}") from None
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str | Path) -> "LabelSpec":
        path = Path(path)
        if not path.exists():
            raise LabelSpecError(f"{path}: label spec file not found")
        try:
            return cls.from_json(path.read_text())
        except LabelSpecError as exc:
            raise LabelSpecError(f"{path}: {exc}") from None

    def save(self, path: str | Path) -> None:
        """Write atomically (temporary file, then rename)."""
        atomic_write(path, self.to_json() + "\n")

