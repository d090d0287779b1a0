"""Floor 6 (sweep.storage): ``open_study``: where a sweep's trials live.

A path means an Optuna journal file: nothing to start, one machine (the file is locked while
written, so several worker processes share it). A URL (``postgresql+psycopg://...``,
``sqlite:///...``) means an RDB storage: every running trial sends a heartbeat, and a trial whose
heartbeat stops (its worker was killed, its machine went away) is failed by the next worker that
looks and enqueued once more with the same parameters (``max_retry``).
"""
from __future__ import annotations

import os
import warnings

__all__ = ["open_study", "is_url", "make_storage"]


def is_url(storage) -> bool:
    return isinstance(storage, str) and "://" in storage


def _optuna():
    try:
        import optuna
    except ImportError:
        raise ImportError("tinygrad_mlp.sweep needs Optuna: pip install 'tinygrad_mlp[sweep]' "
                          "(and '[sweep-pg]' for PostgreSQL)") from None
    return optuna


def retry_callback(max_retry: int = 1):
    """Optuna's callback that enqueues a failed trial again, inheriting its reported values (and
    the pruner's record of the rungs it passed), so the retry is judged as the original was."""
    optuna = _optuna()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RetryHeartbeatStaleTrialCallback(
            max_retry=max_retry, inherit_intermediate_values=True)


def make_storage(storage, heartbeat_interval: int = 30, grace_period: int | None = None,
                 max_retry: int = 1):
    """A journal storage for a path, an RDB storage with heartbeats for a URL."""
    optuna = _optuna()
    if is_url(storage):
        if heartbeat_interval < 1:
            raise ValueError(f"open_study: heartbeat_interval must be at least 1 second; got "
                             f"{heartbeat_interval}")
        grace = grace_period if grace_period is not None else 4 * heartbeat_interval
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            try:
                return optuna.storages.RDBStorage(
                    storage, heartbeat_interval=int(heartbeat_interval), grace_period=int(grace),
                    heartbeat_stale_trial_callback=retry_callback(max_retry),
                    engine_kwargs={"pool_pre_ping": True})
            except ImportError as e:
                raise ImportError(f"open_study: the storage {storage.split('://')[0]}:// needs a "
                                  f"driver that is not installed ({e}); for PostgreSQL: pip "
                                  f"install 'tinygrad_mlp[sweep-pg]'") from None
    if not isinstance(storage, (str, os.PathLike)):
        raise TypeError(f"open_study: storage must be a path (a journal file) or a URL; got "
                        f"{type(storage).__name__}")
    path = os.fspath(storage)
    if os.path.isdir(path):
        raise ValueError(f"open_study: {path} is a directory; give the journal file's path "
                         f"(for example {os.path.join(path, 'journal.log')})")
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock
    backend = JournalFileBackend(path, lock_obj=JournalFileOpenLock(path))
    return optuna.storages.JournalStorage(backend)


def open_study(storage, name: str, *, direction: str = "maximize", sampler=None, pruner=None,
               create: bool = True, heartbeat_interval: int = 30, grace_period: int | None = None,
               max_retry: int = 1):
    """Load the study ``name`` from ``storage`` (a journal file's path or an RDB URL), creating
    it if ``create`` and it does not exist. ``sampler`` and ``pruner`` belong to this process
    (Optuna does not store them), so every worker passes its own."""
    optuna = _optuna()
    if not isinstance(name, str) or not name:
        raise ValueError(f"open_study: name must be a non-empty string; got {name!r}")
    if not create and not is_url(storage) and not os.path.isfile(storage):
        raise LookupError(f"open_study: no study named {name!r}: the journal file {storage} "
                          f"does not exist")
    backend = make_storage(storage, heartbeat_interval, grace_period, max_retry)
    if create:
        return optuna.create_study(storage=backend, study_name=name, direction=direction,
                                   sampler=sampler, pruner=pruner, load_if_exists=True)
    try:
        return optuna.load_study(study_name=name, storage=backend, sampler=sampler,
                                 pruner=pruner)
    except KeyError:
        raise LookupError(f"open_study: no study named {name!r} in {storage}") from None
