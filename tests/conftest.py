"""Shared fixtures: the bundled real recordings (copied into tests/data with their attribution)."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"

#: One real record per sampling rate found in the project's data (see tests/data/README.md).
RATES = (200, 300, 360, 500, 1000)
RECORDS_BY_RATE = {
    200: DATA / "cpsc2021" / "data_101_6",
    300: DATA / "cinc2017" / "A00001",
    360: DATA / "mitdb" / "100",
    500: DATA / "cinc2021" / "E07500",
    1000: DATA / "ptbdb" / "s0010_re",
}


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def records_by_rate() -> dict[int, Path]:
    return dict(RECORDS_BY_RATE)
