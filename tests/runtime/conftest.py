"""Shared fixtures of the runtime tests: a tiny seeded int8 model with embedded metadata."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tiny_models
from tiny_models import conv1d_tflite

LABEL_SPEC = {
    "name": "test-electrolytes",
    "outputs": [
        {
            "name": "potassium",
            "kind": "regression",
            "unit": "mmol/L",
            "definition": "serum potassium",
            "bands": [
                {"name": "low", "max": 3.5},
                {"name": "normal", "min": 3.5, "max": 5.5},
                {"name": "high", "min": 5.5},
            ],
        },
        {
            "name": "hyperkalemia",
            "kind": "binary",
            "unit": "probability",
            "definition": "serum potassium > 5.5 mmol/L",
            "threshold": 0.5,
            "bands": [{"name": "low", "max": 0.2}, {"name": "medium", "min": 0.2, "max": 0.5}, {"name": "high", "min": 0.5}],
        },
    ],
}

DOCUMENT = {
    "format": "anyecg-edge-model",
    "format_version": 1,
    "label_spec": LABEL_SPEC,
    "preprocessing": {"version": "ecgfounder-v1", "mains_hz": 50},
    "sampling_rate_hz": 500,
    "window_samples": 5000,
    "default_hop_s": 2.0,
    "output_transform": [
        {"scale": 1.0, "offset": 4.5, "activation": "identity"},
        {"scale": 1.0, "offset": 0.0, "activation": "sigmoid"},
    ],
}


def _build_tiny_tflite() -> bytes:
    return conv1d_tflite([(4, 15, 5), (8, 9, 4)], outputs=2, calibration_windows=16)


@pytest.fixture(scope="session")
def tiny_tflite(request, tmp_path_factory) -> bytes:
    """The bare int8 model (no metadata), built once and kept in pytest's cache folder."""
    import hashlib
    import inspect

    source = inspect.getsource(_build_tiny_tflite) + inspect.getsource(tiny_models)
    key = hashlib.sha256(source.encode()).hexdigest()[:16]
    cache = getattr(request.config, "cache", None)
    folder = cache.mkdir("anyecg_edge_tiny_model") if cache is not None else tmp_path_factory.mktemp("tiny_model")
    cached = folder / f"{key}.tflite"
    if cached.is_file():
        return cached.read_bytes()
    data = _build_tiny_tflite()
    cached.write_bytes(data)
    return data


@pytest.fixture(scope="session")
def make_model_file(tiny_tflite, tmp_path_factory):
    """Write the tiny model with a (possibly modified) metadata document; returns the path."""
    from quantize.tflite_edit import embed_metadata

    folder = tmp_path_factory.mktemp("models")
    counter = iter(range(10_000))

    def make(document: dict | None = None) -> Path:
        path = folder / f"tiny-{next(counter)}.tflite"
        path.write_bytes(embed_metadata(tiny_tflite, json.loads(json.dumps(document or DOCUMENT))))
        return path

    return make


@pytest.fixture(scope="session")
def model_path(make_model_file) -> Path:
    """The tiny int8 test model with the standard metadata document."""
    return make_model_file()


@pytest.fixture(scope="session")
def model(model_path):
    from anyecg_edge.model import EdgeModel

    return EdgeModel.load(model_path)


DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="session")
def record_130hz():
    """One real lead resampled to the Polar H10 rate: 130 Hz, mV (cpsc2021 data_101_6, lead I)."""
    from anyecg_edge.preprocess import resample
    from anyecg_edge.records import read_record

    record = read_record(DATA / "cpsc2021" / "data_101_6")
    return resample(record.lead("I"), record.fs, 130)
