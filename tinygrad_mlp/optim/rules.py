"""Floor 4 (optim.rules): the update rules ``SGD``, ``Adam``, ``AdamW``, ``RMSprop``, ``Adagrad``.

Each is PyTorch's rule (so trajectories match for the same inputs), written in place on the
parameter's array with the two scratch arrays ``Optimizer`` lends it; hyper-parameters come from
the parameter's group.

Weight decay means what it means in PyTorch for each: ``SGD``, ``Adam``, ``RMSprop`` and
``Adagrad`` add ``weight_decay * p`` to the gradient (L2, so with an adaptive rule it is scaled
by the per-coordinate step); ``AdamW`` shrinks the weights by ``1 - lr * weight_decay`` before
its step (decoupled). It applies to every parameter of a group: put biases and norm weights in a
group with ``weight_decay=0`` to exclude them.
"""
from __future__ import annotations

import math

import numpy as np

from .optimizer import Optimizer, _as_float, _check

__all__ = ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"]


def _non_negative(h: dict, key: str, name: str):
    _check(_as_float(h[key], f"{name}: {key}") >= 0,
           f"{name}: invalid {key} {h[key]} (expected >= 0)")


class SGD(Optimizer):
    """Stochastic gradient descent, PyTorch's rule::

        g = grad + weight_decay * p
        buf = g (first step), then momentum * buf + (1 - dampening) * g
        g = g + momentum * buf if nesterov else buf        (when momentum != 0)
        p = p - lr * g
    """

    hyperparameters = ("lr", "momentum", "dampening", "nesterov", "weight_decay")

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      nesterov=nesterov, weight_decay=weight_decay))

    def _validate(self, h):
        super()._validate(h)
        _non_negative(h, "momentum", "SGD")
        _as_float(h["dampening"], "SGD: dampening")
        _non_negative(h, "weight_decay", "SGD")
        _check(not h["nesterov"] or (h["momentum"] > 0 and h["dampening"] == 0),
               "SGD: nesterov momentum requires momentum > 0 and dampening == 0")

    def _scratch(self, h) -> int:
        return 2 if h["weight_decay"] else 1  # a holds g + wd * p

    def _update(self, p, g, state, work, h):
        a, b = work
        lr, momentum, wd = float(h["lr"]), float(h["momentum"]), float(h["weight_decay"])
        if wd:
            g = np.add(g, np.multiply(p, wd, out=a), out=a)
        if momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                # In p's layout, not g's: a gradient may be a transposed view, and a buffer that
                # followed it would make every later step walk p against the grain.
                buf = state["momentum_buffer"] = np.empty_like(p)
                np.copyto(buf, g)
            else:
                buf *= momentum
                dampening = float(h["dampening"])
                buf += np.multiply(g, 1.0 - dampening, out=b) if dampening else g
            g = np.add(g, np.multiply(buf, momentum, out=b), out=b) if h["nesterov"] else buf
        p -= np.multiply(g, lr, out=b)


class Adam(Optimizer):
    """Adam, PyTorch's rule (``weight_decay`` is added to the gradient, i.e. L2)::

        g = grad + weight_decay * p
        m = m + (1 - beta1) * (g - m);  v = beta2 * v + (1 - beta2) * g * g
        v_max = max(v_max, v) if amsgrad, and v_max replaces v below
        p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)
    """

    hyperparameters = ("lr", "betas", "eps", "weight_decay", "amsgrad")
    _decoupled = False

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad))

    def _normalized(self, h):
        h = super()._normalized(h)
        betas = h.get("betas")
        if isinstance(betas, tuple) and len(betas) == 2 \
                and all(isinstance(b, (int, float, np.floating)) for b in betas):
            h["betas"] = tuple(float(b) for b in betas)
        return h

    def _validate(self, h):
        super()._validate(h)
        name = type(self).__name__
        betas = h["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"{name}: betas must be a pair (beta1, beta2); got {betas!r}")
        for i, beta in enumerate(betas):
            _check(0.0 <= _as_float(beta, f"{name}: betas[{i}]") < 1.0,
                   f"{name}: invalid betas[{i}] = {beta} (expected 0 <= beta < 1)")
        _non_negative(h, "eps", name)
        _non_negative(h, "weight_decay", name)

    def _scratch(self, h) -> int:
        return 2 if h["weight_decay"] and not self._decoupled else 1  # a holds g + wd * p

    def _update(self, p, g, state, work, h):
        a, b = work
        lr, eps, wd = float(h["lr"]), float(h["eps"]), float(h["weight_decay"])
        beta1, beta2 = h["betas"]
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(p)
            state["exp_avg_sq"] = np.zeros_like(p)
        state["step"] = t = state["step"] + 1
        m, v = state["exp_avg"], state["exp_avg_sq"]
        if wd:
            if self._decoupled:
                p *= 1.0 - lr * wd
            else:
                g = np.add(g, np.multiply(p, wd, out=a), out=a)
        m += np.multiply(np.subtract(g, m, out=b), 1.0 - beta1, out=b)
        v *= beta2
        v += np.multiply(np.multiply(g, g, out=b), 1.0 - beta2, out=b)
        if h["amsgrad"]:
            v_max = state.get("max_exp_avg_sq")
            if v_max is None:
                v_max = state["max_exp_avg_sq"] = np.zeros_like(p)
            v = np.maximum(v_max, v, out=v_max)
        step_size = lr / (1.0 - beta1 ** t)
        denom = np.sqrt(v, out=b)
        denom /= math.sqrt(1.0 - beta2 ** t)
        denom += eps
        p -= np.multiply(np.divide(m, denom, out=b), step_size, out=b)


class AdamW(Adam):
    """Adam with decoupled weight decay (PyTorch's AdamW): ``p = p * (1 - lr * weight_decay)``
    before the Adam step, instead of adding ``weight_decay * p`` to the gradient."""

    _decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)


class RMSprop(Optimizer):
    """RMSprop, PyTorch's rule::

        g = grad + weight_decay * p
        v = alpha * v + (1 - alpha) * g * g
        centered: m = m + (1 - alpha) * (g - m);  avg = sqrt(v - m * m) + eps
        otherwise: avg = sqrt(v) + eps
        momentum > 0: buf = momentum * buf + g / avg;  p = p - lr * buf
        otherwise:    p = p - lr * g / avg
    """

    hyperparameters = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered")

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered))

    def _validate(self, h):
        super()._validate(h)
        for key in ("alpha", "eps", "weight_decay", "momentum"):
            _non_negative(h, key, "RMSprop")

    def _update(self, p, g, state, work, h):
        a, b = work
        lr, alpha, eps = float(h["lr"]), float(h["alpha"]), float(h["eps"])
        wd, momentum = float(h["weight_decay"]), float(h["momentum"])
        if not state:
            state["step"] = 0
            state["square_avg"] = np.zeros_like(p)
        state["step"] += 1
        if wd:
            g = np.add(g, np.multiply(p, wd, out=a), out=a)
        v = state["square_avg"]
        v *= alpha
        v += np.multiply(np.multiply(g, g, out=b), 1.0 - alpha, out=b)
        if h["centered"]:
            m = state.get("grad_avg")
            if m is None:
                m = state["grad_avg"] = np.zeros_like(p)
            m += np.multiply(np.subtract(g, m, out=b), 1.0 - alpha, out=b)
            avg = np.subtract(v, np.multiply(m, m, out=b), out=b)
            np.sqrt(avg, out=avg)
        else:
            avg = np.sqrt(v, out=b)
        avg += eps
        if momentum > 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = np.zeros_like(p)
            buf *= momentum
            buf += np.divide(g, avg, out=b)
            p -= np.multiply(buf, lr, out=b)
        else:
            p -= np.divide(np.multiply(g, lr, out=a), avg, out=b)


class Adagrad(Optimizer):
    """Adagrad, PyTorch's rule::

        g = grad + weight_decay * p
        clr = lr / (1 + (t - 1) * lr_decay)
        s = s + g * g                      (s starts at initial_accumulator_value)
        p = p - clr * g / (sqrt(s) + eps)
    """

    hyperparameters = ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps")

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10):
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      eps=eps))

    def _validate(self, h):
        super()._validate(h)
        for key in ("lr_decay", "weight_decay", "initial_accumulator_value", "eps"):
            _non_negative(h, key, "Adagrad")

    def _update(self, p, g, state, work, h):
        a, b = work
        lr, lr_decay, eps = float(h["lr"]), float(h["lr_decay"]), float(h["eps"])
        wd = float(h["weight_decay"])
        if not state:
            state["step"] = 0
            state["sum"] = np.full_like(p, float(h["initial_accumulator_value"]))
        state["step"] = t = state["step"] + 1
        if wd:
            g = np.add(g, np.multiply(p, wd, out=a), out=a)
        clr = lr / (1 + (t - 1) * lr_decay)
        s = state["sum"]
        s += np.multiply(g, g, out=b)
        std = np.sqrt(s, out=b)
        std += eps
        p -= np.divide(np.multiply(g, clr, out=a), std, out=b)
