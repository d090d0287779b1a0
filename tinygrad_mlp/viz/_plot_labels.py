"""Floor 6 (viz): plots of class labels: the confusion matrix and a grid of predictions."""
import math

import numpy as np

from ._figure import as_array, check_path, finish, new_figure

# Writing a number into every cell stops being readable (and gets slow) past this many classes.
_MAX_ANNOTATED_CLASSES = 30


def _labels(y, name, num_classes):
    y = as_array(y)
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
    path = check_path(path)
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
    fig = new_figure((size + 1, size))
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
    return finish(fig, path)


# --------------------------------------------------------------------------- predictions

def _square_images(images):
    images = as_array(images)
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
    path = check_path(path)
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
        fig = new_figure((4, 2))
        ax = fig.add_subplot()
        ax.axis("off")
        ax.text(0.5, 0.5, "no misclassified images" if only_errors else "no images",
                ha="center", va="center")
        return finish(fig, path)
    ncols = math.ceil(math.sqrt(shown.size))
    nrows = math.ceil(shown.size / ncols)
    fig = new_figure((1.9 * ncols, 2.0 * nrows + 0.4))
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
    return finish(fig, path)
