"""Floor 5 (data.dataset): the ``Dataset`` protocol, ``TensorDataset``, ``Subset``,
``TransformDataset``, ``random_split`` and the default way samples become a batch.

A dataset is anything with ``__len__`` and ``__getitem__(i)`` returning one sample (an array, a
number, or a tuple/dict of them). ``TensorDataset`` and ``Subset``s of it can also hand over a
whole batch in one gather per array, which is what ``DataLoader`` uses when it can.
Imports numpy; ``Tensor`` only inside the functions that make one.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from .._random import resolve_rng

__all__ = ["Dataset", "TensorDataset", "Subset", "TransformDataset", "random_split",
           "default_collate"]


class Dataset:
    """Base for map-style datasets: define ``__len__`` and ``__getitem__(index)``. Subclassing is
    optional; ``DataLoader`` accepts any object with both."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __len__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __len__")


def _as_array(a, who: str, i: int) -> np.ndarray:
    from ..tensor import as_array

    arr = as_array(a)
    if arr.ndim == 0:
        raise ValueError(f"{who}: array {i} is a scalar (shape ()); every array needs a first "
                         f"(sample) axis")
    if arr.dtype == object:
        raise TypeError(f"{who}: array {i} has dtype object; expected numbers")
    return arr


class TensorDataset(Dataset):
    """``TensorDataset(*arrays)``: sample ``i`` is ``(arrays[0][i], arrays[1][i], ...)``. The
    arrays (or Tensors) must have the same length; they are kept as given (not copied), with
    their dtypes."""

    def __init__(self, *arrays):
        if not arrays:
            raise ValueError("TensorDataset: give at least one array")
        self.arrays = tuple(_as_array(a, "TensorDataset", i) for i, a in enumerate(arrays))
        lengths = [len(a) for a in self.arrays]
        if len(set(lengths)) > 1:
            shapes = ", ".join(str(a.shape) for a in self.arrays)
            raise ValueError(f"TensorDataset: the arrays must have the same length (first axis); "
                             f"got shapes {shapes}")

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, index):
        return tuple(a[index] for a in self.arrays)

    def _gather(self, index):
        """The batch at ``index`` (a slice or an int array) as a tuple of owned arrays."""
        if isinstance(index, slice):
            return tuple(a[index].copy() for a in self.arrays)
        return tuple(a[index] for a in self.arrays)

    def __repr__(self):
        return f"TensorDataset({', '.join(f'{a.dtype}{list(a.shape)}' for a in self.arrays)})"


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order."""

    def __init__(self, dataset, indices):
        _check_dataset(dataset, "Subset")
        indices = np.asarray(indices)
        if indices.ndim != 1 or (indices.size and indices.dtype.kind not in "iu"):
            raise TypeError(f"Subset: indices must be a 1-D sequence of ints; got shape "
                            f"{indices.shape} dtype {indices.dtype}")
        indices = indices.astype(np.int64)
        n = len(dataset)
        if indices.size and (indices.min() < -n or indices.max() >= n):
            raise IndexError(f"Subset: indices must be in [{-n}, {n}); got "
                             f"{indices.min()}..{indices.max()}")
        self.dataset, self.indices = dataset, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index):
        return self.dataset[int(self.indices[index])]

    def __repr__(self):
        return f"Subset({len(self)} of {self.dataset!r})"


class TransformDataset(Dataset):
    """``dataset`` with ``transform`` applied to each sample's first field (the input) and
    ``target_transform`` to its second (the target), when given."""

    def __init__(self, dataset, transform=None, target_transform=None):
        _check_dataset(dataset, "TransformDataset")
        for name, fn in (("transform", transform), ("target_transform", target_transform)):
            if fn is not None and not callable(fn):
                raise TypeError(f"TransformDataset: {name} must be callable; got "
                                f"{type(fn).__name__}")
        self.dataset, self.transform, self.target_transform = dataset, transform, \
            target_transform

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index):
        sample = self.dataset[index]
        if not isinstance(sample, tuple):
            return self.transform(sample) if self.transform else sample
        first, *rest = sample
        if self.transform is not None:
            first = self.transform(first)
        if self.target_transform is not None and rest:
            rest[0] = self.target_transform(rest[0])
        return (first, *rest)


def _check_dataset(dataset, who: str):
    if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
        raise TypeError(f"{who}: expected a dataset (an object with __len__ and __getitem__); "
                        f"got {type(dataset).__name__}")


def batch_gatherer(dataset):
    """A function ``index -> batch`` that gathers a whole batch at once (one indexing per array),
    or None when ``dataset`` can only be read sample by sample."""
    if isinstance(dataset, TensorDataset):
        return dataset._gather
    if isinstance(dataset, np.ndarray) and dataset.ndim > 0 and dataset.dtype != object:
        return lambda index: dataset[index].copy() if isinstance(index, slice) \
            else dataset[index]
    if isinstance(dataset, Subset):
        inner = batch_gatherer(dataset.dataset)
        if inner is not None:
            return lambda index: inner(dataset.indices[index])
    return None


def _split_lengths(n: int, lengths) -> list:
    try:
        lengths = list(lengths)
    except TypeError:
        raise TypeError(f"random_split: lengths must be a list of ints or fractions; got "
                        f"{lengths!r}") from None
    if not lengths or any(isinstance(x, bool) or not isinstance(x, numbers.Real) for x in lengths):
        raise TypeError(f"random_split: lengths must be a non-empty list of ints or fractions; "
                        f"got {lengths!r}")
    if all(isinstance(x, numbers.Integral) for x in lengths):
        if any(x < 0 for x in lengths) or sum(lengths) != n:
            raise ValueError(f"random_split: lengths {lengths} must be >= 0 and sum to the "
                             f"dataset's length {n}; they sum to {sum(lengths)}")
        return [int(x) for x in lengths]
    if any(not 0 <= x <= 1 for x in lengths) or not math.isclose(sum(lengths), 1.0):
        raise ValueError(f"random_split: fractions {lengths} must be in [0, 1] and sum to 1")
    # PyTorch's rule: floor each share, then hand the remainder out one by one from the first.
    sizes = [int(math.floor(n * x)) for x in lengths]
    for i in range(n - sum(sizes)):
        sizes[i % len(sizes)] += 1
    return sizes


def random_split(dataset, lengths, rng=None) -> list:
    """Split ``dataset`` into ``Subset``s of the given ``lengths`` (ints summing to its length,
    or fractions summing to 1) after a random permutation drawn from ``rng`` (an int seed, a
    Generator, or None for the library's default generator)."""
    _check_dataset(dataset, "random_split")
    sizes = _split_lengths(len(dataset), lengths)
    order = resolve_rng(rng, "random_split").permutation(len(dataset))
    out, start = [], 0
    for size in sizes:
        out.append(Subset(dataset, order[start:start + size]))
        start += size
    return out


def default_collate(samples: list):
    """Stack a list of samples into a batch of Tensors with the samples' structure: arrays and
    Tensors are stacked along a new first axis (keeping their dtype), Python ints become int64,
    floats float32, bools bool; tuples and lists give a tuple, dicts a dict."""
    from ..tensor import Tensor

    first = samples[0]
    if isinstance(first, (tuple, list)):
        if any(not isinstance(s, (tuple, list)) or len(s) != len(first) for s in samples):
            raise ValueError(f"default_collate: samples have different structures (the first has "
                             f"{len(first)} fields)")
        return tuple(default_collate([s[k] for s in samples]) for k in range(len(first)))
    if isinstance(first, dict):
        return {k: default_collate([s[k] for s in samples]) for k in first}
    if isinstance(first, Tensor):
        return Tensor(_stack([s.data for s in samples]))
    if isinstance(first, (np.ndarray, np.generic)):
        return Tensor(_stack(samples))
    if isinstance(first, bool):
        return Tensor(np.array(samples, dtype=bool))
    if isinstance(first, numbers.Integral):
        return Tensor(np.array(samples, dtype=np.int64))
    if isinstance(first, numbers.Real):
        return Tensor(np.array(samples, dtype=np.float32))
    raise TypeError(f"default_collate: cannot batch samples of type {type(first).__name__}; "
                    f"expected arrays, Tensors, numbers, or tuples/dicts of them (or pass a "
                    f"collate_fn)")


def _stack(arrays: list) -> np.ndarray:
    shapes = {np.shape(a) for a in arrays}
    if len(shapes) > 1:
        raise ValueError(f"default_collate: samples in a batch have different shapes "
                         f"{sorted(shapes)}; pass a collate_fn that pads or crops them")
    return np.stack(arrays)
