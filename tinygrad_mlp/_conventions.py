"""Floor 2 (tensor, conventions): where numpy's and PyTorch's habits meet.

Keyword aliases (``dim=`` for ``axis=``), the ``max``/``min`` result chosen by the keyword, and the
mixed-dtype rule. Kept apart from ``tensor.py`` so the Tensor class reads as its operations.
"""
from __future__ import annotations

import functools
import numbers
from collections import namedtuple

import numpy as np

__all__ = ["accepts_torch_keywords", "variance_convention", "values_or_indices", "promote", "clamp_bounds",
           "is_dtype_name"]


# PyTorch's keyword names and the numpy names they stand for.
_TORCH_KEYWORDS = {"dim": "axis", "keepdim": "keepdims", "start_dim": "start_axis",
                   "end_dim": "end_axis"}


def accepts_torch_keywords(fn):
    """Let ``fn`` (which takes numpy's ``axis=``/``keepdims=``) also take PyTorch's ``dim=``/
    ``keepdim=`` (and ``start_dim=``/``end_dim=`` for ``start_axis``/``end_axis``); both names
    of one argument at once is an error."""
    name = fn.__qualname__.replace("Tensor.", "")

    @functools.wraps(fn)
    def with_torch_keywords(*args, **kwargs):
        if kwargs and not kwargs.keys().isdisjoint(_TORCH_KEYWORDS):
            for torch_name, numpy_name in _TORCH_KEYWORDS.items():
                if torch_name in kwargs:
                    if numpy_name in kwargs:
                        raise TypeError(f"{name}: got both {numpy_name}= (numpy's name) and "
                                        f"{torch_name}= (PyTorch's name) for the same argument; "
                                        f"pass one")
                    kwargs[numpy_name] = kwargs.pop(torch_name)
        return fn(*args, **kwargs)
    return with_torch_keywords


_NUMPY_VARIANCE = ("axis", "keepdims", "ddof")
_TORCH_VARIANCE = ("dim", "keepdim", "correction", "unbiased")


def variance_convention(fn):
    """``var``/``std``: the keyword says the convention, as for ``max``. numpy's ``axis=``/
    ``keepdims=``/``ddof=`` divide by ``n - ddof`` with ``ddof=0`` by default; PyTorch's ``dim=``/
    ``keepdim=``/``correction=``/``unbiased=`` divide by ``n - correction`` with ``correction=1``
    by default (the unbiased estimate), so ``x.var(dim=0)`` equals ``torch.var(x, dim=0)``.
    With no keyword (``x.var()``, ``x.var(0)``) the two habits disagree, and the call is refused
    rather than silently giving one of them."""
    name = fn.__name__

    @functools.wraps(fn)
    def method(self, *args, **kwargs):
        unknown = set(kwargs) - set(_NUMPY_VARIANCE) - set(_TORCH_VARIANCE)
        if unknown:
            raise TypeError(f"{name}: unexpected keyword {sorted(unknown)[0]}=")
        if args or not kwargs:
            raise TypeError(
                f"{name}: say which convention by keyword, numpy's and PyTorch's defaults differ: "
                f"{name}(ddof=0) or {name}(axis=...) divides by n (numpy), {name}(correction=1) "
                f"or {name}(dim=...) by n - 1 (PyTorch's unbiased default)")
        axis, keepdims, ddof = (kwargs.get(k) for k in _NUMPY_VARIANCE)
        dim, keepdim, correction, unbiased = (kwargs.get(k) for k in _TORCH_VARIANCE)
        if not set(kwargs).isdisjoint(_TORCH_VARIANCE):
            for numpy_name, torch_name in zip(_NUMPY_VARIANCE, _TORCH_VARIANCE):
                if numpy_name in kwargs and torch_name in kwargs:
                    raise TypeError(f"{name}: got both {numpy_name}= (numpy's name) and "
                                    f"{torch_name}= (PyTorch's name); pass one")
            if unbiased is not None:
                if correction is not None or ddof is not None:
                    raise TypeError(f"{name}: got unbiased= with correction=/ddof=; pass one")
                correction = 1 if unbiased else 0
            if ddof is None:
                ddof = 1 if correction is None else correction
            axis = dim if "dim" in kwargs else axis
            keepdims = keepdim if "keepdim" in kwargs else keepdims
        return fn(self, axis=axis, keepdims=bool(keepdims), ddof=0 if ddof is None else ddof)
    return method


def values_or_indices(fn):
    """``max``/``min``: the keyword says the convention. ``axis=`` gives the values (numpy);
    ``dim=`` gives PyTorch's ``(values, indices)`` named tuple. A positional axis is refused:
    ``v, i = x.max(1)`` written with PyTorch's habit would otherwise unpack rows of values."""
    name = fn.__name__
    result = namedtuple(name, ("values", "indices"))

    @functools.wraps(fn)
    def method(self, *args, axis=None, keepdims=None, dim=None, keepdim=None):
        if args:
            hint = (f"; for the elementwise {name}imum of two tensors use tg.{name}imum(a, b)"
                    if hasattr(args[0], "requires_grad") else "")
            raise TypeError(f"{name}: give the axis by keyword: {name}(axis={args[0]!r}) returns "
                            f"the values (numpy), {name}(dim={args[0]!r}) returns (values, "
                            f"indices) (PyTorch){hint}")
        if dim is None:
            if keepdims is not None and keepdim is not None:
                raise TypeError(f"{name}: got both keepdims= and keepdim=; pass one")
            keep = keepdim if keepdims is None else keepdims
            return fn(self, axis=axis, keepdims=bool(keep))
        if axis is not None:
            raise TypeError(f"{name}: got both axis= (values only) and dim= (values and "
                            f"indices); pass one")
        if keepdims is not None:
            raise TypeError(f"{name}: with dim= pass keepdim= (PyTorch's name), not keepdims=")
        if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
            raise TypeError(f"{name}: dim= must be one int (it gives values and indices along "
                            f"one axis); got {dim!r}. Use axis= for values over several axes")
        keep = bool(keepdim)
        values = fn(self, axis=dim, keepdims=keep)
        arg = self.argmax if name == "max" else self.argmin
        return result(values, arg(axis=dim, keepdims=keep))
    return method


def promote(a, b):
    """PyTorch's rule for mixed dtypes where numpy's differs: an int or bool tensor meeting a
    float one takes the float's dtype (numpy would widen float32 with int64 to float64)."""
    ka, kb = a.data.dtype.kind, b.data.dtype.kind
    # bool with float already keeps the float dtype in numpy (relu's mask relies on it: no cast)
    if ka == "f" and kb in "iu":
        return a, b.astype(a.data.dtype)
    if kb == "f" and ka in "iu":
        return a.astype(b.data.dtype), b
    return a, b


def clamp_bounds(low, high, op: str) -> dict:
    if low is None and high is None:
        raise ValueError(f"{op}: give min=, max= or both")
    for bound in (low, high):
        if bound is not None and not isinstance(bound, numbers.Real):
            raise TypeError(f"{op}: bounds must be numbers; got {type(bound).__name__} (for "
                            f"tensor bounds use tg.maximum / tg.minimum)")
    if low is not None and high is not None and low > high:
        raise ValueError(f"{op}: min={low} is above max={high}")
    return {"low": low, "high": high}


def is_dtype_name(name: str) -> bool:
    try:
        np.dtype(name)
    except TypeError:
        return False
    return True
