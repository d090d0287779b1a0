"""A sweep worker on a toy problem, started as a process by tests/test_sweep.py.

    python tests/sweep_toy_worker.py STORAGE NAME ROOT N_TRIALS [EPOCH_SLEEP]

Each trial trains a small classifier on synthetic data for EPOCHS epochs with a checkpoint in
ROOT/trial-NNNN (named after the first attempt, so a retry resumes there), sleeping EPOCH_SLEEP
seconds per epoch so that a test can kill it mid-trial. It writes ROOT/started-<number>-<pid>
when a trial starts.
"""
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tinygrad_mlp as tg  # noqa: E402
from tinygrad_mlp import functional as F, nn, optim  # noqa: E402
from tinygrad_mlp.data import DataLoader  # noqa: E402
from tinygrad_mlp.sweep import (PruningCallback, blas_threads, open_study,  # noqa: E402
                                root_number, work)
from tinygrad_mlp.training import Callback, fit  # noqa: E402

EPOCHS = 6


def toy_data(seed=0, n=256):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 8)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int64)
    return x, y


def train_toy(lr, run_dir, epochs=EPOCHS, callbacks=(), resume="auto"):
    """Deterministic in (lr, seed): a retry that resumes must end with the same weights."""
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Linear(8, 16, rng=rng), nn.ReLU(), nn.Linear(16, 2, rng=rng))
    opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    x, y = toy_data()
    train = DataLoader(x[:192], y[:192], 32, shuffle=True, rng=rng)
    val = DataLoader(x[192:], y[192:], 64)
    history = fit(model, F.cross_entropy, opt, train, epochs, val_loader=val,
                  callbacks=callbacks, checkpoint_dir=run_dir, progress=False, resume=resume,
                  restore_best=False)
    return model, history


class Sleep(Callback):
    def __init__(self, seconds):
        self.seconds = seconds

    def on_epoch_end(self, epoch, logs, model):
        time.sleep(self.seconds)
        return False


def main(storage, name, root, n_trials, epoch_sleep=0.0):
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    root = Path(root)
    study = open_study(storage, name, create=False, heartbeat_interval=1, grace_period=2,
                       sampler=optuna.samplers.RandomSampler(seed=os.getpid()),
                       pruner=optuna.pruners.NopPruner())

    def objective(trial):
        lr = trial.suggest_float("lr", 0.01, 0.2, log=True)
        first = root_number(study, trial)
        run_dir = root / f"trial-{first:04d}"
        checkpoint = run_dir / "checkpoint.npz"
        done_before = 0
        if checkpoint.exists():
            done_before = int(tg.training.load_checkpoint(checkpoint)["epoch"])
        trial.set_user_attr("resumed_from_epoch", done_before)
        trial.set_user_attr("blas_threads", blas_threads()["threads"])
        trial.set_user_attr("pid", os.getpid())
        (root / f"started-{trial.number}-{os.getpid()}").touch()
        model, history = train_toy(lr, run_dir, callbacks=[PruningCallback(trial, prune=False),
                                                            Sleep(epoch_sleep)])
        tg.save(model.state_dict(), run_dir / "model.npz")
        return history.val_acc[-1]

    work(study, objective, n_trials, poll=0.2, liveness_dir=None if "://" in storage
         else storage + ".workers")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]),
         float(sys.argv[5]) if len(sys.argv) > 5 else 0.0)
