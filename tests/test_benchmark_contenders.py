"""The contenders of benchmarks/mlp_epoch.py do the same work: from the same initial weights and
the same shuffled batches, tinygrad_mlp, the hand-written numpy loop and PyTorch reach the same
loss (a contender that silently did less would win the benchmark). Timing is not tested here."""
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
