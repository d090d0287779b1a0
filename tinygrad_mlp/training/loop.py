"""Floor 5 (training.loop): ``fit`` (the training loop, checkpointing and resume) and ``evaluate``.

Per step the loop does only what training needs plus ``loss.item()`` and an argmax for the
running accuracy; everything else (validation, callbacks, checkpoint, files, progress line)
happens once per epoch.
"""
from __future__ import annotations

import functools
import math
import os
import time
import types
from typing import NamedTuple

import numpy as np

from .. import functional as F
from .._validate import positive_int
from ..autograd import kernel, no_grad
from ..jit import jit
from ..nn import Module
from ..tensor import Tensor, as_array
from .callbacks import BestModel
from .checkpoint import (CHECKPOINT_FILE, config_text, load_checkpoint, restore_checkpoint,
                         save_checkpoint)
from .history import HISTORY_FILE, METRICS_FILE, History, check_monitor, write_history_files
from .progress import make_reporter

__all__ = ["fit", "evaluate", "EvalResult", "TrainingError", "NonFiniteLossError"]


class TrainingError(RuntimeError):
    """Training cannot go on."""


class NonFiniteLossError(TrainingError):
    """The loss (or, at the end of an epoch, a weight or the validation loss) became NaN or
    infinite. The message names the epoch and step and says whether a checkpoint exists (the
    last one, if any, is left as it was); ``epoch``, ``step`` and ``checkpoint_epoch`` (the
    epoch of the last checkpoint, None without one) say the same as numbers."""

    def __init__(self, message, epoch=None, step=None, checkpoint_epoch=None):
        super().__init__(message)
        self.epoch, self.step, self.checkpoint_epoch = epoch, step, checkpoint_epoch


class EvalResult(NamedTuple):
    loss: float               # mean over samples
    accuracy: float | None    # None when outputs or labels are not class scores / indices
    predictions: np.ndarray   # int64, argmax of the outputs' last axis
    labels: np.ndarray        # the loader's labels, in order


def _correct(scores: np.ndarray, labels: np.ndarray):
    """How many rows have their largest score at the label; None if that is not defined."""
    if scores.ndim != 2 or labels.shape != scores.shape[:1] or labels.dtype.kind not in "iu":
        return None
    return int(np.count_nonzero(scores.argmax(axis=1) == labels))


def _check_scalar(loss, who: str):
    if not isinstance(loss, Tensor) or loss.size != 1:
        got = f"shape {loss.shape}" if isinstance(loss, Tensor) else type(loss).__name__
        raise TypeError(f"{who}: loss_fn(outputs, labels) must return a scalar Tensor (the batch "
                        f"mean); got {got}")


def evaluate(model, loader, loss_fn=F.cross_entropy) -> EvalResult:
    """Loss (averaged over samples), accuracy, predictions and labels of ``model`` on every batch
    of ``loader``: without recording a graph, with the model in eval mode, and with each module's
    previous mode restored afterwards."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    total, seen, predictions, labels = 0.0, 0, [], []
    try:
        with no_grad():
            for x, y in loader:
                outputs = model(x)
                loss = loss_fn(outputs, y)
                _check_scalar(loss, "evaluate")
                y = as_array(y)
                n = len(y)
                total += loss.item() * n
                seen += n
                predictions.append(outputs.data.argmax(axis=-1))
                labels.append(y)
    finally:
        for m, mode in modes:
            m.training = mode
    if seen == 0:
        raise ValueError("evaluate: the loader yielded no batches")
    predictions = np.concatenate(predictions).astype(np.int64, copy=False)
    labels = np.concatenate(labels)
    accuracy = None
    if labels.shape == predictions.shape and labels.dtype.kind in "iu":
        accuracy = float(np.mean(predictions == labels))
    return EvalResult(total / seen, accuracy, predictions, labels)


def _decayed_parameters(model) -> list:
    """The parameters the ``l2`` penalty applies to: the weight matrices (ndim >= 2). Biases and
    BatchNorm's scale and shift stay undecayed: shrinking an offset towards zero does not make the
    function smoother."""
    return [p for p in model.parameters() if p.ndim >= 2]


def _all_finite(model) -> bool:
    tensors = list(model.parameters()) + [b for b in model.buffers() if b.dtype.kind == "f"]
    return all(np.isfinite(t.data).all() for t in tensors)


def fit(model, loss_fn, optimizer, train_loader, epochs, val_loader=None, scheduler=None,
        callbacks=(), checkpoint_dir=None, progress=True, l2=0.0, resume=False,
        monitor=None, restore_best=None, config=None, compile=True) -> History:
    """Train ``model`` for ``epochs`` epochs (the total, counting those before a resume) and
    return its ``History``. See docs/training.md.

    ``loss_fn(outputs, labels)`` returns the batch-mean loss as a scalar Tensor; ``l2 > 0`` adds
    ``functional.l2_penalty`` of the weight matrices (not biases) to it (the reported train_loss
    is without the penalty). ``scheduler.step()`` runs once per epoch (``ReduceLROnPlateau``:
    ``step(logs[monitor])``). With ``restore_best`` a
    ``BestModel(monitor)`` is added unless ``callbacks`` holds one, so the model ends with the
    weights of its best epoch. ``monitor`` defaults to ``"val_loss"`` with a ``val_loader`` and
    ``"train_loss"`` without; ``restore_best`` defaults to True, except without a ``val_loader``
    and a ``monitor`` (so the minimal call ``fit(model, loss_fn, optimizer, loader, epochs)``
    just trains, and ends on the last epoch's weights).
    With ``checkpoint_dir`` every finished epoch is checkpointed there, with ``history.json``
    and ``metrics.csv``; ``resume=True`` continues from that checkpoint (``"auto"``: if there
    is one), giving the same weights as an uninterrupted run. ``config`` (a dict of JSON values,
    the settings of the run) is stored in the checkpoint, and a resume under a different one is
    refused with ``CheckpointError`` naming the keys that differ.
    With ``compile`` (the default) each training step is run through ``tinygrad_mlp.jit``:
    captured on its first calls, replayed after, with the same results as ``compile=False``
    (eager steps); a step that cannot be captured runs eagerly, with one ``JitWarning``.
    """
    epochs = positive_int(epochs, "epochs", "fit")
    if not isinstance(l2, (int, float)) or isinstance(l2, bool) or not 0 <= l2 < math.inf:
        raise ValueError(f"fit: l2 must be a finite number >= 0; got {l2!r}")
    if resume not in (False, True, "auto"):
        raise ValueError(f"fit: resume must be False, True or 'auto'; got {resume!r}")
    if not isinstance(compile, bool):
        raise TypeError(f"fit: compile must be True or False; got {compile!r}")
    if restore_best is None:  # the minimal call, without validation or a monitor, just trains
        restore_best = val_loader is not None or monitor is not None
    if monitor is None:
        monitor = "val_loss" if val_loader is not None else "train_loss"
    check_monitor(monitor, "fit")
    config_text(config, "fit")  # a config that cannot be stored is refused before training
    callbacks = list(callbacks)
    if restore_best and not any(isinstance(cb, BestModel) for cb in callbacks):
        callbacks.insert(0, BestModel(monitor))
    if val_loader is None:
        needs_val = [f"{type(cb).__name__}(monitor={cb.monitor!r})" for cb in callbacks
                     if str(getattr(cb, "monitor", "")).startswith("val_")]
        if getattr(scheduler, "needs_metric", False) and monitor.startswith("val_"):
            needs_val.append(f"{type(scheduler).__name__} (steps on monitor={monitor!r})")
        if needs_val:
            raise ValueError(f"fit: {', '.join(needs_val)} watches a validation metric but no "
                             f"val_loader was given; pass a val_loader, or monitor='train_loss' "
                             f"(or restore_best=False)")
    if getattr(scheduler, "needs_metric", False):
        want = "max" if monitor.endswith("acc") else "min"
        if scheduler.mode != want:
            raise ValueError(f"fit: {type(scheduler).__name__}(mode={scheduler.mode!r}) steps on "
                             f"monitor={monitor!r}, which should be mode={want!r}")

    history, start, stopped, resumed, ckpt_path = History(monitor), 1, False, False, None
    parts = dict(model=model, optimizer=optimizer, scheduler=scheduler,
                 train_loader=train_loader, val_loader=val_loader, callbacks=callbacks,
                 config=config)
    if checkpoint_dir is not None:
        checkpoint_dir = os.fspath(checkpoint_dir)
        os.makedirs(checkpoint_dir, exist_ok=True)
        ckpt_path = os.path.join(checkpoint_dir, CHECKPOINT_FILE)
        if resume and os.path.exists(ckpt_path):
            checkpoint = load_checkpoint(ckpt_path)
            if checkpoint["epoch"] > epochs:
                raise ValueError(f"fit: the checkpoint {ckpt_path} has {checkpoint['epoch']} "
                                 f"epochs done, more than epochs={epochs}")
            restore_checkpoint(checkpoint, ckpt_path, **parts)
            history = History.from_dict(checkpoint["history"], monitor)
            start, stopped, resumed = checkpoint["epoch"] + 1, checkpoint["stopped"], True
            # A kill between the checkpoint and the text files leaves these one epoch behind.
            write_history_files(history, checkpoint_dir)
        elif resume is True:
            raise FileNotFoundError(f"fit: resume=True but {checkpoint_dir} holds no "
                                    f"{CHECKPOINT_FILE} to resume from")
        else:
            existing = [f for f in (CHECKPOINT_FILE, HISTORY_FILE, METRICS_FILE)
                        if os.path.exists(os.path.join(checkpoint_dir, f))]
            if existing:
                raise FileExistsError(f"fit: {checkpoint_dir} already holds {', '.join(existing)} "
                                      f"from another run; nothing was overwritten. Pass "
                                      f"resume=True to continue that run, or choose another "
                                      f"checkpoint_dir")
    elif resume is True:
        raise ValueError("fit: resume=True needs the checkpoint_dir to resume from")

    decayed = _decayed_parameters(model) if l2 else []
    train_step = _train_step(model, loss_fn, optimizer, decayed, l2)
    if compile:
        # A loss that is an object (not a function or a module) may keep Python state a replay
        # would not update: watched, so a change of its attributes means no replay.
        owner = loss_fn.__self__ if isinstance(loss_fn, types.MethodType) else loss_fn
        stateful = [owner] if hasattr(owner, "__dict__") and not isinstance(
            owner, (types.FunctionType, functools.partial, Module)) else []
        train_step = jit(train_step, watch=stateful)
    steps = len(train_loader) if hasattr(train_loader, "__len__") else None
    reporter = make_reporter(progress, epochs, steps)
    try:
        for cb in callbacks:
            if hasattr(cb, "on_train_begin"):
                cb.on_train_begin(model, resumed)
        if stopped:
            reporter.message(f"the run in {checkpoint_dir} was stopped by a callback after epoch "
                             f"{start - 1}; nothing left to train")
        for epoch in range(start, epochs + 1):
            if stopped:
                break
            logs = _run_epoch(epoch, epochs, model, loss_fn, optimizer, train_step, train_loader,
                              val_loader, reporter, ckpt_path)
            if getattr(scheduler, "needs_metric", False):  # ReduceLROnPlateau
                scheduler.step(logs[monitor])
            elif scheduler is not None:
                scheduler.step()
            history.append(logs)
            for cb in callbacks:
                if hasattr(cb, "on_epoch_end") and cb.on_epoch_end(epoch, dict(logs), model):
                    stopped = True
                    reason = getattr(cb, "stop_reason", None)
                    reporter.message(f"stopped by {type(cb).__name__} after epoch {epoch}"
                                     + (f": {reason}" if reason else ""))
            if ckpt_path is not None:
                save_checkpoint(ckpt_path, epoch=epoch, stopped=stopped, history=history, **parts)
                write_history_files(history, checkpoint_dir)
        for cb in callbacks:
            if hasattr(cb, "on_train_end"):
                cb.on_train_end(model)
    finally:
        reporter.close()
    return history


class _NonFiniteLoss(Exception):
    def __init__(self, value):
        super().__init__(value)
        self.value = value


def _require_finite(loss):
    """Raise before backward when the loss is NaN or infinite (a kernel: a compiled step
    checks it at every replay too, before any weight is touched)."""
    if not np.isfinite(loss).all():
        raise _NonFiniteLoss(float(loss))


def _train_step(model, loss_fn, optimizer, decayed, l2):
    """One training step on a batch, as a function of the batch (what ``jit`` captures)."""
    def train_step(x, y):
        outputs = model(x)
        loss = loss_fn(outputs, y)
        _check_scalar(loss, "fit")
        kernel(_require_finite, loss.data)
        total = loss + F.l2_penalty(decayed, l2) if l2 else loss
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        return loss, outputs
    return train_step


def _run_epoch(epoch, epochs, model, loss_fn, optimizer, train_step, train_loader, val_loader,
               reporter, ckpt_path) -> dict:
    start_time = time.perf_counter()
    lr = float(optimizer.lr)
    # Epoch 1 of a fresh run has no checkpoint before it; any later epoch (also after a resume)
    # has the one of the epoch before.
    saved = epoch - 1 if ckpt_path and epoch > 1 else None
    if saved is not None:
        kept = f"the last checkpoint ({ckpt_path}, epoch {saved}) is left as it was"
    elif ckpt_path:
        kept = f"no checkpoint had been written yet ({ckpt_path} does not exist)"
    else:
        kept = "no checkpoint was written (no checkpoint_dir)"

    model.train()
    if hasattr(train_step, "reset"):
        # Callbacks and schedules act between epochs and may change Python values the step
        # reads (a loss weight in a closure): each epoch captures its step afresh (two eager
        # steps), so nothing from before them is replayed.
        train_step.reset()
    reporter.epoch_begin(epoch)
    loss_sum, correct, seen, step = 0.0, 0, 0, 0
    for step, (x, y) in enumerate(train_loader, 1):
        try:
            loss, outputs = train_step(x, y)
        except _NonFiniteLoss as e:
            # Checked before backward, so this step never reaches the weights.
            raise NonFiniteLossError(f"fit: the training loss is {e.value} at epoch {epoch}/"
                                     f"{epochs}, step {step}; training stopped, {kept}",
                                     epoch, step, saved) from None
        value = loss.item()
        labels = as_array(y)
        n = len(labels)
        loss_sum += value * n
        seen += n
        if correct is not None:
            c = _correct(outputs.data, labels)
            correct = None if c is None else correct + c
        reporter.step(loss_sum, correct, seen)
    if seen == 0:
        raise ValueError(f"fit: the train loader yielded no batches in epoch {epoch}")
    if not _all_finite(model):
        raise NonFiniteLossError(f"fit: a weight became NaN or infinite during epoch {epoch}/"
                                 f"{epochs} (last step {step}); training stopped, {kept}",
                                 epoch, step, saved)
    logs = {"epoch": epoch, "train_loss": loss_sum / seen,
            "train_acc": None if correct is None else correct / seen,
            "val_loss": None, "val_acc": None, "lr": lr}
    if val_loader is not None:
        result = evaluate(model, val_loader, loss_fn)
        if not math.isfinite(result.loss):
            raise NonFiniteLossError(f"fit: the validation loss is {result.loss} after epoch "
                                     f"{epoch}/{epochs}; training stopped, {kept}",
                                     epoch, step, saved)
        logs["val_loss"], logs["val_acc"] = result.loss, result.accuracy
    logs["seconds"] = time.perf_counter() - start_time
    reporter.epoch_end(logs)
    return logs
