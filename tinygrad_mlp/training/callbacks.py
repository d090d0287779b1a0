"""Floor 5 (training.callbacks): the callback protocol ``fit`` follows, ``BestModel`` and
``EarlyStopping``.

A callback is any object with some of these methods (``Callback`` has them all as no-ops, so a
subclass defines only what it needs); ``fit`` calls, in the order the callbacks were given:

* ``on_train_begin(model, resumed)`` once before the first epoch (``resumed``: the run continues
  from a checkpoint, and ``load_state_dict`` has already been called);
* ``on_epoch_end(epoch, logs, model)`` after each epoch (``epoch`` counts from 1; ``logs`` holds
  that epoch's ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc``, ``lr``, ``seconds``);
  returning True stops training after this epoch (every callback still sees the epoch);
* ``on_train_end(model)`` once after the last epoch (not when training fails with an error);
* ``state_dict()`` / ``load_state_dict(state)``: what the callback must remember across a resume,
  as arrays, numbers, strings and lists (``tinygrad_mlp.save`` stores it without pickle).
"""
from __future__ import annotations

import math
import os

import numpy as np

from ..serialization import save
from .history import MONITORS, check_monitor

__all__ = ["Callback", "BestModel", "EarlyStopping"]


class Callback:
    """Base class with every hook of the protocol as a no-op."""

    def on_train_begin(self, model, resumed: bool):
        pass

    def on_epoch_end(self, epoch: int, logs: dict, model) -> bool:
        return False

    def on_train_end(self, model):
        pass

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict):
        pass


def _mode(monitor: str, mode, who: str) -> str:
    check_monitor(monitor, who)
    if mode is None:
        return MONITORS[monitor]
    if mode not in ("min", "max"):
        raise ValueError(f"{who}: mode must be 'min', 'max' or None (from the monitor); got "
                         f"{mode!r}")
    return mode


def _min_delta(value, who: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0:
        raise ValueError(f"{who}: min_delta must be a number >= 0; got {value!r}")
    return float(value)


def _improved(value, best, mode: str, min_delta: float) -> bool:
    # A NaN or infinite value is never an improvement, so a diverging run cannot become "best".
    if value is None or not math.isfinite(value):
        return False
    if best is None:
        return True
    return value < best - min_delta if mode == "min" else value > best + min_delta


def _check_state(state, keys, who: str):
    if not isinstance(state, dict):
        raise ValueError(f"{who}.load_state_dict: expected a dict; got {type(state).__name__}")
    missing = [k for k in keys if k not in state]
    if missing:
        raise ValueError(f"{who}.load_state_dict: missing keys {missing}")


class BestModel(Callback):
    """Keep a copy of the model's state from the epoch with the best ``monitor`` value, and load it
    back into the model when training ends (``restore=True``), so the model ends as it was at its best
    epoch.

    The copy is held in memory (``state``, a ``state_dict()``); with ``path`` it is also written
    there with ``tinygrad_mlp.save`` (atomically) whenever it improves, so the file always holds
    the best model so far. A fresh (not resumed) run refuses to start over an existing ``path``.
    An improvement must beat the best value by more than ``min_delta``; ``mode`` is ``'min'`` for
    losses and ``'max'`` for accuracies unless given.
    """

    def __init__(self, monitor: str = "val_loss", path=None, restore: bool = True,
                 min_delta: float = 0.0, mode=None):
        self.monitor = monitor
        self.mode = _mode(monitor, mode, "BestModel")
        self.min_delta = _min_delta(min_delta, "BestModel")
        self.path = None if path is None else os.fspath(path)
        self.restore = bool(restore)
        self._reset()

    def _reset(self):
        self.best = None
        self.best_epoch = None
        self.state = None

    def on_train_begin(self, model, resumed):
        if resumed:
            return
        self._reset()
        if self.path is not None and os.path.exists(self.path):
            raise FileExistsError(f"BestModel: {self.path} already exists; it is left as it is. "
                                  f"Resume the run that wrote it (fit(..., resume=True)) or "
                                  f"choose another path")

    def on_epoch_end(self, epoch, logs, model):
        value = logs.get(self.monitor)
        if _improved(value, self.best, self.mode, self.min_delta):
            self.best, self.best_epoch = float(value), int(epoch)
            self.state = model.state_dict()
            if self.path is not None:
                save(self.state, self.path)
        return False

    def on_train_end(self, model):
        if self.restore and self.state is not None:
            model.load_state_dict(self.state)

    def state_dict(self):
        return {"monitor": self.monitor, "best": self.best, "best_epoch": self.best_epoch,
                "state": self.state}

    def load_state_dict(self, state):
        _check_state(state, ("monitor", "best", "best_epoch", "state"), "BestModel")
        if state["monitor"] != self.monitor:
            raise ValueError(f"BestModel.load_state_dict: the saved state watched "
                             f"{state['monitor']!r}, this BestModel watches {self.monitor!r}")
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        saved = state["state"]
        self.state = None if saved is None else {k: np.array(v, copy=True)
                                                  for k, v in saved.items()}

    def __repr__(self):
        return (f"BestModel(monitor={self.monitor!r}, best={self.best}, "
                f"best_epoch={self.best_epoch}, path={self.path!r})")


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience``
    epochs in a row. ``mode`` is ``'min'`` for losses and ``'max'`` for accuracies unless
    given. After a stop, ``stopped_epoch`` is the last epoch trained and ``stop_reason`` says why.
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 5, min_delta: float = 0.0,
                 mode=None):
        if not isinstance(patience, (int, np.integer)) or isinstance(patience, bool) \
                or patience < 0:
            raise ValueError(f"EarlyStopping: patience must be an integer >= 0; got {patience!r}")
        self.monitor = monitor
        self.mode = _mode(monitor, mode, "EarlyStopping")
        self.patience = int(patience)
        self.min_delta = _min_delta(min_delta, "EarlyStopping")
        self._reset()

    def _reset(self):
        self.best = None
        self.best_epoch = None
        self.wait = 0
        self.stopped_epoch = None

    def on_train_begin(self, model, resumed):
        if not resumed:
            self._reset()

    def on_epoch_end(self, epoch, logs, model):
        value = logs.get(self.monitor)
        if _improved(value, self.best, self.mode, self.min_delta):
            self.best, self.best_epoch, self.wait = float(value), int(epoch), 0
            return False
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = int(epoch)
            return True
        return False

    @property
    def stop_reason(self) -> str:
        return (f"{self.monitor} has not improved for {self.wait} epochs (best {self.best} at "
                f"epoch {self.best_epoch})")

    def state_dict(self):
        return {"monitor": self.monitor, "best": self.best, "best_epoch": self.best_epoch,
                "wait": self.wait, "stopped_epoch": self.stopped_epoch}

    def load_state_dict(self, state):
        _check_state(state, ("monitor", "best", "best_epoch", "wait", "stopped_epoch"),
                     "EarlyStopping")
        if state["monitor"] != self.monitor:
            raise ValueError(f"EarlyStopping.load_state_dict: the saved state watched "
                             f"{state['monitor']!r}, this EarlyStopping watches "
                             f"{self.monitor!r}")
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        self.wait, self.stopped_epoch = int(state["wait"]), state["stopped_epoch"]

    def __repr__(self):
        return (f"EarlyStopping(monitor={self.monitor!r}, patience={self.patience}, "
                f"wait={self.wait}, best={self.best})")
