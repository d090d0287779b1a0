"""The main job, examples/fashion_mlp.py, under faults: killed, interrupted, two processes on one
run directory, damaged or foreign checkpoints, a full disk, divergence, an unwritable directory.

Every test runs the example as a user would, in its own process, on the real data with a tiny
model, and sends real signals. Every expected failure must be one line on stderr with its exit
status (2 bad input, 1 failure while running, 130 interrupted), and must leave the run directory
resumable or restartable.
"""
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tinygrad_mlp.training import load_checkpoint

from test_fashion_example import real_data_or_skip

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "fashion_mlp.py"
# Tiny and quick: a 16-unit model on the real data. SLOW makes the first epoch last seconds
# (batches of 4), so a signal sent as training starts lands inside it.
TINY = ["--hidden", "16", "--batch-size", "1000", "--schedule", "none", "--no-progress"]
SLOW = ["--hidden", "16", "--batch-size", "4", "--no-progress"]
TIMEOUT = 120


@pytest.fixture(scope="module", autouse=True)
def data():
    real_data_or_skip()


def env():
    return dict(os.environ, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1")


def run(*args, **kwargs):
    return subprocess.run([sys.executable, str(EXAMPLE), *map(str, args)], capture_output=True,
                          text=True, env=env(), timeout=TIMEOUT, **kwargs)


def start(*args):
    return subprocess.Popen([sys.executable, str(EXAMPLE), *map(str, args)], env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_line(proc, text):
    """Read the process's stdout until a line holds ``text``."""
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if text in line:
            return
    proc.wait(timeout=TIMEOUT)
    raise AssertionError(f"the process ended (status {proc.returncode}) without printing "
                         f"{text!r}:\n{''.join(seen)}{proc.stderr.read()}")


def wait_until(condition, proc, what):
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert proc.poll() is None, f"the process ended before {what}: {proc.stderr.read()}"
        assert time.monotonic() < deadline, f"no {what} within {TIMEOUT} s"
        time.sleep(0.01)


def finish(proc, sig):
    """Send ``sig``, wait, and return (status, stderr)."""
    try:
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, err


def one_line(stderr):
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def leftovers(run_dir):
    """Lock and temporary files in the run directory."""
    return sorted(p.name for p in run_dir.iterdir() if p.name.startswith("."))


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished one-epoch run of the tiny model, to be copied by the tests."""
    run_dir = tmp_path_factory.mktemp("finished") / "run"
    proc = run("--out", run_dir, "--epochs", "1", *TINY)
    assert proc.returncode == 0, proc.stderr
    return run_dir


def copy_run(finished_run, to, finished=True):
    shutil.copytree(finished_run, to)
    if not finished:  # as if killed after the last checkpoint, before the results
        (to / "results.json").unlink()
    return to


# ------------------------------------------------------------ killed, interrupted, two processes

def test_killed_in_the_first_epoch_the_run_directory_is_resumable_and_locked_meanwhile(tmp_path):
    run_dir = tmp_path / "run"
    first = start("--out", run_dir, "--epochs", "1", *SLOW)
    try:
        wait_for_line(first, "run directory")  # training has started, under the lock

        # A second process on the same directory, for a new run or a resume, is refused.
        for args in (["--out", run_dir, "--epochs", "1", *SLOW], ["--resume", run_dir]):
            proc = run(*args)
            assert proc.returncode == 1
            assert f"{run_dir} is in use by process {first.pid}" in one_line(proc.stderr)
    finally:
        status, _ = finish(first, signal.SIGKILL)
    assert status == -signal.SIGKILL
    assert sorted(p.name for p in run_dir.iterdir()) == [".lock", "config.json"]

    # The lock of the killed process is stale; --resume starts the run again from epoch 0.
    proc = start("--resume", run_dir)
    wait_for_line(proc, "starting it again from epoch 0 with its config.json")
    wait_for_line(proc, "run directory")
    status, err = finish(proc, signal.SIGINT)
    assert status == 130
    assert one_line(err) == (f"fashion_mlp.py: stopped before epoch 1 ended; continue with "
                             f"--resume {run_dir}")
    assert sorted(p.name for p in run_dir.iterdir()) == ["config.json"]

    # Or a new run goes into the same --out, with other options.
    proc = start("--out", run_dir, "--epochs", "1", "--dropout", "0.1", *SLOW)
    wait_for_line(proc, "starting a new run in it with the options given")
    wait_for_line(proc, "run directory")
    status, err = finish(proc, signal.SIGTERM)
    assert status == 130 and "stopped before epoch 1 ended" in one_line(err)
    assert json.loads((run_dir / "config.json").read_text())["dropout"] == 0.1


def test_an_interrupted_run_says_how_to_continue(tmp_path):
    run_dir = tmp_path / "run"
    proc = start("--out", run_dir, "--epochs", "500", "--hidden", "16", "--batch-size", "250",
                 "--no-progress")
    wait_until(lambda: (run_dir / "checkpoint.npz").exists(), proc, "first checkpoint")
    # Past its first checkpoint too, a second process is refused, naming the first.
    other = run("--out", run_dir, "--epochs", "1", *TINY)
    assert other.returncode == 1
    assert f"{run_dir} is in use by process {proc.pid}" in one_line(other.stderr)
    status, err = finish(proc, signal.SIGINT)
    assert status == 130
    done = load_checkpoint(run_dir)["epoch"]
    assert 1 <= done < 500
    assert one_line(err) == (f"fashion_mlp.py: stopped after epoch {done}; continue with "
                             f"--resume {run_dir}")
    assert leftovers(run_dir) == [], "the lock is released and no temporary file is left"

    # The run continues from there; the temporary files a kill while writing would have left
    # are removed first. SIGTERM stops it as Ctrl-C does.
    stale = [".checkpoint.npz.0123456789ab.tmp", ".history.json.a1b2c3d4e5f6.tmp",
             ".weights.png.00000000ffff.tmp"]
    for name in stale:
        (run_dir / name).write_bytes(b"half a file")
    proc = start("--resume", run_dir)
    wait_for_line(proc, f"removed 3 temporary file(s) an interrupted run left in {run_dir}")
    assert leftovers(run_dir) == [".lock"]
    wait_until(lambda: load_checkpoint(run_dir)["epoch"] > done, proc, "a checkpoint after "
                                                                      "the resume")
    status, err = finish(proc, signal.SIGTERM)
    assert status == 130 and "continue with --resume" in one_line(err)
    assert leftovers(run_dir) == []
    ckpt = load_checkpoint(run_dir)
    assert ckpt["history"]["epoch"] == list(range(1, ckpt["epoch"] + 1))


# ------------------------------------------------------------ checkpoints that do not fit

def test_a_damaged_checkpoint_is_named_and_left_as_it_is(tmp_path, finished_run):
    run_dir = copy_run(finished_run, tmp_path / "run", finished=False)
    ckpt = run_dir / "checkpoint.npz"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    proc = run("--resume", run_dir)
    assert proc.returncode == 2
    line = one_line(proc.stderr)
    assert f"cannot resume from {ckpt}" in line and "nothing was changed" in line
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == before
    # --debug shows the traceback too.
    proc = run("--resume", run_dir, "--debug")
    assert proc.returncode == 2 and "Traceback" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == line


def test_a_checkpoint_of_another_configuration_is_refused_by_key(tmp_path, finished_run):
    run_dir = copy_run(finished_run, tmp_path / "run", finished=False)
    config = json.loads((run_dir / "config.json").read_text())
    config.update(lr=0.01, seed=3)
    (run_dir / "config.json").write_text(json.dumps(config))
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    proc = run("--resume", run_dir)
    assert proc.returncode == 2
    line = one_line(proc.stderr)
    assert "another configuration" in line and "nothing was changed" in line
    assert "lr is 0.001 in the checkpoint, 0.01 in this run" in line
    assert "seed is 0 in the checkpoint, 3 in this run" in line
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == before


def test_the_cosine_schedule_cannot_be_stretched_by_raising_epochs(tmp_path, finished_run):
    run_dir = copy_run(finished_run, tmp_path / "run")
    config = json.loads((run_dir / "config.json").read_text())
    config.update(schedule="cosine", epochs=3)
    (run_dir / "config.json").write_text(json.dumps(config))
    proc = run("--resume", run_dir)
    assert proc.returncode == 2
    line = one_line(proc.stderr)
    assert "epochs is (absent) in the checkpoint, 3 in this run" in line
    assert "schedule is \"none\" in the checkpoint, \"cosine\" in this run" in line
    # The environment variable shows the traceback as --debug does.
    proc = subprocess.run([sys.executable, str(EXAMPLE), "--resume", str(run_dir)],
                          capture_output=True, text=True, timeout=TIMEOUT,
                          env=dict(env(), TINYGRAD_MLP_DEBUG="1"))
    assert proc.returncode == 2 and "Traceback" in proc.stderr and "CheckpointError" in proc.stderr


def test_finished_and_unfinished_runs_are_not_overwritten(tmp_path, finished_run):
    done = copy_run(finished_run, tmp_path / "done")
    proc = run("--resume", done)
    assert proc.returncode == 0 and "is finished" in proc.stdout and "nothing to do" in proc.stdout
    proc = run("--out", done, "--epochs", "1", *TINY)
    assert proc.returncode == 2 and "holds a finished run" in one_line(proc.stderr)
    unfinished = copy_run(finished_run, tmp_path / "unfinished", finished=False)
    proc = run("--out", unfinished, "--epochs", "1", *TINY)
    assert proc.returncode == 2
    assert f"continue it with --resume {unfinished}" in one_line(proc.stderr)


def assert_same(a, b, where="checkpoint"):
    if isinstance(a, dict):
        assert isinstance(b, dict) and sorted(a) == sorted(b), where
        for key in a:
            assert_same(a[key], b[key], f"{where}/{key}")
    elif isinstance(a, np.ndarray):
        assert np.array_equal(a, b), where
    else:
        assert a == b, where


# ------------------------------------------------------------ the disk and the numbers

FULL_DISK = """
import errno, os, runpy, sys
real_replace, seen = os.replace, []
def replace(src, dst, *args, **kwargs):
    if str(dst).endswith("checkpoint.npz"):
        seen.append(dst)
        if len(seen) == 2:  # the second checkpoint finds the disk full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return real_replace(src, dst, *args, **kwargs)
os.replace = replace
sys.argv = sys.argv[1:]
sys.path.insert(0, os.path.dirname(sys.argv[0]))  # as running the script itself would
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def full_disk_run(tmp_path):
    script = tmp_path / "full_disk.py"
    script.write_text(FULL_DISK)
    run_dir = tmp_path / "run"
    proc = subprocess.run([sys.executable, str(script), str(EXAMPLE), "--out", str(run_dir),
                           "--epochs", "3", *TINY], capture_output=True, text=True, env=env(),
                          timeout=TIMEOUT)
    assert proc.returncode == 1
    ckpt = run_dir / "checkpoint.npz"
    assert one_line(proc.stderr) == (
        f"fashion_mlp.py: error: cannot write {ckpt}: No space left on device; the last "
        f"checkpoint ({ckpt}, epoch 1) is intact (continue with --resume {run_dir})")
    assert leftovers(run_dir) == []
    return run_dir


def test_a_full_disk_names_the_file_and_the_intact_checkpoint(tmp_path, finished_run):
    run_dir = full_disk_run(tmp_path)
    checkpoint = load_checkpoint(run_dir)
    assert checkpoint["epoch"] == 1
    # Two runs with one seed write the same checkpoint: this one, asked for 3 epochs with no
    # schedule, checkpointed its first epoch as the finished one-epoch run did.
    assert checkpoint["val_loader"]["rng_state"] is None
    ours, theirs = checkpoint, load_checkpoint(finished_run)
    for ckpt in (ours, theirs):
        ckpt["history"].pop("seconds")
    assert_same(ours, theirs)


def test_divergence_in_the_first_epoch_says_no_checkpoint_exists(tmp_path):
    run_dir = tmp_path / "run"
    args = ["--out", run_dir, "--epochs", "2", "--optimizer", "sgd", "--lr", "1e30", *TINY]
    proc = run(*args)
    assert proc.returncode == 1
    line = one_line(proc.stderr)
    assert "the training loss is nan at epoch 1/2, step 2" in line
    assert "no checkpoint had been written yet" in line and "left as it was" not in line
    assert f"--out {run_dir}" in line


def without_root_privileges():
    """In the child, before exec: drop the capabilities that let root write anywhere
    (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER) from the bounding set, so the program
    it runs meets file permissions as any user would."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2, 3):
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def test_an_unwritable_run_directory_is_refused_before_training(tmp_path, finished_run):
    run_dir = copy_run(finished_run, tmp_path / "run", finished=False)
    os.chmod(run_dir, 0o555)
    try:
        preexec = without_root_privileges if os.geteuid() == 0 else None
        proc = subprocess.run([sys.executable, str(EXAMPLE), "--resume", str(run_dir)],
                              capture_output=True, text=True, env=env(), timeout=TIMEOUT,
                              preexec_fn=preexec)
    finally:
        os.chmod(run_dir, 0o755)
    assert proc.returncode == 1
    assert one_line(proc.stderr) == (f"fashion_mlp.py: error: cannot write in {run_dir}: "
                                      f"Permission denied; nothing was trained")
    assert "epoch" not in proc.stdout
