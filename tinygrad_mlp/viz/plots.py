"""Floor 6 (viz): matplotlib plots of training history, weights, confusion matrices, predictions.

Nothing in the package imports this module; it only reads what the floors below produce
(a history, a model's parameters, label arrays), by duck typing, so it needs none of their code.

Every function builds a `matplotlib.figure.Figure` on an Agg canvas and returns it (``_figure``).
This module draws training histories; ``_plot_weights`` the weights and ``_plot_labels`` the
confusion matrix and predictions, all importable from here.
"""

import math
from collections.abc import Mapping

import numpy as np

from ._figure import check_path, finish, new_figure  # first: it says how to install matplotlib
from ._plot_labels import confusion_matrix, plot_confusion_matrix, plot_predictions
from ._plot_weights import plot_weights

from matplotlib.ticker import MaxNLocator  # noqa: E402,I001

__all__ = [
    "plot_loss", "plot_accuracy", "plot_history", "plot_weights",
    "confusion_matrix", "plot_confusion_matrix", "plot_predictions",
]

HISTORY_KEYS = ("train_loss", "train_acc", "val_loss", "val_acc")


def _as_float(v):
    if v is None:
        return math.nan
    return float(v.item() if hasattr(v, "item") else v)


def _history_series(history):
    """Return {key: float ndarray or None}; None entries become NaN so lines break there."""
    if isinstance(history, Mapping):
        source = history
    elif callable(getattr(history, "as_dict", None)):
        source = history.as_dict()
    else:
        source = {k: getattr(history, k) for k in HISTORY_KEYS if hasattr(history, k)}
    series = {}
    for key in HISTORY_KEYS:
        values = source.get(key)
        if values is None:
            series[key] = None
            continue
        arr = np.array([_as_float(v) for v in values], dtype=np.float64)
        # A validation series of only None means "no validation set": draw nothing for it.
        series[key] = None if key.startswith("val") and np.isnan(arr).all() else arr
    return series


def _require(series, key):
    if series[key] is None:
        raise ValueError(
            f"history has no {key!r}; expected a mapping, an object with these attributes, "
            f"or an object with .as_dict(), providing {', '.join(HISTORY_KEYS)}"
        )
    return series[key]


def _epochs(values):
    return np.arange(1, len(values) + 1)


def _best_val_epoch(series):
    val_loss = series["val_loss"]
    if val_loss is None:
        return None
    return int(np.nanargmin(val_loss)) + 1


def _draw_metric(ax, series, metric, ylabel, title):
    train = _require(series, f"train_{metric}")
    ax.plot(_epochs(train), train, marker="o", markersize=3, label="train")
    val = series[f"val_{metric}"]
    if val is not None:
        ax.plot(_epochs(val), val, marker="o", markersize=3, label="validation")
    best = _best_val_epoch(series)
    if best is not None:
        ax.axvline(best, color="grey", linestyle="--", linewidth=1,
                   label=f"best val loss (epoch {best})")
        if val is not None and best <= len(val) and not np.isnan(val[best - 1]):
            ax.plot([best], [val[best - 1]], marker="*", markersize=12, color="crimson",
                    linestyle="none", label="_best_marker")
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend()




def _loss_titles(loss_label):
    """(y label, title) of a loss panel; ``loss_label`` says which loss it is (e.g. "cross-entropy,
    label smoothing 0.1"), so a smoothed training loss is not mistaken for a plain test loss."""
    if loss_label is None:
        return "loss", "Loss per epoch"
    if not isinstance(loss_label, str):
        raise TypeError(f"loss_label must be a str; got {type(loss_label).__name__}")
    return loss_label, f"Loss per epoch ({loss_label})"


def plot_loss(history, path=None, loss_label=None):
    """Train and validation loss per epoch (1-based), best validation-loss epoch marked;
    ``loss_label`` names the loss on the axis and in the title."""
    path = check_path(path)
    fig = new_figure((6, 4))
    _draw_metric(fig.add_subplot(), _history_series(history), "loss", *_loss_titles(loss_label))
    return finish(fig, path)


def plot_accuracy(history, path=None):
    """Train and validation accuracy per epoch (1-based), best validation-loss epoch marked."""
    path = check_path(path)
    fig = new_figure((6, 4))
    _draw_metric(fig.add_subplot(), _history_series(history), "acc", "accuracy",
                 "Accuracy per epoch")
    return finish(fig, path)


def plot_history(history, path=None, loss_label=None):
    """Loss and accuracy side by side in one figure (``loss_label`` as for ``plot_loss``)."""
    path = check_path(path)
    titles = _loss_titles(loss_label)
    series = _history_series(history)
    fig = new_figure((11, 4))
    ax_loss, ax_acc = fig.subplots(1, 2)
    _draw_metric(ax_loss, series, "loss", *titles)
    _draw_metric(ax_acc, series, "acc", "accuracy", "Accuracy per epoch")
    fig.suptitle("Training history")
    return finish(fig, path)
