"""In-place ops check their arguments as their out-of-place twins do, and a refused write names
the part of the tensor it was aimed at."""
import numpy as np
import pytest

import tinygrad_mlp as tg


def test_clamp_in_place_refuses_what_clamp_refuses():
    for call in (lambda t: t.clamp(3.0, 1.0), lambda t: t.clamp_(3.0, 1.0)):
        with pytest.raises(ValueError, match=r"min=3.0 is above max=1.0"):
            call(tg.tensor([1.0, 2.0]))
    for call in (lambda t: t.clamp(min=tg.tensor(0.0)), lambda t: t.clamp_(min=tg.tensor(0.0))):
        with pytest.raises(TypeError, match="bounds must be numbers"):
            call(tg.tensor([1.0, 2.0]))


def test_clamp_in_place_refusal_changes_nothing():
    t = tg.tensor([1.0, 2.0, 5.0])
    with pytest.raises(ValueError):
        t.clamp_(3.0, 1.0)
    np.testing.assert_array_equal(t.data, [1.0, 2.0, 5.0])


def test_clamp_in_place_values_and_version():
    t = tg.tensor([-1.0, 2.0, 5.0])
    before = list(t._version) if t._version is not None else None
    assert t.clamp_(min=0.0, max=3.0) is t
    np.testing.assert_array_equal(t.data, [0.0, 2.0, 3.0])
    assert t._version is not None and t._version != before
    i = tg.tensor([-1, 2, 5])
    np.testing.assert_array_equal(i.clamp_(0, 2).data, [0, 2, 2])


def test_setitem_shape_error_names_the_region_written():
    t = tg.zeros(2, 3)
    with pytest.raises(ValueError, match=r"shape \(2,\).*t\[0\], which has shape \(3,\)"):
        t[0] = np.ones(2)
    with pytest.raises(ValueError, match=r"read-only"):
        tg.zeros(3).expand(2, 3)[0] = 1.0
