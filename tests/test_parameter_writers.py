"""Everything that writes a parameter's memory outside an optimiser step (initialisation, loading
a state dict, copying a flat vector or an average into the model) is an in-place change: a graph
recorded before it must refuse to backpropagate, not use the new values silently."""
import numpy as np
import pytest

import tinygrad_mlp as tg
from tinygrad_mlp import nn
from tinygrad_mlp.nn.utils import parameters_to_vector, vector_to_parameters
from tinygrad_mlp.optim import EMA

MODIFIED = "modified by an in-place operation"


def _model_and_loss():
    tg.manual_seed(0)
    model = nn.Linear(3, 2)
    x = tg.Tensor(np.arange(12, dtype=np.float32).reshape(4, 3))
    return model, (model(x) ** 2).sum()


@pytest.mark.parametrize("fill", [
    lambda w: nn.init.normal_(w),
    lambda w: nn.init.constant_(w, 0.5),
    lambda w: nn.init.zeros_(w),
    lambda w: nn.init.kaiming_uniform_(w),
    lambda w: nn.init.eye_(w),
], ids=["normal_", "constant_", "zeros_", "kaiming_uniform_", "eye_"])
def test_init_after_forward_refuses_backward(fill):
    model, loss = _model_and_loss()
    with tg.no_grad():
        fill(model.weight)
    with pytest.raises(RuntimeError, match=MODIFIED):
        loss.backward()


def test_load_state_dict_after_forward_refuses_backward():
    model, loss = _model_and_loss()
    state = {k: np.asarray(v) + 1 for k, v in model.state_dict().items()}
    model.load_state_dict(state)
    with pytest.raises(RuntimeError, match=MODIFIED):
        loss.backward()


def test_vector_to_parameters_after_forward_refuses_backward():
    model, loss = _model_and_loss()
    with tg.no_grad():
        vec = parameters_to_vector(model.parameters()) * 2
    vector_to_parameters(vec, model.parameters())
    with pytest.raises(RuntimeError, match=MODIFIED):
        loss.backward()


def test_ema_copy_to_after_forward_refuses_backward():
    model, loss = _model_and_loss()
    ema = EMA(model, decay=0.5)
    ema.update()
    ema.average[0] += 1.0  # an average that differs from the weights
    ema.copy_to()
    with pytest.raises(RuntimeError, match=MODIFIED):
        loss.backward()


def test_ema_average_parameters_inside_block_refuses_backward():
    model, loss = _model_and_loss()
    ema = EMA(model, decay=0.5)
    ema.update()
    ema.average[0] += 1.0
    with ema.average_parameters():
        with pytest.raises(RuntimeError, match=MODIFIED):
            loss.backward()


def test_writers_still_work_on_a_fresh_graph():
    # The bump must not break the ordinary order: write first, then forward and backward.
    model, _ = _model_and_loss()
    with tg.no_grad():
        nn.init.normal_(model.weight)
    model.load_state_dict({k: np.asarray(v) for k, v in model.state_dict().items()})
    x = tg.Tensor(np.ones((2, 3), np.float32))
    model(x).sum().backward()
    np.testing.assert_allclose(model.bias.grad.data, [2.0, 2.0])


def test_optimizer_zero_grad_keeps_a_gradient_graph_intact():
    # With create_graph the gradient is part of a graph that a penalty may still read; zeroing it
    # "in place" must not change what that penalty's backward uses.
    w = tg.Tensor(np.array([1.0, 2.0], np.float32), requires_grad=True)
    opt = tg.optim.SGD([w], lr=0.1)
    (w ** 3).sum().backward(create_graph=True)  # w.grad = 3 w**2, recorded
    penalty = (w.grad * w.grad).sum()           # d/dw = 2 * 3w^2 * 6w = 36 w**3
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(w.grad.data, [0.0, 0.0])
    (g,) = tg.grad(penalty, [w])
    np.testing.assert_allclose(g.data, 36 * np.array([1.0, 8.0]), rtol=1e-6)
