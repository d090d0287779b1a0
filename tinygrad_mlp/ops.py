"""Floor 2 (ops): the primitive operations, the only place in the package that defines a derivative.

Each op is a small ``Function``: ``forward`` computes on ndarrays, ``backward`` returns the input
gradients written with Tensor operations, so the same code gives first derivatives (run without
recording) and higher ones (run with ``create_graph=True``). Gradients of broadcast inputs are
summed back to the input's shape once, by the engine; an op returns them in the broadcast shape.

Everything else (mean, relu, sigmoid, softmax, ...) is composed from these in
``tensor.py``.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from ._special import erf_array
from .autograd import Function, constant, is_grad_enabled, kernel, literal, refuse_capture

__all__ = ["Add", "Sub", "Mul", "Neg", "Div", "Pow", "Exp", "Log", "Sin", "Cos", "Clamp", "Maximum",
           "Where", "Sum", "Max",
           "Reshape", "Transpose", "BroadcastTo", "GetItem", "ScatterAdd", "MatMul", "Cast",
           "Concatenate", "Erf", "Tanh", "Relu"]

# NaN and infinity are values here, as in PyTorch: log(0) is -inf, inf - inf is NaN, and the caller
# (a finite-loss check, a test) decides what they mean. numpy would also print a RuntimeWarning from
# the op's line first. Silenced by a filter on this module's own warnings, which costs nothing until
# a warning is raised; numpy's error state around each forward would cost 0.4-0.8 us per op
# (measured, about a fifth of an op's overhead). Appended, so that a filter the user sets (``-W
# error``, ``simplefilter``) still wins. (``warnings.catch_warnings`` blocks, as test runners use,
# drop filters added inside them: the package is normally imported outside one.)
warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"tinygrad_mlp\.ops\Z",
                        append=True)



# ---------------------------------------------------------------- elementwise arithmetic

class Add(Function):
    __slots__ = ()
    reads_inputs = False

    def forward(self, a, b):
        return a + b

    def backward(self, g):
        return g, g


class Sub(Function):
    # A primitive rather than ``a + (-b)``: one recorded op instead of two, forward and backward,
    # for every subtraction (the softmax family subtracts twice per call).
    __slots__ = ()
    reads_inputs = False

    def forward(self, a, b):
        return a - b

    def backward(self, g):
        return g, (-g if self.needs_grad[1] else None)


class Mul(Function):
    __slots__ = ()

    def forward(self, a, b):
        return a * b

    def backward(self, g):
        a, b = self.inputs
        ga, gb = self.needs_grad
        return (g * b if ga else None), (g * a if gb else None)


class Neg(Function):
    __slots__ = ()
    reads_inputs = False

    def forward(self, a):
        return -a

    def backward(self, g):
        return (-g,)


class Div(Function):
    __slots__ = ()

    def forward(self, a, b):
        return a / b

    def backward(self, g):
        a, b = self.inputs
        ga, gb = self.needs_grad
        g_over_b = g / b
        return (g_over_b if ga else None), (-g_over_b * a / b if gb else None)


class Pow(Function):
    __slots__ = ()

    def forward(self, a, b):
        return a ** b

    def backward(self, g):
        a, b = self.inputs
        ga, gb = self.needs_grad
        # d/da a**b = b * a**(b-1), which is 0 where b == 0 (as PyTorch), also at a == 0 where it
        # would be 0 * 1/0: there the exponent is swapped for 1, so every derivative stays finite
        # (only there: elsewhere d/db of b * a**(b-1) at b == 0 is 1/a, not 0).
        grad_a = grad_b = None
        if ga:
            if is_grad_enabled():  # create_graph: b - 1 must stay differentiable
                refuse_capture("the second derivative of x ** y inspects values")
                b_zero = (b.data == 0) & (a.data == 0)
                if b_zero.any():
                    b_minus_1 = Where.apply(constant(b_zero), constant(np.ones((), b.dtype)),
                                            b - 1)
                else:
                    b_minus_1 = b - 1
            else:
                b_minus_1 = constant(kernel(_pow_exponent_minus_1, a.data, b.data))
            grad_a = g * b * a ** b_minus_1
        # d/db a**b = a**b * log(a), taken as 0 where a == 0 and b >= 0 (as PyTorch; the limit
        # from the right), where it would be 0 * -inf: a is swapped for 1 there, whose log is 0.
        if gb:
            if is_grad_enabled():
                refuse_capture("the second derivative of x ** y inspects values")
                at_zero = (a.data == 0) & (b.data >= 0)
                if at_zero.any():
                    a = Where.apply(constant(at_zero), constant(np.ones((), a.dtype)), a)
            else:
                a = constant(kernel(_pow_base_for_log, a.data, b.data))
            grad_b = g * a ** b * a.log()
        return grad_a, grad_b


def _pow_exponent_minus_1(a, b):
    """``b - 1``, with 1 where a == b == 0 (values as ``Pow.backward`` computes them with ops)."""
    b_minus_1 = np.asarray(b - np.asarray(1, dtype=b.dtype))
    b_zero = (b == 0) & (a == 0)
    return np.where(b_zero, np.ones((), b.dtype), b_minus_1) if b_zero.any() else b_minus_1


def _pow_base_for_log(a, b):
    """``a``, with 1 where a == 0 and b >= 0."""
    return np.where((a == 0) & (b >= 0), np.ones((), a.dtype), a)  # a new array, always


class Exp(Function):
    __slots__ = ("out",)
    saves_output = True

    def forward(self, a):
        self.out = out = np.exp(a)
        return out

    def backward(self, g):
        if is_grad_enabled():  # create_graph: exp(x) must be differentiable again
            return (g * self.inputs[0].exp(),)
        return (g * constant(self.out),)  # the forward's result, not a second exp


class Log(Function):
    __slots__ = ()

    def forward(self, a):
        return np.log(a)

    def backward(self, g):
        return (g / self.inputs[0],)


class Sin(Function):
    __slots__ = ()

    def forward(self, a):
        return np.sin(a)

    def backward(self, g):
        return (g * self.inputs[0].cos(),)


class Cos(Function):
    __slots__ = ()

    def forward(self, a):
        return np.cos(a)

    def backward(self, g):
        return (-g * self.inputs[0].sin(),)


class Clamp(Function):
    """``a`` limited to ``[low, high]`` (either may be None); the gradient passes where
    ``low <= a <= high``, bounds included (as PyTorch), and is 0 outside."""

    __slots__ = ("low", "high")

    def forward(self, a, low=None, high=None):
        self.low, self.high = low, high
        return np.clip(a, low, high)

    def backward(self, g):
        return (g * constant(kernel(_inside, self.inputs[0].data, self.low, self.high, g.dtype)),)


def _inside(a, low, high, dtype):
    inside = np.ones(a.shape, dtype=bool)
    if low is not None:
        inside &= a >= low
    if high is not None:
        inside &= a <= high
    return inside.astype(dtype)


class Maximum(Function):
    """Elementwise maximum; where the two are equal, each side gets half the gradient (as PyTorch)."""

    __slots__ = ()

    def forward(self, a, b):
        return np.maximum(a, b)

    def backward(self, g):
        a, b = self.inputs
        share, below, above = kernel(_maximum_shares, a.data, b.data, g.dtype)
        share_a = constant(share)
        ga, gb = self.needs_grad
        # The losing side gets 0 through where, not g * 0: a NaN or infinite g must not leak
        # into it (as PyTorch).
        zero = literal(np.zeros((), dtype=g.dtype))
        return (Where.apply(constant(below), zero, g * share_a) if ga else None), \
            (Where.apply(constant(above), zero, g * (1 - share_a)) if gb else None)


def _maximum_shares(ad, bd, dtype):
    """a's share of the gradient (1, 1/2 at ties, 0), and where a is below and above b."""
    return (ad > bd).astype(dtype) + (ad == bd).astype(dtype) * 0.5, ad < bd, ad > bd


class Where(Function):
    """``where(cond, a, b)``; ``cond`` is a bool Tensor and gets no gradient."""

    __slots__ = ()

    def forward(self, cond, a, b):
        return np.where(cond, a, b)

    def backward(self, g):
        cond, a, b = self.inputs
        zero = literal(np.zeros((), dtype=g.dtype))
        _, ga, gb = self.needs_grad
        return None, (Where.apply(cond, g, zero) if ga else None), \
            (Where.apply(cond, zero, g) if gb else None)


# ---------------------------------------------------------------- reductions

class Sum(Function):
    __slots__ = ("axis", "keepdims")
    reads_inputs = False

    def forward(self, a, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims
        # The ufunc itself, not np.sum: a warning (inf - inf) is then raised from this module.
        return np.add.reduce(a, axis=axis, keepdims=keepdims)

    def backward(self, g):
        shape = self.inputs[0].shape
        if not self.keepdims:
            g = g.reshape(_keepdims_shape(shape, self.axis))
        return (g.broadcast_to(shape),)


class Max(Function):
    """Maximum over axes; tied entries split the gradient evenly (as PyTorch's ``amax``)."""

    __slots__ = ("axis", "keepdims", "share")
    reads_inputs = False

    def forward(self, a, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims
        out = np.max(a, axis=axis, keepdims=True)
        mask = a == out
        self.share = mask / mask.sum(axis=axis, keepdims=True, dtype=a.dtype)
        return out if keepdims else np.squeeze(out, axis=axis)

    def backward(self, g):
        shape = self.inputs[0].shape
        if not self.keepdims:
            g = g.reshape(_keepdims_shape(shape, self.axis))
        return (g * constant(self.share),)


def _keepdims_shape(shape, axis):
    if axis is None:
        return (1,) * len(shape)
    axes = (axis,) if isinstance(axis, int) else axis
    axes = {ax % len(shape) for ax in axes}
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


# ---------------------------------------------------------------- shape and movement

class Reshape(Function):
    __slots__ = ()
    reads_inputs, makes_view = False, True

    def forward(self, a, shape):
        return a.reshape(shape)

    def backward(self, g):
        return (g.reshape(self.inputs[0].shape),)


class Transpose(Function):
    __slots__ = ("axes",)
    reads_inputs, makes_view = False, True

    def forward(self, a, axes):
        self.axes = axes
        return a.transpose(axes)

    def backward(self, g):
        axes = self.axes
        if axes == (1, 0):  # its own inverse
            return (g.T,)
        return (g.permute(np.argsort(axes).tolist()),)


class BroadcastTo(Function):
    __slots__ = ()
    reads_inputs, makes_view = False, True

    def forward(self, a, shape):
        return np.broadcast_to(a, shape)

    def backward(self, g):
        return (g._sum_to(self.inputs[0].shape),)


class GetItem(Function):
    __slots__ = ("index",)
    reads_inputs, makes_view = False, True

    def forward(self, a, index):
        self.index = index
        try:
            return a[index]
        except IndexError as e:  # here, not in Tensor.__getitem__: a jit replay calls forward
            raise IndexError(f"getitem: index {index!r} is invalid for a tensor of shape "
                             f"{a.shape}: {e}") from None

    def backward(self, g):
        return (ScatterAdd.apply(g, index=self.index, shape=self.inputs[0].shape),)


class ScatterAdd(Function):
    """The adjoint of indexing: a zero array of ``shape`` with ``g`` added at ``index``.

    Repeated integer indices accumulate (``np.add.at``), which is what indexing's gradient needs.
    """

    __slots__ = ("index",)
    reads_inputs = False

    def forward(self, g, index, shape):
        self.index = index
        out = np.zeros(shape, dtype=g.dtype)
        if _is_basic_index(index):
            out[index] = g  # a view: no element is written twice
        else:
            np.add.at(out, index, g)
        return out

    def backward(self, gg):
        return (gg[self.index],)


def _is_basic_index(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return all(i is None or i is Ellipsis or isinstance(i, (int, np.integer, slice))
               for i in items)


class MatMul(Function):
    """``a @ b`` with numpy semantics: 1-D operands and batched (broadcast) leading dimensions.

    ``ta``/``tb`` (2-D operands only) multiply by ``a.T``/``b.T`` instead, without a recorded
    transpose: the backward of a 2-D product is two products with a transposed operand, and this
    way each is one op, not a transpose and a product. BLAS reads the transposed view directly.
    """

    __slots__ = ("ta", "tb")

    def forward(self, a, b, ta=False, tb=False):
        self.ta, self.tb = ta, tb
        return np.matmul(a.T if ta else a, b.T if tb else b)

    def backward(self, g):
        a, b = self.inputs
        ga, gb = self.needs_grad
        ta, tb = self.ta, self.tb
        if ta or tb or (a.ndim == 2 and b.ndim == 2):
            # y = A @ B with A = a.T if ta else a, B = b.T if tb else b: dA = g @ B.T and
            # dB = A.T @ g, and a transposed operand's gradient is the transpose of that.
            grad_a = grad_b = None
            if ga:
                grad_a = MatMul.apply(b, g, ta=tb, tb=True) if ta else \
                    MatMul.apply(g, b, tb=not tb)
            if gb:
                # With tb, db = (A.T @ g).T: a transposed view, column-major like a Linear
                # weight (nn.Linear stores it so), so the optimiser's passes run in step.
                grad_b = MatMul.apply(a, g, ta=not ta)
                if tb:
                    grad_b = grad_b.T
            return grad_a, grad_b
        # Give 1-D operands their implied matrix dimension back, then the matrix rule applies.
        a2 = a.reshape(1, a.shape[0]) if a.ndim == 1 else a
        b2 = b.reshape(b.shape[0], 1) if b.ndim == 1 else b
        if b.ndim == 1:
            g = g.reshape(*g.shape, 1)
        if a.ndim == 1:
            g = g.reshape(*g.shape[:-1], 1, g.shape[-1])
        grad_a = grad_b = None
        if ga:
            grad_a = MatMul.apply(g, b2.swapaxes(-1, -2))
            if a.ndim == 1:
                grad_a = grad_a.reshape(*grad_a.shape[:-2], grad_a.shape[-1])
        if gb:
            grad_b = MatMul.apply(a2.swapaxes(-1, -2), g)
            if b.ndim == 1:
                grad_b = grad_b.reshape(*grad_b.shape[:-1])
        return grad_a, grad_b


class Cast(Function):
    __slots__ = ()
    reads_inputs = False

    def forward(self, a, dtype):
        return a.astype(dtype)

    def backward(self, g):
        return (g.astype(self.inputs[0].dtype),)


class Concatenate(Function):
    __slots__ = ("axis",)
    reads_inputs = False

    def forward(self, *arrays, axis=0):
        self.axis = axis
        return np.concatenate(arrays, axis=axis)

    def backward(self, g):
        grads, start = [], 0
        for t, needs in zip(self.inputs, self.needs_grad):
            stop = start + t.shape[self.axis]
            if needs:
                index = (slice(None),) * (self.axis % g.ndim) + (slice(start, stop),)
                grads.append(g[index])
            else:
                grads.append(None)
            start = stop
        return tuple(grads)


# ---------------------------------------------------------------- special functions

class Erf(Function):
    """The error function. A primitive because numpy has none; its derivative
    ``2/sqrt(pi) * exp(-x**2)`` is composed from ops, so it differentiates again."""

    __slots__ = ()

    def forward(self, a):
        return erf_array(a)

    def backward(self, g):
        x = self.inputs[0]
        return (g * ((-x.square()).exp() * _TWO_OVER_SQRT_PI),)


_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


class Tanh(Function):
    """A primitive because no composition of the others is accurate near 0 in float32:
    ``2*sigmoid(2x) - 1`` and ``(1 - e^-2|x|) / (1 + e^-2|x|)`` both subtract two numbers close to
    1 (relative error 0.19 at x = 1e-7). ``np.tanh`` is accurate everywhere; the derivative
    ``1 - tanh(x)**2`` is 0, not NaN, at +-1000."""

    __slots__ = ("out",)
    saves_output = True

    def forward(self, a):
        self.out = out = np.tanh(a)
        return out

    def backward(self, g):
        if is_grad_enabled():
            # create_graph: the derivative must be differentiable again, and its own derivative
            # accurate. 1 - tanh(x)**2 in float32 is all rounding once tanh(x) rounds near 1
            # (|x| > ~8: 1.2e-7 instead of 1e-8 at x = 9.9, and a second derivative 12x too
            # large); sech(x)**2 = 4e / (1 + e)**2 with e = exp(-2|x|) is accurate everywhere,
            # and its derivative through |x| (sign(x), 0 at 0) is exactly -2 tanh(x) sech(x)**2.
            e = (self.inputs[0].abs() * -2.0).exp()
            d = 1 + e
            return (g * (e * 4.0 / (d * d)),)
        t = constant(self.out)
        return (g * (1 - t * t),)


class Relu(Function):
    """``max(x, 0)`` with relu'(0) = 0, as PyTorch. A primitive rather than ``x * (x > 0)``:
    that product gives -0.0 for negative x (so ``1 / relu(x)`` became -inf, not +inf), NaN for
    relu(-inf), and NaN (inf * 0) where an infinite gradient reaches x <= 0; PyTorch gives +0, 0
    and 0. The backward multiplies by the saved mask (np.where would cost about 5x) and zeroes
    the blocked side again only when that product is not finite."""

    __slots__ = ("mask",)
    reads_inputs = False  # the backward reads its own mask, never the input
    backward_only = ("mask",)  # state for backward, not a parameter of the op (ONNX export)

    def forward(self, a):
        self.mask = a > 0
        return np.maximum(a, 0)

    def backward(self, g):
        mask = self.mask
        if is_grad_enabled():  # create_graph: a Where, differentiable again
            return (Where.apply(constant(mask), g, literal(np.zeros((), dtype=g.dtype))),)
        return (constant(kernel(_relu_grad, g.data, mask)),)


def _relu_grad(g, mask):
    return _relu_grad_into(np.empty(np.shape(g), dtype=g.dtype), g, mask)


def _relu_grad_into(out, g, mask):
    """``_relu_grad`` into ``out`` (a compiled function's buffer, reused from call to call)."""
    np.multiply(g, mask, out=out)
    if not np.isfinite(out).all():
        out[~mask] = 0  # inf or NaN arriving where x <= 0 gives no gradient, as PyTorch
    return out


_relu_grad.into = _relu_grad_into


