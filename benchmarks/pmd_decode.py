"""How many Polar PMD ECG frames per second ``EcgFrame.from_bytes`` decodes on one core.

Frames are H10-sized (73 samples, 229 bytes) and carry a real recording (CPSC 2021
data_101_6, lead I, resampled to 130 Hz).

    python benchmarks/pmd_decode.py
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from firmware_bridge.pmd import EcgFrame


def frames(n: int = 2000) -> list[bytes]:
    import wfdb
    from scipy.signal import resample_poly

    record = wfdb.rdrecord(str(Path(__file__).resolve().parents[1] / "tests" / "data" / "cpsc2021" / "data_101_6"))
    uv = np.round(resample_poly(record.p_signal[:, 0], 13, 20) * 1000).astype(np.int32)
    out = []
    for i in range(n):
        start = (i * 73) % (uv.size - 73)
        out.append(bytes(EcgFrame(10**18 + i * 561_538_461, uv[start : start + 73])))
    return out


def main() -> None:
    data = frames()
    best = 0.0
    for _ in range(5):
        start = time.perf_counter()
        samples = 0
        for frame in data:
            samples += len(EcgFrame.from_bytes(frame))
        rate = len(data) / (time.perf_counter() - start)
        best = max(best, rate)
    print(f"PMD ECG frames decoded per second (one core, 73 samples/229 B): {best:,.0f}")
    print(f"  = {best * 73:,.0f} samples/s, {best / (130 / 73):,.0f} concurrent 130 Hz H10 streams")


if __name__ == "__main__":
    main()
