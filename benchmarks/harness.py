"""The measuring side of ``mlp_epoch.py``: a worker process that times one contender, the driver's
way of spawning it, the machine description, and the tables of medians and ratios.

Each measurement runs in a fresh worker process (``python mlp_epoch.py --worker NAME ...``), so
PyTorch's spinning OpenMP threads never share a process with numpy's BLAS threads.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np

from contenders import common, load

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


# ================================================================ the worker

def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def blas_info():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed"
    return [{k: i.get(k) for k in ("internal_api", "version", "architecture", "num_threads",
                                   "threading_layer")}
            for i in threadpool_info() if i["user_api"] == "blas"]


def _report_replays(run, result) -> None:
    """A compiled contender's ``run.compiled`` (a ``tg.jit`` function): how many of its calls so
    far were replays, so a run that captured but never replayed shows."""
    compiled = getattr(run, "compiled", None)
    if compiled is not None:
        result["replays"] = compiled.replays


def worker(args) -> dict:
    """Time one contender in this process: an evaluation pass, or ``args.steps`` training steps
    after ``args.warmup``, then memory under tracemalloc."""
    sys.path.insert(0, ROOT)  # the tinygrad_mlp of this checkout
    data = np.load(args.data)
    contender = load(args.worker)
    result = {"contender": args.worker, "mode": args.mode, "batch": args.batch,
              "blas": blas_info()}
    if args.worker == "torch":
        import torch  # noqa: F401  (loaded first, so threadpoolctl sees the threads it runs)
        result["torch_threads"] = common.blas_threads()
    if args.mode == "eval":
        run = contender.evaluate(data["xt"], args.batch, args.seed)
        run()  # warm up
        times = []
        for _ in range(args.inner):
            t0 = time.perf_counter()
            run()
            times.append(time.perf_counter() - t0)
        result["seconds"] = min(times)
        _report_replays(run, result)
        return result

    run = contender.train(data["x"], data["y"], args.batch, args.seed)
    rss_before = _rss_kib("VmRSS")
    have_hwm = _reset_peak_rss()
    run(args.warmup)
    t0 = time.perf_counter()
    result["final_loss"] = run(args.steps)
    seconds = time.perf_counter() - t0
    # Everything training allocated beyond the model and the data: gradients, optimiser state,
    # activations, allocator caches (PyTorch's too, which tracemalloc does not see).
    result["peak_rss_growth_kib"] = _rss_kib("VmHWM") - rss_before if have_hwm else None
    result["seconds"] = seconds
    result["ms_per_step"] = 1e3 * seconds / args.steps
    _report_replays(run, result)

    # Memory, after timing (tracemalloc slows every allocation down).
    if args.mem_steps:
        import tracemalloc
        run(2)
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        run(2)
        after2 = tracemalloc.get_traced_memory()[0]
        run(args.mem_steps)
        current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        result["peak_traced_bytes"] = peak - base
        result["growth_traced_bytes"] = current - after2
    return result


# ================================================================ the driver's side

def machine_info() -> dict:
    info = {"python": platform.python_version(), "numpy": np.__version__,
            "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                                    "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info["blas_driver"] = blas_info()  # the workers report their own (see --threads)
    try:
        out = subprocess.run([sys.executable, "-c",
                              "import torch; print(torch.__version__, torch.get_num_threads(), "
                              "torch.backends.cpu.get_cpu_capability())"],
                             capture_output=True, text=True, timeout=120)
        info["torch"] = out.stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        info["torch"] = None
    try:
        info["loadavg_start"] = os.getloadavg()
    except OSError:
        pass
    return info


def spawn(script: str, args, contender: str, mode: str, batch: int, steps: int) -> dict:
    """Run ``script --worker contender`` in a fresh process and return its result."""
    cmd = [sys.executable, script, "--worker", contender, "--mode", mode,
           "--batch", str(batch), "--steps", str(steps), "--warmup", str(args.warmup),
           "--mem-steps", str(args.mem_steps), "--data", args.data, "--seed", str(args.seed),
           "--inner", str(args.inner)]
    return run_worker(cmd, args.threads, f"{contender} ({mode}, batch {batch})")


def run_worker(cmd: list, threads, what: str) -> dict:
    """Run one worker process (``threads``: BLAS/OpenMP threads, None for their default) and
    return the JSON of the last line it printed."""
    env = dict(os.environ)
    if threads:
        env["OPENBLAS_NUM_THREADS"] = env["OMP_NUM_THREADS"] = str(threads)
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"worker {what} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def note_load_end(info: dict) -> None:
    """The load average when the runs are over, beside the one at the start."""
    try:
        info["loadavg_end"] = os.getloadavg()
    except OSError:
        pass


def machine_line(info: dict, data, torch_threads=None, env=None) -> str:
    """One line on what the figures were measured on: CPU, numpy's BLAS as threadpoolctl saw it
    in a worker, PyTorch (when it ran), the environment variables asked for, the data, the load."""
    blas = info.get("blas")
    blas = blas[0] if isinstance(blas, list) and blas else {}
    torch = (f"; PyTorch (version, default threads, capability) {info['torch']}, run with "
             f"{torch_threads} threads" if torch_threads is not None else "")
    return (f"Machine: {info['cpu']}, {info['cores']} cores; numpy {info['numpy']} with "
            f"{blas.get('internal_api')} {blas.get('version')} ({blas.get('architecture')} "
            f"kernel, {blas.get('num_threads')} threads){torch}"
            f"{f'; env {env}' if env is not None else ''}; data: {data}; load average "
            f"{info.get('loadavg_start')} -> {info.get('loadavg_end')}")


def write_report(path: str, report: dict) -> None:
    """The results as JSON at ``path`` (its directory made if needed)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(report, f, indent=1, default=str)
    print(f"\nwrote {path}")


def _median(runs, key):
    vals = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def _mib(b):
    return f"{b / 2**20:.1f}" if b is not None else "–"


def summarize(results, contenders, mode):
    """Medians per (batch, contender) and ratios to torch, numpy and matmul."""
    table = {}
    for batch in sorted({r["batch"] for r in results}):
        rows = {}
        for c in contenders:
            runs = [r for r in results if r["batch"] == batch and r["contender"] == c]
            if not runs:
                continue
            rows[c] = {"runs": len(runs), "seconds": _median(runs, "seconds"),
                       "all_seconds": [r["seconds"] for r in runs]}
            if mode == "train":
                rows[c].update(ms_per_step=_median(runs, "ms_per_step"),
                               peak_traced_bytes=_median(runs, "peak_traced_bytes"),
                               growth_traced_bytes=max((r.get("growth_traced_bytes") or 0)
                                                       for r in runs),
                               peak_rss_growth_kib=_median(runs, "peak_rss_growth_kib"),
                               final_loss=_median(runs, "final_loss"))
            if any("replays" in r for r in runs):  # a compiled contender: the fewest replays
                rows[c]["replays"] = min(r.get("replays", 0) for r in runs)
        for c, row in rows.items():
            for ref in ("torch", "numpy", "matmul"):
                if ref in rows:
                    row[f"ratio_to_{ref}"] = row["seconds"] / rows[ref]["seconds"]
        table[batch] = rows
    return table


def markdown(table, mode, steps_note) -> str:
    lines = []
    if mode == "train":
        lines.append(f"Training, one epoch {steps_note} (median seconds; ratios of medians)")
        lines.append("")
        lines.append("| batch | contender | s/epoch | ms/step | overhead ms/step | × torch | "
                     "× numpy | × matmul | peak MiB (tracemalloc) | growth | peak RSS MiB |")
        lines.append("|---|---|---|---|---|---|---|---|---|---|---|")
    else:
        lines.append(f"Evaluation of 10,000 test images {steps_note} (median seconds)")
        lines.append("")
        lines.append("| batch | contender | s | × torch | × numpy | × matmul |")
        lines.append("|---|---|---|---|---|---|")
    for batch, rows in table.items():
        floor = rows.get("matmul", {}).get("ms_per_step")
        for c, r in rows.items():
            ratios = " | ".join(f"{r[f'ratio_to_{ref}']:.2f}×" if f"ratio_to_{ref}" in r else "–"
                                for ref in ("torch", "numpy", "matmul"))
            if mode == "train":
                overhead = f"{r['ms_per_step'] - floor:.2f}" if floor is not None else "–"
                traced = _mib(r["peak_traced_bytes"]) if c != "torch" else "n/a"
                growth = (f"{r['growth_traced_bytes'] / 1024:.0f} KiB" if c != "torch" else "n/a")
                rss = (f"{r['peak_rss_growth_kib'] / 1024:.1f}"
                       if r["peak_rss_growth_kib"] is not None else "–")
                lines.append(f"| {batch} | {c} | {r['seconds']:.3f} | {r['ms_per_step']:.3f} | "
                             f"{overhead} | {ratios} | {traced} | {growth} | {rss} |")
            else:
                lines.append(f"| {batch} | {c} | {r['seconds']:.4f} | {ratios} |")
    return "\n".join(lines)
