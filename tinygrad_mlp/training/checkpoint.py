"""Floor 5 (training.checkpoint): everything a run needs to continue exactly, written to
``checkpoint.npz`` with ``tinygrad_mlp.save`` (atomic, no pickle) and read back.

Random state is saved as numpy's ``bit_generator.state`` dicts (numbers and strings, or arrays
for MT19937), so dropout masks and shuffles after a resume are the ones the uninterrupted run
would have drawn.
"""
from __future__ import annotations

import hashlib
import json
import os

import numpy as np

from .._random import get_rng_state, set_rng_state
from ..serialization import load, save

__all__ = ["CHECKPOINT_FILE", "load_checkpoint", "save_checkpoint", "restore_checkpoint",
           "check_checkpoint_config", "CheckpointError"]

CHECKPOINT_FILE = "checkpoint.npz"
FORMAT = "tinygrad_mlp.training.checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint cannot be read or does not fit the model, optimizer, loaders or callbacks."""


def _module_rngs(model):
    """``(name, Generator)`` of every module holding one as ``rng`` (``Dropout`` does)."""
    for name, module in model.named_modules():
        rng = getattr(module, "rng", None)
        if isinstance(rng, np.random.Generator):
            yield name, rng


def config_text(config, who: str = "fit"):
    """``config`` (a dict of JSON values: the settings that define a run) as canonical JSON text,
    or None for None; what a checkpoint stores and compares on resume."""
    if config is None:
        return None
    if not isinstance(config, dict):
        raise TypeError(f"{who}: config must be a dict of JSON values (or None); got "
                        f"{type(config).__name__}")
    try:
        return json.dumps(config, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{who}: config must be a dict of JSON values (numbers, strings, bools, "
                        f"None, lists, dicts); {e}") from None


def config_fingerprint(text) -> str | None:
    """The SHA-256 of ``config_text`` output (None for None)."""
    return None if text is None else hashlib.sha256(text.encode("utf-8")).hexdigest()


def _config_differences(saved: dict, mine: dict) -> str:
    missing = object()
    parts = []
    for key in sorted(set(saved) | set(mine)):
        a, b = saved.get(key, missing), mine.get(key, missing)
        if a != b:
            show = lambda v: "(absent)" if v is missing else json.dumps(v)  # noqa: E731
            parts.append(f"{key} is {show(a)} in the checkpoint, {show(b)} in this run")
    return "; ".join(parts)


def _callback_key(i: int, callback) -> str:
    return f"{i}:{type(callback).__name__}"


def save_checkpoint(path, *, epoch, stopped, model, optimizer, scheduler, train_loader,
                    val_loader, callbacks, history, config=None):
    """Write the state after ``epoch`` finished epochs to ``path``."""
    text = config_text(config, "save_checkpoint")
    checkpoint = {
        "format": FORMAT, "version": VERSION, "epoch": int(epoch), "stopped": bool(stopped),
        # The run's settings, so that a resume under other settings is refused by name.
        "config": text, "config_sha256": config_fingerprint(text),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "train_loader": _loader_state(train_loader),
        "val_loader": _loader_state(val_loader),
        # Module names as keys; the root module's name is "" (a module of its own with an rng).
        "module_rngs": {name: rng.bit_generator.state for name, rng in _module_rngs(model)},
        # The library's default generator (``tg.manual_seed``): drawn from by anything given no rng.
        "default_rng": get_rng_state(),
        "callbacks": {_callback_key(i, cb): cb.state_dict() for i, cb in enumerate(callbacks)
                      if hasattr(cb, "state_dict")},
        "history": history.as_dict(),
    }
    save(checkpoint, path)


def _loader_state(loader):
    return loader.state_dict() if hasattr(loader, "state_dict") else None


def load_checkpoint(path) -> dict:
    """The checkpoint at ``path`` (a ``checkpoint.npz`` or the directory holding one) as a dict:
    ``epoch``, ``stopped``, ``config`` (JSON text or None), ``config_sha256``, ``model``,
    ``optimizer``, ``scheduler``, ``train_loader``, ``val_loader``, ``module_rngs``,
    ``default_rng``, ``callbacks``, ``history``."""
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, CHECKPOINT_FILE)
    checkpoint = load(path)
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a training checkpoint (it was not written by "
                              f"tinygrad_mlp.training.fit)")
    if checkpoint.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {checkpoint.get('version')!r}; this "
                              f"version of tinygrad_mlp reads version {VERSION}")
    return checkpoint


def check_checkpoint_config(checkpoint: dict, config, path):
    """Raise ``CheckpointError`` unless ``checkpoint`` was written under ``config`` (both None
    counts as a match), naming every key that differs."""
    def fail(part, problem):
        raise CheckpointError(f"cannot resume from {path}: {part}: {problem}") from None

    saved, mine = checkpoint.get("config"), config_text(config)
    if (saved is None) != (mine is None):
        fail("configuration", "the checkpoint was written " + ("without" if saved is None else
             "with") + " a config, this run has " + ("one" if saved is None else "none"))
    if saved is not None:
        if checkpoint.get("config_sha256") != config_fingerprint(saved):
            fail("configuration", "its fingerprint does not match its content (damaged)")
        try:
            saved_config = json.loads(saved)
        except (TypeError, ValueError) as e:
            fail("configuration", f"unreadable ({e})")
        if not isinstance(saved_config, dict):
            fail("configuration", f"expected a dict, got {type(saved_config).__name__}")
        differences = _config_differences(saved_config, json.loads(mine))
        if differences:
            fail("it was written by a run of another configuration", differences)


def restore_checkpoint(checkpoint: dict, path, *, model, optimizer, scheduler, train_loader,
                       val_loader, callbacks, config=None):
    """Load ``checkpoint`` into the objects of the run that continues it; every mismatch raises
    ``CheckpointError`` naming the part and ``path``. The configuration is compared first, before
    anything is loaded."""
    def fail(part, problem):
        raise CheckpointError(f"cannot resume from {path}: {part}: {problem}") from None

    check_checkpoint_config(checkpoint, config, path)
    try:
        model.load_state_dict(checkpoint["model"])
    except (ValueError, TypeError) as e:
        fail("the model does not match", e)
    try:
        optimizer.load_state_dict(checkpoint["optimizer"])
    except (ValueError, TypeError, KeyError) as e:
        fail("the optimizer does not match", e)
    saved = checkpoint["scheduler"]
    if (saved is None) != (scheduler is None):
        fail("scheduler", "the checkpoint was written " + ("without" if saved is None else "with")
             + " a scheduler, this run has " + ("one" if saved is None else "none"))
    if scheduler is not None:
        try:
            scheduler.load_state_dict(saved)
        except (ValueError, TypeError, KeyError) as e:
            fail("the scheduler does not match", e)
    for name, loader in (("train_loader", train_loader), ("val_loader", val_loader)):
        saved = checkpoint[name]
        if saved is None:
            continue
        if not hasattr(loader, "load_state_dict"):
            fail(name, "the checkpoint holds its shuffling state, but this loader has no "
                       "load_state_dict() to take it")
        try:
            loader.load_state_dict(saved)
        except (ValueError, TypeError, KeyError) as e:
            fail(name, e)
    if "default_rng" in checkpoint:  # absent from checkpoints written before it was saved
        try:
            set_rng_state(checkpoint["default_rng"])
        except (ValueError, TypeError, KeyError) as e:
            fail("the default random generator", e)
    rngs = dict(_module_rngs(model))
    saved = checkpoint["module_rngs"]
    if set(saved) != set(rngs):
        fail("random generators", f"the checkpoint holds the generators of modules "
                                  f"{sorted(saved)}, this model has them in {sorted(rngs)}")
    for name, state in saved.items():
        try:
            rngs[name].bit_generator.state = state
        except (ValueError, TypeError, KeyError) as e:
            fail(f"the random generator of module {name!r}", e)
    saved = checkpoint["callbacks"]
    mine = {_callback_key(i, cb): cb for i, cb in enumerate(callbacks)
            if hasattr(cb, "state_dict")}
    if set(saved) != set(mine):
        fail("callbacks", f"the checkpoint holds the state of {sorted(saved)}, this run has "
                          f"{sorted(mine)} (callbacks are matched by position and class)")
    for key, cb in mine.items():
        if hasattr(cb, "load_state_dict"):
            try:
                cb.load_state_dict(saved[key])
            except (ValueError, TypeError, KeyError) as e:
                fail(f"callback {key}", e)
