"""The contenders of benchmarks/mlp_epoch.py and recipe_epoch.py do the same work: from the same
initial weights and the same shuffled batches, tinygrad_mlp (eager and compiled), the hand-written
numpy loop and PyTorch reach the same loss (a contender that silently did less would win the
benchmark); the recipe is the example's default configuration. Timing is not tested here."""
import importlib.util
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "benchmarks"))
from contenders import load  # noqa: E402


def data():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((96, 784), dtype=np.float32)
    return x, rng.integers(0, 10, 96).astype(np.int64)


def test_training_steps_agree():
    x, y = data()
    losses = {name: load(name).train(x, y, 16, seed=3)(5) for name in ("tinygrad", "numpy")}
    assert losses["tinygrad"] == pytest.approx(losses["numpy"], rel=1e-4)
    assert 1.0 < losses["numpy"] < 4.0  # a cross-entropy over 10 classes, not a placeholder


def test_pytorch_trains_the_same():
    pytest.importorskip("torch")
    x, y = data()
    assert load("torch").train(x, y, 16, seed=3)(5) == \
        pytest.approx(load("numpy").train(x, y, 16, seed=3)(5), rel=1e-4)


def test_evaluation_gives_the_same_probabilities():
    x, _ = data()
    ours = np.concatenate(load("tinygrad").evaluate(x, 32, seed=3)())
    by_hand = np.concatenate(load("numpy").evaluate(x, 32, seed=3)())
    np.testing.assert_allclose(ours, by_hand, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(ours.sum(axis=1), 1, rtol=1e-5)


# ---------------------------------------------------------------- the compiled contender

def weights(model):
    return [p.data.copy() for p in model.parameters()]


def test_compiled_step_is_the_eager_step_bitwise():
    x, y = data()
    eager = load("tinygrad").train(x, y, 16, seed=3)
    compiled = load("tinygrad-jit").train(x, y, 16, seed=3)
    for steps, replays in ((5, 3), (6, 9)):  # two captured steps, then replays; a second epoch
        assert compiled(steps) == eager(steps)
        assert compiled.compiled.replays == replays
        for a, b in zip(weights(compiled.model), weights(eager.model), strict=True):
            np.testing.assert_array_equal(a, b)
    # and the loss is a real one, from the same weights as the hand-written loop
    assert compiled(5) == pytest.approx(load("numpy").train(x, y, 16, seed=3)(5), abs=2.0)


def test_compiled_evaluation_is_the_eager_evaluation_bitwise():
    x, _ = data()
    compiled = load("tinygrad-jit").evaluate(x, 32, seed=3)
    eager = np.concatenate(load("tinygrad").evaluate(x, 32, seed=3)())
    for _ in range(2):  # the first pass captures, the second replays
        np.testing.assert_array_equal(np.concatenate(compiled()), eager)
    assert compiled.compiled.replays == 3 + 1  # 3 batches a pass; capture on the first two calls


# ---------------------------------------------------------------- the example's recipe

from contenders import recipe  # noqa: E402
from contenders.common import init_weights  # noqa: E402


def example_defaults():
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples",
                        "fashion_mlp.py")
    spec = importlib.util.spec_from_file_location("fashion_mlp_for_recipe", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    return example.DEFAULTS


def test_recipe_is_the_examples_default_configuration():
    defaults = example_defaults()
    for key, value in recipe.RECIPE.items():
        assert defaults[key] == value, key
    model = recipe.build_tinygrad(0)
    kinds = [type(m).__name__ for m in model]
    assert kinds == ["Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout", "Linear"]
    assert [m.p for m in model if type(m).__name__ == "Dropout"] == [0.2, 0.2]
    x, y = data()
    names = [n for n in recipe.NAMES if n != "torch" or importlib.util.find_spec("torch")]
    for name in names:
        opt = recipe.train(name, x, y, 16, seed=0).optimizer
        group = opt.param_groups[0]
        assert type(opt).__name__ == "AdamW", name
        assert len(opt.param_groups) == 1 and len(group["params"]) == 6, name
        assert (group["lr"], group["weight_decay"]) == (defaults["lr"],
                                                        defaults["weight_decay"]), name


def smoothed_cross_entropy(x, y, smoothing):
    """The label-smoothed cross-entropy of the common initial weights on (x, y), in float64."""
    h = x.astype(np.float64)
    layers = init_weights(3)
    for i, (w, b) in enumerate(layers):
        h = h @ w.T.astype(np.float64) + b
        if i < len(layers) - 1:
            h = np.maximum(h, 0)
    logp = h - h.max(axis=1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
    nll = -logp[np.arange(len(y)), y]
    return float(np.mean((1 - smoothing) * nll - smoothing * logp.mean(axis=1)))


@pytest.mark.parametrize("name", recipe.NAMES)
def test_recipe_first_loss_is_label_smoothed_cross_entropy(name):
    if name == "torch":
        pytest.importorskip("torch")
    x, y = data()
    x *= 8  # larger logits, so that the smoothing changes the loss well beyond the tolerance
    # one batch of all 96 rows: the mean loss does not depend on the shuffled order
    stats = recipe.train(name, x, y, 96, seed=3, dropout=0.0)(1)
    expected = smoothed_cross_entropy(x, y, 0.1)
    assert stats["mean_loss"] == pytest.approx(expected, rel=1e-5)
    assert abs(expected - smoothed_cross_entropy(x, y, 0.0)) > 100 * 1e-5 * expected


def test_recipe_compiled_is_eager_bitwise_with_dropout():
    x, y = data()
    eager = recipe.train("tinygrad", x, y, 16, seed=3)
    compiled = recipe.train("tinygrad-jit", x, y, 16, seed=3)
    for steps, replays in ((5, 3), (6, 9)):
        assert compiled(steps) == eager(steps)
        assert compiled.compiled.replays == replays
        for a, b in zip(weights(compiled.model), weights(eager.model), strict=True):
            np.testing.assert_array_equal(a, b)
    # the dropout is in the step: without it the same steps give another loss
    assert recipe.train("tinygrad", x, y, 16, seed=3)(5)["last_loss"] != \
        recipe.train("tinygrad", x, y, 16, seed=3, dropout=0.0)(5)["last_loss"]


def test_recipe_through_fit_is_the_eager_step_bitwise():
    x, y = data()
    eager = recipe.train("tinygrad", x, y, 16, seed=3)
    through_fit = recipe.train("tinygrad-fit", x, y, 16, seed=3)
    a, b = eager(6), through_fit(6)  # one epoch of 6 batches: the same shuffled order
    assert (a["mean_loss"], a["accuracy"]) == (b["mean_loss"], b["accuracy"])
    for p, q in zip(weights(eager.model), weights(through_fit.model), strict=True):
        np.testing.assert_array_equal(p, q)


def test_recipe_in_pytorch_trains_the_same():
    pytest.importorskip("torch")
    x, y = data()
    ours = recipe.train("tinygrad", x, y, 16, seed=3, dropout=0.0)
    theirs = recipe.train("torch", x, y, 16, seed=3, dropout=0.0)
    a, b = ours(6), theirs(6)
    assert a["mean_loss"] == pytest.approx(b["mean_loss"], rel=1e-5)
    assert a["last_loss"] == pytest.approx(b["last_loss"], rel=1e-4)
    assert a["accuracy"] == b["accuracy"]
    ws = weights(ours.model)
    ts = [t.detach().numpy() for t in theirs.model.parameters()]
    start = [a for pair in init_weights(3) for a in pair]
    for w, t, w0 in zip(ws, ts, start, strict=True):
        assert np.abs(w - w0).max() > 1e-3  # six AdamW steps of lr 1e-3 moved them
        # Adam divides each gradient by its own running size, so float32 rounding in a gradient
        # near zero can move a weight by a fraction of lr: 4 elements of 400,000 differed by up
        # to 3e-5 where this was written; the rest agree to float32 rounding.
        diff = np.abs(w - t)
        assert diff.max() < 3e-4, diff.max()
        assert np.mean(diff > 1e-6) < 1e-4, np.mean(diff > 1e-6)
