"""Train an MLP on Fashion-MNIST with tinygrad_mlp: the project's main job.

    python examples/fashion_mlp.py                 # the default run (about 90.6 % test accuracy, 6 minutes)
    python examples/fashion_mlp.py --quick         # a smoke run of under a minute (about 88 %)
    python examples/fashion_mlp.py --resume runs/20261127-010203
    python examples/fashion_mlp.py --eval-only runs/20261127-010203/model.npz

Everything a run produces goes into its run directory: config.json, model.npz (the kept model:
the last epoch's, or the best by validation with --keep), checkpoint.npz (resumable), metrics.csv, history.json, the plots and graph.svg.
This file uses the public API only; it is one example on top of the framework.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

import tinygrad_mlp as tg
from tinygrad_mlp import functional as F
from tinygrad_mlp import nn, optim, viz
from tinygrad_mlp.data import (CLASSES, DataLoader, FashionMNISTError, fit_normalization,
                               load_fashion_mnist, normalize, standardize_per_image, to_float,
                               train_val_split)
from tinygrad_mlp.training import evaluate, fit

# The default configuration, chosen on the validation split (docs/fashion_mnist.md has the search).
DEFAULTS = dict(hidden="512,256", activation="relu", dropout=0.2, batch_norm=False, epochs=40,
                batch_size=64, optimizer="adamw", lr=1e-3, momentum=0.9, weight_decay=1e-2,
                l2=0.0, schedule="cosine", step_size=10, gamma=0.5, decay=0.05, eta_min=0.0,
                label_smoothing=0.1, val_fraction=0.05, seed=0, preprocess="normalize",
                input_dropout=0.0, keep="last", ema=0.0)
QUICK = dict(epochs=3)
ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


class UsageError(Exception):
    """A bad argument or file: reported as one line, without a traceback."""


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Train an MLP on Fashion-MNIST with tinygrad_mlp.")
    p.add_argument("--hidden", help="hidden layer widths, comma-separated (default 512,256)")
    p.add_argument("--activation", choices=sorted(ACTIVATIONS))
    p.add_argument("--dropout", type=float, help="dropout after each hidden layer")
    p.add_argument("--batch-norm", action="store_true", default=None,
                   help="BatchNorm1d after each hidden Linear")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--optimizer", help="sgd, adam or adamw")
    p.add_argument("--lr", type=float, help="initial learning rate")
    p.add_argument("--momentum", type=float, help="SGD momentum")
    p.add_argument("--weight-decay", type=float, help="the optimiser's weight decay")
    p.add_argument("--l2", type=float, help="an L2 penalty added to the loss (l2/2 * sum w^2)")
    p.add_argument("--schedule", help="none, step, exp or cosine")
    p.add_argument("--step-size", type=int, help="step schedule: epochs between decays")
    p.add_argument("--gamma", type=float, help="step schedule: factor per decay")
    p.add_argument("--decay", type=float, help="exp schedule: lr = lr0 * exp(-decay * epoch)")
    p.add_argument("--eta-min", type=float, help="cosine schedule: the final learning rate")
    p.add_argument("--label-smoothing", type=float)
    p.add_argument("--val-fraction", type=float, help="share of the training set held out")
    p.add_argument("--preprocess", choices=["normalize", "per-image"],
                   help="normalise by the training set's mean/std, or standardise each image")
    p.add_argument("--keep", choices=["last", "val_acc", "val_loss"],
                   help="which epoch's model to keep: the last (default), or the one with the "
                        "best validation accuracy or loss")
    p.add_argument("--input-dropout", type=float, help="dropout on the input pixels")
    p.add_argument("--ema", type=float, metavar="DECAY",
                   help="keep an exponential moving average of the weights (e.g. 0.999) and "
                        "end with it (0: off, the default)")
    p.add_argument("--seed", type=int)
    p.add_argument("--data-dir", help="directory holding the four Fashion-MNIST files")
    p.add_argument("--out", help="run directory (default runs/<timestamp>/)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run")
    p.add_argument("--eval-only", metavar="MODEL.npz", help="evaluate a saved model on the test set")
    p.add_argument("--quick", action="store_true", help="a smoke run of about a minute")
    p.add_argument("--no-progress", action="store_true", help="no progress output per epoch")
    p.add_argument("--no-download", action="store_true", help="never download the data")
    return p.parse_args(argv)


def resolve_config(args) -> dict:
    """Defaults, then --quick, then the options given on the command line."""
    config = dict(DEFAULTS)
    if args.quick:
        config.update(QUICK)
    for key in DEFAULTS:
        value = getattr(args, key, None)
        if value is not None:
            config[key] = value
    check_config(config)
    return config


def parse_hidden(text) -> list:
    try:
        widths = [int(w) for w in str(text).split(",") if w.strip()]
    except ValueError:
        raise UsageError(f"--hidden must be comma-separated positive integers; got {text!r}")
    if not widths or any(w <= 0 for w in widths):
        raise UsageError(f"--hidden must be comma-separated positive integers; got {text!r}")
    return widths


def check_config(c: dict):
    parse_hidden(c["hidden"])
    checks = [
        (c["epochs"] >= 1, f"--epochs must be at least 1; got {c['epochs']}"),
        (c["batch_size"] >= 1, f"--batch-size must be at least 1; got {c['batch_size']}"),
        (c["lr"] > 0, f"--lr must be positive; got {c['lr']}"),
        (0 <= c["dropout"] < 1, f"--dropout must be in [0, 1); got {c['dropout']}"),
        (0 <= c["input_dropout"] < 1,
         f"--input-dropout must be in [0, 1); got {c['input_dropout']}"),
        (c["keep"] in ("last", "val_acc", "val_loss"),
         f"--keep must be last, val_acc or val_loss; got {c['keep']!r}"),
        (c["momentum"] >= 0, f"--momentum must be non-negative; got {c['momentum']}"),
        (c["weight_decay"] >= 0, f"--weight-decay must be non-negative; got {c['weight_decay']}"),
        (c["l2"] >= 0, f"--l2 must be non-negative; got {c['l2']}"),
        (0 < c["val_fraction"] < 1, f"--val-fraction must be in (0, 1); got {c['val_fraction']}"),
        (0 <= c["label_smoothing"] < 1,
         f"--label-smoothing must be in [0, 1); got {c['label_smoothing']}"),
        (c["optimizer"] in ("sgd", "adam", "adamw"),
         f"--optimizer must be sgd, adam or adamw; got {c['optimizer']!r}"),
        (c["schedule"] in ("none", "step", "exp", "cosine"),
         f"--schedule must be none, step, exp or cosine; got {c['schedule']!r}"),
        (c["step_size"] >= 1, f"--step-size must be at least 1; got {c['step_size']}"),
        (0 < c["gamma"] <= 1, f"--gamma must be in (0, 1]; got {c['gamma']}"),
        (c["decay"] >= 0, f"--decay must be non-negative; got {c['decay']}"),
        (c["eta_min"] >= 0, f"--eta-min must be non-negative; got {c['eta_min']}"),
        (c["activation"] in ACTIVATIONS, f"--activation must be one of {sorted(ACTIVATIONS)}"),
        (0 <= c["ema"] < 1, f"--ema must be in [0, 1); got {c['ema']}"),
    ]
    for ok, message in checks:
        if not ok:
            raise UsageError(message)


# ------------------------------------------------------------------------ model and training

def build_model(config: dict, rng: np.random.Generator) -> nn.Sequential:
    layers, width = [], 784
    if config["input_dropout"] > 0:
        layers.append(nn.Dropout(config["input_dropout"], rng=rng))
    for hidden in parse_hidden(config["hidden"]):
        layers.append(nn.Linear(width, hidden, rng=rng))
        if config["batch_norm"]:
            layers.append(nn.BatchNorm1d(hidden))
        layers.append(ACTIVATIONS[config["activation"]]())
        if config["dropout"] > 0:
            layers.append(nn.Dropout(config["dropout"], rng=rng))
        width = hidden
    layers.append(nn.Linear(width, 10, rng=rng))
    return nn.Sequential(*layers)


def build_optimizer(config: dict, params):
    name, lr, wd = config["optimizer"], config["lr"], config["weight_decay"]
    if name == "sgd":
        return optim.SGD(params, lr=lr, momentum=config["momentum"], weight_decay=wd,
                         nesterov=config["momentum"] > 0)
    if name == "adam":
        return optim.Adam(params, lr=lr, weight_decay=wd)
    return optim.AdamW(params, lr=lr, weight_decay=wd)


def build_scheduler(config: dict, optimizer):
    kind = config["schedule"]
    if kind == "step":  # the original project's step decay: lr0 * gamma ** (epoch // step_size)
        return optim.lr_scheduler.StepLR(optimizer, config["step_size"], config["gamma"])
    if kind == "exp":  # the original project's exponential decay: lr0 * exp(-decay * epoch)
        return optim.lr_scheduler.ExponentialLR(optimizer, float(np.exp(-config["decay"])))
    if kind == "cosine":
        return optim.lr_scheduler.CosineAnnealingLR(optimizer, config["epochs"],
                                                    eta_min=config["eta_min"])
    return None


def prepare_data(config: dict, data_dir=None, download=True):
    try:
        ds = load_fashion_mnist(root=data_dir, download=download)
    except FashionMNISTError as e:
        raise UsageError(str(e).replace("\n", " ")) from None
    rng = np.random.default_rng(config["seed"])
    x_train, y_train, x_val, y_val = train_val_split(to_float(ds.train_images), ds.train_labels,
                                                     config["val_fraction"], rng)
    x_test = to_float(ds.test_images)
    if config["preprocess"] == "per-image":
        x_train, x_val, x_test = (standardize_per_image(x) for x in (x_train, x_val, x_test))
    else:  # statistics of the training split only: the validation and test sets stay unseen
        mean, std = fit_normalization(x_train)
        x_train, x_val, x_test = (normalize(x, mean, std) for x in (x_train, x_val, x_test))
    return ds, (x_train, y_train), (x_val, y_val), (x_test, ds.test_labels)


# ------------------------------------------------------------------------ run directory

def new_run_dir(out) -> Path:
    """A fresh run directory; an existing one that holds anything is refused, never reused."""
    path = Path(out) if out else Path("runs") / time.strftime("%Y%m%d-%H%M%S")
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise UsageError(f"{path} already exists and is not empty; nothing in it was touched. "
                         f"Pass --resume {path} to continue that run, or choose another --out")
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_json(path: Path, obj):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)


def read_config(run_dir: Path) -> dict:
    path = run_dir / "config.json"
    try:
        saved = json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"{path} not found: is {run_dir} a run directory of this example?")
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot read {path}: {e}")
    config = dict(DEFAULTS)
    config.update({k: v for k, v in saved.items() if k in DEFAULTS})
    check_config(config)
    return config


# ------------------------------------------------------------------------ the commands

def train(config: dict, run_dir: Path, args, resume: bool) -> dict:
    ds, train_set, val_set, test_set = prepare_data(config, args.data_dir, not args.no_download)
    rng = np.random.default_rng(config["seed"])
    model = build_model(config, rng)
    optimizer = build_optimizer(config, list(model.parameters()))
    scheduler = build_scheduler(config, optimizer)
    train_loader = DataLoader(*train_set, config["batch_size"], shuffle=True, rng=rng)
    val_loader = DataLoader(*val_set, 1000)
    test_loader = DataLoader(*test_set, 1000)
    loss_fn = lambda logits, labels: F.cross_entropy(  # noqa: E731
        logits, labels, label_smoothing=config["label_smoothing"])

    print(f"tinygrad_mlp {tg.__version__}: training {model}\n"
          f"on {len(train_set[0])} images, validating on {len(val_set[0])}; run directory "
          f"{run_dir}", flush=True)
    started = time.time()
    # By default the last epoch is kept: the cosine schedule ends at a learning rate of 0, and
    # picking the best of the last, nearly equal epochs on 3,000 validation images mostly picks
    # noise (docs/fashion_mnist.md has the measurements).
    keep_best = config["keep"] != "last"
    # The average is updated after every step and checkpointed with the run (as a callback).
    ema = optim.EMA(model, config["ema"]) if config["ema"] else None
    if ema is not None:
        optimizer.register_step_post_hook(lambda *_: ema.update())
    history = fit(model, loss_fn, optimizer, train_loader, config["epochs"],
                  val_loader=val_loader, scheduler=scheduler, checkpoint_dir=run_dir,
                  progress=not args.no_progress, l2=config["l2"], resume=resume,
                  monitor=config["keep"] if keep_best else "val_loss", restore_best=keep_best,
                  callbacks=[ema] if ema is not None else [])
    if ema is not None:
        ema.copy_to()
    seconds = time.time() - started
    tg.save(model.state_dict(), run_dir / "model.npz")
    result = evaluate(model, test_loader)
    kept = history.best_epoch if keep_best else len(history)
    summary = dict(test_accuracy=result.accuracy, test_loss=result.loss,
                   kept_epoch=kept, epochs=config["epochs"],
                   train_seconds=round(seconds, 1))
    write_json(run_dir / "results.json", summary)
    write_figures(model, history, result, test_set, run_dir)
    return summary


def write_figures(model, history, result, test_set, run_dir: Path):
    """The plots and the graph. They need the optional viz extra; training does not."""
    try:
        viz.plot_history(history, run_dir / "curves.png")
        viz.plot_weights(model, run_dir / "weights.png")
        viz.plot_confusion_matrix(result.labels, result.predictions, CLASSES,
                                  run_dir / "confusion_matrix.png")
        viz.plot_predictions(test_set[0], result.labels, result.predictions, CLASSES,
                             run_dir / "predictions.png")
        x = tg.Tensor(test_set[0][:8])
        viz.render_model_graph(model, x, run_dir / "graph.svg", loss_fn=F.cross_entropy,
                               target=tg.Tensor(test_set[1][:8]))
    except ImportError as e:
        print(f"plots skipped: {e}", file=sys.stderr)
    except viz.GraphvizNotFoundError as e:  # the .dot source was written instead
        print(f"graph not rendered: {e}", file=sys.stderr)


def eval_only(model_path: Path, args) -> dict:
    if not model_path.is_file():
        raise UsageError(f"--eval-only: {model_path} is not a file")
    config = read_config(model_path.parent) if (model_path.parent / "config.json").exists() \
        else resolve_config(args)
    model = build_model(config, np.random.default_rng(0))
    try:
        model.load_state_dict(tg.load(model_path))
    except (OSError, ValueError, KeyError) as e:
        raise UsageError(f"--eval-only: cannot load {model_path}: {str(e).splitlines()[0]}")
    _, _, _, test_set = prepare_data(config, args.data_dir, not args.no_download)
    result = evaluate(model, DataLoader(*test_set, 1000))
    return dict(test_accuracy=result.accuracy, test_loss=result.loss)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        if args.eval_only:
            summary = eval_only(Path(args.eval_only), args)
            print(f"test accuracy {summary['test_accuracy']:.4f}  test loss "
                  f"{summary['test_loss']:.4f}")
            return 0
        if args.resume:
            run_dir = Path(args.resume)
            if not (run_dir / "checkpoint.npz").is_file():
                raise UsageError(f"--resume: {run_dir} holds no checkpoint.npz to resume from")
            config = read_config(run_dir)
        else:
            config = resolve_config(args)
            run_dir = new_run_dir(args.out)
            write_json(run_dir / "config.json", config)
        summary = train(config, run_dir, args, resume=bool(args.resume))
    except UsageError as e:
        print(f"fashion_mlp.py: error: {e}", file=sys.stderr)
        return 2
    print(f"test accuracy {summary['test_accuracy']:.4f} (model of epoch {summary['kept_epoch']}, "
          f"{summary['train_seconds']:.0f} s of training)\neverything is in {run_dir}/: "
          f"config.json model.npz checkpoint.npz metrics.csv history.json results.json "
          f"curves.png weights.png confusion_matrix.png predictions.png graph.svg")
    return 0


if __name__ == "__main__":
    sys.exit(main())
