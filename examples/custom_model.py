"""Build a model from ops: a residual two-layer network with a custom activation, written only with
Tensor operations, trained on synthetic spirals. No derivative is written anywhere: the engine
differentiates swish, the residual sum and the cross-entropy on its own.

Run: python examples/custom_model.py   (a few seconds on a CPU)
"""
import numpy as np

import tinygrad_mlp as tg
from tinygrad_mlp import Tensor, nn, optim
from tinygrad_mlp import functional as F


def swish(x):
    """A custom activation, x * sigmoid(x): one line, and its gradient comes for free."""
    return x * x.sigmoid()


class ResidualMLP(nn.Module):
    def __init__(self, d_in, d_hidden, n_classes, rng):
        super().__init__()

        def init(fan_in, *shape):  # PyTorch's default: uniform in +-1/sqrt(fan_in)
            bound = 1 / np.sqrt(fan_in)
            return nn.Parameter(rng.uniform(-bound, bound, shape).astype(np.float32))

        self.w1, self.b1 = init(d_in, d_in, d_hidden), init(d_in, d_hidden)
        self.w2, self.b2 = init(d_hidden, d_hidden, d_hidden), init(d_hidden, d_hidden)
        self.w_out, self.b_out = init(d_hidden, d_hidden, n_classes), init(d_hidden, n_classes)

    def forward(self, x):
        h = swish(x @ self.w1 + self.b1)
        h = h + swish(h @ self.w2 + self.b2)  # the residual connection
        return h @ self.w_out + self.b_out


def spirals(n_per_class, n_classes, rng):
    """Interleaved noisy spiral arms, one per class: not linearly separable."""
    t = np.linspace(0.1, 1, n_per_class)
    xs, ys = [], []
    for c in range(n_classes):
        angle = 4 * t + 2 * np.pi * c / n_classes + rng.normal(0, 0.15, n_per_class)
        xs.append(np.stack([t * np.cos(angle), t * np.sin(angle)], axis=1))
        ys.append(np.full(n_per_class, c))
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys)


def main(steps=200, seed=0):
    rng = np.random.default_rng(seed)
    x, y = spirals(200, 3, rng)
    model = ResidualMLP(2, 32, 3, rng)
    opt = optim.Adam(model.parameters(), lr=0.01)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    inputs = Tensor(x)
    for step in range(steps):
        opt.zero_grad()
        logits = model(inputs)
        loss = F.cross_entropy(logits, y) + F.l2_penalty(model.parameters(), 1e-4)
        loss.backward()
        opt.step()
        sched.step()
        if step % 50 == 0 or step == steps - 1:
            print(f"step {step:4d}  loss {loss.item():.4f}  "
                  f"accuracy {F.accuracy(logits, y):.3f}")
    with tg.no_grad():
        accuracy = F.accuracy(model(inputs), y)
    print(f"final training accuracy {accuracy:.3f}")
    return accuracy


if __name__ == "__main__":
    main()
