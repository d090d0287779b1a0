"""Memory of training the 784-512-256-10 MLP (mlp_epoch's setup: SGD with momentum): the peak of
an epoch for the compiled step, the eager step and the hand-written numpy loop, and a long run of
the compiled step to show it does not grow.

Not part of the test suite. Run from the repository root::

    python benchmarks/memory.py          # epochs at batch 64 and 256, then 10,000 steps
    python benchmarks/memory.py --growth-steps 2000 --growth-from 500 --batch-sizes 64

The contenders are ``mlp_epoch.py``'s (``benchmarks/contenders/``): ``tinygrad-jit``,
``tinygrad``, ``numpy``. Data: synthetic, ``--samples`` (default 42,000, mlp_epoch's epoch) x 784
standard-normal float32 images, made before anything is measured; an epoch is
``samples // batch`` steps. Each measurement runs in a fresh worker process.

What is measured, per worker (all of it excludes the data and the imports, which are in place
before the first reading):

- **traced** (tracemalloc: numpy's array buffers and every Python object): from before the model
  is built, through two epochs. ``epoch 1 peak``: the highest total allocated during the first
  epoch (model, optimiser state, gradients, activations, temporaries, and for the compiled step
  its two capturing calls and its plan's buffers); ``epoch 2 peak``: the same during the second
  epoch, a steady-state epoch (everything still held from epoch 1 counts); ``live after``: what
  is still allocated after epoch 2 (the training state the loop keeps between steps).
- **RSS** (``/proc/self/status``, the kernel's resident set, which also sees allocator caches
  and BLAS buffers that tracemalloc does not): the same two epochs on another fresh model, run
  first and without tracemalloc (whose own bookkeeping would inflate the resident set); the peak
  resident set (VmHWM, reset through ``/proc/self/clear_refs`` before the model is built and
  again before epoch 2) minus the resident set before the model. Memory the allocator kept after
  epoch 1 stays resident, so epoch 2's figure includes it. ``ru_maxrss`` (getrusage) is the process's lifetime
  peak, data and imports included; reported for reference only.

Growth (``--growth-steps``, default 10,000, of ``--growth-contenders``, default the compiled
step, at ``--growth-batch``, default 64): the traced total (after ``gc.collect()``) and the
resident set, every ``--growth-every`` steps; the readings after step ``--growth-from`` (default
1,000) and after the last step are reported, and their difference. This runs under tracemalloc.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import sys
import time

import harness
from contenders import load
from contenders.common import synthetic_data

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
NAMES = ("tinygrad-jit", "tinygrad", "numpy")


def _rss_kib(field: str) -> int:
    """``field`` of /proc/self/status in KiB, read without a Python file object: each text-mode
    ``open()`` leaves ~65 bytes traced behind (CPython 3.11), which the long run's readings every
    1,000 steps would report as growth."""
    fd = os.open("/proc/self/status", os.O_RDONLY)
    try:
        data = os.read(fd, 1 << 16)
    finally:
        os.close(fd)
    for line in data.split(b"\n"):
        if line.startswith(field.encode() + b":"):
            return int(line.split()[1])
    return 0


def _steps(run, n, per_epoch):
    """``n`` steps of ``run``, an epoch (at most ``per_epoch`` steps) at a time."""
    while n > 0:
        k = min(n, per_epoch)
        run(k)
        n -= k


def _traced_now(tracemalloc):
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def epoch_worker(args, contender, x, y) -> dict:
    import tracemalloc
    per_epoch = len(x) // args.batch
    result = {}

    # RSS: two epochs of a fresh model, no tracemalloc.
    gc.collect()
    rss0 = _rss_kib("VmRSS")
    have_hwm = harness._reset_peak_rss()
    run = contender.train(x, y, args.batch, args.seed)
    run(per_epoch)
    result["rss_epoch1_peak_kib"] = _rss_kib("VmHWM") - rss0 if have_hwm else None
    have_hwm = harness._reset_peak_rss()
    run(per_epoch)
    result["rss_epoch2_peak_kib"] = _rss_kib("VmHWM") - rss0 if have_hwm else None
    result["rss_live_after_kib"] = _rss_kib("VmRSS") - rss0
    _check_compiled(run, result)
    del run
    gc.collect()

    # Traced: two epochs of another fresh model, under tracemalloc.
    tracemalloc.start()
    base = _traced_now(tracemalloc)
    tracemalloc.reset_peak()
    run = contender.train(x, y, args.batch, args.seed)
    t0 = time.perf_counter()
    run(per_epoch)
    result["traced_epoch1_peak_bytes"] = tracemalloc.get_traced_memory()[1] - base
    result["traced_after_epoch1_bytes"] = _traced_now(tracemalloc) - base
    tracemalloc.reset_peak()
    run(per_epoch)
    result["traced_epoch2_peak_bytes"] = tracemalloc.get_traced_memory()[1] - base
    result["traced_live_after_bytes"] = _traced_now(tracemalloc) - base
    result["traced_seconds"] = time.perf_counter() - t0
    tracemalloc.stop()
    _check_compiled(run, result)
    return result


def growth_worker(args, contender, x, y) -> dict:
    import numpy as np
    import tracemalloc
    per_epoch = len(x) // args.batch
    marks = sorted({*range(args.growth_every, args.growth_steps + 1, args.growth_every),
                    args.growth_from, args.growth_steps})
    # The readings go into an array made before tracing starts: a list of dicts growing by one
    # per reading would itself show as growth.
    readings = np.zeros((len(marks), 2), dtype=np.int64)
    tracemalloc.start()
    base = _traced_now(tracemalloc)
    rss0 = _rss_kib("VmRSS")
    run = contender.train(x, y, args.batch, args.seed)
    done = 0
    t0 = time.perf_counter()
    for i, mark in enumerate(marks):
        _steps(run, mark - done, per_epoch)
        done = mark
        if mark == args.growth_from:
            tracemalloc.reset_peak()
        readings[i, 0] = _traced_now(tracemalloc) - base
        readings[i, 1] = _rss_kib("VmRSS") - rss0
    peak_since = tracemalloc.get_traced_memory()[1] - base
    seconds = time.perf_counter() - t0
    tracemalloc.stop()
    series = [{"step": m, "traced_bytes": int(t), "rss_kib": int(r)}
              for m, (t, r) in zip(marks, readings)]
    at = {s["step"]: s for s in series}
    first, last = at[args.growth_from], at[args.growth_steps]
    result = {"series": series, "seconds": seconds,
              "from_step": args.growth_from, "to_step": args.growth_steps,
              "traced_at_from_bytes": first["traced_bytes"],
              "traced_at_to_bytes": last["traced_bytes"],
              "traced_growth_bytes": last["traced_bytes"] - first["traced_bytes"],
              "traced_peak_after_from_bytes": peak_since,
              "rss_at_from_kib": first["rss_kib"], "rss_at_to_kib": last["rss_kib"],
              "rss_growth_kib": last["rss_kib"] - first["rss_kib"]}
    _check_compiled(run, result)
    return result


def _check_compiled(run, result):
    compiled = getattr(run, "compiled", None)
    if compiled is not None:
        result["replays"] = compiled.replays


def worker(args) -> dict:
    sys.path.insert(0, ROOT)  # the tinygrad_mlp of this checkout
    import tinygrad_mlp  # noqa: F401  (imported by every contender's worker: the same baseline)
    import tinygrad_mlp.data  # noqa: F401
    contender = load(args.worker)
    x, y = synthetic_data(args.samples, args.seed)
    result = {"contender": args.worker, "mode": args.mode, "batch": args.batch,
              "samples": args.samples, "blas": harness.blas_info()}
    if args.mode == "epoch":
        result.update(epoch_worker(args, contender, x, y))
    else:
        result.update(growth_worker(args, contender, x, y))
    result["ru_maxrss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return result


def spawn(args, contender, mode, batch) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", contender, "--mode", mode,
           "--batch", str(batch), "--samples", str(args.samples), "--seed", str(args.seed),
           "--growth-steps", str(args.growth_steps), "--growth-from", str(args.growth_from),
           "--growth-every", str(args.growth_every)]
    return harness.run_worker(cmd, args.threads, f"{contender} ({mode}, batch {batch})")


def _mib(b):
    return f"{b / 2**20:.1f}" if b is not None else "–"


def _median(runs, key):
    vals = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(vals) if vals else None


EPOCH_KEYS = ("traced_epoch1_peak_bytes", "traced_epoch2_peak_bytes", "traced_live_after_bytes",
              "rss_epoch1_peak_kib", "rss_epoch2_peak_kib", "ru_maxrss_kib")


def summarize_epochs(results, contenders) -> dict:
    table = {}
    for batch in sorted({r["batch"] for r in results}):
        rows = {}
        for c in contenders:
            runs = [r for r in results if r["batch"] == batch and r["contender"] == c]
            if runs:
                rows[c] = {"runs": len(runs), **{k: _median(runs, k) for k in EPOCH_KEYS}}
                rows[c]["spread"] = {k: [r.get(k) for r in runs] for k in EPOCH_KEYS}
        ref = rows.get("numpy")
        for row in rows.values():
            if ref:
                for k in EPOCH_KEYS[:2] + EPOCH_KEYS[3:5]:
                    if row[k] is not None and ref[k]:
                        row[f"{k}_ratio_to_numpy"] = row[k] / ref[k]
        table[batch] = rows
    return table


def markdown_epochs(table, note) -> str:
    lines = [f"Peak memory of an epoch {note} (MiB, medians; ratios to the hand-written loop)", "",
             "| batch | contender | traced epoch 1 peak | × numpy | traced epoch 2 peak | "
             "× numpy | traced live after | RSS epoch 1 peak | × numpy | RSS epoch 2 peak | "
             "× numpy | ru_maxrss (process) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]

    def ratio(r, k):
        v = r.get(f"{k}_ratio_to_numpy")
        return f"{v:.2f}×" if v is not None else "–"

    for batch, rows in table.items():
        for c, r in rows.items():
            kib = lambda k: _mib(r[k] * 1024 if r[k] is not None else None)  # noqa: E731
            lines.append(
                f"| {batch} | {c} | {_mib(r['traced_epoch1_peak_bytes'])} | "
                f"{ratio(r, 'traced_epoch1_peak_bytes')} | {_mib(r['traced_epoch2_peak_bytes'])} | "
                f"{ratio(r, 'traced_epoch2_peak_bytes')} | {_mib(r['traced_live_after_bytes'])} | "
                f"{kib('rss_epoch1_peak_kib')} | {ratio(r, 'rss_epoch1_peak_kib')} | "
                f"{kib('rss_epoch2_peak_kib')} | {ratio(r, 'rss_epoch2_peak_kib')} | "
                f"{kib('ru_maxrss_kib')} |")
    return "\n".join(lines)


def markdown_growth(results) -> str:
    lines = ["Growth over a long run (traced after gc.collect(), and RSS; from before the model)",
             "", "| batch | contender | steps | traced at first | traced at last | growth | "
             "traced peak between | RSS at first MiB | RSS at last MiB | RSS growth | replays |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(
            f"| {r['batch']} | {r['contender']} | {r['from_step']:,} → {r['to_step']:,} | "
            f"{r['traced_at_from_bytes'] / 2**20:.3f} MiB | {r['traced_at_to_bytes'] / 2**20:.3f} "
            f"MiB | {r['traced_growth_bytes']:+,} B | "
            f"{_mib(r['traced_peak_after_from_bytes'])} MiB | {r['rss_at_from_kib'] / 1024:.1f} | "
            f"{r['rss_at_to_kib'] / 1024:.1f} | {r['rss_growth_kib']:+,} KiB | "
            f"{r.get('replays', '–')} |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=1,
                   help="epoch workers per contender and batch size (default 1: the figures "
                        "hardly move between runs)")
    p.add_argument("--samples", type=int, default=42_000,
                   help="synthetic training images; an epoch is samples // batch steps "
                        "(default 42000, as mlp_epoch)")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256])
    p.add_argument("--contenders", nargs="+", default=list(NAMES), choices=NAMES)
    p.add_argument("--growth-contenders", nargs="*", default=["tinygrad-jit"], choices=NAMES,
                   help="contenders of the long run (default the compiled step; none: skip it)")
    p.add_argument("--growth-batch", type=int, default=64)
    p.add_argument("--growth-steps", type=int, default=10_000)
    p.add_argument("--growth-from", type=int, default=1_000)
    p.add_argument("--growth-every", type=int, default=1_000)
    p.add_argument("--threads", type=int, default=None,
                   help="threads for numpy's BLAS in the workers (default: as numpy's BLAS has)")
    p.add_argument("--json", default=os.path.join(HERE, "results", "memory.json"),
                   help="where to write the results (default benchmarks/results/memory.json)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--worker", choices=NAMES, help=argparse.SUPPRESS)
    p.add_argument("--mode", choices=("epoch", "growth"), default="epoch", help=argparse.SUPPRESS)
    p.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if not 0 < args.growth_from < args.growth_steps:
        p.error("--growth-from must be above 0 and below --growth-steps")
    if args.growth_every < 1:
        p.error("--growth-every must be at least 1")
    if min([args.samples, args.repeats, args.growth_batch, *args.batch_sizes]) < 1 or \
            args.samples < max([args.growth_batch, *args.batch_sizes]):
        p.error("--samples, --repeats and batch sizes must be positive, and --samples at least "
                "one batch")

    if args.worker:
        print(json.dumps(worker(args)))
        return

    info = harness.machine_info()
    info["data"] = f"synthetic, {args.samples} x 784 float32 (seed {args.seed})"
    epochs, growth = [], []
    for rep in range(args.repeats):
        for batch in args.batch_sizes:
            for c in args.contenders:
                r = spawn(args, c, "epoch", batch)
                epochs.append(r)
                print(f"  repeat {rep + 1}/{args.repeats} batch {batch:4d} {c:12s} traced peak "
                      f"{_mib(r['traced_epoch1_peak_bytes'])} / "
                      f"{_mib(r['traced_epoch2_peak_bytes'])} MiB", flush=True)
    for c in args.growth_contenders:
        r = spawn(args, c, "growth", args.growth_batch)
        growth.append(r)
        print(f"  growth {c:12s} {r['traced_growth_bytes']:+,} B traced, "
              f"{r['rss_growth_kib']:+,} KiB RSS ({r['seconds']:.0f} s)", flush=True)
    harness.note_load_end(info)
    any_run = (epochs or growth)
    info["blas"] = any_run[0]["blas"] if any_run else None
    report = {"machine": info, "args": {k: v for k, v in vars(args).items()
                                        if k not in ("worker", "mode", "batch")}}
    text = []
    if epochs:
        table = summarize_epochs(epochs, args.contenders)
        text.append(markdown_epochs(table, f"({args.samples // min(args.batch_sizes)}"
                                           f"-{args.samples // max(args.batch_sizes)} steps; "
                                           f"{args.samples:,} synthetic images), "
                                           f"{args.repeats} repeats"))
        report["epoch"], report["raw_epoch"] = table, epochs
    if growth:
        text.append(markdown_growth(growth))
        report["growth"] = growth
    print()
    print(harness.machine_line(info, info["data"]))
    print()
    print("\n\n".join(text))
    if args.json:
        harness.write_report(args.json, report)


if __name__ == "__main__":
    main()
