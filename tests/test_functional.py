"""Tests for floor 3 (functional): losses, penalties, dropout and one-hot, composed from Tensor ops.

Expected values are closed forms computed here with numpy in float64 (softmax, log-sum-exp,
the stable logistic loss), never with the functions under test.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_mlp as tg
from tinygrad_mlp import Tensor, gradcheck
from tinygrad_mlp import functional as F
from tinygrad_mlp.nn import functional as nnF

PROPERTY = settings(max_examples=30, deadline=None)


def np_log_softmax(x):
    m = x.max(axis=1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=1, keepdims=True))


def np_softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def problem(n=6, c=4, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, c)).astype(dtype), rng.integers(0, c, size=n)


# ---------------------------------------------------------------- the composition story

def test_cross_entropy_gradient_is_softmax_minus_onehot_over_n():
    x, y = problem(n=5, c=3)
    logits = Tensor(x, requires_grad=True)
    F.cross_entropy(logits, y).backward()
    expected = (np_softmax(x) - np.eye(3)[y]) / 5
    np.testing.assert_allclose(logits.grad.data, expected, rtol=1e-12, atol=1e-15)


def test_cross_entropy_values_for_each_reduction():
    x, y = problem()
    per_sample = -np_log_softmax(x)[np.arange(len(y)), y]
    np.testing.assert_allclose(F.cross_entropy(Tensor(x), y).item(), per_sample.mean())
    np.testing.assert_allclose(F.cross_entropy(Tensor(x), y, reduction="sum").item(),
                               per_sample.sum())
    np.testing.assert_allclose(F.cross_entropy(Tensor(x), y, reduction="none").data, per_sample)


def test_label_smoothing_matches_the_closed_form():
    x, y = problem(c=5)
    eps = 0.2
    logp = np_log_softmax(x)
    # (1 - eps) * NLL of the label + eps * the mean over classes of -log p (PyTorch's definition)
    expected = ((1 - eps) * -logp[np.arange(len(y)), y] + eps * -logp.mean(axis=1)).mean()
    got = F.cross_entropy(Tensor(x), y, label_smoothing=eps).item()
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_probability_targets_match_integer_targets_and_smooth_the_same_way():
    x, y = problem(c=4)
    onehot = np.eye(4)[y]
    for eps in (0.0, 0.3):
        a = F.cross_entropy(Tensor(x), y, label_smoothing=eps).item()
        b = F.cross_entropy(Tensor(x), Tensor(onehot), label_smoothing=eps).item()
        np.testing.assert_allclose(a, b, rtol=1e-12)
    soft = np.random.default_rng(1).dirichlet(np.ones(4), size=len(y))
    np.testing.assert_allclose(F.cross_entropy(Tensor(x), soft).item(),
                               -(soft * np_log_softmax(x)).sum(axis=1).mean(), rtol=1e-12)


def test_cross_entropy_is_finite_for_huge_logits_and_keeps_float32():
    x = np.array([[1000.0, -1000.0, 0.0], [-1e4, 1e4, 5.0]], dtype=np.float32)
    logits = Tensor(x, requires_grad=True)
    loss = F.cross_entropy(logits, np.array([1, 1]))
    loss.backward()
    assert loss.dtype == np.float32 and logits.grad.dtype == np.float32
    np.testing.assert_allclose(loss.item(), 2000.0 / 2, rtol=1e-6)
    assert np.isfinite(logits.grad.data).all()


def test_nll_loss_picks_minus_the_labelled_log_probability():
    x, y = problem()
    logp = np_log_softmax(x)
    got = F.nll_loss(Tensor(logp), y, reduction="none").data
    np.testing.assert_allclose(got, -logp[np.arange(len(y)), y])
    with pytest.raises(TypeError, match="integers"):
        F.nll_loss(Tensor(logp), np.eye(4)[y])


@pytest.mark.parametrize("call, match", [
    (lambda x, y: F.cross_entropy(x, np.array([0, 1, 4, 0, 1, 2])), r"label 4 .*\[0, 4\)"),
    (lambda x, y: F.cross_entropy(x, np.array([0, -1, 2, 0, 1, 2])), r"label -1"),
    (lambda x, y: F.cross_entropy(x, y[:3]), r"shape \(6,\).*got shape \(3,\)"),
    (lambda x, y: F.cross_entropy(x, np.zeros((6, 5))), r"probabilities of shape \(6, 4\)"),
    (lambda x, y: F.cross_entropy(x, Tensor([0, 1, 2, 0, 1, 2])), r"integer array"),
    (lambda x, y: F.cross_entropy(x[0], y[:1]), r"\(N, C\).*\(4,\)"),
    (lambda x, y: F.cross_entropy(x, y, reduction="avg"), r"reduction"),
    (lambda x, y: F.cross_entropy(x, y, label_smoothing=1.5), r"label_smoothing"),
    (lambda x, y: F.cross_entropy(x, y.astype(bool)), r"integer class indices"),
])
def test_cross_entropy_rejects_bad_input_with_a_clear_message(call, match):
    x, y = problem()
    with pytest.raises((ValueError, TypeError), match=match):
        call(Tensor(x), y)


def test_mse_loss_value_gradient_and_shape_check():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    x = Tensor(a, requires_grad=True)
    loss = F.mse_loss(x, b)
    loss.backward()
    np.testing.assert_allclose(loss.item(), ((a - b) ** 2).mean())
    np.testing.assert_allclose(x.grad.data, 2 * (a - b) / a.size)
    assert F.mse_loss(Tensor(a.astype(np.float32)), b).dtype == np.float32
    with pytest.raises(ValueError, match=r"\(4, 1\).*\(4,\)"):
        F.mse_loss(Tensor(np.zeros((4, 1))), np.zeros(4))


def test_bce_with_logits_matches_the_naive_formula_and_stays_finite():
    x = np.array([-3.0, -0.5, 0.0, 0.7, 4.0])
    y = np.array([0.0, 1.0, 1.0, 0.0, 0.3])
    s = 1 / (1 + np.exp(-x))
    naive = -(y * np.log(s) + (1 - y) * np.log(1 - s))
    np.testing.assert_allclose(
        F.binary_cross_entropy_with_logits(Tensor(x), y, reduction="none").data, naive)
    big = Tensor(np.array([1000.0, -1000.0], dtype=np.float32), requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(big, np.array([0.0, 1.0]), reduction="sum")
    loss.backward()
    np.testing.assert_allclose(loss.item(), 2000.0)
    np.testing.assert_allclose(big.grad.data, [1.0, -1.0])


def test_bce_with_logits_gradient_is_sigmoid_minus_target_even_at_zero():
    x = np.array([0.0, 0.0, 1.5, -2.0])
    y = np.array([0.0, 1.0, 0.25, 1.0])
    t = Tensor(x, requires_grad=True)
    F.binary_cross_entropy_with_logits(t, y).backward()
    np.testing.assert_allclose(t.grad.data, (1 / (1 + np.exp(-x)) - y) / 4, rtol=1e-12)


def test_l2_penalty_value_and_gradient():
    a = Tensor(np.array([1.0, -2.0]), requires_grad=True)
    b = Tensor(np.array([[3.0]]), requires_grad=True)
    pen = F.l2_penalty([a, b], weight_decay=0.1)
    np.testing.assert_allclose(pen.item(), 0.05 * (1 + 4 + 9))
    pen.backward()
    np.testing.assert_allclose(a.grad.data, [0.1, -0.2])
    np.testing.assert_allclose(b.grad.data, [[0.3]])
    assert F.l2_penalty([], 0.1).item() == 0.0
    with pytest.raises(ValueError, match="weight_decay"):
        F.l2_penalty([a], -1.0)


def test_l2_penalty_plus_plain_sgd_equals_sgd_with_weight_decay():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(8, 3)), rng.integers(0, 2, size=8)

    def model_and_opt(weight_decay):
        lin = tg.nn.Linear(3, 2, dtype=np.float64, rng=7)
        return lin, tg.optim.SGD(lin.parameters(), lr=0.5, weight_decay=weight_decay)

    lin_a, opt_a = model_and_opt(0.0)
    lin_b, opt_b = model_and_opt(0.05)
    for _ in range(5):
        for lin, opt, penalty in ((lin_a, opt_a, True), (lin_b, opt_b, False)):
            opt.zero_grad()
            loss = F.cross_entropy(lin(Tensor(x)), y)
            if penalty:
                loss = loss + F.l2_penalty(lin.parameters(), 0.05)
            loss.backward()
            opt.step()
    moved = np.abs(lin_a.weight.data - tg.nn.Linear(3, 2, dtype=np.float64, rng=7).weight.data)
    assert moved.max() > 1e-2
    for pa, pb in zip(lin_a.parameters(), lin_b.parameters()):
        np.testing.assert_allclose(pa.data, pb.data, rtol=1e-13, atol=1e-15)


# ---------------------------------------------------------------- dropout

def test_dropout_keeps_the_expectation_and_scales_survivors():
    p = 0.3
    x = Tensor(np.ones(200_000, dtype=np.float32))
    out = F.dropout(x, p, training=True, rng=np.random.default_rng(0)).data
    kept = out != 0
    np.testing.assert_allclose(out[kept], 1 / (1 - p), rtol=1e-6)
    # The kept fraction is Binomial(n, 0.7)/n: its standard deviation is about 0.001.
    assert abs(kept.mean() - (1 - p)) < 0.005
    assert abs(out.mean() - 1.0) < 0.01
    assert out.dtype == np.float32


def test_dropout_is_the_identity_when_not_training_and_reproducible_with_a_generator():
    x = Tensor(np.arange(10.0))
    assert F.dropout(x, 0.5, training=False) is x
    a = F.dropout(x, 0.5, True, np.random.default_rng(5)).data
    b = F.dropout(x, 0.5, True, np.random.default_rng(5)).data
    np.testing.assert_array_equal(a, b)
    assert (a == 0).any() and (a != 0).any()
    np.testing.assert_array_equal(F.dropout(x, 1.0, True).data, np.zeros(10))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        F.dropout(x, 1.5, True)


def test_dropout_gradient_is_the_mask():
    x = Tensor(np.ones((4, 5)), requires_grad=True)
    out = F.dropout(x, 0.5, True, np.random.default_rng(1))
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.data, out.data)


# ---------------------------------------------------------------- small helpers

def test_one_hot_and_its_errors():
    got = F.one_hot(np.array([[2, 0], [1, 1]]), 3)
    np.testing.assert_array_equal(got.data, np.eye(3, dtype=np.float32)[[[2, 0], [1, 1]]])
    assert got.dtype == np.float32 and F.one_hot([1], 2, dtype=np.float64).dtype == np.float64
    with pytest.raises(ValueError, match=r"label 3 .*\[0, 3\)"):
        F.one_hot(np.array([0, 3]), 3)
    with pytest.raises(TypeError, match="integers"):
        F.one_hot(np.array([0.0, 1.0]), 3)


def test_accuracy_is_a_plain_float():
    logits = np.array([[0.1, 2.0], [3.0, -1.0], [0.0, 1.0], [5.0, 4.0]])
    acc = F.accuracy(Tensor(logits), np.array([1, 0, 0, 1]))
    assert type(acc) is float and acc == 0.5
    assert F.accuracy(logits, np.eye(2)[[1, 0, 1, 0]]) == 1.0
    with pytest.raises(ValueError, match=r"\(3,\).*\(4,\)"):
        F.accuracy(logits, np.array([1, 0, 0]))


def test_activations_call_the_tensor_methods():
    x = np.array([[-2.0, -0.5, 0.5, 3.0]])
    t = Tensor(x)
    np.testing.assert_allclose(F.relu(t).data, np.maximum(x, 0))
    np.testing.assert_allclose(F.leaky_relu(t, 0.1).data, np.where(x > 0, x, 0.1 * x))
    np.testing.assert_allclose(F.sigmoid(t).data, 1 / (1 + np.exp(-x)))
    np.testing.assert_allclose(F.tanh(t).data, np.tanh(x))
    np.testing.assert_allclose(F.softmax(t).data, np_softmax(x))
    np.testing.assert_allclose(F.log_softmax(t, axis=1).data, np_log_softmax(x))
    np.testing.assert_allclose(F.logsumexp(t, axis=1).data, np.log(np.exp(x).sum(axis=1)))
    assert nnF.cross_entropy is F.cross_entropy and tg.nn.functional.relu is F.relu


# ---------------------------------------------------------------- properties (gradcheck)

@st.composite
def classification(draw, max_n=4, max_c=4):
    n = draw(st.integers(1, max_n))
    c = draw(st.integers(2, max_c))
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    return rng.uniform(-4, 4, size=(n, c)), rng.integers(0, c, size=n), rng


@PROPERTY
@given(classification(), st.sampled_from(["mean", "sum", "none"]), st.sampled_from([0.0, 0.25]))
def test_property_cross_entropy_gradients(problem_, reduction, eps):
    x, y, rng = problem_
    soft = rng.dirichlet(np.ones(x.shape[1]), size=x.shape[0])
    logits = Tensor(x, requires_grad=True)
    gradcheck(lambda z: F.cross_entropy(z, y, reduction, eps), [logits])
    target = Tensor(soft, requires_grad=True)
    gradcheck(lambda z, t: F.cross_entropy(z, t, reduction, eps), [logits, target])


@PROPERTY
@given(classification())
def test_property_bce_mse_and_l2_gradients(problem_):
    x, _, rng = problem_
    y = rng.uniform(0, 1, size=x.shape)
    a = Tensor(x, requires_grad=True)
    gradcheck(lambda z: F.binary_cross_entropy_with_logits(z, y), [a])
    gradcheck(lambda z: F.mse_loss(z, y, reduction="sum"), [a])
    b = Tensor(rng.normal(size=3), requires_grad=True)
    gradcheck(lambda u, v: F.l2_penalty([u, v], 0.3), [a, b])


@PROPERTY
@given(classification(), st.sampled_from([0.2, 0.5]))
def test_property_dropout_and_linear_gradients(problem_, p):
    x, _, rng = problem_
    w = Tensor(rng.normal(size=(3, x.shape[1])), requires_grad=True)
    bias = Tensor(rng.normal(size=3), requires_grad=True)
    seed = int(rng.integers(0, 1000))

    def fn(z, weight, b):
        # A fresh generator per call: the numerical check re-runs fn and needs the same mask.
        return F.dropout(F.linear(z, weight, b), p, True, np.random.default_rng(seed))

    gradcheck(fn, [Tensor(x, requires_grad=True), w, bias])


# ---------------------------------------------------------------- optional: against PyTorch

def test_losses_match_pytorch():
    torch = pytest.importorskip("torch")
    x, y = problem(n=7, c=5, seed=4)
    soft = np.random.default_rng(0).dirichlet(np.ones(5), size=7)
    tf = torch.nn.functional
    for reduction in ("mean", "sum", "none"):
        for eps in (0.0, 0.1):
            ours = F.cross_entropy(Tensor(x), y, reduction, eps).data
            theirs = tf.cross_entropy(torch.tensor(x), torch.tensor(y), reduction=reduction,
                                      label_smoothing=eps).numpy()
            np.testing.assert_allclose(ours, theirs, rtol=1e-12)
            ours = F.cross_entropy(Tensor(x), soft, reduction, eps).data
            theirs = tf.cross_entropy(torch.tensor(x), torch.tensor(soft), reduction=reduction,
                                      label_smoothing=eps).numpy()
            np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    z = np.random.default_rng(1).normal(scale=3, size=(7, 5))
    t = np.random.default_rng(2).uniform(size=(7, 5))
    np.testing.assert_allclose(
        F.binary_cross_entropy_with_logits(Tensor(z), t).item(),
        tf.binary_cross_entropy_with_logits(torch.tensor(z), torch.tensor(t)).item(), rtol=1e-12)
    np.testing.assert_allclose(F.nll_loss(Tensor(z), y, "sum").item(),
                               tf.nll_loss(torch.tensor(z), torch.tensor(y), reduction="sum").item())


def test_accuracy_refuses_labels_outside_the_classes():
    logits = np.eye(3, dtype=np.float32)
    with pytest.raises(ValueError, match=r"accuracy: label 3 is out of range.*\[0, 3\)"):
        F.accuracy(logits, np.array([0, 1, 3]))
    with pytest.raises(ValueError, match=r"accuracy: label -1 is out of range"):
        F.accuracy(logits, np.array([0, -1, 2]))
    assert F.accuracy(logits, np.array([0, 1, 0])) == pytest.approx(2 / 3)


def test_nn_functional_is_the_same_module_object():
    import importlib
    import tinygrad_mlp.nn.functional as by_import
    assert tg.nn.functional is tg.functional is by_import
    assert importlib.import_module("tinygrad_mlp.nn.functional") is tg.functional
