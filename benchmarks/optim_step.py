"""Time of one optimiser step (and of one loader epoch) on the 784-512-256-10 MLP.

Not part of the test suite. Each measurement runs in its own process; run two checkouts side by
side, alternating, to compare them::

    python benchmarks/optim_step.py --root . --what sgd
    python benchmarks/optim_step.py --root /path/to/other/checkout --what sgd

``--what``: ``sgd`` (SGD, momentum 0.9, weight decay 5e-4), ``adamw`` (AdamW defaults),
``loader-array`` (one shuffled epoch of ``DataLoader(x, y, 128)`` over 60,000 x 784 float32) or
``loader-dataset`` (the same over ``DataLoader(TensorDataset(x, y), 128)``). Prints the median
seconds per step (per epoch for the loaders) over ``--repeats`` runs, by the wall clock and by
the process's CPU time (the work is single-threaded numpy, so on a machine shared with other
jobs the CPU time is the steadier figure).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default=".")
    ap.add_argument("--what", choices=["sgd", "adamw", "loader-array", "loader-dataset"],
                    default="sgd")
    ap.add_argument("--number", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    sys.path.insert(0, args.root)
    import tinygrad_mlp as tg
    from tinygrad_mlp import nn, optim

    if args.what.startswith("loader"):
        from tinygrad_mlp.data import DataLoader
        rng = np.random.default_rng(0)
        x = rng.random((60000, 784), dtype=np.float32)
        y = rng.integers(0, 10, 60000)
        if args.what == "loader-array":
            loader = DataLoader(x, y, 128, shuffle=True, rng=0)
        else:
            from tinygrad_mlp.data import TensorDataset
            loader = DataLoader(TensorDataset(x, y), 128, shuffle=True, rng=0)

        def run():
            for _ in loader:
                pass
        number = 1
    else:
        model = nn.Sequential(nn.Linear(784, 512, rng=0), nn.ReLU(), nn.Linear(512, 256, rng=1),
                              nn.ReLU(), nn.Linear(256, 10, rng=2))
        params = list(model.parameters())
        if args.what == "sgd":
            opt = optim.SGD(params, lr=0.01, momentum=0.9, weight_decay=5e-4)
        else:
            opt = optim.AdamW(params, lr=1e-3)
        rng = np.random.default_rng(0)
        for p in params:
            p.grad = tg.Tensor((rng.standard_normal(p.shape) * 1e-3).astype(p.dtype))
        run = opt.step
        number = args.number
    run()
    wall, cpu = [], []
    for _ in range(args.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(number):
            run()
        wall.append((time.perf_counter() - t0) / number)
        cpu.append((time.process_time() - c0) / number)
    print(f"wall {statistics.median(wall):.6e} cpu {statistics.median(cpu):.6e}")


if __name__ == "__main__":
    main()
