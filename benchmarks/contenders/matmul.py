"""The matrix products alone (the hardware floor): training's eight products of a step (three
forward; two per layer backward, minus the input's gradient) on contiguous slices into
preallocated outputs; evaluation's forward products plus the softmax (no bias, no ReLU)."""
import numpy as np

from .common import SIZES, softmax_in_batches, transposed_weights


def build_model(seed):
    """The weight matrices, (in, out)."""
    return [w for w, _ in transposed_weights(seed)]


def train(x, y, batch, seed):
    ws = build_model(seed)
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


def evaluate(xt, batch, seed):
    ws = build_model(seed)

    def forward(h):
        for w in ws:
            h = h @ w
        return h

    return lambda: softmax_in_batches(xt, batch, forward)
