"""The ops of the differential test (``tests/test_differential.py``): each is one step of a random
program, written once for tinygrad_mlp and once for PyTorch, with the text it prints as.

Names follow the op table (``tests/op_properties.py``) where the op is in it; a test checks that
every row of the table has a step here (or a reason in ``NOT_COMPARED``).

``CONVENTIONS`` is the one place that lists where our semantics deliberately differ from
PyTorch's, and how the programs map across them.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from hypothesis import strategies as st

import tinygrad_mlp as tg
import tinygrad_mlp.functional as F

torch = None  # set by the test module once torch is imported (it is optional)

# ------------------------------------------------------------------------------------------
# Deliberate convention differences, with the reason for each (the one place they are listed)
# ------------------------------------------------------------------------------------------

CONVENTIONS = {
    "transpose() reverses all axes": (
        "numpy's meaning (x.transpose() == x.T for any ndim); PyTorch's .T does the same but "
        "x.t() only exists for <= 2-D. Compared against torch's permute(reversed axes)."),
    "var/std default to ddof=0": (
        "numpy's default (the population variance); PyTorch's default is the unbiased "
        "correction=1. Compared against correction=0."),
    "max/min(axis=...) return values only; tied maxima share the gradient evenly": (
        "numpy's max returns values; the even split is what torch.amax/amin do. PyTorch's "
        "max(dim) returns indices too and routes the whole gradient to one of the tied entries. "
        "Compared against amax/amin."),
    "an axis on a 0-d tensor is an error": (
        "numpy's rule (axis 0 does not exist); PyTorch accepts dim=0 and dim=-1 on a scalar. "
        "Programs reduce a 0-d value only with axis=None, and softmax needs >= 1 dimension."),
    "x.astype(same dtype) returns x itself": (
        "as PyTorch's x.to(same dtype); numpy's astype copies. Every other op returns a new "
        "tensor, even when it changes nothing (a view)."),
    "Python numbers take the tensor's dtype; float32 with a float64 tensor gives float64": (
        "PyTorch's promotion (numpy 2 does the same for Python scalars). Both sides follow it."),
    "matmul of float32 and float64 gives float64": (
        "numpy's promotion, as for every other binary op here and in PyTorch; PyTorch's matmul "
        "alone refuses mixed dtypes. Compared against torch with both operands promoted."),
    "kinks: relu'(0) = 0, abs'(0) = 0, leaky_relu'(0) = slope, maximum/minimum ties split evenly": (
        "all as PyTorch; listed because a program hits these points on purpose."),
    "where PyTorch's derivative is NaN, ours may be a number": (
        "PyTorch's masked formulas (pow at 0, std of a constant group) still differentiate the "
        "branch they mask, so a second derivative there can be 0 * inf = NaN; ours swaps the "
        "operand for a harmless one, and gives the derivative of the masked value (0). Accepted "
        "for derivatives only, never for values."),
    "where PyTorch's derivative is infinite, ours may be NaN": (
        "an infinite gradient arriving at a composed op (sigmoid is e/(1+e) for x < 0; softmax, "
        "var, ...) reaches an inner value by two paths of opposite sign, inf - inf = NaN, where "
        "PyTorch's fused backward multiplies once (g * s * (1 - s)). Only the infinite case: "
        "any finite gradient is compared."),
    "once a value of the program is NaN or infinite, a value or derivative may be NaN on one "
    "side and a number on the other": (
        "how NaN and inf travel is not the same op by op: our "
        "abs is x * sign(x) and "
        "numpy's sign(NaN) is NaN, PyTorch's is 0. maximum/minimum do give the losing side 0 "
        "(pinned in test_numerics). The other way: softmax of a row with +inf shifts by a max "
        "of 0 (an infinite max is replaced), so a finite entry gets 0 where PyTorch's x - max "
        "is NaN. Programs whose values are all finite are compared strictly."),
    "d/da a ** b where b == 0 (a tensor) has derivative 1/a with respect to b": (
        "PyTorch masks d/da a ** b to 0 wherever b == 0, so its mixed second derivative there is "
        "0 and its Hessian is not symmetric (d/da d/db is 1/a); ours masks only at a == 0, where "
        "the formula would be 0 * inf. Programs keep a tensor exponent away from exactly 0 "
        "(x ** 0 with a number is compared, and the b == 0 case is pinned in test_numerics)."),
    "where both results are infinite, their signs may differ (signed zeros)": (
        "a signed zero decides the sign of 1/0, and the two libraries reach 0 by different "
        "roads: d/dx (-x) ** 0.5 at x = 0 is -inf by the limit and by IEEE pow(-0.0, -0.5), but "
        "PyTorch evaluates x ** -0.5 as rsqrt(x), which is -inf at -0.0, and reports +inf; our "
        "cross_entropy of one class is -0.0 (a sum scaled by -1/N), PyTorch's +0.0, so x / loss "
        "is -inf against +inf. Zeros compare equal whatever their sign."),
    "sqrt'(0) = inf, 0 ** b with b < 0 is inf, d/db 0 ** b = 0 for b >= 0, x ** 0 has gradient "
    "0 everywhere, std of a constant group has gradient 0": (
        "all as PyTorch (limits, or PyTorch's masked formulas)."),
}

# Ops of the op table that the programs do not compare with PyTorch, with the reason.
NOT_COMPARED = {
    "view": "reshape that refuses to copy: whether an input is contiguous depends on the steps "
            "before it, so a random program cannot know in advance that view is allowed; "
            "reshape (the same op once allowed) is compared",
}


# ------------------------------------------------------------------------------------------
# Steps
# ------------------------------------------------------------------------------------------

MAX_NDIM = 4
MAX_SIZE = 48
LABEL_SMOOTHING = (0.0, 0.1)


@dataclass(frozen=True)
class DiffOp:
    name: str
    arity: int
    ours: Callable       # ours(*tensors, **params)
    theirs: Callable     # theirs(*torch_tensors, **params)
    text: str            # str.format template: {0}, {1}... the operands, {p[...]} the params
    params: Callable = None   # params(draw, shapes) -> dict (draws with hypothesis)
    when: Callable = None     # when(shapes) -> bool: can the op take operands of these shapes
    leaf: Callable = None     # leaf(draw, shapes) -> array: a new leaf used as the last operand

    def applicable(self, shapes) -> bool:
        return self.when is None or self.when(*shapes)


def _t(array):
    """A constant array as a torch tensor (labels, targets, masks, indices)."""
    return torch.from_numpy(np.array(array))  # a copy (not ascontiguousarray: it makes 0-d 1-d)


def axes_param(draw, shape, allow_none=True):
    """axis None, an int or a tuple of distinct (possibly negative) ints; keepdims."""
    ndim = len(shape)
    if ndim == 0:
        axis = None
    else:
        kind = draw(st.sampled_from(["none", "int", "tuple"] if allow_none else ["int", "tuple"]))
        if kind == "none":
            axis = None
        elif kind == "int":
            axis = draw(st.integers(-ndim, ndim - 1))
        else:
            picked = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim,
                                   unique=True))
            axis = tuple(draw(st.sampled_from([a, a - ndim])) for a in picked)
    return {"axis": axis, "keepdims": draw(st.booleans())}


def _dim(axis, ndim):
    return tuple(range(ndim)) if axis is None else axis


def _reduction(name):
    def params(draw, shapes):
        return axes_param(draw, shapes[0])
    return params


def _amax(x, axis, keepdims):
    return torch.amax(x, dim=_dim(axis, x.ndim), keepdim=keepdims)


def _amin(x, axis, keepdims):
    return torch.amin(x, dim=_dim(axis, x.ndim), keepdim=keepdims)


def _torch_var(x, axis, keepdims):
    return torch.var(x, dim=_dim(axis, x.ndim), correction=0, keepdim=keepdims)


def _torch_std(x, axis, keepdims):
    return torch.std(x, dim=_dim(axis, x.ndim), correction=0, keepdim=keepdims)


def _torch_sum(x, axis, keepdims):
    return x.sum() if axis is None and not keepdims else \
        torch.sum(x, dim=_dim(axis, x.ndim), keepdim=keepdims)


def _torch_mean(x, axis, keepdims):
    return x.mean() if axis is None and not keepdims else \
        torch.mean(x, dim=_dim(axis, x.ndim), keepdim=keepdims)


def _torch_logsumexp(x, axis, keepdims):
    return torch.logsumexp(x, dim=_dim(axis, x.ndim), keepdim=keepdims)


def _one_axis(draw, shapes):
    n = len(shapes[0])
    return {"axis": draw(st.integers(-n, n - 1))}


def _reshape_target(draw, shapes):
    s = shapes[0]
    size = int(np.prod(s))
    options = [s[::-1], (size,), (1,) + s, s + (1,), s, (-1,)]
    if len(s) >= 2:
        options.append((s[0], -1))
    return {"shape": draw(st.sampled_from(options))}


def _broadcast_target(draw, shapes):
    s = shapes[0]
    dims = tuple(draw(st.integers(1, 3)) if n == 1 else n for n in s)
    lead = tuple(draw(st.lists(st.integers(1, 3), max_size=1)))
    return {"shape": lead + dims}


def _swap_axes(draw, shapes):
    n = len(shapes[0])
    return {"axis1": draw(st.integers(-n, n - 1)), "axis2": draw(st.integers(-n, n - 1))}


def _permutation(draw, shapes):
    return {"axes": tuple(draw(st.permutations(range(len(shapes[0])))))}


def _squeeze_axis(draw, shapes):
    ones = [i for i, n in enumerate(shapes[0]) if n == 1]
    return {"axis": draw(st.sampled_from([None] + ones))}


def _expand_axis(draw, shapes):
    n = len(shapes[0])
    return {"axis": draw(st.integers(-n - 1, n))}


def _flatten_start(draw, shapes):
    n = len(shapes[0])
    return {"start": draw(st.integers(-n, n - 1)) if n else 0}


def _basic_index(draw, shapes):
    s = shapes[0]
    first = s[0]
    options = [
        (slice(1, None),), (slice(None, None, 2),), (0,), (-1,), (Ellipsis, 0), (slice(None), None),
        (None, Ellipsis), (slice(0, min(2, first)), Ellipsis),
    ]
    if len(s) >= 2:
        options += [(slice(None), slice(1, None)), (0, slice(None, None, 2)), (Ellipsis, -1, None)]
    return {"index": draw(st.sampled_from(options))}


def _int_index(draw, shapes):
    n = shapes[0][0]
    idx = draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=4))
    return {"index": np.array(idx, dtype=np.int64)}


def _slice_and_array(draw, shapes):
    n = shapes[0][1]
    idx = draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=4))
    return {"index": (slice(None), np.array(idx, dtype=np.int64))}


def _bool_mask(draw, shapes):
    s = shapes[0]
    full = draw(st.booleans())
    mask_shape = s if full else s[:1]
    bits = draw(st.lists(st.booleans(), min_size=int(np.prod(mask_shape)),
                         max_size=int(np.prod(mask_shape))))
    return {"index": np.array(bits, dtype=bool).reshape(mask_shape)}


def _torch_index(index):
    if isinstance(index, tuple):
        return tuple(_t(i) if isinstance(i, np.ndarray) else i for i in index)
    return _t(index) if isinstance(index, np.ndarray) else index


def _torch_matmul(a, w):
    dtype = torch.promote_types(a.dtype, w.dtype)  # see CONVENTIONS
    return a.to(dtype) @ w.to(dtype)


def _matmul_leaf(draw, shapes):
    s = shapes[0]
    k = s[-1]
    right = draw(st.sampled_from(["vector", "matrix"]))
    out_shape = (k,) if right == "vector" else (k, draw(st.integers(1, 3)))
    return draw(leaf_values(out_shape))


def _labels(draw, shapes):
    n, c = shapes[0]
    return {"target": np.array(draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)),
                               dtype=np.int64).reshape(n),
            "reduction": draw(st.sampled_from(["mean", "sum", "none"])),
            "label_smoothing": draw(st.sampled_from(LABEL_SMOOTHING))}


def _float_target(values):
    def params(draw, shapes):
        s = shapes[0]
        return {"target": np.array(draw(st.lists(st.sampled_from(values), min_size=int(np.prod(s)),
                                                 max_size=int(np.prod(s))))).reshape(s),
                "reduction": draw(st.sampled_from(["mean", "sum", "none"]))}
    return params


def _pow_exponent(draw, shapes):
    return {"p": draw(st.sampled_from([0, 1, 2, 3, 0.5, 1.5, -1, 2.0]))}


def _const(x, array):
    """A constant operand in ``x``'s dtype, on either side."""
    if isinstance(x, tg.Tensor):
        return tg.Tensor(np.asarray(array, dtype=x.dtype))
    return _t(np.asarray(array)).to(x.dtype)


def _ndim_at_least(k):
    return lambda s: len(s) >= k


def _can_grow(s):
    return len(s) < MAX_NDIM and int(np.prod(s)) * 3 <= MAX_SIZE


def _broadcastable(*shapes):
    try:
        out = np.broadcast_shapes(*shapes)
    except ValueError:
        return False
    return len(out) <= MAX_NDIM and int(np.prod(out)) <= MAX_SIZE


def _same_shape(a, b):
    return a == b


leaf_elements = st.one_of(
    st.sampled_from([0.0, 0.0, 1.0, -1.0, 0.5, 2.0, -0.5]),  # zeros and ties, on purpose
    st.floats(-3, 3, allow_subnormal=False).map(lambda v: float(np.round(v, 3))))


def leaf_values(shape):
    size = int(np.prod(shape))
    return st.lists(leaf_elements, min_size=size, max_size=size).map(
        lambda v: np.array(v, dtype=np.float64).reshape(shape))


def _op(name, arity, ours, theirs, text, params=None, when=None, leaf=None):
    return DiffOp(name, arity, ours, theirs, text, params, when, leaf)


UNARY, BINARY = 1, 2

OPS = [
    # elementwise arithmetic
    _op("add", BINARY, lambda a, b: a + b, lambda a, b: a + b, "{0} + {1}", when=_broadcastable),
    _op("sub", BINARY, lambda a, b: a - b, lambda a, b: a - b, "{0} - {1}", when=_broadcastable),
    _op("mul", BINARY, lambda a, b: a * b, lambda a, b: a * b, "{0} * {1}", when=_broadcastable),
    _op("div", BINARY, lambda a, b: a / b, lambda a, b: a / b, "{0} / {1}", when=_broadcastable),
    _op("neg", UNARY, lambda a: -a, lambda a: -a, "-{0}"),
    _op("pow_number", UNARY, lambda a, p: a ** p, lambda a, p: a ** p, "{0} ** {p[p]!r}",
        params=_pow_exponent),
    _op("pow_int_negative_base", UNARY, lambda a: (-a) ** 3, lambda a: (-a) ** 3, "(-{0}) ** 3"),
    _op("pow_tensor", BINARY, lambda a, b: a.abs() ** (b.sigmoid() * 2 - 1.5),
        lambda a, b: a.abs() ** (b.sigmoid() * 2 - 1.5), "{0}.abs() ** ({1}.sigmoid() * 2 - 1.5)",
        when=_broadcastable),  # the exponent in (-1.5, 0.5), never exactly 0: see CONVENTIONS
    _op("rpow_number", UNARY, lambda a: 2.0 ** a, lambda a: 2.0 ** a, "2.0 ** {0}"),
    _op("rsub_number", UNARY, lambda a: 1.5 - a, lambda a: 1.5 - a, "1.5 - {0}"),
    _op("rdiv_number", UNARY, lambda a: 1.0 / a, lambda a: 1.0 / a, "1.0 / {0}"),
    _op("square", UNARY, lambda a: a.square(), lambda a: a.square(), "{0}.square()"),
    # elementwise functions
    _op("exp", UNARY, lambda a: a.exp(), lambda a: a.exp(), "{0}.exp()"),
    _op("log", UNARY, lambda a: (a * a + 0.5).log(), lambda a: (a * a + 0.5).log(),
        "({0} * {0} + 0.5).log()"),
    _op("sqrt", UNARY, lambda a: (a * a + 0.25).sqrt(), lambda a: (a * a + 0.25).sqrt(),
        "({0} * {0} + 0.25).sqrt()"),
    _op("abs", UNARY, lambda a: a.abs(), lambda a: a.abs(), "{0}.abs()"),
    _op("relu", UNARY, lambda a: a.relu(), lambda a: a.relu(), "{0}.relu()"),
    _op("leaky_relu", UNARY, lambda a: a.leaky_relu(0.1),
        lambda a: torch.nn.functional.leaky_relu(a, 0.1), "{0}.leaky_relu(0.1)"),
    _op("abs_builtin", UNARY, abs, abs, "abs({0})"),
    _op("sin", UNARY, lambda a: a.sin(), lambda a: a.sin(), "{0}.sin()"),
    _op("cos", UNARY, lambda a: a.cos(), lambda a: a.cos(), "{0}.cos()"),
    _op("pow_method", UNARY, lambda a: a.pow(2), lambda a: a.pow(2), "{0}.pow(2)"),
    _op("clamp", UNARY, lambda a: a.clamp(-0.5, 1.0), lambda a: a.clamp(-0.5, 1.0),
        "{0}.clamp(-0.5, 1.0)"),  # leaves hold -0.5 and 1.0 exactly: the bounds' gradient too
    _op("clip", UNARY, lambda a: a.clip(min=0.0), lambda a: a.clip(min=0.0), "{0}.clip(min=0.0)"),
    _op("sigmoid", UNARY, lambda a: a.sigmoid(), lambda a: a.sigmoid(), "{0}.sigmoid()"),
    _op("tanh", UNARY, lambda a: a.tanh(), lambda a: a.tanh(), "{0}.tanh()"),
    _op("tanh_tails", UNARY, lambda a: (a * 300).tanh(), lambda a: (a * 300).tanh(),
        "({0} * 300).tanh()"),
    _op("erf", UNARY, F.erf, lambda a: torch.erf(a), "F.erf({0})"),
    _op("maximum", BINARY, tg.maximum, lambda a, b: torch.maximum(a, b),
        "tg.maximum({0}, {1})", when=_broadcastable),
    _op("minimum", BINARY, tg.minimum, lambda a, b: torch.minimum(a, b), "tg.minimum({0}, {1})",
        when=_broadcastable),
    _op("where", 3, lambda c, a, b: tg.where(c > 0, a, b), lambda c, a, b: torch.where(c > 0, a, b),
        "tg.where({0} > 0, {1}, {2})", when=_broadcastable),
    # reductions
    _op("sum", UNARY, lambda a, **k: a.sum(**k), _torch_sum,
        "{0}.sum(axis={p[axis]}, keepdims={p[keepdims]})", params=_reduction("sum")),
    _op("mean", UNARY, lambda a, **k: a.mean(**k), _torch_mean,
        "{0}.mean(axis={p[axis]}, keepdims={p[keepdims]})", params=_reduction("mean")),
    _op("var", UNARY, lambda a, **k: a.var(**k), _torch_var,
        "{0}.var(axis={p[axis]}, keepdims={p[keepdims]})", params=_reduction("var")),
    _op("std", UNARY, lambda a, **k: a.std(**k), _torch_std,
        "{0}.std(axis={p[axis]}, keepdims={p[keepdims]})", params=_reduction("std")),
    _op("max", UNARY, lambda a, **k: a.max(**k), _amax,
        "{0}.max(axis={p[axis]}, keepdims={p[keepdims]})", params=_reduction("max")),
    _op("min", UNARY, lambda a, **k: a.min(**k), _amin,
        "{0}.min(axis={p[axis]}, keepdims={p[keepdims]})", params=_reduction("min")),
    _op("logsumexp", UNARY, lambda a, **k: a.logsumexp(**k), _torch_logsumexp,
        "{0}.logsumexp(axis={p[axis]}, keepdims={p[keepdims]})", params=_reduction("logsumexp")),
    _op("softmax", UNARY, lambda a, axis: a.softmax(axis), lambda a, axis: a.softmax(axis),
        "{0}.softmax({p[axis]})", params=_one_axis, when=_ndim_at_least(1)),
    _op("log_softmax", UNARY, lambda a, axis: a.log_softmax(axis),
        lambda a, axis: a.log_softmax(axis), "{0}.log_softmax({p[axis]})", params=_one_axis,
        when=_ndim_at_least(1)),
    # shape and movement
    _op("reshape", UNARY, lambda a, shape: a.reshape(*shape), lambda a, shape: a.reshape(shape),
        "{0}.reshape{p[shape]}", params=_reshape_target),
    _op("transpose", UNARY, lambda a: a.transpose(),
        lambda a: a.permute(tuple(reversed(range(a.ndim)))), "{0}.transpose()"),
    _op("T", UNARY, lambda a: a.T, lambda a: a.permute(tuple(reversed(range(a.ndim)))), "{0}.T"),
    _op("swapaxes", UNARY, lambda a, axis1, axis2: a.swapaxes(axis1, axis2),
        lambda a, axis1, axis2: torch.swapaxes(a, axis1, axis2),
        "{0}.swapaxes({p[axis1]}, {p[axis2]})",
        params=_swap_axes, when=_ndim_at_least(1)),
    _op("transpose_two_axes_swaps", UNARY, lambda a, axis1, axis2: a.transpose(axis1, axis2),
        lambda a, axis1, axis2: torch.transpose(a, axis1, axis2),
        "{0}.transpose({p[axis1]}, {p[axis2]})", params=_swap_axes, when=_ndim_at_least(1)),
    _op("permute", UNARY, lambda a, axes: a.permute(*axes), lambda a, axes: a.permute(axes),
        "{0}.permute{p[axes]}", params=_permutation),
    _op("unsqueeze", UNARY, lambda a, axis: a.unsqueeze(axis), lambda a, axis: a.unsqueeze(axis),
        "{0}.unsqueeze({p[axis]})", params=_expand_axis, when=_can_grow),
    _op("expand", UNARY, lambda a, shape: a.expand(*shape), lambda a, shape: a.expand(shape),
        "{0}.expand{p[shape]}", params=_broadcast_target, when=_can_grow),
    _op("clone", UNARY, lambda a: a.clone(), lambda a: a.clone(), "{0}.clone()"),
    _op("squeeze", UNARY, lambda a, axis: a.squeeze(axis),
        lambda a, axis: a.squeeze() if axis is None else a.squeeze(axis),
        "{0}.squeeze({p[axis]})", params=_squeeze_axis),
    _op("expand_dims", UNARY, lambda a, axis: a.expand_dims(axis),
        lambda a, axis: a.unsqueeze(axis), "{0}.expand_dims({p[axis]})", params=_expand_axis,
        when=_can_grow),
    _op("flatten", UNARY, lambda a, start: a.flatten(start),
        lambda a, start: torch.flatten(a, start), "{0}.flatten({p[start]})", params=_flatten_start),
    _op("broadcast_to", UNARY, lambda a, shape: a.broadcast_to(shape),
        lambda a, shape: a.expand(shape), "{0}.broadcast_to({p[shape]})",
        params=_broadcast_target, when=_can_grow),
    _op("getitem_basic", UNARY, lambda a, index: a[index],
        lambda a, index: a[index], "{0}[{p[index]}]", params=_basic_index,
        when=_ndim_at_least(1)),
    _op("getitem_integer_arrays", UNARY, lambda a, index: a[index],
        lambda a, index: a[_torch_index(index)], "{0}[{p[index]!r}]", params=_int_index,
        when=lambda s: len(s) >= 1 and s[0] > 0),
    _op("getitem_slice_and_array", UNARY, lambda a, index: a[index],
        lambda a, index: a[_torch_index(index)], "{0}[{p[index]!r}]", params=_slice_and_array,
        when=lambda s: len(s) >= 2 and s[1] > 0),
    _op("getitem_bool_mask", UNARY, lambda a, index: a[index],
        lambda a, index: a[_torch_index(index)], "{0}[{p[index]!r}]", params=_bool_mask,
        when=_ndim_at_least(1)),
    _op("matmul", BINARY, lambda a, w: a @ w, _torch_matmul, "{0} @ {1}",
        when=_ndim_at_least(1), leaf=_matmul_leaf),
    _op("astype_float64", UNARY, lambda a: a.astype(np.float64), lambda a: a.double(),
        "{0}.astype(np.float64)"),
    _op("concatenate", BINARY, lambda a, b, axis: tg.concatenate([a, b], axis=axis),
        lambda a, b, axis: torch.cat([a, b], dim=axis),
        "tg.concatenate([{0}, {1}], axis={p[axis]})", params=_one_axis,
        when=lambda a, b: a == b and len(a) >= 1 and 2 * int(np.prod(a)) <= MAX_SIZE),
    _op("stack", BINARY, lambda a, b, axis: tg.stack([a, b], axis=axis),
        lambda a, b, axis: torch.stack([a, b], dim=axis),
        "tg.stack([{0}, {1}], axis={p[axis]})", params=_expand_axis,
        when=lambda a, b: a == b and _can_grow(a)),
    # losses
    _op("cross_entropy", UNARY,
        lambda a, target, reduction, label_smoothing: F.cross_entropy(
            a, target, reduction=reduction, label_smoothing=label_smoothing),
        lambda a, target, reduction, label_smoothing: torch.nn.functional.cross_entropy(
            a, _t(target), reduction=reduction, label_smoothing=label_smoothing),
        "F.cross_entropy({0}, {p[target]!r}, reduction={p[reduction]!r}, "
        "label_smoothing={p[label_smoothing]})", params=_labels, when=lambda s: len(s) == 2 and s[1] > 0),
    _op("mse_loss", UNARY,
        lambda a, target, reduction: F.mse_loss(a, target, reduction=reduction),
        lambda a, target, reduction: torch.nn.functional.mse_loss(
            a, _t(target).to(a.dtype), reduction=reduction),
        "F.mse_loss({0}, {p[target]!r}, reduction={p[reduction]!r})",
        params=_float_target([0.0, 1.0, -1.0, 0.5])),
    _op("binary_cross_entropy_with_logits", UNARY,
        lambda a, target, reduction: F.binary_cross_entropy_with_logits(a, target, reduction),
        lambda a, target, reduction: torch.nn.functional.binary_cross_entropy_with_logits(
            a, _t(target).to(a.dtype), reduction=reduction),
        "F.binary_cross_entropy_with_logits({0}, {p[target]!r}, reduction={p[reduction]!r})",
        params=_float_target([0.0, 1.0, 0.5, 0.25])),
]

BY_NAME = {op.name: op for op in OPS}


# ------------------------------------------------------------------------------------------
# Programs
# ------------------------------------------------------------------------------------------

@dataclass
class Step:
    op: DiffOp
    args: tuple          # indices into the program's values
    params: dict = field(default_factory=dict)
    leaf: np.ndarray = None  # a new leaf made just before the step (its last operand)


class Program:
    """Leaves (float64 arrays), steps, and the seed of the gradient directions. Not a dataclass:
    hypothesis prints a failing example with ``repr``, and this one reads as code."""

    def __init__(self, leaves, steps, seed):
        self.leaves, self.steps, self.seed = leaves, steps, seed

    def __repr__(self):
        names = [f"x{i}" for i in range(len(self.leaves))]
        lines = [f"{n} = Tensor(np.array({a.tolist()!r}), requires_grad=True)"
                 for n, a in zip(names, self.leaves)]
        for step in self.steps:
            if step.leaf is not None:
                n = f"x{len(names)}"
                lines.append(f"{n} = Tensor(np.array({step.leaf.tolist()!r}), requires_grad=True)")
                names.append(n)
            n = f"v{len(names)}"
            lines.append(f"{n} = " + step.op.text.format(*[names[i] for i in step.args],
                                                          p=_printable(step.params)))
            names.append(n)
        lines.append(f"# output: {names[-1]}; gradient/HVP directions from "
                     f"np.random.default_rng({self.seed})")
        return "\n" + "\n".join(lines)

    def size(self):
        return len(self.steps)


def _printable(params):
    out = {}
    for k, v in params.items():
        if isinstance(v, np.ndarray):
            out[k] = _ArrayText(v)
        elif isinstance(v, tuple):
            out[k] = _TupleText(v)
        else:
            out[k] = v
    return out


class _ArrayText:
    def __init__(self, a):
        self.a = a

    def __repr__(self):
        return f"np.array({self.a.tolist()!r})"

    __str__ = __repr__


class _TupleText(tuple):
    def __repr__(self):
        items = [repr(_ArrayText(i)) if isinstance(i, np.ndarray) else
                 ("..." if i is Ellipsis else repr(i)) for i in self]
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"

    __str__ = __repr__


def pick(draw, options):
    """One of ``options``, about uniformly (hypothesis's own draws favour small integers, which
    made most programs one step of ``add``); still shrinks towards the first."""
    options = list(options)
    n = draw(st.integers(0, 2 ** 24))
    # scattered (hypothesis favours small integers), but 0, the value it shrinks to, stays first
    return options[(n * 2654435761) % 2 ** 32 % len(options)]


@st.composite
def programs(draw, max_steps=10):
    """A random program: 1-3 leaves of mutually broadcastable shapes (0-d and size-1 axes
    included), then 1-``max_steps`` steps, each an op of ``OPS`` on earlier values."""
    n_leaves = draw(st.integers(1, 3))
    from hypothesis.extra import numpy as hnp
    shapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=n_leaves, min_dims=0, max_dims=3,
                                                    min_side=1, max_side=3)).input_shapes
    leaves = [draw(leaf_values(s)) for s in shapes]
    value_shapes = [tuple(s) for s in shapes]
    steps = []
    for _ in range(pick(draw, range(1, max_steps + 1))):
        first = draw(st.integers(0, len(value_shapes) - 1))
        candidates = []
        for op in OPS:
            if op.arity == 1 or op.leaf is not None:
                if op.applicable((value_shapes[first],)):
                    candidates.append(op)
            elif any(op.applicable((value_shapes[first],) + (value_shapes[j],) * (op.arity - 1))
                     for j in range(len(value_shapes))):
                candidates.append(op)
        op = pick(draw, candidates)
        args = [first]
        if op.arity > 1 and op.leaf is None:
            for _ in range(op.arity - 1):
                ok = [j for j in range(len(value_shapes))
                      if op.applicable(tuple(value_shapes[i] for i in args) + (value_shapes[j],)
                                       + (value_shapes[first],) * (op.arity - len(args) - 1))]
                args.append(draw(st.sampled_from(ok)))
        arg_shapes = tuple(value_shapes[i] for i in args)
        leaf = None
        if op.leaf is not None:
            leaf = op.leaf(draw, arg_shapes)
            value_shapes.append(leaf.shape)
            args.append(len(value_shapes) - 1)
            arg_shapes += (leaf.shape,)
        params = op.params(draw, arg_shapes) if op.params else {}
        out_shape = _shape_of(op, arg_shapes, params)
        if out_shape is None:  # both sides refuse these operands (e.g. max over an empty axis)
            if leaf is not None:
                value_shapes.pop()
            continue
        steps.append(Step(op, tuple(args), params, leaf))
        value_shapes.append(out_shape)
    seed = draw(st.integers(0, 2 ** 16))
    return Program(leaves, steps, seed)


class Refused(Exception):
    """Raised while drawing a program when exactly one side refuses an op's operands."""


def _shape_of(op, shapes, params):
    """The result shape, from running the op on zeros on both sides; None if both refuse."""
    try:
        ours = op.ours(*[tg.Tensor(np.zeros(s)) for s in shapes], **params).shape
    except (ValueError, IndexError, TypeError) as e:
        ours = e
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # e.g. std with no degrees of freedom
            theirs = tuple(op.theirs(*[torch.zeros(s, dtype=torch.float64) for s in shapes],
                                     **params).shape)
    except (ValueError, IndexError, TypeError, RuntimeError) as e:
        theirs = e
    if isinstance(ours, Exception) and isinstance(theirs, Exception):
        return None
    if isinstance(ours, Exception) or isinstance(theirs, Exception) or ours != theirs:
        raise Refused(f"{op.name} on operands of shapes {shapes} with {params}: ours gives "
                      f"{ours!r}, PyTorch gives {theirs!r}")
    return ours


@st.composite
def single_op_programs(draw, op):
    """A program of one step of ``op`` on leaves with zeros and ties (broadcast operands drawn
    among the same shape, its last axis and 0-d), so that every op is compared every run."""
    shapes = [s for s in [(2, 3), (3, 1, 2), (1, 3), (3,), ()] if op.applicable((s,) * (
        1 if op.leaf is not None else op.arity))]
    first = draw(st.sampled_from(shapes))
    arg_shapes = [first]
    if op.leaf is None:
        for _ in range(op.arity - 1):
            options = [s for s in (first, first[-1:], (), (1,) + first[1:])
                       if op.applicable(tuple(arg_shapes) + (s,) * (op.arity - len(arg_shapes)))]
            arg_shapes.append(draw(st.sampled_from(options)))
    leaves = [draw(leaf_values(s)) for s in arg_shapes]
    args = list(range(len(leaves)))
    leaf = None
    if op.leaf is not None:
        leaf = op.leaf(draw, tuple(arg_shapes))
        arg_shapes.append(leaf.shape)
        args.append(len(leaves))
    params = op.params(draw, tuple(arg_shapes)) if op.params else {}
    if _shape_of(op, tuple(arg_shapes), params) is None:
        from hypothesis import reject
        reject()
    return Program(leaves, [Step(op, tuple(args), params, leaf)], draw(st.integers(0, 2 ** 16)))
