"""Floor 4 (optim.lr_scheduler): learning-rate schedules that set ``optimizer.lr`` on ``step()``.

Each schedule follows PyTorch's recurrence from the optimizer's current rate (not a closed form
from the base rate), so the sequences are the same floats PyTorch produces. Call
``scheduler.step()`` once per epoch, after that epoch's ``optimizer.step()`` calls.

The seed project's two decays, ``lr0 * exp(-k t)`` and ``lr0 * k**t``, are
``ExponentialLR(opt, gamma=math.exp(-k))`` and ``ExponentialLR(opt, gamma=k)``.
"""
from __future__ import annotations

import math

from .optimizer import Optimizer

__all__ = ["LRScheduler", "StepLR", "ExponentialLR", "CosineAnnealingLR", "LambdaLR"]


class LRScheduler:
    """Base: ``step()`` advances ``last_epoch`` and writes ``_next_lr()`` into ``optimizer.lr``.

    Subclasses list their settings in ``settings`` (saved by ``state_dict``).
    """

    settings: tuple = ()

    def __init__(self, optimizer: Optimizer):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: expected an Optimizer; got "
                            f"{type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lr = float(optimizer.lr)
        self.last_epoch = 0
        self._set(self._initial_lr())

    def _initial_lr(self) -> float:
        return float(self.optimizer.lr)

    def _next_lr(self) -> float:
        raise NotImplementedError

    def _set(self, lr: float):
        self.optimizer.lr = self._last_lr = lr

    def step(self):
        self.last_epoch += 1
        self._set(self._next_lr())

    def get_last_lr(self) -> list:
        """The rate set by the last ``step()`` (or the constructor), as a one-element list like
        PyTorch's (one entry per parameter group; ours have one group)."""
        return [self._last_lr]

    def state_dict(self) -> dict:
        """``{"type", "last_epoch", "base_lr", "last_lr", <settings>}``: numbers and a string.
        ``LambdaLR``'s function is code and is not saved."""
        out = {"type": type(self).__name__, "last_epoch": self.last_epoch,
               "base_lr": self.base_lr, "last_lr": self._last_lr}
        out.update({k: getattr(self, k) for k in self.settings})
        return out

    def load_state_dict(self, state_dict: dict):
        """Restore the schedule's position; the optimizer's own ``lr`` is restored by the
        optimizer's ``load_state_dict`` (as in PyTorch)."""
        name = type(self).__name__
        if not isinstance(state_dict, dict) or state_dict.get("type") != name:
            got = state_dict.get("type") if isinstance(state_dict, dict) else state_dict
            raise ValueError(f"{name}.load_state_dict: expected a state dict of a {name}; got "
                             f"{got!r}")
        keys = ("last_epoch", "base_lr", "last_lr") + self.settings
        missing = [k for k in keys if k not in state_dict]
        if missing:
            raise ValueError(f"{name}.load_state_dict: missing keys {missing}")
        self.last_epoch = int(state_dict["last_epoch"])
        self.base_lr = float(state_dict["base_lr"])
        self._last_lr = float(state_dict["last_lr"])
        for k in self.settings:
            setattr(self, k, type(getattr(self, k))(state_dict[k]))

    def __repr__(self):
        settings = "".join(f", {k}={getattr(self, k)}" for k in self.settings)
        return f"{type(self).__name__}(last_epoch={self.last_epoch}{settings})"


def _positive(value, name: str, cls: str, integer: bool = False):
    ok = isinstance(value, int) and not isinstance(value, bool) if integer else \
        isinstance(value, (int, float)) and math.isfinite(value)
    if not ok or value <= 0:
        kind = "a positive integer" if integer else "a positive number"
        raise ValueError(f"{cls}: {name} must be {kind}; got {value!r}")
    return value


class StepLR(LRScheduler):
    """Multiply the rate by ``gamma`` every ``step_size`` epochs:
    ``lr = base_lr * gamma ** (epoch // step_size)``."""

    settings = ("step_size", "gamma")

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1):
        self.step_size = _positive(step_size, "step_size", "StepLR", integer=True)
        self.gamma = float(_positive(gamma, "gamma", "StepLR"))
        super().__init__(optimizer)

    def _next_lr(self):
        lr = self.optimizer.lr
        return lr * self.gamma if self.last_epoch % self.step_size == 0 else lr


class ExponentialLR(LRScheduler):
    """Multiply the rate by ``gamma`` every epoch: ``lr = base_lr * gamma ** epoch``."""

    settings = ("gamma",)

    def __init__(self, optimizer, gamma: float):
        self.gamma = float(_positive(gamma, "gamma", "ExponentialLR"))
        super().__init__(optimizer)

    def _next_lr(self):
        return self.optimizer.lr * self.gamma


class CosineAnnealingLR(LRScheduler):
    """``lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2``; past ``T_max``
    the cosine continues (back up over the next ``T_max`` epochs), as PyTorch's does."""

    settings = ("T_max", "eta_min")

    def __init__(self, optimizer, T_max: int, eta_min: float = 0.0):
        self.T_max = _positive(T_max, "T_max", "CosineAnnealingLR", integer=True)
        if not isinstance(eta_min, (int, float)) or eta_min < 0:
            raise ValueError(f"CosineAnnealingLR: eta_min must be a number >= 0; got {eta_min!r}")
        self.eta_min = float(eta_min)
        super().__init__(optimizer)

    def _next_lr(self):
        t, T, lr, eta_min = self.last_epoch, self.T_max, self.optimizer.lr, self.eta_min
        if (t - 1 - T) % (2 * T) == 0:
            # The recurrence below would divide by 1 + cos(pi) = 0 here: step up from the bottom.
            return lr + (self.base_lr - eta_min) * (1 - math.cos(math.pi / T)) / 2
        return ((1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T))
                * (lr - eta_min) + eta_min)


class LambdaLR(LRScheduler):
    """``lr = base_lr * fn(epoch)``, from epoch 0 (the constructor already applies ``fn(0)``).
    ``LambdaLR(opt, lambda t: math.exp(-k * t))`` is the seed project's exponential decay in
    closed form."""

    def __init__(self, optimizer, fn):
        if not callable(fn):
            raise TypeError(f"LambdaLR: fn must be callable (epoch -> factor); got "
                            f"{type(fn).__name__}")
        self.fn = fn
        super().__init__(optimizer)

    def _initial_lr(self):
        return self.base_lr * float(self.fn(0))

    def _next_lr(self):
        return self.base_lr * float(self.fn(self.last_epoch))
