"""Floor 5 (data): mini-batches, a train/validation split, and image preprocessing.

Imports numpy; ``Tensor`` (floor 2) is imported inside ``DataLoader.__iter__`` only, so the data
package can be imported, and its preprocessing used, without the core. Datasets are in
``dataset.py``.
"""
from __future__ import annotations

import copy
import operator

import numpy as np

from .._random import resolve_rng

__all__ = ["DataLoader", "train_val_split", "to_float", "fit_normalization", "normalize",
           "standardize_per_image"]


def _check_pair(x, y, who: str):
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim == 0 or y.ndim == 0:
        raise ValueError(f"{who}: x and y must have a first (sample) axis, got shapes {x.shape} "
                         f"and {y.shape}")
    if len(x) != len(y):
        raise ValueError(f"{who}: x and y must have the same length, got {len(x)} samples in x "
                         f"(shape {x.shape}) and {len(y)} in y (shape {y.shape})")
    return x, y


_ARRAY_FORM_HINT = ("pass DataLoader(x, y, batch_size, ...) or DataLoader(dataset, batch_size, "
                    "...); shuffle=, drop_last=, rng= and collate_fn= by keyword")


def _batch_size(value) -> int:
    if isinstance(value, bool):
        raise TypeError("DataLoader: batch_size must be a positive int, got a bool")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"DataLoader: batch_size must be a positive int, got "
                        f"{type(value).__name__} {value!r}") from None
    if value <= 0:
        raise ValueError(f"DataLoader: batch_size must be a positive int, got {value}")
    return value


def _is_int(value) -> bool:
    try:
        operator.index(value)
    except TypeError:
        return False
    return not isinstance(value, bool)


class DataLoader:
    """Iterate over a dataset in mini-batches of ``Tensor``s.

    Two forms:

    * ``DataLoader(dataset, batch_size=1, *, shuffle=False, drop_last=False, rng=None,
      collate_fn=None)`` over any dataset (``__len__`` and ``__getitem__``): each batch is
      ``collate_fn(list of samples)``, by default ``default_collate`` (a tuple of Tensors for
      tuple samples, dtypes kept). A ``TensorDataset`` (or a ``Subset`` of one) without a
      ``collate_fn`` is gathered a whole batch at a time, one indexing per array.
    * ``DataLoader(x, y, batch_size, *, shuffle=False, drop_last=False, rng=None)``, the array
      form: ``x`` floating point becomes contiguous float32 once, here (use ``to_float`` on raw
      images); ``y`` integer labels become int64, floating-point targets float32; batches are
      pairs of Tensors ``(b, *x.shape[1:])`` and ``(b, *y.shape[1:])``.

    Every batch owns its memory, so changing a batch never changes the dataset.

    With ``shuffle=True`` every epoch (every ``iter()``) draws a new order from the loader's
    ``numpy.random.Generator``: ``rng`` is an int seed, a Generator (used, not copied), or None
    for the library's default generator (``tg.manual_seed``). ``state_dict()``/
    ``load_state_dict()`` save and restore that generator and the position within an epoch, as
    JSON-serialisable data, so a run resumes exactly, even mid-epoch. One iteration at a time is
    tracked; nested iteration over the same loader is not resumable.
    """

    def __init__(self, dataset, *args, y=None, batch_size=None, shuffle: bool = False,
                 drop_last: bool = False, rng=None, collate_fn=None):
        from .dataset import TensorDataset, _check_dataset, batch_gatherer, default_collate

        array_form = y is not None or (bool(args) and not _is_int(args[0]))
        names = ("y", "batch_size") if array_form and y is None else ("batch_size",)
        if len(args) > len(names):
            raise TypeError(f"DataLoader: too many positional arguments; {_ARRAY_FORM_HINT}")
        given = dict(zip(names, args))
        if "batch_size" in given and batch_size is not None:
            raise TypeError("DataLoader: batch_size given twice (by position and by keyword)")
        batch_size = given.get("batch_size", batch_size)
        if array_form:
            if collate_fn is not None:
                raise TypeError("DataLoader: collate_fn applies to the dataset form; wrap the "
                                "arrays as TensorDataset(x, y) to use one")
            if batch_size is None:
                raise TypeError("DataLoader(x, y, batch_size): batch_size is required")
            x, y = _check_pair(dataset, given.get("y", y), "DataLoader")
            if x.dtype.kind != "f":
                raise TypeError(f"DataLoader: x must be floating point, got {x.dtype}; convert "
                                f"raw images with to_float() first")
            if y.dtype.kind not in "iuf":
                raise TypeError(f"DataLoader: y must hold integer labels or floating-point "
                                f"targets, got {y.dtype}")
            # Converted once so each batch is a single gather with no dtype conversion.
            self.x = np.ascontiguousarray(x, dtype=np.float32)
            self.y = np.ascontiguousarray(y, dtype=np.float32 if y.dtype.kind == "f"
                                          else np.int64)
            dataset = TensorDataset(self.x, self.y)
        else:
            _check_dataset(dataset, "DataLoader")
            if collate_fn is not None and not callable(collate_fn):
                raise TypeError(f"DataLoader: collate_fn must be callable; got "
                                f"{type(collate_fn).__name__}")
        self.dataset = dataset
        self.batch_size = _batch_size(1 if batch_size is None else batch_size)
        self.collate_fn = collate_fn
        self._gather = batch_gatherer(dataset) if collate_fn is None else None
        self._collate = collate_fn or default_collate
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.rng = resolve_rng(rng, "DataLoader")
        self._epoch_rng_state = None  # generator state before this epoch's order was drawn
        self._position = 0            # batches of the current epoch already yielded
        self._resume = None           # (rng state, position) set by load_state_dict

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        from ..tensor import Tensor

        if self._resume is not None:
            start_state, start = self._resume
            self._resume = None
            if start_state is not None:
                self.rng.bit_generator.state = copy.deepcopy(start_state)
        else:
            start_state, start = self.rng.bit_generator.state, 0
        n = len(self.dataset)
        order = self.rng.permutation(n) if self.shuffle else None
        self._epoch_rng_state, self._position = start_state, start
        bs, gather = self.batch_size, self._gather
        for b in range(start, len(self)):
            lo = b * bs
            index = slice(lo, min(lo + bs, n)) if order is None else order[lo:lo + bs]
            if gather is not None:
                batch = gather(index)
                batch = tuple(Tensor(a) for a in batch) if isinstance(batch, tuple) \
                    else Tensor(batch)
            else:
                dataset = self.dataset
                idx = range(index.start, index.stop) if order is None else index.tolist()
                batch = self._collate([dataset[i] for i in idx])
            self._position = b + 1
            yield batch

    def state_dict(self) -> dict:
        """The RNG state (None when not shuffling) and position in the epoch, as
        JSON-serialisable data."""
        in_epoch = self._epoch_rng_state is not None and 0 < self._position < len(self)
        if self._resume is not None:
            state, position = self._resume
        elif in_epoch:
            # Resuming re-draws this epoch's order from the state it was drawn from.
            state, position = self._epoch_rng_state, self._position
        else:
            state, position = self.rng.bit_generator.state, 0
        if not self.shuffle:  # no order is drawn: the generator is not part of this loader's state
            state = None
        return {"rng_state": copy.deepcopy(state), "position": position,
                "num_samples": len(self.dataset), "batch_size": self.batch_size,
                "shuffle": self.shuffle, "drop_last": self.drop_last}

    def load_state_dict(self, state: dict) -> None:
        """Restore ``state_dict()`` output; the next ``iter()`` continues from that point."""
        missing = {"rng_state", "position", "num_samples", "batch_size", "shuffle",
                   "drop_last"} - set(state)
        if missing:
            raise KeyError(f"DataLoader.load_state_dict: missing keys {sorted(missing)}")
        for key, mine in (("num_samples", len(self.dataset)), ("batch_size", self.batch_size),
                          ("shuffle", self.shuffle), ("drop_last", self.drop_last)):
            if state[key] != mine:
                raise ValueError(f"DataLoader.load_state_dict: state has {key}={state[key]}, "
                                 f"this loader has {key}={mine}; the batches would differ")
        position = state["position"]
        if not isinstance(position, int) or not 0 <= position <= len(self):
            raise ValueError(f"DataLoader.load_state_dict: position must be an int in "
                             f"0..{len(self)}, got {position!r}")
        rng_state = state["rng_state"]
        if not self.shuffle:  # nothing to restore but the position (older states carry a state)
            self._resume = (None, position)
            self._epoch_rng_state, self._position = None, 0
            return
        kind = type(self.rng.bit_generator).__name__
        if not isinstance(rng_state, dict) or rng_state.get("bit_generator") != kind:
            got = rng_state.get("bit_generator") if isinstance(rng_state, dict) else rng_state
            raise ValueError(f"DataLoader.load_state_dict: rng_state is for bit generator "
                             f"{got!r}, this loader uses {kind!r}")
        self.rng.bit_generator.state = copy.deepcopy(rng_state)  # validates it now, not later
        self._resume = (copy.deepcopy(rng_state), position)
        self._epoch_rng_state, self._position = None, 0

    def __repr__(self) -> str:
        return (f"DataLoader(num_samples={len(self.dataset)}, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, drop_last={self.drop_last})")


def train_val_split(x, y, val_fraction: float, rng=None):
    """Shuffle by ``rng`` and split off ``val_fraction`` of the samples for validation.

    Returns ``(x_train, y_train, x_val, y_val)``; the validation set has
    ``round(len(x) * val_fraction)`` samples and both sets at least one. Not stratified.
    """
    x, y = _check_pair(x, y, "train_val_split")
    if not isinstance(val_fraction, (int, float, np.floating, np.integer)) \
            or isinstance(val_fraction, bool) or not 0 < val_fraction < 1:
        raise ValueError(f"train_val_split: val_fraction must be a number with "
                         f"0 < val_fraction < 1, got {val_fraction!r}")
    n = len(x)
    n_val = int(round(n * float(val_fraction)))
    if not 0 < n_val < n:
        raise ValueError(f"train_val_split: {n} samples with val_fraction={val_fraction} give "
                         f"{n_val} validation and {n - n_val} training samples; both need at "
                         f"least one")
    order = resolve_rng(rng, "train_val_split").permutation(n)
    val, train = order[:n_val], order[n_val:]
    return x[train], y[train], x[val], y[val]


def to_float(images) -> np.ndarray:
    """uint8 images ``(N, ...)`` to float32 in [0, 1], flattened to ``(N, features)``."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise TypeError(f"to_float: expected uint8 images (0..255), got {images.dtype}; "
                        f"float data is already converted")
    if images.ndim < 2:
        raise ValueError(f"to_float: expected images of shape (N, ...) with N samples, got "
                         f"{images.shape}")
    out = images.reshape(len(images), -1).astype(np.float32)
    # Divide rather than multiply by 1/255: 255 maps to exactly 1.0.
    out /= np.float32(255.0)
    return out


def _check_float(x, who: str) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype.kind != "f":
        raise TypeError(f"{who}: expected floating-point data, got {x.dtype}; convert raw images "
                        f"with to_float() first")
    return x


def fit_normalization(x_train) -> tuple:
    """``(mean, std)`` of all values of the training set, as Python floats."""
    x = _check_float(x_train, "fit_normalization")
    if x.size == 0:
        raise ValueError("fit_normalization: the training set is empty")
    # Accumulate in float64: a float32 sum over 47 million values loses digits.
    mean = float(x.mean(dtype=np.float64))
    std = float(x.std(dtype=np.float64))
    if not std > 0:
        raise ValueError(f"fit_normalization: the training set is constant (std={std}); "
                         f"normalising would divide by zero")
    return mean, std


def _finite_scalar(value, name: str) -> float:
    try:
        result = float(value) if np.ndim(value) == 0 else None
    except (TypeError, ValueError):
        result = None
    if result is None or not np.isfinite(result):
        raise ValueError(f"normalize: {name} must be a finite scalar, got {value!r}")
    return result


def normalize(x, mean, std) -> np.ndarray:
    """``(x - mean) / std`` as float32 with scalar ``mean``, ``std`` from ``fit_normalization``."""
    x = _check_float(x, "normalize")
    mean, std = _finite_scalar(mean, "mean"), _finite_scalar(std, "std")
    if not std > 0:
        raise ValueError(f"normalize: std must be positive, got {std}")
    out = np.subtract(x, np.float32(mean), dtype=np.float32)
    out /= np.float32(std)
    return out


def standardize_per_image(x) -> np.ndarray:
    """Give each sample (row) zero mean and unit standard deviation, as float32.

    The standard deviation is floored at ``1/sqrt(features)``, as TensorFlow's
    ``per_image_standardization`` does, so a constant image becomes zeros instead of NaN.
    """
    x = _check_float(x, "standardize_per_image")
    if x.ndim < 2:
        raise ValueError(f"standardize_per_image: expected samples of shape (N, ...), got "
                         f"{x.shape}")
    flat = x.reshape(len(x), -1)
    features = flat.shape[1]
    # Statistics per row in float64 for accuracy; the (N, features) arithmetic stays float32 so
    # the full training set never gets a float64 copy.
    mean = flat.mean(axis=1, keepdims=True, dtype=np.float64)
    std = flat.std(axis=1, keepdims=True, dtype=np.float64)
    std = np.maximum(std, 1.0 / np.sqrt(max(features, 1)))
    out = np.subtract(flat, mean.astype(np.float32), dtype=np.float32)
    out /= std.astype(np.float32)
    return out.reshape(x.shape)
