"""Errors name the problem: the op, the shapes, the axis. Each one is raised by the package itself
(its last traceback frame is in tinygrad_mlp, with no numpy exception chained to it), so the user
reads our message, not a numpy traceback from deep inside the engine."""
from pathlib import Path

import numpy as np
import pytest

import tinygrad_mlp as tg
from tinygrad_mlp import Tensor

PACKAGE = Path(tg.__file__).resolve().parent


def expect(exc_type, fn, *fragments):
    with pytest.raises(exc_type) as info:
        fn()
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    origin = Path(info.traceback[-1].path).resolve()
    assert PACKAGE in origin.parents, f"raised from {origin}"
    err = info.value
    assert err.__cause__ is None and (err.__context__ is None or err.__suppress_context__), \
        f"a chained exception is shown with it: {err.__context__!r}"
    return message


def t(*shape, requires_grad=False):
    return Tensor(np.ones(shape), requires_grad=requires_grad)


# ------------------------------------------------------------------------------ shapes

def test_matmul_names_both_shapes_and_the_inner_dimensions():
    msg = expect(ValueError, lambda: t(64, 784) @ t(512, 784))
    assert msg == "matmul: (64, 784) @ (512, 784): inner dimensions 784 and 512 differ"
    expect(ValueError, lambda: t(3) @ t(4), "matmul", "(3,) @ (4,)", "3 and 4")
    expect(ValueError, lambda: np.ones((2, 5)) @ t(4, 3), "matmul", "(2, 5) @ (4, 3)")
    expect(ValueError, lambda: t(2, 3, 4) @ t(5, 4, 2), "matmul", "(2, 3, 4) @ (5, 4, 2)",
           "batch dimensions")
    expect(ValueError, lambda: t() @ t(3), "matmul", "() @ (3,)")


@pytest.mark.parametrize("name,fn", [
    ("add", lambda a, b: a + b), ("sub", lambda a, b: a - b), ("mul", lambda a, b: a * b),
    ("div", lambda a, b: a / b), ("pow", lambda a, b: a ** b),
    ("maximum", tg.maximum), ("minimum", tg.minimum)])
def test_broadcast_errors_name_the_op_and_both_shapes(name, fn):
    expect(ValueError, lambda: fn(t(2, 3), t(4)), f"{name}:", "(2, 3)", "(4,)")
    # an ndarray on either side, and the reflected operators
    expect(ValueError, lambda: fn(t(2, 3), np.ones(4)), f"{name}:", "(2, 3)", "(4,)")
    expect(ValueError, lambda: fn(np.ones(4), t(2, 3)), f"{name}:", "(4,)", "(2, 3)")


def test_where_and_comparisons_name_the_shapes():
    expect(ValueError, lambda: tg.where(np.ones(5, bool), t(2, 3), t(3)), "where", "(5,)",
           "(2, 3)")
    expect(ValueError, lambda: t(2, 3) < t(4), "(2, 3)", "(4,)")
    expect(ValueError, lambda: t(2, 3) == np.ones(4), "(2, 3)", "(4,)")


def test_reshape_broadcast_transpose_name_the_shapes():
    expect(ValueError, lambda: t(2, 3).reshape(4, 2), "reshape", "(2, 3)", "(4, 2)")
    expect(ValueError, lambda: t(2, 3).reshape(-1, -1), "reshape", "(2, 3)")
    expect(ValueError, lambda: t(2, 3).broadcast_to(3, 3), "broadcast_to", "(2, 3)", "(3, 3)")
    expect(ValueError, lambda: t(2, 3).transpose((0, 0)), "transpose", "(0, 0)", "(2, 3)")
    expect(ValueError, lambda: t(2, 3).transpose(0, 1, 2), "transpose", "(2, 3)")


def test_indexing_errors_name_the_index_and_the_shape():
    expect(IndexError, lambda: t(2, 3)[5], "getitem", "5", "(2, 3)")
    expect(IndexError, lambda: t(2, 3)[0, 0, 0], "getitem", "(2, 3)")
    expect(IndexError, lambda: t(2, 3)[np.array([0.5])], "getitem", "(2, 3)")
    expect(IndexError, lambda: t(2, 3)[np.ones(4, bool)], "getitem", "(2, 3)")
    expect(IndexError, lambda: t(2, 3).__setitem__(5, 1.0), "setitem", "(2, 3)")


def test_concatenate_and_stack_name_the_shapes():
    expect(ValueError, lambda: tg.concatenate([t(2, 3), t(3, 3)], axis=1), "concatenate",
           "(2, 3)", "(3, 3)")
    expect(ValueError, lambda: tg.concatenate([]), "concatenate")
    expect(ValueError, lambda: tg.stack([t(2, 3), t(3, 2)]), "stack", "(2, 3)", "(3, 2)")


# ------------------------------------------------------------------------------ axes

@pytest.mark.parametrize("name,call", [
    ("sum", lambda x: x.sum(axis=2)), ("mean", lambda x: x.mean(axis=-3)),
    ("var", lambda x: x.var(axis=2)), ("max", lambda x: x.max(axis=2)),
    ("min", lambda x: x.min(axis=2)), ("logsumexp", lambda x: x.logsumexp(axis=2)),
    ("softmax", lambda x: x.softmax(axis=2)), ("log_softmax", lambda x: x.log_softmax(axis=2)),
    ("argmax", lambda x: x.argmax(axis=2)), ("argmin", lambda x: x.argmin(axis=2)),
    ("flatten", lambda x: x.flatten(2)), ("swapaxes", lambda x: x.swapaxes(0, 2)),
    ("expand_dims", lambda x: x.expand_dims(4)), ("squeeze", lambda x: x.squeeze(2)),
    ("sum", lambda x: x.sum(axis=(0, 2))),
    ("concatenate", lambda x: tg.concatenate([x, x], axis=2)),
    ("stack", lambda x: tg.stack([x, x], axis=4)),
])
def test_a_bad_axis_names_the_axis_and_the_shape(name, call):
    msg = expect(ValueError, lambda: call(t(2, 3)), f"{name}:", "(2, 3)")
    assert "axis" in msg


def test_repeated_and_non_integer_axes():
    expect(ValueError, lambda: t(2, 3).sum(axis=(0, -2)), "sum", "repeated axis")
    expect(TypeError, lambda: t(2, 3).sum(axis=1.5), "sum", "axis", "1.5")
    expect(ValueError, lambda: t(2, 3).squeeze(1), "squeeze", "axis 1", "(2, 3)")


def test_reductions_of_empty_tensors():
    expect(ValueError, lambda: t(0, 3).max(), "max", "(0, 3)")
    expect(ValueError, lambda: t(0, 3).max(axis=0), "max", "(0, 3)", "axis=0")
    expect(ValueError, lambda: t(0, 3).min(axis=(1, 0)), "min", "(0, 3)")
    # logsumexp has an identity (-inf, the log of an empty sum), so it is no error, as in PyTorch
    assert t(0, 3).logsumexp().item() == -np.inf


# ------------------------------------------------------------------------------ construction

def test_construction_errors():
    expect(TypeError, lambda: Tensor(np.arange(3), requires_grad=True), "int64", "floating")
    expect(TypeError, lambda: Tensor("text"), "Tensor")
    expect(TypeError, lambda: Tensor({1: 2}), "dict")
    expect(TypeError, lambda: t(2) + "a", "unsupported operand")
    expect(ValueError, lambda: t(2).item(), "(2,)")
    expect(ValueError, lambda: tg.zeros(2, -1), "shape")
    expect(ValueError, lambda: bool(t(2)), "(2,)")


# ------------------------------------------------------------------------------ the engine

def test_backward_on_a_tensor_that_does_not_require_grad_says_so():
    expect(RuntimeError, lambda: t(1).sum().backward(), "does not require grad")
    x = t(1, requires_grad=True)
    with tg.no_grad():
        y = (x * 2).sum()
    expect(RuntimeError, lambda: y.backward(), "does not require grad", "no_grad")


def test_backward_of_a_non_scalar_root_needs_a_gradient():
    x = t(2, 3, requires_grad=True)
    expect(RuntimeError, lambda: (x * 2).backward(), "(2, 3)", "gradient")


def test_a_gradient_of_the_wrong_shape_names_both_shapes():
    x = t(2, 3, requires_grad=True)
    expect(ValueError, lambda: (x * 2).backward(np.ones(3)), "(3,)", "(2, 3)")


def test_a_released_graph_says_how_to_keep_it():
    x = t(2, requires_grad=True)
    y = (x.exp() * 2).sum()
    y.backward()
    expect(RuntimeError, y.backward, "released", "retain_graph=True")
    # a new root over released intermediate tensors is caught too
    h = x.exp()
    h.sum().backward()
    expect(RuntimeError, lambda: (h * 2).sum().backward(), "released")


def test_grad_argument_errors():
    x = t(2, requires_grad=True)
    expect(RuntimeError, lambda: tg.grad((x * 2).sum(), [t(2)]), "input 0", "does not require grad")
    expect(RuntimeError, lambda: tg.grad((x * 2).sum(), [x, t(3, requires_grad=True)]),
           "input 1", "(3,)", "allow_unused")
    expect(ValueError, lambda: tg.grad([(x * 2).sum()], [x], grad_outputs=[None, None]),
           "1 outputs", "2 grad_outputs")
