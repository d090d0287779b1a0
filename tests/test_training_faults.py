"""The training floor under faults: the run-directory lock, temporary files, a disk that fails,
divergence before the first checkpoint, checkpoints written under another configuration, the
state of non-shuffling loaders, and the minimal ``fit`` call."""
import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tinygrad_mlp as tg
from tinygrad_mlp import functional as F
from tinygrad_mlp import nn, optim
from tinygrad_mlp._atomic import atomic_write, remove_stale_temporaries
from tinygrad_mlp.data import DataLoader
from tinygrad_mlp.training import (CheckpointError, DirectoryLock, DirectoryLockedError,
                                   NonFiniteLossError, fit, load_checkpoint, lock_owner)

REPO = Path(__file__).resolve().parents[1]


def data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int64)


def run(checkpoint_dir=None, lr=0.1, epochs=2, val=True, **kwargs):
    x, y = data()
    model = nn.Sequential(nn.Linear(5, 8, rng=1), nn.ReLU(), nn.Linear(8, 2, rng=2))
    opt = optim.SGD(model.parameters(), lr=lr)
    loaders = dict(train_loader=DataLoader(x[:40], y[:40], 8, shuffle=True, rng=3))
    if val:
        loaders["val_loader"] = DataLoader(x[40:], y[40:], 10)
    fit(model, F.cross_entropy, opt, epochs=epochs, checkpoint_dir=checkpoint_dir,
        progress=False, **loaders, **kwargs)
    return model


# ------------------------------------------------------------ the lock

HOLD = """
import sys, time
from tinygrad_mlp.training import DirectoryLock
with DirectoryLock(sys.argv[1]):
    print("locked", flush=True)
    sys.stdin.readline()
"""


def test_a_locked_directory_is_refused_with_the_owners_pid_and_released_on_exit(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            env=dict(os.environ, PYTHONPATH=str(REPO)))
    try:
        assert proc.stdout.readline() == "locked\n"
        assert lock_owner(tmp_path) == proc.pid
        with pytest.raises(DirectoryLockedError, match=f"in use by process {proc.pid}") as e:
            DirectoryLock(tmp_path).acquire()
        assert e.value.pid == proc.pid
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert lock_owner(tmp_path) is None
    assert list(tmp_path.iterdir()) == [], "the lock file is removed on release"


def test_the_lock_of_a_killed_process_is_stale(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert proc.stdout.readline() == "locked\n"
    proc.kill()
    proc.wait()
    assert (tmp_path / ".lock").read_text() == f"{proc.pid}\n"  # left behind by the kill
    assert lock_owner(tmp_path) is None
    with DirectoryLock(tmp_path):
        assert (tmp_path / ".lock").read_text() == f"{os.getpid()}\n"
    assert not (tmp_path / ".lock").exists()


# ------------------------------------------------------------ temporary files and the disk

def test_temporary_names_are_unique_per_writer(tmp_path):
    target = tmp_path / "config.json"
    with atomic_write(target) as a, atomic_write(target) as b:
        assert a.name != b.name
        a.write("a")
        b.write("b")
    assert target.read_text() in ("a", "b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]


def test_stale_temporaries_of_named_files_only_are_removed(tmp_path):
    names = [".checkpoint.npz.0123456789ab.tmp", ".history.json.ffffffffffff.tmp",
             ".notes.txt.0123456789ab.tmp", "checkpoint.npz", ".checkpoint.npz.tmp"]
    for name in names:
        (tmp_path / name).write_text("x")
    removed = remove_stale_temporaries(tmp_path, ["checkpoint.npz", "history.json"])
    assert sorted(Path(p).name for p in removed) == names[:2]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[2:])


def test_a_full_disk_names_the_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    target = tmp_path / "checkpoint.npz"
    target.write_bytes(b"the last checkpoint")

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError) as e:
        with atomic_write(target, "wb") as f:
            f.write(b"half")
    assert e.value.errno == errno.ENOSPC and e.value.filename == os.fspath(target)
    assert str(target) in str(e.value)
    assert target.read_bytes() == b"the last checkpoint"
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.npz"]


# ------------------------------------------------------------ divergence

@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy overflows on the way to NaN
def test_divergence_before_the_first_checkpoint_does_not_claim_one(tmp_path):
    with pytest.raises(NonFiniteLossError) as e:
        run(tmp_path, lr=1e30)
    message = str(e.value)
    assert "epoch 1/2" in message and "no checkpoint had been written yet" in message
    assert "left as it was" not in message
    assert (e.value.epoch, e.value.checkpoint_epoch) == (1, None)
    assert not (tmp_path / "checkpoint.npz").exists()


def test_divergence_after_a_checkpoint_names_its_epoch(tmp_path):
    run(tmp_path, lr=0.1, epochs=1)
    x, y = data()
    model = nn.Sequential(nn.Linear(5, 8, rng=1), nn.ReLU(), nn.Linear(8, 2, rng=2))
    opt = optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(NonFiniteLossError, match=r"the last checkpoint \(.*checkpoint.npz, "
                                                 r"epoch 1\) is left as it was") as e:
        fit(model, lambda o, t: F.cross_entropy(o, t) * np.inf, opt,
            DataLoader(x[:40], y[:40], 8, shuffle=True, rng=3), 2,
            val_loader=DataLoader(x[40:], y[40:], 10), checkpoint_dir=tmp_path, resume=True,
            progress=False)
    assert (e.value.epoch, e.value.step, e.value.checkpoint_epoch) == (2, 1, 1)


# ------------------------------------------------------------ the run's configuration

def test_a_checkpoint_of_another_configuration_is_refused_before_anything_is_loaded(tmp_path):
    config = {"lr": 0.1, "hidden": [8], "seed": 0}
    run(tmp_path, epochs=1, config=config)
    saved = load_checkpoint(tmp_path)
    assert json.loads(saved["config"]) == config and len(saved["config_sha256"]) == 64
    with pytest.raises(CheckpointError, match="another configuration: hidden is \\[8\\] in the "
                                              "checkpoint, \\[16\\] in this run; lr is 0.1"):
        run(tmp_path, epochs=2, resume=True, config=dict(config, lr=0.2, hidden=[16]))
    with pytest.raises(CheckpointError, match="checkpoint was written with a config, this run "
                                              "has none"):
        run(tmp_path, epochs=2, resume=True)
    run(tmp_path, epochs=2, resume=True, config=dict(config))  # the same: it continues
    assert load_checkpoint(tmp_path)["epoch"] == 2


def test_a_config_that_cannot_be_stored_is_refused_before_training(tmp_path):
    with pytest.raises(TypeError, match="config must be a dict of JSON values"):
        run(tmp_path, config={"rng": np.random.default_rng(0)})
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------ loaders and the minimal call

def test_a_non_shuffling_loader_holds_no_generator_state():
    x, y = data()
    states = []
    for seed in (1, 2):
        tg.manual_seed(seed)  # the default generator differs; the loader does not draw from it
        loader = DataLoader(x, y, 7)
        list(loader)
        states.append(loader.state_dict())
    assert states[0] == states[1] and states[0]["rng_state"] is None

    loader = DataLoader(x, y, 7)
    it = iter(loader)
    first = [next(it)[1].numpy() for _ in range(2)]
    state = loader.state_dict()
    before = tg.get_rng_state()
    resumed = DataLoader(x, y, 7)
    resumed.load_state_dict(state)
    rest = [b[1].numpy() for b in resumed]
    assert tg.get_rng_state() == before, "resuming does not touch the default generator"
    assert np.array_equal(np.concatenate(first + rest), y)


def test_the_minimal_fit_call_just_trains():
    x, y = data()
    model = nn.Sequential(nn.Linear(5, 2, rng=0))
    history = fit(model, F.cross_entropy, optim.SGD(model.parameters(), lr=0.1),
                  DataLoader(x, y, 10, shuffle=True, rng=1), 3, progress=False)
    assert history.epoch == [1, 2, 3] and history.val_loss == [None] * 3
    assert history.best_epoch == int(np.argmin(history.train_loss)) + 1


def test_a_validation_monitor_without_validation_is_still_refused():
    with pytest.raises(ValueError, match="no val_loader"):
        run(val=False, monitor="val_acc")


