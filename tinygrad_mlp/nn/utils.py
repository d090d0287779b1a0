"""Floor 4 (nn.utils): gradient clipping and flat parameter vectors, as PyTorch's ``nn.utils``.

The clipping functions change ``.grad`` arrays in place (the same objects an optimiser reads) and
record nothing.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from ..autograd import bump_version, replayed
from ..tensor import Tensor, concatenate

__all__ = ["clip_grad_norm_", "clip_grad_value_", "parameters_to_vector", "vector_to_parameters"]


def _tensors(parameters, fn: str) -> list:
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    for p in params:
        if not isinstance(p, Tensor):
            raise TypeError(f"{fn}: expected Tensors (e.g. model.parameters()); got "
                            f"{type(p).__name__}")
    return params


def _scale_grad(p: Tensor, factor):
    g = p.grad
    if g.data.flags.writeable and g._ctx is None:
        np.multiply(g.data, factor, out=g.data, casting="unsafe")
    else:  # a gradient in a graph (create_graph) is replaced, not written through
        p.grad = Tensor((g.data * factor).astype(g.data.dtype, copy=False))


@replayed
def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach=None) -> Tensor:
    """Scale all gradients together so that their joint ``norm_type`` norm (the norm of the
    per-tensor norms; ``inf`` for the largest absolute value) is at most ``max_norm``.

    Returns the total norm before clipping, as a 0-d Tensor. As PyTorch, the gradients are
    multiplied by ``min(1, max_norm / (total + 1e-6))``; a NaN or infinite total raises with
    ``error_if_nonfinite=True`` and otherwise spreads into the gradients (with a warning).
    ``foreach`` is accepted for PyTorch's signature and changes nothing."""
    params = [p for p in _tensors(parameters, "clip_grad_norm_") if p.grad is not None]
    norm_type = float(norm_type)
    if max_norm < 0 or math.isnan(max_norm):
        raise ValueError(f"clip_grad_norm_: max_norm must be >= 0; got {max_norm}")
    if norm_type <= 0 or math.isnan(norm_type):
        raise ValueError(f"clip_grad_norm_: norm_type must be > 0 (or inf); got {norm_type}")
    if not params:
        return Tensor(0.0)
    dtype = params[0].grad.data.dtype
    norms = np.array([np.linalg.norm(p.grad.data.reshape(-1), norm_type) if p.grad.data.size
                      else 0.0 for p in params])
    total = np.linalg.norm(norms, norm_type)
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(f"clip_grad_norm_: the total {norm_type:g}-norm of the gradients is "
                           f"{float(total)}, so they cannot be clipped; pass "
                           f"error_if_nonfinite=False to scale by it anyway")
    if not np.isfinite(total):
        warnings.warn(f"clip_grad_norm_: the total norm of the gradients is {float(total)}; "
                      f"scaling by it leaves NaN or zero gradients (as PyTorch does)",
                      RuntimeWarning, stacklevel=2)
    coef = float(max_norm) / (float(total) + 1e-6)
    if not coef >= 1.0:  # below 1, or NaN (which then spreads into the gradients, as PyTorch)
        with np.errstate(invalid="ignore"):
            for p in params:
                _scale_grad(p, np.asarray(coef, dtype=p.grad.data.dtype))
    return Tensor(np.asarray(total, dtype=dtype))


@replayed
def clip_grad_value_(parameters, clip_value: float) -> None:
    """Clip every gradient element into ``[-clip_value, clip_value]``, in place."""
    if clip_value < 0:
        raise ValueError(f"clip_grad_value_: clip_value must be >= 0; got {clip_value}")
    for p in _tensors(parameters, "clip_grad_value_"):
        g = p.grad
        if g is None:
            continue
        if g.data.flags.writeable and g._ctx is None:
            np.clip(g.data, -clip_value, clip_value, out=g.data)
        else:
            p.grad = Tensor(np.clip(g.data, -clip_value, clip_value))


def parameters_to_vector(parameters) -> Tensor:
    """The parameters flattened and joined into one 1-D Tensor (recorded: gradients flow back)."""
    params = _tensors(parameters, "parameters_to_vector")
    if not params:
        raise ValueError("parameters_to_vector: no parameters given")
    return concatenate([p.reshape(-1) for p in params])


def vector_to_parameters(vec, parameters) -> None:
    """Copy consecutive slices of the 1-D ``vec`` into the parameters (in place, each keeping
    its dtype and memory layout). The length must match the parameters' total size exactly."""
    params = _tensors(parameters, "vector_to_parameters")
    data = vec.data if isinstance(vec, Tensor) else None
    if data is None:
        raise TypeError(f"vector_to_parameters: expected a Tensor; got {type(vec).__name__}")
    total = sum(p.data.size for p in params)
    if data.ndim != 1 or data.size != total:
        raise ValueError(f"vector_to_parameters: expected a 1-D vector of length {total} (the "
                         f"parameters' total size); got shape {data.shape}")
    start = 0
    for p in params:
        n = p.data.size
        np.copyto(p.data, data[start:start + n].reshape(p.data.shape), casting="unsafe")
        bump_version(p)
        start += n
