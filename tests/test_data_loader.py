"""Tests for floor 5 (data): DataLoader, train_val_split and the preprocessing functions.

Batches are checked through ``.data``, ``.shape`` and ``.dtype`` only. The data sets are built so a
sample's identity is readable from its values (row i of x is filled with i, y[i] == i), which makes
order, coverage and x/y alignment checkable without recomputing anything the code does.
"""
import json

import numpy as np
import pytest

from tinygrad_mlp.data import (DataLoader, fit_normalization, normalize, standardize_per_image,
                               to_float, train_val_split)


def identity_set(n, features=3):
    x = np.repeat(np.arange(n, dtype=np.float32)[:, None], features, axis=1)
    return x, np.arange(n, dtype=np.int64)


def epoch(loader):
    """The labels of each batch, after checking that every batch's x matches its y."""
    out = []
    for xb, yb in loader:
        np.testing.assert_array_equal(xb.data[:, 0], yb.data.astype(np.float32))
        out.append(yb.data.tolist())
    return out


# ------------------------------------------------------------------ DataLoader: batches

def test_batches_in_order_with_partial_last():
    x, y = identity_set(10)
    loader = DataLoader(x, y, batch_size=4)
    assert len(loader) == 3
    assert epoch(loader) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_drop_last():
    x, y = identity_set(10)
    loader = DataLoader(x, y, batch_size=4, drop_last=True)
    assert len(loader) == 2
    assert epoch(loader) == [[0, 1, 2, 3], [4, 5, 6, 7]]


@pytest.mark.parametrize("n,bs,drop_last,expected", [
    (10, 3, False, 4), (10, 3, True, 3), (9, 3, False, 3), (9, 3, True, 3),
    (2, 5, False, 1), (2, 5, True, 0), (0, 4, False, 0), (1, 1, False, 1),
])
def test_len(n, bs, drop_last, expected):
    x, y = identity_set(n)
    loader = DataLoader(x, y, bs, drop_last=drop_last)
    assert len(loader) == expected
    assert len(epoch(loader)) == expected


def test_batch_types_shapes_and_dtypes():
    x = np.arange(5 * 2 * 3, dtype=np.float64).reshape(5, 2, 3)
    y = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    xb, yb = next(iter(DataLoader(x, y, 2)))
    assert type(xb).__name__ == "Tensor" and type(yb).__name__ == "Tensor"
    assert xb.shape == (2, 2, 3) and xb.dtype == np.float32 and xb.data.dtype == np.float32
    assert yb.shape == (2,) and yb.dtype == np.int64 and yb.data.dtype == np.int64
    np.testing.assert_array_equal(xb.data, [[[0, 1, 2], [3, 4, 5]], [[6, 7, 8], [9, 10, 11]]])
    np.testing.assert_array_equal(yb.data, [3, 1])
    assert not xb.requires_grad and not yb.requires_grad


@pytest.mark.parametrize("shuffle", [False, True])
def test_changing_a_batch_leaves_the_dataset_alone(shuffle):
    x, y = identity_set(6)
    loader = DataLoader(x, y, 3, shuffle=shuffle, rng=0)
    for xb, yb in loader:
        xb.data[...] = -1
        yb.data[...] = -1
    assert epoch(loader) != [] and (loader.x >= 0).all() and (loader.y >= 0).all()


def test_shuffle_covers_every_sample_once_and_reshuffles_each_epoch():
    x, y = identity_set(50)
    loader = DataLoader(x, y, 7, shuffle=True, rng=123)
    first, second = epoch(loader), epoch(loader)
    for e in (first, second):
        assert [len(b) for b in e] == [7] * 7 + [1]
        assert sorted(sum(e, [])) == list(range(50))
    assert sum(first, []) != list(range(50))
    assert first != second


def test_same_seed_same_order_and_generator_accepted():
    x, y = identity_set(30)
    a = DataLoader(x, y, 4, shuffle=True, rng=7)
    b = DataLoader(x, y, 4, shuffle=True, rng=np.random.default_rng(7))
    c = DataLoader(x, y, 4, shuffle=True, rng=8)
    ea, eb, ec = epoch(a), epoch(b), epoch(c)
    assert ea == eb
    assert ea != ec


def test_shuffled_order_is_a_permutation_drawn_from_the_generator():
    # The order is the generator's permutation of range(n): an independent draw from the same seed
    # must give the same order.
    x, y = identity_set(20)
    loader = DataLoader(x, y, 20, shuffle=True, rng=5)
    assert epoch(loader) == [np.random.default_rng(5).permutation(20).tolist()]


# ------------------------------------------------------------------ DataLoader: resume

def test_state_dict_resumes_next_epoch_exactly_through_json():
    x, y = identity_set(40)
    a = DataLoader(x, y, 6, shuffle=True, rng=1)
    epoch(a)
    saved = json.loads(json.dumps(a.state_dict()))
    expected_next = [epoch(a), epoch(a)]
    b = DataLoader(x, y, 6, shuffle=True, rng=999)
    b.load_state_dict(saved)
    assert [epoch(b), epoch(b)] == expected_next


def test_state_dict_resumes_mid_epoch_exactly():
    x, y = identity_set(40)
    a = DataLoader(x, y, 6, shuffle=True, rng=2)
    it = iter(a)
    seen = [next(it)[1].data.tolist() for _ in range(3)]
    saved = json.loads(json.dumps(a.state_dict()))
    rest = [yb.data.tolist() for _, yb in it]
    following = epoch(a)
    assert sorted(sum(seen + rest, [])) == list(range(40))

    b = DataLoader(x, y, 6, shuffle=True, rng=0)
    b.load_state_dict(saved)
    assert b.state_dict() == saved  # a pending resume is itself saved unchanged
    assert epoch(b) == rest
    assert epoch(b) == following


def test_state_after_the_last_batch_starts_a_new_epoch():
    x, y = identity_set(12)
    a = DataLoader(x, y, 4, shuffle=True, rng=3)
    it = iter(a)
    for _ in range(3):  # all batches consumed, generator not yet exhausted
        next(it)
    saved = a.state_dict()
    assert saved["position"] == 0
    b = DataLoader(x, y, 4, shuffle=True, rng=0)
    b.load_state_dict(saved)
    assert epoch(b) == epoch(a)


def test_unshuffled_mid_epoch_resume():
    x, y = identity_set(10)
    a = DataLoader(x, y, 3)
    it = iter(a)
    next(it)
    b = DataLoader(x, y, 3)
    b.load_state_dict(a.state_dict())
    assert epoch(b) == [[3, 4, 5], [6, 7, 8], [9]]


@pytest.mark.parametrize("change,words", [
    (dict(n=41), ["num_samples=40", "num_samples=41"]),
    (dict(batch_size=5), ["batch_size=6", "batch_size=5"]),
    (dict(shuffle=False), ["shuffle=True", "shuffle=False"]),
])
def test_load_state_dict_rejects_a_different_loader(change, words):
    x, y = identity_set(40)
    saved = DataLoader(x, y, 6, shuffle=True, rng=1).state_dict()
    x2, y2 = identity_set(change.get("n", 40))
    other = DataLoader(x2, y2, change.get("batch_size", 6), shuffle=change.get("shuffle", True))
    with pytest.raises(ValueError) as e:
        other.load_state_dict(saved)
    for w in words:
        assert w in str(e.value)


def test_load_state_dict_rejects_bad_state():
    x, y = identity_set(10)
    loader = DataLoader(x, y, 3, shuffle=True, rng=0)
    good = loader.state_dict()
    with pytest.raises(KeyError, match="rng_state"):
        loader.load_state_dict({k: v for k, v in good.items() if k != "rng_state"})
    with pytest.raises(ValueError, match="position"):
        loader.load_state_dict(dict(good, position=5))
    with pytest.raises(ValueError, match="MT19937"):
        loader.load_state_dict(dict(good, rng_state=np.random.MT19937(0).state))


# ------------------------------------------------------------------ DataLoader: validation

@pytest.mark.parametrize("bs,exc,words", [
    (0, ValueError, "got 0"), (-3, ValueError, "got -3"), (2.5, TypeError, "float"),
    (True, TypeError, "bool"), ("8", TypeError, "str"),
])
def test_bad_batch_size(bs, exc, words):
    x, y = identity_set(5)
    with pytest.raises(exc, match="batch_size") as e:
        DataLoader(x, y, bs)
    assert words in str(e.value)


def test_numpy_int_batch_size_is_fine():
    x, y = identity_set(5)
    assert len(DataLoader(x, y, np.int64(2))) == 3


def test_length_mismatch_names_both_lengths():
    with pytest.raises(ValueError) as e:
        DataLoader(np.zeros((5, 2), np.float32), np.zeros(4, np.int64), 2)
    assert "5" in str(e.value) and "4" in str(e.value) and "same length" in str(e.value)


def test_raw_uint8_x_and_bool_y_are_refused_float_y_becomes_float32():
    with pytest.raises(TypeError, match="to_float"):
        DataLoader(np.zeros((4, 2), np.uint8), np.zeros(4, np.int64), 2)
    with pytest.raises(TypeError, match="bool"):
        DataLoader(np.zeros((4, 2), np.float32), np.zeros(4, bool), 2)
    _, yb = next(iter(DataLoader(np.zeros((4, 2), np.float32), np.full((4, 3), 0.5), 2)))
    assert yb.dtype == np.float32 and yb.shape == (2, 3)


def test_bad_rng():
    x, y = identity_set(4)
    with pytest.raises(TypeError, match="rng"):
        DataLoader(x, y, 2, rng="seed")
    with pytest.raises(TypeError, match="rng"):
        DataLoader(x, y, 2, rng=np.random.RandomState(0))


# ------------------------------------------------------------------ train_val_split

def test_train_val_split_sizes_disjoint_aligned_and_seeded():
    x, y = identity_set(10)
    xt, yt, xv, yv = train_val_split(x, y, 0.2, rng=4)
    assert xt.shape == (8, 3) and yt.shape == (8,) and xv.shape == (2, 3) and yv.shape == (2,)
    assert sorted(yt.tolist() + yv.tolist()) == list(range(10))
    np.testing.assert_array_equal(xt[:, 0], yt)
    np.testing.assert_array_equal(xv[:, 0], yv)
    again = train_val_split(x, y, 0.2, rng=np.random.default_rng(4))
    np.testing.assert_array_equal(again[3], yv)
    # Shuffled: the validation set is not simply the tail.
    splits = {tuple(train_val_split(x, y, 0.2, rng=s)[3]) for s in range(5)}
    assert len(splits) > 1


@pytest.mark.parametrize("fraction", [0, 1, 1.5, -0.1, True, "0.2", None])
def test_train_val_split_rejects_bad_fraction(fraction):
    x, y = identity_set(10)
    with pytest.raises(ValueError, match="val_fraction"):
        train_val_split(x, y, fraction, rng=0)


def test_train_val_split_needs_samples_on_both_sides():
    x, y = identity_set(3)
    with pytest.raises(ValueError, match="0 validation"):
        train_val_split(x, y, 0.1, rng=0)
    with pytest.raises(ValueError, match="same length"):
        train_val_split(x, y[:2], 0.5, rng=0)


# ------------------------------------------------------------------ preprocessing

def test_to_float_scales_and_flattens():
    images = np.zeros((2, 28, 28), dtype=np.uint8)
    images[0, 0, 0], images[0, 0, 1], images[1, 27, 27] = 255, 51, 102
    out = to_float(images)
    assert out.shape == (2, 784) and out.dtype == np.float32
    assert out[0, 0] == np.float32(1.0)
    assert out[0, 1] == pytest.approx(0.2, abs=1e-7)
    assert out[1, 783] == pytest.approx(0.4, abs=1e-7)
    assert out.sum() == pytest.approx(1.6, abs=1e-6)


def test_to_float_refuses_non_uint8_and_bad_shape():
    with pytest.raises(TypeError, match="float32"):
        to_float(np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match=r"\(5,\)"):
        to_float(np.zeros(5, np.uint8))


def test_fit_normalization_known_values():
    mean, std = fit_normalization(np.array([[1.0, 3.0], [1.0, 3.0]], dtype=np.float32))
    assert mean == pytest.approx(2.0) and std == pytest.approx(1.0)
    assert isinstance(mean, float) and isinstance(std, float)
    with pytest.raises(ValueError, match="constant"):
        fit_normalization(np.ones((3, 2), np.float32))
    with pytest.raises(TypeError, match="to_float"):
        fit_normalization(np.zeros((3, 2), np.uint8))


def test_normalize_known_values_and_training_set_statistics():
    out = normalize(np.array([[1.0, 3.0, 5.0]], dtype=np.float32), 3.0, 2.0)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[-1.0, 0.0, 1.0]])
    x = np.random.default_rng(0).random((200, 10), dtype=np.float32) * 5 + 2
    z = normalize(x, *fit_normalization(x))
    assert z.dtype == np.float32
    assert abs(float(z.mean())) < 1e-5 and float(z.std()) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("mean,std,words", [
    (0.0, 0.0, "positive"), (0.0, -1.0, "positive"), (np.nan, 1.0, "mean"),
    (0.0, np.array([1.0, 2.0]), "std"), ("a", 1.0, "mean"),
])
def test_normalize_rejects_bad_statistics(mean, std, words):
    with pytest.raises(ValueError, match=words):
        normalize(np.zeros((2, 2), np.float32), mean, std)


def test_standardize_per_image():
    x = np.array([[1.0, 3.0], [10.0, 30.0], [4.0, 4.0]], dtype=np.float32)
    out = standardize_per_image(x)
    assert out.dtype == np.float32 and out.shape == (3, 2)
    np.testing.assert_allclose(out, [[-1.0, 1.0], [-1.0, 1.0], [0.0, 0.0]], atol=1e-6)
    images = np.random.default_rng(1).random((4, 28, 28)).astype(np.float32)
    z = standardize_per_image(images)
    assert z.shape == (4, 28, 28)
    np.testing.assert_allclose(z.reshape(4, -1).mean(axis=1), 0, atol=1e-5)
    np.testing.assert_allclose(z.reshape(4, -1).std(axis=1), 1, atol=1e-5)
