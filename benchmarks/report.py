"""Writing the suite's result: ``latest.json``, ``latest.md`` and the plots.

Every number in the markdown comes from the JSON of the same run; a section that was not
available is shown as "not available: <reason>".
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path

#: The verify report's columns shown in the summary (the full report has them all).
VERIFY_COLUMNS = ("windows", "pearson_teacher_int8", "mae_teacher_int8", "pearson_float32_int8", "auroc_teacher",
                  "auroc_int8", "auroc_drop_teacher_int8", "auroc_drop_float32_int8", "pass")
PLOTS = {
    "latency": "latency_per_runtime.png",
    "streams": "latency_vs_streams.png",
    "fidelity": "fidelity_scatter.png",
}


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _ms(value) -> str:
    if value is None:
        return "–"
    return f"{value:.3g}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _x(value) -> str:
    return "–" if value is None else f"{value:g}x"


def _met(value) -> str:
    return {True: "**met**", False: "**missed**", None: "not measured"}[value]


def _na(section: dict) -> str | None:
    return None if section.get("available", True) else f"not available: {section.get('reason')}"


def _kb(n) -> str:
    if not isinstance(n, (int, float)):
        return f"not available: {n.get('reason')}" if isinstance(n, dict) else "–"
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1024:.1f} KB"


def headline_table(inference: dict) -> list[str]:
    """The per-window inference table (medians, ratios against the teacher in torch fp32)."""
    lines = ["| model · runtime | 1 thread (ms) | 2 threads (ms) | vs teacher torch fp32 (1 / 2 threads) |",
             "|---|---:|---:|---:|"]
    for name, row in inference.get("rows", {}).items():
        if not row.get("available"):
            lines.append(f"| {name} | not available: {row.get('reason')} | | |")
            continue
        t = row["threads"]
        speed = row.get("vs_teacher_torch", {})
        lines.append(f"| {name} | {_ms(t.get('1', {}).get('median_ms'))} | {_ms(t.get('2', {}).get('median_ms'))} | "
                     f"{_x(speed.get('1'))} / {_x(speed.get('2'))} |")
    return lines


def targets_table(sections: dict) -> list[str]:
    lines = ["| target | measured | |", "|---|---|---|"]
    inf = sections.get("inference", {}).get("targets", {})
    for key, label in (("int8_vs_teacher_torch", "int8 student >= 100x faster than the teacher in torch fp32"),
                       ("int8_vs_teacher_onnxruntime", "int8 student >= 10x faster than the teacher in onnxruntime fp32")):
        t = inf.get(key)
        if t:
            lines.append(f"| {label} | {_x(t['speedup'].get('1'))} (1 thread), {_x(t['speedup'].get('2'))} (2 threads) | {_met(t['met'])} |")
        else:
            lines.append(f"| {label} | not available | |")
    pre = inf.get("preprocess_le_inference")
    if pre:
        lines.append(f"| preprocessing costs no more than inference | preprocessing {_ms(pre['preprocess_ms'])} ms vs "
                     f"int8 inference {_ms(pre['inference_ms'])} ms (medians, 1 thread) | {_met(pre['met'])} |")
    stream = sections.get("stream", {})
    t = stream.get("targets", {}).get("total_p99_ms")
    lines.append(f"| end-to-end stream latency p99 < 10 ms | "
                 + (f"{_ms(t['value'])} ms (p50 {_ms(stream['latency_ms']['total']['median_ms'])} ms) | {_met(t['met'])} |"
                    if t else f"{_na(stream) or 'not available'} | |"))
    gw = sections.get("gateway", {})
    t = gw.get("targets", {}).get("streams_per_core")
    lines.append("| >= 200 streams per core | "
                 + (f"{t['value']} streams kept real time (next step {gw.get('first_failing_streams')} did not) | {_met(t['met'])} |"
                    if t else f"{_na(gw) or 'not available'} | |"))
    sm = sections.get("size_memory", {})
    t = sm.get("targets", {}).get("runtime_peak_rss_mb")
    lines.append("| runtime peak RSS with the model loaded < 100 MB | "
                 + (f"{_ms(t['value'])} MB | {_met(t['met'])} |" if t else f"{_na(sm) or 'not available'} | |"))
    return lines


def _inference_detail(section: dict) -> list[str]:
    lines = ["| model · runtime | threads | median | p90 | p99 | min | n | first call | load (s) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, row in section.get("rows", {}).items():
        if not row.get("available"):
            continue
        for t, s in row["threads"].items():
            lines.append(f"| {name} | {t} | {_ms(s['median_ms'])} | {_ms(s['p90_ms'])} | {_ms(s['p99_ms'])} | "
                         f"{_ms(s['min_ms'])} | {s['n']} | {_ms(row['first_call_ms'].get(t))} | {row['load_s']:.2f} |")
    notes = section.get("notes", {})
    lines += ["", "Times in ms per window. " + " ".join(f"{k.replace('_', ' ')}: {v}." for k, v in notes.items())]
    return lines


def _stream_detail(section: dict) -> list[str]:
    if _na(section):
        return [_na(section)]
    lat = section["latency_ms"]
    lines = [section["what"] + ".", "",
             f"{section['accepted']} accepted of {section['windows']} windows in {section['wall_seconds']:g} s "
             f"(recording replayed at {section['body_speed']:g}x real time).", "",
             "| part | median (ms) | p90 | p99 | max |", "|---|---:|---:|---:|---:|"]
    for part, s in lat.items():
        lines.append(f"| {part.replace('_', ' ')} | {_ms(s['median_ms'])} | {_ms(s['p90_ms'])} | {_ms(s['p99_ms'])} | {_ms(s['max_ms'])} |")
    variant = section.get("openblas_one_thread")
    if variant and not _na(variant):
        v = variant["latency_ms"]
        lines += ["", f"The same run with `OPENBLAS_NUM_THREADS=1` ({variant['accepted']} accepted windows): total "
                      f"p50 {_ms(v['total']['median_ms'])} ms, p99 {_ms(v['total']['p99_ms'])} ms; preprocessing p50 "
                      f"{_ms(v['preprocess']['median_ms'])} ms, p99 {_ms(v['preprocess']['p99_ms'])} ms; quality gate p50 "
                      f"{_ms(v['quality']['median_ms'])} ms; inference p50 {_ms(v['inference']['median_ms'])} ms."]
    elif variant:
        lines += ["", f"With `OPENBLAS_NUM_THREADS=1`: {_na(variant)}"]
    return lines


def _gateway_detail(section: dict) -> list[str]:
    if _na(section):
        return [_na(section)]
    lines = [section.get("what", "") + ".", "",
             f"Kept real time with **{section.get('streams_per_core_kept_up')} streams on one core**; "
             + (f"{section.get('cpu_per_stream_pct')} % of a core and " if section.get("cpu_per_stream_pct") is not None else "")
             + f"{section.get('memory_per_stream_kb')} KB per stream.",
             "", "| streams | windows/s | CPU (cores) | lag p50 (ms) | lag p99 (ms) | memory/stream (KB) | kept up |",
             "|---:|---:|---:|---:|---:|---:|---|"]
    for r in section.get("rows", []):
        lines.append(f"| {r['streams']} | {r['windows_per_s']} | {r['cpu_core_fraction']} | {r['lag_p50_ms']} | "
                     f"{r['lag_p99_ms']} | {r['memory_per_stream_kb']} | {r['keeps_up']} |")
    return lines


def _size_detail(section: dict) -> list[str]:
    if _na(section):
        return [_na(section)]
    teacher, student = section.get("teacher", {}), section.get("student", {})
    lines = ["| | parameters | MACs per window | files |", "|---|---:|---:|---|"]
    t_files = teacher.get("files", {})
    t_files_text = (_na(t_files) if isinstance(t_files, dict) and _na(t_files) else
                    ", ".join(f"{k.replace('_', ' ')} {_kb(v)}" for k, v in t_files.items()))
    lines.append(f"| teacher (ECGFounder Net1D) | {teacher.get('params', 0) / 1e6:.2f} M | {teacher.get('macs', 0) / 1e9:.2f} G | "
                 f"torch fp32 weights {_kb(teacher.get('torch_fp32_weights_bytes'))}; {t_files_text} |")
    demo_teacher = section.get("demo_teacher")
    if demo_teacher:
        lines.append(f"| demo teacher (the one distilled from) | {demo_teacher['params'] / 1e6:.3f} M | "
                     f"{demo_teacher['macs'] / 1e6:.1f} M | – |")
    if _na(student):
        lines.append(f"| student | {_na(student)} | | |")
    else:
        files = ", ".join(f"{k.replace('_', ' ')} {_kb(v)}" for k, v in student["files"].items())
        lines.append(f"| demo student | {student['params'] / 1e3:.1f} k | {student['macs'] / 1e6:.2f} M | {files} |")
        r = section.get("ratios", {})
        lines += ["", f"The teacher has {_x(r.get('params_teacher_over_student'))} the parameters and "
                      f"{_x(r.get('macs_teacher_over_student'))} the MACs of the student."]
    memory = section.get("runtime_memory_mb", {})
    if memory:
        lines += ["", "Runtime memory, one process per interpreter, demo model loaded and windows run "
                      "(RSS counts shared libraries such as numpy's BLAS and scipy in full; PSS is the process's share):", "",
                  "| interpreter | before loading (MB) | peak RSS (MB) | PSS (MB) | private (MB) |", "|---|---:|---:|---:|---:|"]
        for name, m in memory.items():
            if _na(m):
                lines.append(f"| {name} | {_na(m)} | | | |")
            else:
                lines.append(f"| {name} | {m.get('before_load_rss_mb')} | {m.get('peak_rss_mb')} | {m.get('pss_mb')} | {m.get('private_mb')} |")
    exported = section.get("teacher_export")
    if exported:
        r = exported["result"]
        lines += ["", f"Converting the full-size teacher through the export stages (`{exported['from']}`): "
                      + ", ".join(f"{k} {v} s" for k, v in r.get("seconds", {}).items())
                      + f"; sizes " + ", ".join(f"{k} {_kb(v)}" for k, v in r.get("sizes_bytes", {}).items()) + "."]
    widths = section.get("student_widths")
    if widths and isinstance(widths["result"], list) and widths["result"]:
        rows = widths["result"]
        keys = [k for k in rows[0] if not isinstance(rows[0][k], (dict, list))]
        lines += ["", f"Student widths (`{widths['from']}`):", "", "| " + " | ".join(keys) + " |",
                  "|" + "---|" * len(keys)]
        lines += ["| " + " | ".join(_fmt(r.get(k)) for k in keys) + " |" for r in rows]
    arena = section.get("tflm_arena", {})
    lines += ["", "TensorFlow Lite Micro tensor arena: " + (_na(arena) or
              f"{arena['used_bytes'] / 1024:.1f} KB used, {arena['recommended_bytes'] / 1024:.1f} KB recommended.")]
    return lines


def _fidelity_detail(section: dict) -> list[str]:
    if _na(section):
        return [_na(section)]
    lines = []
    meta = section.get("from_model_metadata", {})
    if _na(meta):
        lines.append(f"Model metadata: {_na(meta)}.")
    else:
        q = meta.get("int8_vs_float_student", {})
        h = meta.get("student_vs_teacher_held_out", {})
        lines += ["Headline numbers carried in the demo model's metadata (written by the export):", "",
                  "| output | int8 vs float32 student: r | max abs error | student vs teacher, held out: r | MAE |",
                  "|---|---:|---:|---:|---:|"]
        for name in sorted(set(q) | set(h)):
            a, b = q.get(name, {}), h.get(name, {})
            lines.append(f"| {name} | {_fmt(a.get('pearson_r'))} | {_fmt(a.get('max_abs_error'))} | "
                         f"{_fmt(b.get('pearson_r'))} | {_fmt(b.get('mae'))} |")
        floats = meta.get("float_max_abs_diff", {})
        if floats:
            lines += ["", "Float parity with torch (max abs diff): " + ", ".join(f"{k} {v:.2g}" for k, v in floats.items()
                                                                                if isinstance(v, (int, float))) +
                      f"; {meta.get('parity_windows')} parity windows."]
    report = section.get("verify_report", {})
    if _na(report):
        lines += ["", f"Verify report: {_na(report)}."]
    else:
        lines += ["", f"Verify report `{report['path']}`: overall {'pass' if report.get('pass') else 'FAIL'}."]
        for name, s in report.get("sets", {}).items():
            lines += ["", f"**{name}**: {s.get('windows')} windows from {s.get('records')} records.", ""]
            present = {k for o in s["outputs"].values() for k in o if o.get(k) is not None}
            keys = [k for k in VERIFY_COLUMNS if k in present]
            lines += ["| output | " + " | ".join(keys) + " |", "|---|" + "---:|" * len(keys)]
            for out, values in s["outputs"].items():
                lines.append(f"| {out} | " + " | ".join(_fmt(values.get(k)) for k in keys) + " |")
    if section.get("markdown"):
        lines += ["", f"Full report: `{section['markdown']}`."]
    return lines


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "–" if value is None else str(value)


def _distill_detail(section: dict) -> list[str]:
    if _na(section):
        return [_na(section)]
    lines = [section.get("what", "") + ".", "", "Settings: " + ", ".join(f"{k} {v}" for k, v in section.get("settings", {}).items()) + ".",
             "", "| processes | teacher cache (windows/s) | training (windows/s) | cache windows | training seconds |",
             "|---:|---:|---:|---:|---:|"]
    for n, t in section.get("processes", {}).items():
        if _na(t):
            lines.append(f"| {n} | {_na(t)} | | | |")
        else:
            lines.append(f"| {n} | {t.get('cache_windows_per_s')} | {t.get('train_windows_per_s')} | "
                         f"{t.get('cache_windows')} | {t.get('train_seconds')} |")
    own = section.get("demo_model_run", {})
    if own and not _na(own):
        t = own["throughput"]
        lines.append(f"| {t.get('processes')} (the demo model's own run, teacher {own.get('teacher')}, `{own['from']}`) | {t.get('cache_windows_per_s')} | "
                     f"{t.get('train_windows_per_s')} | {t.get('cache_windows')} | {t.get('train_seconds')} |")
    scaling = section.get("scaling_2_over_1", {})
    lines += ["", f"2 processes over 1: teacher cache {_x(scaling.get('cache_windows_per_s'))}, "
                  f"training {_x(scaling.get('train_windows_per_s'))}."]
    return lines


def _pi_detail(section: dict) -> list[str]:
    if _na(section):
        return [_na(section)]
    lines = ["**Install check** (aarch64, CPython 3.11, wheels only):", ""]
    for target, entry in section.get("install", {}).get("targets", {}).items():
        dl = entry.get("download_no_deps", {})
        parts = [f"{p} {v['version']} ({v['platform_tag']})" if v.get("resolved") else f"{p}: NOT FOUND" for p, v in dl.items()]
        full = entry.get("device_install", {})
        tfl = entry.get("tflite_extra", {})
        lines.append(f"- {target}: " + "; ".join(parts)
                     + f". Full device install with dependencies (base + edge): "
                     + ("resolves" if full.get("resolved") else f"fails ({full.get('error')})")
                     + "; tflite extra: " + ("resolves" if tfl.get("resolved") else f"fails ({tfl.get('error')})") + ".")
    proj = section.get("projection", {})
    a, b = proj.get("method_a_mac_count", {}), proj.get("method_b_reference_workload", {})
    lines += ["", f"**Pi 4 latency: a PROJECTION, not a measurement** (no Raspberry Pi was used). "
                  f"Reference: {proj.get('published_reference', {}).get('source')}.", ""]
    if a:
        lines.append(f"- Method A (MAC count): {a['method']}. Pi 4 effective {a['pi4_effective_gmacs'][0]}–"
                     f"{a['pi4_effective_gmacs'][1]} GMAC/s; student {a['student_macs'] / 1e6:.2f} M MACs -> "
                     f"**{a['projected_ms_4_threads'][0]}–{a['projected_ms_4_threads'][1]} ms** per window on 4 threads, "
                     f"at most {a['projected_ms_1_thread_at_most']} ms on 1 thread.")
    if b.get("available", True) and "projected_ms" in b:
        lines.append(f"- Method B (reference workload): {b['method']}. MobileNet v2 here {b['mobilenet_v2_here_ms']} ms, "
                     f"Pi 4 / here = {b['pi4_over_here']}; student int8 here {b['student_ms_here']} ms -> "
                     f"**{b['projected_ms']} ms** per window.")
    else:
        lines.append(f"- Method B: not available: {b.get('reason')}")
    return lines


def render_markdown(result: dict) -> str:
    m, s = result["machine"], result["sections"]
    pk = m.get("packages", {})
    lines = [
        "# AnyECG-Edge benchmarks",
        "",
        f"Run {m['date_utc']} on {m['machine']} {m['cpu_model']}, {m['cpu_count']} cores, {m['system']} {m['release']}; "
        f"Python {m['python']}; " + ", ".join(f"{k} {v}" for k, v in pk.items() if v) + ".",
        f"Load average at start {m.get('load_average_start')}, at end {m.get('load_average_end')} "
        "(other processes shared the machine; ratios come from runtimes measured interleaved in the same run). "
        f"Suite time {result['seconds'] / 60:.1f} min" + (" (quick mode: fewer runs)." if result.get("quick") else "."),
        "",
        "Student under test: " + (f"`{result['student_model']['path']}` (sha256 `{result['student_model']['sha256'][:16]}…`)."
                                  if result.get("student_model", {}).get("available", True) and result.get("student_model")
                                  else f"{_na(result.get('student_model', {})) or 'unknown'}."),
        "",
        "## Headline",
        "",
        *(headline_table(s["inference"]) if "inference" in s and not _na(s["inference"])
          else [_na(s.get("inference", {})) or "inference: not run"]),
        "",
        f"![latency per runtime]({PLOTS['latency']})",
        "",
        "## Targets",
        "",
        *targets_table(s),
    ]
    details = (("inference", "Per-window inference", _inference_detail),
               ("stream", "Preprocessing and end-to-end stream latency", _stream_detail),
               ("gateway", "Gateway scaling", _gateway_detail),
               ("size_memory", "Size and memory", _size_detail),
               ("fidelity", "Fidelity", _fidelity_detail),
               ("distillation", "Distillation throughput", _distill_detail),
               ("raspberry_pi", "Raspberry Pi", _pi_detail))
    for key, title, fn in details:
        if key not in s:
            continue
        lines += ["", f"## {title}", ""]
        lines += [_na(s[key])] if _na(s[key]) else fn(s[key])
        if key == "gateway" and not _na(s[key]):
            lines += ["", f"![latency vs streams]({PLOTS['streams']})"]
        if key == "fidelity" and s[key].get("scatter_plot"):
            lines += ["", f"![fidelity scatter: teacher vs int8 student]({s[key]['scatter_plot']}) "
                          f"(from `{s[key]['scatter_source']}`)"]
    return "\n".join(lines) + "\n"


def plot_latency(inference: dict, path: Path) -> bool:
    import matplotlib.pyplot as plt

    rows = [(n, r) for n, r in inference.get("rows", {}).items() if r.get("available")]
    if not rows:
        return False
    fig, ax = plt.subplots(figsize=(9, 0.55 * len(rows) + 1.6))
    height = 0.38
    labelled: set[str] = set()
    for i, (name, row) in enumerate(reversed(rows)):
        for j, t in enumerate(("1", "2")):
            st = row["threads"].get(t)
            if st is None:
                continue
            y = i + (j - 0.5) * height
            label = f"{t} thread{'s' if t != '1' else ''}"
            ax.barh(y, st["median_ms"], height, color=("#1f77b4", "#ff7f0e")[j], label=None if label in labelled else label)
            labelled.add(label)
            ax.errorbar(st["median_ms"], y, xerr=[[st["median_ms"] - st["min_ms"]], [st["p90_ms"] - st["median_ms"]]],
                        fmt="none", ecolor="black", lw=0.8, capsize=2)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([n for n, _ in reversed(rows)])
    ax.set_xscale("log")
    ax.set_xlabel("per-window latency, ms (median; whiskers min to p90; log scale)")
    ax.grid(axis="x", which="both", alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title("One 10 s ECG window, side by side")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def plot_streams(gateway: dict, path: Path) -> bool:
    import matplotlib
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    rows = gateway.get("rows") or []
    if not rows:
        return False
    n = [r["streams"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(n, [max(r["lag_p50_ms"], 1e-2) for r in rows], "o-", label="lag p50")
    ax.plot(n, [max(r["lag_p99_ms"], 1e-2) for r in rows], "s-", label="lag p99")
    ax.axhline(1000, color="red", ls="--", lw=0.8, label="real time lost (1 s)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(n, [str(v) for v in n])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlabel("concurrent 130 Hz streams on one core (hop 2 s)")
    ax.set_ylabel("frame processing lag, ms")
    twin = ax.twinx()
    twin.plot(n, [r["cpu_core_fraction"] for r in rows], "^:", color="gray", label="CPU (cores)")
    twin.set_ylabel("CPU, fraction of one core")
    twin.set_ylim(0, 1.1)
    handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    ax.legend(handles, [h.get_label() for h in handles], loc="upper left", fontsize=8)
    ax.set_title("Gateway scaling")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def finite(value):
    """``value`` with every NaN or infinity replaced by None, so the JSON is standard."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def write_report(result: dict, out: Path, log: Callable[[str], None] = print) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    result = finite(result)
    s = result["sections"]
    written = []
    for key, fn, data in (("latency", plot_latency, s.get("inference", {})),
                          ("streams", plot_streams, s.get("gateway", {}))):
        path = out / PLOTS[key]
        try:
            if data and fn(data, path):
                written.append(path)
        except Exception as exc:  # noqa: BLE001 - a plot must not lose the numbers
            log(f"plot {path.name} failed: {exc}")
    if s.get("fidelity", {}).get("scatter_plot"):
        written.append(out / s["fidelity"]["scatter_plot"])
    json_path, md_path = out / "latest.json", out / "latest.md"
    _atomic_write(json_path, (json.dumps(result, indent=2, default=str) + "\n").encode())
    _atomic_write(md_path, render_markdown(result).encode())
    return [json_path, md_path, *written]
