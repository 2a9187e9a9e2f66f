"""Shared fixtures for the firmware bridge tests: a virtual air per test and real ECG records."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).resolve().parents[1] / "data"


@lru_cache(maxsize=None)
def record(name: str) -> tuple[np.ndarray, float]:
    """(signal in mV with shape (n, leads), fs) of a WFDB record under tests/data."""
    import wfdb

    rec = wfdb.rdrecord(str(DATA / name))
    signal = np.nan_to_num(rec.p_signal.astype(np.float64))
    signal.flags.writeable = False
    return signal, float(rec.fs)


@pytest.fixture
def cpsc():
    """CPSC 2021 data_101_6: 200 Hz, leads I and II."""
    return record("cpsc2021/data_101_6")


@pytest.fixture
async def air():
    pytest.importorskip("bumble")
    from firmware_bridge.bumble_backend import VirtualAir

    async with VirtualAir() as the_air:
        yield the_air
