"""Floor 6 (viz): draw the graph a Tensor recorded, with graphviz.

Nothing in the package imports this module. The Python package ``graphviz`` is an optional extra:
it is imported when a drawing is asked for, not at import time. ``draw_graph`` only builds DOT
source; the Graphviz ``dot`` program is needed by ``render_graph``.

The work is split along its steps: ``_graph_read`` reads the recorded graph (tensors, names,
gradients), ``_graph_nodes`` turns it into nodes (collapsing module calls), ``_dot`` styles and
writes the DOT source, and ``_files`` writes files by the rule every picture writer follows.
"""
from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from pathlib import Path

from .. import autograd
from ..autograd import trace_modules
from ..tensor import Tensor
from . import _graph_read as read
from ._dot import Labeller, emit, truncate
from ._files import check_directory, write_file
from ._graph_nodes import GraphPicture, collapsed, expanded

__all__ = ["draw_graph", "render_graph", "render_model_graph", "trace_modules",
           "GraphvizNotFoundError"]

FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": None}
INSTALL_GRAPHVIZ = ("apt install graphviz (Debian/Ubuntu), brew install graphviz (macOS), "
                    "conda install -c conda-forge graphviz, or see https://graphviz.org/download/")


class GraphvizNotFoundError(RuntimeError):
    """The Graphviz ``dot`` program is not installed; the DOT source was written instead."""


def _import_graphviz():
    try:
        import graphviz
    except ImportError as exc:  # an optional extra, not a core dependency
        raise ImportError("drawing graphs needs the Python package graphviz; install it with "
                          "pip install 'tinygrad_mlp[viz]'") from exc
    return graphviz


def draw_graph(root, params=None, show_shapes=True, show_dtypes=True, show_values=False,
               show_grads=False, collapse_modules=False, rankdir="LR", max_nodes=None,
               legend=True, inputs=None):
    """The graph that ``root`` recorded, as a ``graphviz.Digraph`` (displays inline in Jupyter).

    One node per op (labelled with the op and its output's shape and dtype) and one per leaf.
    ``params``: a Module or a ``dict[str, Tensor]`` whose names label the leaves.
    ``show_grads``: computes d(root)/d(every tensor) with ``tinygrad_mlp.grad(...,
    retain_graph=True)`` (``.grad`` is untouched and the graph stays usable), prints each norm and
    colours the node by its log magnitude. ``collapse_modules``: True (or a depth, 1 = the root
    module's children) draws each module call as one node; needs the forward run under
    ``trace_modules()``.
    ``max_nodes``: keep the nodes nearest the roots and mark the rest as "... N more nodes".
    ``inputs``: a ``dict[str, Tensor]`` naming the data (``{"x": x, "y": y}``); once the data are
    named, the other leaves that need no gradient are drawn as constants.
    """
    graphviz = _import_graphviz()
    roots = read.as_roots(root)
    if rankdir not in ("LR", "RL", "TB", "BT"):
        raise ValueError(f"draw_graph: rankdir must be 'LR', 'RL', 'TB' or 'BT'; got {rankdir!r}")
    if max_nodes is not None and (not isinstance(max_nodes, int) or max_nodes < 1):
        raise ValueError(f"draw_graph: max_nodes must be a positive int or None; got {max_nodes!r}")
    depth = read.collapse_depth(collapse_modules)
    if inputs is not None and not isinstance(inputs, Mapping):
        raise TypeError(f"draw_graph: inputs must be a dict of name -> Tensor; got "
                        f"{type(inputs).__name__}")

    tensors, args = read.collect(roots)
    root_module, names, module_names = read.names_of(params)
    data_names = read.names_of(inputs)[1] if inputs is not None else {}
    norms = read.gradient_norms(roots, tensors) if show_grads else None
    picture = GraphPicture(
        tensors, args,
        is_root=set(range(len({id(r) for r in roots}))),  # collect puts the roots first
        leaf=read.LeafNamer({**data_names, **names}, unnamed_are_const=inputs is not None),
        label=Labeller(show_shapes, show_dtypes, show_values, norms),
        root_module=root_module, module_names=module_names)
    nodes, edges = collapsed(picture, depth) if depth else expanded(picture)
    nodes, edges, hidden = truncate(nodes, edges, max_nodes)
    return emit(graphviz, nodes, edges, hidden, rankdir, legend, picture.label)


def render_graph(root, path, **kwargs) -> Path:
    """Draw ``root``'s graph (``**kwargs`` as for ``draw_graph``) into ``path``; returns the path.

    ``root`` may also be a Digraph that ``draw_graph`` returned and you adjusted (e.g.
    ``graph.attr(dpi="72")``); then no ``**kwargs`` are taken.

    The format comes from the extension: .svg, .png, .pdf (these run Graphviz's ``dot``) or .dot
    (the source, no program needed). The directory must exist; the file is written whole or not at
    all. Without ``dot`` the source is written next to ``path`` (same name, ``.dot``) and
    ``GraphvizNotFoundError`` says how to install Graphviz.
    """
    path = Path(os.fspath(path))
    ext = path.suffix.lower()
    if ext not in FORMATS:
        raise ValueError(f"render_graph: cannot tell the format of {str(path)!r} from its extension "
                         f"{ext or '(none)'!r}; use one of {', '.join(FORMATS)}")
    check_directory(path, "render_graph")
    if hasattr(root, "source") and hasattr(root, "pipe"):  # already drawn
        if kwargs:
            raise TypeError(f"render_graph: drawing options {sorted(kwargs)} apply to tensors; "
                            f"this is an already drawn graph")
        dot = root
    else:
        dot = draw_graph(root, **kwargs)
    if FORMATS[ext] is None:
        _write(path, dot.source.encode("utf-8"))
        return path
    graphviz = _import_graphviz()
    try:
        data = dot.pipe(format=FORMATS[ext], quiet=True)
    except graphviz.ExecutableNotFound:
        source = path.with_suffix(".dot")
        _write(source, dot.source.encode("utf-8"))
        raise GraphvizNotFoundError(
            f"render_graph: the Graphviz program 'dot' was not found on PATH, so {str(path)!r} was "
            f"not written. The graph's DOT source is in {str(source)!r}. Install Graphviz "
            f"({INSTALL_GRAPHVIZ}), then call render_graph again or run: "
            f"dot -T{FORMATS[ext]} {shlex.quote(str(source))} -o {shlex.quote(str(path))}") from None
    except graphviz.CalledProcessError as exc:
        source = path.with_suffix(".dot")
        _write(source, dot.source.encode("utf-8"))
        stderr = (exc.stderr or b"").decode("utf-8", "replace").strip()
        raise RuntimeError(f"render_graph: Graphviz 'dot' failed (exit status {exc.returncode}) "
                           f"rendering {str(path)!r}: {stderr or 'no message'}. The DOT source is "
                           f"in {str(source)!r}") from None
    _write(path, data)
    return path


def render_model_graph(model, x, path, loss_fn=None, target=None, collapse_modules=True,
                       **kwargs) -> Path:
    """Run ``model(x)`` (then ``loss_fn(output, target)`` if given) under ``trace_modules()`` and
    render its graph into ``path`` collapsed by module; ``**kwargs`` as for ``draw_graph``."""
    with autograd.enable_grad(), trace_modules():
        out = model(x)
        if loss_fn is not None:
            out = loss_fn(out, target) if target is not None else loss_fn(out)
    data = {"x": x} if target is None else {"x": x, "target": target}
    kwargs.setdefault("inputs", {k: v for k, v in data.items() if isinstance(v, Tensor)})
    return render_graph(out, path, params=model, collapse_modules=collapse_modules, **kwargs)


def _write(path: Path, data: bytes):
    write_file(path, lambda f: f.write(data), "render_graph")
