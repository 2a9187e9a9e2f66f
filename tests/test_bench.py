"""``anyecg-edge bench``: runs on a tiny int8 model, writes the documented JSON, reports missing interpreters.

Timings are printed by the benchmark, never asserted here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from anyecg_edge import benchmark
from anyecg_edge.cli import main
from anyecg_edge.commands.bench import parse_threads

SPEC = {
    "name": "tiny",
    "outputs": [
        {"name": "potassium", "kind": "regression", "unit": "mmol/L", "definition": "serum potassium"},
        {"name": "hyperkalemia", "kind": "binary", "unit": "probability", "definition": "potassium > 5.5 mmol/L",
         "threshold": 0.5},
    ],
}
pytestmark = pytest.mark.filterwarnings("ignore:Statistics for quantized inputs:UserWarning")
STATS_KEYS = {"n", "median_ms", "p90_ms", "p99_ms", "min_ms", "mean_ms", "max_ms"}


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> dict:
    """A seeded full-int8 TFLite model (1, 5000, 1) -> 2, bare and with AnyECG-Edge metadata."""
    pytest.importorskip("tensorflow")
    from quantize.tflite_edit import embed_metadata
    from tiny_models import conv1d_tflite

    bare = conv1d_tflite([(4, 9, 4)], outputs=2, calibration_windows=4)
    document = {
        "format": "anyecg-edge-model", "format_version": 1, "label_spec": SPEC,
        "preprocessing": {"version": "ecgfounder-v1", "mains_hz": 50}, "sampling_rate_hz": 500,
        "window_samples": 5000, "default_hop_s": 2.0,
    }
    root = tmp_path_factory.mktemp("models")
    paths = {"bare": root / "bare.tflite", "meta": root / "meta.tflite"}
    paths["bare"].write_bytes(bare)
    paths["meta"].write_bytes(embed_metadata(bare, document))
    return paths


def test_summarize_known_data():
    stats = benchmark.summarize([v / 1000 for v in range(1, 101)])  # 1..100 ms, shuffled order does not matter
    assert stats["n"] == 100
    assert stats["median_ms"] == pytest.approx(50.5)
    assert stats["p90_ms"] == pytest.approx(90.1)
    assert stats["p99_ms"] == pytest.approx(99.01)
    assert stats["min_ms"] == pytest.approx(1.0) and stats["max_ms"] == pytest.approx(100.0)
    assert stats["mean_ms"] == pytest.approx(50.5)
    single = benchmark.summarize([0.002])
    assert single["median_ms"] == single["p99_ms"] == single["min_ms"] == pytest.approx(2.0)
    with pytest.raises(ValueError):
        benchmark.summarize([])


def test_parse_threads():
    assert parse_threads("1,2,4") == [1, 2, 4]
    assert parse_threads("1-3") == [1, 2, 3]
    assert parse_threads("2,1-2") == [1, 2]
    assert parse_threads(None, cores=4) == [1, 2, 3, 4]
    for bad in ("0", "a", "2-x", ""):
        with pytest.raises(ValueError):
            parse_threads(bad)


def test_machine_info_and_memory():
    info = benchmark.machine_info()
    assert {"date_utc", "system", "machine", "cpu_model", "cpu_count", "python", "packages"} <= set(info)
    assert info["packages"]["numpy"] == np.__version__
    memory = benchmark.memory_mb()
    assert memory["peak_rss_mb"] > 0 and set(memory) == {"rss_mb", "peak_rss_mb", "pss_mb", "private_mb"}


def _check_result(result: dict, threads: list[int], runs: int) -> None:
    assert {"tool", "machine", "model", "window", "settings", "runs"} <= set(result)
    assert {"path", "size_bytes", "sha256", "input", "output", "anyecg_metadata"} <= set(result["model"])
    assert len(result["model"]["sha256"]) == 64
    assert {"numpy", "ai-edge-litert", "tflite-runtime"} <= set(result["machine"]["packages"])
    ran = [r for r in result["runs"] if r["available"]]
    assert ran
    for run in ran:
        assert {"interpreter", "version", "load_ms", "memory", "threads", "window"} <= set(run)
        assert run["memory"]["peak_rss_mb"] > 0
        assert sorted(run["threads"], key=int) == [str(t) for t in threads]
        for stats in run["threads"].values():
            assert set(stats) == {"preprocess", "inference", "total"}
            for part in stats.values():
                assert set(part) == STATS_KEYS and part["n"] == runs
                assert 0 <= part["min_ms"] <= part["median_ms"] <= part["p90_ms"] <= part["p99_ms"] <= part["max_ms"]


@pytest.mark.parametrize("kind", ["meta", "bare"])
def test_bench_command_in_process(tiny_models, tmp_path, capsys, kind):
    out = tmp_path / "bench.json"
    code = main(["bench", str(tiny_models[kind]), "--threads", "1,2", "--runs", "3", "--warmup", "1",
                 "--in-process", "--json", str(out)])
    assert code == 0
    table = capsys.readouterr().out
    assert "interpreter" in table and "preprocess" in table
    result = json.loads(out.read_text())
    _check_result(result, [1, 2], 3)
    assert result["model"]["anyecg_metadata"] is (kind == "meta")


def test_bench_command_isolated_json_to_stdout(tiny_models):
    done = subprocess.run(
        [sys.executable, "-m", "anyecg_edge.cli", "bench", str(tiny_models["meta"]), "--threads", "1",
         "--runs", "2", "--warmup", "0", "--json", "-"],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)  # stdout is pure JSON, the table went to stderr
    _check_result(result, [1], 2)
    assert result["settings"]["isolated_processes"] is True
    assert "total med" in done.stderr


def test_missing_interpreter_is_reported(tiny_models, tmp_path, capsys, monkeypatch):
    def only_litert():
        return {"ai-edge-litert": None, "tflite-runtime": "tflite-runtime is not installed (pip install 'anyecg-edge[tflite]')"}

    monkeypatch.setattr(benchmark, "available_interpreters", only_litert)
    out = tmp_path / "bench.json"
    assert main(["bench", str(tiny_models["meta"]), "--threads", "1", "--runs", "2", "--warmup", "0",
                 "--in-process", "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert "tflite-runtime" in table and "not available: tflite-runtime is not installed" in table
    runs = {r["interpreter"]: r for r in json.loads(out.read_text())["runs"]}
    assert runs["ai-edge-litert"]["available"] is True
    assert runs["tflite-runtime"] == {"interpreter": "tflite-runtime", "available": False,
                                      "reason": "tflite-runtime is not installed (pip install 'anyecg-edge[tflite]')"}
    # asking only for the missing one: a clean error, no traceback
    assert main(["bench", str(tiny_models["meta"]), "--interpreter", "tflite-runtime", "--runs", "1", "--in-process"]) == 1
    captured = capsys.readouterr()
    assert "not available" in captured.out and "no interpreter could run" in captured.err
    assert benchmark.run_isolated({"model": str(tiny_models["meta"]), "interpreter": "tflite-runtime"})["available"] is False


def test_bad_arguments_and_files(tmp_path, capsys):
    assert main(["bench", "--threads", "0", "--runs", "1"]) == 2
    assert "--threads" in capsys.readouterr().err
    assert main(["bench", str(tmp_path / "missing.tflite")]) == 1
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a model at all")
    assert main(["bench", str(junk), "--runs", "1"]) == 1
    assert "junk.tflite" in capsys.readouterr().err


def test_bench_path_imports_no_heavy_package(tiny_models):
    code = (
        "import sys\n"
        "from anyecg_edge.cli import main\n"
        f"main(['bench', {str(tiny_models['bare'])!r}, '--threads', '1', '--runs', '1', '--warmup', '0', '--in-process'])\n"
        "print('heavy:' + ','.join(m for m in ('torch', 'tensorflow', 'onnx', 'onnx2tf', 'onnxruntime') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    assert done.stdout.strip().splitlines()[-1] == "heavy:"


def test_suite_records_a_failing_section_as_not_available(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import report
    import run_all

    def broken(_suite):
        raise RuntimeError("boom")

    def missing(suite):
        suite.demo_document()
        return {}

    monkeypatch.setitem(run_all.SECTIONS, "inference", broken)
    monkeypatch.setitem(run_all.SECTIONS, "fidelity", missing)
    suite = run_all.Suite(tmp_path, tmp_path / "artifacts", True, tmp_path, model=tmp_path / "absent.tflite")
    sections = {name: run_all.run_section(suite, name) for name in ("inference", "fidelity")}
    assert sections["inference"] == {"available": False, "reason": "RuntimeError: boom", "seconds": sections["inference"]["seconds"]}
    assert sections["fidelity"]["available"] is False and "absent.tflite" in sections["fidelity"]["reason"]
    result = {"machine": benchmark.machine_info(), "seconds": 1.0, "quick": True, "sections": sections}
    paths = report.write_report(result, tmp_path, log=lambda _m: None)
    text = (tmp_path / "latest.md").read_text()
    assert "not available: RuntimeError: boom" in text and "not available:" in text.split("## Fidelity")[1]
    assert json.loads((tmp_path / "latest.json").read_text())["sections"]["inference"]["available"] is False
    assert {p.name for p in paths} == {"latest.json", "latest.md"}
