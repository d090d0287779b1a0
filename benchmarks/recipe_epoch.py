"""One training epoch of the example's recipe (examples/fashion_mlp.py's default model and step),
side by side: tinygrad_mlp compiled (``tg.jit``), eager, through ``training.fit``, and PyTorch.

Not part of the test suite. Run from the repository root::

    python benchmarks/recipe_epoch.py                       # 5 repeats of a 60,000-image epoch
    python benchmarks/recipe_epoch.py --repeats 2 --samples 12800 --json /tmp/quick.json

The recipe (``benchmarks/contenders/recipe.py``; a test keeps it equal to the example's
``DEFAULTS``): 784-512-256-10, ReLU and Dropout(0.2) after each hidden layer, AdamW (lr 1e-3,
weight decay 1e-2), cross-entropy with label smoothing 0.1, batches of 64; every step reads its
loss and counts correct predictions, as ``fit`` does. The data is synthetic, of Fashion-MNIST's
training shape: ``--samples`` (default 60,000) x 784 standard-normal float32 images with uniform
labels, made from ``--seed`` in each worker. An epoch is ``samples // batch`` steps (the last,
partial batch is dropped: 937 steps of 64 for 60,000 images).

Contenders:

- ``tinygrad-jit``: the step (forward, loss, zero_grad, backward, AdamW step) in ``tg.jit``,
  captured during the warm-up steps and replayed in the timed epoch (the worker refuses to
  report a run that fell back to eager).
- ``tinygrad``: the same step, eager.
- ``tinygrad-fit``: ``training.fit(..., compile=True)`` for one epoch, as the example trains
  (no validation, checkpoint or progress). ``fit`` captures its step afresh at the start of
  every epoch, so its two capturing steps are inside the timed epoch.
- ``torch``: the same model, weights, loss and optimiser in PyTorch on the CPU, with as many
  threads as numpy's BLAS has.

Each measurement runs in a fresh worker process, the contenders alternating (A B C D A B C D
...), for the reasons in ``mlp_epoch.py``. Medians of the repeats are reported, with ratios to
PyTorch and to the eager step.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import harness
from contenders import recipe
from contenders.common import synthetic_data

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
NAMES = recipe.NAMES


def worker(args) -> dict:
    sys.path.insert(0, ROOT)  # the tinygrad_mlp of this checkout
    x, y = synthetic_data(args.samples, args.seed)
    result = {"contender": args.worker, "batch": args.batch, "blas": harness.blas_info()}
    if args.worker == "torch":
        import torch  # noqa: F401  (loaded first, so threadpoolctl sees the threads it runs)
        from contenders import common
        result["torch_threads"] = common.blas_threads()
    run = recipe.train(args.worker, x, y, args.batch, args.seed)
    steps = len(x) // args.batch
    rss_before = harness._rss_kib("VmRSS")
    have_hwm = harness._reset_peak_rss()
    run(args.warmup)
    t0 = time.perf_counter()
    stats = run(steps)
    seconds = time.perf_counter() - t0
    result.update(stats)
    result["peak_rss_growth_kib"] = harness._rss_kib("VmHWM") - rss_before if have_hwm else None
    result["seconds"] = seconds
    result["ms_per_step"] = 1e3 * seconds / stats["steps"]
    compiled = getattr(run, "compiled", None)
    if compiled is not None:
        result["replays"] = compiled.replays
    return result


def spawn(args, contender: str) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", contender,
           "--batch", str(args.batch), "--samples", str(args.samples),
           "--warmup", str(args.warmup), "--seed", str(args.seed)]
    return harness.run_worker(cmd, args.threads, contender)


def summarize(results, contenders) -> dict:
    rows = {}
    for c in contenders:
        runs = [r for r in results if r["contender"] == c]
        if not runs:
            continue
        rows[c] = {"runs": len(runs), "seconds": harness._median(runs, "seconds"),
                   "all_seconds": [r["seconds"] for r in runs],
                   "ms_per_step": harness._median(runs, "ms_per_step"),
                   "steps": runs[0]["steps"],
                   "mean_loss": harness._median(runs, "mean_loss"),
                   "accuracy": harness._median(runs, "accuracy"),
                   "peak_rss_growth_kib": harness._median(runs, "peak_rss_growth_kib")}
        if any("replays" in r for r in runs):
            rows[c]["replays"] = min(r.get("replays", 0) for r in runs)
    for row in rows.values():
        for ref in ("torch", "tinygrad"):
            if ref in rows:
                row[f"ratio_to_{ref}"] = row["seconds"] / rows[ref]["seconds"]
    return rows


def markdown(rows, note) -> str:
    lines = [f"The example's recipe, one epoch {note} (median seconds; ratios of medians)", "",
             "| contender | s/epoch | ms/step | × torch | × tinygrad (eager) | mean loss | "
             "peak RSS MiB | replays |",
             "|---|---|---|---|---|---|---|---|"]
    for c, r in rows.items():
        ratios = " | ".join(f"{r[f'ratio_to_{ref}']:.2f}×" if f"ratio_to_{ref}" in r else "–"
                            for ref in ("torch", "tinygrad"))
        rss = (f"{r['peak_rss_growth_kib'] / 1024:.1f}" if r["peak_rss_growth_kib"] is not None
               else "–")
        lines.append(f"| {c} | {r['seconds']:.3f} | {r['ms_per_step']:.3f} | {ratios} | "
                     f"{r['mean_loss']:.4f} | {rss} | {r.get('replays', '–')} |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=5, help="worker runs per contender (default 5)")
    p.add_argument("--samples", type=int, default=60_000,
                   help="synthetic training images; an epoch is samples // batch steps "
                        "(default 60000, Fashion-MNIST's training set)")
    p.add_argument("--batch", type=int, default=recipe.RECIPE["batch_size"],
                   help="batch size (default 64, the example's)")
    p.add_argument("--warmup", type=int, default=10, help="untimed steps first (default 10)")
    p.add_argument("--contenders", nargs="+", default=list(NAMES), choices=NAMES)
    p.add_argument("--threads", type=int, default=None,
                   help="threads for numpy's BLAS and PyTorch in the workers (default: as numpy's "
                        "BLAS has them; PyTorch gets the same number)")
    p.add_argument("--json", default=os.path.join(HERE, "results", "recipe_epoch.json"),
                   help="where to write the results (default benchmarks/results/recipe_epoch.json)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--worker", choices=NAMES, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    for name in ("repeats", "samples", "batch"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be at least 1")
    if args.warmup < 2:
        p.error("--warmup must be at least 2 (tg.jit captures on the first two calls)")
    if args.samples < args.batch:
        p.error(f"--samples ({args.samples}) must be at least one batch ({args.batch})")

    if args.worker:
        print(json.dumps(worker(args)))
        return

    contenders = list(args.contenders)
    if "torch" in contenders:
        import importlib.util
        if importlib.util.find_spec("torch") is None:
            print("PyTorch not installed: skipping it (pip install '.[bench]')", file=sys.stderr)
            contenders.remove("torch")

    info = harness.machine_info()
    info["data"] = f"synthetic, {args.samples} x 784 float32 (seed {args.seed})"
    steps = args.samples // args.batch
    results = []
    for rep in range(args.repeats):
        for c in contenders:  # A B C D, A B C D, ...
            r = spawn(args, c)
            results.append(r)
            print(f"  repeat {rep + 1}/{args.repeats} {c:12s} {r['seconds']:.3f} s "
                  f"({r['ms_per_step']:.3f} ms/step)", flush=True)
    harness.note_load_end(info)
    info["blas"] = results[0]["blas"]
    rows = summarize(results, contenders)
    note = (f"({steps} steps of {args.batch}, {steps * args.batch:,} synthetic images), "
            f"{args.repeats} repeats")
    torch_threads = next((r["torch_threads"] for r in results if "torch_threads" in r), None)
    print()
    print(harness.machine_line(info, info["data"], torch_threads, env=info["env"]))
    print()
    print(markdown(rows, note))
    if args.json:
        report = {"machine": info, "args": {k: v for k, v in vars(args).items()
                                            if k != "worker"},
                  "recipe": recipe.RECIPE, "train": rows, "raw_train": results}
        harness.write_report(args.json, report)


if __name__ == "__main__":
    main()
