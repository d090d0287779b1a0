"""Floor 6 (viz): what every matplotlib plot shares: the checked output path, a bare Agg
figure, and writing it by the rule of ``_files``.

pyplot is never imported: it would pick (and for some users change) a global backend and keep each
figure alive in its registry; a bare Figure works headless and is freed like any other object.
"""
import os
from pathlib import Path

import numpy as np

from ._files import check_directory, write_file

try:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
except ImportError as exc:  # matplotlib is an optional extra, not a core dependency
    raise ImportError(
        "tinygrad_mlp.viz.plots needs matplotlib; install it with pip install 'tinygrad_mlp[viz]'"
    ) from exc

SUPPORTED_FORMATS = (".png", ".svg", ".pdf")
_DPI = 120


def check_path(path):
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


def new_figure(figsize):
    fig = Figure(figsize=figsize, dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def finish(fig, path):
    if path is not None:
        save(fig, path)
    return fig


def save(fig, path):
    """Write the figure whole or not at all, into an existing directory (see ``_files``)."""
    write_file(path, lambda f: fig.savefig(f, format=path.suffix.lower()[1:]), "plot")


def as_array(x):
    # ndarray has a .data attribute too (its raw buffer), so test for it before duck typing.
    if isinstance(x, np.ndarray):
        return x
    data = getattr(x, "data", None)
    return data if isinstance(data, np.ndarray) else np.asarray(x)
