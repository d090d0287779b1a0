"""Floor 4 (nn.layers): the layers, each a few Tensor ops in ``forward`` (loss modules: ``loss.py``).

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
from .._validate import positive_int
from ..autograd import kernel
from ..tensor import Tensor, as_tensor, tensor
from .module import Module, Parameter

__all__ = ["Linear", "Identity", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax",
           "Dropout", "Flatten", "BatchNorm1d", "GELU", "SiLU", "Softplus", "ELU", "LayerNorm",
           "Embedding"]


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
        self.in_features = positive_int(in_features, "in_features", "Linear")
        self.out_features = positive_int(out_features, "out_features", "Linear")
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
        c = self.num_features = positive_int(num_features, "num_features", "BatchNorm1d")
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
                kernel(self._update_running_stats, mean.data, var.data, n)
            y = centered / (var + self.eps).sqrt()
        else:
            mean = self.running_mean.data.reshape(stat_shape)
            inv_std = 1.0 / np.sqrt(self.running_var.data.reshape(stat_shape) + self.eps)
            y = (x - as_tensor(mean.astype(x.dtype, copy=False))) * \
                as_tensor(inv_std.astype(x.dtype, copy=False))
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


# ---------------------------------------------------------------- more activations and layers

class GELU(Module):
    """``x·Φ(x)``; ``approximate="tanh"`` for the tanh form (as PyTorch)."""

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh'; got {approximate!r}")
        self.approximate = approximate

    def forward(self, x):
        return F.gelu(x, self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class SiLU(Module):
    def forward(self, x):
        return F.silu(x)


class Softplus(Module):
    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__()
        if beta <= 0:
            raise ValueError(f"Softplus: beta must be > 0; got {beta}")
        self.beta, self.threshold = beta, threshold

    def forward(self, x):
        return F.softplus(x, self.beta, self.threshold)

    def extra_repr(self):
        return f"beta={self.beta}, threshold={self.threshold}"


class ELU(Module):
    def __init__(self, alpha: float = 1.0):
        super().__init__()
        self.alpha = alpha

    def forward(self, x):
        return F.elu(x, self.alpha)

    def extra_repr(self):
        return f"alpha={self.alpha}"


class LayerNorm(Module):
    """Normalise each sample over its trailing ``normalized_shape`` axes (mean and biased
    variance, as PyTorch), then ``weight`` (ones) and ``bias`` (zeros) of that shape when
    ``elementwise_affine``. The same in training and evaluation: no running statistics."""

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, dtype=np.float32):
        super().__init__()
        self.normalized_shape = F._shape_tuple(normalized_shape, "LayerNorm")
        if eps <= 0:
            raise ValueError(f"LayerNorm: eps must be > 0; got {eps}")
        self.eps, self.elementwise_affine = eps, elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, dtype=dtype))
            if bias:
                self.bias = Parameter(np.zeros(self.normalized_shape, dtype=dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x):
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


class Embedding(Module):
    """A lookup table: integer indices of any shape pick rows of ``weight``
    (num_embeddings, embedding_dim), initialised N(0, 1) as PyTorch. The row at ``padding_idx``
    starts at zero and gets no gradient."""

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 dtype=np.float32, rng=None):
        super().__init__()
        n = self.num_embeddings = positive_int(num_embeddings, "num_embeddings", "Embedding")
        self.embedding_dim = positive_int(embedding_dim, "embedding_dim", "Embedding")
        if padding_idx is not None:
            if not isinstance(padding_idx, (int, np.integer)) or not -n <= padding_idx < n:
                raise ValueError(f"Embedding: padding_idx must be an int in [-{n}, {n}); got "
                                 f"{padding_idx!r}")
            padding_idx = int(padding_idx) % n
        self.padding_idx = padding_idx
        weight = resolve_rng(rng, "Embedding").standard_normal((n, self.embedding_dim))
        if padding_idx is not None:
            weight[padding_idx] = 0
        self.weight = Parameter(weight.astype(dtype))

    def forward(self, indices):
        return F.embedding(indices, self.weight, self.padding_idx)

    def extra_repr(self):
        pad = f", padding_idx={self.padding_idx}" if self.padding_idx is not None else ""
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}"
