"""Inference time per image: the Fashion-MNIST model run by tinygrad_mlp and by onnxruntime.

Both contenders do the same work, pixels in [0, 1] to class probabilities (preprocessing, the
MLP, softmax): tinygrad_mlp as ``--predict`` does (numpy preprocessing, the model's forward under
``no_grad``, numpy softmax), onnxruntime on the graph ``--export-onnx`` writes. Each measurement
runs in its own process, the contenders alternating (A B A B ...); the median of the rounds is
reported, for one image at a time and for batches of 1,000. The agreement of the two on the
test set (max abs difference of the probabilities) is measured too when the data is installed.

    python benchmarks/onnx_inference.py [--model runs/.../model.npz] [--rounds 5]

Without --model, a model of the default architecture (784-512-256-10) with random weights is
used: the time does not depend on the weights.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))


def _modules():
    import fashion_mlp  # noqa: F401  (registers fashion_deploy too)
    import fashion_deploy
    return fashion_mlp, fashion_deploy


def worker(contender: str, model_path: str, onnx_path: str, batch: int, repeat: int,
           threads: int) -> dict:
    fashion_mlp, deploy = _modules()
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (batch, 784)).astype(np.float32)
    if contender == "tinygrad_mlp":
        model, meta = deploy.load_model(model_path, fashion_mlp.build_model, fashion_mlp.DEFAULTS)
        run = lambda: deploy.predict_arrays(model, meta, x)  # noqa: E731
    else:
        import onnxruntime as ort
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = options.inter_op_num_threads = threads
        session = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
        run = lambda: session.run(None, {"image": x})  # noqa: E731
    for _ in range(max(3, repeat // 10)):
        run()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return {"per_image_us": float(np.median(times)) / batch * 1e6}


def agreement(model_path: str, onnx_path: str):
    fashion_mlp, deploy = _modules()
    try:
        from tinygrad_mlp.data import load_fashion_mnist, to_float
        ds = load_fashion_mnist(download=False)
    except Exception as e:  # the data set is optional here
        return {"skipped": str(e).splitlines()[0]}
    import onnxruntime as ort
    x = to_float(ds.test_images)
    model, meta = deploy.load_model(model_path, fashion_mlp.build_model, fashion_mlp.DEFAULTS)
    ours = deploy.predict_arrays(model, meta, x)
    session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    theirs, = session.run(None, {"image": x})
    return {"images": len(x), "max_abs_diff": float(np.abs(ours - theirs).max()),
            "same_top1": float(np.mean(ours.argmax(1) == theirs.argmax(1))),
            "accuracy_tinygrad_mlp": float(np.mean(ours.argmax(1) == ds.test_labels)),
            "accuracy_onnxruntime": float(np.mean(theirs.argmax(1) == ds.test_labels))}


def blas() -> str:
    try:
        from threadpoolctl import threadpool_info
        return ", ".join(f"{i['internal_api']} {i.get('architecture', '')} "
                         f"{i['num_threads']} threads" for i in threadpool_info())
    except ImportError:
        return "unknown (threadpoolctl not installed)"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="a model.npz of fashion_mlp.py (default: random weights)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=0,
                   help="threads for both (BLAS and onnxruntime); 0: their defaults")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "onnx_inference.json"))
    p.add_argument("--worker", choices=["tinygrad_mlp", "onnxruntime"], help=argparse.SUPPRESS)
    p.add_argument("--batch", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--repeat", type=int, default=200, help=argparse.SUPPRESS)
    p.add_argument("--onnx", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.model, args.onnx, args.batch, args.repeat,
                                args.threads)))
        return 0

    fashion_mlp, deploy = _modules()
    with tempfile.TemporaryDirectory() as tmp:
        model_path = args.model
        if model_path is None:
            model_path = os.path.join(tmp, "model.npz")
            config = dict(fashion_mlp.DEFAULTS)
            model = fashion_mlp.build_model(config, np.random.default_rng(0))
            deploy.save_model(model_path, model, config,
                              {"method": "normalize", "mean": 0.286, "std": 0.353})
        onnx_path = os.path.join(tmp, "model.onnx")
        model, meta = deploy.load_model(model_path, fashion_mlp.build_model, fashion_mlp.DEFAULTS)
        deploy.export_onnx(model, meta, onnx_path)
        results = {}
        env = dict(os.environ)
        if args.threads:  # read by OpenBLAS/OpenMP when the worker starts
            env.update(OPENBLAS_NUM_THREADS=str(args.threads), OMP_NUM_THREADS=str(args.threads))
        for batch, repeat in ((1, 2000), (1000, 20)):
            for _ in range(args.rounds):
                for contender in ("tinygrad_mlp", "onnxruntime"):
                    out = subprocess.run(
                        [sys.executable, __file__, "--worker", contender, "--model", model_path,
                         "--onnx", onnx_path, "--batch", str(batch), "--repeat", str(repeat),
                         "--threads", str(args.threads)],
                        capture_output=True, text=True, check=True, env=env)
                    results.setdefault((batch, contender), []).append(
                        json.loads(out.stdout)["per_image_us"])
        check = agreement(model_path, onnx_path)

    summary = {"cpu": cpu_model(), "blas": blas(), "rounds": args.rounds,
               "threads": args.threads or "defaults",
               "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
               "model": args.model or "default architecture, random weights", "agreement": check,
               "per_image_us": {}}
    print(f"CPU: {summary['cpu']}; BLAS: {summary['blas']}; threads: {summary['threads']}; "
          f"median of {args.rounds} rounds, each in its own process; load average "
          f"{summary['load_average']}\n")
    print(f"{'batch':>6}  {'tinygrad_mlp':>14}  {'onnxruntime':>14}  {'ratio':>6}")
    for batch in (1, 1000):
        ours = float(np.median(results[(batch, "tinygrad_mlp")]))
        theirs = float(np.median(results[(batch, "onnxruntime")]))
        summary["per_image_us"][str(batch)] = {"tinygrad_mlp": ours, "onnxruntime": theirs,
                                               "ratio": ours / theirs}
        print(f"{batch:>6}  {ours:>11.1f} us  {theirs:>11.1f} us  {ours / theirs:>5.2f}x")
    print(f"\nagreement on the test set: {json.dumps(check)}")
    Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
