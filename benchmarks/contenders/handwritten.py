"""Forward, backward and SGD-momentum update written by hand in float32 numpy: the floor for a
numpy framework (no framework overhead at all)."""
import numpy as np

from .common import LR, MOMENTUM, softmax_, softmax_in_batches, transposed_weights


def build_model(seed):
    """[w1, b1, w2, b2, w3, b3], weights stored (in, out)."""
    return [a for pair in transposed_weights(seed) for a in pair]


def train(x, y, batch, seed):
    params = build_model(seed)
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
        softmax_(z)
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


def evaluate(xt, batch, seed):
    params = transposed_weights(seed)

    def forward(h):
        for i, (w, b) in enumerate(params):
            h = h @ w
            h += b
            if i < 2:
                np.maximum(h, 0, out=h)
        return h

    return lambda: softmax_in_batches(xt, batch, forward)
