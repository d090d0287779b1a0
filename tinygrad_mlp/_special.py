"""Floor 1 (special functions): ``erf`` on ndarrays, which numpy lacks, for the ``Erf`` op.

Imports numpy and the standard library only. The approximation is fitted at import to
``math.erf``/``math.erfc`` (a few hundred calls), so no unexplained constants live here.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["erf_array"]

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_ERF_SPLIT, _ERF_FAR = 1.0, 6.0  # beyond 6, erfc(x) < 3e-17: erf is 1 in float64


def _chebyshev_fit(f, degree: int) -> np.ndarray:
    """Chebyshev coefficients of ``f`` on [-1, 1], interpolated at the ``degree + 1`` Chebyshev
    points of the first kind (nearly minimax for a smooth ``f``).

    Computed with exactly reduced angles and ``math.fsum``: numpy's ``chebinterpolate`` leaves
    ~5e-15 of noise in the coefficients, more than float64 erf can afford."""
    n = degree + 1
    values = [f(_cos_pi(2 * j + 1, 2 * n)) for j in range(n)]
    return np.array([math.fsum(v * _cos_pi(k * (2 * j + 1), 2 * n) for j, v in enumerate(values))
                     * (2 - (k == 0)) / n for k in range(n)])


def _cos_pi(m: int, d: int) -> float:
    """cos(pi * m / d), the angle reduced with integers to [0, pi/2] before rounding."""
    m %= 2 * d
    if m > d:
        m = 2 * d - m  # cos is even around 0 and 2pi
    sign = 1.0
    if 2 * m > d:
        m, sign = d - m, -1.0  # cos(pi - a) = -cos(a)
    return sign * math.cos(math.pi * m / d)


def _near(s):  # erf(x)/x as a function of s = 2x²/split² - 1, for |x| < split
    x = math.sqrt((s + 1) / 2) * _ERF_SPLIT
    return math.erf(x) / x if x else _TWO_OVER_SQRT_PI


def _far(s):  # erfc(x)·exp(x²) as a function of s, with 1/x mapped linearly onto [-1, 1]
    x = 1.0 / (1 / _ERF_FAR + (s + 1) / 2 * (1 / _ERF_SPLIT - 1 / _ERF_FAR))
    return math.erfc(x) * math.exp(x * x)


def _truncated(coefs: np.ndarray, dtype) -> np.ndarray:
    """The shortest head of a Chebyshev series whose dropped tail is below a quarter of
    ``dtype``'s epsilon (|T_k| <= 1, and both series are O(1)), as power-series coefficients in
    that dtype. (Both series are tame on [-1, 1]: the power coefficients' absolute values sum to
    about 1.1 and 0.5, so Horner's rule in this basis loses nothing to cancellation, measured
    against Clenshaw's recurrence, and it costs two in-place passes per term instead of three.)"""
    tail = np.cumsum(np.abs(coefs[::-1]))[::-1]  # tail[k] = sum of |c_j| for j >= k
    keep = int(np.argmax(tail < np.finfo(dtype).eps / 4)) or len(coefs)
    return _chebyshev_to_power(coefs[:keep]).astype(dtype)


def _chebyshev_to_power(coefs: np.ndarray) -> np.ndarray:
    """Power-series coefficients (lowest first) of ``sum c_k T_k``, by T_{k+1} = 2x·T_k - T_{k-1}
    (numpy.polynomial would do the same, at ~15 ms of import time)."""
    n = len(coefs)
    out = np.zeros(n)
    t_prev, t = np.zeros(n), np.zeros(n)
    t_prev[0] = 1.0  # T_0
    if n > 1:
        t[1] = 1.0  # T_1
    for k, c in enumerate(coefs):
        if k == 0:
            out += c * t_prev
            continue
        out += c * t
        t_next = np.zeros(n)
        t_next[1:] = 2 * t[:-1]
        t_next -= t_prev
        t_prev, t = t, t_next
    return out


# Fitted once at import to the standard library's erf/erfc. Measured against math.erf on 3e5
# points in [-7, 7] and down to 1e-30: within 7e-16 relative in float64 and 1.5e-7 (about one
# unit in the last place) in float32; tests/test_losses.py checks it.
_NEAR64, _FAR64 = _chebyshev_fit(_near, 13), _chebyshev_fit(_far, 22)
_ERF_SERIES = {np.dtype(dt): (_truncated(_NEAR64, dt), _truncated(_FAR64, dt))
               for dt in (np.float32, np.float64)}


def _horner(s: np.ndarray, coefs: np.ndarray) -> np.ndarray:
    """The polynomial ``coefs`` (lowest degree first) at ``s``, in place in one new array."""
    out = np.full_like(s, coefs[-1])
    for c in coefs[-2::-1]:
        out *= s
        out += c
    return out


def erf_array(a: np.ndarray) -> np.ndarray:
    """erf of an ndarray: two fitted series, one for erf(x)/x in x² near 0 and one for
    erfc(x)·exp(x²) in 1/x further out, each cut to the dtype's precision; erf is odd."""
    dtype = a.dtype
    if dtype not in _ERF_SERIES:  # float16 in float32 and back; integers give float32
        out = erf_array(a.astype(np.float32))
        return out.astype(dtype) if dtype.kind == "f" else out
    near_coefs, far_coefs = _ERF_SERIES[dtype]
    mag = np.abs(a)
    out = np.empty_like(a)
    near = mag < _ERF_SPLIT
    x = mag[near]
    out[near] = x * _horner(x * x * (2 / _ERF_SPLIT ** 2) - 1, near_coefs)
    far = ~near
    x = mag[far]
    s = (1 / np.minimum(x, _ERF_FAR) - 1 / _ERF_FAR) * (2 / (1 / _ERF_SPLIT - 1 / _ERF_FAR)) - 1
    with np.errstate(under="ignore", over="ignore"):
        out[far] = 1 - np.exp(-x * x) * _horner(s, far_coefs)
    return np.copysign(out, a)
