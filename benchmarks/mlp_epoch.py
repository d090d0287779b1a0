"""One training epoch of a 784-512-256-10 MLP, side by side: tinygrad_mlp, PyTorch, a hand-written
numpy loop and the matrix products alone; and evaluation of the 10,000 test images.

Not part of the test suite. Run from the repository root::

    python benchmarks/mlp_epoch.py                      # full run (a few minutes)
    python benchmarks/mlp_epoch.py --repeats 3 --steps 100 --json /tmp/quick.json   # quick look

The contenders live in ``benchmarks/contenders/`` (one module each, with its model builder), the
measuring in ``benchmarks/harness.py``. Every measurement runs in a fresh worker process of its own, and the contenders alternate
(A B C D A B C D ...): PyTorch's OpenMP threads keep spinning after each op and would steal the
cores from numpy's BLAS threads if the two shared a process, and a machine that is busy with
something else slows whichever contender happens to run at that moment. Medians of the repeats
are reported, with ratios to PyTorch, to the hand-written loop and to the matrix products alone.

Contenders (training; each step = gather a shuffled batch, forward, loss, backward, update):

- ``tinygrad``: the public API (nn.Sequential/Linear/ReLU, functional.cross_entropy,
  optim.SGD with momentum, data.DataLoader).
- ``tinygrad-jit``: the same step compiled: forward, loss, zero_grad, backward and update in one
  function wrapped in ``tg.jit`` (captured during the warm-up steps, replayed in the timed ones;
  the worker refuses to report if it ran eagerly, and reports how many calls were replays).
- ``torch``: the same model and loop in PyTorch on the CPU (if installed), with as many threads
  as numpy's BLAS has.
- ``numpy``: forward, backward and update written by hand in float32 numpy: the floor for a
  numpy framework.
- ``matmul``: the matrix products of a step alone, on contiguous slices (the hardware floor).

Evaluation (10,000 test images in batches of ``--eval-batch``, softmax probabilities):
``tinygrad`` under no_grad, ``tinygrad-jit`` the same forward compiled, ``torch`` under
inference_mode, ``numpy`` by hand, and ``matmul``: the forward matrix products plus the softmax
only (no bias, no ReLU).

Memory: each worker also runs ``--mem-steps`` steps under tracemalloc (numpy contenders: peak
bytes allocated beyond what was live before the steps, and growth from step 2 to the last) and
reports the growth of the process's peak resident set (VmHWM, reset before the steps) for all.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

import numpy as np

import harness
from contenders import NAMES as CONTENDERS

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TRAIN_SAMPLES = 42_000


# ================================================================ data

def prepare_data(path: str) -> str:
    """Fashion-MNIST's first 42,000 shuffled training images and the 10,000 test images,
    normalised float32, saved to ``path`` (.npz); random data of the same shape if the data set is
    not found. Returns where the data came from."""
    sys.path.insert(0, ROOT)
    from tinygrad_mlp.data import fashion_mnist, loader
    try:
        ds = fashion_mnist.load_fashion_mnist(download=False)
    except fashion_mnist.FashionMNISTError:
        rng = np.random.default_rng(0)
        x = rng.standard_normal((TRAIN_SAMPLES, 784), dtype=np.float32)
        y = rng.integers(0, 10, TRAIN_SAMPLES)
        xt = rng.standard_normal((10_000, 784), dtype=np.float32)
        yt = rng.integers(0, 10, 10_000)
        source = "random (Fashion-MNIST not found)"
    else:
        images = loader.to_float(ds.train_images)
        x, y, _, _ = loader.train_val_split(images, ds.train_labels, 0.3, rng=0)
        mean, std = loader.fit_normalization(x)
        x = loader.normalize(x, mean, std)
        xt = loader.normalize(loader.to_float(ds.test_images), mean, std)
        yt = ds.test_labels
        source = "Fashion-MNIST"
    np.savez(path, x=x[:TRAIN_SAMPLES], y=y[:TRAIN_SAMPLES].astype(np.int64), xt=xt,
             yt=yt.astype(np.int64))
    return source


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=5, help="worker runs per contender (default 5)")
    p.add_argument("--steps", type=int, default=None,
                   help="training steps timed per run (default: one epoch, 42000 // batch)")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256])
    p.add_argument("--eval-batch", type=int, default=1000,
                   help="batch size for evaluating the 10,000 test images (default 1000)")
    p.add_argument("--warmup", type=int, default=10, help="untimed steps first (default 10)")
    p.add_argument("--mem-steps", type=int, default=20,
                   help="steps run under tracemalloc after timing (0: skip; default 20)")
    p.add_argument("--inner", type=int, default=3,
                   help="evaluation passes per worker, the fastest kept (default 3)")
    p.add_argument("--contenders", nargs="+", default=list(CONTENDERS), choices=CONTENDERS)
    p.add_argument("--no-eval", action="store_true", help="skip the evaluation benchmark")
    p.add_argument("--json", default=os.path.join(HERE, "results", "mlp_epoch.json"),
                   help="where to write the results (default benchmarks/results/mlp_epoch.json)")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for numpy's BLAS and PyTorch in the workers (default: as numpy's "
                        "BLAS has them; PyTorch gets the same number)")
    p.add_argument("--seed", type=int, default=0)
    # worker mode (internal)
    p.add_argument("--worker", choices=CONTENDERS, help=argparse.SUPPRESS)
    p.add_argument("--mode", choices=("train", "eval"), default="train", help=argparse.SUPPRESS)
    p.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.worker:
        print(json.dumps(harness.worker(args)))
        return

    contenders = list(args.contenders)
    if "torch" in contenders:
        try:
            import importlib.util
            if importlib.util.find_spec("torch") is None:
                raise ImportError
        except ImportError:
            print("PyTorch not installed: skipping it (pip install '.[bench]')", file=sys.stderr)
            contenders.remove("torch")

    def spawn(args, contender, mode, batch, steps):
        return harness.spawn(os.path.abspath(__file__), args, contender, mode, batch, steps)

    with tempfile.TemporaryDirectory() as tmp:
        args.data = os.path.join(tmp, "data.npz")
        source = prepare_data(args.data)
        info = harness.machine_info()
        info["data"] = source
        info["blas"] = spawn(args, "matmul", "eval", args.eval_batch, 0)["blas"]
        print(f"# {info['cpu']}, {info['cores']} cores; numpy {info['numpy']}; "
              f"BLAS in the workers {info['blas']}; torch {info['torch']}; data: {source}",
              flush=True)
        print(f"# env: {info['env']}; load average at start: {info.get('loadavg_start')}",
              flush=True)
        train, evals = [], []
        for rep in range(args.repeats):
            for batch in args.batch_sizes:
                steps = args.steps or TRAIN_SAMPLES // batch
                for c in contenders:  # A B C D, A B C D, ...
                    r = spawn(args, c, "train", batch, steps)
                    train.append(r)
                    print(f"  repeat {rep + 1}/{args.repeats} batch {batch:4d} {c:12s} "
                          f"{r['seconds']:.3f} s ({r['ms_per_step']:.3f} ms/step)", flush=True)
            if not args.no_eval:
                for c in contenders:
                    r = spawn(args, c, "eval", args.eval_batch, 0)
                    evals.append(r)
                    print(f"  repeat {rep + 1}/{args.repeats} eval {c:12s} {r['seconds']:.4f} s",
                          flush=True)
        harness.note_load_end(info)

    steps_note = (f"({args.steps} steps per run)" if args.steps else
                  f"({TRAIN_SAMPLES:,} images)") + f", {args.repeats} repeats"
    train_table = harness.summarize(train, contenders, "train")
    text = [harness.markdown(train_table, "train", steps_note)]
    report = {"machine": info, "args": {k: v for k, v in vars(args).items()
                                        if k not in ("worker", "mode", "batch", "data")},
              "train": train_table, "raw_train": train}
    if evals:
        eval_table = harness.summarize(evals, contenders, "eval")
        text.append(harness.markdown(eval_table, "eval", f"(batches of {args.eval_batch}), "
                             f"{args.repeats} repeats"))
        report["eval"], report["raw_eval"] = eval_table, evals
    print()
    torch_threads = next((r["torch_threads"] for r in train if "torch_threads" in r), None)
    print(harness.machine_line(info, source, torch_threads))
    print()
    print("\n\n".join(text))
    if args.json:
        harness.write_report(args.json, report)


if __name__ == "__main__":
    main()
