"""Floor 3 (functional): activations, losses, penalties and dropout composed from Tensor ops.

Nothing here writes a derivative: every gradient comes from the engine. Math that ``Tensor``
already has as a method (``relu``, ``softmax``, ``log_softmax``, ...) is exposed by calling that
method, so each formula is written once. Also importable as ``tinygrad_mlp.nn.functional``.

The gradient of mean softmax cross-entropy with respect to the logits is ``(softmax - onehot)/N``
without anyone coding it: ``cross_entropy`` is ``-(log_softmax(x) * onehot).sum() / N``, and the
engine differentiates ``log_softmax`` (a shift, an exp, a sum and a log) on its own.
"""
from __future__ import annotations

import numpy as np

from . import ops
from ._random import resolve_rng
from ._conventions import accepts_torch_keywords
from ._validate import positive_int
from .autograd import is_capturing, is_grad_enabled, kernel, refuse_capture
from .tensor import Tensor, as_array, as_tensor, maximum, where

__all__ = ["relu", "leaky_relu", "sigmoid", "tanh", "softmax", "log_softmax", "logsumexp",
           "erf", "gelu", "silu", "softplus", "elu", "layer_norm", "embedding",
           "linear", "one_hot", "cross_entropy", "nll_loss", "mse_loss", "l1_loss",
           "smooth_l1_loss", "huber_loss", "binary_cross_entropy",
           "binary_cross_entropy_with_logits", "kl_div", "l2_penalty", "dropout", "accuracy"]

_REDUCTIONS = ("mean", "sum", "none")


# ---------------------------------------------------------------- activations (Tensor methods)

def relu(x: Tensor) -> Tensor:
    return x.relu()


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    return x.leaky_relu(negative_slope)


def sigmoid(x: Tensor) -> Tensor:
    return x.sigmoid()


def tanh(x: Tensor) -> Tensor:
    return x.tanh()


@accepts_torch_keywords
def softmax(x: Tensor, axis: int = -1) -> Tensor:
    return x.softmax(axis=axis)


@accepts_torch_keywords
def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    return x.log_softmax(axis=axis)


@accepts_torch_keywords
def logsumexp(x: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    return x.logsumexp(axis=axis, keepdims=keepdims)


# ---------------------------------------------------------------- more activations (composed)

_SQRT_HALF = 0.5 ** 0.5
_SQRT_2_OVER_PI = (2 / np.pi) ** 0.5


def erf(x: Tensor) -> Tensor:
    """The error function (a primitive op: numpy has none)."""
    return ops.Erf.apply(x)


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """``x·Φ(x)`` with Φ the standard normal CDF: exact via ``erf`` (``approximate="none"``) or
    PyTorch's ``approximate="tanh"`` form ``0.5x(1 + tanh(√(2/π)(x + 0.044715x³)))``."""
    if approximate == "none":
        return x * (erf(x * _SQRT_HALF) + 1.0) * 0.5
    if approximate == "tanh":
        inner = (x + x * x * x * 0.044715) * _SQRT_2_OVER_PI
        return x * (inner.tanh() + 1.0) * 0.5
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh'; got {approximate!r}")


def silu(x: Tensor) -> Tensor:
    """``x·σ(x)`` (also called swish)."""
    return x * x.sigmoid()


def _log1p(e: Tensor) -> Tensor:
    """``log(1 + e)`` for ``e >= 0``, accurate for tiny ``e`` too: ``log(u)·e/(u-1)`` with
    ``u = 1 + e`` (the rounding of u cancels), and ``e`` itself where u rounds to 1. The factor
    ``e/(u-1)`` is a constant (a ratio of two nearly equal numbers would differentiate badly)."""
    u = e + 1.0
    ud, ed = u.data, e.data
    same = ud == 1
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(same, 1, ed / (ud - 1)).astype(e.dtype, copy=False)
    return where(same, e, u.log() * as_tensor(factor))


def softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """``log(1 + exp(βx))/β``, and ``x`` itself where ``βx > threshold`` (PyTorch's rule).

    Written as ``max(z, 0) + log(1 + exp(-|z|))`` with z = βx, so no exp overflows and the
    gradient is σ(z) on both sides."""
    if beta == 0:
        raise ValueError("softplus: beta must be non-zero")
    z = x * beta if beta != 1 else x
    nonneg = z.data >= 0
    soft = where(nonneg, z, 0.0) + _log1p(where(nonneg, -z, z).exp())
    if beta != 1:
        soft = soft * (1.0 / beta)
    refuse_capture("softplus inspects values")
    above = z.data > threshold
    return where(above, x, soft) if above.any() else soft


def elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """``x`` for x > 0, ``α(exp(x) - 1)`` otherwise (slope α at 0, as PyTorch)."""
    positive = x.data > 0
    negative_part = where(positive, 0.0, x)  # exp never sees a large positive value
    return where(positive, x, (negative_part.exp() - 1.0) * alpha)


def layer_norm(x: Tensor, normalized_shape, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    """Normalise over the trailing ``normalized_shape`` axes with the mean and biased variance
    of each sample, then scale by ``weight`` and shift by ``bias`` (both of that shape)."""
    normalized_shape = _shape_tuple(normalized_shape, "layer_norm")
    k = len(normalized_shape)
    if x.shape[x.ndim - k:] != normalized_shape or x.ndim < k:
        raise ValueError(f"layer_norm: input of shape {x.shape} does not end in normalized_shape "
                         f"{normalized_shape}")
    axes = tuple(range(x.ndim - k, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    centered = x - mean
    var = (centered * centered).mean(axis=axes, keepdims=True)
    y = centered / (var + eps).sqrt()
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


def _shape_tuple(shape, fn: str) -> tuple:
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if not shape or not all(isinstance(n, (int, np.integer)) and n >= 1 for n in shape):
        raise ValueError(f"{fn}: normalized_shape must be a positive int or a non-empty tuple of "
                         f"them; got {shape!r}")
    return tuple(int(n) for n in shape)


def embedding(input, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """Rows of ``weight`` (num_embeddings, dim) picked by the integer indices ``input``: the
    output has shape ``input.shape + (dim,)``. The row at ``padding_idx`` is returned as it is
    but gets no gradient (as PyTorch)."""
    # A copy: the index is kept for backward, and the caller's array (a token buffer refilled for
    # the next batch) must not move the gradient to other rows.
    idx = np.array(as_array(input), copy=True)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be integers; got dtype {idx.dtype}")
    if weight.ndim != 2:
        raise ValueError(f"embedding: weight must be 2-D (num_embeddings, embedding_dim); got "
                         f"shape {weight.shape}")
    n = weight.shape[0]
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        # Negative indices are refused as PyTorch does: a stray -1 or -100 (a padding marker)
        # would otherwise silently pick a row from the end.
        bad = idx[(idx < 0) | (idx >= n)].ravel()[0]
        raise IndexError(f"embedding: index {int(bad)} is out of range; expected indices in "
                         f"[0, {n})")
    rows = weight[idx]
    if padding_idx is None:
        return rows
    padding = idx == (padding_idx % n)
    if not padding.any():
        return rows
    return where(padding[..., None], weight.detach()[idx], rows)


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x @ weight.T + bias`` with ``weight`` shaped ``(out, in)`` (PyTorch's layout)."""
    if isinstance(x, Tensor) and x.data.ndim == 2 and weight.data.ndim == 2 and \
            x.data.shape[1] == weight.data.shape[1] and x.data.dtype is weight.data.dtype:
        # One op, not a transpose and a product (forward and backward): the product reads the
        # transposed weight as a view, and its gradient arrives as the transpose of x.T @ g,
        # column-major like the weight itself (see nn.Linear).
        y = ops.MatMul.apply(x, weight, tb=True)
    else:
        y = x @ weight.T
    if bias is None:
        return y
    if not y.requires_grad and isinstance(bias, Tensor) and y.data.dtype == bias.data.dtype \
            and bias.data.shape == y.data.shape[-1:] and not is_capturing() \
            and not (bias.requires_grad and is_grad_enabled()):
        # Nothing recorded (evaluation): y is a fresh product nobody else holds, so the bias is
        # added in place instead of into a second activation-sized array. Not when the bias
        # itself wants a gradient (a frozen weight, a trained bias), nor under jit capture.
        y.data += bias.data
        return y
    return y + bias


# ---------------------------------------------------------------- labels

def _labels_array(labels, fn: str) -> np.ndarray:
    arr = as_array(labels)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{fn}: class labels must be integers; got dtype {arr.dtype}"
                        + (" (a Tensor made from a Python list is float32: pass "
                           "np.array(labels) or dtype=np.int64)" if arr.dtype.kind == "f" else ""))
    return arr


def _check_range(arr: np.ndarray, num_classes: int, fn: str):
    if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
        bad = arr[(arr < 0) | (arr >= num_classes)].ravel()[0]
        raise ValueError(f"{fn}: label {int(bad)} is out of range; expected class indices in "
                         f"[0, {num_classes})")


def one_hot(labels, num_classes: int, dtype=np.float32) -> Tensor:
    """``labels`` (integers of any shape) as a constant Tensor of shape ``labels.shape + (C,)``."""
    num_classes = positive_int(num_classes, "num_classes", "one_hot")
    arr = _labels_array(labels, "one_hot")
    return Tensor(kernel(_checked_one_hot, arr, int(num_classes), np.dtype(dtype)))


def _checked_one_hot(arr, num_classes, dtype):
    _check_range(arr, num_classes, "one_hot")
    return _one_hot_array(arr, num_classes, dtype)


def _one_hot_array(arr: np.ndarray, num_classes: int, dtype) -> np.ndarray:
    out = np.zeros(arr.shape + (num_classes,), dtype=dtype)
    np.put_along_axis(out, arr[..., None], 1, axis=-1)
    return out


# ---------------------------------------------------------------- losses

def _check_reduction(reduction: str, fn: str):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{fn}: reduction must be one of {_REDUCTIONS}; got {reduction!r}")


def _reduce(per_sample: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return per_sample.mean()
    if reduction == "sum":
        return per_sample.sum()
    return per_sample


def _check_logits(logits, fn: str) -> Tensor:
    if not isinstance(logits, Tensor):
        raise TypeError(f"{fn}: input must be a Tensor; got {type(logits).__name__}")
    if logits.ndim < 1 or logits.dtype.kind != "f":
        raise TypeError(f"{fn}: expected floating-point input of shape (N, C), (N, C, d1, ...) "
                        f"or (C,); got dtype {logits.dtype} and shape {logits.shape}")
    return logits


def _class_weight(weight, logits: Tensor, fn: str):
    """``weight=`` as an array of shape (C,) in the logits' dtype (a rescaling, not a parameter)."""
    if weight is None:
        return None
    arr = as_array(weight)
    c = logits.shape[1 if logits.ndim > 1 else 0]
    if arr.shape != (c,) or arr.dtype.kind not in "fiu":
        raise ValueError(f"{fn}: weight must be a numeric array of shape ({c},), one weight per "
                         f"class; got dtype {arr.dtype} and shape {arr.shape}")
    return arr.astype(logits.dtype, copy=False)


def _class_axis_last(arr: np.ndarray) -> np.ndarray:
    """(N, d1, ..., C) -> (N, C, d1, ...): one-hot rows built last, moved to the class axis."""
    return np.moveaxis(arr, -1, 1) if arr.ndim > 2 else arr


def _target_weights(logits: Tensor, target, weight, ignore_index: int, label_smoothing: float,
                    fn: str):
    """What each log-probability is multiplied by, and the divisor of ``'mean'``.

    Integer targets give a constant array ``M`` (the logits' shape) with
    ``(1-ε)·w[y]`` at the label plus ``ε/C·w[c]`` everywhere, zero rows where the target is
    ``ignore_index``; the mean divides by the summed ``w[y]`` of the kept targets (PyTorch's
    weighted mean, also with label smoothing). Probability targets give ``(t(1-ε) + ε/C)·w[c]``
    (a Tensor when the target is one, so it gets a gradient) and the mean divides by the number
    of targets."""
    c = logits.shape[1 if logits.ndim > 1 else 0]
    batch_shape = logits.shape[:1] + logits.shape[2:] if logits.ndim > 1 else ()
    w = _class_weight(weight, logits, fn)
    arr = as_array(target)
    if arr.dtype.kind in "iu":
        if arr.shape != batch_shape:
            raise ValueError(f"{fn}: input is (N, C), (N, C, d1, ...) or (C,), and an integer "
                             f"target has its shape without the class axis: for input of shape "
                             f"{logits.shape} that is shape {batch_shape}; got shape {arr.shape}")
        m, divisor = kernel(_label_weights, arr, c, w, ignore_index, label_smoothing,
                            logits.dtype, fn)
        return as_tensor(m), divisor
    if arr.dtype.kind == "f":
        if arr.shape != logits.shape:
            raise ValueError(f"{fn}: float target must be class probabilities of shape "
                             f"{logits.shape} (the input's shape) to match input of shape "
                             f"{logits.shape}; got shape {arr.shape} (for class indices pass an "
                             f"integer array)")
        if ignore_index != -100:
            raise ValueError(f"{fn}: ignore_index applies to class-index targets only; got "
                             f"class probabilities")
        t = target.astype(logits.dtype) if isinstance(target, Tensor) else \
            Tensor(arr.astype(logits.dtype, copy=False))
        if label_smoothing:
            t = t * (1.0 - label_smoothing) + label_smoothing / c
        if w is not None:
            t = t * as_tensor(w.reshape((c,) + (1,) * (logits.ndim - 2)))
        return t, float(int(np.prod(batch_shape)))
    raise TypeError(f"{fn}: target must be integer class indices of shape {batch_shape} or float "
                    f"class probabilities of shape {logits.shape}; got dtype {arr.dtype}")


def _label_weights(arr, c, w, ignore_index, label_smoothing, dtype, fn):
    """The weight matrix of integer labels ``arr`` and the divisor of the mean (a 0-d float64
    array): computed from the labels' values, so a kernel (repeated at every replay)."""
    ignored = arr == ignore_index
    any_ignored = bool(ignored.any())
    labels = np.where(ignored, 0, arr) if any_ignored else arr
    _check_range(labels, c, fn)
    m = _one_hot_array(labels, c, dtype)
    if w is not None:
        m *= w
    if label_smoothing:
        m *= 1.0 - label_smoothing
        m += (label_smoothing / c) * (w if w is not None else 1.0)
    if any_ignored:
        m[ignored] = 0
    if w is None:
        divisor = float(arr.size - int(ignored.sum())) if any_ignored else float(arr.size)
    else:
        divisor = float(np.sum(w[labels][~ignored], dtype=np.float64))
    return _class_axis_last(m), np.asarray(divisor)


def _mean_scale(divisor, dtype):
    """``-1/divisor`` (NaN for a divisor of 0) as a 0-d array in ``dtype``: what the summed
    log-likelihood is multiplied by for ``'mean'``."""
    d = float(divisor)
    return np.asarray(-1.0 / d if d else float("nan"), dtype=dtype)


def _weighted_class_loss(logp: Tensor, target, weight, ignore_index, reduction: str,
                         label_smoothing: float, fn: str) -> Tensor:
    m, divisor = _target_weights(logp, target, weight, ignore_index, label_smoothing, fn)
    picked = logp * m
    if reduction == "none":
        return -picked.sum(axis=1 if logp.ndim > 1 else 0)
    # One sum over everything and one scale: the same value as the mean of the per-sample losses,
    # with two fewer recorded ops forward and four fewer backward.
    if reduction == "sum":
        return picked.sum() * -1.0
    total = picked.sum()
    return total * as_tensor(kernel(_mean_scale, divisor, total.dtype))


def cross_entropy(logits: Tensor, target, reduction: str = "mean",
                  label_smoothing: float = 0.0, *, weight=None,
                  ignore_index: int = -100) -> Tensor:
    """Softmax cross-entropy of ``logits`` against ``target``, as PyTorch's.

    ``logits`` is (N, C), (N, C, d1, ...) (classes on axis 1) or (C,); ``target`` is integer
    class indices of the logits' shape without the class axis, or float class probabilities of
    the logits' shape. ``weight`` (C,) rescales each class; targets equal to ``ignore_index``
    contribute nothing. ``'mean'`` divides by the summed weights of the kept targets (their
    number without ``weight``), or by the number of targets for probabilities, as PyTorch does.
    Integer labels become a one-hot matrix in the logits' dtype: on a (64, 10) float32 batch that
    measured marginally faster than gathering ``logp[arange(N), y]`` (whose gradient goes
    through ``np.add.at``), and it lets weights, ignoring and smoothing share one path.
    """
    logits = _check_logits(logits, "cross_entropy")
    _check_reduction(reduction, "cross_entropy")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1]; got "
                         f"{label_smoothing}")
    logp = logits.log_softmax(axis=1 if logits.ndim > 1 else 0)
    return _weighted_class_loss(logp, target, weight, ignore_index, reduction, label_smoothing,
                                "cross_entropy")


def nll_loss(log_probs: Tensor, target, reduction: str = "mean", *, weight=None,
             ignore_index: int = -100) -> Tensor:
    """Negative log-likelihood of integer ``target`` under ``log_probs`` (shapes, ``weight``,
    ``ignore_index`` and the weighted mean as in ``cross_entropy``)."""
    log_probs = _check_logits(log_probs, "nll_loss")
    _check_reduction(reduction, "nll_loss")
    _labels_array(target, "nll_loss")
    return _weighted_class_loss(log_probs, target, weight, ignore_index, reduction, 0.0,
                                "nll_loss")


def mse_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """Mean (or summed) squared error. Shapes must match exactly: a silently broadcast (N, 1)
    against (N,) would compare every prediction with every target."""
    _check_reduction(reduction, "mse_loss")
    target_shape = as_array(target).shape
    if input.shape != target_shape:
        raise ValueError(f"mse_loss: input has shape {input.shape} but target has shape "
                         f"{target_shape}; expected equal shapes")
    diff = input - _as_operand(target, input)
    return _reduce(diff * diff, reduction)


def _as_operand(target, like: Tensor) -> Tensor:
    """``target`` in ``like``'s dtype, so a float64 array does not promote a float32 loss."""
    if isinstance(target, Tensor):
        return target.astype(like.dtype)
    return as_tensor(np.asarray(target).astype(like.dtype, copy=False))


def binary_cross_entropy_with_logits(logits: Tensor, target, reduction: str = "mean") -> Tensor:
    """``-[y log σ(x) + (1-y) log(1-σ(x))]`` in its stable form
    ``(1-y) x + max(-x, 0) + log(1 + exp(-|x|))``: no exp of a large positive number.

    ``max(-x, 0)`` and ``-|x|`` are taken with ``where`` on one side of 0, not with ``maximum``
    and ``abs``: the loss is smooth at 0 but those two have kinks there, and their conventional
    derivatives at the kink (an even split, 0) would lose the σ' term of the second derivative."""
    _check_reduction(reduction, "binary_cross_entropy_with_logits")
    target_shape = as_array(target).shape
    if logits.shape != target_shape:
        raise ValueError(f"binary_cross_entropy_with_logits: logits have shape {logits.shape} but "
                         f"target has shape {target_shape}; expected equal shapes")
    y = _as_operand(target, logits)
    # Written (1 - y) * x + softplus(-x), as PyTorch: then a logit of +inf with target 0 gives
    # inf (x - x*y would be inf - inf*0 = NaN).
    nonneg = logits >= 0  # a comparison (a kernel): a compiled step repeats it
    negative_part = where(nonneg, 0.0, -logits)
    minus_abs = where(nonneg, -logits, logits)
    per_element = (1 - y) * logits + negative_part + (1 + minus_abs.exp()).log()
    return _reduce(per_element, reduction)


def _check_pair(input: Tensor, target, fn: str) -> Tensor:
    """``target`` as an operand of ``input``'s dtype, after checking the shapes are equal (a
    silently broadcast (N, 1) against (N,) would compare every input with every target)."""
    target_shape = as_array(target).shape
    if input.shape != target_shape:
        raise ValueError(f"{fn}: input has shape {input.shape} but target has shape "
                         f"{target_shape}; expected equal shapes")
    return _as_operand(target, input)


def l1_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """Mean (or summed) absolute error; the gradient at a zero difference is 0, as PyTorch."""
    _check_reduction(reduction, "l1_loss")
    return _reduce((input - _check_pair(input, target, "l1_loss")).abs(), reduction)


def smooth_l1_loss(input: Tensor, target, reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """``0.5·d²/β`` where ``|d| < β``, ``|d| - 0.5β`` elsewhere (d = input - target);
    ``β = 0`` is the L1 loss."""
    _check_reduction(reduction, "smooth_l1_loss")
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be >= 0; got {beta}")
    d = input - _check_pair(input, target, "smooth_l1_loss")
    a = d.abs()
    if beta == 0:
        return _reduce(a, reduction)
    return _reduce(where(a.data < beta, d * d * (0.5 / beta), a - 0.5 * beta), reduction)


def huber_loss(input: Tensor, target, reduction: str = "mean", delta: float = 1.0) -> Tensor:
    """``0.5·d²`` where ``|d| < δ``, ``δ(|d| - 0.5δ)`` elsewhere: ``δ·smooth_l1_loss`` with
    β = δ."""
    _check_reduction(reduction, "huber_loss")
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be > 0; got {delta}")
    d = input - _check_pair(input, target, "huber_loss")
    a = d.abs()
    return _reduce(where(a.data < delta, d * d * 0.5, (a - 0.5 * delta) * delta), reduction)


def _clamped_log(p: Tensor) -> Tensor:
    """``max(log p, -100)`` (PyTorch's clamp, so p = 0 costs 100, not infinity). Where p is 0 the
    log is not taken at all, so neither value nor gradient turns into inf or NaN."""
    positive = p.data > 0
    return maximum(where(positive, where(positive, p, 1.0).log(), -100.0), -100.0)


def binary_cross_entropy(input: Tensor, target, weight=None, reduction: str = "mean") -> Tensor:
    """``-w·[y·log p + (1-y)·log(1-p)]`` on probabilities ``p`` in [0, 1], each log clamped at
    -100 as PyTorch does. Prefer ``binary_cross_entropy_with_logits`` on logits: it is stable
    without a clamp. At p exactly 0 or 1 the clamped term's gradient is 0 (PyTorch instead
    divides by ``max(p(1-p), 1e-12)``)."""
    _check_reduction(reduction, "binary_cross_entropy")
    y = _check_pair(input, target, "binary_cross_entropy")
    p = input.data
    if p.size and not (np.all(p >= 0) and np.all(p <= 1)):
        raise ValueError("binary_cross_entropy: input must be probabilities in [0, 1] (apply "
                         "sigmoid first, or use binary_cross_entropy_with_logits); got values "
                         f"in [{np.nanmin(p)}, {np.nanmax(p)}]")
    per_element = -(y * _clamped_log(input) + (1.0 - y) * _clamped_log(1.0 - input))
    if weight is not None:
        per_element = per_element * _as_operand(weight, input)
    return _reduce(per_element, reduction)


def kl_div(input: Tensor, target, reduction: str = "mean", log_target: bool = False) -> Tensor:
    """Kullback-Leibler divergence with ``input`` as log-probabilities, pointwise
    ``target·(log target - input)`` (0 where target is 0), or ``exp(t)·(t - input)`` with
    ``log_target=True``. ``'batchmean'`` divides the sum by the batch size (the true KL per
    sample); ``'mean'`` divides by the number of elements, as PyTorch does. Where a target
    probability is exactly 0 its own gradient (asked for only when the target requires grad) is
    that of ``-t·input`` alone: the true one-sided derivative is -inf, and PyTorch gives NaN."""
    if reduction not in _REDUCTIONS + ("batchmean",):
        raise ValueError(f"kl_div: reduction must be one of {_REDUCTIONS + ('batchmean',)}; got "
                         f"{reduction!r}")
    t = _check_pair(input, target, "kl_div")
    if log_target:
        pointwise = t.exp() * (t - input)
    else:
        positive = t.data > 0
        t_log_t = where(positive, t * where(positive, t, 1.0).log(), 0.0)
        pointwise = t_log_t - t * input
    if reduction == "batchmean":
        return pointwise.sum() * (1.0 / input.shape[0] if input.ndim else 1.0)
    return _reduce(pointwise, reduction)


def l2_penalty(parameters, weight_decay: float) -> Tensor:
    """``weight_decay / 2 * Σ sum(p * p)``, whose gradient is ``weight_decay * p``: added to the
    loss it does what SGD's ``weight_decay`` does."""
    if weight_decay < 0:
        raise ValueError(f"l2_penalty: weight_decay must be >= 0; got {weight_decay}")
    total = None
    for p in parameters:
        term = (p * p).sum()
        total = term if total is None else total + term
    if total is None:
        return Tensor(0.0)
    return total * (0.5 * weight_decay)


def dropout(x: Tensor, p: float = 0.5, training: bool = True, rng=None) -> Tensor:
    """Inverted dropout: zero each element with probability ``p`` and scale the rest by
    ``1/(1-p)``, so the expectation is unchanged and evaluation needs no rescaling.

    The identity when ``training`` is False. ``rng`` is a ``numpy.random.Generator``, an int seed,
    or None for the library's default generator (``tg.manual_seed``).
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be a probability in [0, 1]; got {p}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * as_tensor(np.zeros((), dtype=x.dtype))
    resolve_rng(rng, "dropout")  # a bad rng= is refused here, before anything is drawn
    return x * as_tensor(kernel(_dropout_mask, rng, x.shape, x.dtype, p))


def _dropout_mask(rng, shape, dtype, p):
    """The kept elements scaled by 1/(1-p); ``rng`` is resolved here, at every call (and every
    replay of a compiled function), so draws come from the generator as it is then."""
    u = resolve_rng(rng, "dropout").random(shape, dtype=np.float64 if dtype == np.float64
                                           else np.float32)
    return np.multiply(u >= p, 1.0 / (1.0 - p), dtype=dtype)


def _dropout_mask_into(out, rng, shape, dtype, p):
    """``_dropout_mask`` into ``out``: the same draws (``random(out=)`` fills as it returns)."""
    u = np.empty(shape, dtype=np.float64 if dtype == np.float64 else np.float32)
    resolve_rng(rng, "dropout").random(dtype=u.dtype, out=u)
    return np.multiply(u >= p, 1.0 / (1.0 - p), dtype=dtype, out=out)


_dropout_mask.into = _dropout_mask_into


def accuracy(logits, labels) -> float:
    """The fraction of rows whose largest logit is at the label (integer (N,) or one-hot (N, C))."""
    refuse_capture("accuracy returns a Python number computed from values")
    scores = as_array(logits)
    if scores.ndim != 2:
        raise ValueError(f"accuracy: expected logits of shape (N, C); got shape {scores.shape}")
    arr = as_array(labels)
    if arr.shape == scores.shape and arr.dtype.kind == "f":
        arr = arr.argmax(axis=1)
    elif arr.dtype.kind not in "iu":
        raise TypeError(f"accuracy: labels must be integer class indices of shape "
                        f"({scores.shape[0]},) or one-hot of shape {scores.shape}; got dtype "
                        f"{arr.dtype} and shape {arr.shape}")
    if arr.shape != (scores.shape[0],):
        raise ValueError(f"accuracy: labels have shape {arr.shape}; expected "
                         f"({scores.shape[0]},) to match logits of shape {scores.shape}")
    if arr.size == 0:
        raise ValueError("accuracy: empty batch")
    _check_range(arr, scores.shape[1], "accuracy")
    return float(np.mean(scores.argmax(axis=1) == arr))
