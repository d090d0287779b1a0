"""Numerical edge cases, each pinned to what PyTorch gives (numbers written out, no torch needed):
powers at 0, std of a constant group, the BCE loss's curvature at a zero logit, tanh's accuracy
near 0 and its tails, shape ops that change nothing, reductions of empty tensors, and NaN/inf
inputs going through ops without numpy RuntimeWarnings.
"""
import numpy as np
import pytest

import tinygrad_mlp as tg
import tinygrad_mlp.functional as F
from tinygrad_mlp import Tensor


def leaf(values, dtype=np.float64):
    return Tensor(np.array(values, dtype=dtype), requires_grad=True)


def second_derivative_diagonal(fn, x):
    """d²(sum fn(x))/dx_i² for an elementwise fn, through create_graph."""
    (g,) = tg.grad(fn(x).sum(), [x], create_graph=True)
    (h,) = tg.grad(g.sum(), [x])
    return h.data


# ------------------------------------------------------------------------------ powers at zero

def test_first_derivative_of_x_to_the_zero_is_zero_at_zero():
    x = leaf([0.0, 2.0])
    (g,) = tg.grad((x ** 0).sum(), [x])
    np.testing.assert_array_equal(g.data, [0.0, 0.0])


def test_second_derivative_of_x_to_the_one_is_zero_at_zero():
    x = leaf([0.0, 2.0])
    np.testing.assert_array_equal(second_derivative_diagonal(lambda t: t ** 1, x), [0.0, 0.0])
    np.testing.assert_array_equal(second_derivative_diagonal(lambda t: t ** 0, x), [0.0, 0.0])
    np.testing.assert_array_equal(second_derivative_diagonal(lambda t: t ** 2, x), [2.0, 2.0])


def test_power_of_zero_with_a_tensor_exponent():
    a, b = leaf([0.0, 0.0, 0.0, 0.5]), leaf([0.0, 1.0, 2.0, 0.0])
    ga, gb = tg.grad((a ** b).sum(), [a, b])
    # d/da = b a^(b-1): 0 (b = 0), 1 (b = 1), 0 (b = 2), 0 (b = 0); d/db = a^b log a: 0 at a = 0
    np.testing.assert_array_equal(ga.data, [0.0, 1.0, 0.0, 0.0])
    np.testing.assert_allclose(gb.data, [0.0, 0.0, 0.0, np.log(0.5)])


def test_mixed_second_derivative_of_a_power_at_exponent_zero_is_kept_away_from_zero():
    # d/db (b a^(b-1)) at b = 0 is 1/a: only at a == 0 (where it is 0 * 1/0) is anything replaced
    a, b = leaf([0.5, 2.0]), leaf([0.0, 0.0])
    (ga,) = tg.grad((a ** b).sum(), [a], create_graph=True)
    (gab,) = tg.grad(ga.sum(), [b])
    np.testing.assert_allclose(gab.data, [2.0, 0.5])


def test_sqrt_at_zero_is_still_infinite_like_pytorch():
    x = leaf([0.0])
    (g,) = tg.grad(x.sqrt().sum(), [x])
    assert g.data[0] == np.inf


# ------------------------------------------------------------------------------ std

def test_std_of_a_group_of_one_has_zero_gradient():
    x = leaf([[1.0], [2.0]])
    x.std(axis=1).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [[0.0], [0.0]])


def test_std_of_a_constant_group_has_zero_gradient_and_others_are_unchanged():
    x = leaf([[3.0, 3.0], [1.0, 2.0]])
    s = x.std(axis=1)
    np.testing.assert_allclose(s.data, [0.0, 0.5])
    (g,) = tg.grad(s.sum(), [x], create_graph=True)
    np.testing.assert_allclose(g.data, [[0.0, 0.0], [-0.5, 0.5]])
    (h,) = tg.grad(g.sum(), [x])
    assert np.isfinite(h.data).all()


# ------------------------------------------------------------------------------ BCE with logits

def test_bce_with_logits_second_derivative_at_a_zero_logit():
    x = leaf([0.0, 0.0, 1e-300, 2.0])
    y = np.array([0.0, 1.0, 0.5, 1.0])
    loss = lambda t: F.binary_cross_entropy_with_logits(t, y, reduction="none")  # noqa: E731
    (g,) = tg.grad(loss(x).sum(), [x], create_graph=True)
    sig = 1 / (1 + np.exp(-x.data))
    np.testing.assert_allclose(g.data, sig - y)
    (h,) = tg.grad(g.sum(), [x])
    np.testing.assert_allclose(h.data, sig * (1 - sig))  # 0.25 at 0, not 0


def test_bce_with_logits_values_stay_finite_at_large_logits():
    x = leaf([-1000.0, 1000.0, 0.0])
    loss = F.binary_cross_entropy_with_logits(x, np.array([1.0, 0.0, 1.0]), reduction="none")
    np.testing.assert_allclose(loss.data, [1000.0, 1000.0, np.log(2)])
    loss.sum().backward()
    np.testing.assert_allclose(x.grad.data, [-1.0, 1.0, -0.5])


# ------------------------------------------------------------------------------ tanh

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tanh_is_accurate_near_zero_and_everywhere(dtype):
    x = np.concatenate([[0.0, 1e-30, 1e-7, -1e-5, 1e-3, -0.3], np.linspace(-20, 20, 81)])
    x = x.astype(dtype)
    got = Tensor(x).tanh().data
    exact = np.tanh(x.astype(np.float64))
    assert got.dtype == dtype
    tol = 4 * np.finfo(dtype).eps
    np.testing.assert_allclose(got, exact, rtol=tol, atol=np.finfo(dtype).tiny)


def test_why_tanh_is_a_primitive():
    # Every composition of exp (no expm1) subtracts two numbers close to 1 near 0: in float32
    # the relative error at 1e-7 is of order 1, against 0 for the primitive.
    x = Tensor(np.array([1e-7, -1e-5], dtype=np.float32))
    exact = np.tanh(x.data.astype(np.float64))
    via_sigmoid = (2 * (2 * x).sigmoid() - 1).data
    e = (-2 * x.abs()).exp()
    via_exp = (x.sign() * (1 - e) / (1 + e)).data
    for composed in (via_sigmoid, via_exp):
        assert np.abs(composed / exact - 1).max() > 1e-3
    np.testing.assert_allclose(x.tanh().data, exact, rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tanh_gradients_are_finite_in_the_tails(dtype):
    x = leaf([-1000.0, -20.0, 0.0, 20.0, 1000.0], dtype)
    (g,) = tg.grad(x.tanh().sum(), [x], create_graph=True)
    (h,) = tg.grad(g.sum(), [x])
    assert np.isfinite(g.data).all() and np.isfinite(h.data).all()
    assert g.data[2] == 1.0 and g.data[0] == g.data[-1] == 0.0
    assert g.dtype == dtype


# ------------------------------------------------------------------------------ no-op shape ops

NO_OP_SHAPE_OPS = [
    ("reshape same shape", (2, 3), lambda x: x.reshape(2, 3)),
    ("reshape -1 to the same shape", (2, 3), lambda x: x.reshape(2, -1)),
    ("transpose of 1-D", (3,), lambda x: x.transpose()),
    ("T of 0-d", (), lambda x: x.T),
    ("T of 1-D", (3,), lambda x: x.T),
    ("identity permutation", (2, 3), lambda x: x.transpose((0, 1))),
    ("swapaxes(i, i)", (2, 3), lambda x: x.swapaxes(1, 1)),
    ("squeeze without size-1 axes", (2, 3), lambda x: x.squeeze()),
    ("flatten of 1-D", (3,), lambda x: x.flatten()),
    ("broadcast_to the same shape", (2, 3), lambda x: x.broadcast_to((2, 3))),
]


@pytest.mark.parametrize("name, shape, fn", NO_OP_SHAPE_OPS, ids=[c[0] for c in NO_OP_SHAPE_OPS])
def test_a_shape_op_that_changes_nothing_still_returns_a_new_tensor(name, shape, fn):
    x = Tensor(np.arange(float(np.prod(shape))).reshape(shape), requires_grad=True)
    y = fn(x)
    assert y is not x
    assert y.shape == x.shape
    np.testing.assert_array_equal(y.data, x.data)
    # the gradient with respect to the result is its own, not the input's
    (gy,) = tg.grad((2 * x + y).sum(), [y])
    np.testing.assert_array_equal(gy.data, np.ones(shape))
    (gx,) = tg.grad((2 * x + fn(x)).sum(), [x])
    np.testing.assert_array_equal(gx.data, np.full(shape, 3.0))


def test_hooks_and_retain_grad_on_a_no_op_reshape_act_on_the_result():
    x = Tensor(np.ones(3), requires_grad=True)
    y = x.reshape(3)
    y.retain_grad()
    seen = []
    y.register_hook(lambda g: seen.append(g.data.copy()))
    (2 * x + y).sum().backward()
    np.testing.assert_array_equal(y.grad.data, np.ones(3))
    np.testing.assert_array_equal(x.grad.data, np.full(3, 3.0))
    assert len(seen) == 1


# ------------------------------------------------------------------------------ empty reductions

def test_reductions_over_a_non_empty_axis_of_an_empty_tensor_are_empty():
    x = Tensor(np.zeros((0, 2)), requires_grad=True)
    for name, out in [("logsumexp", x.logsumexp(axis=1)), ("max", x.max(axis=1)),
                      ("min", x.min(axis=1)), ("sum", x.sum(axis=1)),
                      ("logsumexp keepdims", x.logsumexp(axis=1, keepdims=True))]:
        assert out.shape == ((0, 1) if "keepdims" in name else (0,)), name
    assert x.softmax(axis=1).shape == (0, 2)
    assert x.log_softmax(axis=1).shape == (0, 2)
    loss = F.cross_entropy(x, np.zeros(0, dtype=np.int64), reduction="none")
    assert loss.shape == (0,)
    F.cross_entropy(x, np.zeros(0, dtype=np.int64), reduction="sum").backward()
    assert x.grad.shape == (0, 2)


def test_logsumexp_over_an_empty_axis_is_minus_infinity_like_pytorch():
    x = Tensor(np.zeros((0, 2)))
    np.testing.assert_array_equal(x.logsumexp(axis=0).data, [-np.inf, -np.inf])


def test_max_over_an_empty_axis_is_an_error():
    x = Tensor(np.zeros((0, 2)))
    with pytest.raises(ValueError, match=r"max: .*\(0, 2\)"):
        x.max(axis=0)
    with pytest.raises(ValueError, match=r"min: .*\(0, 2\)"):
        x.min()


# ------------------------------------------------------------------------------ NaN and inf

NAN_AND_INF_SCRIPT = """
import warnings
import numpy as np
import tinygrad_mlp as tg
import tinygrad_mlp.functional as F
values = np.array([[np.nan, 1.0, 0.0], [np.inf, -np.inf, 0.0]])
x = tg.Tensor(values, requires_grad=True)
loss = F.cross_entropy(x, np.array([0, 1])) + x.log().sum() + (x @ x.T).sum() \\
    + x.std(axis=1).sum() + (x / 0.0).sum() + (x ** -1).sum() + x.exp().sum() \\
    + x.logsumexp(axis=1).sum() + F.binary_cross_entropy_with_logits(x, np.zeros((2, 3))) \\
    + (x.astype(np.float32) * 1e38).sum() + x.relu().sum() + tg.maximum(x, 0.0).sum()
loss.backward()
assert np.isnan(loss.item())
warnings.warn_explicit("a user's own warning still shows", RuntimeWarning, "user.py", 1)
"""


def test_nan_and_inf_inputs_print_no_numpy_runtime_warnings_from_ops():
    # In a fresh interpreter (as a user runs it): pytest records warnings itself, and filters
    # added while it collects are dropped again.
    import os
    import subprocess
    import sys
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.getcwd()] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    env.pop("PYTHONWARNINGS", None)
    done = subprocess.run([sys.executable, "-c", NAN_AND_INF_SCRIPT], capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "RuntimeWarning" in done.stderr and "a user's own warning" in done.stderr
    lines = [line for line in done.stderr.splitlines() if "Warning" in line]
    assert len(lines) == 1, done.stderr  # only the user's own warning


def test_bce_with_logits_at_infinite_logits_matches_pytorch():
    x = leaf([np.inf, -np.inf, np.inf])
    loss = F.binary_cross_entropy_with_logits(x, np.array([0.0, 1.0, 1.0]), reduction="none")
    # PyTorch: inf for +inf with target 0; NaN where (1 - y) * x is 0 * inf
    assert loss.data[0] == np.inf
    assert np.isnan(loss.data[1:]).all()


def test_maximum_and_minimum_give_the_losing_side_zero_even_for_a_nan_gradient():
    a, b = leaf([0.0, 2.0]), leaf([1.0, 1.0])
    y = tg.minimum(a, b)
    (ga, gb) = tg.grad((a / y).sum(), [a, b])  # 0/0 at the first entry: a NaN gradient
    assert gb.data[0] == 0.0 and np.isnan(ga.data[0])


def test_std_of_a_constant_group_whose_variance_rounds_above_zero():
    x = leaf(np.full((2, 6), np.log(2.0)))
    assert x.var(axis=1).data.max() > 0  # 1e-32: the mean is an ulp off log(2)
    s = x.std(axis=1)
    np.testing.assert_array_equal(s.data, [0.0, 0.0])
    (g,) = tg.grad(s.sum(), [x], create_graph=True)
    (h,) = tg.grad((g * g).sum(), [x])
    np.testing.assert_array_equal(g.data, np.zeros((2, 6)))
    np.testing.assert_array_equal(h.data, np.zeros((2, 6)))


def test_flatten_of_an_empty_tensor():
    x = Tensor(np.zeros((0, 2, 3)), requires_grad=True)
    assert x.flatten(1).shape == (0, 6)  # as PyTorch (numpy's reshape(0, -1) refuses)
    assert x.flatten().shape == (0,)


# ---------------------------------------------------------------- relu: +0, and no inf * 0

def test_relu_of_negatives_is_positive_zero_so_its_reciprocal_is_plus_inf():
    # Found by the differential test: x * (x > 0) gave -0.0, so 1 / relu(x) was -inf.
    x = tg.Tensor(np.array([-1.0, -0.0, 0.0]), requires_grad=True)
    y = x.relu()
    assert not np.signbit(y.data).any()
    assert (1 / y).data.tolist() == [np.inf] * 3


def test_relu_of_minus_inf_is_zero_and_infinite_gradients_do_not_cross_the_kink():
    x = tg.Tensor(np.array([-np.inf, -1.0, 0.0, 4.0]), requires_grad=True)
    np.testing.assert_array_equal(x.relu().data, [0.0, 0.0, 0.0, 4.0])
    # sqrt'(0) is infinite; relu'(x) = 0 for x <= 0 must win, as in PyTorch (no inf * 0 = NaN)
    (g,) = tg.grad(x.relu().sqrt().sum(), [x])
    np.testing.assert_array_equal(g.data, [0.0, 0.0, 0.0, 0.25])
    (g2,) = tg.grad(x.relu().sqrt().sum(), [x], create_graph=True)
    np.testing.assert_array_equal(g2.data, [0.0, 0.0, 0.0, 0.25])
