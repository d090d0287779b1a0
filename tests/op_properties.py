"""The op table behind the property tests: one line per op, so adding an op is adding one line.

An entry says how to call the op on Tensors (``fn``), what numpy computes for the same call
(``ref``, the forward oracle), which values each input may take (``domains``, one per input, so
their number is the arity), which shapes and keyword parameters to draw (``case``), and whether the
op is smooth on those values (then second derivatives are checked too).

Values are drawn away from the places where an op has no derivative (0 for abs/relu, ties for
max/maximum), because a central difference across a kink measures neither side.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Callable

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_mlp as tg

# Small shapes: a gradient check costs two forward passes per input element.
MAX_DIMS, MAX_SIDE = 3, 3

FIRST_ORDER_EXAMPLES = 30
SECOND_ORDER_EXAMPLES = 12
EXAMPLES_SCALE = 10  # under the ``thorough`` hypothesis profile


def examples(n: int) -> int:
    scale = EXAMPLES_SCALE if settings.get_current_profile_name() == "thorough" else 1
    return n * int(os.environ.get("TG_EXAMPLES_SCALE", scale))


# ------------------------------------------------------------------------------- value domains

@dataclass(frozen=True)
class Domain:
    low: float
    high: float
    min_abs: float = 0.0  # keep |x| at least this far from 0, where a kink or a pole sits

    def elements(self):
        if self.min_abs == 0:
            return st.floats(self.low, self.high)
        return st.floats(self.min_abs, self.high) | st.floats(self.low, -self.min_abs)


REAL = Domain(-3, 3)
POSITIVE = Domain(0.2, 3)
NONZERO = Domain(-3, 3, min_abs=1e-3)
DIVISOR = Domain(-3, 3, min_abs=0.5)
EXPONENT = Domain(-2, 2)
SATURATING = Domain(-8, 8)  # sigmoid/tanh: reaches their flat tails, and 0 is in the middle

# ------------------------------------------------------------------------------- shapes, params

shape = hnp.array_shapes(min_dims=0, max_dims=MAX_DIMS, min_side=1, max_side=MAX_SIDE)
shape_1d_up = hnp.array_shapes(min_dims=1, max_dims=MAX_DIMS, min_side=1, max_side=MAX_SIDE)


def unary(shapes=shape):
    return shapes.map(lambda s: ((s,), {}))


def broadcast(n: int):
    """n mutually broadcastable shapes (including 0-d and size-1 axes)."""
    return hnp.mutually_broadcastable_shapes(num_shapes=n, min_dims=0, max_dims=MAX_DIMS,
                                             max_side=MAX_SIDE).map(lambda b: (b.input_shapes, {}))


def with_params(shapes, params_for):
    """A unary case whose keyword parameters depend on the drawn shape."""
    return shapes.flatmap(lambda s: params_for(s).map(lambda p: ((s,), p)))


def signed(axes, ndim):
    """Each axis either as given or as its negative alias."""
    return st.tuples(*[st.sampled_from([a, a - ndim]) for a in axes])


def axis_choice(ndim):
    """axis=None, one axis, or a tuple of distinct axes (possibly empty), negative ones too."""
    options = [st.none()]
    if ndim:
        options.append(st.integers(-ndim, ndim - 1))
        options.append(st.lists(st.integers(0, ndim - 1), unique=True, max_size=ndim)
                       .flatmap(lambda axes: signed(axes, ndim)))
    return st.one_of(options)


def reduction(s):
    return st.fixed_dictionaries({"axis": axis_choice(len(s)), "keepdims": st.booleans()})


def one_axis(s):
    return st.fixed_dictionaries({"axis": st.integers(-len(s), len(s) - 1)})


def reshape_target(s):
    size = int(np.prod(s))
    return st.sampled_from([(-1,), s[::-1], (1,) + s, s + (1,), (size,)]).map(
        lambda t: {"shape": t})


def permutation(s):
    return st.one_of(st.just(()), st.permutations(range(len(s))).flatmap(
        lambda p: signed(p, len(s)))).map(lambda axes: {"axes": axes})


def axis_pair(s):
    n = len(s)
    return st.tuples(st.integers(-n, n - 1), st.integers(-n, n - 1)).map(
        lambda ij: {"i": ij[0], "j": ij[1]})


def clamp_bounds(s):
    # Values are drawn on a 0.1 grid (distinct=True); bounds at x.x5 never tie with one.
    bound = st.integers(-30, 29).map(lambda k: k / 10 + 0.05)
    return st.one_of(
        bound.map(lambda lo: {"min": lo}), bound.map(lambda hi: {"max": hi}),
        st.tuples(bound, bound).map(lambda b: {"min": min(b), "max": max(b)}))


def expand_sizes(s):
    """PyTorch's expand sizes: -1 keeps an axis, a size-1 axis may grow, one new leading axis."""
    dims = [st.sampled_from([-1, 1, 2, 3]) if n == 1 else st.sampled_from([-1, n]) for n in s]
    lead = st.lists(st.integers(1, MAX_SIDE), max_size=1)
    return st.tuples(lead, st.tuples(*dims)).map(lambda t: {"sizes": tuple(t[0]) + t[1]})


def np_expand(a, sizes):
    lead = len(sizes) - a.ndim
    shape = tuple(a.shape[i - lead] if n == -1 else n for i, n in enumerate(sizes))
    return np.broadcast_to(a, shape)


def broadcast_target(s):
    dims = [st.integers(1, MAX_SIDE) if n == 1 else st.just(n) for n in s]
    lead = st.lists(st.integers(1, MAX_SIDE), max_size=1)
    return st.tuples(lead, st.tuples(*dims)).map(lambda t: {"shape": tuple(t[0]) + t[1]})


def basic_index(s):
    return hnp.basic_indices(s, min_dims=0, allow_newaxis=True, allow_ellipsis=True).map(
        lambda i: {"index": i})


def integer_index(s):
    # Small shapes make repeated indices common, which is the case indexing's gradient must add up.
    return hnp.integer_array_indices(s, result_shape=hnp.array_shapes(min_dims=1, max_dims=2,
                                                                      max_side=4)).map(
        lambda i: {"index": i})


def mixed_index(s):
    """A slice, then an integer array (with repeats) on the second axis."""
    ints = hnp.arrays(np.intp, st.integers(1, 4), elements=st.integers(-s[1], s[1] - 1))
    return ints.map(lambda i: {"index": (slice(None), i)})


def bool_index(s):
    full = hnp.arrays(np.bool_, s)
    first_axis = hnp.arrays(np.bool_, s[:1])
    return (full | first_axis).map(lambda m: {"index": m})


def where_cond(shapes):
    out = np.broadcast_shapes(*shapes)
    return hnp.broadcastable_shapes(out, max_dims=len(out)).flatmap(
        lambda cs: hnp.arrays(np.bool_, cs)).map(lambda c: (shapes, {"cond": c}))


def concat_case(n: int):
    """n shapes equal except along ``axis`` (sizes there may be 0)."""
    def build(base):
        ndim = len(base)
        return st.integers(-ndim, ndim - 1).flatmap(lambda axis: st.lists(
            st.integers(0, MAX_SIDE), min_size=n, max_size=n).map(lambda sizes: (
                tuple(base[:axis % ndim] + (k,) + base[axis % ndim + 1:] for k in sizes),
                {"axis": axis})))
    return shape_1d_up.flatmap(build)


def stack_case(n: int):
    small = hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=MAX_SIDE)
    return small.flatmap(lambda s: st.integers(-len(s) - 1, len(s)).map(
        lambda axis: ((s,) * n, {"axis": axis})))


matmul_shapes = hnp.mutually_broadcastable_shapes(
    signature=np.matmul.signature, max_dims=2, max_side=MAX_SIDE).map(
    lambda b: (b.input_shapes, {}))


def number(*choices, key="p"):
    return lambda s: st.sampled_from(choices).map(lambda c: {key: c})


# ------------------------------------------------------------------------------- numpy oracles

def np_sigmoid(a):
    return 1 / (1 + np.exp(-a))


def np_softmax(a, axis):
    e = np.exp(a)  # the drawn values are small, so the plain formula is exact enough
    return e / e.sum(axis=axis, keepdims=True)


def np_logsumexp(a, axis, keepdims):
    return np.log(np.exp(a).sum(axis=axis, keepdims=keepdims))


def np_flatten(a, start_axis):
    start = start_axis % a.ndim if a.ndim else 0
    return a.reshape(a.shape[:start] + (-1,))


# ------------------------------------------------------------------------------- the table

@dataclass(frozen=True)
class Op:
    name: str
    fn: Callable            # fn(*tensors, **params) -> Tensor
    ref: Callable           # ref(*arrays, **params) -> ndarray, the same in numpy
    domains: tuple          # one Domain per differentiable input: len(domains) is the arity
    case: object = None     # strategy of (input shapes, params); default: one shape, no params
    smooth: bool = True     # twice differentiable on the drawn values: check second order
    distinct: bool = False  # all input values pairwise apart (max/maximum have kinks at ties)
    float32_out: bool = True

    @property
    def arity(self) -> int:
        return len(self.domains)

    def cases(self):
        """Strategy for (input arrays in float64, params)."""
        case = self.case if self.case is not None else (
            unary() if self.arity == 1 else broadcast(self.arity))
        return case.flatmap(lambda sp: self._values(sp[0]).map(lambda arrays: (arrays, sp[1])))

    def _values(self, shapes):
        assert len(shapes) == self.arity, self.name
        if not self.distinct:
            return st.tuples(*[hnp.arrays(np.float64, s, elements=d.elements())
                               for s, d in zip(shapes, self.domains)])
        # Distinct values 0.1 apart, shared out over all inputs, so no two can tie.
        sizes = [int(np.prod(s)) for s in shapes]
        lo, hi = int(self.domains[0].low * 10), int(self.domains[0].high * 10)

        def split(values):
            out, start = [], 0
            for s, n in zip(shapes, sizes):
                out.append(np.array(values[start:start + n], dtype=np.float64).reshape(s) / 10)
                start += n
            return tuple(np.asarray(a) for a in out)
        return st.lists(st.integers(lo, hi), unique=True, min_size=sum(sizes),
                        max_size=sum(sizes)).map(split)


def _getitem(a, index):
    return a[index]


OPS = [
    # elementwise arithmetic (broadcasting pairs, 0-d included)
    Op("add", lambda a, b: a + b, np.add, (REAL, REAL)),
    Op("sub", lambda a, b: a - b, np.subtract, (REAL, REAL)),
    Op("mul", lambda a, b: a * b, np.multiply, (REAL, REAL)),
    Op("div", lambda a, b: a / b, np.divide, (REAL, DIVISOR)),
    Op("neg", lambda a: -a, np.negative, (REAL,)),
    Op("pow_number", lambda a, p: a ** p, lambda a, p: a ** p, (POSITIVE,),
       with_params(shape, number(2.0, 3.0, 0.5, -1.5, 2.5))),
    Op("pow_int_negative_base", lambda a, p: a ** p, lambda a, p: a ** p, (REAL,),
       with_params(shape, number(2, 3))),
    Op("pow_tensor", lambda a, b: a ** b, np.power, (POSITIVE, EXPONENT)),
    Op("rpow_number", lambda a: 2.0 ** a, lambda a: 2.0 ** a, (REAL,)),
    Op("rsub_number", lambda a: 1.5 - a, lambda a: 1.5 - a, (REAL,)),
    Op("rdiv_number", lambda a: 10.0 / a, lambda a: 10.0 / a, (DIVISOR,)),
    Op("square", lambda a: a.square(), np.square, (REAL,)),
    # elementwise functions
    Op("exp", lambda a: a.exp(), np.exp, (REAL,)),
    Op("log", lambda a: a.log(), np.log, (POSITIVE,)),
    Op("sqrt", lambda a: a.sqrt(), np.sqrt, (POSITIVE,)),
    Op("abs", lambda a: a.abs(), np.abs, (NONZERO,), smooth=False),
    Op("abs_builtin", abs, np.abs, (NONZERO,), smooth=False),
    Op("sin", lambda a: a.sin(), np.sin, (REAL,)),
    Op("cos", lambda a: a.cos(), np.cos, (REAL,)),
    Op("pow_method", lambda a, p: a.pow(p), lambda a, p: a ** p, (POSITIVE,),
       with_params(shape, number(2.0, 0.5, -1.5))),
    # bounds drawn between the sampled values' grid points, so no value sits on a kink
    Op("clamp", lambda a, **k: a.clamp(**k), lambda a, **k: np.clip(a, k.get("min"), k.get("max")),
       (REAL,), with_params(shape, clamp_bounds), smooth=False, distinct=True),
    Op("clip", lambda a, **k: a.clip(**k), lambda a, **k: np.clip(a, k.get("min"), k.get("max")),
       (REAL,), with_params(shape, clamp_bounds), smooth=False, distinct=True),
    Op("relu", lambda a: a.relu(), lambda a: np.maximum(a, 0), (NONZERO,), smooth=False),
    Op("leaky_relu", lambda a, p: a.leaky_relu(p), lambda a, p: np.where(a > 0, a, p * a),
       (NONZERO,), with_params(shape, number(0.01, 0.2)), smooth=False),
    Op("sigmoid", lambda a: a.sigmoid(), np_sigmoid, (SATURATING,)),
    Op("tanh", lambda a: a.tanh(), np.tanh, (SATURATING,)),
    Op("erf", tg.functional.erf, np.vectorize(math.erf, otypes=[np.float64]), (SATURATING,)),
    Op("tanh_tails", lambda a: a.tanh(), np.tanh, (Domain(-1000, 1000),)),
    Op("maximum", tg.maximum, np.maximum, (REAL, REAL), smooth=False, distinct=True),
    Op("minimum", tg.minimum, np.minimum, (REAL, REAL), smooth=False, distinct=True),
    Op("where", lambda a, b, cond: tg.where(cond, a, b), lambda a, b, cond: np.where(cond, a, b),
       (REAL, REAL), broadcast(2).flatmap(lambda sp: where_cond(sp[0]))),
    # reductions (axis None / int / tuple, negative axes, keepdims)
    Op("sum", lambda a, **k: a.sum(**k), lambda a, **k: np.sum(a, **k), (REAL,),
       with_params(shape, reduction)),
    Op("mean", lambda a, **k: a.mean(**k), lambda a, **k: np.mean(a, **k), (REAL,),
       with_params(shape, reduction)),
    Op("var", lambda a, **k: a.var(**k), lambda a, **k: np.var(a, **k), (REAL,),
       with_params(shape, reduction)),
    Op("std", lambda a, **k: a.std(**k), lambda a, **k: np.std(a, **k), (REAL,),
       with_params(shape, reduction), distinct=True),  # apart: sqrt is steep near var = 0
    Op("max", lambda a, **k: a.max(**k), lambda a, **k: np.max(a, **k), (REAL,),
       with_params(shape, reduction), smooth=False, distinct=True),
    Op("min", lambda a, **k: a.min(**k), lambda a, **k: np.min(a, **k), (REAL,),
       with_params(shape, reduction), smooth=False, distinct=True),
    Op("logsumexp", lambda a, **k: a.logsumexp(**k), np_logsumexp, (REAL,),
       with_params(shape, reduction)),
    Op("softmax", lambda a, axis: a.softmax(axis), np_softmax, (REAL,),
       with_params(shape_1d_up, one_axis)),
    Op("log_softmax", lambda a, axis: a.log_softmax(axis),
       lambda a, axis: np.log(np_softmax(a, axis)), (REAL,), with_params(shape_1d_up, one_axis)),
    # shape and movement
    Op("reshape", lambda a, shape: a.reshape(*shape), lambda a, shape: a.reshape(shape), (REAL,),
       with_params(shape, reshape_target)),
    Op("transpose", lambda a, axes: a.transpose(axes),
       lambda a, axes: np.transpose(a, axes or None), (REAL,), with_params(shape, permutation)),
    Op("transpose_two_axes_swaps", lambda a, i, j: a.transpose(i, j),
       lambda a, i, j: np.swapaxes(a, i, j), (REAL,), with_params(shape_1d_up, axis_pair)),
    Op("swapaxes", lambda a, i, j: a.swapaxes(i, j), lambda a, i, j: np.swapaxes(a, i, j),
       (REAL,), with_params(shape_1d_up, axis_pair)),
    Op("permute", lambda a, axes: a.permute(*axes), lambda a, axes: np.transpose(a, axes),
       (REAL,), with_params(shape, lambda s: permutation(s).filter(
           lambda p: len(p["axes"]) == len(s)))),
    Op("unsqueeze", lambda a, dim: a.unsqueeze(dim), lambda a, dim: np.expand_dims(a, dim),
       (REAL,), with_params(shape, lambda s: st.integers(-len(s) - 1, len(s)).map(
           lambda k: {"dim": k}))),
    Op("expand", lambda a, sizes: a.expand(*sizes), np_expand, (REAL,),
       with_params(hnp.array_shapes(min_dims=0, max_dims=2, max_side=MAX_SIDE), expand_sizes)),
    Op("view", lambda a, shape: a.view(*shape), lambda a, shape: a.reshape(shape), (REAL,),
       with_params(shape, reshape_target)),
    Op("clone", lambda a: a.clone(), np.copy, (REAL,)),
    Op("T", lambda a: a.T, lambda a: a.T, (REAL,)),
    Op("flatten", lambda a, start_axis: a.flatten(start_axis), np_flatten, (REAL,),
       with_params(shape_1d_up, lambda s: st.integers(-len(s), len(s) - 1).map(
           lambda k: {"start_axis": k}))),
    Op("broadcast_to", lambda a, shape: a.broadcast_to(shape), np.broadcast_to, (REAL,),
       with_params(hnp.array_shapes(min_dims=0, max_dims=2, max_side=MAX_SIDE),
                   broadcast_target)),
    Op("getitem_basic", lambda a, index: a[index], _getitem, (REAL,),
       with_params(shape, basic_index)),
    Op("getitem_integer_arrays", lambda a, index: a[index], _getitem, (REAL,),
       with_params(shape_1d_up, integer_index)),
    Op("getitem_slice_and_array", lambda a, index: a[index], _getitem, (REAL,),
       with_params(hnp.array_shapes(min_dims=2, max_dims=3, max_side=MAX_SIDE), mixed_index)),
    Op("getitem_bool_mask", lambda a, index: a[index], _getitem, (REAL,),
       with_params(shape_1d_up, bool_index)),
    Op("matmul", lambda a, b: a @ b, np.matmul, (REAL, REAL), matmul_shapes),
    Op("astype_float64", lambda a: a.astype(np.float64), lambda a: a.astype(np.float64), (REAL,),
       float32_out=False),
    Op("concatenate", lambda a, b, c, axis: tg.concatenate([a, b, c], axis=axis),
       lambda a, b, c, axis: np.concatenate([a, b, c], axis=axis), (REAL, REAL, REAL),
       concat_case(3)),
    Op("stack", lambda a, b, c, axis: tg.stack([a, b, c], axis=axis),
       lambda a, b, c, axis: np.stack([a, b, c], axis=axis), (REAL, REAL, REAL), stack_case(3)),
]

SMOOTH_OPS = [op for op in OPS if op.smooth]
