"""gradcheck / gradgradcheck: they pass correct derivatives and catch wrong ones, naming the
input, the element and both values. The wrong ops are small Functions defined here."""
import inspect
import re

import numpy as np
import pytest

from tinygrad_mlp import GradcheckError, Tensor, gradcheck, gradgradcheck
from tinygrad_mlp.autograd import Function

X = np.array([[0.5, -1.25, 2.0], [1.5, 0.75, -0.5]])


class ScaledSquare(Function):
    """x * x with a derivative of ``factor * x`` (right only for factor 2)."""

    __slots__ = ("factor",)

    def forward(self, a, factor):
        self.factor = factor
        return a * a

    def backward(self, g):
        return (g * self.inputs[0] * self.factor,)


class SquareWrongAtOneElement(Function):
    """x * x whose derivative is off by one at ``index``."""

    __slots__ = ("index",)

    def forward(self, a, index):
        self.index = index
        return a * a

    def backward(self, g):
        bump = np.zeros(g.shape)
        bump[self.index] = 1.0
        return (g * self.inputs[0] * 2 + g * Tensor(bump),)


class ProductWrongForSecond(Function):
    """a * b whose derivative for b is ``g * a * 1.5``."""

    __slots__ = ()

    def forward(self, a, b):
        return a * b

    def backward(self, g):
        a, b = self.inputs
        return g * b, g * a * 1.5


class SquareWithConstantDerivative(Function):
    """x * x whose backward is right in value but built from raw arrays, so it records no graph:
    its own derivative (the second derivative, 2) comes out 0."""

    __slots__ = ()

    def forward(self, a):
        return a * a

    def backward(self, g):
        return (g * Tensor(2 * self.inputs[0].data),)


def parse(message):
    m = re.search(r"input (\d+) \(shape (\([^)]*\))\) at index (\([^)]*\)): analytic gradient "
                  r"(\S+) but numerical (\S+)", str(message))
    assert m, message
    return int(m[1]), m[2], eval(m[3]), float(m[4]), float(m[5])


def leaf(a):
    return Tensor(np.array(a, dtype=np.float64), requires_grad=True)


def test_correct_derivatives_pass():
    assert gradcheck(lambda x: (x * x).exp().sum(axis=0), [leaf(X)]) is True
    assert gradcheck(lambda x: ScaledSquare.apply(x, factor=2.0), [leaf(X)]) is True
    assert gradgradcheck(lambda x, y: (x * y).tanh(), [leaf(X), leaf(X[::-1])]) is True


def test_a_wrong_derivative_is_caught_with_input_index_and_both_values():
    with pytest.raises(GradcheckError) as err:
        gradcheck(lambda x: ScaledSquare.apply(x, factor=3.0), [leaf(X)])
    i, shape, index, analytic, numeric = parse(err.value)
    assert (i, shape, index) == (0, "(2, 3)", (0, 0))
    # whatever the random contraction, analytic / numerical is the ratio of the two derivatives
    assert analytic / numeric == pytest.approx(3.0 / 2.0, rel=1e-6)


def test_the_error_points_at_the_wrong_element():
    with pytest.raises(GradcheckError) as err:
        gradcheck(lambda x: SquareWrongAtOneElement.apply(x, index=(1, 2)), [leaf(X)])
    i, _, index, analytic, numeric = parse(err.value)
    assert (i, index) == (0, (1, 2))
    x = X[1, 2]
    assert analytic / numeric == pytest.approx((2 * x + 1) / (2 * x), rel=1e-6)


def test_the_error_names_the_wrong_input():
    with pytest.raises(GradcheckError) as err:
        gradcheck(ProductWrongForSecond.apply, [leaf(X), leaf(X + 1)])
    i, _, index, analytic, numeric = parse(err.value)
    assert (i, index) == (1, (0, 0))
    assert analytic / numeric == pytest.approx(1.5, rel=1e-6)


def test_inputs_that_do_not_require_grad_are_not_checked():
    # the wrong derivative belongs to b, which is a constant here
    assert gradcheck(ProductWrongForSecond.apply, [leaf(X), Tensor(X + 1)])


def test_tolerances_are_honoured():
    wrong = lambda x: ScaledSquare.apply(x, factor=2.1)  # noqa: E731  5% off
    with pytest.raises(GradcheckError):
        gradcheck(wrong, [leaf(X)])
    assert gradcheck(wrong, [leaf(X)], rtol=0.1)


def test_gradgradcheck_catches_a_derivative_that_records_no_graph():
    x = leaf(X)
    assert gradcheck(SquareWithConstantDerivative.apply, [x])
    with pytest.raises(GradcheckError) as err:
        gradgradcheck(SquareWithConstantDerivative.apply, [x])
    _, _, _, analytic, numeric = parse(err.value)
    assert analytic == 0 and numeric != 0


def test_a_gradient_that_bypasses_the_graph_is_caught():
    # the output depends on x only through a constant built from x.data: analytic 0, numerical not
    with pytest.raises(GradcheckError):
        gradcheck(lambda x: x * Tensor(x.data), [leaf(X)])


def test_inputs_are_not_mutated_and_keep_their_dtype():
    x32 = Tensor(X.astype(np.float32), requires_grad=True)
    x64 = leaf(X)
    before32, before64 = x32.data.copy(), x64.data.copy()
    assert gradcheck(lambda a, b: (a * b).sum(), [x32, x64])
    assert x32.dtype == np.float32 and x32.grad is None and x64.grad is None
    np.testing.assert_array_equal(x32.data, before32)
    np.testing.assert_array_equal(x64.data, before64)


def test_other_arguments_pass_through():
    assert gradcheck(lambda x, k, arr: (x * k + Tensor(arr)).sum(), [leaf(X), 3.0, X])


def test_an_output_independent_of_the_input_has_zero_gradient():
    assert gradcheck(lambda x: Tensor(np.ones(3)), [leaf(X)])


def test_usage_errors():
    with pytest.raises(ValueError, match="no input requires grad"):
        gradcheck(lambda x: x * 2, [Tensor(X)])
    with pytest.raises(TypeError, match="must return a Tensor"):
        gradcheck(lambda x: 1.0, [leaf(X)])


def test_signatures_match_torch_autograd_gradcheck_defaults():
    for fn in (gradcheck, gradgradcheck):
        params = inspect.signature(fn).parameters
        assert list(params)[:2] == ["fn", "inputs"]
        assert (params["eps"].default, params["atol"].default, params["rtol"].default) == \
            (1e-6, 1e-5, 1e-3)
