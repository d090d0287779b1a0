"""Floor 4 (nn.layers): the layers, each a few Tensor ops in ``forward``, and loss modules.

No layer defines a backward. ``Linear`` keeps PyTorch's ``(out, in)`` weight layout and default
initialisation, and ``BatchNorm1d`` PyTorch's buffers and train/eval behaviour, so state dicts and
results can be compared with PyTorch's.
"""
from __future__ import annotations

import math

import numpy as np

from .. import functional as F
from .._random import resolve_rng
from .._conventions import accepts_torch_keywords
from ..tensor import Tensor, tensor
from .module import Module, Parameter

__all__ = ["Linear", "Identity", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax",
           "Dropout", "Flatten", "BatchNorm1d", "CrossEntropyLoss", "NLLLoss", "MSELoss",
           "BCEWithLogitsLoss"]


def _positive_int(value, what: str, layer: str) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{layer}: {what} must be a positive integer; got {value!r}")
    return int(value)


def _as_input(module: Module, x) -> Tensor:
    """A list or an array given to a layer becomes a tensor as ``tg.tensor`` makes one."""
    if isinstance(x, Tensor):
        return x
    try:
        return tensor(x)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{module!r}: expected a Tensor (or a list or array of numbers); got "
                        f"{type(x).__name__} ({e})") from None


def _shape_error(module: Module, x, expected: str) -> ValueError:
    return ValueError(f"{module!r}: got input of shape {tuple(np.shape(x))}; expected shape "
                      f"{expected}")


class Linear(Module):
    """``y = x @ weight.T + bias`` with ``weight`` of shape ``(out_features, in_features)``.

    Initialised as PyTorch does by default: weight and bias uniform in ±1/√in_features. ``rng``
    is a ``numpy.random.Generator`` or a seed, for reproducible initialisation; without it the
    library's default generator (``tg.manual_seed``) is used.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 dtype=np.float32, rng=None):
        super().__init__()
        self.in_features = _positive_int(in_features, "in_features", "Linear")
        self.out_features = _positive_int(out_features, "out_features", "Linear")
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(f"Linear: dtype must be floating point; got {dtype}")
        rng = resolve_rng(rng, "Linear")
        bound = 1.0 / math.sqrt(self.in_features)
        weight = rng.uniform(-bound, bound, (self.out_features, self.in_features)).astype(dtype)
        # Stored column-major, i.e. weight.T is row-major: that is what ``x @ weight.T`` reads and
        # the layout the engine's gradient arrives in (the transpose of ``x.T @ g``), so the
        # optimiser's passes over weight, grad and state run in step (measured: an SGD-momentum
        # step on a 784-512-256-10 MLP took 0.69 ms this way, 1.55 ms with a row-major weight).
        self.weight = Parameter(np.asfortranarray(weight))
        if bias:
            self.bias = Parameter(rng.uniform(-bound, bound, self.out_features).astype(dtype))
        else:
            self.register_parameter("bias", None)

    def forward(self, x):
        if not isinstance(x, Tensor):
            x = _as_input(self, x)
            if x.dtype.kind in "iub":  # a list of ints: the layer's dtype, as a float list gets
                x = x.astype(self.weight.dtype)
        shape = x.shape
        if not shape or shape[-1] != self.in_features:
            raise _shape_error(self, x, f"(..., {self.in_features})")
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Identity(Module):
    def forward(self, x):
        return x


class ReLU(Module):
    def forward(self, x):
        return x.relu()


class LeakyReLU(Module):
    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        return x.leaky_relu(self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class Sigmoid(Module):
    def forward(self, x):
        return x.sigmoid()


class Tanh(Module):
    def forward(self, x):
        return x.tanh()


class Softmax(Module):
    """Softmax over ``axis`` (PyTorch's ``dim=`` works too)."""

    @accepts_torch_keywords
    def __init__(self, axis: int = -1):
        super().__init__()
        self.axis = axis

    def forward(self, x):
        return _as_input(self, x).softmax(axis=self.axis)

    def extra_repr(self):
        return f"axis={self.axis}"


class LogSoftmax(Softmax):
    def forward(self, x):
        return _as_input(self, x).log_softmax(axis=self.axis)


class Dropout(Module):
    """Inverted dropout while training, the identity in eval mode. ``rng``: a
    ``numpy.random.Generator`` or a seed; None draws from the default generator (``tg.manual_seed``)."""

    def __init__(self, p: float = 0.5, rng=None):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be a probability in [0, 1]; got {p}")
        self.p = p
        self.rng = resolve_rng(rng, "Dropout")

    def forward(self, x):
        return F.dropout(x, self.p, self.training, self.rng)

    def extra_repr(self):
        return f"p={self.p}"


class Flatten(Module):
    """Merge axes ``start_axis..end_axis`` into one (by default all but the batch axis);
    PyTorch's ``start_dim=``/``end_dim=`` work too."""

    @accepts_torch_keywords
    def __init__(self, start_axis: int = 1, end_axis: int = -1):
        super().__init__()
        self.start_axis, self.end_axis = start_axis, end_axis

    def forward(self, x):
        x = _as_input(self, x)
        shape, ndim = x.shape, len(x.shape)
        start = self.start_axis + ndim if self.start_axis < 0 else self.start_axis
        end = self.end_axis + ndim if self.end_axis < 0 else self.end_axis
        if not 0 <= start <= end < ndim:
            raise _shape_error(self, x, f"with axes {self.start_axis}..{self.end_axis}")
        return x.reshape(*shape[:start], -1, *shape[end + 1:])

    def extra_repr(self):
        return f"start_axis={self.start_axis}, end_axis={self.end_axis}"


class BatchNorm1d(Module):
    """Batch normalisation over ``(N, C)`` or ``(N, C, L)`` inputs, composed from ops.

    Training: normalise with the batch mean and biased variance, and update the buffers
    ``running_mean`` and ``running_var`` (with the unbiased variance) by ``momentum``
    (``None``: a cumulative average), counting ``num_batches_tracked``. Eval: normalise with the
    running statistics. ``track_running_stats=False`` always uses batch statistics.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, dtype=np.float32):
        super().__init__()
        c = self.num_features = _positive_int(num_features, "num_features", "BatchNorm1d")
        if eps <= 0:
            raise ValueError(f"BatchNorm1d: eps must be > 0; got {eps}")
        if momentum is not None and not 0.0 <= momentum <= 1.0:
            raise ValueError(f"BatchNorm1d: momentum must be in [0, 1] or None; got {momentum}")
        self.eps, self.momentum = eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = Parameter(np.ones(c, dtype=dtype))
            self.bias = Parameter(np.zeros(c, dtype=dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(c, dtype=dtype))
            self.register_buffer("running_var", np.ones(c, dtype=dtype))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)

    def forward(self, x):
        if x.ndim not in (2, 3) or x.shape[1] != self.num_features:
            raise _shape_error(self, x, f"(N, {self.num_features}) or (N, {self.num_features}, L)")
        axes = (0,) if x.ndim == 2 else (0, 2)
        stat_shape = (1, self.num_features) + (1,) * (x.ndim - 2)
        if self.training or not self.track_running_stats:
            n = x.size // self.num_features
            if self.training and n < 2:
                raise ValueError(f"{self!r}: training needs more than one value per channel; got "
                                 f"input of shape {x.shape}")
            mean = x.mean(axis=axes, keepdims=True)
            centered = x - mean
            var = (centered * centered).mean(axis=axes, keepdims=True)
            if self.training and self.track_running_stats:
                self._update_running_stats(mean.data, var.data, n)
            y = centered / (var + self.eps).sqrt()
        else:
            mean = self.running_mean.data.reshape(stat_shape)
            inv_std = 1.0 / np.sqrt(self.running_var.data.reshape(stat_shape) + self.eps)
            y = (x - Tensor._from_op(mean.astype(x.dtype, copy=False))) * \
                Tensor._from_op(inv_std.astype(x.dtype, copy=False))
        if self.affine:
            y = y * self.weight.reshape(stat_shape) + self.bias.reshape(stat_shape)
        return y

    def _update_running_stats(self, batch_mean, batch_var, n: int):
        self.num_batches_tracked.data += 1
        m = self.momentum
        if m is None:
            m = 1.0 / float(self.num_batches_tracked.data)
        rm, rv = self.running_mean.data, self.running_var.data
        rm *= 1.0 - m
        rm += m * batch_mean.reshape(rm.shape)
        rv *= 1.0 - m
        rv += (m * n / (n - 1)) * batch_var.reshape(rv.shape)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


# ---------------------------------------------------------------- losses as modules

class _Loss(Module):
    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = reduction

    def extra_repr(self):
        return f"reduction={self.reduction!r}" if self.reduction != "mean" else ""


class CrossEntropyLoss(_Loss):
    def __init__(self, reduction: str = "mean", label_smoothing: float = 0.0):
        super().__init__(reduction)
        self.label_smoothing = label_smoothing

    def forward(self, logits, target):
        return F.cross_entropy(logits, target, self.reduction, self.label_smoothing)


class NLLLoss(_Loss):
    def forward(self, log_probs, target):
        return F.nll_loss(log_probs, target, self.reduction)


class MSELoss(_Loss):
    def forward(self, input, target):
        return F.mse_loss(input, target, self.reduction)


class BCEWithLogitsLoss(_Loss):
    def forward(self, logits, target):
        return F.binary_cross_entropy_with_logits(logits, target, self.reduction)
