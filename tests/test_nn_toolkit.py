"""Tests for the nn toolkit: activations, LayerNorm, Embedding, ModuleDict/ParameterList, Module
methods (hooks, freezing, zero_grad, parameter count) and nn.utils, against PyTorch.

Each PyTorch counterpart gets the same float64 values (and weights copied over); values and
gradients must agree to float64 rounding.
"""
import math

import numpy as np
import pytest

import tinygrad_mlp as tg
from tinygrad_mlp import Tensor, gradcheck, gradgradcheck, nn
from tinygrad_mlp import functional as F
from tinygrad_mlp.nn import utils

torch = pytest.importorskip("torch")


def compare(ours_fn, theirs_fn, x, rtol=1e-12, atol=1e-14):
    """Forward and backward of both frameworks on float64 ``x`` with one random upstream grad."""
    a = Tensor(x.copy(), requires_grad=True)
    b = torch.tensor(x.copy(), requires_grad=True)
    ya, yb = ours_fn(a), theirs_fn(b)
    np.testing.assert_allclose(ya.data, yb.detach().numpy(), rtol=rtol, atol=atol)
    g = np.random.default_rng(1).normal(size=ya.shape)
    ya.backward(Tensor(g))
    yb.backward(torch.tensor(g))
    np.testing.assert_allclose(a.grad.data, b.grad.numpy(), rtol=rtol, atol=atol)


def wide_values(shape=(6, 9), seed=0):
    x = np.random.default_rng(seed).normal(scale=4, size=shape)
    x.flat[:7] = [0.0, 30.0, -30.0, 800.0, -800.0, 1e-9, -1e-9]
    return x


# ---------------------------------------------------------------- activations

@pytest.mark.parametrize("ours, theirs", [
    (nn.GELU(), torch.nn.GELU()),
    (nn.GELU(approximate="tanh"), torch.nn.GELU(approximate="tanh")),
    (nn.SiLU(), torch.nn.SiLU()),
    (nn.Softplus(), torch.nn.Softplus()),
    (nn.Softplus(beta=2.5, threshold=6.0), torch.nn.Softplus(beta=2.5, threshold=6.0)),
    (nn.Softplus(beta=0.5), torch.nn.Softplus(beta=0.5)),
    (nn.ELU(), torch.nn.ELU()),
    (nn.ELU(alpha=0.3), torch.nn.ELU(alpha=0.3)),
], ids=lambda m: repr(m))
def test_activations_match_pytorch_including_extremes(ours, theirs):
    compare(ours, theirs, wide_values())


def test_softplus_keeps_tiny_values_that_a_plain_log_would_round_to_zero():
    x = np.array([-40.0, -700.0, -20.0])
    got = F.softplus(Tensor(x)).data
    np.testing.assert_allclose(got, np.log1p(np.exp(x)), rtol=1e-14)
    got32 = F.softplus(Tensor(x.astype(np.float32))).data
    assert got32.dtype == np.float32 and got32[0] > 0


def test_elu_slope_at_zero_is_alpha_and_gelu_stays_float32():
    x = Tensor(np.zeros(1), requires_grad=True)
    F.elu(x, alpha=0.7).sum().backward()
    assert x.grad.item() == pytest.approx(0.7)
    for approximate in ("none", "tanh"):
        z = Tensor(np.linspace(-5, 5, 11, dtype=np.float32), requires_grad=True)
        y = F.gelu(z, approximate)
        y.sum().backward()
        assert y.dtype == np.float32 and z.grad.dtype == np.float32


def test_activation_second_derivatives():
    x = Tensor(np.linspace(-3, 3, 7).reshape(7, 1) + 0.05, requires_grad=True)
    for fn in (F.gelu, lambda z: F.gelu(z, "tanh"), F.silu, F.softplus, F.elu):
        assert gradcheck(fn, [x])
        assert gradgradcheck(fn, [x])


def test_gelu_rejects_unknown_approximation():
    with pytest.raises(ValueError, match="approximate"):
        nn.GELU("erf")
    with pytest.raises(ValueError, match="approximate"):
        F.gelu(Tensor(np.zeros(2)), "fast")


# ---------------------------------------------------------------- LayerNorm

@pytest.mark.parametrize("normalized_shape", [(5,), (3, 5)])
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_matches_pytorch(normalized_shape, affine):
    rng = np.random.default_rng(2)
    x = rng.normal(2.0, 3.0, size=(4, 3, 5))
    ours = nn.LayerNorm(normalized_shape, eps=1e-4, elementwise_affine=affine, dtype=np.float64)
    theirs = torch.nn.LayerNorm(normalized_shape, eps=1e-4, elementwise_affine=affine,
                                dtype=torch.float64)
    if affine:
        w, b = rng.normal(size=normalized_shape), rng.normal(size=normalized_shape)
        ours.load_state_dict({"weight": w, "bias": b})
        theirs.load_state_dict({"weight": torch.tensor(w), "bias": torch.tensor(b)})
    assert list(ours.state_dict()) == list(theirs.state_dict())
    compare(ours, theirs, x)
    if affine:
        np.testing.assert_allclose(ours.weight.grad.data, theirs.weight.grad.numpy(), rtol=1e-12)
        np.testing.assert_allclose(ours.bias.grad.data, theirs.bias.grad.numpy(), rtol=1e-12)


def test_layer_norm_defaults_and_bad_shapes():
    ln = nn.LayerNorm(4)
    assert ln.weight.dtype == np.float32 and np.all(ln.weight.data == 1)
    assert np.all(ln.bias.data == 0)
    y = ln(Tensor(np.arange(8, dtype=np.float32).reshape(2, 4)))
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.data.mean(axis=1), 0, atol=1e-6)
    with pytest.raises(ValueError, match=r"shape \(2, 3\) does not end in normalized_shape \(4,\)"):
        ln(Tensor(np.zeros((2, 3))))
    with pytest.raises(ValueError, match="normalized_shape"):
        nn.LayerNorm((0,))


# ---------------------------------------------------------------- Embedding

def test_embedding_matches_pytorch_and_padding_row_gets_no_gradient():
    tg.manual_seed(0)
    ours = nn.Embedding(7, 3, padding_idx=2, dtype=np.float64)
    theirs = torch.nn.Embedding(7, 3, padding_idx=2, dtype=torch.float64)
    np.testing.assert_array_equal(ours.weight.data[2], 0)  # as PyTorch initialises it
    w = np.random.default_rng(3).normal(size=(7, 3))  # a non-zero padding row too
    ours.load_state_dict({"weight": w})
    theirs.load_state_dict({"weight": torch.tensor(w)})
    idx = np.array([[0, 2, 5, 2], [6, 1, 2, 0]])
    ya, yb = ours(idx), theirs(torch.tensor(idx))
    np.testing.assert_array_equal(ya.data, yb.detach().numpy())
    g = np.random.default_rng(4).normal(size=ya.shape)
    ya.backward(Tensor(g))
    yb.backward(torch.tensor(g))
    np.testing.assert_allclose(ours.weight.grad.data, theirs.weight.grad.numpy(), rtol=1e-14)
    np.testing.assert_array_equal(ours.weight.grad.data[2], 0)
    assert ours.weight.grad.data[0].any()  # repeated indices accumulate


def test_embedding_without_padding_and_its_errors():
    emb = nn.Embedding(4, 2, rng=0)
    assert emb.weight.dtype == np.float32
    assert emb(np.array(3)).shape == (2,)
    assert nn.Embedding(4, 2, padding_idx=-1).padding_idx == 3
    with pytest.raises(IndexError, match=r"index 4 is out of range; expected indices in \[0, 4\)"):
        emb(np.array([0, 4]))
    with pytest.raises(IndexError, match="index -1 is out of range"):  # as PyTorch
        emb(np.array([[0, -1]]))
    with pytest.raises(IndexError):
        torch.nn.Embedding(4, 2)(torch.tensor([0, -1]))
    with pytest.raises(TypeError, match="integers"):
        emb(np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="padding_idx"):
        nn.Embedding(4, 2, padding_idx=4)


# ---------------------------------------------------------------- containers

def test_module_dict_and_parameter_list_state_dict_keys_are_pytorchs():
    class Ours(nn.Module):
        def __init__(self):
            super().__init__()
            self.heads = nn.ModuleDict({"cls": nn.Linear(4, 3), "box": nn.Linear(4, 2)})
            self.scales = nn.ParameterList([nn.Parameter(np.ones(3)), np.zeros((2, 2))])

    class Theirs(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.heads = torch.nn.ModuleDict({"cls": torch.nn.Linear(4, 3),
                                              "box": torch.nn.Linear(4, 2)})
            self.scales = torch.nn.ParameterList([torch.nn.Parameter(torch.ones(3)),
                                                  torch.nn.Parameter(torch.zeros(2, 2))])

    ours, theirs = Ours(), Theirs()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
    assert isinstance(ours.scales[1], nn.Parameter) and ours.scales[1].shape == (2, 2)


def test_module_dict_behaves_like_a_dict():
    d = nn.ModuleDict()
    d["a"] = nn.ReLU()
    d.update([("b", nn.Tanh())])
    assert list(d) == ["a", "b"] and "a" in d and len(d) == 2
    assert isinstance(d.pop("a"), nn.ReLU) and list(d.keys()) == ["b"]
    assert list(d.state_dict()) == []
    with pytest.raises(KeyError, match="'zz' is not in this ModuleDict"):
        d["zz"]
    with pytest.raises(KeyError, match="hide the attribute"):
        d["train"] = nn.ReLU()
    with pytest.raises(KeyError, match=r"no '\.'"):
        d["x.y"] = nn.ReLU()
    with pytest.raises(TypeError, match="not a Module"):
        d["c"] = 3
    d.clear()
    assert len(d) == 0


def test_parameter_list_indexing_and_errors():
    p = nn.ParameterList()
    p.append(Tensor(np.ones(2))).extend([np.zeros(3)])
    assert len(p) == 2 and p[-1].shape == (3,) and p[0].requires_grad
    p[0] = nn.Parameter(np.full(2, 5.0))
    assert p[0].data[0] == 5 and [t.shape for t in p] == [(2,), (3,)]
    with pytest.raises(IndexError, match="out of range"):
        p[2]
    with pytest.raises(TypeError, match="floating point"):
        p.append(np.arange(3))


# ---------------------------------------------------------------- Module methods

def model():
    return nn.Sequential({"enc": nn.Sequential(nn.Linear(4, 5), nn.GELU()),
                          "norm": nn.LayerNorm(5), "head": nn.Linear(5, 2)})


def test_named_modules_and_apply_order_match_pytorch():
    theirs = torch.nn.Sequential()
    theirs.add_module("enc", torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.GELU()))
    theirs.add_module("norm", torch.nn.LayerNorm(5))
    theirs.add_module("head", torch.nn.Linear(5, 2))
    ours = model()
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    seen_ours, seen_theirs = [], []
    ours.apply(lambda m: seen_ours.append(type(m).__name__))
    theirs.apply(lambda m: seen_theirs.append(type(m).__name__))
    assert seen_ours == seen_theirs


def test_requires_grad_freezes_and_the_printed_count_follows():
    m = model()
    total = sum(p.data.size for p in m.parameters())
    assert total == 4 * 5 + 5 + 5 + 5 + 5 * 2 + 2
    assert str(m).endswith(f"Trainable parameters: {total}")
    assert str(m).startswith(repr(m))
    assert m.enc.requires_grad_(False) is m.enc
    assert not any(p.requires_grad for p in m.enc.parameters())
    assert str(m).endswith(f"Trainable parameters: {total - 25} of {total}")
    big = nn.Linear(1000, 100)
    assert str(big) == repr(big) + "\nTrainable parameters: 100,100"


def test_zero_grad_to_none_or_to_zeros_in_place():
    m = model()
    m(Tensor(np.ones((2, 4), dtype=np.float32))).sum().backward()
    grad = m.head.weight.grad
    m.zero_grad(set_to_none=False)
    assert m.head.weight.grad is grad and not grad.data.any()
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())


def test_forward_hooks_can_replace_inputs_and_outputs_and_be_removed():
    lin = nn.Linear(3, 2, rng=0)
    x = Tensor(np.ones((1, 3), dtype=np.float32))
    plain = lin(x).data.copy()
    calls = []
    h1 = lin.register_forward_pre_hook(lambda mod, args: calls.append(("pre", mod)) or
                                       (args[0] * 2,))
    h2 = lin.register_forward_hook(lambda mod, args, out: calls.append(("post", args[0].data))
                                   or out + 1)
    np.testing.assert_allclose(lin(x).data, (plain - lin.bias.data) * 2 + lin.bias.data + 1,
                               rtol=1e-6)
    assert calls[0] == ("pre", lin) and calls[1][0] == "post"
    np.testing.assert_array_equal(calls[1][1], 2 * x.data)  # the hook saw the replaced input
    h1.remove()
    h2.remove()
    h2.remove()  # twice is harmless
    np.testing.assert_array_equal(lin(x).data, plain)
    assert len(calls) == 2
    seen = []
    model_ = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    handles = [m.register_forward_hook(lambda mod, args, out: seen.append(out.shape))
               for m in model_]
    model_(x)
    assert seen == [(1, 4), (1, 4), (1, 2)]
    for h in handles:
        h.remove()
    with pytest.raises(TypeError, match="callable"):
        lin.register_forward_hook(3)


def test_hooks_match_pytorch_calling_convention():
    collected = {}
    for name, lib in (("ours", nn), ("theirs", torch.nn)):
        layer = lib.ReLU()
        got = []
        layer.register_forward_pre_hook(lambda mod, args: got.append(len(args)))
        layer.register_forward_hook(lambda mod, args, out: got.append(type(args).__name__))
        layer(Tensor(np.ones(2)) if name == "ours" else torch.ones(2))
        collected[name] = got
    assert collected["ours"] == collected["theirs"] == [1, "tuple"]


# ---------------------------------------------------------------- nn.utils

def _grads(seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    return [rng.normal(scale=scale, size=s) for s in [(4, 3), (3,), (2, 2, 2)]]


def _with_grads(grads, lib):
    if lib == "ours":
        params = [nn.Parameter(np.zeros_like(g)) for g in grads]
        for p, g in zip(params, grads):
            p.grad = Tensor(g.copy())
    else:
        params = [torch.nn.Parameter(torch.zeros(g.shape, dtype=torch.float64)) for g in grads]
        for p, g in zip(params, grads):
            p.grad = torch.tensor(g.copy())
    return params


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 1e6])
def test_clip_grad_norm_matches_pytorch(norm_type, max_norm):
    grads = _grads()
    ours, theirs = _with_grads(grads, "ours"), _with_grads(grads, "theirs")
    held = ours[0].grad
    total = utils.clip_grad_norm_(ours, max_norm, norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    assert isinstance(total, Tensor)
    assert total.item() == pytest.approx(expected.item(), rel=1e-12)
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.data, q.grad.numpy(), rtol=1e-12)
    assert ours[0].grad is held  # scaled in place


def test_clip_grad_norm_non_finite_and_edge_cases():
    grads = _grads()
    grads[1][0] = np.inf
    with pytest.raises(RuntimeError, match="norm of the gradients is inf"):
        utils.clip_grad_norm_(_with_grads(grads, "ours"), 1.0, error_if_nonfinite=True)
    ours, theirs = _with_grads(grads, "ours"), _with_grads(grads, "theirs")
    with pytest.warns(RuntimeWarning, match="total norm of the gradients is inf"):
        utils.clip_grad_norm_(ours, 1.0)
    torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    for p, q in zip(ours, theirs):
        np.testing.assert_array_equal(p.grad.data, q.grad.numpy())  # NaN where PyTorch has NaN
    lone = nn.Parameter(np.zeros(3))
    assert utils.clip_grad_norm_(lone, 1.0).item() == 0.0  # no gradient: nothing to clip
    with pytest.raises(ValueError, match="norm_type"):
        utils.clip_grad_norm_(ours, 1.0, norm_type=0)


def test_clip_grad_value_matches_pytorch():
    grads = _grads(scale=2.0)
    ours, theirs = _with_grads(grads, "ours"), _with_grads(grads, "theirs")
    utils.clip_grad_value_(ours, 0.7)
    torch.nn.utils.clip_grad_value_(theirs, 0.7)
    for p, q in zip(ours, theirs):
        np.testing.assert_array_equal(p.grad.data, q.grad.numpy())
    assert max(np.abs(p.grad.data).max() for p in ours) == 0.7


def test_parameters_to_vector_and_back_match_pytorch_and_keep_layouts():
    lin = nn.Linear(3, 2, rng=0)
    tl = torch.nn.Linear(3, 2)
    tl.load_state_dict({k: torch.tensor(v) for k, v in lin.state_dict().items()})
    vec = utils.parameters_to_vector(lin.parameters())
    np.testing.assert_array_equal(
        vec.data, torch.nn.utils.parameters_to_vector(tl.parameters()).detach().numpy())
    (vec * Tensor(np.arange(8, dtype=np.float32))).sum().backward()  # gradients flow back
    np.testing.assert_array_equal(lin.weight.grad.data, np.arange(6).reshape(2, 3))
    weight_array = lin.weight.data
    new = np.arange(8, dtype=np.float32) / 10
    utils.vector_to_parameters(Tensor(new), lin.parameters())
    torch.nn.utils.vector_to_parameters(torch.tensor(new), tl.parameters())
    for (k, v), (k2, v2) in zip(lin.state_dict().items(), tl.state_dict().items()):
        assert k == k2
        np.testing.assert_array_equal(v, v2.numpy())
    assert lin.weight.data is weight_array and weight_array.flags.f_contiguous
    with pytest.raises(ValueError, match=r"length 8 .* got shape \(7,\)"):
        utils.vector_to_parameters(Tensor(new[:7]), lin.parameters())
    with pytest.raises(TypeError, match="Tensor"):
        utils.vector_to_parameters(new, lin.parameters())
