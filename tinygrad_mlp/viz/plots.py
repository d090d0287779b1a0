"""Floor 6 (viz): matplotlib plots of training history, weights, confusion matrices, predictions.

Nothing in the package imports this module; it only reads what the floors below produce
(a history, a model's parameters, label arrays), by duck typing, so it needs none of their code.

Every function builds a `matplotlib.figure.Figure` on an Agg canvas and returns it. pyplot is
never imported: it would pick (and for some users change) a global backend and keep each figure
alive in its registry; a bare Figure works headless and is freed like any other object.
"""

import math
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ._files import check_directory, write_file

try:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator
except ImportError as exc:  # matplotlib is an optional extra, not a core dependency
    raise ImportError(
        "tinygrad_mlp.viz.plots needs matplotlib; install it with pip install 'tinygrad_mlp[viz]'"
    ) from exc

__all__ = [
    "plot_loss", "plot_accuracy", "plot_history", "plot_weights",
    "confusion_matrix", "plot_confusion_matrix", "plot_predictions",
]

SUPPORTED_FORMATS = (".png", ".svg", ".pdf")
HISTORY_KEYS = ("train_loss", "train_acc", "val_loss", "val_acc")
_DPI = 120
# Writing a number into every cell stops being readable (and gets slow) past this many classes.
_MAX_ANNOTATED_CLASSES = 30


# --------------------------------------------------------------------------- saving

def _check_path(path):
    """Validate the extension before any drawing, so a typo fails fast and creates nothing."""
    if path is None:
        return None
    path = Path(os.fspath(path))
    if path.suffix.lower() not in SUPPORTED_FORMATS:
        raise ValueError(
            f"cannot save plot to {str(path)!r}: unsupported extension {path.suffix or '(none)'!r}; "
            f"supported formats: {', '.join(SUPPORTED_FORMATS)}"
        )
    check_directory(path, "plot")
    return path


def _new_figure(figsize):
    fig = Figure(figsize=figsize, dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _finish(fig, path):
    if path is not None:
        _save_atomically(fig, path)
    return fig


def _save_atomically(fig, path):
    """Write the figure whole or not at all, into an existing directory (see ``_files``)."""
    write_file(path, lambda f: fig.savefig(f, format=path.suffix.lower()[1:]), "plot")


# --------------------------------------------------------------------------- history

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
    path = _check_path(path)
    fig = _new_figure((6, 4))
    _draw_metric(fig.add_subplot(), _history_series(history), "loss", *_loss_titles(loss_label))
    return _finish(fig, path)


def plot_accuracy(history, path=None):
    """Train and validation accuracy per epoch (1-based), best validation-loss epoch marked."""
    path = _check_path(path)
    fig = _new_figure((6, 4))
    _draw_metric(fig.add_subplot(), _history_series(history), "acc", "accuracy",
                 "Accuracy per epoch")
    return _finish(fig, path)


def plot_history(history, path=None, loss_label=None):
    """Loss and accuracy side by side in one figure (``loss_label`` as for ``plot_loss``)."""
    path = _check_path(path)
    titles = _loss_titles(loss_label)
    series = _history_series(history)
    fig = _new_figure((11, 4))
    ax_loss, ax_acc = fig.subplots(1, 2)
    _draw_metric(ax_loss, series, "loss", *titles)
    _draw_metric(ax_acc, series, "acc", "accuracy", "Accuracy per epoch")
    fig.suptitle("Training history")
    return _finish(fig, path)


# --------------------------------------------------------------------------- weights

def _as_array(x):
    # ndarray has a .data attribute too (its raw buffer), so test for it before duck typing.
    if isinstance(x, np.ndarray):
        return x
    data = getattr(x, "data", None)
    return data if isinstance(data, np.ndarray) else np.asarray(x)


def _weight_matrices(weights):
    if hasattr(weights, "named_parameters"):
        pairs = [(name, _as_array(p)) for name, p in weights.named_parameters()]
        return [(name, w) for name, w in pairs if name.endswith("weight") and w.ndim == 2]
    items = weights.items() if isinstance(weights, Mapping) else weights
    matrices = []
    for name, w in items:
        w = _as_array(w)
        if w.ndim != 2:
            raise ValueError(
                f"weights[{name!r}] has shape {w.shape}; plot_weights draws 2-D matrices "
                f"(pass the model itself to have its weight matrices picked out)"
            )
        matrices.append((str(name), w))
    return matrices


def _symmetric_limit(arrays, percentile):
    """The ``percentile`` of |w| over the finite values of ``arrays``: a colour range that a few
    outliers cannot stretch until everything else is white (100 gives the maximum)."""
    finite = [np.abs(a[np.isfinite(a)]).ravel() for a in arrays]
    finite = np.concatenate(finite) if finite else np.zeros(0)
    m = float(np.percentile(finite, percentile)) if finite.size else 0.0
    # An all-zero matrix (a fresh zero init) still needs a non-degenerate colour range.
    return m if m > 0 else 1.0


def _check_weight_options(percentile, input_shape, units):
    if isinstance(percentile, bool) or not isinstance(percentile, (int, float)) or \
            not 0 < percentile <= 100:
        raise ValueError(f"plot_weights: percentile must be in (0, 100]; got {percentile!r}")
    if input_shape is not None:
        shape = tuple(input_shape)
        if len(shape) != 2 or not all(isinstance(n, (int, np.integer)) and n > 0 for n in shape):
            raise ValueError(f"plot_weights: input_shape must be (height, width); got "
                             f"{input_shape!r}")
    if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units < 1:
        raise ValueError(f"plot_weights: units must be a positive int; got {units!r}")


def _unit_sample(n_units, units):
    """Evenly spaced hidden units: a sample that neither favours nor hides any part of the layer."""
    return np.unique(np.linspace(0, n_units - 1, min(units, n_units)).round().astype(int))


def plot_weights(weights, path=None, shared_scale=False, percentile=99.0, input_shape=None,
                 units=36):
    """Each 2-D weight matrix, rows = output features, columns = input features, in a diverging
    colour map centred on 0.

    The colour range of a layer is +-the ``percentile`` of its |w| (99 by default), so a few large
    weights saturate instead of washing out the rest; 100 gives +-max|w|. With ``shared_scale``
    one range (over all layers) and one colourbar serve every panel.

    ``input_shape`` (e.g. ``(28, 28)``) draws the first layer as what each hidden unit looks for
    in the input: for ``units`` hidden units sampled evenly, its row of weights as an image of
    that shape. The other layers stay heatmaps.
    """
    path = _check_path(path)
    _check_weight_options(percentile, input_shape, units)
    matrices = _weight_matrices(weights)
    if not matrices:
        raise ValueError("plot_weights found no 2-D weight matrices to plot")
    if input_shape is not None:
        n_in = matrices[0][1].shape[1]
        if int(np.prod(input_shape)) != n_in:
            raise ValueError(f"plot_weights: input_shape {tuple(input_shape)} holds "
                             f"{int(np.prod(input_shape))} values but {matrices[0][0]!r} has "
                             f"{n_in} input features")
    shared = _symmetric_limit([w for _, w in matrices], percentile) if shared_scale else None

    def limit(w):
        return shared if shared_scale else _symmetric_limit([w], percentile)

    heatmaps = matrices[1:] if input_shape is not None else matrices
    panels = len(heatmaps) + (input_shape is not None)
    ncols = min(panels, 3)
    nrows = math.ceil(panels / ncols)
    fig = _new_figure((4.4 * ncols + 1, 4.0 * nrows))
    cells = iter(fig.subfigures(nrows, ncols, squeeze=False).ravel())
    images = []
    if input_shape is not None:
        images.append(_draw_unit_grid(next(cells), *matrices[0], input_shape, units,
                                      limit(matrices[0][1]), colorbar=not shared_scale))
    for name, w in heatmaps:
        sub = next(cells)
        ax = sub.add_subplot()
        lim = limit(w)
        im = ax.imshow(w, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto",
                       interpolation="nearest")
        ax.set_title(f"{name}  {w.shape[0]}x{w.shape[1]}")
        ax.set_xlabel("input feature")
        ax.set_ylabel("output feature")
        if not shared_scale:
            sub.colorbar(im, ax=ax, extend="both", label=f"weight (±p{percentile:g} of |w|)")
        images.append(im)
    last = images[-1].axes.get_figure(root=False)
    for sub in cells:  # the empty slots of the last row
        sub.set_visible(False)
    if shared_scale:  # one colourbar, beside the last panel, for all of them
        last.colorbar(images[-1], ax=last.axes, extend="both", label="weight (one scale)")
    fig.suptitle("Weights: colour range ±" + (f"the {percentile:g}th percentile of |w|"
                                               if percentile < 100 else "max |w|")
                 + (" over all layers" if shared_scale else " per layer"))
    return _finish(fig, path)


def _draw_unit_grid(sub, name, w, input_shape, units, lim, colorbar):
    """The first layer as small images, one per sampled hidden unit; returns the last image."""
    picked = _unit_sample(w.shape[0], units)
    side = math.ceil(math.sqrt(len(picked)))
    axes = sub.subplots(math.ceil(len(picked) / side), side, squeeze=False)
    im = None
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_frame_on(False)
    for ax, unit in zip(axes.ravel(), picked):
        im = ax.imshow(w[unit].reshape(input_shape), cmap="RdBu_r", vmin=-lim, vmax=lim,
                       interpolation="nearest")
        ax.set_title(str(unit), fontsize=6, pad=1)
    sub.suptitle(f"{name}: input weights of {len(picked)} of {w.shape[0]} units", fontsize=10)
    if colorbar:
        sub.colorbar(im, ax=axes.ravel().tolist(), extend="both", shrink=0.8, label="weight")
    return im


# --------------------------------------------------------------------------- labels

def _labels(y, name, num_classes):
    y = _as_array(y)
    if y.ndim != 1:
        hint = "; take the argmax over the class axis first" if y.ndim == 2 else ""
        raise ValueError(f"{name} must be a 1-D array of class labels, got shape {y.shape}{hint}")
    if y.dtype == bool:
        y = y.astype(np.int64)
    elif np.issubdtype(y.dtype, np.floating):
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise ValueError(f"{name} must hold integer class labels, got non-integer values")
        y = y.astype(np.int64)
    elif not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{name} must hold integer class labels, got dtype {y.dtype}")
    if y.size:
        bad = np.flatnonzero((y < 0) | (y >= num_classes))
        if bad.size:
            i = int(bad[0])
            raise ValueError(
                f"{name}[{i}] = {int(y[i])} is outside 0..{num_classes - 1} "
                f"({num_classes} classes; {bad.size} label(s) out of range)"
            )
    return y.astype(np.int64, copy=False)


def _label_pair(y_true, y_pred, num_classes):
    try:
        num_classes = int(num_classes.__index__())
    except AttributeError:
        raise TypeError(f"num_classes must be an int, got {type(num_classes).__name__}") from None
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}")
    y_true = _labels(y_true, "y_true", num_classes)
    y_pred = _labels(y_pred, "y_pred", num_classes)
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} labels but y_pred has {len(y_pred)}")
    return y_true, y_pred, num_classes


def confusion_matrix(y_true, y_pred, num_classes):
    """Counts[i, j] = number of samples of true class i predicted as class j (int64)."""
    y_true, y_pred, k = _label_pair(y_true, y_pred, num_classes)
    # One bincount over the flattened (true, pred) index replaces a loop over samples.
    counts = np.bincount(y_true * k + y_pred, minlength=k * k)
    return counts.reshape(k, k).astype(np.int64, copy=False)


def plot_confusion_matrix(y_true, y_pred, class_names, path=None, normalize=False):
    """Confusion matrix (rows true, columns predicted), counts or row fractions in the cells."""
    path = _check_path(path)
    class_names = [str(c) for c in class_names]
    k = len(class_names)
    if k == 0:
        raise ValueError("class_names is empty")
    counts = confusion_matrix(y_true, y_pred, k)
    total = int(counts.sum())
    if normalize:
        rows = counts.sum(axis=1, keepdims=True)
        # A class absent from y_true has no row to normalise: show 0 rather than NaN.
        values = np.divide(counts, rows, out=np.zeros(counts.shape), where=rows > 0)
    else:
        values = counts
    size = max(5.0, 0.55 * k + 2.5)
    fig = _new_figure((size + 1, size))
    ax = fig.add_subplot()
    vmax = 1.0 if normalize else max(int(counts.max()), 1)
    im = ax.imshow(values, cmap="Blues", vmin=0, vmax=vmax, interpolation="nearest")
    fig.colorbar(im, ax=ax, label="fraction of true class" if normalize else "count")
    if k <= _MAX_ANNOTATED_CLASSES:
        for (i, j), v in np.ndenumerate(values):
            ax.text(j, i, f"{v:.2f}" if normalize else f"{int(v)}", ha="center", va="center",
                    fontsize=8, color="white" if v > vmax / 2 else "black")
    ax.set_xticks(range(k), labels=class_names, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(k), labels=class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if total:
        acc = f"accuracy {100.0 * np.trace(counts) / total:.1f}% of {total}"
    else:
        acc = "no samples"
    ax.set_title(f"Confusion matrix{' (row-normalised)' if normalize else ''}: {acc}")
    return _finish(fig, path)


# --------------------------------------------------------------------------- predictions

def _square_images(images):
    images = _as_array(images)
    if images.ndim == 4 and images.shape[1] == 1:  # (N, 1, H, W) from a conv-style loader
        images = images[:, 0]
    if images.ndim == 2:
        side = math.isqrt(images.shape[1])
        if side * side != images.shape[1]:
            raise ValueError(f"images of shape {images.shape}: {images.shape[1]} pixels "
                             f"is not a square image; pass (N, H, W)")
        images = images.reshape(len(images), side, side)
    if images.ndim != 3:
        raise ValueError(f"images must be (N, H, W) or (N, H*W), got shape {images.shape}")
    return images


def plot_predictions(images, y_true, y_pred, class_names, path=None, n=25, only_errors=False):
    """Grid of the first `n` images titled "predicted / true"; misclassified ones in red."""
    path = _check_path(path)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    class_names = [str(c) for c in class_names]
    images = _square_images(images)
    y_true, y_pred, _ = _label_pair(y_true, y_pred, len(class_names))
    if len(images) != len(y_true):
        raise ValueError(f"images has {len(images)} entries but the labels have {len(y_true)}")
    wrong = y_true != y_pred
    candidates = np.flatnonzero(wrong) if only_errors else np.arange(len(images))
    shown = candidates[:n]
    if shown.size == 0:
        fig = _new_figure((4, 2))
        ax = fig.add_subplot()
        ax.axis("off")
        ax.text(0.5, 0.5, "no misclassified images" if only_errors else "no images",
                ha="center", va="center")
        return _finish(fig, path)
    ncols = math.ceil(math.sqrt(shown.size))
    nrows = math.ceil(shown.size / ncols)
    fig = _new_figure((1.9 * ncols, 2.0 * nrows + 0.4))
    for slot, idx in enumerate(shown):
        ax = fig.add_subplot(nrows, ncols, slot + 1)
        ax.imshow(images[idx], cmap="gray", interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        colour = "red" if wrong[idx] else "black"
        ax.set_title(f"{class_names[y_pred[idx]]} / {class_names[y_true[idx]]}",
                     color=colour, fontsize=8)
        for spine in ax.spines.values():
            spine.set_color(colour)
            spine.set_linewidth(2.5 if wrong[idx] else 0.5)
    n_wrong = int(wrong[shown].sum())
    if only_errors:
        fig.suptitle(f"Misclassified (predicted / true): {shown.size} of {int(wrong.sum())}")
    else:
        fig.suptitle(f"Predicted / true: {n_wrong} of {shown.size} shown are wrong (red)")
    return _finish(fig, path)
