"""Tests for the losses (class weights, ignore_index, higher-dimensional inputs, the regression
and probability losses) and the erf primitive, against PyTorch and the standard library.

Every loss is run on the same float64 values in both frameworks; values and gradients (of the
input, and of a probability target where PyTorch has one) must agree to float64 rounding.
"""
import math

import numpy as np
import pytest

from tinygrad_mlp import Tensor, gradcheck, nn
from tinygrad_mlp import functional as F
from tinygrad_mlp._special import erf_array

torch = pytest.importorskip("torch")
tf = torch.nn.functional
REDUCTIONS = ["mean", "sum", "none"]


def both(x):
    return Tensor(x.copy(), requires_grad=True), torch.tensor(x.copy(), requires_grad=True)


def check(ours, theirs, inputs, rtol=1e-11, atol=1e-13):
    """``ours(*tensors)`` against ``theirs(*torch tensors)``: value and every input gradient."""
    pairs = [both(x) for x in inputs]
    ya = ours(*[a for a, _ in pairs])
    yb = theirs(*[b for _, b in pairs])
    np.testing.assert_allclose(ya.data, yb.detach().numpy(), rtol=rtol, atol=atol)
    g = np.random.default_rng(9).uniform(0.5, 1.5, size=ya.shape)
    ya.backward(Tensor(g))
    yb.backward(torch.tensor(g))
    for a, b in pairs:
        np.testing.assert_allclose(a.grad.data, b.grad.numpy(), rtol=rtol, atol=atol)


def classes(shape, c, seed=0, ignore=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, size=shape)
    if ignore:
        y.flat[rng.choice(y.size, ignore, replace=False)] = -100
    return y


# ---------------------------------------------------------------- cross_entropy / nll_loss

@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ignore", [0, 3])
@pytest.mark.parametrize("shape", [(7, 5), (3, 5, 2, 4), (5,)])
def test_cross_entropy_with_class_indices_matches_pytorch(reduction, smoothing, weighted, ignore,
                                                          shape):
    rng = np.random.default_rng(1)
    x = rng.normal(scale=2, size=shape)
    batch = shape[:1] + shape[2:] if len(shape) > 1 else ()
    y = classes(batch, 5, ignore=min(ignore, int(np.prod(batch)) - 1) if batch else 0)
    w = rng.uniform(0.2, 2.0, size=5) if weighted else None
    check(lambda a: F.cross_entropy(a, y, reduction, smoothing, weight=w),
          lambda b: tf.cross_entropy(b, torch.tensor(y), reduction=reduction,
                                     label_smoothing=smoothing,
                                     weight=None if w is None else torch.tensor(w)), [x])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.3])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape", [(6, 4), (2, 4, 3)])
def test_cross_entropy_with_probabilities_matches_pytorch(reduction, smoothing, weighted, shape):
    rng = np.random.default_rng(2)
    x = rng.normal(size=shape)
    t = rng.dirichlet(np.ones(4), size=(shape[0],) + shape[2:])
    t = np.moveaxis(t, -1, 1)
    w = rng.uniform(0.2, 2.0, size=4) if weighted else None
    check(lambda a, b: F.cross_entropy(a, b, reduction, smoothing, weight=w),
          lambda a, b: tf.cross_entropy(a, b, reduction=reduction, label_smoothing=smoothing,
                                        weight=None if w is None else torch.tensor(w)), [x, t])


def test_cross_entropy_ignore_index_custom_and_all_ignored():
    x = np.random.default_rng(3).normal(size=(4, 3))
    y = np.array([0, 2, 1, 2])
    for reduction in REDUCTIONS:
        check(lambda a: F.cross_entropy(a, y, reduction, ignore_index=2),
              lambda b: tf.cross_entropy(b, torch.tensor(y), reduction=reduction, ignore_index=2),
              [x])
    all_ignored = F.cross_entropy(Tensor(x), np.full(4, -100))
    assert np.isnan(all_ignored.item())  # 0/0, as PyTorch
    assert np.isnan(tf.cross_entropy(torch.tensor(x), torch.full((4,), -100)).item())
    with pytest.raises(ValueError, match="label 3 is out of range"):
        F.cross_entropy(Tensor(x), np.array([0, 3, 1, -100]))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_loss_with_weight_and_ignore_index_matches_pytorch(reduction):
    rng = np.random.default_rng(4)
    logp = np.log(rng.dirichlet(np.ones(6), size=(5, 2)).transpose(0, 2, 1))  # (5, 6, 2)
    y = classes((5, 2), 6, ignore=2)
    w = rng.uniform(0.1, 3, size=6)
    check(lambda a: F.nll_loss(a, y, reduction, weight=w),
          lambda b: tf.nll_loss(b, torch.tensor(y), reduction=reduction, weight=torch.tensor(w)),
          [logp])


def test_loss_modules_carry_weight_as_a_buffer_like_pytorch():
    w = np.array([1.0, 2.0, 0.5])
    ours = nn.CrossEntropyLoss(w, ignore_index=1, label_smoothing=0.1)
    theirs = torch.nn.CrossEntropyLoss(torch.tensor(w), ignore_index=1, label_smoothing=0.1)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight"]
    x = np.random.default_rng(5).normal(size=(4, 3))
    y = np.array([0, 1, 2, 2])
    check(lambda a: ours(a, y), lambda b: theirs(b, torch.tensor(y)), [x])
    check(lambda a: nn.NLLLoss(w, reduction="sum")(a, y),
          lambda b: torch.nn.NLLLoss(torch.tensor(w), reduction="sum")(b, torch.tensor(y)), [x])
    with pytest.raises(TypeError, match="pass reduction='sum' by keyword"):
        nn.CrossEntropyLoss("sum")


@pytest.mark.parametrize("call, error, match", [
    (lambda x: F.cross_entropy(x, np.array([0, 1]), weight=np.ones(2)), ValueError,
     r"weight must be .* shape \(3,\)"),
    (lambda x: F.cross_entropy(x, np.eye(3)[[0, 1]], ignore_index=0), ValueError,
     "ignore_index applies to class-index targets"),
    (lambda x: F.cross_entropy(x.reshape(1, 2, 3), np.zeros((1, 2), dtype=int)), ValueError,
     r"shape \(1, 3\); got shape \(1, 2\)"),
    (lambda x: F.nll_loss(x, np.array([0, 1]), "batchmean"), ValueError, "reduction"),
])
def test_class_losses_refuse_bad_input_clearly(call, error, match):
    with pytest.raises(error, match=match):
        call(Tensor(np.zeros((2, 3))))


# ---------------------------------------------------------------- regression and probability losses

@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_l1_smooth_l1_and_huber_match_pytorch(reduction):
    rng = np.random.default_rng(6)
    x, t = rng.normal(scale=2, size=(5, 4)), rng.normal(scale=2, size=(5, 4))
    x[0, 0] = t[0, 0]  # a zero difference: the L1 gradient is 0 there
    check(lambda a, b: F.l1_loss(a, b, reduction),
          lambda a, b: tf.l1_loss(a, b, reduction=reduction), [x, t])
    for beta in (1.0, 0.5, 0.0):
        check(lambda a, b: F.smooth_l1_loss(a, b, reduction, beta),
              lambda a, b: tf.smooth_l1_loss(a, b, reduction=reduction, beta=beta), [x, t])
    for delta in (1.0, 0.3, 2.5):
        check(lambda a, b: F.huber_loss(a, b, reduction, delta),
              lambda a, b: tf.huber_loss(a, b, reduction=reduction, delta=delta), [x, t])
    check(lambda a, b: nn.HuberLoss(reduction, 0.3)(a, b),
          lambda a, b: torch.nn.HuberLoss(reduction, 0.3)(a, b), [x, t])


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy_matches_pytorch(reduction):
    rng = np.random.default_rng(7)
    p, t = rng.uniform(0.01, 0.99, size=(6, 3)), rng.uniform(size=(6, 3))
    w = rng.uniform(0.5, 2, size=3)
    check(lambda a, b: F.binary_cross_entropy(a, b, reduction=reduction),
          lambda a, b: tf.binary_cross_entropy(a, b, reduction=reduction), [p, t])
    check(lambda a, b: nn.BCELoss(w, reduction=reduction)(a, b),
          lambda a, b: torch.nn.BCELoss(torch.tensor(w), reduction=reduction)(a, b), [p, t])


def test_binary_cross_entropy_clamps_the_log_at_minus_100():
    p = np.array([0.0, 1.0, 0.0, 1.0, 1e-50])
    t = np.array([1.0, 0.0, 0.0, 1.0, 1.0])
    prob = Tensor(p, requires_grad=True)
    ours = F.binary_cross_entropy(prob, t, reduction="none")
    theirs = tf.binary_cross_entropy(torch.tensor(p), torch.tensor(t), reduction="none")
    np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=1e-14)
    np.testing.assert_array_equal(ours.data, [100, 100, 0, 0, 100])
    ours.sum().backward()  # finite where the log was clamped
    assert np.isfinite(prob.grad.data).all()
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        F.binary_cross_entropy(Tensor(np.array([1.5])), np.array([1.0]))


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides:UserWarning")  # PyTorch's
@pytest.mark.parametrize("reduction", REDUCTIONS + ["batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_matches_pytorch(reduction, log_target):
    rng = np.random.default_rng(8)
    logq = np.log(rng.dirichlet(np.ones(5), size=4))
    p = rng.dirichlet(np.ones(5), size=4)
    target = np.log(p) if log_target else p
    check(lambda a, b: F.kl_div(a, b, reduction, log_target),
          lambda a, b: tf.kl_div(a, b, reduction=reduction, log_target=log_target),
          [logq, target])
    p[0, 1] = 0.0  # 0 · log 0 counts as 0 (the target's gradient there is infinite: not compared)
    check(lambda a: F.kl_div(a, p, reduction),
          lambda a: tf.kl_div(a, torch.tensor(p), reduction=reduction), [logq])


def test_regression_losses_refuse_mismatched_shapes():
    for fn in (F.l1_loss, F.smooth_l1_loss, F.huber_loss, F.binary_cross_entropy, F.kl_div):
        with pytest.raises(ValueError, match=r"shape \(3, 1\) but target has shape \(3,\)"):
            fn(Tensor(np.full((3, 1), 0.5)), np.full(3, 0.5))


def test_loss_gradients_against_central_differences():
    rng = np.random.default_rng(10)
    x = Tensor(rng.normal(size=(4, 3, 2)), requires_grad=True)
    y = rng.integers(0, 3, size=(4, 2))
    y[0, 0] = -100
    w = rng.uniform(0.5, 2, size=3)
    assert gradcheck(lambda z: F.cross_entropy(z, y, "mean", 0.1, weight=w), [x])
    t = Tensor(rng.normal(size=(4, 3, 2)), requires_grad=True)
    assert gradcheck(lambda a, b: F.huber_loss(a, b, "sum", 0.7), [x, t])


# ---------------------------------------------------------------- erf

def test_erf_is_accurate_against_the_standard_library():
    rng = np.random.default_rng(0)
    x = np.concatenate([np.linspace(-7, 7, 200001), rng.normal(scale=2, size=50000),
                        10.0 ** rng.uniform(-30, 0.5, size=50000)])
    ref = np.array([math.erf(v) for v in x])
    rel = np.abs(erf_array(x) - ref) / np.maximum(np.abs(ref), 1e-300)
    assert rel.max() < 1e-15  # measured 6.3e-16
    x32 = x.astype(np.float32)
    ref32 = np.array([math.erf(float(v)) for v in x32])
    got32 = erf_array(x32)
    assert got32.dtype == np.float32
    rel32 = np.abs(got32.astype(np.float64) - ref32) / np.maximum(np.abs(ref32), 1e-38)
    assert rel32.max() < 2.5e-7  # measured 1.5e-7: about one unit in the last place


def test_erf_special_values_match_pytorch():
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-310, 40.0, -40.0])
    ours = F.erf(Tensor(x)).data
    theirs = torch.erf(torch.tensor(x)).numpy()
    np.testing.assert_array_equal(ours, theirs)
    assert np.signbit(ours[1])
    integers = F.erf(Tensor(np.array([0, 1, -2])))
    assert integers.dtype == np.float32
    np.testing.assert_allclose(integers.data, [0, math.erf(1), math.erf(-2)], rtol=2e-7)
    half = erf_array(np.array([0.5, -2.0], dtype=np.float16))
    assert half.dtype == np.float16
    np.testing.assert_allclose(half, [math.erf(0.5), math.erf(-2.0)], rtol=1e-3)
