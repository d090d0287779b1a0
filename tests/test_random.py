"""The library-wide default generator: ``tg.manual_seed``, ``get_rng_state``/``set_rng_state``."""
import numpy as np
import pytest

import tinygrad_mlp as tg
from tinygrad_mlp import nn
from tinygrad_mlp.data import DataLoader


def draw_everything():
    """Weights, tensors, a dropout mask and a shuffle drawn with no rng= anywhere."""
    lin = nn.Linear(5, 3)
    x = tg.randn(4, 5)
    u = tg.rand(2)
    drop = nn.Dropout(0.5)(tg.ones(50))
    loader = DataLoader(np.arange(10, dtype=np.float32)[:, None], np.arange(10), 10, shuffle=True)
    (_, order), = list(loader)
    return [lin.weight.data, lin.bias.data, x.data, u.data, drop.data, order.data]


def test_same_seed_same_draws_and_other_seed_other_draws():
    tg.manual_seed(7)
    first = draw_everything()
    tg.manual_seed(7)
    again = draw_everything()
    tg.manual_seed(8)
    other = draw_everything()
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other[0])
    assert not np.array_equal(first[2], other[2])


def test_explicit_rng_wins_over_the_default():
    tg.manual_seed(1)
    w1 = nn.Linear(4, 4, rng=123).weight.data
    tg.manual_seed(2)
    w2 = nn.Linear(4, 4, rng=123).weight.data
    np.testing.assert_array_equal(w1, w2)
    gen = np.random.default_rng(5)
    assert nn.Dropout(0.1, rng=gen).rng is gen


def test_state_round_trip_replays_the_same_numbers():
    tg.manual_seed(3)
    state = tg.get_rng_state()
    a = tg.randn(6).data
    tg.set_rng_state(state)
    np.testing.assert_array_equal(tg.randn(6).data, a)


def test_modules_holding_the_default_generator_see_a_reseed():
    drop = nn.Dropout(0.5)
    tg.manual_seed(11)
    m1 = drop(tg.ones(40)).data
    tg.manual_seed(11)
    np.testing.assert_array_equal(drop(tg.ones(40)).data, m1)


@pytest.mark.parametrize("seed", [-1, 1.5, "3", True])
def test_bad_seed_is_refused(seed):
    with pytest.raises(TypeError, match="manual_seed"):
        tg.manual_seed(seed)


def test_bad_state_is_refused():
    with pytest.raises(ValueError, match="set_rng_state"):
        tg.set_rng_state({"bit_generator": "MT19937"})
