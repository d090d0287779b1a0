"""Train an MLP on Fashion-MNIST with tinygrad_mlp: the project's main job.

    python examples/fashion_mlp.py                 # the default run (about 90.6 % test accuracy, 6 minutes)
    python examples/fashion_mlp.py --quick         # a smoke run of under a minute (about 88 %)
    python examples/fashion_mlp.py --resume runs/20261127-010203
    python examples/fashion_mlp.py --eval-only runs/20261127-010203/model.npz
    python examples/fashion_mlp.py --predict runs/20261127-010203/model.npz shirt.jpg
    python examples/fashion_mlp.py --eval-only runs/20261127-010203/model.npz --export-onnx m.onnx

Everything a run produces goes into its run directory: config.json, model.npz (the kept model:
the last epoch's, or the best by validation with --keep; self-contained, see fashion_deploy.py),
checkpoint.npz (resumable), metrics.csv, history.json, results.json, the plots and graph.svg.
run_directory.py beside this file holds the run directory's states and lock, and reports failures
as one line each (exit status 2 bad input, 1 failure while running, 130 interrupted;
docs/training.md lists them).
This file uses the public API only; it is one example on top of the framework.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

import tinygrad_mlp as tg
from tinygrad_mlp import functional as F
from tinygrad_mlp import nn, optim, viz
from tinygrad_mlp.data import (CLASSES, DataLoader, FashionMNISTError, load_fashion_mnist,
                               to_float, train_val_split)
from tinygrad_mlp.training import CHECKPOINT_FILE, evaluate, fit

if os.path.dirname(os.path.abspath(__file__)) not in sys.path:  # our helper modules are beside us
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fashion_deploy  # noqa: E402  (model files, --predict, --export-onnx)
# The run directory's states, lock and failure reports (examples/run_directory.py).
from run_directory import (DEBUG_ENV, UsageError, checkpoint_epoch, hold,
                           refuse_if_in_use, report, run_state, sigterm_as_interrupt, write_json)


# The default configuration, chosen on the validation split (docs/fashion_mnist.md has the search).
DEFAULTS = dict(hidden="512,256", activation="relu", dropout=0.2, batch_norm=False, epochs=40,
                batch_size=64, optimizer="adamw", lr=1e-3, momentum=0.9, weight_decay=1e-2,
                l2=0.0, schedule="cosine", step_size=10, gamma=0.5, decay=0.05, eta_min=0.0,
                label_smoothing=0.1, val_fraction=0.05, seed=0, preprocess="normalize",
                input_dropout=0.0, keep="last", ema=0.0)
QUICK = dict(epochs=3)
ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """``--help`` shows each option's default, taken from DEFAULTS (the one place they are set)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.dest in DEFAULTS:
            text += f" (default: {DEFAULTS[action.dest]}" + \
                (f"; --quick: {QUICK[action.dest]})" if action.dest in QUICK else ")")
        return text


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Train an MLP on Fashion-MNIST with tinygrad_mlp.",
                                formatter_class=DefaultsHelpFormatter)
    p.add_argument("--hidden", help="hidden layer widths, comma-separated")
    p.add_argument("--activation", choices=sorted(ACTIVATIONS), help="hidden-layer activation")
    p.add_argument("--dropout", type=float, help="dropout after each hidden layer")
    p.add_argument("--batch-norm", action="store_true", default=None,
                   help="BatchNorm1d after each hidden Linear")
    p.add_argument("--epochs", type=int, help="epochs to train (the total, also when resuming)")
    p.add_argument("--batch-size", type=int, help="training batch size")
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
    p.add_argument("--label-smoothing", type=float,
                   help="label smoothing of the training loss (the test loss is plain "
                        "cross-entropy)")
    p.add_argument("--val-fraction", type=float, help="share of the training set held out")
    p.add_argument("--preprocess", choices=["normalize", "per-image"],
                   help="normalise by the training set's mean/std, or standardise each image")
    p.add_argument("--keep", choices=["last", "val_acc", "val_loss"],
                   help="which epoch's model to keep: the last, or the one with the best "
                        "validation accuracy or loss")
    p.add_argument("--input-dropout", type=float, help="dropout on the input pixels")
    p.add_argument("--ema", type=float, metavar="DECAY",
                   help="keep an exponential moving average of the weights (e.g. 0.999) and "
                        "end with it (0: off, the default)")
    p.add_argument("--seed", type=int, help="seed of the split, initialisation, shuffling, dropout")
    p.add_argument("--data-dir", help="directory holding the four Fashion-MNIST files")
    p.add_argument("--out", help="run directory (default runs/<timestamp>/)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run")
    p.add_argument("--eval-only", metavar="MODEL.npz", help="evaluate a saved model on the test set")
    p.add_argument("--quick", action="store_true", help="a smoke run of about a minute")
    p.add_argument("--no-progress", action="store_true", help="no progress output per epoch")
    p.add_argument("--no-compile", action="store_true",
                   help="run every training step eagerly instead of replaying a captured step "
                        "(tinygrad_mlp.jit; the results are the same)")
    p.add_argument("--no-download", action="store_true", help="never download the data")
    fashion_deploy.add_arguments(p)
    p.add_argument("--debug", action="store_true",
                   help=f"show the traceback of a failure (or set {DEBUG_ENV}=1)")
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
    if kind == "step":  # step decay: lr0 * gamma ** (epoch // step_size)
        return optim.lr_scheduler.StepLR(optimizer, config["step_size"], config["gamma"])
    if kind == "exp":  # exponential decay: lr0 * exp(-decay * epoch)
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
    # Statistics of the training split only (the validation and test sets stay unseen); they go
    # into model.npz, so that the model can be used without the data set.
    preprocessing = fashion_deploy.fit_preprocessing(config, x_train)
    x_train, x_val, x_test = (fashion_deploy.apply_preprocessing(preprocessing, x)
                              for x in (x_train, x_val, x_test))
    return ds, (x_train, y_train), (x_val, y_val), (x_test, ds.test_labels), preprocessing


# ------------------------------------------------------------------------ run directory

def plan_run(args):
    """``(run_dir, config, resume)`` for a training command, from the run directory's state; a
    state the command cannot act on is a UsageError, raised before anything is touched."""
    if args.resume:
        run_dir = Path(args.resume)
        state = run_state(run_dir)
        if state == "fresh":
            what = "does not exist" if not run_dir.exists() else "is empty"
            raise UsageError(f"--resume: {run_dir} {what}: no config.json or {CHECKPOINT_FILE} "
                             f"to resume from; start a run there with --out {run_dir}")
        if state == "foreign":
            raise UsageError(f"--resume: {run_dir} is not a run directory of this example (it "
                             f"needs config.json, and holds nothing else but the run's files); "
                             f"nothing in it was touched")
        config = read_config(run_dir)
        done = checkpoint_epoch(run_dir, fingerprint(config))
        if done is not None and done > config["epochs"]:
            raise UsageError(f"--resume: {run_dir / CHECKPOINT_FILE} has {done} epochs done, "
                             f"but config.json asks for {config['epochs']}; nothing was changed")
        if state == "finished" and done == config["epochs"]:
            return run_dir, config, "finished"
        return run_dir, config, "resume" if done is not None else "restart"
    config = resolve_config(args)
    run_dir = Path(args.out)
    state = run_state(run_dir)
    if state == "started":
        return run_dir, config, "rerun"
    if state == "resumable":
        raise UsageError(f"{run_dir} holds an unfinished run; continue it with --resume "
                         f"{run_dir}, or choose another --out; nothing in it was touched")
    if state == "finished":
        raise UsageError(f"{run_dir} holds a finished run (evaluate it with --eval-only "
                         f"{run_dir / 'model.npz'}); choose another --out; nothing in it was "
                         f"touched")
    if state == "foreign":
        raise UsageError(f"{run_dir} already exists and is not empty; nothing in it was touched. "
                         f"Pass --resume {run_dir} to continue that run, or choose another --out")
    return run_dir, config, "new"


@contextlib.contextmanager
def locked_run(args):
    """Plan the run, then hold the run directory's lock while it runs. Yields
    ``(run_dir, config, mode)``."""
    refuse_if_in_use(Path(args.resume or args.out))  # whatever state the directory is in
    run_dir, config, mode = plan_run(args)

    def recheck():  # planned again under the lock: another process may have changed it between
        if plan_run(args)[2] != mode:
            raise UsageError(f"{run_dir} was changed by another process while this one started; "
                             f"nothing was changed")

    with hold(run_dir, recheck, clean=mode != "new"):
        yield run_dir, config, mode


def read_config(run_dir: Path) -> dict:
    path = run_dir / "config.json"
    try:
        saved = json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"{path} not found: is {run_dir} a run directory of this example?")
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot read {path}: {e}")
    if not isinstance(saved, dict):
        raise UsageError(f"cannot read {path}: expected a JSON object, got "
                         f"{type(saved).__name__}")
    config = dict(DEFAULTS)
    config.update({k: v for k, v in saved.items() if k in DEFAULTS})
    check_config(config)
    return config


def fingerprint(config: dict) -> dict:
    """The settings a checkpoint must have been written under to be resumed: all of them, but
    the number of epochs when the schedule does not depend on it (a run may then be extended by
    raising "epochs" in config.json; the cosine schedule's length is the number of epochs)."""
    if config["schedule"] == "cosine":
        return dict(config)
    return {k: v for k, v in config.items() if k != "epochs"}


# ------------------------------------------------------------------------ the commands

def train(config: dict, run_dir: Path, args, resume: bool) -> dict:
    ds, train_set, val_set, test_set, preprocessing = prepare_data(config, args.data_dir,
                                                                   not args.no_download)
    started = time.time()
    model, history = fit_on_splits(config, run_dir, train_set, val_set, resume=resume,
                                   progress=not args.no_progress, announce=True,
                                   compile=not args.no_compile)
    seconds = time.time() - started
    test_loader = DataLoader(*test_set, 1000)
    result = evaluate(model, test_loader)
    fashion_deploy.save_model(run_dir / "model.npz", model, config, preprocessing,
                              result.accuracy, result.loss)
    smoothing = config["label_smoothing"]
    kept = history.best_epoch if config["keep"] != "last" else len(history)
    summary = dict(test_accuracy=result.accuracy, test_loss=result.loss,
                   test_loss_label_smoothed=evaluate(model, test_loader, make_loss(config)).loss,
                   loss_note=f"test_loss is plain cross-entropy; test_loss_label_smoothed and the "
                             f"train_loss/val_loss of history.json and curves.png are the "
                             f"training loss, cross-entropy with label smoothing {smoothing}",
                   kept_epoch=kept, epochs=config["epochs"],
                   train_seconds=round(seconds, 1))
    write_figures(model, history, result, test_set, run_dir, smoothing)
    write_json(run_dir / "results.json", summary)  # last: a run with results.json is finished
    return summary


def make_loss(config: dict):
    """The training loss: cross-entropy with the configured label smoothing."""
    smoothing = config["label_smoothing"]
    return lambda logits, labels: F.cross_entropy(logits, labels, label_smoothing=smoothing)


def fit_on_splits(config: dict, run_dir: Path, train_set, val_set, callbacks=(), resume=False,
                  progress=False, announce=False, compile=True):
    """Training plus validation only, without the test set: build the model, optimiser, schedule
    and loaders from ``config``, fit on ``train_set`` with ``val_set`` for validation,
    checkpointing into ``run_dir``. Returns ``(model, history)``. ``train`` evaluates the test
    set after it; a hyper-parameter sweep calls it alone, so it never sees test accuracy."""
    tg.manual_seed(config["seed"])  # the default generator is in the checkpoint: seed it too
    rng = np.random.default_rng(config["seed"])
    model = build_model(config, rng)
    optimizer = build_optimizer(config, list(model.parameters()))
    scheduler = build_scheduler(config, optimizer)
    train_loader = DataLoader(*train_set, config["batch_size"], shuffle=True, rng=rng)
    val_loader = DataLoader(*val_set, 1000)
    if announce:
        print(f"tinygrad_mlp {tg.__version__}: training {model}\n"
              f"on {len(train_set[0])} images, validating on {len(val_set[0])}; run directory "
              f"{run_dir}", flush=True)
    # By default the last epoch is kept: the cosine schedule ends at a learning rate of 0, and
    # picking the best of the last, nearly equal epochs on 3,000 validation images mostly picks
    # noise (docs/fashion_mnist.md has the measurements).
    keep_best = config["keep"] != "last"
    # The average is updated after every step and checkpointed with the run (as a callback).
    ema = optim.EMA(model, config["ema"]) if config["ema"] else None
    if ema is not None:
        optimizer.register_step_post_hook(lambda *_: ema.update())
        callbacks = [*callbacks, ema]
    history = fit(model, make_loss(config), optimizer, train_loader, config["epochs"],
                  val_loader=val_loader, scheduler=scheduler, checkpoint_dir=run_dir,
                  progress=progress, l2=config["l2"], resume=resume, callbacks=callbacks,
                  monitor=config["keep"] if keep_best else "val_loss", restore_best=keep_best,
                  config=fingerprint(config), compile=compile)
    if ema is not None:
        ema.copy_to()  # end with the averaged weights
    return model, history


def loss_label(smoothing: float) -> str:
    """What the training and validation loss are, for the curves."""
    return f"cross-entropy, label smoothing {smoothing:g}" if smoothing else "cross-entropy"


def write_figures(model, history, result, test_set, run_dir: Path, smoothing=0.0):
    """The plots and the graph. They need the optional viz extra; training does not."""
    try:
        viz.plot_history(history, run_dir / "curves.png", loss_label=loss_label(smoothing))
        viz.plot_weights(model, run_dir / "weights.png", input_shape=(28, 28))
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
    """Test accuracy of a model file; its metadata says the architecture and preprocessing (an
    older file falls back to the config.json beside it and recomputes the statistics)."""
    onnx_path = fashion_deploy.check_export_path(args.export_onnx) if args.export_onnx else None
    model, metadata = fashion_deploy.load_model(model_path, build_model, DEFAULTS)
    preprocessing = metadata["preprocessing"]
    if preprocessing is None:  # an older model file
        _, _, _, test_set, preprocessing = prepare_data(dict(DEFAULTS, **metadata["config"]),
                                                        args.data_dir, not args.no_download)
    else:
        try:
            ds = load_fashion_mnist(root=args.data_dir, download=not args.no_download)
        except FashionMNISTError as e:
            raise UsageError(str(e).replace("\n", " ")) from None
        test_set = (fashion_deploy.apply_preprocessing(preprocessing, to_float(ds.test_images)),
                    ds.test_labels)
    result = evaluate(model, DataLoader(*test_set, 1000))
    if onnx_path is not None:
        fashion_deploy.export_onnx(model, metadata, onnx_path, preprocessing)
    return dict(test_accuracy=result.accuracy, test_loss=result.loss)


def run_training(args) -> int:
    with locked_run(args) as (run_dir, config, mode):
        if mode == "finished":
            try:
                results = json.loads((run_dir / "results.json").read_text())
                accuracy = f"{results['test_accuracy']:.4f}"
            except (OSError, ValueError, KeyError, TypeError):
                accuracy = "unknown (results.json is unreadable)"
            print(f"{run_dir} is finished: {config['epochs']} of {config['epochs']} epochs, test "
                  f"accuracy {accuracy}; nothing to do (raise \"epochs\" in its config.json to "
                  f"train on)")
            return 0
        if mode == "restart":
            print(f"{run_dir} has no checkpoint yet (the run stopped before its first epoch "
                  f"ended): starting it again from epoch 0 with its config.json", flush=True)
        elif mode == "rerun":
            print(f"{run_dir} holds a run that stopped before its first epoch ended: starting "
                  f"a new run in it with the options given", flush=True)
        if mode in ("new", "rerun"):
            write_json(run_dir / "config.json", config)
        summary = train(config, run_dir, args, resume=mode == "resume")
        if args.export_onnx:
            model, metadata = fashion_deploy.load_model(run_dir / "model.npz", build_model,
                                                        DEFAULTS)
            fashion_deploy.export_onnx(model, metadata, fashion_deploy.check_export_path(
                args.export_onnx))
    print(f"test accuracy {summary['test_accuracy']:.4f} (model of epoch {summary['kept_epoch']}, "
          f"{summary['train_seconds']:.0f} s of training)\neverything is in {run_dir}/: "
          f"config.json model.npz checkpoint.npz metrics.csv history.json results.json "
          f"curves.png weights.png confusion_matrix.png predictions.png graph.svg")
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    debug = args.debug or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    if not debug:  # numpy's overflow warnings before a NaN loss: the one-line error says it all
        warnings.simplefilter("ignore", RuntimeWarning)
    if args.predict:
        return fashion_deploy.run_predict(args, build_model, DEFAULTS)
    run_dir = None
    with sigterm_as_interrupt():
        try:
            if args.eval_only:
                summary = eval_only(Path(args.eval_only), args)
                print(f"test accuracy {summary['test_accuracy']:.4f}  test loss "
                      f"{summary['test_loss']:.4f}")
                return 0
            if args.export_onnx:  # a bad path is refused now rather than after the training
                fashion_deploy.check_export_path(args.export_onnx)
            if not args.resume and not args.out:
                args.out = str(Path("runs") / time.strftime("%Y%m%d-%H%M%S"))
            run_dir = Path(args.resume or args.out)
            return run_training(args)
        except fashion_deploy.DeployError as error:  # a bad model file or export path
            print(f"fashion_mlp.py: error: {error}", file=sys.stderr)
            return 2
        except (Exception, KeyboardInterrupt) as error:
            return report(error, run_dir, debug, "fashion_mlp.py")


if __name__ == "__main__":
    sys.exit(main())
