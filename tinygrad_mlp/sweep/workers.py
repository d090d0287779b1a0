"""Floor 6 (sweep.workers): worker processes and the loop each one runs.

Processes, never threads: gradient mode is process-global, so two ``fit`` calls in one process
would switch it under each other (Optuna's ``n_jobs > 1`` means threads; it is not used).

One BLAS thread per worker: N workers on N cores would otherwise start N x cores BLAS threads.
The thread count is read from the environment when numpy loads, so ``start_workers`` sets it in
the environment of each new process; ``blas_threads()`` reads back what the process really got,
and every trial records it.

A worker keeps asking for trials until ``n_trials`` have finished (COMPLETE or PRUNED). A
trial whose worker died stays RUNNING in the storage; such a trial is failed and enqueued once
more with the same parameters: on an RDB storage through the heartbeats (``open_study``), on a
journal file through a lock each worker holds on a file of its own beside the journal (the
kernel releases it when the process dies, however it dies).
"""
from __future__ import annotations

import fcntl
import os
import socket
import subprocess
import sys
import threading
import time
import traceback
import warnings

__all__ = ["SINGLE_THREAD_ENV", "single_thread_env", "start_workers", "wait_workers",
           "blas_threads", "work", "root_number", "finished_count"]

# Every variable a BLAS or OpenMP runtime numpy might load reads for its thread count.
SINGLE_THREAD_ENV = {name: "1" for name in (
    "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")}
OWNER_ATTR = "sweep_worker"


def single_thread_env(base=None) -> dict:
    """``base`` (default ``os.environ``) with one BLAS/OpenMP thread."""
    env = dict(os.environ if base is None else base)
    env.update(SINGLE_THREAD_ENV)
    return env


def start_workers(command, n: int, env=None, **popen_kwargs) -> list:
    """Start ``n`` processes running ``command`` (a list; ``{index}`` in an item becomes the
    worker's index), each with one BLAS thread in its environment. Returns the Popen objects."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"start_workers: n must be a positive integer; got {n!r}")
    env = single_thread_env(env)
    return [subprocess.Popen([str(c).replace("{index}", str(i)) for c in command], env=env,
                             **popen_kwargs) for i in range(n)]


def wait_workers(procs, timeout=None) -> list:
    """Wait for every process; return their exit codes. Ctrl-C stops them all; so does
    ``timeout`` (seconds for all of them together, None: no limit), then raising TimeoutError."""
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        codes = []
        for p in procs:
            left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            try:
                codes.append(p.wait(timeout=left))
            except subprocess.TimeoutExpired:
                raise TimeoutError(f"wait_workers: the workers did not finish within {timeout} s; "
                                   f"stopped them") from None
        return codes
    except (KeyboardInterrupt, TimeoutError):
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            p.wait()
        raise


def blas_threads() -> dict:
    """The BLAS libraries loaded in this process and their thread counts (threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # fall back on what the environment asked for
        n = os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS")
        return {"threads": int(n) if n else None, "libraries": "threadpoolctl not installed"}
    import numpy  # noqa: F401  (so that its BLAS is loaded and seen)
    infos = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    return {"threads": max((i["num_threads"] for i in infos), default=None),
            "libraries": ", ".join(f"{i.get('internal_api')} {i.get('version')}"
                                   for i in infos)}


def root_number(study, trial) -> int:
    """The number of the trial's first attempt (itself unless it retries a dead one): its run
    directory is named after it, so a retry resumes from that directory's checkpoint."""
    frozen = study.get_trials(deepcopy=False)[trial.number]
    return int(frozen.system_attrs.get("failed_trial", trial.number))


def finished_count(study) -> int:
    from optuna.trial import TrialState
    return sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED)
               for t in study.get_trials(deepcopy=False))


# ------------------------------------------------------------------------ finding dead peers

def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class _JournalLiveness:
    """Each worker holds an exclusive lock on ``<dir>/<host>:<pid>.lock`` while it lives; a
    RUNNING trial whose owner's lock can be taken belongs to a dead worker. The same directory's
    ``ask.lock`` serialises counting, asking and reaping, so workers never start more trials
    than requested."""

    def __init__(self, directory):
        self.dir = os.fspath(directory)
        os.makedirs(self.dir, exist_ok=True)
        self.owner = _owner()
        self._own = open(os.path.join(self.dir, self.owner + ".lock"), "a")
        fcntl.flock(self._own, fcntl.LOCK_EX)
        self._ask = open(os.path.join(self.dir, "ask.lock"), "a")

    def __enter__(self):
        fcntl.flock(self._ask, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self._ask, fcntl.LOCK_UN)

    def is_dead(self, owner) -> bool:
        if not owner:
            return False
        host = owner.rsplit(":", 1)[0]
        if host != socket.gethostname() or owner == self.owner:
            return False  # another machine's worker cannot be judged from here
        path = os.path.join(self.dir, owner + ".lock")
        if not os.path.exists(path):
            return True
        with open(path, "a") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            fcntl.flock(f, fcntl.LOCK_UN)
            return True

    def close(self):
        self._ask.close()
        self._own.close()


def _reap_journal(study, liveness, log, max_retry):
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState
    from .storage import retry_callback
    storage = study._storage  # Optuna has no public call to fail another process's trial
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = t.user_attrs.get(OWNER_ATTR)
        if owner is None and t.datetime_start is not None:
            # asked but killed before it could name itself: dead once a minute has passed
            age = time.time() - t.datetime_start.timestamp()
            dead = age > 60
        else:
            dead = liveness.is_dead(owner)
        if not dead:
            continue
        try:
            if not storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL):
                continue
        except UpdateFinishedTrialError:
            continue
        log(f"trial {t.number}: its worker {owner} is gone; failed"
            + (" and enqueued again" if len(t.system_attrs.get("retry_history", [])) < max_retry
               else f" (retried {max_retry} time(s) already; not again)"))
        retry_callback(max_retry)(study, storage.get_trial(t._trial_id))


class _Heartbeat:
    """Send the RDB storage a heartbeat for one trial every ``interval`` seconds, from a thread
    (it touches only the storage, never gradient mode). A storage that is briefly away is
    retried at the next beat; a worker whose beats stop for the grace period loses its trial."""

    def __init__(self, storage, trial_id, log):
        self.storage, self.trial_id, self.log = storage, trial_id, log
        self.interval = storage.get_heartbeat_interval() or 30
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        failing = False
        while True:
            try:
                self.storage.record_heartbeat(self.trial_id)
                if failing:
                    self.log("heartbeat: the storage answers again")
                failing = False
            except Exception as e:  # the database is away: keep training, keep trying
                if not failing:
                    self.log(f"heartbeat failed ({type(e).__name__}: {str(e).splitlines()[0]});"
                             f" retrying every {self.interval} s")
                failing = True
            if self._stop.wait(self.interval):
                return

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


_AWAY = {"OperationalError", "InterfaceError", "DisconnectionError", "TimeoutError"}


def _storage_away(e: BaseException) -> bool:
    """True if ``e`` (or what caused it: Optuna wraps a failed commit in StorageInternalError)
    is a database driver's error saying the database cannot be reached, not a bad request."""
    seen = 0
    while e is not None and seen < 10:
        if type(e).__module__.split(".")[0] in ("sqlalchemy", "psycopg") and \
                type(e).__name__ in _AWAY:
            return True
        e, seen = e.__cause__ or e.__context__, seen + 1
    return False


def _retrying(call, log, what, patience=600.0):
    """Run a storage call, retrying for up to ``patience`` seconds while the storage is away."""
    delay, waited = 1.0, 0.0
    while True:
        try:
            return call()
        except Exception as e:
            if waited >= patience or not _storage_away(e):
                raise
            log(f"{what}: the storage is away ({type(e).__name__}); retrying in {delay:.0f} s")
            time.sleep(delay)
            waited += delay
            delay = min(delay * 2, 30.0)


def work(study, objective, n_trials: int, *, poll: float = 2.0, liveness_dir=None,
         max_retry: int = 1, log=None) -> int:
    """Run trials of ``study`` in this process until ``n_trials`` have finished (COMPLETE or
    PRUNED) in the whole study, whoever ran them; return how many this process ran.

    ``objective(trial)`` returns the trial's value or raises ``optuna.TrialPruned``; any other
    exception fails the trial and is raised (a bug should stop the worker, not fail every
    trial), except a database that cannot be reached: then the trial is left to be retried
    like a dead worker's, and the worker waits for the database (up to 10 minutes per call).
    Trials are taken with ``study.ask()``, which hands out enqueued ones first (retries of dead
    trials, a baseline). While the rest of the requested trials are running elsewhere
    the worker polls every ``poll`` seconds, so it takes over a trial whose worker dies.
    With a journal file, ``liveness_dir`` (a directory beside it) is where workers hold their
    liveness locks; RDB storages use their heartbeats instead.
    """
    import optuna
    if not isinstance(n_trials, int) or n_trials < 1:
        raise ValueError(f"work: n_trials must be a positive integer; got {n_trials!r}")
    log = log or (lambda message: print(message, flush=True))
    rdb = isinstance(study._storage, optuna.storages.RDBStorage) or \
        hasattr(study._storage, "get_heartbeat_interval") and \
        study._storage.get_heartbeat_interval() is not None
    if not rdb and liveness_dir is None:
        raise ValueError("work: a journal storage needs liveness_dir (a directory beside the "
                         "journal file where workers hold their locks)")
    liveness = None if rdb else _JournalLiveness(liveness_dir)
    owner, ran = _owner(), 0
    with warnings.catch_warnings():
        # ask/tell with heartbeats is what this loop is for; Optuna warns about both
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
        return _work_loop(study, objective, n_trials, poll, liveness, max_retry, log, rdb,
                          owner, ran)


def _work_loop(study, objective, n_trials, poll, liveness, max_retry, log, rdb, owner, ran):
    import optuna
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState
    try:
        while True:
            with liveness if liveness is not None else _Nothing():
                if rdb:
                    _retrying(lambda: optuna.storages.fail_stale_trials(study), log, "reaping")
                else:
                    _reap_journal(study, liveness, log, max_retry)
                trials = _retrying(lambda: study.get_trials(deepcopy=False), log, "polling")
                done = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
                waiting = sum(t.state == TrialState.WAITING for t in trials)
                running = sum(t.state == TrialState.RUNNING for t in trials)
                if done >= n_trials:
                    return ran
                trial = None
                if waiting or done + running < n_trials:
                    trial = _retrying(study.ask, log, "asking")
                    trial.set_user_attr(OWNER_ATTR, owner)
                    if _surplus(study, trial, n_trials, log):
                        trial = None
            if trial is None:
                time.sleep(poll)
                continue
            ran += 1
            beat = _Heartbeat(study._storage, trial._trial_id, log) if rdb else _Nothing()
            try:
                try:
                    with beat:
                        value = objective(trial)
                except optuna.TrialPruned:
                    _retrying(lambda: study.tell(trial, state=TrialState.PRUNED), log,
                              "telling")
                else:
                    _retrying(lambda: study.tell(trial, value), log, "telling")
            except KeyboardInterrupt:
                # Left RUNNING: once this process is gone, the next worker finds the trial dead
                # and enqueues it again, and the retry resumes from its checkpoint.
                raise
            except UpdateFinishedTrialError:
                # Its heartbeat came too late (the database was away, or this process stalled):
                # another worker failed it and enqueued a retry, which reports the result.
                log(f"trial {trial.number} was failed by another worker while running here; "
                    f"its retry carries on")
            except Exception as e:
                if _storage_away(e):
                    # The database went away mid-trial: the trial is left RUNNING, its heartbeat
                    # stops, and once the database is back it is failed and retried (resuming
                    # from its last checkpoint) like a dead worker's.
                    log(f"trial {trial.number}: the storage went away ({type(e).__name__}); "
                        f"left to be retried")
                    continue
                log(f"trial {trial.number} failed:\n{traceback.format_exc()}")
                _retrying(lambda: study.tell(trial, state=TrialState.FAIL), log, "telling")
                raise
    finally:
        if liveness is not None:
            liveness.close()


def _surplus(study, trial, n_trials, log) -> bool:
    """On a database, workers that ask at the same moment may together start more trials than
    requested (a journal's ask lock prevents it). The lowest numbers win: a new trial with
    ``n_trials`` unfailed trials below it is not needed; it ends FAIL, marked ``surplus``."""
    from optuna.trial import TrialState
    trials = _retrying(lambda: study.get_trials(deepcopy=False), log, "polling")
    mine = trials[trial.number]
    if {"fixed_params", "failed_trial"} & set(mine.system_attrs):
        return False  # enqueued (a baseline, a retry): always run
    below = sum(t.state != TrialState.FAIL for t in trials[:trial.number])
    if below < n_trials:
        return False
    trial.set_user_attr("surplus", True)
    _retrying(lambda: study.tell(trial, state=TrialState.FAIL), log, "telling")
    return True


class _Nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

