"""Tests for floor 5 (data.dataset): datasets, random_split, collation and DataLoader over
datasets (the fast gather path against the sample-by-sample path, resume, targets of any
dtype and shape)."""
import json

import numpy as np
import pytest

import tinygrad_mlp as tg
from tinygrad_mlp import Tensor
from tinygrad_mlp.data import (DataLoader, Dataset, Subset, TensorDataset, TransformDataset,
                               default_collate, random_split)


class Squares(Dataset):
    """A dataset with no arrays behind it: sample i is (float vector, float target vector)."""

    def __len__(self):
        return 10

    def __getitem__(self, i):
        return np.array([i, i + 0.5], np.float32), np.array([i * i], np.float64)


class SampleBySample:
    """A TensorDataset seen only through the protocol (no batch gather)."""

    def __init__(self, ds):
        self.ds = ds

    def __len__(self):
        return len(self.ds)

    def __getitem__(self, i):
        return self.ds[i]


def arrays(n=23):
    rng = np.random.default_rng(0)
    return (rng.normal(size=(n, 4)).astype(np.float32), rng.integers(0, 5, size=n),
            rng.normal(size=(n, 2, 3)))


def test_tensor_dataset_items_length_and_errors():
    x, y, z = arrays()
    ds = TensorDataset(x, Tensor(y), z)
    assert len(ds) == 23
    xi, yi, zi = ds[3]
    np.testing.assert_array_equal(xi, x[3])
    assert yi == y[3] and zi.shape == (2, 3)
    with pytest.raises(ValueError, match=r"same length.*\(23, 4\), \(22,\)"):
        TensorDataset(x, y[:-1])
    with pytest.raises(ValueError, match="at least one"):
        TensorDataset()
    with pytest.raises(ValueError, match="scalar"):
        TensorDataset(np.float32(1.0))


@pytest.mark.parametrize("shuffle, drop_last", [(False, False), (True, False), (True, True)])
def test_gathered_batches_equal_sample_by_sample_batches(shuffle, drop_last):
    x, y, z = arrays()
    ds = TensorDataset(x, y, z)
    fast = DataLoader(ds, 5, shuffle=shuffle, drop_last=drop_last, rng=3)
    slow = DataLoader(SampleBySample(ds), 5, shuffle=shuffle, drop_last=drop_last, rng=3)
    assert fast._gather is not None and slow._gather is None
    assert len(fast) == len(slow) == (4 if drop_last else 5)
    for a, b in zip(fast, slow):
        assert isinstance(a, tuple) and len(a) == 3
        for ta, tb in zip(a, b):
            assert ta.dtype == tb.dtype and ta.shape == tb.shape
            np.testing.assert_array_equal(ta.data, tb.data)
    assert [t.dtype for t in next(iter(fast))] == [np.float32, np.int64, np.float64]


def test_dataset_form_equals_array_form():
    x, y, _ = arrays()
    a = [tuple(t.numpy() for t in b) for b in DataLoader(x, y, 4, shuffle=True, rng=1)]
    b = [tuple(t.numpy() for t in b) for b in DataLoader(TensorDataset(x, y), 4, shuffle=True,
                                                         rng=1)]
    assert len(a) == len(b) == 6
    for (xa, ya), (xb, yb) in zip(a, b):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)


def test_any_dataset_with_float_targets_of_any_shape_and_batches_own_their_memory():
    loader = DataLoader(Squares(), batch_size=4)
    batches = list(loader)
    assert [b[0].shape for b in batches] == [(4, 2), (4, 2), (2, 2)]
    xb, yb = batches[2]
    assert xb.dtype == np.float32 and yb.dtype == np.float64 and yb.shape == (2, 1)
    np.testing.assert_array_equal(yb.data[:, 0], [64.0, 81.0])
    x, y, _ = arrays()
    ds = TensorDataset(x, y)
    xb, _ = next(iter(DataLoader(ds, 4)))
    xb.data[...] = 0
    assert not np.all(x[:4] == 0)


def test_default_collate_numbers_dicts_and_errors():
    batch = default_collate([{"a": 1, "b": 0.5, "c": True}, {"a": 2, "b": 1.5, "c": False}])
    assert batch["a"].dtype == np.int64 and batch["b"].dtype == np.float32
    assert batch["c"].dtype == bool
    np.testing.assert_array_equal(batch["b"].data, [0.5, 1.5])
    with pytest.raises(ValueError, match="different shapes"):
        default_collate([np.zeros(2), np.zeros(3)])
    with pytest.raises(TypeError, match="str"):
        default_collate(["a", "b"])


def test_collate_fn_gets_the_list_of_samples():
    seen = []

    def collate(samples):
        seen.append(len(samples))
        return sum(float(s[1][0]) for s in samples)

    assert list(DataLoader(Squares(), 4, collate_fn=collate)) == [14.0, 126.0, 145.0]
    assert seen == [4, 4, 2]


def test_random_split_lengths_fractions_and_seed():
    x, y, _ = arrays(10)
    ds = TensorDataset(x, y)
    a, b = random_split(ds, [7, 3], rng=0)
    assert len(a) == 7 and len(b) == 3
    assert sorted(np.concatenate([a.indices, b.indices]).tolist()) == list(range(10))
    np.testing.assert_array_equal(a.indices, np.random.default_rng(0).permutation(10)[:7])
    parts = random_split(ds, [0.5, 0.3, 0.2], rng=0)
    assert [len(p) for p in parts] == [5, 3, 2]
    # PyTorch's rule for remainders: floor(11 * 1/3) = 3 each, the 2 left go to the first two.
    assert [len(p) for p in random_split(range(11), [1 / 3] * 3, rng=0)] == [4, 4, 3]
    tg.manual_seed(5)
    first = random_split(ds, [5, 5])[0].indices
    tg.manual_seed(5)
    np.testing.assert_array_equal(random_split(ds, [5, 5])[0].indices, first)
    for bad, match in [([5, 4], "sum to the dataset's length 10"), ([0.5, 0.6], "sum to 1"),
                       ([-1, 11], ">= 0"), ("ab", "ints or fractions")]:
        with pytest.raises((ValueError, TypeError), match=match):
            random_split(ds, bad)


def test_subset_of_tensor_dataset_is_gathered_and_matches_its_samples():
    x, y, _ = arrays(12)
    train, val = random_split(TensorDataset(x, y), [0.75, 0.25], rng=2)
    loader = DataLoader(val, 2)
    assert loader._gather is not None
    xs = np.concatenate([b[0].numpy() for b in loader])
    np.testing.assert_array_equal(xs, x[val.indices])
    np.testing.assert_array_equal(val[1][0], x[val.indices[1]])
    with pytest.raises(IndexError, match="indices"):
        Subset(train, [0, 99])


def test_transform_dataset():
    x, y, _ = arrays(6)
    ds = TransformDataset(TensorDataset(x, y), lambda v: v * 2, target_transform=lambda t: t + 1)
    xi, yi = ds[2]
    np.testing.assert_array_equal(xi, x[2] * 2)
    assert yi == y[2] + 1
    with pytest.raises(TypeError, match="callable"):
        TransformDataset(ds, transform=3)


def test_dataset_loader_resumes_mid_epoch_through_json():
    def batches(iterable):
        return [b[1].numpy().copy() for b in iterable]

    x, y, _ = arrays()
    loader = DataLoader(SampleBySample(TensorDataset(x, y)), 4, shuffle=True, rng=9)
    batches(loader)
    epoch = iter(loader)
    next(epoch), next(epoch)
    state = json.loads(json.dumps(loader.state_dict()))
    rest = batches(epoch)
    other = DataLoader(SampleBySample(TensorDataset(x, y)), 4, shuffle=True, rng=0)
    other.load_state_dict(state)
    again = batches(other)
    assert len(again) == len(rest) == 4
    for a, b in zip(again, rest):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("call, exc, match", [
    (lambda x, y: DataLoader(object(), 2), TypeError, "__len__ and __getitem__"),
    (lambda x, y: DataLoader(x, y), TypeError, "batch_size is required"),
    (lambda x, y: DataLoader(x, y, 2, True), TypeError, "by keyword"),
    (lambda x, y: DataLoader(TensorDataset(x, y), 2, batch_size=3), TypeError, "twice"),
    (lambda x, y: DataLoader(x, y, 2, collate_fn=list), TypeError, "TensorDataset"),
    (lambda x, y: DataLoader(TensorDataset(x, y), 2, collate_fn=3), TypeError, "callable"),
    (lambda x, y: DataLoader(TensorDataset(x, y), 0), ValueError, "positive"),
])
def test_bad_loader_arguments_are_named(call, exc, match):
    x, y, _ = arrays(4)
    with pytest.raises(exc, match=match):
        call(x, y)


def test_keyword_y_and_default_batch_size():
    x, y, _ = arrays(3)
    assert len(list(DataLoader(x, y=y, batch_size=2))) == 2
    assert len(DataLoader(TensorDataset(x))) == 3
    (xb,) = next(iter(DataLoader(TensorDataset(x))))
    assert xb.shape == (1, 4)


def test_fashion_mnist_hands_back_datasets_with_an_optional_transform():
    from tinygrad_mlp.data import CLASSES, FashionMNIST
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(6, 28, 28), dtype=np.uint8)
    labels = np.arange(6, dtype=np.int64)
    d = FashionMNIST(images, labels, images[:2], labels[:2], CLASSES)
    train, test = d.datasets()
    assert isinstance(train, TensorDataset) and len(train) == 6 and len(test) == 2
    x0, y0 = train[1]
    assert x0.dtype == np.float32 and x0.shape == (784,) and y0 == 1
    np.testing.assert_array_equal(x0 * 255, images[1].reshape(-1).astype(np.float32))
    train_t, _ = d.datasets(transform=lambda img: img[::2, ::2].astype(np.float32) / 255)
    xt, yt = train_t[1]
    assert xt.shape == (14, 14) and yt == 1
    xb, yb = next(iter(DataLoader(train_t, 4)))
    assert xb.shape == (4, 14, 14) and yb.dtype == np.int64
