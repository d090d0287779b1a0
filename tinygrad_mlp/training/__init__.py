"""Floor 5 (training): the fit/evaluate loop, its history, callbacks, checkpoints and progress.

``loop.py`` holds ``fit`` and ``evaluate``; ``history.py`` the per-epoch record and its files;
``callbacks.py`` the callback protocol, ``BestModel`` and ``EarlyStopping``; ``checkpoint.py`` what
a checkpoint holds and how it is read back; ``progress.py`` the per-epoch output; ``lock.py`` the
lock that keeps a second process out of a run directory. Imports the
floors below (nn, optim, functional, serialization, tensor), never viz; loaders are used through
iteration and their ``state_dict``/``load_state_dict``, so ``data`` is not imported either.
docs/training.md describes the whole.
"""
from .callbacks import BestModel, Callback, EarlyStopping
from .checkpoint import (CHECKPOINT_FILE, CheckpointError, check_checkpoint_config,
                         load_checkpoint)
from .history import History
from .lock import DirectoryLock, DirectoryLockedError, lock_owner
from .loop import EvalResult, NonFiniteLossError, TrainingError, evaluate, fit

__all__ = ["fit", "evaluate", "EvalResult", "History", "Callback", "BestModel", "EarlyStopping",
           "TrainingError", "NonFiniteLossError", "CheckpointError", "load_checkpoint",
           "check_checkpoint_config", "CHECKPOINT_FILE", "DirectoryLock", "DirectoryLockedError",
           "lock_owner"]
