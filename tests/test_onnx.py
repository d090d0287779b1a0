"""ONNX export: each exported model runs in onnxruntime and agrees with the project's forward."""
import importlib.util
import inspect
import warnings
from pathlib import Path

import numpy as np
import pytest

import tinygrad_mlp as tg
from tinygrad_mlp import nn, ops
from tinygrad_mlp.autograd import Function

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from tinygrad_mlp.onnx import ExportError, TRANSLATIONS, export  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ATOL = 1e-5


def load_example(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", ROOT / "examples" / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_onnx(model_proto, *arrays):
    session = ort.InferenceSession(model_proto.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    feeds = {i.name: a for i, a in zip(session.get_inputs(), arrays)}
    return session.run(None, feeds)


def forward(model, *arrays):
    with tg.no_grad():
        out = model(*[tg.Tensor(a) for a in arrays])
    return out.numpy()


def fashion_model(batch_norm=False, dropout=0.2):
    example = load_example("fashion_mlp.py")
    config = dict(example.DEFAULTS, hidden="64,32", batch_norm=batch_norm, dropout=dropout,
                  input_dropout=0.1)
    model = example.build_model(config, np.random.default_rng(0))
    return model


def test_fashion_mlp_dynamic_batch(tmp_path):
    model = fashion_model()
    model.train()
    rng = np.random.default_rng(1)
    path = tmp_path / "mlp.onnx"
    proto = export(model, tg.Tensor(rng.standard_normal((5, 784)).astype(np.float32)), path,
                   input_names=["image"], output_names=["logits"], dynamic_batch=True)
    assert model.training and all(m.training for m in model.modules()), \
        "export must restore the training mode it found"
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    assert {i.name for i in proto.graph.initializer} >= set(model.state_dict())
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert [n.op_type for n in proto.graph.node].count("Relu") == 2  # x * (x > 0) fused
    model.eval()
    for n in (1, 7, 1000):
        x = rng.standard_normal((n, 784)).astype(np.float32)
        got, = run_onnx(proto, x)
        assert got.shape == (n, 10) and got.dtype == np.float32
        np.testing.assert_allclose(got, forward(model, x), atol=ATOL, rtol=0)


def test_static_batch_refuses_other_sizes():
    model = fashion_model()
    proto = export(model, np.zeros((3, 784), np.float32))
    assert [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim] == [3, 784]
    with pytest.raises(Exception):
        run_onnx(proto, np.zeros((4, 784), np.float32))


def test_residual_custom_model():
    example = load_example("custom_model.py")
    model = example.ResidualMLP(2, 32, 3, np.random.default_rng(0))
    rng = np.random.default_rng(2)
    proto = export(model, rng.standard_normal((4, 2)).astype(np.float32), dynamic_batch=True)
    for n in (1, 50):
        x = rng.standard_normal((n, 2)).astype(np.float32) * 3
        x[0] = 0.0  # the stable sigmoid switches branch at 0
        got, = run_onnx(proto, x)
        np.testing.assert_allclose(got, forward(model, x), atol=ATOL, rtol=0)
    assert {i.name for i in proto.graph.initializer} >= {"w1", "b1", "w2", "b2", "w_out", "b_out"}


def test_batchnorm_eval_with_softmax_output():
    model = nn.Sequential(nn.Linear(6, 8, rng=0), nn.BatchNorm1d(8), nn.LeakyReLU(0.1),
                          nn.Linear(8, 4, rng=1), nn.Softmax())
    rng = np.random.default_rng(3)
    model.train()
    model(tg.Tensor(rng.standard_normal((32, 6)).astype(np.float32) * 2 + 1))  # running stats
    model.eval()
    proto = export(model, rng.standard_normal((2, 6)).astype(np.float32), dynamic_batch=True,
                   output_names=["probs"])
    assert "LeakyRelu" in [n.op_type for n in proto.graph.node]
    names = {i.name for i in proto.graph.initializer}
    assert {"1.weight", "1.bias", "0.weight", "3.bias"} <= names
    for n in (1, 9):
        x = rng.standard_normal((n, 6)).astype(np.float32)
        got, = run_onnx(proto, x)
        np.testing.assert_allclose(got, forward(model, x), atol=ATOL, rtol=0)


def test_many_ops_in_one_function():
    w = nn.Parameter(np.random.default_rng(4).standard_normal((3, 5)).astype(np.float32))

    def fn(x, y):
        a = x[:, 1:4] @ w - x[:, ::-1][:, :5] / 3
        b = tg.concatenate([a, y.T.reshape(-1, 5)[:2]], axis=0)
        c = tg.where(b > 0, b, b * b) ** 2 + tg.maximum(b, 0.5) - tg.minimum(b, -0.5)
        d = (c.max(axis=1, keepdims=True) * 0.01).exp() * c.log_softmax(axis=0)
        e = (d.sum(axis=0) + c.mean()).astype(np.float64).abs().sqrt()
        f = d[:, [0, 2, 2]].tanh().sigmoid() + x[0, 2] + d.logsumexp(axis=1)[:, None]
        return e[None, ..., 1:], f

    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 6)).astype(np.float32)
    y = rng.standard_normal((5, 2)).astype(np.float32)
    proto = export(fn, (x, y), input_names=["x", "y"], output_names=["e", "f"])
    assert "param_0" in {i.name for i in proto.graph.initializer}
    got = run_onnx(proto, x, y)
    with tg.no_grad():
        want = [t.numpy() for t in fn(tg.Tensor(x), tg.Tensor(y))]
    assert got[0].dtype == np.float64
    for g, w_ in zip(got, want):
        np.testing.assert_allclose(g, w_, atol=ATOL, rtol=1e-6)


def _unary_ops():
    names = []
    for name in ops.__all__:
        cls = getattr(ops, name)
        params = list(inspect.signature(cls.forward).parameters)
        if name in TRANSLATIONS and params == ["self", "a"]:
            names.append(name)
    return names


@pytest.mark.parametrize("name", _unary_ops())
def test_every_unary_primitive(name):
    # Whichever one-input primitives exist (Neg, Exp, Log, and any added later) export faithfully.
    cls = getattr(ops, name)
    x = np.random.default_rng(6).uniform(0.2, 0.9, (3, 4)).astype(np.float32)
    proto = export(lambda t: cls.apply(t), x, dynamic_batch=True)
    got, = run_onnx(proto, x)
    with tg.no_grad():
        want = cls.apply(tg.Tensor(x)).numpy()
    np.testing.assert_allclose(got, want, atol=ATOL, rtol=1e-6)


def test_every_primitive_has_a_translation():
    backward_only = {"ScatterAdd"}  # appears only in gradients, never in a forward to export
    missing = [n for n in ops.__all__ if n not in TRANSLATIONS and n not in backward_only and
               isinstance(getattr(ops, n), type) and issubclass(getattr(ops, n), Function)]
    assert not missing, f"add ONNX translations to tinygrad_mlp/onnx/translate.py for {missing}"


class _Clamp(Function):
    """Stands in for ops.Clamp where the library has none (the translation is keyed by name)."""

    __slots__ = ("low", "high")

    def forward(self, a, low=None, high=None):
        self.low, self.high = low, high
        return np.clip(a, low, high)

    def backward(self, g):  # pragma: no cover - not needed for export
        raise NotImplementedError


_Clamp.__name__ = "Clamp"


@pytest.mark.parametrize("low, high", [(-0.5, 0.5), (None, 0.2), (0.1, None)])
def test_clamp(low, high):
    clamp = getattr(ops, "Clamp", _Clamp)
    x = np.random.default_rng(7).standard_normal((3, 5)).astype(np.float32)
    proto = export(lambda t: clamp.apply(t * 2, low=low, high=high), x, dynamic_batch=True)
    got, = run_onnx(proto, x[:2])
    np.testing.assert_array_equal(got, np.clip(x[:2] * 2, low, high))


class Cube(Function):
    __slots__ = ()

    def forward(self, a):
        return a ** 3

    def backward(self, g):
        return (3 * g * self.inputs[0] ** 2,)


class CubeLayer(nn.Module):
    def forward(self, x):
        return Cube.apply(x)


def test_untranslated_op_names_the_op_and_module(tmp_path):
    model = nn.Sequential(nn.Linear(3, 3, rng=0), CubeLayer())
    path = tmp_path / "m.onnx"
    with pytest.raises(ExportError, match=r"Cube.*'1' \(CubeLayer\)"):
        export(model, np.ones((2, 3), np.float32), path)
    assert not path.exists()


def test_function_using_a_global_module_gets_its_names_and_eval_mode():
    model = nn.Sequential(nn.Linear(3, 4, rng=0), nn.Dropout(0.5), nn.Linear(4, 2, rng=1))
    globals().update(_global_model=model, _a_module_class=nn.Linear)  # a class is no Module
    try:
        proto = export(lambda x: _global_model(x).softmax(axis=-1) *  # noqa: F821
                       len(_a_module_class.__name__),  # noqa: F821
                       np.ones((2, 3), np.float32))
    finally:
        del globals()["_global_model"], globals()["_a_module_class"]
    assert model.training  # switched to eval for the export only
    assert {"0.weight", "2.bias"} <= {i.name for i in proto.graph.initializer}


def test_value_computed_outside_the_graph_is_refused():
    def fn(x):
        return x * tg.Tensor(np.argsort(x.data, axis=1).astype(np.float32))

    with pytest.raises(ExportError, match="computed outside the recorded graph"):
        export(fn, np.random.default_rng(0).standard_normal((2, 5)).astype(np.float32))


def test_training_mode_dropout_in_a_function_is_refused():
    drop = nn.Dropout(0.5)

    class Holder:
        pass

    holder = Holder()
    holder.drop = drop  # not found by export, so not switched to eval
    with pytest.raises(ExportError, match="training mode"):
        export(lambda x: holder.drop(x), np.ones((4, 8), np.float32))


def test_data_dependent_branch_is_refused():
    # A branch the second trace takes differently (here: on the batch size) is caught.
    def fn(x):
        return x.exp() if x.shape[0] <= 4 else x * 2

    with pytest.raises(ExportError, match="branches on the data"):
        export(fn, np.ones((4, 3), np.float32), dynamic_batch=True)


def test_second_trace_stays_in_the_examples_range():
    # log of pixels: the second input must not wander below 0 (NaN) or warn
    x = np.random.default_rng(8).uniform(0, 1, (3, 4)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        proto = export(lambda t: (t + 0.01).log().softmax(axis=-1), x, dynamic_batch=True)
    with tg.no_grad():
        want = (tg.Tensor(x) + 0.01).log().softmax(axis=-1).numpy()
    np.testing.assert_allclose(run_onnx(proto, x)[0], want, atol=ATOL)


def test_batch_dependent_constant_is_refused():
    # mean over the batch axis scales by 1/N: not expressible with a dynamic batch
    with pytest.raises(ExportError):
        export(lambda x: x.mean(axis=0), np.ones((4, 3), np.float32), dynamic_batch=True)
    proto = export(lambda x: x.mean(axis=0), np.ones((4, 3), np.float32))  # static: fine
    np.testing.assert_allclose(run_onnx(proto, np.full((4, 3), 2, np.float32))[0], [2, 2, 2])


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(opset=7), ValueError, "opset"),
    (dict(dynamic_axes={"nope": {0: "b"}}), ValueError, "nope"),
    (dict(dynamic_axes={"input": {5: "b"}}), ValueError, "out of range"),
    (dict(dynamic_axes={"input": {0: "b"}}, dynamic_batch=True), ValueError, "not both"),
    (dict(input_names=["a", "b"]), ValueError, "input_names"),
])
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        export(nn.Linear(3, 2, rng=0), np.ones((2, 3), np.float32), **kwargs)


def test_bad_inputs_and_paths(tmp_path):
    with pytest.raises(TypeError, match="dtype int64"):
        export(nn.Linear(3, 2, rng=0), np.ones((2, 3), np.int64))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        export(nn.Linear(3, 2, rng=0), np.ones((2, 3), np.float32), tmp_path / "no" / "m.onnx")


def test_relu_mask_that_is_all_true_in_both_traces_is_still_computed():
    # The ReLU's input is positive for both traced inputs, so its mask x > 0 is all True both
    # times; it must still be computed from the input, not folded as a constant.
    w = nn.Parameter(np.ones((3, 3), np.float32))
    proto = export(lambda x: (x * x + 0.5).relu() @ w, np.ones((2, 3), np.float32))
    assert "Relu" in [n.op_type for n in proto.graph.node]
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    np.testing.assert_allclose(run_onnx(proto, x)[0], ((x * x + 0.5) @ np.ones((3, 3))),
                               rtol=1e-6)


@pytest.mark.skipif(not (hasattr(nn, "LayerNorm") and hasattr(nn, "GELU")),
                    reason="nn.LayerNorm and nn.GELU are not in this version of the library")
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_layernorm_and_gelu(approximate):
    model = nn.Sequential(nn.Linear(6, 16, rng=0), nn.LayerNorm(16), nn.GELU(approximate),
                          nn.Linear(16, 3, rng=1))
    rng = np.random.default_rng(9)
    proto = export(model, rng.standard_normal((4, 6)).astype(np.float32), dynamic_batch=True)
    for n in (1, 7):
        x = rng.standard_normal((n, 6)).astype(np.float32) * 2
        got, = run_onnx(proto, x)
        np.testing.assert_allclose(got, forward(model, x), atol=ATOL, rtol=0)


@pytest.mark.parametrize("opset", [13, 17, 18, 21])
def test_opsets(opset):
    # Reductions take their axes as an attribute before opset 18 (ReduceMax) or 13 (ReduceSum),
    # as an input after.
    model = nn.Sequential(nn.Linear(5, 6, rng=0), nn.ReLU(), nn.LogSoftmax())
    x = np.random.default_rng(10).standard_normal((3, 5)).astype(np.float32)
    proto = export(model, x, dynamic_batch=True, opset=opset)
    assert proto.opset_import[0].version == opset
    np.testing.assert_allclose(run_onnx(proto, x[:2])[0], forward(model, x[:2]), atol=ATOL)
