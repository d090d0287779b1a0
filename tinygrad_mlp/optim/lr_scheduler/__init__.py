"""Floor 4 (optim.lr_scheduler): learning-rate schedules that set each parameter group's ``lr``.

Each schedule follows PyTorch's recurrence from the group's current rate (not a closed form from
the base rate), so the sequences are the same floats PyTorch produces, group by group. Call
``scheduler.step()`` once per epoch, after that epoch's ``optimizer.step()`` calls (``OneCycleLR``:
once per batch; ``ReduceLROnPlateau``: ``step(metric)``).

The first schedule made on an optimizer records each group's rate as ``initial_lr`` in the
group (as PyTorch does); every schedule's ``base_lrs`` are those rates.

The two common exponential decays, ``lr0 * exp(-k t)`` and ``lr0 * k**t``, are
``ExponentialLR(opt, gamma=math.exp(-k))`` and ``ExponentialLR(opt, gamma=k)``.
"""
from .base import LRScheduler
from .composite import OneCycleLR, ReduceLROnPlateau, SequentialLR
from .formulas import (CosineAnnealingLR, ExponentialLR, LambdaLR, LinearLR, MultiStepLR,
                       StepLR)

__all__ = ["LRScheduler", "StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR",
           "LambdaLR", "LinearLR", "OneCycleLR", "SequentialLR", "ReduceLROnPlateau"]
