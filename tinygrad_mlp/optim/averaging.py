"""Floor 4 (optim.averaging): ``EMA``, an exponential moving average of a model's weights.

The average lives in arrays beside the model; ``average_parameters()`` swaps it into the model
for evaluation and swaps the trained weights back afterwards, so one model serves both.
"""
from __future__ import annotations

import contextlib
import math

import numpy as np

from ..autograd import bump_version, replay_overrides, replayed

__all__ = ["EMA"]


class EMA:
    """``EMA(model, decay=0.999, use_buffers=False)``: after each ``update()``::

        average = decay * average + (1 - decay) * weight

    (PyTorch's ``AveragedModel`` with ``get_ema_multi_avg_fn(decay)``); the first ``update()``
    copies the weights. Call ``update()`` after each ``optimizer.step()``.
    ``use_buffers=True`` averages floating-point buffers (``BatchNorm1d``'s running statistics)
    too; otherwise the model's own buffers are used with the averaged weights.

    ``with ema.average_parameters(): evaluate(model, ...)`` evaluates with the averaged weights
    and restores the trained ones on leaving (also on an exception); ``copy_to()`` writes the
    average into the model for good. ``state_dict()``/``load_state_dict()`` save and restore it.
    """

    def __init__(self, model, decay: float = 0.999, use_buffers: bool = False):
        if not (hasattr(model, "named_parameters") and callable(model.named_parameters)):
            raise TypeError(f"EMA: expected a Module (with named_parameters()); got "
                            f"{type(model).__name__}")
        if isinstance(decay, bool) or not isinstance(decay, (int, float)) \
                or not math.isfinite(decay) or not 0.0 <= decay <= 1.0:
            raise ValueError(f"EMA: decay must be a number in [0, 1]; got {decay!r}")
        self.model = model
        self.decay = float(decay)
        self.use_buffers = bool(use_buffers)
        self.num_updates = 0
        self._names, self._tensors = [], []
        for name, p in model.named_parameters():
            self._names.append(name)
            self._tensors.append(p)
        if self.use_buffers:
            for name, b in model.named_buffers():
                if b.dtype.kind == "f":
                    self._names.append(name)
                    self._tensors.append(b)
        if not self._tensors:
            raise ValueError("EMA: the model has no parameters to average")
        # np.array(..., order="K") keeps each weight's memory layout (Linear's is column-major).
        self.average = [np.array(t.data, copy=True, order="K") for t in self._tensors]
        self._scratch = None
        self._swapped = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        replay_overrides(cls, "update")

    @replayed
    def update(self):
        """Move the average towards the model's current weights (in place, no allocation)."""
        w = 1.0 - self.decay if self.num_updates else 1.0
        for name, avg, t in zip(self._names, self.average, self._tensors):
            data = t.data
            if data.shape != avg.shape or data.dtype != avg.dtype:
                raise ValueError(f"EMA.update: {name} is now {data.shape} {data.dtype}; the "
                                 f"average is {avg.shape} {avg.dtype}")
            diff = np.subtract(data, avg, out=self._buffer(avg))
            diff *= w
            avg += diff
        self.num_updates += 1

    def _buffer(self, like: np.ndarray) -> np.ndarray:
        need = max(a.size for a in self.average)
        if self._scratch is None or self._scratch.dtype != like.dtype:
            self._scratch = np.empty(need, like.dtype)
        flat = self._scratch[:like.size]
        if like.flags.f_contiguous and not like.flags.c_contiguous:
            return flat.reshape(like.shape[::-1]).T
        return flat.reshape(like.shape)

    @contextlib.contextmanager
    def average_parameters(self):
        """Swap the averaged weights into the model for the ``with`` block, then back."""
        if self._swapped:
            raise RuntimeError("EMA.average_parameters: already inside average_parameters()")
        trained = [np.array(t.data, copy=True, order="K") for t in self._tensors]
        self._write(self.average)
        self._swapped = True
        try:
            yield self.model
        finally:
            self._write(trained)
            self._swapped = False

    def copy_to(self):
        """Write the averaged weights into the model (for good)."""
        self._write(self.average)

    def _write(self, arrays):
        # In place, and counted as an in-place change: a graph recorded with the weights found
        # here must refuse to backpropagate rather than use the ones written.
        for t, arr in zip(self._tensors, arrays):
            np.copyto(t.data, arr)
            bump_version(t)

    def state_dict(self) -> dict:
        """``{"decay", "num_updates", "use_buffers", "average": {name: array}}`` (copies)."""
        return {"decay": self.decay, "num_updates": self.num_updates,
                "use_buffers": self.use_buffers,
                "average": {n: a.copy() for n, a in zip(self._names, self.average)}}

    def load_state_dict(self, state_dict: dict):
        """Restore ``state_dict()`` output, checked against the model first."""
        missing = {"decay", "num_updates", "use_buffers", "average"} - set(state_dict)
        if missing:
            raise ValueError(f"EMA.load_state_dict: missing keys {sorted(missing)}")
        average = dict(state_dict["average"])
        if sorted(average) != sorted(self._names) \
                or bool(state_dict["use_buffers"]) != self.use_buffers:
            raise ValueError(f"EMA.load_state_dict: the state averages {sorted(average)}, this "
                             f"EMA {sorted(self._names)}")
        for name, mine in zip(self._names, self.average):
            arr = np.asarray(average[name])
            if arr.shape != mine.shape:
                raise ValueError(f"EMA.load_state_dict: {name} has shape {arr.shape}; the "
                                 f"model's has {mine.shape}")
        for name, mine in zip(self._names, self.average):
            np.copyto(mine, np.asarray(average[name]))
        self.decay = float(state_dict["decay"])
        self.num_updates = int(state_dict["num_updates"])

    def __repr__(self):
        return (f"EMA(decay={self.decay}, num_updates={self.num_updates}, "
                f"tensors={len(self._names)})")
