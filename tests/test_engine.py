"""The backward engine: order, accumulation, graph release, hooks, ``grad()`` and higher
derivatives, gradient mode. Expected gradients are closed forms."""
import gc
import subprocess
import sys
import weakref

import numpy as np
import pytest

import tinygrad_mlp as tg
from tinygrad_mlp import Tensor


def leaf(values, dtype=np.float64):
    return Tensor(np.array(values, dtype=dtype), requires_grad=True)


# ------------------------------------------------------------------------------ backward

def test_scalar_root_gets_an_implied_gradient_of_one():
    x = leaf([1.0, 2.0, 3.0])
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.data, 2 * x.data)


def test_explicit_gradient_for_a_non_scalar_root():
    x = leaf([1.0, 2.0, 3.0])
    v = np.array([0.5, -1.0, 2.0])
    (x * x).backward(v)
    np.testing.assert_array_equal(x.grad.data, 2 * x.data * v)
    y = leaf([1.0, 2.0])
    (y * 3).backward(gradient=Tensor(np.array([1.0, 2.0])))
    np.testing.assert_array_equal(y.grad.data, [3.0, 6.0])


def test_reused_tensors_sum_their_gradients_in_one_pass():
    # y feeds three consumers; the engine must wait for all three before going through y
    x = leaf([0.5, -2.0])
    y = x * x
    z = (y * y + y * 3.0 + y.exp()).sum()
    z.backward()
    a = x.data
    # dz/dx = (2y + 3 + e^y) * 2x with y = x^2
    np.testing.assert_allclose(x.grad.data, (2 * a ** 2 + 3 + np.exp(a ** 2)) * 2 * a)


def test_broadcast_inputs_get_gradients_of_their_own_shape():
    x = leaf(np.ones((3, 1)))
    b = leaf(np.ones(4))
    c = leaf(2.0)
    ((x * b) + c).sum().backward()
    np.testing.assert_array_equal(x.grad.data, np.full((3, 1), 4.0))
    np.testing.assert_array_equal(b.grad.data, np.full(4, 3.0))
    assert c.grad.shape == () and c.grad.item() == 12.0


def test_leaf_gradients_accumulate_across_backward_calls():
    x = leaf([1.0, -2.0])
    for calls in (1, 2, 3):
        (x * x * x).sum().backward()
        np.testing.assert_allclose(x.grad.data, calls * 3 * x.data ** 2)


def test_non_leaf_gradients_are_kept_only_with_retain_grad():
    x = leaf([1.0, 2.0])
    h = x * 3
    kept = x * 5
    kept.retain_grad()
    (h * h + kept * kept).sum().backward()
    assert h.grad is None
    np.testing.assert_allclose(kept.grad.data, 2 * kept.data)
    np.testing.assert_allclose(x.grad.data, 18 * x.data + 50 * x.data)


def test_inputs_not_requiring_grad_get_none():
    x = leaf([1.0, 2.0])
    c = Tensor([3.0, 4.0])
    (x * c).sum().backward()
    assert c.grad is None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_leaf_gradient_has_the_leafs_dtype_after_mixed_dtype_arithmetic(dtype):
    other = np.float64 if dtype == np.float32 else np.float32
    x = leaf([1.0, 2.0], dtype=dtype)
    y = x * np.array([3.0, 4.0], dtype=other)  # numpy promotion may change y's dtype
    y.sum().backward()
    assert x.grad.dtype == dtype
    np.testing.assert_allclose(x.grad.data, [3.0, 4.0])
    (g,) = tg.grad((x * np.array([3.0, 4.0], dtype=other)).sum(), [x])
    assert g.dtype == dtype


def test_leaf_gradients_are_writable_and_do_not_share_memory():
    # Optimisers and clipping update .grad in place: no .grad may alias another or the caller's
    # gradient, and none may be a read-only broadcast view.
    a, b, c = leaf([1.0, 2.0]), leaf([3.0, 4.0]), leaf([[5.0, 6.0]])
    v = np.array([1.0, 1.0])
    (a + b + c.reshape(2)).backward(v)
    grads = [a.grad.data, b.grad.data, c.grad.data, v]
    for i, g in enumerate(grads[:3]):
        assert g.flags.writeable
        for other in grads[i + 1:]:
            assert not np.shares_memory(g, other)
    x = leaf(np.ones((2, 3)))
    x.sum().backward()
    x.grad.data *= 0.5  # would raise on a broadcast view
    np.testing.assert_array_equal(x.grad.data, np.full((2, 3), 0.5))


# ------------------------------------------------------------------------------ deep graphs

def test_a_chain_of_100_000_ops_backpropagates():
    n = 100_000
    x = leaf(1.0)
    y = x
    for _ in range(n):
        y = y * 1.00001
    y.backward()
    np.testing.assert_allclose(x.grad.item(), 1.00001 ** n, rtol=1e-9)


def test_a_100_000_op_graph_can_be_dropped_without_backward():
    # Freeing a long chain must not recurse into the C stack; run apart so a crash is a failure
    # here, not the end of the test session.
    code = ("import tinygrad_mlp as tg\n"
            "x = tg.Tensor([1.0], requires_grad=True)\n"
            "y = x\n"
            "for _ in range(100_000): y = y + 1.0\n"
            "y.sum().backward(retain_graph=True)\n"
            "del y\n"
            "print('ok')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


# ------------------------------------------------------------------------------ graph release

def test_backward_frees_intermediate_tensors_and_saved_arrays():
    x = leaf(np.arange(6.0).reshape(2, 3))
    h = x.exp()
    m = h.max(axis=1)  # Max saves an array for its backward
    loss = m.sum()
    h_ref, saved_ref = weakref.ref(h), weakref.ref(m._ctx.share)
    del h, m
    gc.collect()
    assert h_ref() is not None and saved_ref() is not None  # the graph holds them until backward
    loss.backward()
    assert h_ref() is None and saved_ref() is None


def test_retain_graph_keeps_the_graph_for_a_second_backward():
    x = leaf([1.0, 2.0])
    h = x.exp()
    h_ref = weakref.ref(h)
    loss = (h * h).sum()
    del h
    loss.backward(retain_graph=True)
    assert h_ref() is not None
    loss.backward()
    np.testing.assert_allclose(x.grad.data, 2 * 2 * np.exp(2 * x.data))
    assert h_ref() is None


def test_second_backward_through_a_released_graph_says_so():
    x = leaf([1.0, 2.0])
    loss = (x * x).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="released.*retain_graph=True"):
        loss.backward()


def test_a_training_loop_does_not_grow():
    w = leaf(np.ones((3, 2)))
    data = Tensor(np.ones((4, 3)))

    def live_tensors():
        gc.collect()
        return sum(isinstance(o, Tensor) for o in gc.get_objects())

    counts = []
    for _ in range(20):
        loss = (data @ w).relu().sum()
        w.grad = None
        loss.backward()
        counts.append(live_tensors())
    assert counts[-1] == counts[5]


# ------------------------------------------------------------------------------ hooks

def test_hooks_see_the_gradient_and_can_replace_it():
    x = leaf([1.0, 2.0])
    h = x * 3
    seen = []
    h.register_hook(lambda g: seen.append(g) or g * 10)
    x.register_hook(lambda g: seen.append(g))  # returns None: keeps the gradient
    (h * h).sum().backward()
    assert isinstance(seen[0], Tensor)
    np.testing.assert_allclose(seen[0].data, 2 * h.data)
    # the replacement flows on: dx = 10 * (2h) * 3
    np.testing.assert_allclose(seen[1].data, 60 * h.data)
    np.testing.assert_allclose(x.grad.data, 60 * h.data)


def test_a_hook_on_a_leaf_replaces_what_is_accumulated():
    x = leaf([1.0, 2.0])
    x.register_hook(lambda g: np.zeros(2))
    (x * 5).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 0.0])


def test_hooks_chain_in_order_and_remove():
    x = leaf([1.0])
    calls = []
    first = x.register_hook(lambda g: calls.append("first") or g + 1)
    x.register_hook(lambda g: calls.append(("second", g.item())))
    (x * 2).sum().backward()
    assert calls == ["first", ("second", 3.0)]
    first.remove()
    first.remove()  # removing twice is harmless
    calls.clear()
    x.grad = None
    (x * 2).sum().backward()
    assert calls == [("second", 2.0)] and x.grad.item() == 2.0


def test_a_hook_returning_a_wrong_shape_is_reported():
    x = leaf([1.0, 2.0])
    x.register_hook(lambda g: np.zeros(3))
    with pytest.raises(ValueError, match=r"hook.*\(3,\).*\(2,\)"):
        (x * 2).sum().backward()


# ------------------------------------------------------------------------------ grad()

def test_grad_returns_a_list_and_leaves_dot_grad_alone():
    x, y = leaf([1.0, 2.0]), leaf([3.0, -1.0])
    out = (x * y).sum()
    gx, gy = result = tg.grad(out, [x, y])
    assert isinstance(result, list)
    np.testing.assert_array_equal(gx.data, y.data)
    np.testing.assert_array_equal(gy.data, x.data)
    assert x.grad is None and y.grad is None
    (gx2,) = tg.grad((x * 2).sum(), x)  # a single input may be passed bare
    np.testing.assert_array_equal(gx2.data, [2.0, 2.0])


def test_grad_of_several_outputs_with_grad_outputs():
    x = leaf([1.0, 2.0])
    a, b = x * 2, x * x
    (g,) = tg.grad([a, b], [x], grad_outputs=[np.array([1.0, 1.0]), np.array([0.5, 2.0])])
    np.testing.assert_allclose(g.data, 2 + np.array([0.5, 2.0]) * 2 * x.data)


def test_grad_unused_inputs():
    x, unused = leaf([1.0]), leaf([2.0])
    with pytest.raises(RuntimeError, match="allow_unused=True"):
        tg.grad((x * 2).sum(), [x, unused], retain_graph=True)
    gx, gu = tg.grad((x * 2).sum(), [x, unused], allow_unused=True)
    assert gu is None and gx.item() == 2.0


def test_grad_releases_the_graph_unless_asked_to_retain_it():
    x = leaf([1.0])
    out = (x * x).sum()
    tg.grad(out, [x], retain_graph=True)
    tg.grad(out, [x])
    with pytest.raises(RuntimeError, match="released"):
        tg.grad(out, [x])


def test_second_derivative_of_a_cube_is_6x():
    x = leaf([-1.5, 0.5, 2.0])
    (g,) = tg.grad((x ** 3).sum(), [x], create_graph=True)
    np.testing.assert_allclose(g.data, 3 * x.data ** 2)
    assert g.requires_grad
    (h,) = tg.grad(g.sum(), [x], create_graph=True)
    np.testing.assert_allclose(h.data, 6 * x.data)
    (third,) = tg.grad(h.sum(), [x])
    np.testing.assert_allclose(third.data, [6.0, 6.0, 6.0])


def test_backward_with_create_graph_gives_a_differentiable_grad():
    x = leaf([0.3, -0.7])
    x.tanh().sum().backward(create_graph=True)
    t = np.tanh(x.data)
    np.testing.assert_allclose(x.grad.data, 1 - t ** 2)
    (gg,) = tg.grad(x.grad.sum(), [x])
    # d/dx (1 - tanh^2) = -2 tanh (1 - tanh^2)
    np.testing.assert_allclose(gg.data, -2 * t * (1 - t ** 2))


def test_hessian_vector_product_of_log_softmax():
    rng = np.random.default_rng(0)
    z0, w, v = rng.normal(size=(3, 5)), rng.normal(size=(3, 5)), rng.normal(size=(3, 5))

    def gradient(z):
        zt = Tensor(z, requires_grad=True)
        (g,) = tg.grad((zt.log_softmax(axis=-1) * Tensor(w)).sum(), [zt], create_graph=True)
        return zt, g

    z, g = gradient(z0)
    (hv,) = tg.grad((g * Tensor(v)).sum(), [z])
    # f(z) = sum(w * log_softmax(z)) per row: grad = w - sum(w) p,
    # Hessian = -sum(w) (diag(p) - p p^T), so H v = -sum(w) (p * v - p (p . v))
    p = np.exp(z0) / np.exp(z0).sum(axis=-1, keepdims=True)
    sw = w.sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(g.data, w - sw * p, rtol=1e-12)
    closed = -sw * (p * v - p * (p * v).sum(axis=-1, keepdims=True))
    np.testing.assert_allclose(hv.data, closed, rtol=1e-10, atol=1e-12)
    # and against a central difference of the framework's own first derivative along v
    eps = 1e-6
    fd = (gradient(z0 + eps * v)[1].data - gradient(z0 - eps * v)[1].data) / (2 * eps)
    np.testing.assert_allclose(hv.data, fd, rtol=1e-6, atol=1e-8)


# ------------------------------------------------------------------------------ gradient mode

def test_no_grad_records_nothing():
    x = leaf([1.0, 2.0])
    with tg.no_grad():
        assert not tg.is_grad_enabled()
        y = (x * 2).exp().sum()
    assert tg.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None and y.is_leaf


def test_no_grad_and_enable_grad_as_decorators():
    x = leaf([1.0])

    @tg.no_grad
    def bare(t):
        return t * 2

    @tg.no_grad()
    def called(t):
        return t * 2

    @tg.enable_grad()
    def recording(t):
        return t * 2

    @tg.enable_grad
    def recording_bare(t):
        return t * 2

    assert not bare(x).requires_grad and not called(x).requires_grad
    with tg.no_grad():
        assert recording(x).requires_grad and recording_bare(x).requires_grad
        with tg.enable_grad():
            assert (x * 2).requires_grad
        assert not (x * 2).requires_grad
    assert bare.__name__ == "bare"


def test_set_grad_enabled_switches_at_once_and_as_a_block_or_decorator():
    x = leaf([1.0])
    try:
        tg.set_grad_enabled(False)  # a plain call, as in PyTorch
        assert not tg.is_grad_enabled() and not (x * 2).requires_grad
    finally:
        tg.set_grad_enabled(True)
    assert (x * 2).requires_grad
    with tg.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert tg.is_grad_enabled()

    @tg.set_grad_enabled(False)
    def double(t):
        return t * 2

    assert tg.is_grad_enabled()  # decorating switched nothing outside the function
    assert not double(x).requires_grad and tg.is_grad_enabled()


def test_gradient_mode_is_restored_after_an_exception():
    with pytest.raises(KeyError):
        with tg.no_grad():
            raise KeyError
    assert tg.is_grad_enabled()

    @tg.no_grad()
    def fails():
        raise KeyError

    with pytest.raises(KeyError):
        fails()
    assert tg.is_grad_enabled()


def test_ops_on_inputs_that_do_not_require_grad_record_nothing():
    a, b = Tensor([1.0, 2.0]), Tensor([3.0, 4.0])
    y = (a * b).exp().sum()
    assert not y.requires_grad and y.grad_fn is None


def test_backward_runs_inside_no_grad():
    x = leaf([1.0, 2.0])
    loss = (x * x).sum()
    with tg.no_grad():
        loss.backward()
    np.testing.assert_array_equal(x.grad.data, 2 * x.data)


def test_backward_records_nothing_without_create_graph():
    x = leaf([1.0, 2.0])
    (x * x).sum().backward()
    assert not x.grad.requires_grad and x.grad.grad_fn is None


def test_grad_and_backward_signatures_follow_pytorch():
    import inspect
    params = inspect.signature(tg.grad).parameters
    assert [(n, p.default) for n, p in params.items()][2:] == [
        ("grad_outputs", None), ("retain_graph", None), ("create_graph", False),
        ("allow_unused", False)]
    params = inspect.signature(Tensor.backward).parameters
    assert [(n, p.default) for n, p in params.items()][1:] == [
        ("gradient", None), ("retain_graph", False), ("create_graph", False)]


# ------------------------------------------------------------------ the contract with Tensor

def test_tensor_provides_everything_the_engine_contract_lists():
    from tinygrad_mlp import autograd
    contract = autograd.TensorContract
    members = set(contract.__annotations__) | {
        name for name in vars(contract) if callable(vars(contract)[name])
        and (not name.startswith("__") or name == "__add__")}
    assert {"data", "_ctx", "_version", "_from_op", "_sum_to", "__add__"} <= members
    t = Tensor([1.0, 2.0], requires_grad=True)
    missing = [name for name in sorted(members) if not hasattr(t, name)]
    assert missing == []
    assert autograd._tensor_class is Tensor  # registered when tensor.py was imported


def test_constant_wraps_an_array_without_a_copy_or_a_graph():
    from tinygrad_mlp import autograd
    a = np.arange(3.0)
    c = autograd.constant(a)
    assert type(c) is Tensor and c.data is a and not c.requires_grad and c.grad_fn is None


def test_a_gradient_given_as_a_list_takes_the_tensors_dtype():
    x = Tensor(np.ones(2), requires_grad=True)  # float64
    (x * 2).backward([1, 3])
    assert x.grad.dtype == np.float64
    np.testing.assert_array_equal(x.grad.data, [2.0, 6.0])


def test_tracing_costs_recorded_ops_nothing_unless_a_trace_is_on():
    from tinygrad_mlp import autograd
    x = Tensor([1.0, 2.0], requires_grad=True)
    assert autograd._Recording.on_record is None
    assert not hasattr((x * 2).grad_fn, "scope")
    seen = []
    with autograd.trace_modules():
        hook = autograd._Recording.on_record
        autograd._Recording.on_record = lambda fn: (seen.append(fn.name), hook(fn))
        try:
            y = (x * 2).exp()
        finally:
            autograd._Recording.on_record = hook
    assert seen == ["Mul", "Exp"] and autograd._Recording.on_record is None
    assert y.grad_fn.name == "Exp"
