"""Floor 4 (nn): ``Module``/``Parameter``, containers, layers, loss modules, init and utils.

``module.py`` holds the registration machinery, ``container.py`` the containers, ``layers.py``
the layers, ``loss.py`` the loss modules; all compose Tensor ops and define no derivative.
``init`` fills parameters in place, ``utils`` clips and flattens gradients and parameters.
``nn.functional`` is ``tinygrad_mlp.functional``:
the same module object under the name PyTorch users expect (also for ``import
tinygrad_mlp.nn.functional``), so there is one of each function.
"""
import sys as _sys

from .. import functional
from . import init, utils
from .layers import (ELU, GELU, BatchNorm1d, Dropout, Embedding, Flatten, Identity, LayerNorm,
                     LeakyReLU, Linear, LogSoftmax, ReLU, Sigmoid, SiLU, Softmax, Softplus, Tanh)
from .loss import (BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, KLDivLoss, L1Loss,
                   MSELoss, NLLLoss, SmoothL1Loss)
from .container import ModuleDict, ModuleList, ParameterList, Sequential
from .module import IncompatibleKeys, Module, Parameter

_sys.modules[__name__ + ".functional"] = functional

__all__ = ["functional", "init", "utils", "Module", "Parameter", "Sequential", "ModuleList",
           "ModuleDict", "ParameterList", "IncompatibleKeys", "Linear", "Identity", "ReLU",
           "LeakyReLU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax", "Dropout", "Flatten",
           "BatchNorm1d", "LayerNorm", "Embedding", "GELU", "SiLU", "Softplus", "ELU",
           "CrossEntropyLoss", "NLLLoss", "MSELoss", "BCEWithLogitsLoss", "L1Loss",
           "SmoothL1Loss", "HuberLoss", "BCELoss", "KLDivLoss"]
