"""One training epoch of a 784-512-256-10 MLP, side by side: tinygrad_mlp, PyTorch, a hand-written
numpy loop and the matrix products alone; and evaluation of the 10,000 test images.

Not part of the test suite. Run from the repository root::

    python benchmarks/mlp_epoch.py                      # full run (a few minutes)
    python benchmarks/mlp_epoch.py --repeats 3 --steps 100 --json /tmp/quick.json   # quick look

Every measurement runs in a fresh worker process of its own, and the contenders alternate
(A B C D A B C D ...): PyTorch's OpenMP threads keep spinning after each op and would steal the
cores from numpy's BLAS threads if the two shared a process, and a machine that is busy with
something else slows whichever contender happens to run at that moment. Medians of the repeats
are reported, with ratios to PyTorch, to the hand-written loop and to the matrix products alone.

Contenders (training; each step = gather a shuffled batch, forward, loss, backward, update):

- ``tinygrad``: the public API (nn.Sequential/Linear/ReLU, functional.cross_entropy,
  optim.SGD with momentum, data.DataLoader).
- ``torch``: the same model and loop in PyTorch on the CPU (if installed), with as many threads
  as numpy's BLAS has.
- ``numpy``: forward, backward and update written by hand in float32 numpy: the floor for a
  numpy framework.
- ``matmul``: the matrix products of a step alone, on contiguous slices (the hardware floor).

Evaluation (10,000 test images in batches of ``--eval-batch``, softmax probabilities):
``tinygrad`` under no_grad, ``torch`` under inference_mode, ``numpy`` by hand, and ``matmul``:
the forward matrix products plus the softmax only (no bias, no ReLU).

Memory: each worker also runs ``--mem-steps`` steps under tracemalloc (numpy contenders: peak
bytes allocated beyond what was live before the steps, and growth from step 2 to the last) and
reports the growth of the process's peak resident set (VmHWM, reset before the steps) for all.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SIZES = (784, 512, 256, 10)
TRAIN_SAMPLES = 42_000
LR, MOMENTUM = 0.01, 0.9
CONTENDERS = ("tinygrad", "torch", "numpy", "matmul")


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


def init_weights(rng):
    """PyTorch's default Linear initialisation, as (out, in) float32 weights and biases."""
    out = []
    for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:]):
        bound = 1.0 / np.sqrt(fan_in)
        w = rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32)
        b = rng.uniform(-bound, bound, fan_out).astype(np.float32)
        out.append((w, b))
    return out


def tinygrad_model(seed):
    """The benchmark MLP in tinygrad_mlp, with the weights every contender starts from."""
    sys.path.insert(0, ROOT)
    from tinygrad_mlp import nn
    model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(),
                          nn.Linear(256, 10))
    for (w, b), layer in zip(init_weights(np.random.default_rng(seed)), model[::2]):
        layer.weight.data[...] = w
        layer.bias.data[...] = b
    return model


# ================================================================ contenders: training

def train_tinygrad(x, y, batch, warmup, steps, seed):
    sys.path.insert(0, ROOT)
    from tinygrad_mlp import functional as F, optim
    from tinygrad_mlp.data import DataLoader

    model = tinygrad_model(seed)
    opt = optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    loader = DataLoader(x, y, batch, shuffle=True, drop_last=True, rng=seed)

    def run(n):
        loss = None
        for i, (xb, yb) in enumerate(loader):
            if i == n:
                break
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return float(loss.item())
    return run


def train_torch(x, y, batch, warmup, steps, seed):
    import torch
    torch.set_num_threads(_blas_threads())
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.ReLU(),
                                torch.nn.Linear(512, 256), torch.nn.ReLU(),
                                torch.nn.Linear(256, 10))
    with torch.no_grad():
        for (w, b), layer in zip(init_weights(np.random.default_rng(seed)), model[::2]):
            layer.weight.copy_(torch.from_numpy(w))
            layer.bias.copy_(torch.from_numpy(b))
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    rng = np.random.default_rng(seed)
    loss_fn = torch.nn.functional.cross_entropy

    def run(n):
        order = torch.from_numpy(rng.permutation(len(x)))
        loss = None
        for i in range(min(n, len(x) // batch)):
            idx = order[i * batch:(i + 1) * batch]
            xb, yb = xt[idx], yt[idx]
            loss = loss_fn(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return float(loss.item())
    return run


def train_numpy(x, y, batch, warmup, steps, seed):
    """Forward, backward and SGD-momentum update by hand, float32 throughout. Weights are stored
    (in, out) so that every product reads its operands row-major."""
    params = []
    for w, b in init_weights(np.random.default_rng(seed)):
        params += [np.ascontiguousarray(w.T), b]
    bufs = [np.zeros_like(p) for p in params]
    rng = np.random.default_rng(seed)

    def step(xb, yb):
        w1, b1, w2, b2, w3, b3 = params
        n = len(xb)
        h1 = xb @ w1
        h1 += b1
        np.maximum(h1, 0, out=h1)
        h2 = h1 @ w2
        h2 += b2
        np.maximum(h2, 0, out=h2)
        z = h2 @ w3
        z += b3
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        rows = np.arange(n)
        loss = -np.log(z[rows, yb]).mean()
        dz = z
        dz[rows, yb] -= 1
        dz *= np.float32(1.0 / n)
        grads = [None] * 6
        grads[4], grads[5] = h2.T @ dz, dz.sum(axis=0)
        dh2 = dz @ w3.T
        dh2 *= h2 > 0
        grads[2], grads[3] = h1.T @ dh2, dh2.sum(axis=0)
        dh1 = dh2 @ w2.T
        dh1 *= h1 > 0
        grads[0], grads[1] = xb.T @ dh1, dh1.sum(axis=0)
        for p, buf, g in zip(params, bufs, grads):
            buf *= MOMENTUM
            buf += g
            p -= LR * buf
        return loss

    def run(n):
        order = rng.permutation(len(x))
        loss = None
        for i in range(min(n, len(x) // batch)):
            idx = order[i * batch:(i + 1) * batch]
            loss = step(x[idx], y[idx])
        return float(loss)
    return run


def train_matmul(x, y, batch, warmup, steps, seed):
    """The eight matrix products of a step (three forward; two per layer backward, minus the
    input's gradient), on contiguous slices, into preallocated outputs."""
    ws = [np.ascontiguousarray(w.T) for w, _ in init_weights(np.random.default_rng(seed))]
    h = [np.empty((batch, m), np.float32) for m in SIZES[1:]]
    d = [np.empty((batch, m), np.float32) for m in SIZES[1:]]
    gw = [np.empty_like(w) for w in ws]
    for a in h + d:
        a[...] = 0.01

    def run(n):
        for i in range(min(n, len(x) // batch)):
            xb = x[i * batch:(i + 1) * batch]
            np.matmul(xb, ws[0], out=h[0])
            np.matmul(h[0], ws[1], out=h[1])
            np.matmul(h[1], ws[2], out=h[2])
            np.matmul(h[1].T, d[2], out=gw[2])
            np.matmul(d[2], ws[2].T, out=d[1])
            np.matmul(h[0].T, d[1], out=gw[1])
            np.matmul(d[1], ws[1].T, out=d[0])
            np.matmul(xb.T, d[0], out=gw[0])
        return 0.0
    return run


# ================================================================ contenders: evaluation

def eval_tinygrad(xt, batch, seed):
    sys.path.insert(0, ROOT)
    import tinygrad_mlp as tg
    model = tinygrad_model(seed)
    model.eval()

    def run():
        out = []
        with tg.no_grad():
            for lo in range(0, len(xt), batch):
                out.append(model(tg.Tensor(xt[lo:lo + batch])).softmax(axis=1).data)
        return out
    return run


def eval_torch(xt, batch, seed):
    import torch
    torch.set_num_threads(_blas_threads())
    model = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.ReLU(),
                                torch.nn.Linear(512, 256), torch.nn.ReLU(),
                                torch.nn.Linear(256, 10))
    with torch.no_grad():
        for (w, b), layer in zip(init_weights(np.random.default_rng(seed)), model[::2]):
            layer.weight.copy_(torch.from_numpy(w))
            layer.bias.copy_(torch.from_numpy(b))
    model.eval()
    xs = torch.from_numpy(xt)

    def run():
        out = []
        with torch.inference_mode():
            for lo in range(0, len(xt), batch):
                out.append(torch.softmax(model(xs[lo:lo + batch]), dim=1))
        return out
    return run


def _softmax_(z):
    z -= z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def eval_numpy(xt, batch, seed):
    params = [(np.ascontiguousarray(w.T), b) for w, b in init_weights(np.random.default_rng(seed))]

    def run():
        out = []
        for lo in range(0, len(xt), batch):
            h = xt[lo:lo + batch]
            for i, (w, b) in enumerate(params):
                h = h @ w
                h += b
                if i < 2:
                    np.maximum(h, 0, out=h)
            out.append(_softmax_(h))
        return out
    return run


def eval_matmul(xt, batch, seed):
    ws = [np.ascontiguousarray(w.T) for w, _ in init_weights(np.random.default_rng(seed))]

    def run():
        out = []
        for lo in range(0, len(xt), batch):
            h = xt[lo:lo + batch]
            for w in ws:
                h = h @ w
            out.append(_softmax_(h))
        return out
    return run


# ================================================================ worker

def _blas_threads() -> int:
    try:
        from threadpoolctl import threadpool_info
        n = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
        if n:
            return int(n[0])
    except ImportError:
        pass
    return os.cpu_count() or 1


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


def _blas_info():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed"
    return [{k: i.get(k) for k in ("internal_api", "version", "architecture", "num_threads",
                                   "threading_layer")}
            for i in threadpool_info() if i["user_api"] == "blas"]


def worker(args) -> dict:
    data = np.load(args.data)
    result = {"contender": args.worker, "mode": args.mode, "batch": args.batch,
              "blas": _blas_info()}
    if args.worker == "torch":
        import torch  # noqa: F401  (loaded first, so threadpoolctl sees the threads it runs)
        result["torch_threads"] = _blas_threads()
    if args.mode == "eval":
        make = globals()["eval_" + args.worker]
        run = make(data["xt"], args.batch, args.seed)
        run()  # warm up
        times = []
        for _ in range(args.inner):
            t0 = time.perf_counter()
            run()
            times.append(time.perf_counter() - t0)
        result["seconds"] = min(times)
        return result

    x, y = data["x"], data["y"]
    make = globals()["train_" + args.worker]
    run = make(x, y, args.batch, args.warmup, args.steps, args.seed)
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


# ================================================================ driver

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
    info["blas_driver"] = _blas_info()  # the workers report their own (see --threads)
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


def spawn(args, contender: str, mode: str, batch: int, steps: int) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", contender, "--mode", mode,
           "--batch", str(batch), "--steps", str(steps), "--warmup", str(args.warmup),
           "--mem-steps", str(args.mem_steps), "--data", args.data, "--seed", str(args.seed),
           "--inner", str(args.inner)]
    env = dict(os.environ)
    if args.threads:
        env["OPENBLAS_NUM_THREADS"] = env["OMP_NUM_THREADS"] = str(args.threads)
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"worker {contender} ({mode}, batch {batch}) failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _median(runs, key):
    vals = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def _fmt_ratio(a, b):
    return f"{a / b:.2f}×" if a and b else "–"


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
        print(json.dumps(worker(args)))
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

    with tempfile.TemporaryDirectory() as tmp:
        args.data = os.path.join(tmp, "data.npz")
        source = prepare_data(args.data)
        info = machine_info()
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
                    print(f"  repeat {rep + 1}/{args.repeats} batch {batch:4d} {c:9s} "
                          f"{r['seconds']:.3f} s ({r['ms_per_step']:.3f} ms/step)", flush=True)
            if not args.no_eval:
                for c in contenders:
                    r = spawn(args, c, "eval", args.eval_batch, 0)
                    evals.append(r)
                    print(f"  repeat {rep + 1}/{args.repeats} eval {c:9s} {r['seconds']:.4f} s",
                          flush=True)
        try:
            info["loadavg_end"] = os.getloadavg()
        except OSError:
            pass

    steps_note = (f"({args.steps} steps per run)" if args.steps else
                  f"({TRAIN_SAMPLES:,} images)") + f", {args.repeats} repeats"
    train_table = summarize(train, contenders, "train")
    text = [markdown(train_table, "train", steps_note)]
    report = {"machine": info, "args": {k: v for k, v in vars(args).items()
                                        if k not in ("worker", "mode", "batch", "data")},
              "train": train_table, "raw_train": train}
    if evals:
        eval_table = summarize(evals, contenders, "eval")
        text.append(markdown(eval_table, "eval", f"(batches of {args.eval_batch}), "
                             f"{args.repeats} repeats"))
        report["eval"], report["raw_eval"] = eval_table, evals
    blas = info["blas"][0] if isinstance(info["blas"], list) and info["blas"] else {}
    print()
    torch_threads = next((r["torch_threads"] for r in train if "torch_threads" in r), None)
    print(f"Machine: {info['cpu']}, {info['cores']} cores; numpy {info['numpy']} with "
          f"{blas.get('internal_api')} {blas.get('version')} ({blas.get('architecture')} kernel, "
          f"{blas.get('num_threads')} threads); PyTorch (version, default threads, capability) "
          f"{info['torch']}, run with {torch_threads} threads; data: {source}; load "
          f"average {info.get('loadavg_start')} -> {info.get('loadavg_end')}")
    print()
    print("\n\n".join(text))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1, default=str)
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
