"""A Fashion-MNIST autoencoder, trained through the dataset API, beside a PCA baseline.

    python examples/autoencoder.py                   # 784-256-32-256-784, 15 epochs (a few minutes)
    python examples/autoencoder.py --quick           # 3,000 training images, 2 epochs (seconds)
    python examples/autoencoder.py --code 16 --out runs/ae16

The network squeezes each image through a code of ``--code`` numbers and rebuilds it; the loss is
the mean squared error between the rebuilt and the original pixels (float targets, the image
itself). PCA with as many components is the linear answer to the same question, computed with
numpy's SVD on the same training images; both are scored by the per-pixel MSE on the test set.
Writes ``reconstructions.png`` (originals, the autoencoder's and PCA's reconstructions) and
``metrics.json`` into ``--out``, and never overwrites them.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

import tinygrad_mlp as tg
from tinygrad_mlp import functional as F
from tinygrad_mlp import nn, optim
from tinygrad_mlp.data import (DataLoader, FashionMNISTError, TensorDataset, load_fashion_mnist,
                               random_split)
from tinygrad_mlp.training import evaluate, fit

OUTPUTS = ("reconstructions.png", "metrics.json")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--code", type=int, default=32, help="code size (and PCA components)")
    p.add_argument("--hidden", type=int, default=256, help="hidden width of encoder and decoder")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-size", type=int, default=None,
                   help="use only this many training images (default: all 60,000)")
    p.add_argument("--quick", action="store_true", help="3,000 training images, 2 epochs")
    p.add_argument("--data-dir", default=None, help="directory holding the Fashion-MNIST files")
    p.add_argument("--out", default="runs/autoencoder", help="output directory")
    args = p.parse_args(argv)
    if args.quick:
        args.epochs, args.train_size = 2, args.train_size or 3000
    for name in ("code", "hidden", "epochs", "batch_size"):
        if getattr(args, name) <= 0:
            p.error(f"--{name.replace('_', '-')} must be positive")
    return args


def make_model(code: int, hidden: int) -> nn.Module:
    """Encoder 784-hidden-code, decoder code-hidden-784 with a sigmoid (pixels are in [0, 1])."""
    return nn.Sequential(nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, code),
                         nn.Linear(code, hidden), nn.ReLU(), nn.Linear(hidden, 784), nn.Sigmoid())


def pca_reconstruct(train: np.ndarray, test: np.ndarray, k: int) -> np.ndarray:
    """Project ``test`` on the top ``k`` principal directions of ``train`` and back."""
    mean = train.mean(axis=0, dtype=np.float64)
    # The right singular vectors of the centred data are the principal directions.
    _, _, vt = np.linalg.svd(train - mean, full_matrices=False)
    v = vt[:k]
    return ((test - mean) @ v.T @ v + mean).astype(np.float32)


def save_figure(path, originals, ae, pca, ae_mse, pca_mse):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(originals)
    fig, axes = plt.subplots(3, n, figsize=(n * 1.1, 3.6))
    rows = [("original", originals), (f"autoencoder\nMSE {ae_mse:.4f}", ae),
            (f"PCA\nMSE {pca_mse:.4f}", pca)]
    for r, (label, images) in enumerate(rows):
        for c in range(n):
            ax = axes[r, c]
            ax.imshow(images[c].reshape(28, 28), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(label, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    args = parse_args(argv)
    existing = [f for f in OUTPUTS if os.path.exists(os.path.join(args.out, f))]
    if existing:
        print(f"error: {args.out} already holds {', '.join(existing)}; nothing was overwritten "
              f"(pass another --out)", file=sys.stderr)
        return 2
    try:
        data = load_fashion_mnist(args.data_dir)
    except FashionMNISTError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    tg.manual_seed(args.seed)
    train_images, test_images = data.datasets()   # TensorDatasets of (float32 image, label)
    x_train, x_test = train_images.arrays[0], test_images.arrays[0]
    if args.train_size is not None:
        x_train = x_train[:args.train_size]
    # The target is the input: float targets of shape (784,).
    train, val = random_split(TensorDataset(x_train, x_train), [0.95, 0.05], rng=args.seed)
    test = TensorDataset(x_test, x_test)
    train_loader = DataLoader(train, args.batch_size, shuffle=True, rng=args.seed)
    val_loader = DataLoader(val, 1000)

    model = make_model(args.code, args.hidden)
    opt = optim.Adam(model.parameters(), lr=args.lr)
    schedule = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)
    start = time.perf_counter()
    fit(model, F.mse_loss, opt, train_loader, args.epochs, val_loader=val_loader,
        scheduler=schedule, progress=sys.stderr.isatty(), restore_best=False)
    seconds = time.perf_counter() - start
    ae_mse = evaluate(model, DataLoader(test, 1000), F.mse_loss).loss

    pca_test = pca_reconstruct(x_train[train.indices], x_test, args.code)
    pca_mse = float(np.mean((pca_test - x_test) ** 2, dtype=np.float64))

    shown = x_test[:10]
    with tg.no_grad():
        model.eval()
        ae_shown = model(tg.Tensor(shown)).numpy()
    os.makedirs(args.out, exist_ok=True)
    save_figure(os.path.join(args.out, OUTPUTS[0]), shown, ae_shown, pca_test[:10], ae_mse,
                pca_mse)
    metrics = {"code": args.code, "hidden": args.hidden, "epochs": args.epochs,
               "train_images": len(train), "test_mse_autoencoder": ae_mse,
               "test_mse_pca": pca_mse, "train_seconds": round(seconds, 1)}
    with open(os.path.join(args.out, OUTPUTS[1]), "x") as f:
        json.dump(metrics, f, indent=2)
    print(f"test MSE per pixel: autoencoder {ae_mse:.5f}, PCA with {args.code} components "
          f"{pca_mse:.5f} ({len(train)} training images, {args.epochs} epochs, {seconds:.0f} s)")
    print(f"wrote {os.path.join(args.out, OUTPUTS[0])} and {OUTPUTS[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
