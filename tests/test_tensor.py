"""The Tensor API: construction and dtype policy, attributes, operators, methods,
module-level functions, and the documented numpy-vs-PyTorch choices. Expected values come from
numpy or closed forms."""
import warnings

import numpy as np
import pytest

import tinygrad_mlp as tg
from tinygrad_mlp import Tensor


def t64(a, requires_grad=False):
    return Tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad)


# ------------------------------------------------------------------------------ dtype policy

@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_numpy_float_array_keeps_its_dtype_and_memory(dtype):
    a = np.arange(6, dtype=dtype).reshape(2, 3)
    t = Tensor(a)
    assert t.dtype == dtype
    # like np.asarray: a view of the caller's array, not a copy
    assert np.shares_memory(t.data, a)


@pytest.mark.parametrize("data", [1.5, 2, [1.0, 2.0], [[1, 2], [3, 4]], (1, 2.5)])
def test_python_numbers_and_lists_become_float32(data):
    t = Tensor(data)
    assert t.dtype == np.float32
    np.testing.assert_array_equal(t.data, np.asarray(data, dtype=np.float32))


@pytest.mark.parametrize("value", [np.float64(1.25), np.float32(1.25), np.int64(3), np.bool_(True)])
def test_numpy_scalars_keep_their_dtype(value):
    assert Tensor(value).dtype == np.asarray(value).dtype


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.bool_])
def test_integer_and_bool_data_stay_and_cannot_require_grad(dtype):
    a = np.ones(3, dtype=dtype)
    assert Tensor(a).dtype == dtype
    with pytest.raises(TypeError, match=np.dtype(dtype).name):
        Tensor(a, requires_grad=True)
    with pytest.raises(TypeError, match="floating"):
        Tensor(a).requires_grad_()


def test_python_bools_stay_bool():
    assert Tensor([True, False]).dtype == np.bool_


def test_dtype_argument_converts():
    assert Tensor([1, 2], dtype=np.int64).dtype == np.int64
    assert Tensor(np.ones(2, np.float32), dtype=np.float64).dtype == np.float64


def test_tensor_from_tensor_shares_data():
    a = Tensor(np.ones(3))
    assert Tensor(a).data is a.data


@pytest.mark.parametrize("data", ["text", object(), np.array([1 + 2j]), None])
def test_unsupported_data_is_a_type_error(data):
    with pytest.raises(TypeError):
        Tensor(data)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("expr", [
    lambda x: 2 * x, lambda x: x * 2, lambda x: x + 1, lambda x: 1 - x, lambda x: x - 1.5,
    lambda x: x / 3, lambda x: 10.0 / x, lambda x: x ** 2, lambda x: 2 ** x, lambda x: x ** 0.5,
    lambda x: np.float64(2.0) * x, lambda x: tg.maximum(x, 0.0), lambda x: tg.where(x > 1, x, 0.0),
    lambda x: x.mean(), lambda x: x.var(ddof=0), lambda x: x.sigmoid(), lambda x: x.tanh(),
    lambda x: x.softmax(), lambda x: x.logsumexp(),
], ids=lambda e: "")
def test_python_scalars_never_upcast(expr, dtype):
    x = Tensor(np.array([1.0, 2.0, 4.0], dtype=dtype), requires_grad=True)
    y = expr(x)
    assert y.dtype == dtype
    y.sum().backward()
    assert x.grad.dtype == dtype


def test_python_int_keeps_an_integer_tensor_dtype():
    x = Tensor(np.arange(4, dtype=np.int32))
    assert (x * 2).dtype == np.int32
    assert (x + 1).dtype == np.int32


def test_arrays_in_arithmetic_follow_numpy_promotion():
    x = Tensor(np.ones(2, np.float32))
    assert (x + np.ones(2, np.float64)).dtype == np.float64
    assert (x + np.ones(2, np.float32)).dtype == np.float32


# ------------------------------------------------------------------------------ attributes

def test_attributes():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    x = Tensor(a, requires_grad=True)
    assert x.data is a and x.numpy() is a
    assert x.grad is None and x.requires_grad and x.is_leaf
    assert (x.shape, x.ndim, x.size, x.dtype) == ((2, 3), 2, 6, np.float32)
    np.testing.assert_array_equal(x.T.data, a.T)
    assert len(x) == 2
    y = x * 2
    assert not y.is_leaf and y.requires_grad


def test_len_of_0d_is_a_type_error():
    with pytest.raises(TypeError, match="0-d"):
        len(Tensor(1.0))


def test_item():
    assert Tensor(np.array([[2.5]])).item() == 2.5
    assert isinstance(Tensor(np.float32(2.5)).item(), float)
    with pytest.raises(ValueError, match=r"\(2,\)"):
        Tensor([1.0, 2.0]).item()


def test_detach_shares_memory_and_cuts_the_graph():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    d = y.detach()
    assert np.shares_memory(d.data, y.data)
    assert d.is_leaf and not d.requires_grad and d.grad_fn is None
    (d * x).sum().backward()
    # d is a constant: x's gradient is d's value, not d + 3x
    np.testing.assert_array_equal(x.grad.data, d.data)


def test_requires_grad_():
    x = Tensor([1.0])
    assert x.requires_grad_() is x and x.requires_grad
    x.requires_grad_(False)
    assert not x.requires_grad
    y = Tensor([1.0], requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="detach"):
        y.requires_grad_(False)


def test_repr():
    x = Tensor(np.array([1.5, -2.0], dtype=np.float32), requires_grad=True)
    r = repr(x)
    assert r.startswith("Tensor(") and "1.5" in r and "-2." in r
    assert "float32" in r and "requires_grad=True" in r
    assert "grad_fn=<Mul>" in repr(x * 2)
    assert "requires_grad" not in repr(Tensor([1.0]))


def test_retain_grad_and_hooks_need_requires_grad():
    x = Tensor([1.0])
    with pytest.raises(RuntimeError, match="does not require grad"):
        x.retain_grad()
    with pytest.raises(RuntimeError, match="does not require grad"):
        x.register_hook(lambda g: g)


# ------------------------------------------------------------------------------ operators

A = np.array([[0.5, -1.5, 2.0], [3.0, 1.0, -0.25]])
B = np.array([1.5, -2.0, 0.75])


@pytest.mark.parametrize("op", [np.add, np.subtract, np.multiply, np.divide])
def test_binary_operators_with_tensors_numbers_and_arrays(op):
    sym = {np.add: "+", np.subtract: "-", np.multiply: "*", np.divide: "/"}[op]
    run = lambda a, b: eval(f"a {sym} b")  # noqa: E731
    x, y = t64(A), t64(B)
    np.testing.assert_allclose(run(x, y).data, op(A, B))
    np.testing.assert_allclose(run(x, 2.5).data, op(A, 2.5))
    np.testing.assert_allclose(run(2.5, x).data, op(2.5, A))
    np.testing.assert_allclose(run(x, B).data, op(A, B))
    # ndarray on the left must defer to the Tensor, giving a Tensor (not an object array)
    left = run(B, x)
    assert isinstance(left, Tensor)
    np.testing.assert_allclose(left.data, op(B, A))


def test_pow_and_reflected_pow():
    x = t64(np.abs(A) + 0.1)
    np.testing.assert_allclose((x ** 2).data, (np.abs(A) + 0.1) ** 2)
    np.testing.assert_allclose((x ** t64(B)).data, (np.abs(A) + 0.1) ** B)
    np.testing.assert_allclose((2 ** x).data, 2 ** (np.abs(A) + 0.1))
    np.testing.assert_allclose((B ** t64(np.ones(3) * 2)).data, B ** 2)


def test_unary_minus_and_plus():
    x = t64(A)
    np.testing.assert_array_equal((-x).data, -A)
    assert +x is x


def test_matmul_and_reflected_matmul():
    m = np.arange(12.0).reshape(3, 4)
    np.testing.assert_allclose((t64(A) @ t64(m)).data, A @ m)
    np.testing.assert_allclose((A @ t64(m)).data, A @ m)
    np.testing.assert_allclose(t64(A).matmul(m).data, A @ m)


@pytest.mark.parametrize("op,fn", [("<", np.less), ("<=", np.less_equal), (">", np.greater),
                                   (">=", np.greater_equal), ("==", np.equal),
                                   ("!=", np.not_equal)])
def test_comparisons_are_bool_tensors_without_gradient(op, fn):
    x = Tensor(A, requires_grad=True)
    b = np.array([0.5, 1.0, 2.0])
    for other, other_np in [(Tensor(b), b), (b, b), (1.0, 1.0)]:
        out = eval(f"x {op} other")
        assert isinstance(out, Tensor) and out.dtype == np.bool_
        assert not out.requires_grad and out.grad_fn is None
        np.testing.assert_array_equal(out.data, fn(A, other_np))


# ------------------------------------------------------------------------------ methods

def test_max_returns_values_only_like_numpy():
    x = t64(A)
    out = x.max(axis=1)
    assert isinstance(out, Tensor)
    np.testing.assert_array_equal(out.data, A.max(axis=1))


@pytest.mark.parametrize("axis", [None, 0, 1, (0, 1)])
def test_var_defaults_to_ddof_0_like_numpy(axis):
    np.testing.assert_allclose(t64(A).var(axis=axis).data, np.var(A, axis=axis))
    np.testing.assert_allclose(t64(A).var(axis=axis, ddof=1).data, np.var(A, axis=axis, ddof=1))
    np.testing.assert_allclose(t64(A).std(axis=axis).data, np.std(A, axis=axis))


def test_undefined_means_and_variances_are_nan_as_in_numpy():
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpy warns about these; its values are the reference
        for x, call, ref in [(np.zeros((0, 3)), lambda t: t.mean(), lambda a: a.mean()),
                             (np.zeros((0, 3)), lambda t: t.mean(axis=0), lambda a: a.mean(axis=0)),
                             (np.array([2.0]), lambda t: t.var(ddof=1), lambda a: a.var(ddof=1)),
                             (np.ones((2, 3)), lambda t: t.var(axis=0, ddof=2),
                              lambda a: a.var(axis=0, ddof=2))]:
            np.testing.assert_array_equal(call(t64(x)).data, ref(x))


def test_reshape_forms():
    x = t64(np.arange(6.0))
    assert x.reshape(2, 3).shape == (2, 3)
    assert x.reshape((3, 2)).shape == (3, 2)
    assert x.reshape([-1, 2]).shape == (3, 2)


def test_transpose_follows_numpy():
    a = np.arange(24.0).reshape(2, 3, 4)
    x = t64(a)
    np.testing.assert_array_equal(x.transpose().data, a.transpose())
    np.testing.assert_array_equal(x.transpose(1, 0, 2).data, a.transpose(1, 0, 2))
    np.testing.assert_array_equal(x.transpose((2, 0, 1)).data, a.transpose((2, 0, 1)))
    np.testing.assert_array_equal(x.swapaxes(0, -1).data, a.swapaxes(0, -1))
    np.testing.assert_array_equal(t64(B).T.data, B)  # 1-D: T is the identity, as in numpy


def test_flatten_squeeze_expand_dims():
    a = np.arange(24.0).reshape(2, 1, 3, 4)
    x = t64(a)
    assert x.flatten().shape == (24,)
    assert x.flatten(1).shape == (2, 12)
    assert x.squeeze().shape == (2, 3, 4)
    assert x.squeeze(1).shape == (2, 3, 4)
    assert x.expand_dims(-1).shape == (2, 1, 3, 4, 1)


def test_softmax_family_against_closed_forms():
    e = np.exp(A)
    np.testing.assert_allclose(t64(A).softmax().data, e / e.sum(axis=-1, keepdims=True))
    np.testing.assert_allclose(t64(A).softmax(axis=0).data, e / e.sum(axis=0, keepdims=True))
    np.testing.assert_allclose(t64(A).log_softmax().data,
                               A - np.log(e.sum(axis=-1, keepdims=True)))
    np.testing.assert_allclose(t64(A).logsumexp().data, np.log(e.sum()))
    np.testing.assert_allclose(t64(A).logsumexp(axis=1, keepdims=True).data,
                               np.log(e.sum(axis=1, keepdims=True)))


def test_astype():
    x = Tensor(np.array([1.5, -2.5], dtype=np.float32), requires_grad=True)
    assert x.astype(np.float32) is x
    h = x * 1.0
    arriving = []
    h.register_hook(lambda g: arriving.append(g.dtype))
    y = h.astype(np.float64)
    assert y.dtype == np.float64 and y.requires_grad
    (y * y).sum().backward()
    # the gradient crosses back to float32 at the cast, not only when stored in the leaf
    assert arriving == [np.float32] and x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad.data, 2 * x.data)
    i = x.astype(np.int64)
    assert i.dtype == np.int64 and not i.requires_grad
    np.testing.assert_array_equal(i.data, x.data.astype(np.int64))


# ------------------------------------------------------------------------------ indexing

def test_getitem_forms_match_numpy():
    a = np.arange(24.0).reshape(2, 3, 4)
    x = t64(a)
    for index in [1, -1, slice(None, None, -1), (Ellipsis, 2), (None, 0), (0, None, Ellipsis),
                  ([0, 1, 1], [2, 0, 2]), (slice(None), [2, 2, 0]), a > 10, a[:, :, 0] > 5]:
        np.testing.assert_array_equal(x[index].data, a[index])
    np.testing.assert_array_equal(x[Tensor(np.array([1, 0]))].data, a[[1, 0]])
    np.testing.assert_array_equal(x[Tensor(a > 3)].data, a[a > 3])


def test_repeated_integer_indices_accumulate_their_gradient():
    x = Tensor(np.zeros(5), requires_grad=True)
    idx = np.array([0, 3, 3, 1, 3, 0])
    w = np.arange(1.0, 7.0)
    (x[idx] * Tensor(w)).sum().backward()
    np.testing.assert_allclose(x.grad.data, np.bincount(idx, weights=w, minlength=5))


def test_repeated_rows_accumulate_in_2d():
    x = Tensor(np.zeros((3, 2)), requires_grad=True)
    x[[2, 2, 0, 2]].sum().backward()
    np.testing.assert_array_equal(x.grad.data, np.array([[1, 1], [0, 0], [3, 3]], float))


def test_boolean_mask_gradient_is_the_mask():
    a = np.array([[1.0, -2.0, 3.0], [-4.0, 5.0, -6.0]])
    x = Tensor(a, requires_grad=True)
    x[a > 0].sum().backward()
    np.testing.assert_array_equal(x.grad.data, (a > 0).astype(float))


# ------------------------------------------------------------------------------ ties

def test_max_and_min_split_tied_gradients_evenly():
    a = np.array([[3.0, 1.0, 3.0, 3.0], [2.0, 5.0, 5.0, -1.0]])
    for reduce, extreme in [("max", np.max), ("min", np.min)]:
        for axis in [None, 0, 1]:
            x = Tensor(a, requires_grad=True)
            getattr(x, reduce)(axis=axis).sum().backward()
            winners = a == extreme(a, axis=axis, keepdims=True)
            expected = winners / winners.sum(axis=axis, keepdims=True)
            np.testing.assert_allclose(x.grad.data, expected, err_msg=f"{reduce} axis={axis}")


def test_maximum_and_minimum_split_ties_in_half():
    a, b = np.array([1.0, 2.0, 3.0]), np.array([1.0, 5.0, 0.0])
    for fn, a_wins in [(tg.maximum, a > b), (tg.minimum, a < b)]:
        x, y = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
        fn(x, y).sum().backward()
        share = a_wins + 0.5 * (a == b)
        np.testing.assert_allclose(x.grad.data, share)
        np.testing.assert_allclose(y.grad.data, 1 - share)


# ------------------------------------------------------------------------------ module level

def test_where_maximum_minimum_with_numbers():
    a = np.array([-1.0, 0.5, 2.0])
    x = t64(a)
    assert tg.maximum(1.0, 2.0).item() == 2.0 and tg.minimum(1.0, 2.0).item() == 1.0
    np.testing.assert_array_equal(tg.where(a > 0, x, 0.0).data, np.where(a > 0, a, 0.0))
    np.testing.assert_array_equal(tg.where(x > 0, 1.0, x).data, np.where(a > 0, 1.0, a))
    np.testing.assert_array_equal(tg.maximum(x, 0.0).data, np.maximum(a, 0.0))
    np.testing.assert_array_equal(tg.minimum(1.0, x).data, np.minimum(1.0, a))


def test_concatenate_and_stack():
    a, b = np.ones((2, 3)), np.zeros((2, 3))
    np.testing.assert_array_equal(tg.concatenate([t64(a), t64(b)], axis=1).data,
                                  np.concatenate([a, b], axis=1))
    np.testing.assert_array_equal(tg.stack([t64(a), t64(b)], axis=-1).data,
                                  np.stack([a, b], axis=-1))


@pytest.mark.parametrize("make,shape", [(lambda: tg.zeros(2, 3), (2, 3)),
                                        (lambda: tg.ones((4,)), (4,)),
                                        (lambda: tg.full((2, 2), 7.0), (2, 2)),
                                        (lambda: tg.randn(3, 2, rng=0), (3, 2)),
                                        (lambda: tg.rand(5, rng=0), (5,)),
                                        (lambda: tg.eye(3), (3, 3)),
                                        (lambda: tg.arange(5), (5,))])
def test_constructors_are_float32_by_default(make, shape):
    t = make()
    assert t.shape == shape and t.dtype == np.float32 and not t.requires_grad


def test_constructor_values():
    np.testing.assert_array_equal(tg.zeros(2, 3).data, np.zeros((2, 3)))
    np.testing.assert_array_equal(tg.ones(2).data, np.ones(2))
    np.testing.assert_array_equal(tg.full((2,), 7.0).data, [7.0, 7.0])
    np.testing.assert_array_equal(tg.eye(3).data, np.eye(3))
    np.testing.assert_array_equal(tg.arange(1, 7, 2).data, [1.0, 3.0, 5.0])
    r = tg.rand(1000, rng=1).data
    assert r.min() >= 0 and r.max() < 1
    np.testing.assert_array_equal(tg.randn(4, rng=3).data, tg.randn(4, rng=3).data)
    assert tg.zeros(2, dtype=np.float64, requires_grad=True).requires_grad
    assert tg.arange(3, dtype=np.int64).dtype == np.int64


# ------------------------------------------------------------------------------ extreme inputs

# Overflow, invalid values and division by zero raise. Underflow does not: exp(-2000) rounding to
# 0 is the right answer (numpy ignores underflow by default, and it is not a RuntimeWarning).
RAISE = dict(all="raise", under="ignore")

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
def test_softmax_family_of_huge_logits_is_finite_and_exact(fn, dtype):
    z = np.array([[1.0, -2.0, 3.0, 0.5], [-1.0, -1.0, 2.0, 0.0]]) * 1e3
    m = z.max(axis=-1, keepdims=True)
    # closed forms with the max subtracted, in float64
    log_p = z - m - np.log(np.exp(z - m).sum(axis=-1, keepdims=True))
    p = np.exp(log_p)
    w = np.array([[0.3, -1.0, 2.0, 0.7], [1.0, 0.5, -0.5, 2.0]])
    with warnings.catch_warnings(), np.errstate(**RAISE):
        warnings.simplefilter("error")
        x = Tensor(z.astype(dtype), requires_grad=True)
        out = getattr(x, fn)()
        (out * Tensor(w.astype(dtype))).sum().backward()
    assert np.isfinite(out.data).all() and np.isfinite(x.grad.data).all()
    if fn == "softmax":
        np.testing.assert_allclose(out.data, p, atol=1e-6)
        # d/dz sum(w * softmax(z)) = p * (w - sum(w * p))
        expected = p * (w - (w * p).sum(axis=-1, keepdims=True))
    else:
        np.testing.assert_allclose(out.data, log_p, rtol=1e-6)
        # d/dz sum(w * log_softmax(z)) = w - p * sum(w)
        expected = w - p * w.sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(x.grad.data, expected, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_logsumexp_of_huge_values(dtype):
    z = np.array([1000.0, 999.0, -1000.0])
    with warnings.catch_warnings(), np.errstate(**RAISE):
        warnings.simplefilter("error")
        x = Tensor(z.astype(dtype), requires_grad=True)
        out = x.logsumexp()
        out.backward()
    expected = 1000.0 + np.log1p(np.exp(-1.0) + np.exp(-2000.0))
    np.testing.assert_allclose(out.item(), expected, rtol=1e-6)
    np.testing.assert_allclose(x.grad.data, np.exp(z - expected), atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_and_tanh_saturate_without_warnings(dtype):
    z = np.array([-1000.0, -30.0, -1.0, 0.0, 1.0, 30.0, 1000.0])
    with warnings.catch_warnings(), np.errstate(**RAISE):
        warnings.simplefilter("error")
        x = Tensor(z.astype(dtype), requires_grad=True)
        s = x.sigmoid()
        s.sum().backward()
        sig_grad = x.grad.data.copy()
        x.grad = None
        t = x.tanh()
        t.sum().backward()
    # sigmoid(z) = exp(-log(1 + exp(-z))), with numpy's overflow-free logaddexp
    sig = np.exp(-np.logaddexp(0, -z))
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(s.data, sig, rtol=rtol, atol=1e-30)
    # sigmoid' = sigmoid(z) * sigmoid(-z): the form 1 - sigmoid(z) would cancel at large z
    np.testing.assert_allclose(sig_grad, sig * np.exp(-np.logaddexp(0, z)), rtol=rtol, atol=1e-30)
    np.testing.assert_allclose(t.data, np.tanh(z), atol=1e-6)
    np.testing.assert_allclose(x.grad.data, 1 - np.tanh(z) ** 2, atol=1e-6)
    assert np.isfinite(sig_grad).all() and np.isfinite(x.grad.data).all()
    assert sig_grad[3] == pytest.approx(0.25) and x.grad.data[3] == pytest.approx(1.0)
