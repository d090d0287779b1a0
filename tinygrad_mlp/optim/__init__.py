"""Floor 4 (optim): the ``Optimizer`` base with parameter groups (``optimizer.py``), the update
rules (``rules.py``), learning-rate schedules (``lr_scheduler``) and weight averaging
(``averaging.py``).

All of it works on the parameters' numpy arrays, outside the graph; nothing here is
differentiated.
"""
from . import lr_scheduler
from .averaging import EMA
from .optimizer import Optimizer
from .rules import SGD, Adagrad, Adam, AdamW, RMSprop

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "EMA", "lr_scheduler"]
