"""Floor 4 (optim): optimisers (``optimizer.py``) and learning-rate schedules (``lr_scheduler``).

Both work on the parameters' numpy arrays, outside the graph; nothing here is differentiated.
"""
from . import lr_scheduler
from .optimizer import SGD, Adam, AdamW, Optimizer

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "lr_scheduler"]
