"""Floor 2 (tensor, in-place half): the operations that change a tensor's own data.

``Tensor`` inherits these. PyTorch's rules: an in-place change keeps the object (so a module, an
optimiser and the caller all see it) and bumps the tensor's version, shared with every view of its
memory; backward refuses to use a saved tensor changed after it was saved. While gradients are
recorded, a tensor that requires grad cannot be changed in place: for a leaf (a parameter) the
change belongs in ``no_grad()``; for an intermediate result, ``x = x + y`` builds the new tensor.
``.data`` stays the escape hatch: a plain ndarray, no checks.
"""
from __future__ import annotations

import numpy as np

from ._conventions import clamp_bounds
from .autograd import _GradMode, bump_version


class InPlaceOps:
    """``+=``, ``-=``, ``*=``, ``/=``, ``t[idx] = v`` and the ``*_`` methods."""

    __slots__ = ()

    def _check_writable(self, op: str, value=None):
        if self.requires_grad and _GradMode.enabled:
            if self._ctx is None:
                raise RuntimeError(
                    f"{op}: in-place change of a leaf tensor that requires grad (shape "
                    f"{self.shape}) while gradients are recorded; do the update inside "
                    f"`with tg.no_grad():` (as an optimiser step does)")
            raise RuntimeError(
                f"{op}: in-place change of a tensor computed in a recorded graph (shape "
                f"{self.shape}); write x = x + y (a new tensor) instead")
        if self._ctx is not None:
            raise RuntimeError(
                f"{op}: in-place change of a tensor computed in a recorded graph (shape "
                f"{self.shape}), which its backward may still read; write x = x + y, or change "
                f"x.detach().clone()")
        if _GradMode.enabled and getattr(value, "requires_grad", False):
            raise RuntimeError(
                f"{op}: the value requires grad, and writing it into this tensor in place would "
                f"not be recorded; write x = x + y (a new tensor) to keep the gradient")

    def _write(self, op: str, value, write):
        """Check, then ``write(data, value_array)``, then bump the version."""
        self._check_writable(op, value)
        data = self.data
        arr = value.data if isinstance(value, InPlaceOps) else value
        try:
            write(data, arr)
        except (TypeError, ValueError, IndexError) as e:
            raise _inplace_error(op, self, arr, e) from None
        bump_version(self)
        return self

    def add_(self, other):
        return self._write("add_", other, lambda d, v: np.add(d, v, out=d))

    def sub_(self, other):
        return self._write("sub_", other, lambda d, v: np.subtract(d, v, out=d))

    def mul_(self, other):
        return self._write("mul_", other, lambda d, v: np.multiply(d, v, out=d))

    def div_(self, other):
        return self._write("div_", other, lambda d, v: np.divide(d, v, out=d))

    def __iadd__(self, other):
        return self._write("+=", other, lambda d, v: np.add(d, v, out=d))

    def __isub__(self, other):
        return self._write("-=", other, lambda d, v: np.subtract(d, v, out=d))

    def __imul__(self, other):
        return self._write("*=", other, lambda d, v: np.multiply(d, v, out=d))

    def __itruediv__(self, other):
        return self._write("/=", other, lambda d, v: np.divide(d, v, out=d))

    def zero_(self):
        return self._write("zero_", 0, lambda d, v: d.fill(v))

    def fill_(self, value):
        return self._write("fill_", value, lambda d, v: np.copyto(d, v, casting="same_kind"))

    def copy_(self, src):
        """Copy ``src`` (broadcast to this shape) into this tensor's memory."""
        return self._write("copy_", src, lambda d, v: np.copyto(d, v, casting="same_kind"))

    def clamp_(self, min=None, max=None):
        """In place, with ``clamp``'s checks (number bounds, ``min <= max``)."""
        bounds = clamp_bounds(min, max, "clamp_")
        low, high = bounds["low"], bounds["high"]
        return self._write("clamp_", np.asarray(low if high is None else high),
                           lambda d, v: np.clip(d, low, high, out=d))

    def __setitem__(self, index, value):
        if isinstance(index, InPlaceOps):
            index = index.data
        elif isinstance(index, tuple):
            index = tuple(i.data if isinstance(i, InPlaceOps) else i for i in index)

        def write(d, v):
            try:
                d[index] = v
            except ValueError as e:  # name the shape of the part written, not the whole tensor
                if not d.flags.writeable:
                    raise
                region = np.shape(d[index])
                raise ValueError(f"setitem: a value of shape {np.shape(v)} cannot be written into "
                                 f"t[{index!r}], which has shape {region} (the value must "
                                 f"broadcast to it): {e}") from None
        self._write("setitem", value, write)


def _inplace_error(op: str, t, value, e: Exception) -> Exception:
    """The numpy error of an in-place write, said in the tensor's terms."""
    msg = str(e)
    if msg.startswith(f"{op}: "):  # already said in the tensor's terms
        return e
    if "read-only" in msg:
        return ValueError(f"{op}: this tensor's memory is read-only (a broadcast view, e.g. from "
                          f"expand or broadcast_to); clone() it first")
    if isinstance(e, IndexError):
        return IndexError(f"{op}: index is invalid for a tensor of shape {t.shape}: {msg}")
    shape, dtype = np.shape(value), getattr(value, "dtype", type(value).__name__)
    if isinstance(e, TypeError):  # numpy's casting refusal (same_kind)
        return TypeError(f"{op}: the result (from a value of dtype {dtype}) cannot be stored in "
                         f"this {t.dtype} tensor in place; build a new tensor (x = x + y style) "
                         f"or convert with .astype()")
    return ValueError(f"{op}: a value of shape {shape} cannot be written in place into a tensor "
                      f"of shape {t.shape} (it must broadcast to that shape): {msg}")
