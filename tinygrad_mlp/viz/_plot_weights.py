"""Floor 6 (viz): ``plot_weights``, each weight matrix on a robust colour range, the first layer
optionally as images of what its hidden units look for in the input."""
import math
from collections.abc import Mapping

import numpy as np

from ._figure import as_array, check_path, finish, new_figure


def _weight_matrices(weights):
    if hasattr(weights, "named_parameters"):
        pairs = [(name, as_array(p)) for name, p in weights.named_parameters()]
        return [(name, w) for name, w in pairs if name.endswith("weight") and w.ndim == 2]
    items = weights.items() if isinstance(weights, Mapping) else weights
    matrices = []
    for name, w in items:
        w = as_array(w)
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
    path = check_path(path)
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
    # the grid of input images gets twice a heatmap's width: its small images must stay legible
    widths = [2.0 if input_shape is not None and c == 0 else 1.0 for c in range(ncols)]
    fig = new_figure((4.4 * sum(widths) + 1, 4.4 * nrows))
    cells = iter(fig.subfigures(nrows, ncols, squeeze=False, width_ratios=widths).ravel())
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
    return finish(fig, path)


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
