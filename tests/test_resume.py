"""Tests for floor 5 (training): resuming ``fit`` from its checkpoint gives the same bits.

The reference is always a run that was never interrupted, built from the same seeds; the runs are
compared with ``np.array_equal`` (weights, optimizer state, random generators) and ``==``
(histories, without the wall-clock ``seconds``). One test kills a training process with SIGKILL
in the middle of an epoch and resumes it in a new process.
"""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import tinygrad_mlp as tg
from tinygrad_mlp import functional as F
from tinygrad_mlp import nn, optim
from tinygrad_mlp.data import DataLoader
from tinygrad_mlp.optim import lr_scheduler
from tinygrad_mlp.training import (BestModel, CheckpointError, EarlyStopping, fit,
                                   load_checkpoint)

REPO = Path(__file__).resolve().parents[1]


def build(make_opt, callbacks=(), shared_rng=False):
    """A fresh run from fixed seeds: dropout, shuffling, momentum/Adam state and a schedule all
    carry state from one epoch to the next. ``shared_rng``: the dropout layer and the loader draw
    from one Generator (as examples/fashion_mlp.py has it)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 6)).astype(np.float32)
    y = (x @ rng.normal(size=(6, 3)) + 0.5 * rng.normal(size=(100, 3))).argmax(1)
    shared = np.random.default_rng(7) if shared_rng else None
    model = nn.Sequential(nn.Linear(6, 12, rng=1), nn.ReLU(), nn.Dropout(0.3, rng=shared or 2),
                          nn.Linear(12, 3, rng=3))
    opt = make_opt(model.parameters())
    return dict(model=model, loss_fn=F.cross_entropy, optimizer=opt,
                train_loader=DataLoader(x[:70], y[:70], 8, shuffle=True, rng=shared or 4),
                val_loader=DataLoader(x[70:], y[70:], 16),
                scheduler=lr_scheduler.StepLR(opt, step_size=2, gamma=0.7),
                callbacks=list(callbacks), l2=1e-3, progress=False)


# Rates high enough that the best validation epoch comes early (4 and 2 of 6), so the callbacks'
# state (best value and weights, patience counter) from before a resume decides the outcome.
OPTIMIZERS = [lambda ps: optim.SGD(ps, lr=0.3, momentum=0.9, nesterov=True),
              lambda ps: optim.Adam(ps, lr=0.1)]


def without_seconds(history: dict) -> dict:
    return {k: v for k, v in history.items() if k != "seconds"}


def assert_same_arrays(a, b, where=""):
    if isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), where
        for k in a:
            assert_same_arrays(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, np.ndarray):
        assert np.array_equal(a, b) and a.dtype == b.dtype, where
    else:
        assert a == b, where


def assert_same_runs(dir_a, dir_b):
    a, b = load_checkpoint(dir_a), load_checkpoint(dir_b)
    for key in ("epoch", "stopped", "model", "optimizer", "scheduler", "train_loader",
                "module_rngs", "callbacks"):
        assert_same_arrays(a[key], b[key], key)
    assert without_seconds(a["history"]) == without_seconds(b["history"])


@pytest.mark.parametrize("make_opt, shared_rng", [(OPTIMIZERS[0], False), (OPTIMIZERS[1], False),
                                                  (lambda ps: optim.Adam(ps, lr=0.15), True)],
                         ids=["sgd-nesterov", "adam", "adam-one-generator"])
def test_resume_after_a_clean_stop_matches_an_uninterrupted_run(tmp_path, make_opt, shared_rng):
    callbacks = lambda: [EarlyStopping(patience=100)]  # noqa: E731  state to carry, never stops
    build_run = lambda: build(make_opt, callbacks(), shared_rng)  # noqa: E731
    whole = build_run()
    history = fit(epochs=6, checkpoint_dir=tmp_path / "whole", **whole)

    assert int(np.argmin(history.val_loss)) + 1 <= 4, "the best epoch must precede the split"

    first = build_run()
    fit(epochs=4, checkpoint_dir=tmp_path / "split", **first)
    second = build_run()  # new objects, as a new process would have
    resumed = fit(epochs=6, checkpoint_dir=tmp_path / "split", resume=True, **second)

    assert_same_arrays(whole["model"].state_dict(), second["model"].state_dict())
    assert_same_runs(tmp_path / "whole", tmp_path / "split")
    assert without_seconds(resumed.as_dict()) == without_seconds(history.as_dict())
    assert resumed.epoch == list(range(1, 7))
    rows = (tmp_path / "split" / "metrics.csv").read_text().splitlines()
    assert len(rows) == 1 + 6


def test_resume_is_not_the_same_as_starting_over(tmp_path):
    """The comparison above can fail: the second half started without the checkpoint (same
    seeds, same weights and optimizer state loaded, but fresh loader and dropout generators)
    ends elsewhere."""
    whole = build(OPTIMIZERS[0])
    fit(epochs=4, checkpoint_dir=tmp_path / "whole", **whole)
    first = build(OPTIMIZERS[0])
    fit(epochs=2, checkpoint_dir=tmp_path / "split", **first)
    ckpt = load_checkpoint(tmp_path / "split")
    second = build(OPTIMIZERS[0])
    second["model"].load_state_dict(ckpt["model"])
    second["optimizer"].load_state_dict(ckpt["optimizer"])
    second["scheduler"].load_state_dict(ckpt["scheduler"])
    fit(epochs=2, restore_best=False, **second)
    whole_last = load_checkpoint(tmp_path / "whole")["model"]
    assert not all(np.array_equal(whole_last[k], v)
                   for k, v in second["model"].state_dict().items())


def test_resuming_a_finished_run_trains_nothing_and_ends_on_the_best_model(tmp_path):
    best_path = tmp_path / "best.npz"
    run = build(OPTIMIZERS[0], [BestModel(path=best_path)])
    history = fit(epochs=4, checkpoint_dir=tmp_path, **run)
    again = build(OPTIMIZERS[0], [BestModel(path=best_path)])
    resumed = fit(epochs=4, checkpoint_dir=tmp_path, resume=True, **again)
    assert resumed.as_dict() == history.as_dict()
    assert_same_arrays(again["model"].state_dict(), run["model"].state_dict())
    assert_same_arrays(again["model"].state_dict(), tg.load(best_path))


def test_resuming_a_run_stopped_early_trains_nothing_more(tmp_path):
    run = build(lambda ps: optim.SGD(ps, lr=0.5, momentum=0.9), [EarlyStopping(patience=1)])
    history = fit(epochs=30, checkpoint_dir=tmp_path, **run)
    assert len(history) < 30 and load_checkpoint(tmp_path)["stopped"] is True
    again = build(lambda ps: optim.SGD(ps, lr=0.5, momentum=0.9), [EarlyStopping(patience=1)])
    resumed = fit(epochs=30, checkpoint_dir=tmp_path, resume=True, **again)
    assert len(resumed) == len(history)
    assert_same_arrays(again["model"].state_dict(), run["model"].state_dict())


def test_a_checkpoint_that_does_not_fit_the_run_is_refused_by_name(tmp_path):
    fit(epochs=3, checkpoint_dir=tmp_path, **build(OPTIMIZERS[0]))

    other_model = build(OPTIMIZERS[0])
    other_model["model"] = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    other_model["optimizer"] = OPTIMIZERS[0](other_model["model"].parameters())
    other_model["scheduler"] = None
    with pytest.raises(CheckpointError, match="(?s)cannot resume from .*checkpoint.npz: the model "
                                              "does not match.*shape"):
        fit(epochs=5, checkpoint_dir=tmp_path, resume=True, **other_model)

    with pytest.raises(CheckpointError, match="the optimizer does not match.*'SGD', not 'Adam'"):
        fit(epochs=5, checkpoint_dir=tmp_path, resume=True, **build(OPTIMIZERS[1]))

    no_schedule = build(OPTIMIZERS[0])
    no_schedule["scheduler"] = None
    with pytest.raises(CheckpointError, match="scheduler: the checkpoint was written with a "
                                              "scheduler, this run has none"):
        fit(epochs=5, checkpoint_dir=tmp_path, resume=True, **no_schedule)

    with pytest.raises(CheckpointError, match=r"callbacks: .*\['0:BestModel'\].*"
                                              r"\['0:BestModel', '1:EarlyStopping'\]"):
        fit(epochs=5, checkpoint_dir=tmp_path, resume=True,
            **build(OPTIMIZERS[0], [EarlyStopping()]))

    with pytest.raises(ValueError, match="has 3 epochs done, more than epochs=2"):
        fit(epochs=2, checkpoint_dir=tmp_path, resume=True, **build(OPTIMIZERS[0]))


# ---------------------------------------------------------------- killed mid-training

SCRIPT = """
import sys, time
import numpy as np
import tinygrad_mlp as tg
from tinygrad_mlp import functional as F, nn, optim
from tinygrad_mlp.data import DataLoader
from tinygrad_mlp.optim import lr_scheduler
from tinygrad_mlp.training import EarlyStopping, fit

run_dir, mode, delay, out = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
rng = np.random.default_rng(0)
x = rng.normal(size=(100, 6)).astype(np.float32)
y = (x @ rng.normal(size=(6, 3)) + 0.5 * rng.normal(size=(100, 3))).argmax(1)
model = nn.Sequential(nn.Linear(6, 12, rng=1), nn.ReLU(), nn.Dropout(0.3, rng=2),
                      nn.Linear(12, 3, rng=3))
opt = optim.Adam(model.parameters(), lr=0.1)  # the best validation epoch is the second

def slow_loss(logits, labels):
    time.sleep(delay)  # slows the steps down so the test can kill the process mid-epoch
    return F.cross_entropy(logits, labels)

fit(model, slow_loss, opt, DataLoader(x[:70], y[:70], 8, shuffle=True, rng=4), 8,
    val_loader=DataLoader(x[70:], y[70:], 16), scheduler=lr_scheduler.StepLR(opt, 2, 0.7),
    callbacks=[EarlyStopping(patience=100)], checkpoint_dir=run_dir, resume=(mode == "resume"),
    l2=1e-3, progress=False)
tg.save(model.state_dict(), out)
"""


def run_script(script, *args, wait=True):
    env = dict(os.environ, PYTHONPATH=str(REPO), OPENBLAS_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, str(script), *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if wait:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    return proc


def test_a_run_killed_mid_epoch_resumes_to_the_same_weights(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(SCRIPT))
    run_script(script, tmp_path / "whole", "fresh", 0, tmp_path / "whole.npz")

    killed_dir = tmp_path / "killed"
    proc = run_script(script, killed_dir, "fresh", 0.02, tmp_path / "never.npz", wait=False)
    history_file = killed_dir / "history.json"
    deadline = time.monotonic() + 60
    try:
        while True:
            assert proc.poll() is None, "the run ended before it could be killed: " + \
                proc.communicate()[1]
            assert time.monotonic() < deadline, "no checkpoint of epoch 2 within 60 s"
            if history_file.exists() and len(json.loads(history_file.read_text())["epoch"]) >= 2:
                break
            time.sleep(0.01)
        time.sleep(0.05)  # into the next epoch's steps (each takes 0.02 s here)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    done = load_checkpoint(killed_dir)["epoch"]
    assert 2 <= done < 8 and not (tmp_path / "never.npz").exists()

    whole = load_checkpoint(tmp_path / "whole")["history"]["val_loss"]
    assert int(np.argmin(whole)) + 1 <= done, "the best epoch must precede the kill"

    run_script(script, killed_dir, "resume", 0, tmp_path / "resumed.npz")
    assert_same_arrays(tg.load(tmp_path / "whole.npz"), tg.load(tmp_path / "resumed.npz"))
    assert_same_runs(tmp_path / "whole", killed_dir)
    assert len(load_checkpoint(killed_dir)["history"]["epoch"]) == 8
