"""Floor 6 (viz): pictures of what the floors below produce; nothing in the package imports this.

``graph`` draws recorded computation graphs (Python package graphviz, imported when a drawing is
made); ``plots`` draws training history, weights and predictions (matplotlib). Both are optional
extras (``pip install 'tinygrad_mlp[viz]'``), so ``import tinygrad_mlp.viz`` works without them:
the plot functions are imported on first use, and each function says what to install if its
library is missing.
"""
from .graph import (GraphvizNotFoundError, draw_graph, render_graph, render_model_graph,
                    trace_modules)

_PLOT_NAMES = ("plot_loss", "plot_accuracy", "plot_history", "plot_weights",
               "plot_confusion_matrix", "confusion_matrix", "plot_predictions")

__all__ = ["draw_graph", "render_graph", "render_model_graph", "trace_modules", "GraphvizNotFoundError",
           *_PLOT_NAMES]


def __getattr__(name):
    # plots.py imports matplotlib at its top: importing it here, on first use of a plot name,
    # keeps the graph functions usable where matplotlib is not installed.
    if name in _PLOT_NAMES:
        from . import plots
        try:
            value = getattr(plots, name)
        except AttributeError:
            raise AttributeError(f"tinygrad_mlp.viz: {name} is not defined by "
                                 f"tinygrad_mlp/viz/plots.py") from None
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
