"""Floor 1 (random): the library-wide default random generator behind ``tg.manual_seed``.

Imports numpy, and ``autograd.replayed`` (a compiled function reseeds at every replay). One ``numpy.random.Generator`` object lives here for the whole process;
``manual_seed`` reseeds it in place (it is never replaced), so a module or loader that holds it
sees the new seed. Layer initialisation, ``randn``/``rand``, dropout and ``DataLoader`` draw from
it when they are given no ``rng=``; an explicit ``rng=`` (a seed or a Generator) always wins.
"""
from __future__ import annotations

import copy

import numpy as np

from .autograd import replayed

__all__ = ["manual_seed", "default_generator", "get_rng_state", "set_rng_state", "resolve_rng"]

_DEFAULT = np.random.Generator(np.random.PCG64())


def default_generator() -> np.random.Generator:
    """The library-wide generator (the same object for the life of the process)."""
    return _DEFAULT


@replayed
def manual_seed(seed: int) -> np.random.Generator:
    """Reseed the default generator: two runs after the same ``manual_seed`` draw the same numbers."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise TypeError(f"manual_seed: seed must be a non-negative int; got {seed!r}")
    _DEFAULT.bit_generator.state = np.random.PCG64(int(seed)).state
    return _DEFAULT


def get_rng_state() -> dict:
    """A copy of the default generator's state: plain JSON-serialisable data (no pickle)."""
    return copy.deepcopy(_DEFAULT.bit_generator.state)


@replayed
def set_rng_state(state: dict) -> None:
    """Restore a state from ``get_rng_state``."""
    if not isinstance(state, dict) or state.get("bit_generator") != "PCG64":
        raise ValueError("set_rng_state: expected a state returned by get_rng_state() (a dict "
                         f"with bit_generator 'PCG64'); got {type(state).__name__}")
    _DEFAULT.bit_generator.state = copy.deepcopy(state)


def resolve_rng(rng, who: str) -> np.random.Generator:
    """``rng=`` as the library takes it: None for the default generator, an int seed for a new
    generator of its own, or a Generator (used, not copied)."""
    if rng is None:
        return _DEFAULT
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(f"{who}: rng must be None, an int seed or a numpy.random.Generator; "
                    f"got {type(rng).__name__}")
