"""What every contender shares: the model's sizes, the optimiser's settings, the initial weights."""
import os

import numpy as np

SIZES = (784, 512, 256, 10)
LR, MOMENTUM = 0.01, 0.9


def synthetic_data(samples, seed):
    """``samples`` x 784 standard-normal float32 images (the shape of normalised Fashion-MNIST
    images) and uniform labels 0-9 as int64."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((samples, SIZES[0]), dtype=np.float32),
            rng.integers(0, SIZES[-1], samples).astype(np.int64))


def init_weights(seed):
    """PyTorch's default Linear initialisation, as (out, in) float32 weights and biases."""
    rng = np.random.default_rng(seed)
    out = []
    for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:]):
        bound = 1.0 / np.sqrt(fan_in)
        w = rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32)
        b = rng.uniform(-bound, bound, fan_out).astype(np.float32)
        out.append((w, b))
    return out


def transposed_weights(seed):
    """The weights as (in, out) float32, contiguous: every product then reads row-major."""
    return [(np.ascontiguousarray(w.T), b) for w, b in init_weights(seed)]


def train_steps(batches, model, loss_fn, opt, n):
    """``n`` steps (forward, loss, backward, update) over ``batches``; the last loss. The same code
    serves tinygrad_mlp and PyTorch, whose training APIs agree."""
    loss = None
    for i, (xb, yb) in enumerate(batches):
        if i == n:
            break
        loss = loss_fn(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return float(loss.item())


def softmax_in_batches(xt, batch, forward):
    """Softmax probabilities of ``forward`` (logits of a numpy batch) over ``xt``, batch by batch."""
    return [softmax_(forward(xt[lo:lo + batch])) for lo in range(0, len(xt), batch)]


def softmax_(z):
    """Row-wise softmax of ``z``, in place."""
    z -= z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def blas_threads() -> int:
    """The number of threads numpy's BLAS runs (PyTorch is given the same number)."""
    try:
        from threadpoolctl import threadpool_info
        n = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
        if n:
            return int(n[0])
    except ImportError:
        pass
    return os.cpu_count() or 1
