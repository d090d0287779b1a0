"""Per-op overhead of tinygrad_mlp, and the backward time of long chains.

Not part of the test suite. Run from the repository root::

    python benchmarks/ops.py                 # a few seconds
    python benchmarks/ops.py --json /tmp/ops.json

1. Dispatch overhead: for a few ops on tiny float32 arrays (where the arithmetic costs next to
   nothing), the time of the op in tinygrad_mlp (forward only, under no_grad, and forward plus
   backward through a graph) against the bare numpy call. The difference is what the framework
   adds per op.
2. A chain ``x * c * c * ...`` of 10,000 and of 100,000 ops: the time of ``backward()``. The
   engine walks the graph with an explicit stack, so the time per op should not depend on the
   length: the 100k/10k ratio should be about 10.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import tinygrad_mlp as tg  # noqa: E402


def best_of(fn, number: int, repeats: int) -> float:
    """Median over ``repeats`` of the mean seconds per call over ``number`` calls."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - t0) / number)
    return statistics.median(times)


def dispatch(number: int, repeats: int) -> list:
    a_np = np.ones((4, 4), np.float32)
    b_np = np.full((4, 4), 2.0, np.float32)
    row_np = np.ones(4, np.float32)
    a = tg.Tensor(a_np, requires_grad=True)
    b = tg.Tensor(b_np, requires_grad=True)
    row = tg.Tensor(row_np, requires_grad=True)
    cases = [
        ("add", lambda: a + b, lambda: a_np + b_np),
        ("mul", lambda: a * b, lambda: a_np * b_np),
        ("add (broadcast bias)", lambda: a + row, lambda: a_np + row_np),
        ("matmul", lambda: a @ b, lambda: a_np @ b_np),
        ("exp", lambda: a.exp(), lambda: np.exp(a_np)),
        ("sum(axis=1)", lambda: a.sum(axis=1), lambda: a_np.sum(axis=1)),
        ("relu", lambda: a.relu(), lambda: a_np * (a_np > 0)),
        ("transpose", lambda: a.T, lambda: a_np.T),
    ]
    rows = []
    for name, op, bare in cases:
        t_np = best_of(bare, number, repeats)
        with tg.no_grad():
            t_fwd = best_of(op, number, repeats)

        def fwd_bwd():
            out = op()
            out.backward(tg.ones_like(out))

        t_graph_fwd = best_of(op, number, repeats)
        t_both = best_of(fwd_bwd, number, repeats)
        a.grad = b.grad = row.grad = None
        rows.append({"op": name, "numpy_us": 1e6 * t_np, "no_grad_us": 1e6 * t_fwd,
                     "recorded_forward_us": 1e6 * t_graph_fwd,
                     "forward_backward_us": 1e6 * t_both})
    return rows


def chain(length: int, repeats: int) -> dict:
    c = np.float32(1.0)
    back, fwd = [], []
    for _ in range(repeats):
        x = tg.Tensor(np.ones(4, np.float32), requires_grad=True)
        t0 = time.perf_counter()
        y = x
        for _ in range(length):
            y = y * c
        loss = y.sum()
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        fwd.append(t1 - t0)
        back.append(t2 - t1)
        del y, loss
    return {"length": length, "forward_s": statistics.median(fwd),
            "backward_s": statistics.median(back),
            "backward_us_per_op": 1e6 * statistics.median(back) / length}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--number", type=int, default=2000, help="calls per timing (default 2000)")
    p.add_argument("--repeats", type=int, default=7, help="timings per op (default 7)")
    p.add_argument("--json", default=None, help="also write the results here")
    args = p.parse_args(argv)

    rows = dispatch(args.number, args.repeats)
    print("Per-op cost on (4, 4) float32 arrays, µs per call (median of "
          f"{args.repeats} × {args.number} calls)\n")
    print("| op | numpy | tinygrad, no_grad | tinygrad, recorded | recorded + backward |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['op']} | {r['numpy_us']:.2f} | {r['no_grad_us']:.2f} | "
              f"{r['recorded_forward_us']:.2f} | {r['forward_backward_us']:.2f} |")

    chains = [chain(n, max(3, args.repeats // 2)) for n in (10_000, 100_000)]
    ratio = chains[1]["backward_s"] / chains[0]["backward_s"]
    print("\nBackward of a chain of multiplications (median of "
          f"{max(3, args.repeats // 2)})\n")
    print("| ops | forward s | backward s | backward µs/op |")
    print("|---|---|---|---|")
    for c in chains:
        print(f"| {c['length']:,} | {c['forward_s']:.3f} | {c['backward_s']:.3f} | "
              f"{c['backward_us_per_op']:.2f} |")
    print(f"\nbackward 100k / 10k = {ratio:.1f} (linear: 10)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"dispatch": rows, "chain": chains, "chain_ratio": ratio}, f, indent=1)


if __name__ == "__main__":
    main()
