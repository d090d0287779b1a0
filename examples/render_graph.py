"""Draw the Fashion-MNIST MLP's loss graph three ways: expanded, collapsed by module, gradient flow.

A user of the public API (top floor). Builds the 784-512-256-10 ReLU MLP with a cross-entropy
loss on one small batch (Fashion-MNIST if it is on this machine, random data of the same shape
otherwise; nothing is downloaded) and writes, as SVG and PNG, into the output directory:

    mlp_graph_expanded.*   every op and leaf, with parameter names, shapes and dtypes
    mlp_graph_collapsed.*  one box per module call
    mlp_graph_grads.*      every op, coloured by the norm of its gradient (log scale)

    python examples/render_graph.py [--out docs/img] [--batch 16] [--random]

Needs the viz extra (pip install 'tinygrad_mlp[viz]') and the Graphviz program ``dot``.
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

import tinygrad_mlp as tg
from tinygrad_mlp import nn
from tinygrad_mlp.viz import GraphvizNotFoundError, draw_graph, render_graph, trace_modules


def one_batch(batch: int, use_random: bool, rng):
    """(images as float32 (batch, 784), int labels (batch,), where they came from)."""
    if not use_random:
        from tinygrad_mlp.data import FashionMNISTError, load_fashion_mnist, to_float
        try:
            data = load_fashion_mnist(download=False)
            return to_float(data.train_images[:batch]), data.train_labels[:batch], "Fashion-MNIST"
        except FashionMNISTError as exc:
            print(f"Fashion-MNIST not found ({type(exc).__name__}); using random data",
                  file=sys.stderr)
    x = rng.random((batch, 784), dtype=np.float32)
    return x, rng.integers(0, 10, size=batch), "random data"


def mlp_loss(batch: int = 16, use_random: bool = False):
    """The MLP, its input Tensor, the labels and the loss on one batch, recorded under a module
    trace (which collapse_modules needs); and where the batch came from."""
    rng = np.random.default_rng(0)
    images, labels, source = one_batch(batch, use_random, rng)
    model = nn.Sequential(nn.Linear(784, 512, rng=rng), nn.ReLU(), nn.Linear(512, 256, rng=rng),
                          nn.ReLU(), nn.Linear(256, 10, rng=rng))
    loss_fn = nn.CrossEntropyLoss()
    x = tg.Tensor(images)
    with trace_modules():
        loss = loss_fn(model(x), labels)
    return model, x, labels, loss, source


# Long chains read better top to bottom; the short collapsed chain left to right. A lower
# resolution keeps the tall PNGs small enough to commit.
VIEWS = {
    "expanded": (dict(rankdir="TB"), "80"),
    "collapsed": (dict(collapse_modules=True), "96"),
    "grads": (dict(show_grads=True, rankdir="TB"), "80"),
}


def render_views(model, x, loss, out: Path) -> dict:
    """Write each view as SVG and PNG into ``out``; returns {view: the drawn graphviz.Digraph}."""
    graphs = {}
    for view, (options, dpi) in VIEWS.items():
        start = time.perf_counter()
        graph = graphs[view] = draw_graph(loss, params=model, inputs={"x": x}, **options)
        draw_ms = (time.perf_counter() - start) * 1e3
        nodes = sum(1 for line in graph.body if "[label=" in line and "legend" not in line)
        print(f"{view}: {nodes} nodes, drawn in {draw_ms:.1f} ms")
        graph.attr(dpi=dpi)
        for ext in (".svg", ".png"):
            start = time.perf_counter()
            try:
                path = render_graph(graph, out / f"mlp_graph_{view}{ext}")
            except GraphvizNotFoundError as exc:
                sys.exit(str(exc))
            ms = (time.perf_counter() - start) * 1e3
            print(f"    {path}  ({path.stat().st_size / 1024:.0f} KB, rendered in {ms:.0f} ms)")
    return graphs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/img"), help="output directory")
    parser.add_argument("--batch", type=int, default=16, help="batch size (default 16)")
    parser.add_argument("--random", action="store_true", help="use random data, not the dataset")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    model, x, _, loss, source = mlp_loss(args.batch, args.random)
    print(f"loss on one batch of {args.batch} ({source}): {loss.item():.4f}")
    render_views(model, x, loss, args.out)


if __name__ == "__main__":
    main()
