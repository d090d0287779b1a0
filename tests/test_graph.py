"""Tests for floor 6, tinygrad_mlp/viz/graph.py: the DOT source (nodes, names, shapes, dtypes,
module collapse, truncation, deep graphs), gradient-flow colours, rendering, and the errors.

Expected counts and names are worked out by hand from small graphs, not read back from the code.
"""
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest

pytest.importorskip("graphviz")

import tinygrad_mlp as tg  # noqa: E402
from tinygrad_mlp import autograd  # noqa: E402
from tinygrad_mlp.viz import (GraphvizNotFoundError, draw_graph, render_graph,  # noqa: E402
                              render_model_graph, trace_modules)

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz 'dot' not installed")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --------------------------------------------------------------------------- reading DOT

NODE_RE = re.compile(r'^\s*(\w+) \[(.*)\]$')
EDGE_RE = re.compile(r'^\s*(\w+) -> (\w+)(?: \[.*\])?$')
LABEL_RE = re.compile(r'label=("(?:[^"\\]|\\.)*"|\w+)')


def nodes_of(dot):
    """{node name: (label lines, attribute text)} for the drawn graph (legend excluded)."""
    out = {}
    for line in dot.source.splitlines():
        m = NODE_RE.match(line)
        if not m or m.group(1) in ("node", "edge", "graph") or m.group(1).startswith("legend"):
            continue
        label = LABEL_RE.search(m.group(2)).group(1).strip('"')
        out[m.group(1)] = (label.split("\\n"), m.group(2))
    return out


def edges_of(dot):
    return [m.groups() for m in map(EDGE_RE.match, dot.source.splitlines())
            if m and not m.group(1).startswith("legend")]


def find(nodes, title):
    """The one node whose first label line is ``title``."""
    hits = [name for name, (lines, _) in nodes.items() if lines[0] == title]
    assert len(hits) == 1, (title, [lines[0] for lines, _ in nodes.values()])
    return hits[0]


def titles(nodes):
    return sorted(lines[0] for lines, _ in nodes.values())


def fill_of(nodes, name):
    return re.search(r'fillcolor="([^"]+)"', nodes[name][1]).group(1)


# --------------------------------------------------------------------------- a stand-in Module
# Just enough of nn.Module's contract (push onto autograd.module_stack() in __call__,
# named_parameters, named_modules) to test module features independently of nn.py.

class Module:
    def __call__(self, *args):
        stack = autograd.module_stack()
        if stack is None:
            return self.forward(*args)
        stack.append(self)
        try:
            return self.forward(*args)
        finally:
            stack.pop()

    def _items(self):
        return list(vars(self).items())

    def named_parameters(self, prefix=""):
        for k, v in self._items():
            name = f"{prefix}.{k}" if prefix else k
            if isinstance(v, tg.Tensor):
                yield name, v
            elif isinstance(v, Module):
                yield from v.named_parameters(name)

    def named_modules(self, prefix=""):
        yield prefix, self
        for k, v in self._items():
            if isinstance(v, Module):
                yield from v.named_modules(f"{prefix}.{k}" if prefix else k)


class Linear(Module):
    def __init__(self, n_in, n_out, rng):
        self.weight = tg.Tensor(rng.standard_normal((n_out, n_in)).astype(np.float32) * 0.5,
                                requires_grad=True)
        self.bias = tg.Tensor(np.zeros(n_out, np.float32), requires_grad=True)

    def forward(self, x):
        return x @ self.weight.T + self.bias


class ReLU(Module):
    def forward(self, x):
        return x.relu()


class Sequential(Module):
    def __init__(self, *layers):
        for i, layer in enumerate(layers):
            setattr(self, str(i), layer)

    def forward(self, x):
        for _, layer in self._items():
            x = layer(x)
        return x


def mlp(rng):
    return Sequential(Linear(3, 4, rng), ReLU(), Linear(4, 2, rng))


def cross_entropy(logits, onehot):
    return -(logits.log_softmax(axis=-1) * onehot).sum(axis=-1).mean()


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def traced_loss(rng):
    model = mlp(rng)
    x = tg.Tensor(rng.standard_normal((5, 3)).astype(np.float32))
    onehot = tg.Tensor(np.eye(2, dtype=np.float32)[[0, 1, 1, 0, 1]])
    with trace_modules():
        loss = cross_entropy(model(x), onehot)
    return model, x, loss


# --------------------------------------------------------------------------- the DOT source

def test_one_node_per_op_and_per_leaf_with_names_shapes_and_dtypes():
    a = tg.Tensor(np.ones((2, 3), np.float32), requires_grad=True)
    b = tg.Tensor(np.ones((2, 3), np.float32), requires_grad=True)
    x = tg.Tensor(np.ones((2, 3), np.float64))
    loss = ((a * b + a) * x).sum()           # ops: Mul, Add, Mul(float64 out), Sum; leaves a, b, x
    dot = draw_graph(loss, params={"a": a, "b": b})
    nodes = nodes_of(dot)
    assert titles(nodes) == sorted(["Mul", "Add", "Mul", "Sum", "a", "b", "input"])
    assert nodes[find(nodes, "a")][0][1:] == ["(2, 3) float32"]
    assert nodes[find(nodes, "input")][0][1:] == ["(2, 3) float64"]
    assert nodes[find(nodes, "Sum")][0][1:] == ["scalar float64"]
    # a feeds two ops (the first Mul and the Add): 2 edges; b one; 7 edges in all.
    edges = edges_of(dot)
    assert len(edges) == 7
    assert sum(src == find(nodes, "a") for src, _ in edges) == 2
    assert sum(src == find(nodes, "b") for src, _ in edges) == 1


def test_unnamed_leaves_are_input_or_const_and_options_hide_shapes_and_dtypes():
    w = tg.Tensor(np.ones((4, 3), np.float32), requires_grad=True)
    x = tg.Tensor(np.ones((2, 4), np.float32))
    y = (x @ w * 2.0).sum()                   # 2.0 becomes a scalar constant leaf
    nodes = nodes_of(draw_graph(y))
    assert titles(nodes) == sorted(["MatMul", "Mul", "Sum", "input", "input", "const"])
    bare = nodes_of(draw_graph(y, show_shapes=False, show_dtypes=False))
    assert all(lines == [lines[0]] for lines, _ in bare.values())
    only_dtype = nodes_of(draw_graph(y, show_shapes=False))
    assert nodes[find(nodes, "MatMul")][0][1] == "(2, 3) float32"
    assert only_dtype[find(only_dtype, "MatMul")][0][1] == "float32"


def test_named_inputs_make_the_other_gradient_free_leaves_constants(traced_loss):
    model, x, loss = traced_loss
    # log_softmax subtracts a detached (5, 1) row maximum: a leaf that only a name can tell from
    # data. Unnamed, it and the one-hot targets are both "input"; with the data named, it is const.
    guessed = nodes_of(draw_graph(loss, params=model))
    assert sorted(lines[1] for lines, _ in guessed.values() if lines[0] == "input") == \
        ["(5, 1) float32", "(5, 2) float32", "(5, 3) float32"]
    named = nodes_of(draw_graph(loss, params=model, inputs={"x": x}))
    assert "input" not in titles(named) and titles(named).count("x") == 1
    consts = sorted(lines[1] for lines, _ in named.values() if lines[0] == "const")
    assert "(5, 1) float32" in consts and "(5, 2) float32" in consts


def test_parameter_names_come_from_named_parameters(rng):
    model = mlp(rng)
    x = tg.Tensor(rng.standard_normal((5, 3)).astype(np.float32))
    nodes = nodes_of(draw_graph(model(x).sum(), params=model))
    for name, shape in [("0.weight", "(4, 3)"), ("0.bias", "(4,)"), ("2.weight", "(2, 4)"),
                        ("2.bias", "(2,)")]:
        assert nodes[find(nodes, name)][0][1] == f"{shape} float32"


def test_shared_subgraph_of_two_roots_is_drawn_once():
    a = tg.Tensor(np.ones(3, np.float32), requires_grad=True)
    h = a.exp()
    nodes = nodes_of(draw_graph([h.sum(), h.max()]))
    assert titles(nodes) == sorted(["Exp", "Sum", "Max", "input"])


def test_show_values_summarises_scalars_and_arrays():
    a = tg.Tensor(np.array([[-1.0, 2.0], [3.0, 4.5]], np.float32), requires_grad=True)
    nodes = nodes_of(draw_graph(a.sum(), params={"a": a}, show_values=True))
    assert nodes[find(nodes, "Sum")][0][2] == "= 8.5"
    assert nodes[find(nodes, "a")][0][2] == "min -1 mean 2.12 max 4.5"


# --------------------------------------------------------------------------- module collapse

def test_collapsed_graph_has_one_node_per_module_call(traced_loss):
    model, x, loss = traced_loss
    expanded = nodes_of(draw_graph(loss, params=model))
    dot = draw_graph(loss, params=model, collapse_modules=True, inputs={"x": x})
    collapsed = nodes_of(dot)
    calls = [t for t in titles(collapsed) if ":" in t]
    assert calls == ["0: Linear", "1: ReLU", "2: Linear"]
    # The layers' ops and parameters are inside their boxes; the input and the loss ops are not.
    first_words = {t.split()[0] for t in titles(collapsed)}
    assert not {"MatMul", "Transpose", "0.weight", "2.bias"} & first_words
    assert {"MatMul", "Transpose", "0.weight"} <= {t.split()[0] for t in titles(expanded)}
    assert "x" in titles(collapsed) and "Exp" in titles(collapsed)
    first = collapsed[find(collapsed, "0: Linear")][0]
    assert "weight (4, 3)" in first and "bias (4,)" in first
    assert "→ (5, 4) float32" in first
    # The layer boxes are chained x -> 0 -> 1 -> 2, each edge once.
    edges = edges_of(dot)
    chain = [(find(collapsed, "x"), find(collapsed, "0: Linear")),
             (find(collapsed, "0: Linear"), find(collapsed, "1: ReLU")),
             (find(collapsed, "1: ReLU"), find(collapsed, "2: Linear"))]
    for edge in chain:
        assert edges.count(edge) == 1


def test_collapse_depth_counts_from_the_root_module(rng):
    inner = Sequential(Linear(3, 3, rng), ReLU())
    model = Sequential(inner, Linear(3, 2, rng))
    x = tg.Tensor(rng.standard_normal((2, 3)).astype(np.float32))
    with trace_modules():
        out = model(x).sum()
    depth1 = [t for t in titles(nodes_of(draw_graph(out, model, collapse_modules=True)))
              if ":" in t]
    depth2 = [t for t in titles(nodes_of(draw_graph(out, model, collapse_modules=2))) if ":" in t]
    assert depth1 == ["0: Sequential", "1: Linear"]
    assert depth2 == ["0.0: Linear", "0.1: ReLU", "1: Linear"]


def test_a_shared_module_called_twice_gives_two_nodes(rng):
    encoder = Linear(3, 3, rng)
    a = tg.Tensor(rng.standard_normal((2, 3)).astype(np.float32))
    b = tg.Tensor(rng.standard_normal((2, 3)).astype(np.float32))
    with trace_modules():
        out = (encoder(a) * encoder(b)).sum()
    calls = [t for t in titles(nodes_of(draw_graph(out, collapse_modules=True))) if "Linear" in t]
    assert calls == ["Linear (call 1 of 2)", "Linear (call 2 of 2)"]


def test_collapse_without_a_trace_says_how_to_record_one(rng):
    model = mlp(rng)
    out = model(tg.Tensor(np.ones((2, 3), np.float32))).sum()
    with pytest.raises(RuntimeError, match=r"viz\.trace_modules\(\)"):
        draw_graph(out, params=model, collapse_modules=True)


# --------------------------------------------------------------------------- size

def test_max_nodes_cuts_the_graph_with_a_visible_marker():
    x = tg.Tensor(np.ones(2, np.float32), requires_grad=True)
    y = x
    for _ in range(30):
        y = -y                                # 30 ops + 1 leaf = 31 nodes
    dot = draw_graph(y, max_nodes=10)
    nodes = nodes_of(dot)
    assert len(nodes) == 11 and nodes["more"][0][0] == "… 21 more nodes"
    kept = [n for n in nodes if n != "more"]
    assert titles({n: nodes[n] for n in kept}) == ["Neg"] * 10
    # The marker feeds the last kept op, where the cut is.
    assert [e for e in edges_of(dot) if e[0] == "more"] == [("more", kept[-1])]
    assert len(nodes_of(draw_graph(y, max_nodes=31))) == 31


def test_a_100000_op_chain_draws_without_recursion():
    x = tg.Tensor(np.ones(2, np.float32), requires_grad=True)
    y = x
    for _ in range(100_000):
        y = -y
    dot = draw_graph(y)  # recursion would raise RecursionError long before 100,000 levels
    assert len(nodes_of(dot)) == 100_001 and len(edges_of(dot)) == 100_000


# --------------------------------------------------------------------------- gradient flow

def test_gradient_flow_colours_separate_huge_and_tiny_gradients():
    big = tg.Tensor(np.ones(4, np.float32), requires_grad=True)
    small = tg.Tensor(np.ones(4, np.float32), requires_grad=True)
    loss = (big * 1e3).sum() + (small * 1e-3).sum()     # gradient norms 2e3 and 2e-3
    nodes = nodes_of(draw_graph(loss, params={"big": big, "small": small}, show_grads=True))
    b, s = find(nodes, "big"), find(nodes, "small")
    assert fill_of(nodes, b) != fill_of(nodes, s)
    assert float(nodes[b][0][-1].split()[-1]) == pytest.approx(2e3, rel=1e-3)
    assert float(nodes[s][0][-1].split()[-1]) == pytest.approx(2e-3, rel=1e-3)
    # Neither kind's plain fill survives: the colour is the gradient's.
    plain = nodes_of(draw_graph(loss, params={"big": big, "small": small}))
    assert fill_of(plain, find(plain, "big")) == fill_of(plain, find(plain, "small"))
    assert fill_of(plain, find(plain, "big")) not in (fill_of(nodes, b), fill_of(nodes, s))


def test_zero_and_nonfinite_gradients_get_their_own_colours():
    a = tg.Tensor(np.ones(2, np.float32), requires_grad=True)
    z = tg.Tensor(np.ones(2, np.float32), requires_grad=True)
    n = tg.Tensor(np.array([0.0, 1.0], np.float32), requires_grad=True)
    with np.errstate(all="ignore"):
        loss = (a * 2.0).sum() + (z * 0.0).sum() + n.sqrt().sum()   # d sqrt / dn at 0 is inf
        nodes = nodes_of(draw_graph(loss, params={"a": a, "z": z, "n": n}, show_grads=True))
    fills = {k: fill_of(nodes, find(nodes, k)) for k in "azn"}
    assert len(set(fills.values())) == 3


def test_show_grads_leaves_grad_untouched_and_the_graph_usable():
    a = tg.Tensor(np.array([1.0, 2.0], np.float32), requires_grad=True)
    loss = (a * a).sum()
    draw_graph(loss, params={"a": a}, show_grads=True)
    assert a.grad is None
    loss.backward()
    np.testing.assert_allclose(a.grad.numpy(), [2.0, 4.0])


def test_drawing_a_released_graph_says_what_to_do():
    a = tg.Tensor(np.ones(2, np.float32), requires_grad=True)
    loss = a.exp().sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        draw_graph(loss, show_grads=True)


def test_show_grads_needs_a_scalar_root():
    a = tg.Tensor(np.ones(2, np.float32), requires_grad=True)
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        draw_graph(a.exp(), show_grads=True)


def test_bad_arguments_are_named():
    a = tg.Tensor(np.ones(2, np.float32), requires_grad=True)
    with pytest.raises(TypeError, match="Tensor"):
        draw_graph(np.ones(2))
    with pytest.raises(ValueError, match="rankdir"):
        draw_graph(a.sum(), rankdir="XY")
    with pytest.raises(ValueError, match="max_nodes"):
        draw_graph(a.sum(), max_nodes=0)
    with pytest.raises(TypeError, match="params"):
        draw_graph(a.sum(), params=[a])


# --------------------------------------------------------------------------- rendering

@needs_dot
def test_svg_is_well_formed_and_names_the_parameters(tmp_path, traced_loss):
    model, _, loss = traced_loss
    path = render_graph(loss, tmp_path / "g.svg", params=model)
    assert path == tmp_path / "g.svg"
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg")
    text = " ".join(t.strip() for t in root.itertext())
    assert "0.weight" in text and "2.bias" in text


@needs_dot
def test_png_and_pdf_have_their_signatures(tmp_path, traced_loss):
    model, _, loss = traced_loss
    assert render_graph(loss, tmp_path / "g.png").read_bytes().startswith(PNG_SIGNATURE)
    assert render_graph(loss, tmp_path / "g.PDF").read_bytes().startswith(b"%PDF")


def test_dot_extension_writes_the_source_without_the_program(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "no-programs-here"))
    a = tg.Tensor(np.ones(2, np.float32), requires_grad=True)
    path = render_graph(a.exp().sum(), tmp_path / "g.dot", params={"a": a})
    text = path.read_text()
    assert text.startswith("digraph") and '"a\\n(2,) float32"' in text


def test_missing_dot_writes_the_source_and_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "no-programs-here"))
    (tmp_path / "g.svg").write_text("the user's old picture")
    a = tg.Tensor(np.ones(2, np.float32), requires_grad=True)
    with pytest.raises(GraphvizNotFoundError) as info:
        render_graph(a.exp().sum(), tmp_path / "g.svg", params={"a": a})
    message = str(info.value)
    assert "Graphviz" in message and "apt install graphviz" in message and "brew" in message
    assert "conda install" in message
    assert str(tmp_path / "g.dot") in message
    assert (tmp_path / "g.dot").read_text().startswith("digraph")
    assert (tmp_path / "g.svg").read_text() == "the user's old picture"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.dot", "g.svg"]  # no temp files


def test_missing_dot_in_a_fresh_process_with_empty_path(tmp_path):
    code = ("import numpy as np, tinygrad_mlp as tg\n"
            "from tinygrad_mlp.viz import render_graph\n"
            "a = tg.Tensor(np.ones(2, np.float32), requires_grad=True)\n"
            f"render_graph(a.exp().sum(), {str(tmp_path / 'g.png')!r})\n")
    result = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PATH": ""},
                            capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode != 0
    assert "GraphvizNotFoundError" in result.stderr and "Install Graphviz" in result.stderr
    assert (tmp_path / "g.dot").exists() and not (tmp_path / "g.png").exists()


def test_unknown_extension_is_a_clear_error_and_writes_nothing(tmp_path):
    a = tg.Tensor(np.ones(2, np.float32), requires_grad=True)
    with pytest.raises(ValueError, match=r"'\.jpg'.*\.svg, \.png, \.pdf, \.dot"):
        render_graph(a.sum(), tmp_path / "g.jpg")
    assert list(tmp_path.iterdir()) == []


@needs_dot
def test_render_model_graph_is_a_one_liner(tmp_path, rng):
    model = mlp(rng)
    x = tg.Tensor(rng.standard_normal((5, 3)).astype(np.float32))
    onehot = tg.Tensor(np.eye(2, dtype=np.float32)[[0, 1, 1, 0, 1]])
    path = render_model_graph(model, x, tmp_path / "graph.svg", loss_fn=cross_entropy,
                              target=onehot)
    text = " ".join(ET.parse(path).getroot().itertext())
    assert "0: Linear" in text and "2: Linear" in text and "MatMul" not in text
    assert autograd.module_stack() is None        # the trace ended with the call


# --------------------------------------------------------------------------- optional extras

def test_viz_imports_without_graphviz_and_matplotlib_and_says_what_to_install():
    code = ("import sys\n"
            "sys.modules['graphviz'] = None\n"
            "sys.modules['matplotlib'] = None\n"
            "import numpy as np, tinygrad_mlp as tg, tinygrad_mlp.viz as viz\n"
            "a = tg.Tensor(np.ones(2, np.float32), requires_grad=True)\n"
            "try:\n"
            "    viz.draw_graph(a.sum())\n"
            "except ImportError as e:\n"
            "    print('draw:', e)\n"
            "try:\n"
            "    viz.plot_loss\n"
            "except ImportError as e:\n"
            "    print('plot:', e)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, cwd=REPO)
    assert result.returncode == 0, result.stderr
    draw, plot = result.stdout.splitlines()
    assert draw.startswith("draw:") and "pip install 'tinygrad_mlp[viz]'" in draw
    assert plot.startswith("plot:") and "matplotlib" in plot


def test_viz_reexports_the_plot_functions():
    pytest.importorskip("matplotlib")
    import tinygrad_mlp.viz as viz
    from tinygrad_mlp.viz import plots
    for name in ("plot_loss", "plot_accuracy", "plot_history", "plot_weights",
                 "plot_confusion_matrix", "confusion_matrix", "plot_predictions"):
        assert getattr(viz, name) is getattr(plots, name)
    with pytest.raises(AttributeError):
        viz.no_such_function  # noqa: B018


# --------------------------------------------------------------------------- with tinygrad_mlp.nn

@pytest.fixture
def fashion_mlp(rng):
    from tinygrad_mlp import nn
    model = nn.Sequential(nn.Linear(784, 512, rng=rng), nn.ReLU(), nn.Linear(512, 256, rng=rng),
                          nn.ReLU(), nn.Linear(256, 10, rng=rng))
    x = tg.Tensor(rng.random((8, 784), dtype=np.float32))
    labels = rng.integers(0, 10, size=8)
    return model, nn.CrossEntropyLoss(), x, labels


def test_nn_model_names_and_one_node_per_module_call(fashion_mlp):
    model, loss_fn, x, labels = fashion_mlp
    with trace_modules():
        loss = loss_fn(model(x), labels)
    expanded = nodes_of(draw_graph(loss, params=model))
    for name, shape in [("0.weight", "(512, 784)"), ("2.bias", "(256,)"), ("4.weight", "(10, 256)")]:
        assert expanded[find(expanded, name)][0][1] == f"{shape} float32"
    collapsed = nodes_of(draw_graph(loss, params=model, collapse_modules=True, inputs={"x": x}))
    assert titles(collapsed) == sorted(["0: Linear", "1: ReLU", "2: Linear", "3: ReLU", "4: Linear",
                                        "CrossEntropyLoss (output)", "x"])


@needs_dot
def test_render_model_graph_with_nn_writes_the_collapsed_svg(tmp_path, fashion_mlp):
    model, loss_fn, x, labels = fashion_mlp
    path = render_model_graph(model, x, tmp_path / "graph.svg", loss_fn=loss_fn, target=labels)
    text = " ".join(ET.parse(path).getroot().itertext())
    for title in ("0: Linear", "4: Linear", "weight (512, 784)", "CrossEntropyLoss"):
        assert title in text


@needs_dot
def test_render_graph_takes_an_adjusted_drawing(tmp_path):
    a = tg.Tensor(np.ones(2, np.float32), requires_grad=True)
    small = draw_graph(a.exp().sum())
    small.attr(dpi="36")
    big = draw_graph(a.exp().sum())
    big.attr(dpi="144")
    png_small = render_graph(small, tmp_path / "small.png").read_bytes()
    png_big = render_graph(big, tmp_path / "big.png").read_bytes()
    width = lambda png: int.from_bytes(png[16:20], "big")  # noqa: E731 (IHDR width)
    assert width(png_big) > 3 * width(png_small)
    with pytest.raises(TypeError, match="already drawn"):
        render_graph(small, tmp_path / "x.svg", show_grads=True)


# --------------------------------------------------------------------------- where files go

def small_loss():
    w = tg.Tensor(np.ones(3, np.float32), requires_grad=True)
    return (w * 2.0).sum()


def test_a_file_used_as_a_directory_is_named_as_such(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(NotADirectoryError, match=r"notes\.txt' is a file, not a directory"):
        render_graph(small_loss(), tmp_path / "notes.txt" / "sub" / "g.dot")


def test_a_missing_directory_is_refused_not_created(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"directory .*nodir' does not exist"):
        render_graph(small_loss(), tmp_path / "nodir" / "g.dot")
    assert not (tmp_path / "nodir").exists()


def test_an_unwritable_directory_is_named(tmp_path, monkeypatch):
    from tinygrad_mlp.viz import _files
    monkeypatch.setattr(_files.os, "access", lambda *a: False)  # as an unprivileged user sees it
    with pytest.raises(PermissionError, match=r"no permission to create files in .*"):
        render_graph(small_loss(), tmp_path / "g.dot")


def test_a_failed_write_names_the_file_not_the_hidden_temporary_one(tmp_path, monkeypatch):
    import contextlib
    import errno
    from tinygrad_mlp.viz import _files

    @contextlib.contextmanager
    def full_disk(path, mode):
        hidden = os.path.join(os.path.dirname(path), ".g.dot.0123abcd.tmp")
        raise OSError(errno.ENOSPC, "No space left on device", hidden)
        yield

    monkeypatch.setattr(_files, "atomic_write", full_disk)
    with pytest.raises(OSError, match=r"render_graph: cannot write .*g\.dot'") as info:
        render_graph(small_loss(), tmp_path / "g.dot")
    assert ".tmp" not in str(info.value) and info.value.errno == errno.ENOSPC
