"""Floor 4 (optim.lr_scheduler.base): ``LRScheduler``, the base every schedule shares: the
groups' base rates, stepping, ``get_last_lr`` and state dicts; and argument checks.
"""
from __future__ import annotations

import math

from ...autograd import replay_overrides, replayed
from ..optimizer import Optimizer

__all__ = ["LRScheduler"]


def _check_optimizer(optimizer, cls: str):
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"{cls}: expected an Optimizer; got {type(optimizer).__name__}")


class LRScheduler:
    """Base: ``step()`` advances ``last_epoch`` and writes ``_next_lrs()`` into the groups.

    Subclasses list their settings in ``settings`` (saved by ``state_dict``) and define
    ``_next_lrs()``; ``_initial_lrs()`` gives the rates set by the constructor and
    ``_start_lrs()`` those of epoch 0 from the base rates (used by ``SequentialLR``).
    """

    settings: tuple = ()

    def __init__(self, optimizer: Optimizer):
        _check_optimizer(optimizer, type(self).__name__)
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [float(g["initial_lr"]) for g in optimizer.param_groups]
        self.last_epoch = 0
        self._set(self._initial_lrs())

    def _lrs(self) -> list:
        return [g["lr"] for g in self.optimizer.param_groups]

    def _initial_lrs(self) -> list:
        return self._lrs()

    def _start_lrs(self) -> list:
        return list(self.base_lrs)

    def _next_lrs(self) -> list:
        raise NotImplementedError

    def _set(self, lrs: list):
        groups = self.optimizer.param_groups
        if len(lrs) != len(groups):
            raise ValueError(f"{type(self).__name__}: the optimizer has {len(groups)} parameter "
                             f"groups, the schedule was made for {len(lrs)}")
        for group, lr in zip(groups, lrs):
            group["lr"] = lr
        self._last_lr = [float(lr) for lr in lrs]

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        replay_overrides(cls, "step")

    @replayed
    def step(self):
        self.last_epoch += 1
        self._set(self._next_lrs())

    def get_last_lr(self) -> list:
        """The rates set by the last ``step()`` (or the constructor), one per parameter group."""
        return list(self._last_lr)

    def state_dict(self) -> dict:
        """``{"type", "last_epoch", "base_lrs", "last_lr", <settings>}``: numbers, lists and a
        string. ``LambdaLR``'s function is code and is not saved."""
        out = {"type": type(self).__name__, "last_epoch": self.last_epoch,
               "base_lrs": list(self.base_lrs), "last_lr": list(self._last_lr)}
        out.update({k: getattr(self, k) for k in self.settings})
        return out

    def _check_state(self, state_dict: dict, keys: tuple) -> dict:
        name = type(self).__name__
        if not isinstance(state_dict, dict) or state_dict.get("type") != name:
            got = state_dict.get("type") if isinstance(state_dict, dict) else state_dict
            raise ValueError(f"{name}.load_state_dict: expected a state dict of a {name}; got "
                             f"{got!r}")
        state_dict = dict(state_dict)
        for old, new in (("base_lr", "base_lrs"), ("last_lr", "last_lr")):
            # Written before parameter groups: one number instead of a list.
            if new not in state_dict and old in state_dict:
                state_dict[new] = state_dict[old]
            if isinstance(state_dict.get(new), (int, float)):
                state_dict[new] = [state_dict[new]]
        missing = [k for k in keys if k not in state_dict]
        if missing:
            raise ValueError(f"{name}.load_state_dict: missing keys {missing}")
        n = len(self.optimizer.param_groups)
        for key in ("base_lrs", "last_lr"):
            if key in keys and len(state_dict[key]) != n:
                raise ValueError(f"{name}.load_state_dict: {key} has {len(state_dict[key])} "
                                 f"entries; the optimizer has {n} parameter groups")
        return state_dict

    def load_state_dict(self, state_dict: dict):
        """Restore the schedule's position; the groups' own ``lr`` are restored by the
        optimizer's ``load_state_dict`` (as in PyTorch)."""
        state_dict = self._check_state(state_dict,
                                       ("last_epoch", "base_lrs", "last_lr") + self.settings)
        self.last_epoch = int(state_dict["last_epoch"])
        self.base_lrs = [float(x) for x in state_dict["base_lrs"]]
        self._last_lr = [float(x) for x in state_dict["last_lr"]]
        for k in self.settings:
            setattr(self, k, type(getattr(self, k))(state_dict[k]))

    def __repr__(self):
        settings = "".join(f", {k}={getattr(self, k)}" for k in self.settings)
        return f"{type(self).__name__}(last_epoch={self.last_epoch}{settings})"


def _positive(value, name: str, cls: str, integer: bool = False):
    ok = isinstance(value, int) and not isinstance(value, bool) if integer else \
        isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value <= 0:
        kind = "a positive integer" if integer else "a positive number"
        raise ValueError(f"{cls}: {name} must be {kind}; got {value!r}")
    return value


def _per_group(value, optimizer, name: str, cls: str) -> list:
    """A number for every group, or a list with one per group."""
    n = len(optimizer.param_groups)
    values = list(value) if isinstance(value, (list, tuple)) else [value] * n
    if len(values) != n:
        raise ValueError(f"{cls}: {name} has {len(values)} entries; the optimizer has {n} "
                         f"parameter groups")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                or v < 0:
            raise ValueError(f"{cls}: {name} must be a finite number >= 0 (or one per group); "
                             f"got {value!r}")
    return [float(v) for v in values]
