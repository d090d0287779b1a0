"""Floor 4 (optim.lr_scheduler.composite): schedules driven by something besides the epoch's
formula: ``OneCycleLR`` (a fixed number of batches, momentum too), ``SequentialLR`` (other
schedules in turn) and ``ReduceLROnPlateau`` (a monitored metric).
"""
from __future__ import annotations

import bisect
import math

from .base import LRScheduler, _check_optimizer, _per_group, _positive

__all__ = ["OneCycleLR", "SequentialLR", "ReduceLROnPlateau"]


class OneCycleLR(LRScheduler):
    """The one-cycle policy, stepped once per batch for ``total_steps`` (or ``epochs *
    steps_per_epoch``) steps: the rate rises from ``max_lr / div_factor`` to ``max_lr`` over the
    first ``pct_start`` of the steps, then anneals (``"cos"`` or ``"linear"``) to
    ``max_lr / div_factor / final_div_factor``; with ``three_phase`` it first comes back down to
    the starting rate. With ``cycle_momentum`` the momentum (``betas[0]`` for Adam) moves the
    other way between ``max_momentum`` and ``base_momentum``. The per-group values are kept in
    the groups (``initial_lr``, ``max_lr``, ``min_lr``, ``max_momentum``, ``base_momentum``)."""

    settings = ("total_steps", "pct_start", "anneal_strategy", "cycle_momentum", "three_phase")

    def __init__(self, optimizer, max_lr, total_steps=None, epochs=None, steps_per_epoch=None,
                 pct_start: float = 0.3, anneal_strategy: str = "cos",
                 cycle_momentum: bool = True, base_momentum=0.85, max_momentum=0.95,
                 div_factor: float = 25.0, final_div_factor: float = 1e4,
                 three_phase: bool = False):
        cls = "OneCycleLR"
        _check_optimizer(optimizer, cls)
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError(f"{cls}: give total_steps, or epochs and steps_per_epoch")
            total_steps = _positive(epochs, "epochs", cls, integer=True) \
                * _positive(steps_per_epoch, "steps_per_epoch", cls, integer=True)
        self.total_steps = _positive(total_steps, "total_steps", cls, integer=True)
        if isinstance(pct_start, bool) or not isinstance(pct_start, (int, float)) \
                or not 0 <= pct_start <= 1:
            raise ValueError(f"{cls}: pct_start must be a number in [0, 1]; got {pct_start!r}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"{cls}: anneal_strategy must be 'cos' or 'linear'; got "
                             f"{anneal_strategy!r}")
        self.pct_start, self.anneal_strategy = float(pct_start), anneal_strategy
        self.cycle_momentum, self.three_phase = bool(cycle_momentum), bool(three_phase)
        div_factor = float(_positive(div_factor, "div_factor", cls))
        final_div_factor = float(_positive(final_div_factor, "final_div_factor", cls))
        max_lrs = _per_group(max_lr, optimizer, "max_lr", cls)
        groups = optimizer.param_groups
        self._use_beta1 = "betas" in optimizer.defaults
        if self.cycle_momentum:
            if "momentum" not in optimizer.defaults and not self._use_beta1:
                raise ValueError(f"{cls}: cycle_momentum=True needs an optimizer with momentum "
                                 f"or betas; {type(optimizer).__name__} has neither (pass "
                                 f"cycle_momentum=False)")
            base_ms = _per_group(base_momentum, optimizer, "base_momentum", cls)
            max_ms = _per_group(max_momentum, optimizer, "max_momentum", cls)
        for k, group in enumerate(groups):
            group["initial_lr"] = max_lrs[k] / div_factor
            group["max_lr"] = max_lrs[k]
            group["min_lr"] = group["initial_lr"] / final_div_factor
            if self.cycle_momentum:
                group["max_momentum"], group["base_momentum"] = max_ms[k], base_ms[k]
                self._set_momentum(group, max_ms[k])
        super().__init__(optimizer)

    def _set_momentum(self, group, value):
        if self._use_beta1:
            group["betas"] = (value, *group["betas"][1:])
        else:
            group["momentum"] = value

    def _phases(self, group):
        n = float(self.total_steps)
        lo, hi, end = group["initial_lr"], group["max_lr"], group["min_lr"]
        m_hi, m_lo = group.get("max_momentum"), group.get("base_momentum")
        if self.three_phase:
            return [(self.pct_start * n - 1, lo, hi, m_hi, m_lo),
                    (2 * self.pct_start * n - 2, hi, lo, m_lo, m_hi),
                    (n - 1, lo, end, m_hi, m_hi)]
        return [(self.pct_start * n - 1, lo, hi, m_hi, m_lo), (n - 1, hi, end, m_lo, m_hi)]

    def _anneal(self, start, end, pct):
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def _compute(self) -> list:
        t = self.last_epoch
        if t > self.total_steps:
            raise ValueError(f"OneCycleLR: stepped {t} times; total_steps is {self.total_steps}")
        lrs = []
        for group in self.optimizer.param_groups:
            phases, begin = self._phases(group), 0.0
            for i, (end_step, lr0, lr1, m0, m1) in enumerate(phases):
                if t <= end_step or i == len(phases) - 1:
                    pct = (t - begin) / (end_step - begin)
                    lrs.append(self._anneal(lr0, lr1, pct))
                    if self.cycle_momentum:
                        self._set_momentum(group, self._anneal(m0, m1, pct))
                    break
                begin = end_step
        return lrs

    _initial_lrs = _start_lrs = _next_lrs = _compute


class SequentialLR(LRScheduler):
    """Run ``schedulers`` one after another, switching at the epochs in ``milestones`` (one fewer
    than schedulers); each schedule starts from its epoch 0 when its turn comes."""

    settings = ("milestones",)

    def __init__(self, optimizer, schedulers, milestones):
        cls = "SequentialLR"
        _check_optimizer(optimizer, cls)
        schedulers = list(schedulers)
        if not schedulers or not all(isinstance(s, LRScheduler) for s in schedulers):
            raise TypeError(f"{cls}: schedulers must be a non-empty list of schedules")
        if any(isinstance(s, (ReduceLROnPlateau, SequentialLR)) for s in schedulers):
            raise TypeError(f"{cls}: cannot chain ReduceLROnPlateau or SequentialLR")
        if any(s.optimizer is not optimizer for s in schedulers):
            raise ValueError(f"{cls}: every schedule must drive the optimizer given to "
                             f"SequentialLR")
        milestones = list(milestones)
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"{cls}: {len(schedulers)} schedules need {len(schedulers) - 1} "
                             f"milestones; got {len(milestones)}")
        for m in milestones:
            _positive(m, "each milestone", cls, integer=True)
        if milestones != sorted(milestones):
            raise ValueError(f"{cls}: milestones must be increasing; got {milestones}")
        self.optimizer, self.schedulers, self.milestones = optimizer, schedulers, milestones
        self.base_lrs = list(schedulers[0].base_lrs)
        self.last_epoch = 0
        # Undo what the schedules' constructors did to the rates; the first one starts now.
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        for s in schedulers:
            s.last_epoch -= 1
        first = schedulers[0]
        first.last_epoch += 1
        first._set(first._initial_lrs())
        self._last_lr = first.get_last_lr()

    def step(self):
        self.last_epoch += 1
        k = bisect.bisect_right(self.milestones, self.last_epoch)
        current = self.schedulers[k]
        if k > 0 and self.milestones[k - 1] == self.last_epoch:
            current.last_epoch = 0
            current._set(current._start_lrs())
        else:
            current.step()
        self._last_lr = current.get_last_lr()

    def state_dict(self) -> dict:
        out = super().state_dict()
        out["schedulers"] = {str(k): s.state_dict() for k, s in enumerate(self.schedulers)}
        return out

    def load_state_dict(self, state_dict: dict):
        state_dict = self._check_state(state_dict, ("last_epoch", "base_lrs", "last_lr",
                                                    "milestones", "schedulers"))
        saved = dict(state_dict["schedulers"])
        if sorted(saved) != [str(k) for k in range(len(self.schedulers))] \
                or list(state_dict["milestones"]) != self.milestones:
            raise ValueError(f"SequentialLR.load_state_dict: the state has schedules "
                             f"{sorted(saved)} and milestones {state_dict['milestones']}; this "
                             f"one {len(self.schedulers)} schedules and {self.milestones}")
        for k, s in enumerate(self.schedulers):
            s.load_state_dict(saved[str(k)])
        super().load_state_dict({k: v for k, v in state_dict.items() if k != "schedulers"})


class ReduceLROnPlateau(LRScheduler):
    """Multiply the rate by ``factor`` when ``step(metric)`` has not improved for more than
    ``patience`` epochs (improved: below ``best * (1 - threshold)`` for ``mode="min"`` with
    ``threshold_mode="rel"``, below ``best - threshold`` with ``"abs"``; above for ``"max"``),
    then wait ``cooldown`` epochs; never below ``min_lr`` (a number or one per group), and not
    at all when the change would be smaller than ``eps``. ``training.fit`` passes the monitored
    metric of each epoch."""

    settings = ("mode", "factor", "patience", "threshold", "threshold_mode", "cooldown",
                "min_lrs", "eps", "best", "num_bad_epochs", "cooldown_counter")
    needs_metric = True

    def __init__(self, optimizer, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0,
                 min_lr=0.0, eps: float = 1e-8):
        cls = "ReduceLROnPlateau"
        _check_optimizer(optimizer, cls)
        if mode not in ("min", "max"):
            raise ValueError(f"{cls}: mode must be 'min' or 'max'; got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"{cls}: threshold_mode must be 'rel' or 'abs'; got "
                             f"{threshold_mode!r}")
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) \
                or not 0 <= factor < 1:
            raise ValueError(f"{cls}: factor must be a number with 0 <= factor < 1; got "
                             f"{factor!r}")
        for name, value in (("patience", patience), ("cooldown", cooldown)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{cls}: {name} must be an int >= 0; got {value!r}")
        for name, value in (("threshold", threshold), ("eps", eps)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{cls}: {name} must be a number >= 0; got {value!r}")
        self.optimizer = optimizer
        self.mode, self.threshold_mode = mode, threshold_mode
        self.factor, self.threshold, self.eps = float(factor), float(threshold), float(eps)
        self.patience, self.cooldown = patience, cooldown
        self.min_lrs = _per_group(min_lr, optimizer, "min_lr", cls)
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = self.cooldown_counter = 0
        self.last_epoch = 0
        self.base_lrs = [float(g["lr"]) for g in optimizer.param_groups]
        self._last_lr = list(self.base_lrs)

    def _improved(self, value: float) -> bool:
        if self.mode == "min":
            bound = self.best * (1 - self.threshold) if self.threshold_mode == "rel" \
                else self.best - self.threshold
            return value < bound
        bound = self.best * (1 + self.threshold) if self.threshold_mode == "rel" \
            else self.best + self.threshold
        return value > bound

    def step(self, metric=None):
        if metric is None:
            raise TypeError("ReduceLROnPlateau.step: pass the monitored value, e.g. "
                            "scheduler.step(val_loss)")
        try:
            value = float(metric)
        except (TypeError, ValueError):
            raise TypeError(f"ReduceLROnPlateau.step: the metric must be a number; got "
                            f"{type(metric).__name__}") from None
        self.last_epoch += 1
        if self._improved(value):
            self.best, self.num_bad_epochs = value, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            for group, min_lr in zip(self.optimizer.param_groups, self.min_lrs):
                old = float(group["lr"])
                new = max(old * self.factor, min_lr)
                if old - new > self.eps:
                    group["lr"] = new
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        self._last_lr = [float(g["lr"]) for g in self.optimizer.param_groups]
