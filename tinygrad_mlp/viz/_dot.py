"""Floor 6 (viz): style a drawn graph and write it as DOT: node kinds, labels, gradient colours,
the legend, and the cut at ``max_nodes``. Knows nothing about tensors beyond shape, dtype and data.
"""
from __future__ import annotations

import math

import numpy as np

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


class Node:
    """One node to draw. A tensor node's label is made only if it survives ``max_nodes``: on a
    100,000-node graph that is most of the time saved."""

    __slots__ = ("name", "kind", "title", "tensor", "lines", "fill", "extra")

    def __init__(self, name, kind, title=None, tensor=None, lines=None, fill=None):
        self.name, self.kind, self.title, self.tensor = name, kind, title, tensor
        self.lines, self.fill = lines, fill
        self.extra = None  # attributes that override the kind's style


# --------------------------------------------------------------------------- labels

def shape_text(shape) -> str:
    return "scalar" if shape == () else "(" + ", ".join(str(n) for n in shape) + \
        ("," if len(shape) == 1 else "") + ")"


def op_title(ctx) -> str:
    details = [f"{a}={getattr(ctx, a)}" for a in ("axis", "axes")
               if getattr(ctx, a, None) is not None]
    return " ".join([ctx.name] + details)


class Labeller:
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
                ([shape_text(t.shape)] if self.show_shapes else []) +
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


# --------------------------------------------------------------------------- writing DOT

def truncate(nodes, edges, max_nodes):
    """Keep the first ``max_nodes`` nodes (the nearest the roots); the rest become one marker."""
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


def emit(graphviz, nodes, edges, hidden, rankdir, legend, label):
    """A ``graphviz.Digraph`` of ``nodes`` and ``edges`` (and a marker for ``hidden`` nodes)."""
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
