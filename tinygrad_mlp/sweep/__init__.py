"""Floor 6 (sweep): hyper-parameter sweeps on Optuna, one process per trial.

Above ``training``; nothing below imports it, and ``import tinygrad_mlp`` does not import it.
Optuna (the optional ``sweep`` extra; ``sweep-pg`` adds psycopg for PostgreSQL) is imported
lazily, inside the functions that need it, so even ``import tinygrad_mlp.sweep`` leaves it
unloaded.

``callback.py`` holds ``PruningCallback`` (reports a metric to an Optuna trial after each epoch
of ``fit`` and stops a pruned trial); ``storage.py`` ``open_study`` (a path is a journal file, a
URL an RDB storage with heartbeats and a retry of stale trials); ``workers.py`` the worker
processes (one BLAS thread each), the loop a worker runs and how it finds dead peers.
docs/sweeps.md describes the whole.
"""
from .callback import PruningCallback
from .storage import is_url, open_study
from .workers import (SINGLE_THREAD_ENV, blas_threads, finished_count, root_number,
                      single_thread_env, start_workers, wait_workers, work)

__all__ = ["PruningCallback", "open_study", "is_url", "work", "start_workers", "wait_workers",
           "single_thread_env", "SINGLE_THREAD_ENV", "blas_threads", "root_number",
           "finished_count"]
