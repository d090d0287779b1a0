"""Floor 4 (nn.init): fill a tensor in place with PyTorch's initialisation schemes.

Each function writes into the tensor's existing array (the same object, dtype and memory layout,
so a Linear weight stays column-major), records nothing, and returns the tensor. Random ones draw
from ``generator=`` (or its alias ``rng=``): a ``numpy.random.Generator``, an int seed, or None for
the library's default generator (``tg.manual_seed``). Gains, fans and bounds are PyTorch's.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from .._random import resolve_rng
from ..autograd import bump_version
from ..tensor import Tensor

__all__ = ["calculate_gain", "uniform_", "normal_", "constant_", "zeros_", "ones_", "eye_",
           "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_"]

_LINEAR_GAIN = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
                "conv_transpose2d", "conv_transpose3d", "sigmoid")


def calculate_gain(nonlinearity: str, param=None) -> float:
    """The recommended gain for a nonlinearity: 1 for linear/sigmoid, 5/3 for tanh, √2 for relu,
    √(2/(1 + slope²)) for leaky_relu (slope ``param``, default 0.01), 3/4 for selu."""
    if nonlinearity in _LINEAR_GAIN:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, numbers.Real) and not isinstance(param, bool):
            slope = float(param)
        else:
            raise ValueError(f"calculate_gain: negative_slope {param!r} is not a valid number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}; expected one of "
                     f"{_LINEAR_GAIN + ('tanh', 'relu', 'leaky_relu', 'selu')}")


def _target(tensor, fn: str) -> np.ndarray:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"init.{fn}: expected a Tensor or Parameter; got {type(tensor).__name__}")
    if tensor.data.dtype.kind != "f":
        raise TypeError(f"init.{fn}: can only fill floating-point tensors; got dtype "
                        f"{tensor.data.dtype}")
    if not tensor.data.flags.writeable:
        raise ValueError(f"init.{fn}: the tensor's array is read-only")
    return tensor.data


def _generator(generator, rng, fn: str) -> np.random.Generator:
    if generator is not None and rng is not None:
        raise TypeError(f"init.{fn}: pass generator= or rng= (the same thing), not both")
    return resolve_rng(generator if generator is not None else rng, f"init.{fn}")


def _write(tensor: Tensor, values) -> Tensor:
    # np.copyto writes into the existing array: identity, dtype and layout stay.
    np.copyto(tensor.data, values, casting="unsafe")
    bump_version(tensor)  # a graph that saved the old values must refuse to backpropagate
    return tensor


def _fans(shape, fn: str):
    if len(shape) < 2:
        raise ValueError(f"init.{fn}: fan in and fan out need a tensor with at least 2 "
                         f"dimensions; got shape {shape}")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def _fan(shape, mode: str, fn: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"init.{fn}: mode must be 'fan_in' or 'fan_out'; got {mode!r}")
    fan_in, fan_out = _fans(shape, fn)
    return fan_in if mode == "fan_in" else fan_out


def uniform_(tensor, a: float = 0.0, b: float = 1.0, generator=None, *, rng=None):
    """Values drawn uniformly from [a, b)."""
    data = _target(tensor, "uniform_")
    if not a <= b:
        raise ValueError(f"init.uniform_: need a <= b; got a={a}, b={b}")
    return _write(tensor, _generator(generator, rng, "uniform_").uniform(a, b, data.shape))


def normal_(tensor, mean: float = 0.0, std: float = 1.0, generator=None, *, rng=None):
    """Values drawn from the normal distribution N(mean, std²)."""
    data = _target(tensor, "normal_")
    if std < 0:
        raise ValueError(f"init.normal_: std must be >= 0; got {std}")
    return _write(tensor, _generator(generator, rng, "normal_").normal(mean, std, data.shape))


def constant_(tensor, val: float):
    _target(tensor, "constant_")
    return _write(tensor, val)


def zeros_(tensor):
    _target(tensor, "zeros_")
    return _write(tensor, 0)


def ones_(tensor):
    _target(tensor, "ones_")
    return _write(tensor, 1)


def eye_(tensor):
    """The identity matrix on a 2-D tensor (ones on the diagonal of a rectangular one)."""
    data = _target(tensor, "eye_")
    if data.ndim != 2:
        raise ValueError(f"init.eye_: only 2-D tensors are supported; got shape {data.shape}")
    return _write(tensor, np.eye(*data.shape))


def xavier_uniform_(tensor, gain: float = 1.0, generator=None, *, rng=None):
    """Glorot uniform: U(-a, a) with a = gain·√(6/(fan_in + fan_out))."""
    data = _target(tensor, "xavier_uniform_")
    if data.size == 0:
        return tensor
    fan_in, fan_out = _fans(data.shape, "xavier_uniform_")
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    gen = _generator(generator, rng, "xavier_uniform_")
    return _write(tensor, gen.uniform(-bound, bound, data.shape))


def xavier_normal_(tensor, gain: float = 1.0, generator=None, *, rng=None):
    """Glorot normal: N(0, std²) with std = gain·√(2/(fan_in + fan_out))."""
    data = _target(tensor, "xavier_normal_")
    if data.size == 0:
        return tensor
    fan_in, fan_out = _fans(data.shape, "xavier_normal_")
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return _write(tensor, _generator(generator, rng, "xavier_normal_").normal(0, std, data.shape))


def kaiming_uniform_(tensor, a: float = 0.0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu", generator=None, *, rng=None):
    """He uniform: U(-b, b) with b = gain·√(3/fan), gain = ``calculate_gain(nonlinearity, a)``
    and fan from ``mode``. (``a=√5`` gives Linear's default bound 1/√in_features.)"""
    data = _target(tensor, "kaiming_uniform_")
    if data.size == 0:  # nothing to fill (and a fan of 0)
        return tensor
    fan = _fan(data.shape, mode, "kaiming_uniform_")
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / fan)
    gen = _generator(generator, rng, "kaiming_uniform_")
    return _write(tensor, gen.uniform(-bound, bound, data.shape))


def kaiming_normal_(tensor, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu", generator=None, *, rng=None):
    """He normal: N(0, std²) with std = gain/√fan."""
    data = _target(tensor, "kaiming_normal_")
    if data.size == 0:
        return tensor
    fan = _fan(data.shape, mode, "kaiming_normal_")
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return _write(tensor, _generator(generator, rng, "kaiming_normal_").normal(0, std, data.shape))
