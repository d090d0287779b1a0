"""Tests for floor 4 (nn): Parameter, Module registration and state dicts, containers, layers.

Expected outputs are written out by hand or computed with numpy from the layer's definition
(``x @ W.T + b``, batch statistics), never by the layer under test.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_mlp import Tensor, autograd, gradcheck, nn
from tinygrad_mlp import functional as F


def mlp(rng=0):
    return nn.Sequential(nn.Linear(4, 8, rng=rng), nn.ReLU(), nn.Linear(8, 3, rng=rng + 1))


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3, rng=1)
        self.scale = nn.Parameter(np.ones(3, np.float32))
        self.skip = [nn.Linear(3, 3)]  # a plain list is not registered (as in PyTorch)

    def forward(self, x):
        return self.fc(x).relu() * self.scale + x


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Parameter([[1.0, 2.0, 3.0]])
        self.blocks = nn.ModuleList([Block(), Block()])
        self.head = nn.Linear(3, 2, bias=False, rng=2)
        self.register_buffer("counter", np.zeros(1))

    def forward(self, x):
        x = x + self.embed
        for b in self.blocks:
            x = b(x)
        return self.head(x)


# ---------------------------------------------------------------- Parameter

def test_parameter_copies_its_data_requires_grad_and_defaults_to_float32():
    src = np.array([1.0, 2.0])
    p = nn.Parameter(src)
    src[0] = 99.0
    assert p.data[0] == 1.0 and p.requires_grad and p.dtype == np.float64
    assert nn.Parameter([1, 2]).dtype == np.float32
    assert not nn.Parameter([1.0], requires_grad=False).requires_grad
    with pytest.raises(TypeError, match="floating point"):
        nn.Parameter(np.array([1, 2]))


def test_ops_on_a_parameter_give_plain_tensors():
    p = nn.Parameter([[1.0, 2.0]])
    for out in (p * 2, p + p, -p, p.sum(), p.T, p.exp(), p.reshape(2, 1), p[0], p @ p.T):
        assert type(out) is Tensor
    assert type(nn.Linear(2, 2).weight.T) is Tensor


# ---------------------------------------------------------------- registration and traversal

def test_named_parameters_order_and_dotted_names():
    names = [n for n, _ in Net().named_parameters()]
    # PyTorch's order: each module's own parameters, then its children's, depth first.
    assert names == ["embed", "blocks.0.scale", "blocks.0.fc.weight", "blocks.0.fc.bias",
                     "blocks.1.scale", "blocks.1.fc.weight", "blocks.1.fc.bias", "head.weight"]
    assert len(list(Net().parameters())) == 8


def test_children_modules_and_buffers():
    net = Net()
    assert [n for n, _ in net.named_children()] == ["blocks", "head"]
    assert list(net.children()) == [net.blocks, net.head]
    assert [n for n, _ in net.named_modules()] == ["", "blocks", "blocks.0", "blocks.0.fc",
                                                    "blocks.1", "blocks.1.fc", "head"]
    assert [n for n, _ in net.named_buffers()] == ["counter"]
    assert list(net.buffers())[0] is net.counter


def test_assignment_rules():
    net = Net()
    net.head = nn.Linear(3, 2)  # replacing keeps the place in the order
    assert [n for n, _ in net.named_children()] == ["blocks", "head"]
    net.embed = nn.Parameter([[0.0, 0.0, 0.0]])
    assert next(net.named_parameters())[0] == "embed"
    with pytest.raises(TypeError, match="'head'.*Module or None"):
        net.head = Tensor([1.0])
    with pytest.raises(TypeError, match="'embed'.*Parameter or None"):
        net.embed = Tensor([1.0])
    net.embed = None
    assert "embed" not in [n for n, _ in net.named_parameters()]
    net.extra = nn.Linear(1, 1)
    assert [n for n, _ in net.named_children()][-1] == "extra"
    del net.extra
    assert "extra" not in dict(net.named_children()) and not hasattr(net, "extra")

    class Forgot(nn.Module):
        def __init__(self):
            self.w = nn.Parameter([1.0])

    with pytest.raises(AttributeError, match="super\\(\\).__init__\\(\\)"):
        Forgot()


def test_shared_parameter_is_listed_once_but_named_twice_in_the_state_dict():
    lin = nn.Linear(2, 2)
    seq = nn.Sequential(lin, lin)
    assert len(list(seq.parameters())) == 2
    assert list(seq.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias"]


def test_train_eval_and_zero_grad_reach_every_module():
    net = Net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net and not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    net(Tensor(np.ones((2, 3), np.float32))).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


# ---------------------------------------------------------------- containers

def test_sequential_indexing_slicing_len_iteration():
    seq = mlp()
    assert len(seq) == 3 and isinstance(seq[1], nn.ReLU) and seq[-1] is seq[2]
    assert list(seq) == [seq[0], seq[1], seq[2]]
    tail = seq[1:]
    assert isinstance(tail, nn.Sequential) and len(tail) == 2
    assert list(tail.state_dict()) == ["2.weight", "2.bias"]  # PyTorch keeps the names
    with pytest.raises(IndexError, match="index 3 is out of range.*length 3"):
        seq[3]
    x = Tensor(np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32))
    np.testing.assert_allclose(seq(x).data, seq[2](seq[1](seq[0](x))).data)
    named = nn.Sequential({"fc": nn.Linear(2, 2), "act": nn.Tanh()})
    assert list(named.state_dict()) == ["fc.weight", "fc.bias"]
    with pytest.raises(TypeError, match="not a Module"):
        nn.Sequential(nn.ReLU(), lambda x: x)


def test_module_list_append_and_slice_renumbers():
    ml = nn.ModuleList([nn.ReLU()]).append(nn.Linear(2, 2))
    assert len(ml) == 2 and list(ml[1:].state_dict()) == ["0.weight", "0.bias"]
    ml[0] = nn.Linear(2, 2)
    assert list(ml.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias"]


def test_repr_is_pytorch_like():
    assert repr(mlp()) == (
        "Sequential(\n"
        "  (0): Linear(in_features=4, out_features=8, bias=True)\n"
        "  (1): ReLU()\n"
        "  (2): Linear(in_features=8, out_features=3, bias=True)\n"
        ")")
    assert repr(Net()).startswith("Net(\n  (blocks): ModuleList(\n    (0): Block(\n"
                                  "      (fc): Linear(in_features=3, out_features=3, bias=True)")


# ---------------------------------------------------------------- state dicts

def test_state_dict_keys_are_pytorchs_and_values_are_copies():
    seq = mlp()
    sd = seq.state_dict()
    assert list(sd) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert sd["0.weight"].shape == (8, 4) and isinstance(sd["0.weight"], np.ndarray)
    before = seq[0].weight.data.copy()
    sd["0.weight"][:] = 0
    np.testing.assert_array_equal(seq[0].weight.data, before)
    assert list(Net().state_dict()) == ["embed", "counter", "blocks.0.scale",
                                        "blocks.0.fc.weight", "blocks.0.fc.bias",
                                        "blocks.1.scale", "blocks.1.fc.weight",
                                        "blocks.1.fc.bias", "head.weight"]


def test_load_state_dict_copies_in_place_and_keeps_dtype():
    src, dst = mlp(0), mlp(10)
    weight_array = dst[0].weight.data
    sd = {k: v.astype(np.float64) for k, v in src.state_dict().items()}
    assert dst.load_state_dict(sd) == ([], [])
    assert dst[0].weight.data is weight_array and weight_array.dtype == np.float32
    x = Tensor(np.ones((2, 4), dtype=np.float32))
    np.testing.assert_array_equal(dst(x).data, src(x).data)


def test_load_state_dict_strict_errors_list_keys_and_change_nothing():
    dst = mlp(10)
    before = dst.state_dict()
    sd = mlp(0).state_dict()
    del sd["2.bias"]
    sd["3.weight"] = np.zeros(1)
    with pytest.raises(ValueError, match=r"missing keys: 2\.bias(.|\n)*unexpected keys: 3\.weight"):
        dst.load_state_dict(sd)
    for k, v in dst.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
    result = dst.load_state_dict(sd, strict=False)
    assert result.missing_keys == ["2.bias"] and result.unexpected_keys == ["3.weight"]
    np.testing.assert_array_equal(dst[0].weight.data, sd["0.weight"])


def test_load_state_dict_shape_mismatch_names_the_key_and_both_shapes():
    sd = mlp().state_dict()
    sd["0.weight"] = np.zeros((4, 8))
    with pytest.raises(ValueError, match=r"0\.weight: shape \(4, 8\) in the state dict but "
                                         r"\(8, 4\) in the model"):
        mlp().load_state_dict(sd, strict=False)


# ---------------------------------------------------------------- layers

def test_linear_is_x_times_weight_transposed_plus_bias():
    lin = nn.Linear(3, 2, dtype=np.float64)
    w = np.array([[1.0, 2.0, 3.0], [-1.0, 0.0, 0.5]])
    lin.load_state_dict({"weight": w, "bias": np.array([0.5, -0.5])})
    x = np.array([[1.0, 1.0, 1.0], [2.0, 0.0, -2.0]])
    np.testing.assert_array_equal(lin(Tensor(x)).data, [[6.5, -1.0], [-3.5, -3.5]])
    nobias = nn.Linear(3, 2, bias=False)
    assert nobias.bias is None and list(nobias.state_dict()) == ["weight"]


def test_linear_init_is_uniform_within_one_over_sqrt_fan_in_and_reproducible():
    lin = nn.Linear(400, 300, rng=0)
    bound = 1 / np.sqrt(400)
    w = lin.weight.data
    assert w.shape == (300, 400) and w.dtype == np.float32
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    # The variance of U(-b, b) is b^2 / 3.
    np.testing.assert_allclose(w.var(), bound ** 2 / 3, rtol=0.02)
    assert np.abs(lin.bias.data).max() <= bound
    np.testing.assert_array_equal(nn.Linear(400, 300, rng=0).weight.data, w)
    assert w.flags.f_contiguous  # stored as weight.T row-major, the layout its gradient has
    with pytest.raises(ValueError, match="in_features must be a positive integer"):
        nn.Linear(0, 3)


@pytest.mark.parametrize("layer, shape, match", [
    (nn.Linear(4, 2), (3, 5), r"Linear\(in_features=4.*\(3, 5\).*\(\.\.\., 4\)"),
    (nn.BatchNorm1d(3), (4, 2), r"BatchNorm1d\(3.*\(4, 2\).*\(N, 3\)"),
    (nn.Flatten(2), (4,), r"Flatten.*\(4,\)"),
])
def test_wrong_input_shape_names_the_layer_and_both_shapes(layer, shape, match):
    with pytest.raises(ValueError, match=match):
        layer(Tensor(np.zeros(shape, dtype=np.float32)))


def test_activation_layers_and_flatten():
    x = np.array([[-1.0, 0.5], [2.0, -3.0]])
    t = Tensor(x)
    np.testing.assert_allclose(nn.ReLU()(t).data, np.maximum(x, 0))
    np.testing.assert_allclose(nn.LeakyReLU(0.2)(t).data, np.where(x > 0, x, 0.2 * x))
    np.testing.assert_allclose(nn.Sigmoid()(t).data, 1 / (1 + np.exp(-x)))
    np.testing.assert_allclose(nn.Tanh()(t).data, np.tanh(x))
    e = np.exp(x)
    np.testing.assert_allclose(nn.Softmax(axis=0)(t).data, e / e.sum(axis=0))
    np.testing.assert_allclose(nn.LogSoftmax()(t).data, np.log(e / e.sum(axis=1, keepdims=True)))
    assert nn.Identity()(t) is t
    assert nn.Flatten()(Tensor(np.zeros((2, 3, 4, 5)))).shape == (2, 60)
    assert nn.Flatten(0, 1)(Tensor(np.zeros((2, 3, 4)))).shape == (6, 4)


def test_dropout_layer_follows_train_and_eval():
    drop = nn.Dropout(0.5, rng=0)
    x = Tensor(np.ones((50, 50)))
    out = drop(x).data
    assert set(np.unique(out)) == {0.0, 2.0}
    assert drop.eval()(x) is x
    with pytest.raises(ValueError, match="p must be a probability"):
        nn.Dropout(-0.1)


def test_loss_modules_call_the_functions():
    x = Tensor(np.array([[1.0, 2.0], [0.5, -1.0]]))
    y = np.array([1, 0])
    assert nn.CrossEntropyLoss(label_smoothing=0.1)(x, y).item() == \
        F.cross_entropy(x, y, label_smoothing=0.1).item()
    assert nn.MSELoss(reduction="sum")(x, np.zeros((2, 2))).item() == 1 + 4 + 0.25 + 1
    assert nn.NLLLoss()(x, y).item() == -(2.0 + 0.5) / 2


# ---------------------------------------------------------------- BatchNorm1d

def test_batchnorm_training_normalises_and_updates_running_stats():
    rng = np.random.default_rng(0)
    x = rng.normal(loc=3.0, scale=2.0, size=(16, 4))
    bn = nn.BatchNorm1d(4, dtype=np.float64)
    y = bn(Tensor(x)).data
    mean, var = x.mean(axis=0), x.var(axis=0)
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + 1e-5), rtol=1e-12)
    np.testing.assert_allclose(bn.running_mean.data, 0.1 * mean, rtol=1e-12)
    np.testing.assert_allclose(bn.running_var.data, 0.9 + 0.1 * var * 16 / 15, rtol=1e-12)
    assert int(bn.num_batches_tracked.data) == 1
    assert list(bn.state_dict()) == ["weight", "bias", "running_mean", "running_var",
                                     "num_batches_tracked"]


def test_batchnorm_eval_uses_running_stats_and_affine_parameters():
    bn = nn.BatchNorm1d(2, dtype=np.float64)
    bn.load_state_dict({"weight": np.array([2.0, 1.0]), "bias": np.array([0.0, 1.0]),
                        "running_mean": np.array([1.0, -1.0]), "running_var": np.array([4.0, 1.0]),
                        "num_batches_tracked": np.array(7)})
    x = np.array([[1.0, 0.0], [5.0, -1.0]])
    y = bn.eval()(Tensor(x)).data
    expected = (x - [1.0, -1.0]) / np.sqrt(np.array([4.0, 1.0]) + 1e-5) * [2.0, 1.0] + [0.0, 1.0]
    np.testing.assert_allclose(y, expected, rtol=1e-12)
    assert int(bn.num_batches_tracked.data) == 7


def test_batchnorm_3d_input_cumulative_momentum_and_batch_of_one():
    rng = np.random.default_rng(1)
    bn = nn.BatchNorm1d(3, momentum=None, dtype=np.float64)
    xs = [rng.normal(size=(4, 3, 5)) for _ in range(3)]
    for x in xs:
        bn(Tensor(x))
    # momentum=None: the running mean is the plain average of the batch means.
    np.testing.assert_allclose(bn.running_mean.data,
                               np.mean([x.mean(axis=(0, 2)) for x in xs], axis=0), rtol=1e-12)
    with pytest.raises(ValueError, match="more than one value per channel"):
        nn.BatchNorm1d(3)(Tensor(np.zeros((1, 3), dtype=np.float32)))
    no_stats = nn.BatchNorm1d(3, track_running_stats=False, affine=False)
    assert list(no_stats.state_dict()) == []
    out = no_stats.eval()(Tensor(xs[0].astype(np.float32))).data
    np.testing.assert_allclose(out.mean(axis=(0, 2)), 0, atol=1e-5)


def test_batchnorm_gradients_by_gradcheck():
    rng = np.random.default_rng(2)
    bn = nn.BatchNorm1d(3, dtype=np.float64)
    bn.weight.data[:] = [1.5, -0.5, 2.0]
    gradcheck(lambda x, w, b: bn(x), [Tensor(rng.normal(size=(5, 3)), requires_grad=True),
                                      bn.weight, bn.bias])


# ---------------------------------------------------------------- module tracing

def test_call_pushes_modules_only_while_tracing():
    seen = []

    class Probe(nn.Module):
        def forward(self, x):
            stack = autograd.module_stack()
            seen.append(None if stack is None else list(stack))
            return x * 2

    outer = nn.Sequential(Probe())
    outer(Tensor([1.0]))
    assert seen == [None]
    x = Tensor([1.0], requires_grad=True)
    with autograd.trace_modules():
        y = outer(x)
        assert autograd.module_stack() == []
    assert [type(m) for m in seen[1]] == [nn.Sequential, Probe]
    assert y.grad_fn.scope == (outer, outer[0])


def test_tracing_stack_is_popped_when_forward_raises():
    with autograd.trace_modules():
        with pytest.raises(ValueError):
            nn.Sequential(nn.Linear(2, 2))(Tensor(np.zeros((1, 3), dtype=np.float32)))
        assert autograd.module_stack() == []


# ---------------------------------------------------------------- properties

@settings(max_examples=25, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4), st.integers(0, 2**31))
def test_property_mlp_gradients(n, d_in, d_out, seed):
    rng = np.random.default_rng(seed)
    model = nn.Sequential(nn.Linear(d_in, 3, dtype=np.float64, rng=rng), nn.Tanh(),
                          nn.Linear(3, d_out, dtype=np.float64, rng=rng), nn.Sigmoid())
    x = Tensor(rng.normal(size=(n, d_in)), requires_grad=True)
    gradcheck(lambda x_, *params: model(x_), [x, *model.parameters()])


# ---------------------------------------------------------------- optional: against PyTorch

def test_state_dicts_exchange_with_pytorch():
    torch = pytest.importorskip("torch")
    ours = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.BatchNorm1d(8), nn.Linear(8, 3))
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.BatchNorm1d(8),
                                 torch.nn.Linear(8, 3)).double()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    theirs.load_state_dict({k: torch.tensor(v).double() if v.dtype.kind == "f" else
                            torch.tensor(v) for k, v in ours.state_dict().items()})
    x = np.random.default_rng(0).normal(size=(6, 4))
    for mode in ("train", "eval"):
        getattr(ours, mode)(), getattr(theirs, mode)()
        for _ in range(2):
            a = ours(Tensor(x.astype(np.float32))).data
            b = theirs(torch.tensor(x)).detach().numpy()
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    for k, v in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[k], v.numpy(), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- the documented example

def test_build_a_model_from_ops_example_trains_and_is_the_code_in_the_docs():
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    source = (root / "examples" / "custom_model.py").read_text()
    assert source[source.index("import numpy as np"):] in (root / "docs" / "nn.md").read_text()
    spec = importlib.util.spec_from_file_location("custom_model", root / "examples" /
                                                  "custom_model.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    # Three interleaved spirals are far from linearly separable: chance is 1/3.
    assert example.main() > 0.97
