"""Floor 2 (tensor): ``Tensor``, its operators, and every composed op written once as a method.

A Tensor wraps a numpy array. Methods either call a primitive from ``ops.py`` or compose several;
nothing here defines a derivative. Composed math that is numerically delicate (softmax family,
sigmoid, losses) is written in its stable form, so its values *and* gradients stay finite.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from . import autograd, ops
from ._conventions import (accepts_torch_keywords, clamp_bounds, is_dtype_name, promote,
                           values_or_indices, variance_convention)
from ._inplace import InPlaceOps
from ._random import resolve_rng
from .autograd import (RemovableHandle, _GradMode, bump_version, kernel, literal, refuse_capture,
                       shared_version)

__all__ = ["Tensor", "tensor", "as_tensor", "where", "maximum", "minimum", "concatenate", "cat",
           "stack", "zeros", "ones", "full", "zeros_like", "ones_like", "arange", "eye", "randn",
           "rand"]

DEFAULT_DTYPE = np.dtype(np.float32)
_new_tensor = object.__new__


def _to_array(data, dtype=None) -> np.ndarray:
    """The dtype policy: numpy float arrays and scalars keep their dtype, Python numbers and lists
    become float32, integer and bool data stay as they are."""
    if isinstance(data, Tensor):
        arr = data.data
    elif isinstance(data, np.ndarray):
        arr = data
    elif isinstance(data, np.generic):  # e.g. ``a.sum()`` of a float64 array: still float64
        arr = np.asarray(data)
    elif isinstance(data, (numbers.Number, list, tuple)) or np.isscalar(data):
        arr = np.asarray(data)
        if dtype is None and arr.dtype.kind in "iuf":
            arr = arr.astype(DEFAULT_DTYPE)
    else:
        raise TypeError(f"Tensor: cannot make a tensor from {type(data).__name__}; expected a "
                        f"numpy array, a list, a number or a Tensor")
    if dtype is not None:
        arr = arr.astype(dtype, copy=False)
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"Tensor: unsupported dtype {arr.dtype}; expected a float, integer or "
                        f"bool array")
    return arr


def _normalize_axis(axis, ndim: int, op: str, shape):
    """Check ``axis`` against the shape, so a bad one is reported by the op that got it."""
    if axis is None or (type(axis) is int and 0 <= axis < ndim):
        return axis
    try:
        axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    except TypeError:
        raise TypeError(f"{op}: axis must be None, an int or a tuple of ints; got {axis!r}") \
            from None
    out = []
    for ax in axes:
        if not isinstance(ax, (int, np.integer)) or not -max(ndim, 1) <= ax < max(ndim, 1) \
                or ndim == 0:
            raise ValueError(f"{op}: axis {axis} is out of range for a tensor of shape {shape}")
        out.append(int(ax) % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: repeated axis in {axis}")
    return out[0] if isinstance(axis, (int, np.integer)) else tuple(out)


class Tensor(InPlaceOps):
    """An n-dimensional array that records the operations applied to it.

    ``Tensor(data, requires_grad=False, dtype=None)``. ``data`` may be a numpy array (shared, not
    copied, like ``np.asarray``), a list, a number or a Tensor. Float arrays keep their dtype;
    Python numbers and lists become float32; integer and bool data stay integer/bool and cannot
    require grad. ``tg.tensor(data)`` copies instead and infers the dtype as PyTorch does.
    """

    # _version: None until the tensor's memory is viewed by another tensor or changed in place;
    # then a one-item list, shared with every view, holding the in-place clock of the last change.
    __slots__ = ("data", "requires_grad", "grad", "_ctx", "_hooks", "_retains_grad", "_version",
                 "__weakref__")
    # Let ``ndarray <op> Tensor`` fall through to the Tensor's reflected operator.
    __array_ufunc__ = None

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        self.data = _to_array(data, dtype)
        self.grad = None
        self._ctx = None
        self._hooks = None
        self._retains_grad = False
        self._version = shared_version(data) if isinstance(data, Tensor) and \
            self.data is data.data else None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    # ------------------------------------------------------------ construction helpers

    @staticmethod
    def _from_op(data):
        """Wrap an op's output without the checks of ``__init__`` (the hot path).

        Always a plain ``Tensor``, whatever subclass the op's inputs are: the result of an op on a
        ``Parameter`` is an ordinary intermediate, not a parameter."""
        t = _new_tensor(Tensor)
        t.data = data if isinstance(data, np.ndarray) else np.asarray(data)
        t.grad = t._ctx = t._hooks = t._version = None
        t.requires_grad = t._retains_grad = False
        return t

    def _operand(self, other) -> "Tensor":
        """A Python number takes this tensor's dtype (weak scalar); arrays keep theirs."""
        if isinstance(other, Tensor):
            return other
        if isinstance(other, (float, int)):
            kind = self.data.dtype.kind
            if kind == "f" or (kind in "iu" and isinstance(other, int)):
                return literal(np.asarray(other, dtype=self.data.dtype))
        try:
            arr = np.asarray(other)
        except Exception:  # pragma: no cover - exotic objects
            arr = None
        if arr is None or arr.dtype.kind not in "fiub":
            raise TypeError(f"unsupported operand: Tensor and {type(other).__name__}")
        if arr.dtype.kind in "iu" and not isinstance(other, np.ndarray) and \
                self.data.dtype.kind == "f":
            arr = arr.astype(self.data.dtype)
        elif isinstance(other, (list, tuple, float)) and arr.dtype.kind == "f":
            arr = arr.astype(self.data.dtype if self.data.dtype.kind == "f" else DEFAULT_DTYPE)
        return Tensor._from_op(arr)

    # ------------------------------------------------------------ attributes

    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    def numel(self) -> int:
        return self.data.size

    def dim(self) -> int:
        return self.data.ndim

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    @property
    def grad_fn(self):
        return self._ctx

    @property
    def T(self) -> "Tensor":
        if self.data.ndim == 2:
            return ops.Transpose.apply(self, axes=(1, 0))
        return self.transpose()

    def numpy(self) -> np.ndarray:
        refuse_capture("Tensor.numpy() hands out values")
        return self.data

    def __array__(self, dtype=None, copy=None):
        """``np.asarray(t)``: the data (shared unless a copy or another dtype is asked for)."""
        refuse_capture("np.asarray(tensor) hands out values")
        arr = self.data
        if dtype is not None and np.dtype(dtype) != arr.dtype:
            if copy is False:
                raise ValueError(f"Tensor.__array__: a {arr.dtype} tensor cannot be given as "
                                 f"{np.dtype(dtype)} without a copy (copy=False was asked)")
            return arr.astype(dtype)
        return arr.copy() if copy else arr

    def __array_function__(self, func, types, args, kwargs):
        # A numpy function given tensors (np.mean(t), np.concatenate([t, u])) computes on their
        # data and returns numpy results, recording nothing. One that writes into a tensor
        # (out=t, np.copyto(t, ...), np.put(t, ...)) is an in-place change: the same rules and
        # the same version bump as t.copy_(...), never a silent change of a saved tensor.
        written = _written_by(func, args, kwargs)
        name = f"np.{getattr(func, '__name__', 'function')}"
        refuse_capture(f"{name} of a tensor computes outside the recorded operations")
        for t in written:
            t._check_writable(name)
        result = func(*_unwrap(args), **_unwrap(kwargs))
        for t in written:
            bump_version(t)
        return result

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item: only a tensor with one element can be converted to a Python "
                             f"number; this one has shape {self.shape}")
        refuse_capture("Tensor.item() reads a value")
        return self.data.item()

    def tolist(self):
        refuse_capture("Tensor.tolist() reads values")
        return self.data.tolist()

    def detach(self) -> "Tensor":
        """The same data, cut from the graph (shares memory and its version counter)."""
        t = Tensor._from_op(self.data)
        t._version = shared_version(self)
        return t

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require gradients; this one is "
                            f"{self.data.dtype} (cast with .astype(np.float32) first)")
        if not requires_grad and self._ctx is not None:
            raise RuntimeError("requires_grad_(False) on a non-leaf tensor; use .detach()")
        self.requires_grad = bool(requires_grad)
        return self

    def retain_grad(self) -> "Tensor":
        """Keep this non-leaf tensor's gradient in ``.grad`` after backward."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad: this tensor does not require grad")
        self._retains_grad = True
        return self

    def register_hook(self, fn) -> RemovableHandle:
        """Call ``fn(grad)`` when this tensor's gradient is computed; a returned value replaces it."""
        if not self.requires_grad:
            raise RuntimeError("register_hook: this tensor does not require grad")
        if self._hooks is None:
            self._hooks = []
        self._hooks.append(fn)
        autograd.structure_changed()  # a compiled function captured without it must not replay
        return RemovableHandle(self._hooks, fn)

    def backward(self, gradient=None, retain_graph: bool = False, create_graph: bool = False):
        autograd.backward(self, gradient, retain_graph, create_graph)

    def __repr__(self):
        body = np.array2string(self.data, separator=", ", prefix="Tensor(")
        extra = f", dtype={self.dtype}"
        if self._ctx is not None:
            extra += f", grad_fn=<{self._ctx.name}>"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"Tensor({body}{extra})"

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    def __bool__(self):
        if self.size != 1:
            raise ValueError(f"the truth value of a tensor of shape {self.shape} is ambiguous; "
                             f"use .any() or .all()")
        refuse_capture("bool(tensor) reads a value")
        return bool(self.data)

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    __hash__ = object.__hash__

    # ------------------------------------------------------------ operators

    def _binary(self, op, other, reflected=False, name=None):
        other = other if isinstance(other, Tensor) else self._operand(other)
        if other.data.dtype is not self.data.dtype:
            self, other = promote(self, other)
        a, b = (other, self) if reflected else (self, other)
        try:
            return op.apply(a, b)
        except ValueError:
            # Checked only on failure (the hot path pays nothing), so the error names the op.
            if a.data.shape != b.data.shape:
                try:
                    np.broadcast_shapes(a.data.shape, b.data.shape)
                except ValueError:
                    raise ValueError(f"{name or op.__name__.lower()}: shapes {a.shape} and "
                                     f"{b.shape} cannot be broadcast together") from None
            raise

    def __add__(self, other):
        return self._binary(ops.Add, other)

    def __radd__(self, other):
        return self._binary(ops.Add, other, reflected=True)

    def __sub__(self, other):
        return self._binary(ops.Sub, other, name="sub")

    def __rsub__(self, other):
        return self._binary(ops.Sub, other, reflected=True, name="sub")

    def __mul__(self, other):
        return self._binary(ops.Mul, other)

    def __rmul__(self, other):
        return self._binary(ops.Mul, other, reflected=True)

    def __truediv__(self, other):
        if self.data.dtype.kind != "f":  # int / int: float32, as PyTorch (numpy gives float64)
            return self._float_operands(other, "__truediv__")
        return self._binary(ops.Div, other)

    def __rtruediv__(self, other):
        if self.data.dtype.kind != "f":
            return self._float_operands(other, "__rtruediv__")
        return self._binary(ops.Div, other, reflected=True)

    def _float_operands(self, other, method):
        other = other if isinstance(other, Tensor) else self._operand(other)
        if other.data.dtype.kind == "f":
            return getattr(self.astype(other.dtype), method)(other)
        return getattr(self.astype(DEFAULT_DTYPE), method)(other.astype(DEFAULT_DTYPE))

    def __pow__(self, other):
        return self._binary(ops.Pow, other)

    def __rpow__(self, other):
        return self._binary(ops.Pow, other, reflected=True)

    def __neg__(self):
        return ops.Neg.apply(self)

    def __pos__(self):
        return self

    def __matmul__(self, other):
        return self.matmul(other)

    def __rmatmul__(self, other):
        return self._operand(other).matmul(self)

    def matmul(self, other) -> "Tensor":
        other = other if isinstance(other, Tensor) else self._operand(other)
        a, b = self.data.shape, other.data.shape
        if len(a) == 2 and len(b) == 2 and a[1] == b[0] and self.data.dtype is other.data.dtype:
            return ops.MatMul.apply(self, other)  # the common case, checked at once
        if self.data.dtype != other.data.dtype:
            da, db = self.data.dtype, other.data.dtype
            if da.kind == "f" and db.kind == "f":
                # As PyTorch: no silent float64 model from one float64 input (np.random.rand).
                raise TypeError(
                    f"matmul: {a} @ {b}: the operands have different dtypes ({da} and {db}); "
                    f"cast one, e.g. x.float() or x.astype(np.float32) (numpy arrays such as "
                    f"np.random.rand(...) are float64; a layer's parameters are float32)")
            self, other = promote(self, other)
        if len(a) == 0 or len(b) == 0:
            raise ValueError(f"matmul: {a} @ {b}: both operands need at least one dimension")
        k_a = a[-1]
        k_b = b[0] if len(b) == 1 else b[-2]
        if k_a != k_b:
            raise ValueError(f"matmul: {a} @ {b}: inner dimensions {k_a} and {k_b} differ")
        if len(a) > 2 or len(b) > 2:
            try:
                np.broadcast_shapes(a[:-2], b[:-2])
            except ValueError:
                raise ValueError(f"matmul: {a} @ {b}: batch dimensions {a[:-2]} and {b[:-2]} "
                                 f"cannot be broadcast together") from None
        return ops.MatMul.apply(self, other)

    # Comparisons give bool tensors and record nothing.
    def _compare(self, fn, other):
        other = other.data if isinstance(other, Tensor) else other
        try:
            return Tensor._from_op(kernel(fn, self.data, other))
        except ValueError:
            raise ValueError(f"comparison: shapes {self.shape} and {np.shape(other)} cannot be "
                             f"broadcast together") from None

    def __lt__(self, other):
        return self._compare(np.less, other)

    def __le__(self, other):
        return self._compare(np.less_equal, other)

    def __gt__(self, other):
        return self._compare(np.greater, other)

    def __ge__(self, other):
        return self._compare(np.greater_equal, other)

    def __eq__(self, other):
        return self._compare(np.equal, other)

    def __ne__(self, other):
        return self._compare(np.not_equal, other)

    @accepts_torch_keywords
    def any(self, axis=None, keepdims=False):
        return Tensor._from_op(kernel(_reduce_any, self.data, axis, keepdims))

    @accepts_torch_keywords
    def all(self, axis=None, keepdims=False):
        return Tensor._from_op(kernel(_reduce_all, self.data, axis, keepdims))

    @accepts_torch_keywords
    def argmax(self, axis=None, keepdims=False):
        axis = _normalize_axis(axis, self.ndim, "argmax", self.shape)
        return Tensor._from_op(kernel(_argmax, self.data, axis, keepdims))

    @accepts_torch_keywords
    def argmin(self, axis=None, keepdims=False):
        axis = _normalize_axis(axis, self.ndim, "argmin", self.shape)
        return Tensor._from_op(kernel(_argmin, self.data, axis, keepdims))

    # ------------------------------------------------------------ elementwise (primitive)

    def _floating(self) -> "Tensor":
        # A float function of an int or bool tensor gives float32, the default (PyTorch's rule);
        # numpy would give float64. Composed functions (sigmoid, softmax, ...) inherit it from exp.
        return self if self.data.dtype.kind == "f" else self.astype(DEFAULT_DTYPE)

    def exp(self):
        return ops.Exp.apply(self._floating())

    def log(self):
        return ops.Log.apply(self._floating())

    def sin(self):
        return ops.Sin.apply(self._floating())

    def cos(self):
        return ops.Cos.apply(self._floating())

    def clamp(self, min=None, max=None):
        """Limit to ``[min, max]`` (numbers; either may be None). The gradient is 1 inside,
        bounds included, and 0 outside (as PyTorch). ``clip`` is the same."""
        return ops.Clamp.apply(self, **clamp_bounds(min, max, "clamp"))

    def clip(self, min=None, max=None):
        return ops.Clamp.apply(self, **clamp_bounds(min, max, "clip"))

    def pow(self, exponent):
        return self ** exponent

    def __abs__(self):
        return self.abs()

    def clone(self) -> "Tensor":
        """A copy of the data that stays in the graph (the gradient passes through)."""
        return ops.Cast.apply(self, dtype=self.dtype)  # astype always copies

    def astype(self, dtype) -> "Tensor":
        dtype = np.dtype(dtype)
        if dtype == self.dtype:
            return self
        if self.requires_grad and dtype.kind != "f":
            # An integer result cannot carry a gradient: cut it from the graph.
            return Tensor._from_op(self.data.astype(dtype))
        return ops.Cast.apply(self, dtype=dtype)

    def float(self) -> "Tensor":
        return self.astype(np.float32)

    def double(self) -> "Tensor":
        return self.astype(np.float64)

    def long(self) -> "Tensor":
        return self.astype(np.int64)

    def int(self) -> "Tensor":
        return self.astype(np.int32)

    def bool(self) -> "Tensor":
        return self.astype(np.bool_)

    def type_as(self, other: "Tensor") -> "Tensor":
        return self.astype(other.dtype)

    def to(self, *args, dtype=None, device=None) -> "Tensor":
        """``to(dtype)``, ``to(other_tensor)`` (its dtype) or ``to("cpu")``; tensors live in host
        memory (numpy), so any other device is refused."""
        for arg in args:
            if isinstance(arg, Tensor):
                dtype = arg.dtype
            elif isinstance(arg, str) and not is_dtype_name(arg):
                device = arg
            else:
                dtype = arg
        if device is not None and str(device).split(":")[0] != "cpu":
            raise RuntimeError(f"to: tinygrad_mlp computes with numpy on the CPU only; got device "
                               f"{device!r} (use \"cpu\" or leave the device out)")
        return self if dtype is None else self.astype(dtype)

    # ------------------------------------------------------------ elementwise (composed)

    def sqrt(self):
        return self ** 0.5

    def square(self):
        return self * self

    def sign(self):
        """-1, 0 or 1, as a constant (its derivative is zero almost everywhere)."""
        return Tensor._from_op(kernel(np.sign, self.data))

    def abs(self):
        # The derivative is sign(x), 0 at 0 (as PyTorch).
        return self * self.sign()

    def relu(self):
        # The derivative at 0 is 0 (as PyTorch).
        if not (self.requires_grad and _GradMode.enabled) and self.data.dtype.kind == "f":
            # Nothing to record (evaluation): the value in one pass, without the mask.
            return Tensor._from_op(kernel(_relu_value, self.data))
        return ops.Relu.apply(self)  # a primitive: see ops.Relu for why not x * (x > 0)

    def leaky_relu(self, negative_slope: float = 0.01):
        return self * Tensor._from_op(kernel(_leaky_slopes, self.data, negative_slope))

    def sigmoid(self):
        # exp(-|x|) never overflows; both branches of the where stay finite, so the gradient does.
        # -|x| is taken with where, not abs(): abs has derivative 0 at 0, which would make
        # sigmoid'(0) (and tanh'(0)) zero.
        nonneg = Tensor._from_op(kernel(_nonneg, self.data))
        e = where(nonneg, -self, self).exp()
        d = 1 + e
        return where(nonneg, 1 / d, e / d)

    def tanh(self):
        return ops.Tanh.apply(self._floating())  # a primitive: see ops.Tanh for why no composition will do

    @accepts_torch_keywords
    def softmax(self, axis=-1):
        axis = _normalize_axis(axis, self.ndim, "softmax", self.shape)
        e = (self - self._detached_max(axis)).exp()
        return e / e.sum(axis=axis, keepdims=True)

    @accepts_torch_keywords
    def log_softmax(self, axis=-1):
        axis = _normalize_axis(axis, self.ndim, "log_softmax", self.shape)
        shifted = self - self._detached_max(axis)
        return shifted - shifted.exp().sum(axis=axis, keepdims=True).log()

    @accepts_torch_keywords
    def logsumexp(self, axis=None, keepdims=False):
        axis = _normalize_axis(axis, self.ndim, "logsumexp", self.shape)
        m = self._detached_max(axis)
        out = (self - m).exp().sum(axis=axis, keepdims=True).log() + m
        return out if keepdims else out.reshape(np.squeeze(out.data, axis=axis).shape)

    def _detached_max(self, axis) -> "Tensor":
        """The max over ``axis`` (keepdims) as a constant, with infinities replaced by 0 so that an
        all ``-inf`` row does not turn into NaN when it is subtracted."""
        return Tensor._from_op(kernel(_finite_max, self.data, axis))

    # ------------------------------------------------------------ reductions

    @accepts_torch_keywords
    def sum(self, axis=None, keepdims=False):
        axis = _normalize_axis(axis, self.ndim, "sum", self.shape)
        return ops.Sum.apply(self, axis=axis, keepdims=keepdims)

    @accepts_torch_keywords
    def mean(self, axis=None, keepdims=False):
        axis = _normalize_axis(axis, self.ndim, "mean", self.shape)
        if self.data.dtype.kind != "f":  # ints and bools: float32, from an exact float64 mean
            return _exact_float32(np.mean, self.data, axis, keepdims)
        return self.sum(axis=axis, keepdims=keepdims) * _reciprocal(_count(self.shape, axis))

    @variance_convention
    def var(self, axis=None, keepdims=False, ddof: int = 0):
        """Variance. With numpy's keywords (``axis=``, ``ddof=``, or none) ``ddof=0`` by default;
        with PyTorch's (``dim=``, ``correction=``, ``unbiased=``) PyTorch's unbiased default,
        ``correction=1``."""
        axis = _normalize_axis(axis, self.ndim, "var", self.shape)
        if self.data.dtype.kind != "f":
            return _exact_float32(np.var, self.data, axis, keepdims, ddof=ddof)
        count = _count(self.shape, axis)
        centered = self - self.mean(axis=axis, keepdims=True)
        return (centered * centered).sum(axis=axis, keepdims=keepdims) * _reciprocal(count - ddof)

    @variance_convention
    def std(self, axis=None, keepdims=False, ddof: int = 0):
        v = self.var(axis=axis, keepdims=keepdims, ddof=ddof)
        refuse_capture("std inspects values (where the variance is 0)")
        zero = v.data == 0
        if self.size:  # a constant group's variance can round to 1e-33 instead of 0 (the mean
            # is off by an ulp), and 1/std would blow its derivatives up: test the group itself
            zero = zero | (np.ptp(self.data, axis=axis, keepdims=keepdims) == 0)
        if not zero.any():
            return v.sqrt()
        # Where the variance is 0 (a group of one, or of equal values) sqrt'(0) is infinite and
        # the variance's own gradient 0, so sqrt(v) would give 0 * inf = NaN. PyTorch takes the
        # gradient there as 0; so do we, by taking the root of a constant 1 there instead.
        zero = Tensor._from_op(zero)
        return where(zero, 0.0, where(zero, 1.0, v).sqrt())

    @values_or_indices
    def max(self, axis=None, keepdims=False):
        """Maximum over ``axis`` (numpy semantics: values only, no indices). Tied entries share
        the gradient evenly."""
        axis = _normalize_axis(axis, self.ndim, "max", self.shape)
        _check_not_empty_group(self.shape, axis, "max")
        return ops.Max.apply(self, axis=axis, keepdims=keepdims)

    @values_or_indices
    def min(self, axis=None, keepdims=False):
        """Minimum over ``axis``; tied entries share the gradient evenly."""
        axis = _normalize_axis(axis, self.ndim, "min", self.shape)
        _check_not_empty_group(self.shape, axis, "min")
        return -((-self).max(axis=axis, keepdims=keepdims))

    # ------------------------------------------------------------ shape

    def reshape(self, *shape):
        shape = _shape_args(shape)
        data = self.data
        if shape == data.shape:
            return ops.Reshape.apply(self, shape=shape)  # a new tensor (a view), never self
        if all(type(n) is int and n >= 0 for n in shape) and math.prod(shape) == data.size:
            return ops.Reshape.apply(self, shape=shape)  # nothing to resolve
        new_shape = _resolve_shape(self.shape, self.size, shape)
        return ops.Reshape.apply(self, shape=new_shape)

    @accepts_torch_keywords
    def flatten(self, start_axis: int = 0, end_axis: int = -1):
        """Merge the axes ``start_axis..end_axis`` into one (``x.flatten(1)`` keeps the batch
        axis); PyTorch's ``start_dim``/``end_dim`` work too."""
        if not self.ndim:
            return self.reshape(1)
        start = _normalize_axis(start_axis, self.ndim, "flatten", self.shape)
        end = _normalize_axis(end_axis, self.ndim, "flatten", self.shape)
        if start > end:
            raise ValueError(f"flatten: start axis {start_axis} comes after end axis {end_axis} "
                             f"for a tensor of shape {self.shape}")
        # the size written out, not -1: -1 is ambiguous for an empty tensor ((0, 1, 1) -> (0, 1))
        return self.reshape(*self.shape[:start], math.prod(self.shape[start:end + 1]),
                            *self.shape[end + 1:])

    def transpose(self, *axes):
        """``x.transpose(a, b)`` swaps two axes (PyTorch), whatever the number of axes;
        ``x.transpose()`` reverses them (numpy, ``x.T``); a permutation of all the axes, as
        separate ints (three or more) or one tuple, reorders them (numpy, like ``permute``)."""
        if len(axes) == 2 and not isinstance(axes[0], (tuple, list)):
            return self.swapaxes(*axes)
        axes = _shape_args(axes)
        if not axes:
            axes = tuple(range(self.ndim))[::-1]
        return self._permute(axes, "transpose")

    def permute(self, *dims):
        """Reorder the axes: ``x.permute(2, 0, 1)`` or ``x.permute((2, 0, 1))``."""
        return self._permute(_shape_args(dims), "permute")

    def _permute(self, axes, op: str):
        ndim = self.ndim
        if not all(isinstance(a, (int, np.integer)) for a in axes) or \
                any(not -ndim <= a < ndim for a in axes) or \
                sorted(a % max(ndim, 1) for a in axes) != list(range(ndim)):
            raise ValueError(f"{op}: axes {tuple(axes)} are not a permutation of the axes of a "
                             f"tensor of shape {self.shape}")
        # Always a new tensor (a view), even for the identity permutation.
        return ops.Transpose.apply(self, axes=tuple(int(a) % ndim for a in axes))

    def swapaxes(self, a: int, b: int):
        """Swap axes ``a`` and ``b`` (also ``transpose(a, b)``)."""
        axes = list(range(self.ndim))
        a = _normalize_axis(a, self.ndim, "swapaxes", self.shape)
        b = _normalize_axis(b, self.ndim, "swapaxes", self.shape)
        axes[a], axes[b] = axes[b], axes[a]
        return self._permute(axes, "swapaxes")

    swapdims = swapaxes

    def broadcast_to(self, *shape):
        shape = _shape_args(shape)
        if shape == self.data.shape:
            return ops.Reshape.apply(self, shape=shape)  # a new tensor (a view), never self
        try:
            # np.broadcast_to raises for a shape that is not a broadcast of this one
            return ops.BroadcastTo.apply(self, shape=shape)
        except ValueError:
            raise ValueError(f"broadcast_to: cannot broadcast shape {self.shape} to "
                             f"{shape}") from None

    def view(self, *shape):
        """``reshape`` that refuses to copy (as PyTorch): the result shares this tensor's memory,
        so an in-place change of one is seen in the other."""
        out = self.reshape(*shape)
        if out.data.size and not np.may_share_memory(out.data, self.data):
            raise RuntimeError(f"view: a tensor of shape {self.shape} laid out as this one is "
                               f"(e.g. after a transpose) cannot be viewed as shape {out.shape} "
                               f"without a copy; use reshape() or clone() first")
        return out

    def unsqueeze(self, dim: int):
        """A new axis of size 1 at ``dim`` (as ``expand_dims``)."""
        return self.expand_dims(dim)

    def expand(self, *sizes):
        """Broadcast to ``sizes``; -1 keeps an axis's size (PyTorch's ``expand``)."""
        sizes = _shape_args(sizes)
        lead = len(sizes) - self.ndim
        if lead < 0:
            raise ValueError(f"expand: {len(sizes)} sizes {tuple(sizes)} for a tensor of shape "
                             f"{self.shape}; give at least one per axis")
        shape = tuple(self.shape[i - lead] if n == -1 and i >= lead else n
                      for i, n in enumerate(sizes))
        if any(not isinstance(n, (int, np.integer)) or n < 0 for n in shape):
            raise ValueError(f"expand: sizes {tuple(sizes)} for a tensor of shape {self.shape}: "
                             f"-1 only keeps an existing axis; new leading axes need a size")
        return self.broadcast_to(shape)

    def expand_dims(self, axis: int):
        if not -self.ndim - 1 <= axis <= self.ndim:
            raise ValueError(f"expand_dims: axis {axis} is out of range for a tensor of shape "
                             f"{self.shape}")
        axis %= self.ndim + 1
        return self.reshape(*self.shape[:axis], 1, *self.shape[axis:])

    @accepts_torch_keywords
    def squeeze(self, axis=None):
        if axis is None:
            return self.reshape(tuple(n for n in self.shape if n != 1))
        axes = _normalize_axis(axis, self.ndim, "squeeze", self.shape)
        axes = (axes,) if isinstance(axes, int) else axes
        for ax in axes:
            if self.shape[ax] != 1:
                raise ValueError(f"squeeze: axis {ax} has size {self.shape[ax]} in a tensor of "
                                 f"shape {self.shape}; only axes of size 1 can be squeezed")
        return self.reshape(tuple(n for i, n in enumerate(self.shape) if i not in axes))

    def _sum_to(self, shape) -> "Tensor":
        """Sum a broadcast gradient back to ``shape``: the one place broadcasting is undone."""
        own = self.data.shape
        lead = len(own) - len(shape)
        ones = tuple(i + lead for i, n in enumerate(shape) if n == 1 and own[i + lead] != 1)
        if not ones:  # only leading axes to drop (a bias): one sum, already of the right shape
            return self.sum(axis=tuple(range(lead))) if lead else self
        out = self.sum(axis=tuple(range(lead)) + ones, keepdims=True)
        return out.reshape(shape) if out.shape != tuple(shape) else out

    def __getitem__(self, index):
        return ops.GetItem.apply(self, index=_convert_index(index))


autograd.register_tensor_class(Tensor)


# Computations on values outside the primitive ops, each run through ``autograd.kernel`` so a
# compiled function repeats them at replay.

def _reduce_any(a, axis, keepdims):
    return np.any(a, axis=axis, keepdims=keepdims)


def _reduce_all(a, axis, keepdims):
    return np.all(a, axis=axis, keepdims=keepdims)


def _argmax(a, axis, keepdims):
    return np.argmax(a, axis=axis, keepdims=keepdims)


def _argmin(a, axis, keepdims):
    return np.argmin(a, axis=axis, keepdims=keepdims)


def _relu_value(a):
    return np.maximum(a, 0)


def _leaky_slopes(a, negative_slope):
    return np.where(a > 0, 1, negative_slope).astype(a.dtype)


def _nonneg(a):
    return a >= 0


def _finite_max(a, axis):
    """The max over ``axis`` (keepdims), with infinities replaced by 0."""
    if a.size == 0:  # any shift will do: the result is empty or exp(-inf) sums to 0
        return np.zeros(ops._keepdims_shape(a.shape, axis), a.dtype)
    m = a.max(axis=axis, keepdims=True)
    if not np.isfinite(m).all():
        m = np.where(np.isfinite(m), m, 0).astype(a.dtype)
    return m


def _exact_float32(stat, data, axis, keepdims, **kw) -> Tensor:
    """mean/var of ints or bools: computed in float64 (exact for counts), given as float32."""
    return Tensor._from_op(np.asarray(stat(data, axis=axis, keepdims=keepdims, dtype=np.float64,
                                           **kw), dtype=DEFAULT_DTYPE))


# numpy functions that write into their first argument (besides any function's out=).
_WRITES_FIRST_ARGUMENT = frozenset(getattr(np, name) for name in (
    "copyto", "fill_diagonal", "put", "place", "putmask", "put_along_axis")
    if hasattr(np, name))


def _written_by(func, args, kwargs) -> list:
    """The tensors a numpy function call writes into."""
    out = kwargs.get("out")
    targets = list(out) if isinstance(out, tuple) else [out]
    if func in _WRITES_FIRST_ARGUMENT and args:
        targets.append(args[0])
    return [t for t in targets if isinstance(t, Tensor)]


def _unwrap(obj):
    """Tensors (also inside lists, tuples and dicts) replaced by their data."""
    if isinstance(obj, Tensor):
        return obj.data
    if isinstance(obj, (list, tuple)):
        return type(obj)(_unwrap(o) for o in obj)
    if isinstance(obj, dict):
        return {k: _unwrap(v) for k, v in obj.items()}
    return obj


def _count(shape, axis) -> int:
    """How many elements a reduction over ``axis`` (already normalised) combines."""
    if axis is None:
        return int(np.prod(shape))
    axes = (axis,) if isinstance(axis, int) else axis
    return int(np.prod([shape[a] for a in axes]))


def _check_not_empty_group(shape, axis, op: str):
    # A maximum over an empty group has no value and no identity to fall back on; over a
    # non-empty axis of an empty tensor it is just an empty result, as in numpy and PyTorch.
    if 0 in shape and _count(shape, axis) == 0:
        raise ValueError(f"{op}: reduction over an empty axis of a tensor of shape {shape} "
                         f"(axis={axis}) has no {'maximum' if op == 'max' else 'minimum'}")


def _reciprocal(n: int) -> float:
    # The mean of nothing, or a variance with ddof >= n, is undefined: NaN, as in numpy and PyTorch.
    return 1.0 / n if n > 0 else float("nan")


def _resolve_shape(old_shape, size, shape) -> tuple:
    """numpy's reshape rule (one -1 allowed), checked here so the error names both shapes."""
    try:
        shape = [int(n) for n in shape]
    except (TypeError, ValueError):
        raise TypeError(f"reshape: shape must be integers; got {shape}") from None
    unknown = [i for i, n in enumerate(shape) if n == -1]
    known = int(np.prod([n for n in shape if n != -1]))
    ok = len(unknown) <= 1 and all(n >= -1 for n in shape)
    if ok and unknown:
        ok = known != 0 and size % known == 0
        if ok:
            shape[unknown[0]] = size // known
    if not ok or int(np.prod(shape)) != size:
        raise ValueError(f"reshape: cannot reshape a tensor of shape {old_shape} ({size} "
                         f"elements) into shape {tuple(shape)}")
    return tuple(shape)


def _convert_index(index):
    """The index as numpy takes it. Index arrays are copied: indexing's backward scatters by the
    index it saved, so a caller who refills an index buffer afterwards must not move the
    gradient (ints, slices and None are immutable and kept)."""
    if isinstance(index, tuple):
        return tuple(_index_item(i) for i in index)
    return _index_item(index)


def _index_item(i):
    if isinstance(i, Tensor):
        return kernel(_copy_index, i.data)
    if isinstance(i, np.ndarray):
        return kernel(_copy_index, i)
    if isinstance(i, list):
        arr = np.array(i)
        literal(arr)  # a list in the code is a constant of the computation
        return arr
    return i


def _copy_index(arr):
    return np.array(arr)


# ---------------------------------------------------------------- module-level functions

def _tensor_operand(x, like=None) -> Tensor:
    if isinstance(x, Tensor):
        return x
    return like._operand(x) if like is not None else Tensor(x)


def where(cond, a, b) -> Tensor:
    """Elementwise ``a`` where ``cond`` else ``b``; the gradient flows to the chosen side."""
    cond = as_array(cond)
    if cond.dtype != np.bool_:
        cond = cond.astype(bool)
    like = a if isinstance(a, Tensor) else b if isinstance(b, Tensor) else None
    a, b = promote(_tensor_operand(a, like), _tensor_operand(b, like))
    try:
        np.broadcast_shapes(cond.shape, a.shape, b.shape)
    except ValueError:
        raise ValueError(f"where: shapes {cond.shape} (cond), {a.shape} and {b.shape} cannot be "
                         f"broadcast together") from None
    return ops.Where.apply(Tensor._from_op(cond), a, b)


def maximum(a, b) -> Tensor:
    """Elementwise maximum; where equal, each side gets half the gradient."""
    like = a if isinstance(a, Tensor) else b if isinstance(b, Tensor) else None
    a, b = _tensor_operand(a, like), _tensor_operand(b, like)
    return a._binary(ops.Maximum, b)


def minimum(a, b) -> Tensor:
    like = a if isinstance(a, Tensor) else b if isinstance(b, Tensor) else None
    a, b = _tensor_operand(a, like), _tensor_operand(b, like)
    return -(-a)._binary(ops.Maximum, -b, name="minimum")


def _common_float(tensors: list) -> list:
    """With any float tensor among them, int tensors take the floats' common dtype (PyTorch's
    rule; numpy would widen int64 with float32 to float64)."""
    floats = [t.data.dtype for t in tensors if t.data.dtype.kind == "f"]
    if not floats or len(floats) == len(tensors):
        return tensors
    dtype = np.result_type(*floats)
    return [t if t.data.dtype.kind in "fb" else t.astype(dtype) for t in tensors]


@accepts_torch_keywords
def concatenate(tensors, axis: int = 0) -> Tensor:
    tensors = _common_float([_tensor_operand(t) for t in tensors])
    if not tensors:
        raise ValueError("concatenate: need at least one tensor")
    ndim = tensors[0].ndim
    axis = _normalize_axis(axis, ndim, "concatenate", tensors[0].shape)
    for t in tensors[1:]:
        if t.ndim != ndim or t.shape[:axis] + t.shape[axis + 1:] != \
                tensors[0].shape[:axis] + tensors[0].shape[axis + 1:]:
            raise ValueError(f"concatenate: shapes {[t.shape for t in tensors]} differ outside "
                             f"axis {axis}")
    return ops.Concatenate.apply(*tensors, axis=axis)


@accepts_torch_keywords
def stack(tensors, axis: int = 0) -> Tensor:
    tensors = [_tensor_operand(t) for t in tensors]
    if not tensors:
        raise ValueError("stack: need at least one tensor")
    shapes = {t.shape for t in tensors}
    if len(shapes) != 1:
        raise ValueError(f"stack: all tensors need the same shape; got {[t.shape for t in tensors]}")
    ndim = tensors[0].ndim + 1
    if not -ndim <= axis < ndim:
        raise ValueError(f"stack: axis {axis} is out of range for stacking tensors of shape "
                         f"{tensors[0].shape} (the result has {ndim} axes)")
    axis %= ndim
    return concatenate([t.expand_dims(axis) for t in tensors], axis=axis)


cat = concatenate  # PyTorch's name


def tensor(data, dtype=None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data``, its dtype inferred as PyTorch does: Python floats
    give float32, ints int64, bools bool; numpy arrays and tensors keep their dtype."""
    arr = _inferred_array(data, dtype, "tensor")
    return Tensor(np.array(arr, dtype=dtype, copy=True), requires_grad=requires_grad)


def as_tensor(data, dtype=None) -> Tensor:
    """``data`` as a tensor, sharing its memory when it can (``torch.as_tensor``).

    A numpy array of a float, integer or bool dtype is wrapped as it is: no copy, so a change to
    one is seen in the other. A Tensor is returned as it is. Anything else (lists, numbers), or a
    ``dtype`` that differs from the data's, gives a new array, its dtype inferred as ``tensor()``
    infers it. A tensor made here requires no grad: it is a constant of the computation (a mask,
    a target, fixed statistics)."""
    if dtype is None and isinstance(data, np.ndarray) and data.dtype.kind in "fiub":
        return Tensor._from_op(data)  # the common case, kept short: called once per step or op
    arr = _inferred_array(data, dtype, "as_tensor")
    if isinstance(data, Tensor):
        return data if dtype is None or arr.dtype == np.dtype(dtype) else data.astype(dtype)
    return Tensor._from_op(arr if dtype is None else arr.astype(dtype, copy=False))


def _inferred_array(data, dtype, who: str) -> np.ndarray:
    """``data`` as an array (not copied if it is one), Python data's dtype inferred as PyTorch
    does; refuses dtypes a tensor cannot hold."""
    if isinstance(data, Tensor):
        arr = data.data
    else:
        try:
            arr = np.asarray(data)
        except ValueError as e:
            raise ValueError(f"{who}: cannot make a tensor from this data ({e})") from None
        from_python = not isinstance(data, (np.ndarray, np.generic))
        if dtype is None and from_python:
            if arr.dtype.kind == "f":
                arr = arr.astype(DEFAULT_DTYPE)
            elif arr.dtype.kind in "iu":
                arr = arr.astype(np.int64)
    if arr.dtype.kind not in "fiub" or (dtype is not None and np.dtype(dtype).kind not in "fiub"):
        raise TypeError(f"{who}: unsupported dtype {np.dtype(dtype) if dtype else arr.dtype}; "
                        f"expected float, integer or bool data")
    return arr


def as_array(x) -> np.ndarray:
    """The ndarray behind ``x``: a Tensor's data, or ``np.asarray(x)`` for anything else (shared,
    not copied). For reading labels, masks and state that may come as either."""
    return x.data if isinstance(x, Tensor) else np.asarray(x)


def zeros(*shape, dtype=DEFAULT_DTYPE, requires_grad=False) -> Tensor:
    return Tensor(np.zeros(_shape_arg(shape), dtype=dtype), requires_grad=requires_grad)


def ones(*shape, dtype=DEFAULT_DTYPE, requires_grad=False) -> Tensor:
    return Tensor(np.ones(_shape_arg(shape), dtype=dtype), requires_grad=requires_grad)


def full(shape, fill_value, dtype=DEFAULT_DTYPE, requires_grad=False) -> Tensor:
    return Tensor(np.full(_shape_arg((shape,)), fill_value, dtype=dtype),
                  requires_grad=requires_grad)


def zeros_like(t, dtype=None, requires_grad=False) -> Tensor:
    return Tensor(np.zeros(t.shape, dtype=dtype or t.dtype), requires_grad=requires_grad)


def ones_like(t, dtype=None, requires_grad=False) -> Tensor:
    return Tensor(np.ones(t.shape, dtype=dtype or t.dtype), requires_grad=requires_grad)


def arange(*args, dtype=DEFAULT_DTYPE) -> Tensor:
    return Tensor(np.arange(*args, dtype=dtype))


def eye(n: int, m=None, dtype=DEFAULT_DTYPE, requires_grad=False) -> Tensor:
    return Tensor(np.eye(n, m, dtype=dtype), requires_grad=requires_grad)


def randn(*shape, dtype=DEFAULT_DTYPE, requires_grad=False, rng=None) -> Tensor:
    rng = resolve_rng(rng, "randn")
    return Tensor(rng.standard_normal(_shape_arg(shape)).astype(dtype),
                  requires_grad=requires_grad)


def rand(*shape, dtype=DEFAULT_DTYPE, requires_grad=False, rng=None) -> Tensor:
    rng = resolve_rng(rng, "rand")
    return Tensor(rng.random(_shape_arg(shape)).astype(dtype), requires_grad=requires_grad)


def _shape_args(args: tuple) -> tuple:
    """Sizes or axes given as separate ints (``f(2, 3)``) or as one tuple or list
    (``f((2, 3))``), as one tuple; checking them is the caller's business."""
    return tuple(args[0]) if len(args) == 1 and isinstance(args[0], (tuple, list)) else args


def _shape_arg(shape) -> tuple:
    shape = _shape_args(shape)
    if not all(isinstance(n, (int, np.integer)) and n >= 0 for n in shape):
        raise ValueError(f"shape must be non-negative integers; got {shape}")
    return tuple(int(n) for n in shape)
