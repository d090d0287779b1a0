"""Floor 6 (sweep.callback): ``PruningCallback``, the bridge between ``fit`` and an Optuna trial.

It needs no import of Optuna: it calls ``trial.report`` and ``trial.should_prune`` only.
"""
from __future__ import annotations

from ..training.callbacks import Callback
from ..training.history import MONITORS

__all__ = ["PruningCallback"]


class PruningCallback(Callback):
    """Report ``logs[monitor]`` to ``trial`` after every epoch (the epoch is the step) and stop
    ``fit`` when the trial's pruner says so.

    After ``fit`` returns, ``pruned`` tells whether the trial was pruned (``pruned_epoch`` the
    last epoch trained); the objective then raises ``optuna.TrialPruned`` so the trial ends
    PRUNED. With ``prune=False`` values are still reported (the pruner compares others against
    them) but the trial is never stopped: the baseline of a sweep runs to the end.

    The pruned state is kept in the checkpoint, so a pruned run that is resumed stays pruned
    and trains nothing more.
    """

    def __init__(self, trial, monitor: str = "val_acc", prune: bool = True):
        if monitor not in MONITORS:
            raise ValueError(f"PruningCallback: monitor must be one of {sorted(MONITORS)}; got "
                             f"{monitor!r}")
        for method in ("report", "should_prune"):
            if not callable(getattr(trial, method, None)):
                raise TypeError(f"PruningCallback: trial must be an optuna Trial (with "
                                f"{method}()); got {type(trial).__name__}")
        self.trial = trial
        self.monitor = monitor
        self.prune = bool(prune)
        self.pruned_epoch = None

    @property
    def pruned(self) -> bool:
        return self.pruned_epoch is not None

    def on_train_begin(self, model, resumed):
        if not resumed:
            self.pruned_epoch = None

    def on_epoch_end(self, epoch, logs, model):
        value = logs.get(self.monitor)
        if value is None:
            raise ValueError(f"PruningCallback: the epoch's logs hold no {self.monitor!r} (is "
                             f"there a val_loader?)")
        self.trial.report(float(value), int(epoch))
        if self.prune and self.trial.should_prune():
            self.pruned_epoch = int(epoch)
            return True
        return False

    @property
    def stop_reason(self) -> str:
        return f"trial {self.trial.number} pruned ({self.monitor} reported to its pruner)"

    def state_dict(self):
        return {"monitor": self.monitor, "pruned_epoch": self.pruned_epoch}

    def load_state_dict(self, state):
        if not isinstance(state, dict) or "pruned_epoch" not in state:
            raise ValueError("PruningCallback.load_state_dict: expected a dict with "
                             "'pruned_epoch'")
        if state.get("monitor", self.monitor) != self.monitor:
            raise ValueError(f"PruningCallback.load_state_dict: the saved state watched "
                             f"{state['monitor']!r}, this callback watches {self.monitor!r}")
        saved = state["pruned_epoch"]
        self.pruned_epoch = None if saved is None else int(saved)

    def __repr__(self):
        return (f"PruningCallback(trial={getattr(self.trial, 'number', '?')}, "
                f"monitor={self.monitor!r}, prune={self.prune}, pruned_epoch="
                f"{self.pruned_epoch})")
