"""Property tests of every op in the table (``tests/op_properties.py``).

For each op hypothesis draws shapes (broadcasting pairs and 0-d included), values in the op's safe
domain and the op's parameters, then checks:
- the forward value against numpy;
- ``backward`` against float64 central differences (``gradcheck``);
- in float32: the output and every gradient stay float32, have the right shapes, agree with the
  float64 gradients, and the inputs are not mutated;
- for smooth ops, second derivatives of the op's square against central differences of the
  first (``gradgradcheck``).
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_mlp as tg
from tinygrad_mlp import Tensor, gradcheck, gradgradcheck

from op_properties import (FIRST_ORDER_EXAMPLES, OPS, SECOND_ORDER_EXAMPLES, SMOOTH_OPS,
                           examples)


def by_name(op):
    return op.name


@pytest.mark.parametrize("op", OPS, ids=by_name)
@settings(max_examples=examples(FIRST_ORDER_EXAMPLES))
@given(data=st.data())
def test_forward_and_gradient(op, data):
    arrays, params = data.draw(op.cases(), label="arrays, params")
    saved = [a.copy() for a in arrays]
    inputs = [Tensor(a, requires_grad=True) for a in arrays]

    out = op.fn(*inputs, **params)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out.data, op.ref(*saved, **params), rtol=1e-10, atol=1e-12)

    assert gradcheck(lambda *xs: op.fn(*xs, **params), inputs)
    for a, s in zip(arrays, saved):
        np.testing.assert_array_equal(a, s)


@pytest.mark.parametrize("op", OPS, ids=by_name)
@settings(max_examples=examples(FIRST_ORDER_EXAMPLES))
@given(data=st.data())
def test_float32_stays_float32(op, data):
    arrays, params = data.draw(op.cases(), label="arrays, params")
    arrays32 = [a.astype(np.float32) for a in arrays]
    saved = [a.copy() for a in arrays32]
    x32 = [Tensor(a, requires_grad=True) for a in arrays32]
    x64 = [Tensor(a.astype(np.float64), requires_grad=True) for a in arrays32]

    # The engine casts what it stores in .grad to the leaf's dtype; a hook sees the gradient as the
    # ops computed it, so this catches a backward that silently promotes to float64.
    arriving = []
    for t in x32:
        t.register_hook(lambda g: arriving.append(g.dtype))

    out32 = op.fn(*x32, **params)
    if op.float32_out:
        assert out32.dtype == np.float32
    v = np.random.default_rng(0).uniform(0.5, 1.5, size=out32.shape)
    out32.backward(v.astype(out32.dtype))
    assert arriving and all(d == np.float32 for d in arriving), arriving
    grads64 = tg.grad((op.fn(*x64, **params) * Tensor(v)).sum(), x64, allow_unused=True)

    for t, g64, s in zip(x32, grads64, saved):
        np.testing.assert_array_equal(t.data, s)  # the op did not write into its input
        assert t.grad is not None and t.grad.dtype == np.float32 and t.grad.shape == t.shape
        # float32 rounding of a few chained ops: relative 1e-4 of the gradient's scale
        scale = max(1.0, float(np.abs(g64.data).max(initial=0)))
        np.testing.assert_allclose(t.grad.data, g64.data, rtol=1e-3, atol=1e-4 * scale)


@pytest.mark.parametrize("op", SMOOTH_OPS, ids=by_name)
@settings(max_examples=examples(SECOND_ORDER_EXAMPLES))
@given(data=st.data())
def test_second_derivatives(op, data):
    arrays, params = data.draw(op.cases(), label="arrays, params")
    inputs = [Tensor(a, requires_grad=True) for a in arrays]

    # Squared: for a linear op (reshape, getitem, matmul in each input...) the second derivative of
    # the op itself is zero whatever its backward's backward does; that of its square is not.
    def squared(*xs):
        y = op.fn(*xs, **params)
        return y * y

    assert gradgradcheck(squared, inputs)


def test_table_covers_every_documented_op():
    # The ops the API promises; a missing line here would silently drop an op from the property tests.
    required = {"add", "sub", "mul", "div", "pow_number", "pow_tensor", "neg", "exp", "log",
                "sqrt", "abs", "relu", "leaky_relu", "sigmoid", "tanh", "maximum", "minimum",
                "where", "sum", "mean", "var", "max", "min", "reshape", "transpose", "flatten",
                "broadcast_to", "getitem_basic", "getitem_integer_arrays", "getitem_bool_mask",
                "matmul", "astype_float64", "concatenate", "stack", "softmax", "log_softmax",
                "logsumexp"}
    names = [op.name for op in OPS]
    assert len(names) == len(set(names))
    assert required <= set(names), required - set(names)
