"""var/std: the keyword a user typed says the convention. numpy's (axis=, ddof=, or none) divide
by n - ddof with ddof=0; PyTorch's (dim=, keepdim=, correction=, unbiased=) by n - correction with
correction=1, PyTorch's default."""
import numpy as np
import pytest

import tinygrad_mlp as tg

torch = pytest.importorskip("torch")

X = np.array([[1.0, 2.0, 4.0], [0.5, -1.0, 3.0]])


@pytest.mark.parametrize("fn", ["var", "std"])
@pytest.mark.parametrize("kwargs", [dict(dim=0), dict(dim=1, keepdim=True), dict(dim=1, correction=0),
                                    dict(dim=0, unbiased=False), dict(dim=(0, 1)),
                                    dict(correction=2)])
def test_pytorch_keywords_give_pytorch_values_and_gradients(fn, kwargs):
    ours = tg.Tensor(X, requires_grad=True)
    theirs = torch.tensor(X, requires_grad=True)
    a = getattr(ours, fn)(**kwargs)
    b = getattr(theirs, fn)(**kwargs)
    np.testing.assert_allclose(a.data, b.detach().numpy(), rtol=1e-12)
    a.sum().backward()
    b.sum().backward()
    np.testing.assert_allclose(ours.grad.data, theirs.grad.numpy(), rtol=1e-10)


@pytest.mark.parametrize("fn", ["var", "std"])
@pytest.mark.parametrize("kwargs", [dict(ddof=0), dict(axis=0), dict(axis=1, ddof=1),
                                    dict(axis=None, keepdims=True)])
def test_numpy_keywords_give_numpy_values(fn, kwargs):
    np.testing.assert_allclose(getattr(tg.Tensor(X), fn)(**kwargs).data,
                               getattr(np, fn)(X, **kwargs), rtol=1e-12)


@pytest.mark.parametrize("kwargs", [dict(axis=0, dim=0), dict(ddof=1, correction=1),
                                    dict(dim=0, unbiased=True, correction=1),
                                    dict(keepdims=True, keepdim=True, dim=0)])
def test_both_conventions_at_once_are_refused(kwargs):
    with pytest.raises(TypeError, match="var"):
        tg.Tensor(X).var(**kwargs)


@pytest.mark.parametrize("fn", ["var", "std"])
@pytest.mark.parametrize("call", [lambda f: f(), lambda f: f(0), lambda f: f(1, True)],
                         ids=["no keyword", "positional axis", "positional keepdims"])
def test_no_keyword_is_refused_because_the_defaults_differ(fn, call):
    # x.std() is the population std in numpy and the unbiased one in PyTorch: either answer is
    # silently wrong for one habit, so the call must say which.
    with pytest.raises(TypeError, match=f"{fn}: say which convention.*ddof=0.*correction=1"):
        call(getattr(tg.Tensor(X), fn))


def test_axis_none_given_by_keyword_is_numpy():
    assert tg.Tensor(X).var(axis=None).item() == pytest.approx(np.var(X))
    assert tg.Tensor(X).std(dim=None).item() == pytest.approx(np.std(X, ddof=1))
