"""Floor 4 (optim.lr_scheduler.formulas): schedules that are a formula of the epoch: ``StepLR``,
``MultiStepLR``, ``ExponentialLR``, ``CosineAnnealingLR``, ``LambdaLR``, ``LinearLR``.
"""
from __future__ import annotations

import bisect
import math

from .base import LRScheduler, _check_optimizer, _positive

__all__ = ["StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "LambdaLR", "LinearLR"]


class StepLR(LRScheduler):
    """Multiply the rate by ``gamma`` every ``step_size`` epochs:
    ``lr = base_lr * gamma ** (epoch // step_size)``."""

    settings = ("step_size", "gamma")

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1):
        self.step_size = _positive(step_size, "step_size", "StepLR", integer=True)
        self.gamma = float(_positive(gamma, "gamma", "StepLR"))
        super().__init__(optimizer)

    def _next_lrs(self):
        hit = self.last_epoch % self.step_size == 0
        return [lr * self.gamma if hit else lr for lr in self._lrs()]


class MultiStepLR(LRScheduler):
    """Multiply the rate by ``gamma`` at each epoch in ``milestones``:
    ``lr = base_lr * gamma ** (number of milestones <= epoch)``."""

    settings = ("milestones", "gamma")

    def __init__(self, optimizer, milestones, gamma: float = 0.1):
        try:
            milestones = sorted(milestones)
        except TypeError:
            raise TypeError(f"MultiStepLR: milestones must be a list of epochs; got "
                            f"{milestones!r}") from None
        for m in milestones:
            _positive(m, "each milestone", "MultiStepLR", integer=True)
        self.milestones = milestones
        self.gamma = float(_positive(gamma, "gamma", "MultiStepLR"))
        super().__init__(optimizer)

    def _next_lrs(self):
        count = self.milestones.count(self.last_epoch)
        return [lr * self.gamma ** count if count else lr for lr in self._lrs()]

    def _start_lrs(self):
        k = bisect.bisect_right(self.milestones, 0)
        return [base * self.gamma ** k for base in self.base_lrs]


class ExponentialLR(LRScheduler):
    """Multiply the rate by ``gamma`` every epoch: ``lr = base_lr * gamma ** epoch``."""

    settings = ("gamma",)

    def __init__(self, optimizer, gamma: float):
        self.gamma = float(_positive(gamma, "gamma", "ExponentialLR"))
        super().__init__(optimizer)

    def _next_lrs(self):
        return [lr * self.gamma for lr in self._lrs()]


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

    def _next_lrs(self):
        t, T, eta_min = self.last_epoch, self.T_max, self.eta_min
        if (t - 1 - T) % (2 * T) == 0:
            # The recurrence below would divide by 1 + cos(pi) = 0 here: step up from the bottom.
            return [lr + (base - eta_min) * (1 - math.cos(math.pi / T)) / 2
                    for lr, base in zip(self._lrs(), self.base_lrs)]
        factor = (1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T))
        return [factor * (lr - eta_min) + eta_min for lr in self._lrs()]


class LambdaLR(LRScheduler):
    """``lr = base_lr * fn(epoch)``, from epoch 0 (the constructor already applies ``fn(0)``);
    ``fn`` may be a list with one function per group. ``LambdaLR(opt, lambda t: math.exp(-k * t))``
    is exponential decay in closed form."""

    def __init__(self, optimizer, fn):
        _check_optimizer(optimizer, "LambdaLR")
        fns = list(fn) if isinstance(fn, (list, tuple)) else [fn] * len(optimizer.param_groups)
        if len(fns) != len(optimizer.param_groups) or not all(callable(f) for f in fns):
            raise TypeError(f"LambdaLR: fn must be callable (epoch -> factor), or a list of one "
                            f"per parameter group ({len(optimizer.param_groups)}); got {fn!r}")
        self.fns = fns
        super().__init__(optimizer)

    def _start_lrs(self):
        return [base * float(f(0)) for base, f in zip(self.base_lrs, self.fns)]

    _initial_lrs = _start_lrs

    def _next_lrs(self):
        return [base * float(f(self.last_epoch)) for base, f in zip(self.base_lrs, self.fns)]


class LinearLR(LRScheduler):
    """Warm-up (or -down): scale the base rate by a factor going linearly from ``start_factor``
    to ``end_factor`` over ``total_iters`` epochs, then keep it."""

    settings = ("start_factor", "end_factor", "total_iters")

    def __init__(self, optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5):
        if isinstance(start_factor, bool) or not isinstance(start_factor, (int, float)) \
                or not 0 < start_factor <= 1:
            raise ValueError(f"LinearLR: start_factor must be in (0, 1]; got {start_factor!r}")
        if isinstance(end_factor, bool) or not isinstance(end_factor, (int, float)) \
                or not 0 <= end_factor <= 1:
            raise ValueError(f"LinearLR: end_factor must be in [0, 1]; got {end_factor!r}")
        self.start_factor, self.end_factor = float(start_factor), float(end_factor)
        self.total_iters = _positive(total_iters, "total_iters", "LinearLR", integer=True)
        super().__init__(optimizer)

    def _initial_lrs(self):
        return [lr * self.start_factor for lr in self._lrs()]

    def _start_lrs(self):
        return [base * self.start_factor for base in self.base_lrs]

    def _next_lrs(self):
        if self.last_epoch > self.total_iters:
            return self._lrs()
        s, e = self.start_factor, self.end_factor
        factor = 1.0 + (e - s) / (self.total_iters * s + (self.last_epoch - 1) * (e - s))
        return [lr * factor for lr in self._lrs()]
