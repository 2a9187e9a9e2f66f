"""Per-window inference of one model on one runtime, measured side by side with the others.

Each runtime lives in its own worker process (``python benchmarks/runtimes.py SPEC``), which
loads the model once per thread count and then answers requests on stdin, one JSON line
each: ``{"threads": 2, "runs": 10, "warmup": 1}`` -> ``{"times": [seconds, ...]}``.
:func:`compare` starts every worker, then goes round-robin: each round asks every
(runtime, threads) pair for a short burst, so slow drifts of the machine's load (other
processes on a shared host) fall on all runtimes alike, and a pause between bursts lets
the previous runtime's spinning threads go idle. The medians are taken over all bursts.

Worker kinds (``spec["kind"]``):

* ``torch``: a Net1D teacher (``net1d``: Net1DConfig fields) or a student (``student``:
  StudentConfig fields; batch norm folded), random weights seeded 0 (latency does not depend
  on the values), ``torch.inference_mode``;
* ``onnxruntime``: ``path`` to an ``.onnx`` file, CPU provider, graph optimisations off
  (its Pad+MaxPool fusion changes Net1D's results), sequential execution;
* ``tflite``: ``path`` to a ``.tflite`` file on ``interpreter`` (ai-edge-litert or
  tflite-runtime), quantise/invoke/dequantise as the device runtime does;
* ``preprocess``: the canonical preprocessing of the raw window in ``raw`` (``.npy``), timed
  beside the models so the two are comparable.

Input: one canonically preprocessed window, the same for all.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from anyecg_edge.benchmark import memory_mb, package_version, summarize  # noqa: E402

Runner = Callable[[np.ndarray], object]


def _torch_runners(spec: dict, threads: list[int]) -> tuple[dict[int, Runner], dict]:
    import torch

    torch.manual_seed(0)
    if "net1d" in spec:
        from quantize.net1d import Net1D, Net1DConfig

        model = Net1D(Net1DConfig.from_dict(spec["net1d"])).eval()
    else:
        from quantize.student import Student, StudentConfig

        model = Student(StudentConfig.from_dict(spec["student"])).fused().eval()
    params = sum(p.numel() for p in model.parameters())

    def make(n: int) -> Runner:
        def run(window: np.ndarray):
            torch.set_num_threads(n)
            with torch.inference_mode():
                return model(torch.from_numpy(window.reshape(1, 1, -1)))

        return run

    return {n: make(n) for n in threads}, {"runtime_version": torch.__version__, "params": params}


def _onnxruntime_runners(spec: dict, threads: list[int]) -> tuple[dict[int, Runner], dict]:
    import onnxruntime as ort

    def make(n: int) -> Runner:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.intra_op_num_threads = n
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        session = ort.InferenceSession(spec["path"], options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        shape = [d if isinstance(d, int) else 1 for d in session.get_inputs()[0].shape]
        return lambda window: session.run(None, {name: window.reshape(shape)})

    return {n: make(n) for n in threads}, {"runtime_version": ort.__version__}


def _tflite_runners(spec: dict, threads: list[int]) -> tuple[dict[int, Runner], dict]:
    from anyecg_edge.benchmark import INTERPRETER_MODULES, TFLiteWindowModel

    content = Path(spec["path"]).read_bytes()
    runners = {n: TFLiteWindowModel(content, n, spec["interpreter"]).run for n in threads}
    return runners, {"runtime_version": package_version(INTERPRETER_MODULES[spec["interpreter"]][1])}


def _preprocess_runners(spec: dict, threads: list[int]) -> tuple[dict[int, Runner], dict]:
    from anyecg_edge.preprocess import preprocess_window

    raw = np.load(spec["raw"])
    run = lambda _window: preprocess_window(raw)  # noqa: E731 - numpy/scipy here are single-threaded
    return {n: run for n in threads}, {"runtime_version": package_version("scipy")}


LOADERS = {"torch": _torch_runners, "onnxruntime": _onnxruntime_runners, "tflite": _tflite_runners,
           "preprocess": _preprocess_runners}


def worker(spec: dict) -> None:
    """The worker loop (see the module docstring); replies go to stdout, one JSON line each."""
    window = np.load(spec["window"]).astype(np.float32).reshape(-1)
    threads = [int(t) for t in spec["threads"]]
    start = time.perf_counter()
    runners, info = LOADERS[spec["kind"]](spec, threads)
    load_s = time.perf_counter() - start
    first = {}
    for n, run in runners.items():  # first call (allocation, delegate set-up) and a warm estimate
        t0 = time.perf_counter()
        run(window)
        first_s = time.perf_counter() - t0
        warm = []
        for _ in range(3):
            t0 = time.perf_counter()
            run(window)
            warm.append(time.perf_counter() - t0)
        first[n] = {"first_s": first_s, "warm_s": min(warm)}
    print(json.dumps({"ready": True, "load_s": load_s, "first": first, "info": info, "memory": memory_mb()}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("quit"):
            break
        run = runners[int(request["threads"])]
        for _ in range(int(request.get("warmup", 0))):
            run(window)
        times = []
        for _ in range(int(request["runs"])):
            t0 = time.perf_counter()
            run(window)
            times.append(time.perf_counter() - t0)
        print(json.dumps({"times": times}), flush=True)
    print(json.dumps({"memory": memory_mb()}), flush=True)


class Worker:
    """The controller's handle on one worker process."""

    def __init__(self, name: str, spec: dict, log_dir: Path, timeout: float = 900.0):
        self.name, self.timeout = name, timeout
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT), **spec.get("env", {})}
        self.log_path = log_dir / f"{name.replace(' ', '_').replace('/', '_')}.log"
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), json.dumps(spec)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True, bufsize=1, env=env,
        )

    def reply(self) -> dict:
        for line in self.process.stdout:
            if line.startswith("{"):
                return json.loads(line)
        tail = self.log_path.read_text().strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"worker exited ({self.process.wait()}): {tail[0]}")

    def ask(self, request: dict) -> dict:
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return self.reply()

    def close(self) -> dict:
        try:
            return self.ask({"quit": True})
        except (RuntimeError, BrokenPipeError, OSError):
            return {}
        finally:
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
            self._log.close()


def compare(
    specs: dict[str, dict],
    window: np.ndarray,
    work_dir: Path,
    threads: tuple[int, ...] = (1, 2),
    rounds: int = 6,
    burst_s: float = 0.6,
    max_runs: int = 400,
    settle_s: float = 0.1,
    log: Callable[[str], None] = print,
) -> dict[str, dict]:
    """Measure every spec side by side; per name: availability, stats per thread count, memory.

    A spec may name its own ``threads`` (the preprocessing, single-threaded, uses ``[1]``) and
    ``env``, environment variables for its worker.

    Each burst runs ``burst_s`` worth of calls (estimated from the warm latency; between 2 and
    ``max_runs / rounds`` calls) after one untimed call.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    window_path = work_dir / "window.npy"
    np.save(window_path, window.astype(np.float32))
    results: dict[str, dict] = {}
    workers: dict[str, Worker] = {}
    for name, spec in specs.items():
        if spec.get("unavailable"):
            results[name] = {"available": False, "reason": spec["unavailable"]}
            continue
        try:
            worker_ = Worker(name, {"threads": list(threads), **spec, "window": str(window_path)}, work_dir)
            ready = worker_.reply()
            workers[name] = worker_
            results[name] = {"available": True, "load_s": round(ready["load_s"], 3), "info": ready["info"],
                             "memory_loaded": ready["memory"], "_first": ready["first"],
                             "_times": {t: [] for t in spec.get("threads", threads)}}
            log(f"  loaded {name} in {ready['load_s']:.1f} s")
        except (RuntimeError, OSError, json.JSONDecodeError) as exc:
            results[name] = {"available": False, "reason": str(exc)}
            log(f"  {name}: not available: {exc}")
    try:
        for r in range(rounds):
            for name, worker_ in workers.items():
                for t in results[name]["_times"]:
                    so_far = results[name]["_times"][t]
                    warm = max(float(np.median(so_far)) if so_far else results[name]["_first"][str(t)]["warm_s"], 1e-5)
                    runs = int(min(max(2, burst_s / warm), max(2, max_runs // rounds)))
                    time.sleep(settle_s)
                    results[name]["_times"][t] += worker_.ask({"threads": t, "runs": runs, "warmup": 1})["times"]
            log(f"  round {r + 1}/{rounds} done")
    finally:
        for name, worker_ in workers.items():
            results[name]["memory_end"] = worker_.close().get("memory")
    for name, result in results.items():
        if result.get("available"):
            times = result.pop("_times")
            first = result.pop("_first")
            result["first_call_ms"] = {str(t): round(first[str(t)]["first_s"] * 1e3, 3) for t in times}
            result["threads"] = {str(t): summarize(times[t]) for t in times}
    return results


if __name__ == "__main__":
    worker(json.loads(sys.argv[1]))
