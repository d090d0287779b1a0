"""Floor 5 (training.progress): what ``fit`` prints while it trains.

On a terminal with tqdm installed, a bar per epoch (batches done, rate, running loss and accuracy)
that ends showing the epoch's metrics; otherwise one plain line per epoch, so logs and CI output
stay readable (one line, wrapped here)::

    epoch 3/30  train_loss 0.3120  train_acc 0.8871  val_loss 0.3341  val_acc 0.8790
    lr 0.000912  4.1s

tqdm is imported only when a bar is drawn.
"""
from __future__ import annotations

import sys

__all__ = ["make_reporter", "format_epoch"]

# Running loss/accuracy on the bar are refreshed every this many batches: formatting them on
# every step would cost more than the rest of the bookkeeping together.
_POSTFIX_EVERY = 16


def format_epoch(logs: dict, epochs: int) -> str:
    parts = [f"epoch {logs['epoch']}/{epochs}"]
    parts += _metric_parts(logs)
    parts.append(f"{logs['seconds']:.1f}s")
    return "  ".join(parts)


def _metric_parts(logs: dict) -> list:
    parts = []
    for key in ("train_loss", "train_acc", "val_loss", "val_acc"):
        if logs.get(key) is not None:
            parts.append(f"{key} {logs[key]:.4f}")
    parts.append(f"lr {logs['lr']:.6g}")
    return parts


def make_reporter(progress: bool, epochs: int, steps_per_epoch, stream=None):
    """The reporter ``fit`` calls: ``epoch_begin(epoch)``, ``step(loss_sum, correct, seen)``
    after every batch, ``epoch_end(logs)``, ``message(text)`` and ``close()``."""
    if not progress:
        return _Silent()
    stream = sys.stdout if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    if isatty is not None and isatty():
        try:
            from tqdm import tqdm
        except ImportError:
            tqdm = None
        if tqdm is not None:
            return _Bar(tqdm, epochs, steps_per_epoch, stream)
    return _Lines(epochs, stream)


class _Silent:
    def epoch_begin(self, epoch):
        pass

    def step(self, loss_sum, correct, seen):
        pass

    def epoch_end(self, logs):
        pass

    def message(self, text):
        pass

    def close(self):
        pass


class _Lines(_Silent):
    def __init__(self, epochs, stream):
        self.epochs, self.stream = epochs, stream

    def epoch_end(self, logs):
        self.message(format_epoch(logs, self.epochs))

    def message(self, text):
        print(text, file=self.stream, flush=True)


class _Bar(_Silent):
    def __init__(self, tqdm, epochs, steps_per_epoch, stream):
        self.tqdm, self.epochs, self.total, self.stream = tqdm, epochs, steps_per_epoch, stream
        self.bar = None

    def epoch_begin(self, epoch):
        self.close()
        self.bar = self.tqdm(total=self.total, desc=f"epoch {epoch}/{self.epochs}",
                             unit="batch", file=self.stream, dynamic_ncols=True, leave=True)

    def step(self, loss_sum, correct, seen):
        bar = self.bar
        bar.update(1)
        if bar.n % _POSTFIX_EVERY == 0:
            text = f"loss {loss_sum / seen:.4f}"
            if correct is not None:
                text += f" acc {correct / seen:.4f}"
            bar.set_postfix_str(text, refresh=False)

    def epoch_end(self, logs):
        self.bar.set_postfix_str("  ".join(_metric_parts(logs)), refresh=True)
        self.close()

    def message(self, text):
        self.tqdm.write(text, file=self.stream)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
