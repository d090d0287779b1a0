"""Mixed int/float inputs keep the float's dtype (PyTorch's rule), also in the functions that take
several tensors, and float functions of integer tensors give float32 (the default), as int / int
and mean of ints already do. numpy would widen both to float64."""
import numpy as np
import pytest

import tinygrad_mlp as tg


def test_binary_ops_keep_float32_with_ints():
    ints, floats = tg.tensor([1, 2]), tg.zeros(2)
    for result in (ints + floats, floats * ints, ints - floats, tg.maximum(ints, floats)):
        assert result.dtype == np.float32


@pytest.mark.parametrize("combine", [
    lambda i, f: tg.cat([f, i]),
    lambda i, f: tg.stack([f, i]),
    lambda i, f: tg.where(tg.tensor([True, False]), i, f),
], ids=["cat", "stack", "where"])
def test_multi_input_functions_keep_float32_with_ints(combine):
    assert combine(tg.tensor([1, 2]), tg.zeros(2)).dtype == np.float32


@pytest.mark.parametrize("fn", ["exp", "log", "sin", "cos", "sigmoid", "tanh", "softmax",
                                "log_softmax"])
def test_float_functions_of_ints_are_float32(fn):
    assert getattr(tg.tensor([1, 2]), fn)().dtype == np.float32
