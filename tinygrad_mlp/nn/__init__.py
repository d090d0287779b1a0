"""Floor 4 (nn): ``Module``/``Parameter``, containers, layers and loss modules.

``module.py`` holds the registration machinery and containers, ``layers.py`` the layers; both
compose Tensor ops and define no derivative. ``nn.functional`` is ``tinygrad_mlp.functional``:
the same module object under the name PyTorch users expect (also for ``import
tinygrad_mlp.nn.functional``), so there is one of each function.
"""
import sys as _sys

from .. import functional
from .layers import (BatchNorm1d, BCEWithLogitsLoss, CrossEntropyLoss, Dropout, Flatten, Identity,
                     LeakyReLU, Linear, LogSoftmax, MSELoss, NLLLoss, ReLU, Sigmoid, Softmax, Tanh)
from .module import IncompatibleKeys, Module, ModuleList, Parameter, Sequential

_sys.modules[__name__ + ".functional"] = functional

__all__ = ["functional", "Module", "Parameter", "Sequential", "ModuleList", "IncompatibleKeys",
           "Linear", "Identity", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax",
           "Dropout", "Flatten", "BatchNorm1d", "CrossEntropyLoss", "NLLLoss", "MSELoss",
           "BCEWithLogitsLoss"]
