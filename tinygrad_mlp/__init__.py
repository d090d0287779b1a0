"""tinygrad_mlp: a small, fast, readable reverse-mode autograd framework on numpy.

The public API at the top level: ``Tensor``, gradient mode (``no_grad``, ``enable_grad``), ``grad``,
the module-level tensor functions, and ``gradcheck``/``gradgradcheck``.
"""
from ._random import get_rng_state, manual_seed, set_rng_state
from .autograd import enable_grad, grad, is_grad_enabled, no_grad, set_grad_enabled
from .tensor import (Tensor, arange, as_tensor, cat, concatenate, eye, full, maximum, minimum,
                     ones, ones_like, rand, randn, stack, where, zeros, zeros_like)
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from . import functional, nn, optim
from .serialization import load, save
from .jit import JitWarning, jit

import sys as _sys
import types as _types

import numpy as _np

from .tensor import tensor  # the factory; it replaces the submodule's name on the package


class _Package(_types.ModuleType):
    # ``tg.tensor`` is the factory, as ``torch.tensor``, and ``tg.jit`` the decorator. Python
    # binds a submodule to its package's attribute when it is (re)loaded; keep those there.
    def __setattr__(self, name, value):
        if name in ("tensor", "jit") and isinstance(value, _types.ModuleType):
            return
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Package

float32 = _np.float32
float64 = _np.float64
int64 = _np.int64

__version__ = "0.1.0"

# Subpackages loaded on first use, so ``import tinygrad_mlp as tg`` is enough for ``tg.data``,
# ``tg.viz`` ... and stays fast (viz and onnx also need their optional extras only when used).
_LAZY_SUBPACKAGES = ("data", "training", "viz", "onnx")


def __getattr__(name):
    if name in _LAZY_SUBPACKAGES:
        import importlib
        return importlib.import_module(f"{__name__}.{name}")  # also binds it on this module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY_SUBPACKAGES))
