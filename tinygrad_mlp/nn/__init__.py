"""Floor 4 (nn): ``Module``/``Parameter``, containers, layers and loss modules.

``module.py`` holds the registration machinery and containers, ``layers.py`` the layers; both
compose Tensor ops and define no derivative. ``nn.functional`` is ``tinygrad_mlp.functional``.
"""
from . import functional
from .layers import (BatchNorm1d, BCEWithLogitsLoss, CrossEntropyLoss, Dropout, Flatten, Identity,
                     LeakyReLU, Linear, LogSoftmax, MSELoss, NLLLoss, ReLU, Sigmoid, Softmax, Tanh)
from .module import IncompatibleKeys, Module, ModuleList, Parameter, Sequential

__all__ = ["functional", "Module", "Parameter", "Sequential", "ModuleList", "IncompatibleKeys",
           "Linear", "Identity", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax",
           "Dropout", "Flatten", "BatchNorm1d", "CrossEntropyLoss", "NLLLoss", "MSELoss",
           "BCEWithLogitsLoss"]
