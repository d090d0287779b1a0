"""The run directory of examples/fashion_mlp.py: its states, its lock, and how a failure in it
is reported. A helper module of that example, not an example of its own.

A run directory is always in one of these states, and each command knows what to do with each:

    fresh      absent, or empty (but for what an interrupted start leaves: a lock file, temporaries)
    started    config.json but no checkpoint yet: the run stopped before its first epoch ended
    resumable  config.json and checkpoint.npz, no results.json
    finished   results.json too (it is written last)
    foreign    anything else: not a run directory of this example; never touched
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sys
import threading
import traceback
from pathlib import Path

# The package's atomic writer (temporary file, unique per process, then rename): every file of a
# run directory is written whole or not at all.
from tinygrad_mlp.serialization import atomic_write, remove_stale_temporaries
from tinygrad_mlp.serialization import SerializationError
from tinygrad_mlp.training import (CHECKPOINT_FILE, CheckpointError, DirectoryLock,
                                   DirectoryLockedError, NonFiniteLossError,
                                   check_checkpoint_config, load_checkpoint, lock_owner)
from tinygrad_mlp.training.lock import LOCK_FILE


class UsageError(Exception):
    """A bad argument or input file (exit status 2), reported as one line."""


class RunFailure(Exception):
    """A failure while running (exit status 1), reported as one line."""


RUN_FILES = ("config.json", "checkpoint.npz", "history.json", "metrics.csv", "model.npz",
             "results.json", "curves.png", "weights.png", "confusion_matrix.png",
             "predictions.png", "graph.svg", "graph.dot")
# What atomic_write names its temporary files (.NAME.<12 hex digits>.tmp): an interrupted write
# may leave one behind.
_TEMPORARY = re.compile(r"\.(%s)\.[0-9a-f]{12}\.tmp\Z" % "|".join(map(re.escape, RUN_FILES)))
PROBE = ".write-test"  # written and removed to find an unwritable directory before training


def run_state(path: Path) -> str:
    if not path.exists():
        return "fresh"
    if not path.is_dir():
        return "foreign"
    names = {p.name for p in path.iterdir()}
    leftovers = {n for n in names
                 if n == LOCK_FILE or n.startswith(PROBE + ".") or _TEMPORARY.match(n)}
    ours = names - leftovers
    if not ours:
        return "fresh"
    if "config.json" not in ours or not ours <= set(RUN_FILES):
        return "foreign"
    if "checkpoint.npz" not in ours:
        return "started" if ours == {"config.json"} else "foreign"
    return "finished" if "results.json" in ours else "resumable"


def checkpoint_epoch(run_dir: Path, config=None):
    """Epochs done by the run's checkpoint; None if there is none. A damaged one, or (given the
    run's config, as passed to ``fit``) one written under another configuration, is a
    UsageError naming the file."""
    path = run_dir / CHECKPOINT_FILE
    if not path.is_file():
        return None
    try:
        checkpoint = load_checkpoint(path)
        if config is not None:
            check_checkpoint_config(checkpoint, config, path)
        return int(checkpoint["epoch"])
    except (CheckpointError, SerializationError, KeyError, TypeError, ValueError) as e:
        message = one_line(e)
        if not message.startswith("cannot resume"):
            message = f"cannot resume from {path}: {message}"
        raise UsageError(f"{message}; nothing was changed")


def refuse_if_in_use(run_dir: Path):
    """A RunFailure naming the pid if a live process holds the run directory's lock."""
    owner = lock_owner(run_dir)
    if owner is not None:
        raise RunFailure(str(DirectoryLockedError(str(run_dir), owner or None)))


@contextlib.contextmanager
def hold(run_dir: Path, recheck=None, clean=True):
    """Hold the run directory's lock while the block runs, so a second process on the same
    directory is refused. Under the lock: ``recheck()`` (the directory may have changed since it
    was looked at), a check that the directory is writable, and, with ``clean``, the removal of
    the temporary files an interrupted process left for the run's files."""
    refuse_if_in_use(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        lock = DirectoryLock(run_dir).acquire()
    except DirectoryLockedError as e:
        raise RunFailure(str(e)) from None
    except OSError as e:
        raise RunFailure(f"cannot write in {run_dir}: {e.strerror or e}; nothing was trained")
    try:
        if recheck is not None:
            recheck()
        check_writable(run_dir)
        removed = remove_stale_temporaries(run_dir, RUN_FILES) if clean else []
        if removed:
            print(f"removed {len(removed)} temporary file(s) an interrupted run left in "
                  f"{run_dir}", flush=True)
        yield run_dir
    finally:
        lock.release()


def check_writable(run_dir: Path):
    """Write, sync and remove a file, so an unwritable directory is found before training."""
    for stale in run_dir.glob(PROBE + ".*"):  # left by a process killed right here
        stale.unlink()
    probe = run_dir / f"{PROBE}.{os.getpid()}"
    try:
        with open(probe, "w") as f:
            f.write("tinygrad_mlp\n")
            f.flush()
            os.fsync(f.fileno())
        probe.unlink()
    except OSError as e:
        with contextlib.suppress(OSError):
            probe.unlink()
        raise RunFailure(f"cannot write in {run_dir}: {e.strerror or e}; nothing was trained")


def write_json(path: Path, obj):
    with atomic_write(path) as f:
        f.write(json.dumps(obj, indent=2) + "\n")


# ------------------------------------------------------------------------ failures
#
# Every expected failure is one line on stderr (the traceback too with --debug or
# TINYGRAD_MLP_DEBUG=1) and an exit status: 2 a bad argument or input file, 1 a failure while
# running, 130 interrupted (Ctrl-C or SIGTERM). docs/training.md lists the messages.

EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130
DEBUG_ENV = "TINYGRAD_MLP_DEBUG"


def one_line(error) -> str:
    """The whole message of ``error`` on one line: its lines joined by "; "."""
    text = ""
    for line in str(error).splitlines():
        line = " ".join(line.split())
        if line:
            text += ("" if not text else " " if text.endswith(":") else "; ") + line
    return text


def checkpoint_note(run_dir) -> str:
    """What the run directory's checkpoint holds, for a message after a failure."""
    if run_dir is None or not (run_dir / "config.json").is_file():
        return "no checkpoint has been written"
    try:
        done = checkpoint_epoch(run_dir)
    except UsageError:
        done = None
    if done is None:
        return f"no checkpoint has been written yet (continue with --resume {run_dir}, which " \
               f"starts again from epoch 0)"
    return f"the last checkpoint ({run_dir / CHECKPOINT_FILE}, epoch {done}) is intact " \
           f"(continue with --resume {run_dir})"


def interrupted_message(run_dir) -> str:
    if run_dir is None or not (run_dir / "config.json").is_file():
        return "interrupted before a run started; nothing to resume"
    try:
        done = checkpoint_epoch(run_dir) or 0
    except UsageError:
        done = 0
    when = f"after epoch {done}" if done else "before epoch 1 ended"
    return f"stopped {when}; continue with --resume {run_dir}"


def failure(error, run_dir):
    """``(exit status, message)`` for an expected error; None for anything else (a bug)."""
    if isinstance(error, KeyboardInterrupt):
        return EXIT_INTERRUPTED, interrupted_message(run_dir)
    if isinstance(error, UsageError):
        return EXIT_USAGE, one_line(error)
    if isinstance(error, RunFailure):
        return EXIT_FAILURE, one_line(error)
    if isinstance(error, (CheckpointError, SerializationError)):
        return EXIT_USAGE, f"{one_line(error)}; nothing was changed"
    if isinstance(error, NonFiniteLossError):
        again = f"--out {run_dir}" if error.checkpoint_epoch is None else "another --out"
        return EXIT_FAILURE, (f"{one_line(error).removeprefix('fit: ')}; start again with other "
                              f"options (a lower --lr, say) and {again}")
    if isinstance(error, OSError):
        where = error.filename or "a file"
        if error.filename2:
            where = f"{error.filename} -> {error.filename2}"
        what = error.strerror or one_line(error)
        return EXIT_FAILURE, f"cannot write {where}: {what}; {checkpoint_note(run_dir)}"
    return None


def report(error, run_dir, debug: bool, prog: str) -> int:
    """Print the one line for an expected ``error`` (after its traceback with ``debug``) and
    return the exit status; re-raise anything else (a bug shows its traceback)."""
    known = failure(error, run_dir)
    if known is None:
        raise error
    status, message = known
    if debug:
        traceback.print_exception(type(error), error, error.__traceback__)
    print(f"{prog}: {'error: ' if status != EXIT_INTERRUPTED else ''}{message}",
          file=sys.stderr, flush=True)
    return status


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def sigterm_as_interrupt():
    """SIGTERM (a `kill`, a batch system's stop) raises KeyboardInterrupt, as Ctrl-C does."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
