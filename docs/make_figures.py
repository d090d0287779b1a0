"""Make every figure in docs/img and print the numbers the docs quote beside them.

    python docs/make_figures.py --run runs/<timestamp>   # training figures from a finished run
    python docs/make_figures.py                          # ... from a fresh --quick run (3 epochs)
    python docs/make_figures.py --graphs-only            # only the computation graphs

The computation graphs (mlp_graph_{expanded,collapsed,grads}.{svg,png}) are drawn by
examples/render_graph.py for the 784-512-256-10 MLP on the first 16 Fashion-MNIST training images.
The training figures (fashion_{curves,weights,confusion_matrix,predictions}.png) come from a run
directory of examples/fashion_mlp.py: its history.json, config.json and model.npz, with the model
evaluated again on the test set. Needs the viz extra and Graphviz's ``dot``.

``graph_numbers()`` is what tests/test_docs.py checks docs/visualization.md against, so the counts
quoted there cannot drift from the code.
"""
import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import tinygrad_mlp as tg

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
IMG = DOCS / "img"


def _load_example(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------- graphs

def node_kinds(graph) -> dict:
    """Count the drawn nodes of a graphviz.Digraph by kind, from their DOT attributes."""
    counts = dict(ops=0, parameters=0, inputs=0, constants=0)
    for line in graph.body:
        if "[label=" not in line or line.lstrip().startswith(("legend", "more")):
            continue
        if 'shape="ellipse"' in line:
            counts["ops"] += 1
        elif 'style="filled,dotted"' in line:
            counts["constants"] += 1
        elif 'style="filled,dashed"' in line:
            counts["inputs"] += 1
        else:
            counts["parameters"] += 1
    counts["nodes"] = sum(counts.values())
    return counts


def graph_numbers(render_to=None) -> dict:
    """The numbers docs/visualization.md quotes about the MLP's loss graph (and, with
    ``render_to``, the figures written there)."""
    from tinygrad_mlp.viz import draw_graph
    example = _load_example("render_graph")
    model, x, labels, loss, source = example.mlp_loss()
    if render_to is not None:
        graphs = example.render_views(model, x, loss, Path(render_to))
        expanded, collapsed = graphs["expanded"], graphs["collapsed"]
    else:
        expanded = draw_graph(loss, params=model, inputs={"x": x})
        collapsed = draw_graph(loss, params=model, inputs={"x": x}, collapse_modules=True)
    numbers = {"source": source, "loss": round(loss.item(), 4), **node_kinds(expanded),
               "collapsed_nodes": node_kinds(collapsed)["nodes"]}

    # The gradient-flow view: the gradient reaching each Linear's output, and each weight matrix.
    outputs, h = [], x
    for layer in model:
        h = layer(h)
        if isinstance(layer, tg.nn.Linear):
            outputs.append(h)
    weights = [layer.weight for layer in model if isinstance(layer, tg.nn.Linear)]
    grads = tg.grad(tg.nn.CrossEntropyLoss()(h, labels), outputs + weights)
    norms = [float(np.linalg.norm(g.numpy().astype(np.float64))) for g in grads]
    numbers["grad_last_layer_output"] = round(norms[len(outputs) - 1], 2)
    numbers["grad_first_layer_output"] = round(norms[0], 2)
    numbers["grad_weights_min"] = round(min(norms[len(outputs):]), 1)
    numbers["grad_weights_max"] = round(max(norms[len(outputs):]), 1)
    return numbers


def graph_sentence(n: dict) -> str:
    """The sentence of docs/visualization.md that states the expanded graph's size."""
    return (f"{n['nodes']} here ({n['ops']} ops, {n['parameters']} parameters, the input and "
            f"{n['constants']} constants)")


# --------------------------------------------------------------------------- training figures

def quick_run(out: Path) -> Path:
    """A fresh ``fashion_mlp.py --quick`` run (3 epochs, seed 0) into ``out``."""
    subprocess.run([sys.executable, str(ROOT / "examples" / "fashion_mlp.py"), "--quick",
                    "--no-progress", "--out", str(out)], check=True, cwd=ROOT,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    return out


def training_figures(run_dir: Path, out: Path) -> dict:
    """The four figures of a finished run of examples/fashion_mlp.py; returns its numbers."""
    from tinygrad_mlp import viz
    from tinygrad_mlp.data import CLASSES, DataLoader
    from tinygrad_mlp.training import evaluate
    example = _load_example("fashion_mlp")
    config = example.read_config(run_dir)
    history = json.loads((run_dir / "history.json").read_text())
    # The run's self-contained model file: weights, architecture and preprocessing together.
    model, _ = example.fashion_deploy.load_model(run_dir / "model.npz", example.build_model,
                                                 example.DEFAULTS)
    _, _, _, test_set, _ = example.prepare_data(config, download=False)
    result = evaluate(model, DataLoader(*test_set, 1000))
    viz.plot_history(history, out / "fashion_curves.png",
                     loss_label=example.loss_label(config["label_smoothing"]))
    viz.plot_weights(model, out / "fashion_weights.png", input_shape=(28, 28))
    viz.plot_confusion_matrix(result.labels, result.predictions, CLASSES,
                              out / "fashion_confusion_matrix.png")
    viz.plot_predictions(test_set[0], result.labels, result.predictions, CLASSES,
                         out / "fashion_predictions.png")
    weights = [p.numpy() for name, p in model.named_parameters() if name.endswith("weight")]
    return {"run": str(run_dir), "epochs": config["epochs"], "seed": config["seed"],
            "test_accuracy": round(100 * result.accuracy, 2),
            "test_loss_plain_cross_entropy": round(result.loss, 3),
            "first_layer_abs_weight_p99": round(float(np.percentile(np.abs(weights[0]), 99)), 3),
            "first_layer_abs_weight_max": round(float(np.abs(weights[0]).max()), 3)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="a finished run directory of fashion_mlp.py "
                                                 "(default: make a fresh --quick run)")
    parser.add_argument("--out", type=Path, default=IMG, help="where the figures go (docs/img)")
    parser.add_argument("--graphs-only", action="store_true", help="skip the training figures")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    numbers = graph_numbers(render_to=args.out)
    print("\ndocs/visualization.md quotes:")
    print(f"  expanded graph: {graph_sentence(numbers)}; collapsed: {numbers['collapsed_nodes']} "
          f"nodes; data: {numbers['source']}")
    print(f"  gradient norms: Linear outputs from {numbers['grad_last_layer_output']} (last) to "
          f"{numbers['grad_first_layer_output']} (first); weight matrices "
          f"{numbers['grad_weights_min']} to {numbers['grad_weights_max']}")
    if args.graphs_only:
        return
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = args.run or quick_run(Path(tmp) / "run")
        run = training_figures(run_dir, args.out)
    print("\ndocs/fashion_mnist.md quotes (figures of this run):")
    print("  " + json.dumps(run))


if __name__ == "__main__":
    main()
