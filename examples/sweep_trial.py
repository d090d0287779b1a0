"""The pieces of examples/sweep.py that say what one trial is: the search space, the sweep's
settings, where it keeps its files, its pruner and samplers, the cached data splits and the
objective a worker process runs (docs/sweeps.md). The command line is in sweep.py.
"""
from __future__ import annotations

import fcntl
import json
import math
import os
import socket
import sys
import time
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fashion_mlp as fm  # noqa: E402  (the example a sweep tunes)

import tinygrad_mlp as tg  # noqa: E402
from tinygrad_mlp.data import DataLoader  # noqa: E402
from tinygrad_mlp.training import (CHECKPOINT_FILE, NonFiniteLossError, evaluate,  # noqa: E402
                                   load_checkpoint)

UsageError = fm.UsageError

# The default search space; --space FILE replaces it with a JSON object of the same form.
# A key is an option of examples/fashion_mlp.py; {"low", "high", "log"} is a float range,
# {"low", "high", "int": true} an integer range, {"choices": [...]} a categorical choice.
SPACE = {
    "lr": {"low": 3e-4, "high": 3e-3, "log": True},
    "weight_decay": {"low": 1e-4, "high": 1e-1, "log": True},
    "dropout": {"low": 0.0, "high": 0.5},
    "label_smoothing": {"low": 0.0, "high": 0.2},
    "hidden": {"choices": ["256", "256,128", "512,256", "512,512"]},
}
# What every trial shares: the schedule's length, the data split and the model kept.
FIXED = {"epochs", "seed", "val_fraction", "keep"}
# A trial's value: the validation accuracy of its last epoch (the model the example keeps).
MONITOR = "val_acc"


# ------------------------------------------------------------------------ settings and space

def check_space(space) -> dict:
    if not isinstance(space, dict) or not space:
        raise UsageError("the search space must be a non-empty JSON object of option: range")
    for key, spec in space.items():
        where = f"search space: {key!r}"
        if key not in fm.DEFAULTS or key in FIXED:
            raise UsageError(f"{where} is not an option a sweep can vary; options: "
                             f"{sorted(set(fm.DEFAULTS) - FIXED)}")
        if not isinstance(spec, dict):
            raise UsageError(f"{where} must be an object like {{\"low\": 0, \"high\": 1}} or "
                             f"{{\"choices\": [...]}}; got {spec!r}")
        if "choices" in spec:
            if not isinstance(spec["choices"], list) or not spec["choices"]:
                raise UsageError(f"{where}: choices must be a non-empty list")
        elif {"low", "high"} <= set(spec):
            low, high = spec["low"], spec["high"]
            if not all(isinstance(v, (int, float)) for v in (low, high)) or not low < high:
                raise UsageError(f"{where}: needs numbers low < high; got {low!r}, {high!r}")
            if spec.get("log") and low <= 0:
                raise UsageError(f"{where}: a log range needs low > 0; got {low}")
            unknown = set(spec) - {"low", "high", "log", "int"}
            if unknown:
                raise UsageError(f"{where}: unknown keys {sorted(unknown)}")
        else:
            raise UsageError(f"{where} needs either low and high, or choices; got {spec!r}")
    return space


def in_space(space, key, value) -> bool:
    spec = space[key]
    if "choices" in spec:
        return value in spec["choices"]
    return spec["low"] <= value <= spec["high"]


def suggest(trial, space) -> dict:
    params = {}
    for key, spec in space.items():
        if "choices" in spec:
            params[key] = trial.suggest_categorical(key, spec["choices"])
        elif spec.get("int"):
            params[key] = trial.suggest_int(key, int(spec["low"]), int(spec["high"]),
                                            log=bool(spec.get("log")))
        else:
            params[key] = trial.suggest_float(key, float(spec["low"]), float(spec["high"]),
                                              log=bool(spec.get("log")))
    return params


def trial_config(settings, params, seed=None) -> dict:
    config = dict(fm.DEFAULTS)
    config.update(settings["base"])
    config.update(params)
    config["epochs"] = settings["epochs"]
    config["seed"] = settings["split_seed"] if seed is None else seed
    fm.check_config(config)
    return config


def new_settings(args) -> dict:
    space = SPACE
    if args.space:
        try:
            space = json.loads(Path(args.space).read_text())
        except (OSError, ValueError) as e:
            raise UsageError(f"--space: cannot read {args.space}: {e}")
    check_space(space)
    epochs = args.epochs if args.epochs is not None else fm.DEFAULTS["epochs"]
    if epochs < 1:
        raise UsageError(f"--epochs must be at least 1; got {epochs}")
    if args.subset is not None and args.subset < 100:
        raise UsageError(f"--subset must be at least 100 training images; got {args.subset}")
    for key in space:
        if not in_space(space, key, fm.DEFAULTS[key]):
            raise UsageError(f"search space: the default {key}={fm.DEFAULTS[key]!r} is outside "
                             f"{space[key]}; trial 0 runs the defaults, so the space must hold "
                             f"them")
    return {"epochs": epochs, "subset": args.subset, "space": space, "base": {},
            "split_seed": fm.DEFAULTS["seed"], "sampler_seed": args.seed,
            "pruner": {"kind": "successive_halving", "min_resource": max(1, math.ceil(epochs / 4)),
                       "reduction_factor": 4}}


# ------------------------------------------------------------------------ storage and study

def sweep_dir(args) -> Path:
    return Path(args.root) / args.name


def storage_of(args):
    return args.storage or str(sweep_dir(args) / "journal.log")


def liveness_dir(args):
    storage = storage_of(args)
    return None if "://" in storage else storage + ".workers"


def sweep_lib():
    try:
        import optuna
        from tinygrad_mlp import sweep
    except ImportError:
        raise UsageError("sweeps need Optuna: pip install 'tinygrad_mlp[sweep]' (and "
                         "'[sweep-pg]' for PostgreSQL)") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna, sweep


def load(args, create=False, sampler=None, pruner=None):
    optuna, sweep = sweep_lib()
    storage = storage_of(args)
    try:
        study = sweep.open_study(storage, args.name, create=create, sampler=sampler,
                                 pruner=pruner, heartbeat_interval=args.heartbeat)
    except LookupError:
        raise UsageError(f"no sweep named {args.name!r} in {storage}; start it with "
                         f"`sweep.py run --name {args.name}`") from None
    settings = study.user_attrs.get("sweep")
    if settings is None and not create:
        raise UsageError(f"the study {args.name!r} in {storage} was not made by this script")
    return study, settings


def make_pruner(settings):
    import optuna
    p = settings["pruner"]
    # Successive halving (asynchronous) with one rung, a quarter of the way in: a trial that
    # reaches epoch E/4 goes on only if it is in the best quarter of the trials that got there
    # (the first few: only if best so far). Every trial runs the same cosine schedule over the
    # same epochs, so they are compared at the same point of their schedules. No earlier rung:
    # while the learning rate is still near its peak the ranking mostly rewards fast starters
    # (small steps, little regularisation), which the end of the schedule often reverses. With
    # a reduction factor of 4 the next rung (4 x E/4) is the end of the run: no late rung that
    # would save an epoch or two and cut a close race short (measured with a factor of 3 on 10
    # epochs: four trials pruned at epoch 9, one of them level with the best).
    return optuna.pruners.SuccessiveHalvingPruner(min_resource=p["min_resource"],
                                                  reduction_factor=p["reduction_factor"])


def make_sampler(settings, index):
    import optuna
    # Seeded per worker: the same seed in every worker would make them propose the same points.
    seed = zlib.crc32(f"{settings['sampler_seed']}:{socket.gethostname()}:{index}".encode())
    startup = max(3, min(10, settings.get("trials", 40) // 3))
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup)


# ------------------------------------------------------------------------ one trial

_DATA = {}
SPLIT_FILES = ("x_train", "y_train", "x_val", "y_val")


def split_key(settings) -> dict:
    return dict(split_seed=settings["split_seed"], subset=settings["subset"],
                base=settings["base"])


def cache_splits(args, settings):
    """Write the training (subset) and validation splits, never the test set, as .npy files in
    ROOT/NAME/data/, once per machine: every worker process then reads them in a fraction of a
    second instead of decompressing and verifying the whole dataset."""
    cache = sweep_dir(args) / "data"
    key_file = cache / "splits.json"
    key = split_key(settings)
    if key_file.exists() and json.loads(key_file.read_text()) == key:
        return
    (x, y), (xv, yv) = splits(settings, args.data_dir)
    cache.mkdir(parents=True, exist_ok=True)
    for name, array in zip(SPLIT_FILES, (x, y, xv, yv)):
        tmp = cache / f"{name}.tmp.npy"
        np.save(tmp, array, allow_pickle=False)
        os.replace(tmp, cache / f"{name}.npy")
    fm.write_json(key_file, key)


def splits(settings, data_dir=None, cache=None):
    """The training (a subset of it, with --subset) and validation splits; never the test set's
    labels in a trial. Read from ``cache`` (see ``cache_splits``) if it holds them, else from
    the dataset; once per worker process."""
    key = json.dumps(split_key(settings), sort_keys=True)
    if key not in _DATA:
        cached = cache is not None and (cache / "splits.json").exists() and \
            json.loads((cache / "splits.json").read_text()) == split_key(settings)
        if cached:
            x, y, xv, yv = (np.load(cache / f"{n}.npy", allow_pickle=False) for n in SPLIT_FILES)
            val = (xv, yv)
        else:
            config = dict(fm.DEFAULTS, **settings["base"], seed=settings["split_seed"])
            _, (x, y), val, _, _ = fm.prepare_data(config, data_dir, download=True)
            if settings["subset"]:
                x, y = x[:settings["subset"]], y[:settings["subset"]]
        _DATA.clear()
        _DATA[key] = ((x, y), val)
    return _DATA[key]


def train_run(config, run_dir: Path, settings, data_dir, callbacks=(), cache=None):
    """Train one configuration in ``run_dir`` (resuming its checkpoint if it has one); return
    the model, its history and its validation result. Writes config.json, model.npz,
    val_correct.npy (which validation images it got right) and result.json."""
    run_dir.mkdir(parents=True, exist_ok=True)
    saved = run_dir / "config.json"
    if saved.exists():
        if json.loads(saved.read_text()) != config:
            raise UsageError(f"{saved} holds another configuration than this run's; nothing "
                             f"in {run_dir} was touched")
    else:
        fm.write_json(saved, config)
    train_set, val_set = splits(settings, data_dir, cache)
    model, history = fm.fit_on_splits(config, run_dir, train_set, val_set, callbacks=callbacks,
                                      resume="auto")
    return model, history, val_set


def finish_run(model, history, val_set, run_dir: Path, extra) -> dict:
    tg.save(model.state_dict(), run_dir / "model.npz")
    result = evaluate(model, DataLoader(*val_set, 1000))
    np.save(run_dir / "val_correct.npy", result.predictions == result.labels, allow_pickle=False)
    summary = dict(val_acc=history.val_acc[-1], val_loss=history.val_loss[-1],
                   epochs=len(history), **extra)
    fm.write_json(run_dir / "result.json", summary)
    return summary


def make_objective(args, settings, index):
    optuna, sweep = sweep_lib()
    space = settings["space"]

    def objective(trial):
        started = time.time()
        root = sweep.root_number(trial.study, trial)
        params = suggest(trial, space)
        config = trial_config(settings, params)
        run_dir = sweep_dir(args) / f"trial-{root:04d}"
        blas = sweep.blas_threads()
        baseline = bool(trial.study.get_trials(deepcopy=False)[trial.number]
                        .user_attrs.get("baseline"))
        for key, value in (("blas_threads", blas["threads"]), ("blas", blas["libraries"]),
                           ("run_dir", str(run_dir)), ("worker_index", index)):
            trial.set_user_attr(key, value)
        again = f" (retry of {root})" if root != trial.number else ""
        cb = sweep.PruningCallback(trial, MONITOR, prune=not baseline)
        run_dir.mkdir(parents=True, exist_ok=True)
        # One process at a time in a run directory: a retry whose first attempt is in fact
        # still running (its heartbeat came late) waits for it, then resumes from its checkpoint.
        with open(run_dir / "sweep.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            checkpoint = run_dir / CHECKPOINT_FILE
            trial.set_user_attr("resumed_from_epoch", int(load_checkpoint(checkpoint)["epoch"])
                                if checkpoint.exists() else 0)
            try:
                model, history, val_set = train_run(config, run_dir, settings, args.data_dir,
                                                    [cb], sweep_dir(args) / "data")
            except NonFiniteLossError as e:
                trial.set_user_attr("diverged", str(e))
                print(f"trial {trial.number}{again}: PRUNED, diverged: {e}", flush=True)
                raise optuna.TrialPruned(str(e)) from None
            trial.set_user_attr("epochs_trained", len(history))
            trial.set_user_attr("val_size", int(len(val_set[1])))
            seconds = time.time() - started
            if cb.pruned:
                print(f"trial {trial.number}{again}: PRUNED after epoch {cb.pruned_epoch}, "
                      f"{MONITOR} {getattr(history, MONITOR)[-1]:.4f} ({seconds:.0f} s)",
                      flush=True)
                raise optuna.TrialPruned()
            summary = finish_run(model, history, val_set, run_dir,
                                 dict(trial=trial.number, blas_threads=blas["threads"]))
        print(f"trial {trial.number}{again}: COMPLETE {MONITOR} {summary['val_acc']:.4f} "
              f"({len(history)} epochs, {seconds:.0f} s) {params}", flush=True)
        return summary["val_acc"]

    return objective
