"""Floor 4 (gradcheck): compare analytic gradients with float64 central differences.

``gradcheck`` checks first derivatives, ``gradgradcheck`` second ones. Both check a vector-Jacobian
product: the output is contracted with a fixed random vector ``v``, so every input element's
analytic gradient of ``sum(v * f(x))`` is compared with the numerical one.
"""
from __future__ import annotations

import numpy as np

from .autograd import grad
from .tensor import Tensor

__all__ = ["gradcheck", "gradgradcheck", "GradcheckError"]


class GradcheckError(AssertionError):
    """An analytic gradient disagrees with the numerical one."""


def _float64_leaves(inputs):
    leaves = []
    for t in inputs:
        if isinstance(t, Tensor):
            wants = t.requires_grad
            t = Tensor(np.array(t.data, dtype=np.float64) if t.dtype.kind == "f" else t.data)
            leaves.append(t.requires_grad_(True) if wants else t)
        else:
            leaves.append(t)
    return leaves


def _contracted(fn, inputs, v_seed):
    """``sum(v * fn(*inputs))`` with a fixed random ``v`` drawn for the output's shape."""
    out = fn(*inputs)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: the function must return a Tensor; got {type(out).__name__}")
    v = np.random.default_rng(v_seed).uniform(0.5, 1.5, size=out.shape)
    return (out * Tensor(v.astype(out.dtype))).sum()


def gradcheck(fn, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              seed: int = 0) -> bool:
    """Check ``fn``'s analytic gradients against float64 central differences.

    ``inputs`` is a sequence of Tensors (and other arguments passed through); every Tensor that
    requires grad is checked, element by element, in a float64 copy. Returns True, or raises
    ``GradcheckError`` naming the input, the element index and both values.
    """
    inputs = _float64_leaves(inputs)
    wrt = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not wrt:
        raise ValueError("gradcheck: no input requires grad; nothing to check")
    f = _contracted(fn, inputs, seed)
    # An output that does not depend on the inputs has zero gradient (the numbers must agree).
    analytic = grad(f, [inputs[i] for i in wrt], allow_unused=True) if f.requires_grad \
        else [None] * len(wrt)
    for i, g in zip(wrt, analytic):
        x = inputs[i].data
        a = np.zeros_like(x) if g is None else g.data
        if a.shape != x.shape or a.dtype != x.dtype:
            raise GradcheckError(f"gradcheck: input {i}: gradient has shape {a.shape} and dtype "
                                 f"{a.dtype}; expected {x.shape} and {x.dtype}")
        flat = x.reshape(-1)  # a view: perturbing it perturbs the input
        for k in range(flat.size):
            orig = flat[k]
            flat[k] = orig + eps
            f_plus = _contracted(fn, inputs, seed).item()
            flat[k] = orig - eps
            f_minus = _contracted(fn, inputs, seed).item()
            flat[k] = orig
            numeric = (f_plus - f_minus) / (2 * eps)
            value = a.reshape(-1)[k]
            if not np.isclose(value, numeric, atol=atol, rtol=rtol):
                index = np.unravel_index(k, x.shape) if x.ndim else ()
                raise GradcheckError(
                    f"gradcheck: input {i} (shape {x.shape}) at index {tuple(map(int, index))}: "
                    f"analytic gradient {value:.8g} but numerical {numeric:.8g}")
    return True


def gradgradcheck(fn, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
                  seed: int = 0) -> bool:
    """Check second derivatives: the gradient of ``sum(w * d/dx sum(v * fn(x)))`` against
    central differences of that first derivative, which ``grad(..., create_graph=True)`` gives."""
    def first_derivative(*xs):
        wrt = [t for t in xs if isinstance(t, Tensor) and t.requires_grad]
        gs = grad(_contracted(fn, xs, seed), wrt, create_graph=True, allow_unused=True)
        rng = np.random.default_rng(seed + 1)
        total = None
        for t, g in zip(wrt, gs):
            if g is None:
                continue
            w = Tensor(rng.uniform(0.5, 1.5, size=t.shape))
            term = (g * w).sum()
            total = term if total is None else total + term
        return total if total is not None else Tensor(0.0, dtype=np.float64)

    return gradcheck(first_derivative, inputs, eps=eps, atol=atol, rtol=rtol, seed=seed)
