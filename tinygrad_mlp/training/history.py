"""Floor 5 (training.history): ``History``, the metrics of a run one epoch at a time, and the two
files it is written to after every epoch (``history.json``, ``metrics.csv``), each replaced
atomically so a crash never leaves half a file.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os

from .._atomic import atomic_write

__all__ = ["History", "KEYS", "MONITORS", "check_monitor", "write_history_files"]

# One list per key in History and in its files, in this order.
KEYS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds")
# The metrics a callback or fit(monitor=...) can watch, and which direction is better.
MONITORS = {"val_loss": "min", "val_acc": "max", "train_loss": "min", "train_acc": "max"}

HISTORY_FILE = "history.json"
METRICS_FILE = "metrics.csv"


def check_monitor(monitor, who: str) -> str:
    if monitor not in MONITORS:
        raise ValueError(f"{who}: monitor must be one of {sorted(MONITORS)}; got {monitor!r}")
    return monitor


class History:
    """The metrics of every finished epoch: ``epoch`` (counted from 1), ``train_loss``,
    ``train_acc``, ``val_loss``, ``val_acc``, ``lr`` (the rate the epoch trained with) and
    ``seconds``, each a list with one entry per epoch. ``val_*`` entries are None without a
    validation set; ``train_acc`` is None when the model's outputs are not class scores.

    ``as_dict()`` gives the lists keyed by name (what ``viz.plots`` takes); ``best_epoch`` is
    the epoch with the best ``monitor`` value (the first one on ties), None if there is none.
    """

    def __init__(self, monitor: str = "val_loss"):
        self.monitor = check_monitor(monitor, "History")
        for key in KEYS:
            setattr(self, key, [])

    def append(self, logs: dict):
        for key in KEYS:
            getattr(self, key).append(logs.get(key))

    def __len__(self) -> int:
        return len(self.epoch)

    def as_dict(self) -> dict:
        return {key: list(getattr(self, key)) for key in KEYS}

    @classmethod
    def from_dict(cls, data: dict, monitor: str = "val_loss") -> "History":
        """A History from ``as_dict()`` output (a checkpoint's, or ``history.json``'s)."""
        missing = [k for k in KEYS if k not in data]
        if missing:
            raise ValueError(f"History.from_dict: missing keys {missing}")
        lengths = {k: len(data[k]) for k in KEYS}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"History.from_dict: the lists differ in length: {lengths}")
        history = cls(monitor)
        for key in KEYS:
            setattr(history, key, list(data[key]))
        return history

    @property
    def best_epoch(self):
        values = getattr(self, self.monitor)
        better = min if MONITORS[self.monitor] == "min" else max
        candidates = [(v, e) for v, e in zip(values, self.epoch)
                      if v is not None and math.isfinite(v)]
        if not candidates:
            return None
        best = better(v for v, _ in candidates)
        return next(e for v, e in candidates if v == best)

    def __repr__(self):
        return (f"History({len(self)} epochs, monitor={self.monitor!r}, "
                f"best_epoch={self.best_epoch})")


def write_history_files(history: History, directory: str):
    """``history.json`` (the ``as_dict()`` lists) and ``metrics.csv`` (one row per epoch, an empty
    field for None) in ``directory``."""
    data = history.as_dict()
    _write_atomically(os.path.join(directory, HISTORY_FILE), json.dumps(data, indent=1) + "\n")
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(KEYS)
    for row in zip(*(data[k] for k in KEYS)):
        # repr of a float is the shortest text that reads back as the same float.
        writer.writerow(["" if v is None else repr(v) for v in row])
    _write_atomically(os.path.join(directory, METRICS_FILE), text.getvalue())


def _write_atomically(path: str, text: str):
    with atomic_write(path, "w", encoding="utf-8", newline="") as f:
        f.write(text)
