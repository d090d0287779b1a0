"""Floor 6 (viz): draw the graph a Tensor recorded, with graphviz.

Reads what the floors below leave behind (``Tensor._ctx``, ``Function.inputs``, ``Function.scope``)
and imports nothing above them; nothing in the package imports this module. The Python package
``graphviz`` is an optional extra: it is imported when a drawing is asked for, not at import time.
``draw_graph`` only builds DOT source; the Graphviz ``dot`` program is needed by ``render_graph``.

Every traversal here is a loop over a list, never recursion, so a graph of any depth can be drawn.
"""
from __future__ import annotations

import math
import os
import shlex
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .. import autograd
from .._atomic import atomic_write
from ..tensor import Tensor

__all__ = ["draw_graph", "render_graph", "render_model_graph", "trace", "GraphvizNotFoundError"]

# ``with trace(): loss = ...`` records which modules enclosed each op (``Function.scope``), which
# is what ``collapse_modules`` groups by.
trace = autograd.trace_modules

FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": None}
INSTALL_GRAPHVIZ = ("apt install graphviz (Debian/Ubuntu), brew install graphviz (macOS), "
                    "conda install -c conda-forge graphviz, or see https://graphviz.org/download/")

# kind -> (legend text, node attributes). Kinds differ in shape as well as colour, so they stay
# apart when show_grads repaints the fills by gradient magnitude.
STYLES = {
    "param": ("parameter\n(leaf that requires grad)",
              dict(shape="box", style="filled", fillcolor="#cfe2f3")),
    "input": ("input", dict(shape="box", style="filled,dashed", fillcolor="#fce5cd")),
    "const": ("constant", dict(shape="box", style="filled,dotted", fillcolor="#f3f3f3",
                               fontsize="10")),
    "op": ("op (intermediate)", dict(shape="ellipse", style="filled", fillcolor="#fff2cc")),
    "output": ("output", dict(shape="ellipse", style="filled", fillcolor="#f4cccc",
                              peripheries="2", penwidth="2")),
    "module": ("module call", dict(shape="box3d", style="filled", fillcolor="#d9ead3")),
}
MARKER_STYLE = dict(shape="note", style="filled", fillcolor="#ffffff", color="#cc0000",
                    fontcolor="#cc0000")
# Viridis, dark (small gradient) to yellow (large): ordered by lightness, so it also reads in grey.
PALETTE = ["#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779",
           "#6ece58", "#b5de2b", "#fde725"]
ZERO_GRAD_COLOR = "#bdbdbd"
NONFINITE_GRAD_COLOR = "#ff0000"  # not in the palette: a NaN/inf gradient must not blend in


class GraphvizNotFoundError(RuntimeError):
    """The Graphviz ``dot`` program is not installed; the DOT source was written instead."""


def _import_graphviz():
    try:
        import graphviz
    except ImportError as exc:  # an optional extra, not a core dependency
        raise ImportError("drawing graphs needs the Python package graphviz; install it with "
                          "pip install 'tinygrad_mlp[viz]'") from exc
    return graphviz


# --------------------------------------------------------------------------- the public API

def draw_graph(root, params=None, show_shapes=True, show_dtypes=True, show_values=False,
               show_grads=False, collapse_modules=False, rankdir="LR", max_nodes=None,
               legend=True, inputs=None):
    """The graph that ``root`` recorded, as a ``graphviz.Digraph`` (displays inline in Jupyter).

    One node per op (labelled with the op and its output's shape and dtype) and one per leaf.
    ``params``: a Module or a ``dict[str, Tensor]`` whose names label the leaves.
    ``show_grads``: computes d(root)/d(every tensor) with ``tinygrad_mlp.grad(...,
    retain_graph=True)`` (``.grad`` is untouched and the graph stays usable), prints each norm and
    colours the node by its log magnitude. ``collapse_modules``: True (or a depth, 1 = the root
    module's children) draws each module call as one node; needs the forward run under ``trace()``.
    ``max_nodes``: keep the nodes nearest the roots and mark the rest as "... N more nodes".
    ``inputs``: a ``dict[str, Tensor]`` naming the data (``{"x": x, "y": y}``); once the data are
    named, the other leaves that need no gradient are drawn as constants.
    """
    graphviz = _import_graphviz()
    roots = _as_roots(root)
    if rankdir not in ("LR", "RL", "TB", "BT"):
        raise ValueError(f"draw_graph: rankdir must be 'LR', 'RL', 'TB' or 'BT'; got {rankdir!r}")
    if max_nodes is not None and (not isinstance(max_nodes, int) or max_nodes < 1):
        raise ValueError(f"draw_graph: max_nodes must be a positive int or None; got {max_nodes!r}")
    depth = _collapse_depth(collapse_modules)

    if inputs is not None and not isinstance(inputs, Mapping):
        raise TypeError(f"draw_graph: inputs must be a dict of name -> Tensor; got "
                        f"{type(inputs).__name__}")

    tensors, args = _collect(roots)
    root_module, names, module_names = _names(params)
    data_names = _names(inputs)[1] if inputs is not None else {}
    leaf = _LeafNamer({**data_names, **names}, unnamed_are_const=inputs is not None)
    norms = _gradient_norms(roots, tensors) if show_grads else None
    label = _Labeller(show_shapes, show_dtypes, show_values, norms)
    is_root = set(range(len({id(r) for r in roots})))  # _collect puts the roots first
    if depth:
        nodes, edges = _collapsed(tensors, args, is_root, leaf, module_names, root_module,
                                  depth, label)
    else:
        nodes, edges = _expanded(tensors, args, is_root, leaf)
    nodes, edges, hidden = _truncate(nodes, edges, max_nodes)
    return _emit(graphviz, nodes, edges, hidden, rankdir, legend, label)


def render_graph(root, path, **kwargs) -> Path:
    """Draw ``root``'s graph (``**kwargs`` as for ``draw_graph``) into ``path``; returns the path.

    ``root`` may also be a Digraph that ``draw_graph`` returned and you adjusted (e.g.
    ``graph.attr(dpi="72")``); then no ``**kwargs`` are taken.

    The format comes from the extension: .svg, .png, .pdf (these run Graphviz's ``dot``) or .dot
    (the source, no program needed). The file is written whole or not at all. Without ``dot`` the
    source is written next to ``path`` (same name, ``.dot``) and ``GraphvizNotFoundError`` says how
    to install Graphviz.
    """
    path = Path(os.fspath(path))
    ext = path.suffix.lower()
    if ext not in FORMATS:
        raise ValueError(f"render_graph: cannot tell the format of {str(path)!r} from its extension "
                         f"{ext or '(none)'!r}; use one of {', '.join(FORMATS)}")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"render_graph: directory {str(path.parent)!r} does not exist")
    if hasattr(root, "source") and hasattr(root, "pipe"):  # already drawn
        if kwargs:
            raise TypeError(f"render_graph: drawing options {sorted(kwargs)} apply to tensors; "
                            f"this is an already drawn graph")
        dot = root
    else:
        dot = draw_graph(root, **kwargs)
    if FORMATS[ext] is None:
        _write_atomically(path, dot.source.encode("utf-8"))
        return path
    graphviz = _import_graphviz()
    try:
        data = dot.pipe(format=FORMATS[ext], quiet=True)
    except graphviz.ExecutableNotFound:
        source = path.with_suffix(".dot")
        _write_atomically(source, dot.source.encode("utf-8"))
        raise GraphvizNotFoundError(
            f"render_graph: the Graphviz program 'dot' was not found on PATH, so {str(path)!r} was "
            f"not written. The graph's DOT source is in {str(source)!r}. Install Graphviz "
            f"({INSTALL_GRAPHVIZ}), then call render_graph again or run: "
            f"dot -T{FORMATS[ext]} {shlex.quote(str(source))} -o {shlex.quote(str(path))}") from None
    except graphviz.CalledProcessError as exc:
        source = path.with_suffix(".dot")
        _write_atomically(source, dot.source.encode("utf-8"))
        stderr = (exc.stderr or b"").decode("utf-8", "replace").strip()
        raise RuntimeError(f"render_graph: Graphviz 'dot' failed (exit status {exc.returncode}) "
                           f"rendering {str(path)!r}: {stderr or 'no message'}. The DOT source is "
                           f"in {str(source)!r}") from None
    _write_atomically(path, data)
    return path


def render_model_graph(model, x, path, loss_fn=None, target=None, collapse_modules=True,
                       **kwargs) -> Path:
    """Run ``model(x)`` (then ``loss_fn(output, target)`` if given) under ``trace()`` and render
    its graph into ``path`` collapsed by module; ``**kwargs`` as for ``draw_graph``."""
    with autograd.enable_grad(), trace():
        out = model(x)
        if loss_fn is not None:
            out = loss_fn(out, target) if target is not None else loss_fn(out)
    data = {"x": x} if target is None else {"x": x, "target": target}
    kwargs.setdefault("inputs", {k: v for k, v in data.items() if isinstance(v, Tensor)})
    return render_graph(out, path, params=model, collapse_modules=collapse_modules, **kwargs)


# --------------------------------------------------------------------------- reading the graph

def _as_roots(root) -> list:
    roots = list(root) if isinstance(root, (list, tuple)) else [root]
    if not roots:
        raise ValueError("draw_graph: root is an empty list; pass a Tensor or a list of Tensors")
    for r in roots:
        if not isinstance(r, Tensor):
            raise TypeError(f"draw_graph: root must be a Tensor or a list of Tensors; got "
                            f"{type(r).__name__}")
    return roots


def _collapse_depth(collapse_modules) -> int:
    if collapse_modules is True:
        return 1
    if collapse_modules is False or collapse_modules is None:
        return 0
    if isinstance(collapse_modules, int) and collapse_modules >= 1:
        return collapse_modules
    raise ValueError(f"draw_graph: collapse_modules must be True/False or a depth >= 1; got "
                     f"{collapse_modules!r}")


def _collect(roots):
    """Every tensor reachable from ``roots`` in breadth-first order (roots first, so a cut by
    ``max_nodes`` keeps what is nearest the output), and for each the indices of its op's inputs.

    Unlike ``autograd.topological_order`` this also follows inputs that need no gradient: the
    data and constants are part of the picture.
    """
    index, tensors, args = {}, [], []
    for r in roots:
        if id(r) not in index:
            index[id(r)] = len(tensors)
            tensors.append(r)
    pos = 0
    while pos < len(tensors):
        ctx = tensors[pos]._ctx
        pos += 1
        ids = []
        if ctx is not None:
            if getattr(ctx, "released", False):
                raise RuntimeError(
                    f"draw_graph: the graph through {ctx.name} was released by backward(), so "
                    f"there is nothing left to draw; draw before calling backward(), or call "
                    f"backward(retain_graph=True)")
            for inp in ctx.inputs:
                k = index.get(id(inp))
                if k is None:
                    k = index[id(inp)] = len(tensors)
                    tensors.append(inp)
                ids.append(k)
        args.append(ids)
    return tensors, args


def _names(params):
    """(root module or None, {id(tensor): name}, {id(module): name})."""
    if params is None:
        return None, {}, {}
    if hasattr(params, "named_parameters"):
        names = {id(t): n for n, t in params.named_parameters()}
        modules = {id(m): n for n, m in params.named_modules()} \
            if hasattr(params, "named_modules") else {}
        return params, names, modules
    if isinstance(params, Mapping):
        for n, t in params.items():
            if not isinstance(t, Tensor):
                raise TypeError(f"draw_graph: params[{n!r}] is a {type(t).__name__}, not a Tensor")
        return None, {id(t): str(n) for n, t in params.items()}, {}
    raise TypeError(f"draw_graph: params must be a Module or a dict of name -> Tensor; got "
                    f"{type(params).__name__}")


def _gradient_norms(roots, tensors) -> dict:
    """{id(tensor): norm of d(sum of roots)/d(tensor), or None if it gets none}."""
    for r in roots:
        if not r.requires_grad:
            raise RuntimeError("draw_graph(show_grads=True): a root does not require grad, so it "
                               "has no gradient to show")
        if r.size != 1:
            raise ValueError(f"draw_graph(show_grads=True): a root has shape {r.shape}; gradients "
                             f"are shown for a scalar root (a loss): reduce it first")
    wanted = [t for t in tensors if t.requires_grad]
    grads = autograd.grad(roots, wanted, retain_graph=True, allow_unused=True)
    # float64: a float32 sum of squares overflows for exactly the exploding gradients we look for
    return {id(t): None if g is None else
            float(np.sqrt(np.sum(np.square(g.data, dtype=np.float64))))
            for t, g in zip(wanted, grads)}


# --------------------------------------------------------------------------- labels

def _shape_text(shape) -> str:
    return "scalar" if shape == () else "(" + ", ".join(str(n) for n in shape) + \
        ("," if len(shape) == 1 else "") + ")"


def _op_title(ctx) -> str:
    details = [f"{a}={getattr(ctx, a)}" for a in ("axis", "axes")
               if getattr(ctx, a, None) is not None]
    return " ".join([ctx.name] + details)


class _Labeller:
    """Label lines for tensors, and the gradient colour scale shared by the picture and legend."""

    def __init__(self, show_shapes, show_dtypes, show_values, norms):
        self.show_shapes, self.show_dtypes, self.show_values = show_shapes, show_dtypes, show_values
        self.norms = norms
        self._meta = {}
        logs = [math.log10(n) for n in (norms or {}).values()
                if n is not None and n > 0 and math.isfinite(n)]
        self.log_range = (min(logs), max(logs)) if logs else None

    def describe(self, t) -> list:
        lines = []
        key = (t.shape, t.dtype)
        meta = self._meta.get(key)
        if meta is None:  # a long chain repeats a few (shape, dtype) pairs many times
            meta = self._meta[key] = " ".join(
                ([_shape_text(t.shape)] if self.show_shapes else []) +
                ([str(t.dtype)] if self.show_dtypes else []))
        if meta:
            lines.append(meta)
        if self.show_values:
            lines.append(_summary(t.data))
        if self.norms is not None and t.requires_grad:
            norm = self.norms.get(id(t))
            lines.append("no grad (unused)" if norm is None else f"|grad| {norm:.3g}")
        return lines

    def colour(self, t):
        """Fill colour encoding the gradient magnitude, or None when there is nothing to encode."""
        if self.norms is None or self.norms.get(id(t)) is None:
            return None
        return self.colour_of(self.norms[id(t)])

    def colour_of(self, norm):
        if not math.isfinite(norm):
            return NONFINITE_GRAD_COLOR
        if norm == 0:
            return ZERO_GRAD_COLOR
        lo, hi = self.log_range
        frac = 0.5 if hi == lo else (math.log10(norm) - lo) / (hi - lo)
        return PALETTE[min(int(frac * len(PALETTE)), len(PALETTE) - 1)]


def _summary(a: np.ndarray) -> str:
    if a.size == 0:
        return "empty"
    if a.dtype == np.bool_:
        return f"{a.mean():.0%} true"
    if a.size == 1:
        return f"= {a.item():.4g}"
    # "+ 0" turns a -0.0 minimum (a ReLU's output) into 0
    return f"min {a.min() + 0:.3g} mean {a.mean(dtype=np.float64):.3g} max {a.max() + 0:.3g}"


def _text_colour(fill) -> str:
    r, g, b = (int(fill[i:i + 2], 16) for i in (1, 3, 5))
    return "white" if 0.299 * r + 0.587 * g + 0.114 * b < 140 else "black"


class _LeafNamer:
    """Kind and title of a leaf. The graph does not say which leaves are data and which are
    constants made inside composed ops (a relu mask, a softmax's detached max), so unnamed ones are
    told apart by a guess (scalars and bool masks are constants) until the caller names the data."""

    def __init__(self, names, unnamed_are_const):
        self.names, self.unnamed_are_const = names, unnamed_are_const

    def kind(self, t) -> str:
        if t.requires_grad:
            return "param"
        if id(t) in self.names:
            return "input"
        if self.unnamed_are_const or t.size == 1 or t.dtype == np.bool_:
            return "const"
        return "input"

    def title(self, t, kind) -> str:
        return self.names.get(id(t), "const" if kind == "const" else "input")


class _Node:
    """One node to draw. A tensor node's label is made only if it survives ``max_nodes``: on a
    100,000-node graph that is most of the time saved."""

    __slots__ = ("name", "kind", "title", "tensor", "lines", "fill", "extra")

    def __init__(self, name, kind, title=None, tensor=None, lines=None, fill=None):
        self.name, self.kind, self.title, self.tensor = name, kind, title, tensor
        self.lines, self.fill = lines, fill
        self.extra = None  # attributes that override the kind's style


# --------------------------------------------------------------------------- building nodes

def _tensor_node(i, t, is_root, leaf) -> _Node:
    if t._ctx is not None:
        return _Node(f"n{i}", "output" if i in is_root else "op", _op_title(t._ctx), t)
    kind = leaf.kind(t)
    return _Node(f"n{i}", kind, leaf.title(t, kind), t)


def _expanded(tensors, args, is_root, leaf):
    nodes, edges = [], []
    for i, t in enumerate(tensors):
        nodes.append(_tensor_node(i, t, is_root, leaf))
        edges.extend((f"n{j}", f"n{i}") for j in args[i])
    return nodes, edges


def _module_at_depth(scope, root_module, depth):
    # The root module's own call is the whole model: depth counts from its children.
    for k, m in enumerate(scope):
        if m is root_module:
            scope = scope[k + 1:]
            break
    return scope[min(depth, len(scope)) - 1] if scope else None


def _collapsed(tensors, args, is_root, leaf, module_names, root_module, depth, label):
    n = len(tensors)
    module = [None] * n
    traced = False
    for i, t in enumerate(tensors):
        if t._ctx is not None:
            scope = getattr(t._ctx, "scope", ())
            traced = traced or bool(scope)
            module[i] = _module_at_depth(scope, root_module, depth) if scope else None
    if not traced:
        raise RuntimeError(
            "draw_graph(collapse_modules=True): this graph was recorded without module scopes. "
            "Run the forward pass inside a trace, e.g.\n"
            "    with tinygrad_mlp.viz.trace():\n        loss = loss_fn(model(x), y)\n"
            "    draw_graph(loss, params=model, collapse_modules=True)")

    # Ops of one module form one call when they are connected: two calls of a shared module on
    # unrelated data stay apart (the scope names the module, not the call).
    parent = list(range(n))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(n):
        if module[i] is not None:
            for j in args[i]:
                if module[j] is module[i]:
                    parent[find(j)] = find(i)
    group = [find(i) if module[i] is not None else None for i in range(n)]

    consumers = [set() for _ in range(n)]
    for i in range(n):
        for j in args[i]:
            consumers[j].add(group[i] if group[i] is not None else ("t", i))
    # A module's own parameters, and constants, used only inside one call become part of its box.
    absorbed = [None] * n
    held = {}  # group -> indices of the leaves its box holds
    own_params = {}  # id(module) -> {id(parameter): local name}
    for j, t in enumerate(tensors):
        if t._ctx is None and j not in is_root and len(consumers[j]) == 1:
            (g,) = consumers[j]
            if not isinstance(g, tuple):  # a module call, not a single op
                key = id(module[g])
                if key not in own_params:
                    own_params[key] = {id(p): name for name, p in _named_parameters(module[g])}
                if id(t) in own_params[key] or leaf.kind(t) == "const":
                    absorbed[j] = g
                    held.setdefault(g, []).append(j)

    members = {}
    for i in range(n):
        if group[i] is not None:
            members.setdefault(group[i], []).append(i)
    calls_of = {}
    for g in members:
        calls_of.setdefault(id(module[g]), []).append(g)

    def node_name(i):
        return f"m{group[i]}" if group[i] is not None else f"n{i}"

    nodes, edges, seen_edges, drawn_groups = [], [], set(), set()
    for i, t in enumerate(tensors):
        if absorbed[i] is not None:
            continue
        g = group[i]
        if g is None:
            nodes.append(_tensor_node(i, t, is_root, leaf))
        elif g not in drawn_groups:
            drawn_groups.add(g)
            nodes.append(_module_node(g, members[g], held.get(g, ()), tensors, consumers, is_root,
                                      module[g], module_names, calls_of[id(module[g])],
                                      own_params.get(id(module[g]), {}), label))
        for j in args[i]:
            if absorbed[j] is not None:
                continue
            edge = (node_name(j), node_name(i))
            if edge[0] == edge[1]:
                continue
            if group[i] is not None or group[j] is not None:  # many op edges become one
                if edge in seen_edges:
                    continue
                seen_edges.add(edge)
            edges.append(edge)
    return nodes, edges


def _named_parameters(module):
    return list(module.named_parameters()) if hasattr(module, "named_parameters") else []


def _module_node(g, member_ids, held, tensors, consumers, is_root, module, module_names, calls,
                 own, label):
    name = module_names.get(id(module))
    cls = type(module).__name__
    title = f"{name}: {cls}" if name else cls
    if len(calls) > 1:
        # calls are listed from the output back; numbered in the order they ran
        title += f" (call {len(calls) - calls.index(g)} of {len(calls)})"
    # The call's outputs: its tensors used outside it, or roots.
    outs = [i for i in member_ids if i in is_root or any(c != g for c in consumers[i])]
    lines = [title, f"{len(member_ids)} op" + ("s" if len(member_ids) > 1 else "")]
    for i in outs:
        lines += ["→ " + s if k == 0 else s for k, s in enumerate(label.describe(tensors[i]))]
    for j in held:
        t = tensors[j]
        if id(t) in own:
            line = own[id(t)] + (" " + _shape_text(t.shape) if label.show_shapes else "")
            if label.norms is not None and label.norms.get(id(t)) is not None:
                line += f" |grad| {label.norms[id(t)]:.3g}"
            lines.append(line)
    colours = [label.colour(tensors[i]) for i in outs]
    node = _Node(f"m{g}", "module", lines=lines, fill=colours[0] if colours else None)
    if any(i in is_root for i in member_ids):
        node.extra = dict(STYLES["output"][1], shape="box3d")
        node.lines[0] += " (output)"
    return node


# --------------------------------------------------------------------------- writing DOT

def _truncate(nodes, edges, max_nodes):
    if max_nodes is None or len(nodes) <= max_nodes:
        return nodes, edges, 0
    kept = nodes[:max_nodes]
    names = {nd.name for nd in kept}
    out, cut_into = [], []
    for a, b in edges:
        if b in names:
            if a in names:
                out.append((a, b))
            elif b not in cut_into:
                cut_into.append(b)
    return kept, out + [("more", b) for b in cut_into], len(nodes) - max_nodes


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\")


def _quote(text: str) -> str:
    return '"' + text.replace('"', '\\"') + '"'


def _attr_text(attrs: dict) -> str:
    return " ".join(f"{k}={_quote(v)}" for k, v in attrs.items())


def _emit(graphviz, nodes, edges, hidden, rankdir, legend, label):
    dot = graphviz.Digraph("computation_graph")
    dot.attr(rankdir=rankdir)
    dot.attr("node", fontname="Helvetica", fontsize="11")
    dot.attr("edge", color="#666666", arrowsize="0.7")
    # Node and edge lines are written straight into the body: Digraph.node() re-quotes every
    # attribute of every node, which took most of the time on large graphs.
    style_text = {k: _attr_text(v[1]) for k, v in STYLES.items()}
    body = dot.body
    for nd in nodes:
        lines = nd.lines
        if lines is None:
            lines = [nd.title] + label.describe(nd.tensor)
        fill = nd.fill if nd.tensor is None else label.colour(nd.tensor)
        if fill is None and nd.extra is None:
            attrs = style_text[nd.kind]
        else:
            style = dict(nd.extra or STYLES[nd.kind][1])
            if fill is not None:
                style.update(fillcolor=fill, fontcolor=_text_colour(fill))
            attrs = _attr_text(style)
        text = "\\n".join(_escape(s) for s in lines)
        body.append(f"\t{nd.name} [label={_quote(text)} {attrs}]\n")
    if hidden:
        text = f"… {hidden} more nodes\\n(raise max_nodes to draw them)"
        body.append(f"\tmore [label={_quote(text)} {_attr_text(MARKER_STYLE)}]\n")
    body.extend(f"\t{a} -> {b}\n" for a, b in edges)
    if legend:
        _legend(dot, [k for k in STYLES if any(nd.kind == k for nd in nodes)], label, rankdir)
    return dot


def _legend(dot, kinds, label, rankdir):
    with dot.subgraph(name="cluster_legend") as leg:
        leg.attr(label="legend", fontname="Helvetica", fontsize="11", style="rounded",
                 color="#999999")
        # One rank: the legend is a compact column (LR) or row (TB), not another chain of nodes.
        with leg.subgraph() as column:
            column.attr(rank="same")
            names = [f"legend_{kind}" for kind in kinds]
            for name, kind in zip(names, kinds):
                column.node(name, STYLES[kind][0].replace("\n", "\\n"), **STYLES[kind][1])
            if label.norms is not None:
                names.append("legend_grad")
                column.node(names[-1], _gradient_scale(label), shape="plaintext")
            # Within one rank only edges fix the order. Left-to-right layouts stack a flat edge's
            # head above its tail, so the chain runs backwards there to read top down.
            if rankdir in ("LR", "RL"):
                names.reverse()
            for a, b in zip(names, names[1:]):
                column.edge(a, b, style="invis")


def _gradient_scale(label) -> str:
    """An HTML-like label: the colour bar of gradient norms, plus zero and NaN/inf if present."""
    cells = []
    if label.log_range is not None:
        lo, hi = label.log_range
        for k in range(5 if hi > lo else 1):
            norm = 10 ** (lo + (hi - lo) * k / 4)
            cells.append((f"{norm:.1g}", label.colour_of(norm)))
    values = [v for v in label.norms.values() if v is not None]
    if any(v == 0 for v in values):
        cells.append(("0", ZERO_GRAD_COLOR))
    if any(not math.isfinite(v) for v in values):
        cells.append(("NaN/inf", NONFINITE_GRAD_COLOR))
    row = "".join(f'<td bgcolor="{fill}"><font color="{_text_colour(fill)}">{text}</font></td>'
                  for text, fill in cells) or "<td>none</td>"
    return (f'<<table border="0" cellborder="1" cellspacing="0" cellpadding="4">'
            f'<tr><td colspan="{max(len(cells), 1)}">|grad| (log colour scale)</td></tr>'
            f'<tr>{row}</tr></table>>')


def _write_atomically(path: Path, data: bytes):
    """Write to a temporary file in the same directory, then rename over ``path``: a reader never
    sees half a file, and an existing file survives a failure."""
    with atomic_write(path, "wb") as f:
        f.write(data)
