"""Floor 4 (nn.container): modules that hold other modules or parameters: ``ModuleList``,
``Sequential``, ``ModuleDict``, ``ParameterList``, with PyTorch's state-dict keys."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from ..tensor import Tensor
from .module import Module, Parameter

__all__ = ["ModuleList", "Sequential", "ModuleDict", "ParameterList"]


class ModuleList(Module):
    """A list of modules, registered under the keys ``0``, ``1``, ... ."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def _index(self, idx: int) -> str:
        n = len(self._modules)
        if not isinstance(idx, (int, np.integer)):
            raise TypeError(f"{type(self).__name__} indices must be integers or slices; got "
                            f"{type(idx).__name__}")
        if not -n <= idx < n:
            raise IndexError(f"index {idx} is out of range for a {type(self).__name__} of "
                             f"length {n}")
        return list(self._modules)[idx % n]

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return type(self)(list(self._modules.values())[idx])
        return self._modules[self._index(idx)]

    def __setitem__(self, idx, module):
        self.register_module(self._index(idx), _as_module(module, type(self).__name__))

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        self.register_module(str(len(self._modules)), _as_module(module, type(self).__name__))
        return self

    def extend(self, modules):
        for m in modules:
            self.append(m)
        return self


class Sequential(ModuleList):
    """Modules applied in order: ``Sequential(Linear(4, 8), ReLU(), Linear(8, 2))``, or named
    with a dict: ``Sequential({"fc1": Linear(4, 8), "act": ReLU()})``.

    Indexing, ``len`` and iteration work as on a list; a slice is a Sequential that keeps the
    original names (as PyTorch's does).
    """

    def __init__(self, *modules):
        Module.__init__(self)
        if len(modules) == 1 and isinstance(modules[0], dict):
            for name, m in modules[0].items():
                self.register_module(str(name), _as_module(m, "Sequential"))
        else:
            for m in modules:
                self.append(m)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return Sequential(OrderedDict(list(self._modules.items())[idx]))
        return self._modules[self._index(idx)]

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x


class ModuleDict(Module):
    """Modules by name, in insertion order; ``state_dict`` keys are ``<name>.<parameter>``."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def _key(self, key) -> str:
        if not isinstance(key, str):
            raise TypeError(f"ModuleDict keys must be strings; got {type(key).__name__}")
        if not key or "." in key:
            raise KeyError(f"ModuleDict key {key!r} must be non-empty and contain no '.'")
        if key not in self._modules and hasattr(self, key):
            raise KeyError(f"ModuleDict key {key!r} would hide the attribute of that name")
        return key

    def __getitem__(self, key: str) -> Module:
        if key not in self._modules:
            raise KeyError(f"{key!r} is not in this ModuleDict (keys: {list(self._modules)})")
        return self._modules[key]

    def __setitem__(self, key: str, module: Module):
        self.register_module(self._key(key), _as_module(module, "ModuleDict"))

    def __delitem__(self, key: str):
        self[key]  # the KeyError that names the keys
        delattr(self, key)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def __contains__(self, key):
        return key in self._modules

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()

    def pop(self, key: str) -> Module:
        module = self[key]
        del self[key]
        return module

    def clear(self):
        for key in list(self._modules):
            del self[key]

    def update(self, modules):
        pairs = modules.items() if hasattr(modules, "items") else modules
        for key, module in pairs:
            self[key] = module


class ParameterList(Module):
    """A list of Parameters, registered under ``0``, ``1``, ... (PyTorch's state-dict keys). A
    Tensor or array that is not a Parameter is made one."""

    def __init__(self, values=None):
        super().__init__()
        if values is not None:
            self.extend(values)

    @staticmethod
    def _param(value) -> Parameter:
        return value if isinstance(value, Parameter) else Parameter(
            value.data if isinstance(value, Tensor) else value)

    def _name(self, idx) -> str:
        n = len(self._parameters)
        if not isinstance(idx, (int, np.integer)) or isinstance(idx, bool):
            raise TypeError(f"ParameterList indices must be integers; got {type(idx).__name__}")
        if not -n <= idx < n:
            raise IndexError(f"index {idx} is out of range for a ParameterList of length {n}")
        return str(idx % n)

    def __getitem__(self, idx) -> Parameter:
        return self._parameters[self._name(idx)]

    def __setitem__(self, idx, value):
        self.register_parameter(self._name(idx), self._param(value))

    def __len__(self):
        return len(self._parameters)

    def __iter__(self):
        return iter(self._parameters.values())

    def append(self, value):
        self.register_parameter(str(len(self._parameters)), self._param(value))
        return self

    def extend(self, values):
        for v in values:
            self.append(v)
        return self

    def extra_repr(self):
        return "\n".join(f"({i}): Parameter of shape {p.shape} ({p.dtype})"
                         for i, p in enumerate(self))


def _as_module(m, container: str) -> Module:
    if not isinstance(m, Module):
        raise TypeError(f"{container}: {type(m).__name__} is not a Module")
    return m
