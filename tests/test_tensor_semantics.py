"""Tensor semantics a PyTorch or numpy user relies on: in-place ops and the version counter, numpy
interop, dim=/keepdim= beside axis=/keepdims=, transpose and friends, the tensor() factory and
mixed dtypes. The first block holds the cases that used to give silently wrong results."""
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import tinygrad_mlp as tg
from tinygrad_mlp import Tensor, nn


def f32(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# ------------------------------------------------------------------ once silently wrong

def test_manual_sgd_step_under_no_grad_changes_the_parameters():
    model = nn.Linear(3, 2, rng=0)
    x, y = Tensor(f32(8, 3)), Tensor(f32(8, 2, seed=1))
    losses = []
    for _ in range(3):
        loss = ((model(x) - y) ** 2).mean()
        losses.append(loss.item())
        model.zero_grad()
        loss.backward()
        with tg.no_grad():
            for p in model.parameters():
                p -= 0.1 * p.grad
    assert losses[2] < losses[1] < losses[0]
    assert all(isinstance(p, nn.Parameter) and p.is_leaf for p in model.parameters())


def test_inplace_on_a_leaf_that_requires_grad_refuses_while_recording():
    x = Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf.*requires grad.*no_grad"):
        x += 1
    assert x.is_leaf and x.requires_grad
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.data, [2.0, 4.0])


def test_transpose_of_two_axes_swaps_them_also_in_two_dimensions():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(Tensor(a).transpose(0, 1).data, a.T)
    np.testing.assert_array_equal(Tensor(a).transpose(1, 0).data, a.T)
    b = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    np.testing.assert_array_equal(Tensor(b).transpose(0, 2).data, b.swapaxes(0, 2))
    np.testing.assert_array_equal(Tensor(b).transpose(2, 0, 1).data, b.transpose(2, 0, 1))
    np.testing.assert_array_equal(Tensor(b).transpose().data, b.T)


def test_np_asarray_and_numpy_functions_take_tensors():
    t = Tensor([[1.0, 2.0], [3.0, 4.0]])
    arr = np.asarray(t)
    assert arr.dtype == np.float32 and arr.shape == (2, 2)
    assert np.mean(t) == pytest.approx(2.5)
    np.testing.assert_array_equal(np.concatenate([t, t]), np.concatenate([arr, arr]))
    assert np.asarray(t, dtype=np.float64).dtype == np.float64
    assert np.array(t, copy=True) is not t.data
    with pytest.raises(ValueError, match="copy"):
        np.asarray(t, dtype=np.float64, copy=False)
    assert isinstance(np.ones(2, np.float32) + Tensor([1.0, 2.0]), Tensor)


def test_data_loader_takes_a_tensor():
    from tinygrad_mlp.data import DataLoader
    x = Tensor(f32(6, 2))
    y = np.arange(6)
    batches = list(DataLoader(x, y, batch_size=4, shuffle=False))
    np.testing.assert_array_equal(np.asarray(batches[0][0]), x.data[:4])


def test_a_float64_input_into_a_float32_layer_is_refused_clearly():
    layer = nn.Linear(4, 2, rng=0)
    with pytest.raises(TypeError, match="float64.*float32"):
        layer(Tensor(np.random.default_rng(0).random((3, 4))))
    with pytest.raises(TypeError, match="float64.*float32"):
        Tensor(np.ones((3, 4))) @ layer.weight.T
    assert layer(Tensor(np.ones((3, 4))).float()).dtype == np.float32


def test_int_or_bool_with_float_keeps_the_float_dtype():
    f = Tensor(np.ones(3, np.float32))
    i = Tensor(np.arange(3))  # int64
    assert (i * f).dtype == np.float32 and (f + i).dtype == np.float32
    assert (f * np.arange(3)).dtype == np.float32
    assert (i @ Tensor(np.ones((3, 2), np.float32))).dtype == np.float32
    assert (Tensor(np.ones(3, bool)) * f).dtype == np.float32
    assert ((i + 1) / (i + 1)).dtype == np.float32  # true division of ints: float32, as PyTorch


def test_mean_of_bools_and_ints_is_float32_and_exact():
    pred = Tensor(np.array([0, 1, 2]))
    y = Tensor(np.array([0, 1, 1]))
    acc = (pred == y).mean()
    assert acc.dtype == np.float32 and acc.item() == np.float32(2 / 3)
    ints = Tensor(np.array([[1, 2], [4, 8]]))
    m = ints.mean(axis=0)
    assert m.dtype == np.float32
    np.testing.assert_array_equal(m.data, np.array([2.5, 5.0], np.float32))
    v = ints.var(axis=1, ddof=1)
    assert v.dtype == np.float32
    np.testing.assert_array_equal(v.data, np.var(ints.data, axis=1, ddof=1).astype(np.float32))
    big = Tensor(np.full(3, 2**40 + 1))  # float32 arithmetic would lose the +1
    assert big.mean().item() == np.float32(2**40 + 1)


def test_max_with_a_positional_axis_is_refused_so_pytorch_unpacking_cannot_misread_rows():
    logits = Tensor(np.array([[0.1, 0.9, 0.3], [0.8, 0.2, 0.5]], np.float32))
    with pytest.raises(TypeError, match="axis=1.*dim=1"):
        v, i = logits.max(1)
    with pytest.raises(TypeError, match="keyword"):
        logits.min(0)
    v, i = logits.max(dim=1)
    np.testing.assert_array_equal(v.data, logits.data[[0, 1], [1, 0]])
    np.testing.assert_array_equal(i.data, [1, 0])


# ------------------------------------------------------------------ in-place ops

def test_inplace_ops_keep_identity_and_bump_the_version():
    t = Tensor(np.zeros(3, np.float32))
    alias = t
    versions = []
    for change in (lambda: t.add_(1), lambda: t.sub_(0.5), lambda: t.mul_(4), lambda: t.div_(2),
                   lambda: t.clamp_(max=0.5), lambda: t.fill_(3), lambda: t.zero_(),
                   lambda: t.copy_(np.arange(3))):
        assert change() is t
        versions.append(t._version[0])
    assert versions == sorted(set(versions))
    t += 1
    t *= 2
    t -= 1
    t /= 2
    t[0] = 10
    t[1:] = Tensor([7.0, 8.0])
    assert t is alias and t.dtype == np.float32
    np.testing.assert_array_equal(t.data, [10.0, 7.0, 8.0])


def test_inplace_errors_name_the_problem():
    t = Tensor(np.zeros(3, np.float32))
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3,\)"):
        t += np.ones((2, 3), np.float32)
    i = Tensor(np.arange(3))
    with pytest.raises(TypeError, match="int64"):
        i += 0.5
    with pytest.raises(ValueError, match="read-only.*clone"):
        Tensor([1.0]).expand(3).add_(1)
    with pytest.raises(IndexError, match=r"setitem.*\(3,\)"):
        t[5] = 1.0
    w = Tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="x = x \\+ y"):
        t[:1] = w  # would silently drop the gradient to w
    with pytest.raises(RuntimeError, match="x = x \\+ y"):
        h = w * 2
        h += 1
    np.testing.assert_array_equal(t.data, 0)


def test_inplace_on_an_intermediate_under_no_grad_is_refused_too():
    w = Tensor([1.0, 2.0], requires_grad=True)
    y = w.exp()  # Exp's backward reads its output
    with tg.no_grad(), pytest.raises(RuntimeError, match="recorded graph"):
        y.mul_(0)
    d = y.detach().clone()
    d.mul_(0)  # a detached copy is free to change
    y.sum().backward()
    np.testing.assert_allclose(w.grad.data, np.exp([1.0, 2.0]), rtol=1e-6)


def test_backward_refuses_a_saved_input_changed_in_place():
    w = Tensor(f32(3), requires_grad=True)
    x = Tensor(f32(3, seed=1))
    loss = (x * w).sum()  # Mul saves x for w's gradient
    x.mul_(2)
    with pytest.raises(RuntimeError, match=r"Mul.*shape \(3,\).*modified by an in-place"):
        loss.backward()
    assert w.grad is None  # nothing was written before the refusal


def test_a_change_through_a_view_or_of_the_base_is_seen():
    w = Tensor(f32(2, 3), requires_grad=True)
    base = Tensor(f32(3, 2, seed=1))
    view = base.reshape(2, 3)  # shares base's memory
    loss = (view * w).sum()
    base.add_(1)  # changes what Mul saved, through the base
    with pytest.raises(RuntimeError, match="in-place"):
        loss.backward()
    x = Tensor(f32(2, 3, seed=2))
    loss = (x * w).sum()
    x.T.add_(1)  # through a view
    with pytest.raises(RuntimeError, match="in-place"):
        loss.backward()
    y = Tensor(f32(2, 3, seed=3))
    loss = (y * w).sum()
    y.detach()[0, 0] = 5.0  # detach shares memory and the version, as in PyTorch
    with pytest.raises(RuntimeError, match="in-place"):
        loss.backward()


def test_a_change_that_backward_does_not_read_is_allowed():
    w = Tensor(f32(3), requires_grad=True)
    b = Tensor(f32(3, seed=1))
    loss = (w + b).sum()  # Add reads no input values
    b.add_(1)
    loss.backward()
    np.testing.assert_array_equal(w.grad.data, 1)


def test_an_optimizer_step_before_backward_is_detected():
    model = nn.Linear(3, 2, rng=0)
    opt = tg.optim.SGD(model.parameters(), lr=0.1)
    x = Tensor(f32(4, 3))
    loss1 = model(x).sum()
    loss2 = model(x).sum()  # its MatMul saved the weight (through weight.T)
    loss1.backward()
    opt.step()
    with pytest.raises(RuntimeError, match="MatMul.*modified by an in-place"):
        loss2.backward()


def test_data_is_the_unchecked_escape_hatch():
    w = Tensor(f32(3), requires_grad=True)
    w.data += 1  # no error, no version change
    assert w._version is None
    x = Tensor(f32(3, seed=1))
    loss = (x * w).sum()
    x.data *= 2
    loss.backward()  # documented: .data bypasses the checks


# ------------------------------------------------------------------ dim / keepdim

@pytest.mark.parametrize("method", ["sum", "mean", "var", "std", "logsumexp", "argmax", "argmin",
                                    "any", "all"])
def test_reductions_take_dim_and_keepdim(method):
    a = f32(2, 3, 4)
    t = Tensor(a > 0) if method in ("any", "all") else Tensor(a)
    # var/std: PyTorch's keywords bring PyTorch's unbiased default (tests/test_variance_convention.py)
    extra = dict(ddof=1) if method in ("var", "std") else {}
    np.testing.assert_array_equal(getattr(t, method)(dim=1, keepdim=True).data,
                                  getattr(t, method)(axis=1, keepdims=True, **extra).data)
    with pytest.raises(TypeError, match=f"{method}: got both axis= .* and dim="):
        getattr(t, method)(axis=1, dim=1)


def test_softmax_family_squeeze_flatten_cat_stack_take_torch_names():
    t = Tensor(f32(2, 1, 3))
    F = tg.nn.functional
    for fn in (t.softmax, t.log_softmax, F.softmax, F.log_softmax):
        args = () if getattr(fn, "__self__", None) is t else (t,)
        np.testing.assert_array_equal(fn(*args, dim=2).data, fn(*args, axis=2).data)
    assert t.squeeze(dim=1).shape == (2, 3)
    assert t.flatten(start_dim=1).shape == (2, 3) and t.flatten(0, 1).shape == (2, 3)
    assert t.flatten(start_dim=0, end_dim=1).shape == (2, 3)
    assert tg.cat([t, t], dim=1).shape == (2, 2, 3) and tg.stack([t, t], dim=0).shape == (2,) + t.shape
    np.testing.assert_allclose(nn.Softmax(dim=1)(Tensor(f32(2, 3))).data.sum(axis=1), 1,
                               rtol=1e-6)
    assert nn.LogSoftmax(dim=-1)(Tensor(f32(2, 3))).shape == (2, 3)
    assert nn.Flatten(start_dim=0, end_dim=1)(t).shape == (2, 3)
    with pytest.raises(TypeError, match="both"):
        nn.Softmax(axis=1, dim=1)
    with pytest.raises(TypeError, match="both"):
        tg.cat([t], axis=0, dim=0)


def test_max_min_conventions():
    a = np.array([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]], np.float32)
    t = Tensor(a, requires_grad=True)
    out = t.max(dim=0, keepdim=True)
    assert out.values.shape == (1, 3) and out.indices.dtype == np.int64
    np.testing.assert_array_equal(out.indices.data, [[1, 0, 1]])
    low = t.min(dim=1)
    np.testing.assert_array_equal(low.values.data, [1.0, 0.0])
    np.testing.assert_array_equal(low.indices.data, [0, 1])
    low.values.sum().backward()
    np.testing.assert_array_equal(t.grad.data, [[1, 0, 0], [0, 1, 0]])
    assert t.max(axis=1).shape == (2,) and t.max().item() == 7.0  # numpy: values only
    with pytest.raises(TypeError, match="maximum"):
        t.max(Tensor(a))
    with pytest.raises(TypeError, match="one int"):
        t.max(dim=(0, 1))


# ------------------------------------------------------------------ shape and conversion methods

def test_identity_permutations_give_new_tensors():
    t = Tensor(f32(2, 3))
    for out in (t.transpose(0, 0), t.permute(0, 1), t.swapaxes(1, 1), Tensor(f32(3)).T):
        assert out is not t and out is not None


def test_view_shares_memory_and_refuses_to_copy():
    t = Tensor(np.arange(6, dtype=np.float32))
    v = t.view(2, 3)
    v.add_(1)
    np.testing.assert_array_equal(t.data, np.arange(1, 7))
    with pytest.raises(RuntimeError, match="reshape"):
        Tensor(f32(2, 3)).T.view(6)


def test_expand_and_unsqueeze():
    t = Tensor(f32(3, 1))
    assert t.expand(2, 3, 4).shape == (2, 3, 4) and t.expand(-1, 5).shape == (3, 5)
    assert t.unsqueeze(0).shape == (1, 3, 1) and t.unsqueeze(-1).shape == (3, 1, 1)
    with pytest.raises(ValueError, match="new leading"):
        t.expand(-1, 3, 1)


def test_small_methods():
    t = Tensor(np.array([[-1.5, 2.0]], np.float32), requires_grad=True)
    assert t.numel() == 2 and t.dim() == 2
    assert abs(t).data.tolist() == [[1.5, 2.0]]
    assert t.float() is t and t.double().dtype == np.float64
    assert t.long().dtype == np.int64 and t.int().dtype == np.int32
    assert t.bool().dtype == np.bool_ and not t.long().requires_grad
    assert t.to(np.float64).dtype == np.float64 and t.to("cpu") is t
    assert t.to("cpu", dtype=np.float64).dtype == np.float64
    assert t.type_as(Tensor(np.zeros(1, np.float64))).dtype == np.float64
    assert t.to(Tensor(np.zeros(1))).dtype == np.float64
    with pytest.raises(RuntimeError, match="CPU only.*cuda"):
        t.to("cuda")
    with pytest.raises(RuntimeError, match="CPU only"):
        t.to(device="mps")
    c = t.clone()
    assert c.data is not t.data and c.requires_grad
    (c * 3).sum().backward()
    np.testing.assert_array_equal(t.grad.data, [[3.0, 3.0]])
    clamped = Tensor(np.array([-2.0, -1.0, 0.5, 1.0, 3.0], np.float32), requires_grad=True)
    clamped.clamp(min=-1.0, max=1.0).sum().backward()
    np.testing.assert_array_equal(clamped.grad.data, [0, 1, 1, 1, 0])  # bounds included
    with pytest.raises(ValueError, match="min=, max="):
        clamped.clamp()


# ------------------------------------------------------------------ as_tensor()

def test_as_tensor_shares_an_arrays_memory_and_keeps_its_dtype():
    for dtype in (np.float32, np.float64, np.int64, np.uint8, np.bool_):
        a = np.zeros(3, dtype)
        t = tg.as_tensor(a)
        assert t.dtype == dtype and np.shares_memory(t.data, a)
        assert not t.requires_grad and t.grad_fn is None
    a = np.zeros(3, np.float32)
    t = tg.as_tensor(a)
    a[1] = 5
    assert t.data[1] == 5                                   # one memory, as torch.as_tensor
    assert np.shares_memory(tg.as_tensor(a, dtype=np.float32).data, a)
    t64 = tg.as_tensor(a, dtype=np.float64)                 # another dtype: a converted copy
    assert t64.dtype == np.float64 and not np.shares_memory(t64.data, a)


def test_as_tensor_infers_python_data_as_tensor_does():
    for data in ([1, 2], [1.0, 2], 3.5, 7, [True, False], [[1, 2], [3, 4]]):
        assert tg.as_tensor(data).dtype == tg.tensor(data).dtype, data
        np.testing.assert_array_equal(tg.as_tensor(data).data, tg.tensor(data).data)
    assert tg.as_tensor([1, 2], dtype=np.float64).dtype == np.float64
    assert tg.as_tensor(np.float64(2.0)).dtype == np.float64


def test_as_tensor_returns_a_tensor_as_it_is_and_converts_it_on_request():
    w = Tensor([1.0, 2.0], requires_grad=True)
    assert tg.as_tensor(w) is w and tg.as_tensor(w, dtype=np.float32) is w
    w64 = tg.as_tensor(w, dtype=np.float64)
    assert w64.dtype == np.float64 and w64.grad_fn is not None   # a recorded conversion


def test_as_tensor_refuses_what_a_tensor_cannot_hold():
    with pytest.raises(TypeError, match=r"as_tensor: unsupported dtype <U1"):
        tg.as_tensor(np.array(["a"]))
    with pytest.raises(TypeError, match=r"as_tensor: unsupported dtype complex128"):
        tg.as_tensor(np.array([1j]))
    with pytest.raises(TypeError, match=r"as_tensor: unsupported dtype complex64"):
        tg.as_tensor([1.0], dtype=np.complex64)
    with pytest.raises(ValueError, match="as_tensor: cannot make a tensor"):
        tg.as_tensor([[1.0], [1.0, 2.0]])


# ------------------------------------------------------------------ tensor() factory

def test_tensor_factory_infers_like_pytorch_and_copies():
    assert tg.tensor([1, 2]).dtype == np.int64
    assert tg.tensor([1.0, 2]).dtype == np.float32
    assert tg.tensor(3.5).dtype == np.float32 and tg.tensor(3.5).shape == ()
    assert tg.tensor([True, False]).dtype == np.bool_
    assert tg.tensor(np.ones(2)).dtype == np.float64  # numpy arrays keep their dtype
    assert tg.tensor([1, 2], dtype=np.float64).dtype == np.float64
    a = np.zeros(2, np.float32)
    t = tg.tensor(a)
    a[0] = 1
    assert t.data[0] == 0  # a copy
    w = tg.tensor([[0.5, 1.0]], requires_grad=True)
    assert w.requires_grad and w.is_leaf
    assert tg.tensor([Tensor(1.0), Tensor(2.0)]).shape == (2,)
    with pytest.raises(TypeError, match="floating"):
        tg.tensor([1, 2], requires_grad=True)
    with pytest.raises(TypeError, match="unsupported dtype"):
        tg.tensor(["a"])
    with pytest.raises(ValueError, match="tensor: cannot"):
        tg.tensor([[1.0], [2.0, 3.0]])


def test_the_factory_is_not_shadowed_by_the_tensor_module():
    mod = sys.modules["tinygrad_mlp.tensor"]
    assert callable(tg.tensor) and tg.tensor is not mod and tg.tensor is mod.tensor
    setattr(tg, "tensor", mod)  # what the import system does when it (re)loads a submodule
    assert tg.tensor is mod.tensor
    from tinygrad_mlp import tensor
    assert tensor is mod.tensor
    # A fresh interpreter that imports the submodule (and the rest of the package) by name.
    code = ("import tinygrad_mlp.tensor, tinygrad_mlp.nn, tinygrad_mlp.optim, tinygrad_mlp.data, "
            "tinygrad_mlp.training, tinygrad_mlp.functional; import tinygrad_mlp as tg; "
            "print(tg.tensor([1]).dtype)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.returncode == 0 and out.stdout.strip() == "int64", out.stderr


def test_layers_take_lists():
    model = nn.Sequential(nn.Linear(2, 3, rng=0), nn.ReLU(), nn.Linear(3, 1, rng=1))
    out = model([[1.0, 2.0]])
    assert out.shape == (1, 1) and out.dtype == np.float32
    assert nn.Linear(2, 1, rng=0)([[1, 2]]).dtype == np.float32  # ints take the layer's dtype
    with pytest.raises(TypeError, match="Linear.*str"):
        nn.Linear(2, 1, rng=0)("x")


def test_grad_of_a_non_scalar_names_grad_outputs():
    w = Tensor(f32(3), requires_grad=True)
    with pytest.raises(RuntimeError, match="grad_outputs="):
        tg.grad(w * 2, [w])
    with pytest.raises(RuntimeError, match="gradient="):
        (w * 2).backward()


def test_matplotlib_plots_a_tensor():
    plt = pytest.importorskip("matplotlib.pyplot")
    import matplotlib
    matplotlib.use("Agg")
    fig, ax = plt.subplots()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (line,) = ax.plot(Tensor([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(line.get_ydata(), [1.0, 2.0, 3.0])
    plt.close(fig)


# ------------------------------------------------------------------ properties

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

INPLACE = {"add_": np.add, "sub_": np.subtract, "mul_": np.multiply, "div_": np.divide}


@settings(max_examples=40, deadline=None)
@given(data=st.data(), name=st.sampled_from(sorted(INPLACE)))
def test_inplace_ops_match_their_out_of_place_result(data, name):
    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=3, max_side=3))
    # a shape that broadcasts to ``shape``: some leading axes dropped, some axes of size 1
    kept = shape[data.draw(st.integers(0, len(shape))):]
    other_shape = tuple(data.draw(st.sampled_from([n, 1])) for n in kept)
    values = st.floats(0.5, 3) | st.floats(-3, -0.5)
    a = data.draw(hnp.arrays(np.float32, shape, elements=values))
    b = data.draw(hnp.arrays(np.float32, other_shape, elements=values))
    t = Tensor(a.copy())
    before = t._version
    assert getattr(t, name)(Tensor(b)) is t
    np.testing.assert_array_equal(t.data, INPLACE[name](a, b))
    assert t.dtype == np.float32 and t.shape == shape
    assert before is None and t._version[0] > 0


@settings(max_examples=40, deadline=None)
@given(data=st.data(), name=st.sampled_from(["max", "min"]), keep=st.booleans())
def test_max_min_with_dim_match_numpy(data, name, keep):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=4))
    a = data.draw(hnp.arrays(np.float64, shape, elements=st.floats(-5, 5)))
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    values, indices = getattr(Tensor(a), name)(dim=dim, keepdim=keep)
    np.testing.assert_array_equal(values.data, getattr(np, name)(a, axis=dim, keepdims=keep))
    arg = np.argmax if name == "max" else np.argmin
    np.testing.assert_array_equal(indices.data, arg(a, axis=dim, keepdims=keep))


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_mean_and_var_of_ints_and_bools_are_float32_rounded_once(data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=2, max_side=5))
    dtype = data.draw(st.sampled_from([np.int64, np.int32, np.bool_]))
    a = data.draw(hnp.arrays(dtype, shape))
    for stat in ("mean", "var"):
        out = getattr(Tensor(a), stat)(axis=0)
        exact = getattr(np, stat)(a.astype(np.float64), axis=0).astype(np.float32)
        assert out.dtype == np.float32
        np.testing.assert_array_equal(out.data, exact)
