"""Floor 4 (nn.module): ``Parameter`` and ``Module`` (the containers are in ``container.py``).

A Module finds its parameters, buffers and sub-modules from attribute assignment, in assignment
order, and names them the way PyTorch does (``0.weight``, ``encoder.fc.bias``), so state dicts
can be exchanged with PyTorch for the same structure.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from ..autograd import (RemovableHandle, _Capture, bump_version, module_stack, reset_grads,
                        structure_changed)
from ..tensor import Tensor, as_array

__all__ = ["Parameter", "Module", "IncompatibleKeys"]

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class Parameter(Tensor):
    """A Tensor that a Module registers and an optimiser updates: it requires grad and owns a copy
    of its data (a list becomes float32, an array keeps its float dtype)."""

    __slots__ = ()

    def __init__(self, data, requires_grad: bool = True):
        arr = Tensor(data).data
        if arr.dtype.kind != "f":
            raise TypeError(f"Parameter: data must be floating point; got dtype {arr.dtype}")
        # order="K": a copy in the source's memory layout (Linear keeps its weight column-major).
        super().__init__(np.array(arr, copy=True, order="K"), requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of layers and models: assign Parameters, buffers and Modules as attributes,
    define ``forward``, call the module.

    Registered values live in the instance ``__dict__`` (so reading ``self.weight`` in ``forward``
    is a plain attribute lookup) and, in order, in ``_parameters``/``_buffers``/``_modules``.
    """

    def __init__(self):
        d = self.__dict__
        d["_parameters"] = {}
        d["_buffers"] = {}
        d["_non_persistent"] = set()
        d["_modules"] = {}
        d["_forward_pre_hooks"] = []
        d["_forward_hooks"] = []
        d["training"] = True

    # ------------------------------------------------------------ calling

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    def __call__(self, *args, **kwargs):
        d = self.__dict__
        if d["_forward_pre_hooks"] or d["_forward_hooks"]:
            if _Capture.active is not None:
                _Capture.active.refuse(f"{type(self).__name__} has forward hooks (Python code a "
                                       f"replay would skip)")
            return self._call_with_hooks(args, kwargs)
        if _Capture.active is not None:
            _Capture.active.modules.append(self)  # a plan checks these modules are unchanged
        stack = module_stack()
        if stack is None:
            return self.forward(*args, **kwargs)
        # A trace is on (graph drawing): ops recorded inside know which modules they belong to.
        stack.append(self)
        try:
            return self.forward(*args, **kwargs)
        finally:
            stack.pop()

    def _call_with_hooks(self, args, kwargs):
        for hook in list(self._forward_pre_hooks):
            replaced = hook(self, args)
            if replaced is not None:
                args = replaced if isinstance(replaced, tuple) else (replaced,)
        stack = module_stack()
        if stack is not None:
            stack.append(self)
        try:
            out = self.forward(*args, **kwargs)
        finally:
            if stack is not None:
                stack.pop()
        for hook in list(self._forward_hooks):
            replaced = hook(self, args, out)
            if replaced is not None:
                out = replaced
        return out

    def register_forward_pre_hook(self, hook) -> RemovableHandle:
        """Call ``hook(module, args)`` before each forward; a returned value (a tuple, or one
        value) replaces the positional arguments. ``handle.remove()`` unregisters it."""
        if not callable(hook):
            raise TypeError(f"register_forward_pre_hook: hook must be callable; got "
                            f"{type(hook).__name__}")
        self._forward_pre_hooks.append(hook)
        structure_changed()  # a compiled function captured without it must not replay
        return RemovableHandle(self._forward_pre_hooks, hook)

    def register_forward_hook(self, hook) -> RemovableHandle:
        """Call ``hook(module, args, output)`` after each forward; a returned value replaces the
        output. ``handle.remove()`` unregisters it."""
        if not callable(hook):
            raise TypeError(f"register_forward_hook: hook must be callable; got "
                            f"{type(hook).__name__}")
        self._forward_hooks.append(hook)
        structure_changed()
        return RemovableHandle(self._forward_hooks, hook)

    # ------------------------------------------------------------ registration

    def __setattr__(self, name, value):
        d = self.__dict__
        if "_parameters" not in d:
            raise AttributeError(f"cannot assign {name!r} before Module.__init__() is called "
                                 f"(call super().__init__() first in {type(self).__name__})")
        params, buffers, modules = d["_parameters"], d["_buffers"], d["_modules"]
        structure_changed()  # a compiled function captured with the old value must not replay
        if isinstance(value, Parameter):
            self._forget(name, keep=params)
            params[name] = value
        elif isinstance(value, Module):
            self._forget(name, keep=modules)
            modules[name] = value
        elif name in params:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as parameter {name!r} of "
                                f"{type(self).__name__} (a Parameter or None is expected)")
            params[name] = None
        elif name in modules:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as child module {name!r} "
                                f"of {type(self).__name__} (a Module or None is expected)")
            modules[name] = None
        elif name in buffers:
            if value is not None and not isinstance(value, Tensor):
                value = Tensor(np.asarray(value))
            buffers[name] = value
        d[name] = value

    def __delattr__(self, name):
        structure_changed()
        self._forget(name)
        object.__delattr__(self, name)

    def _forget(self, name, keep=None):
        """Unregister ``name`` everywhere except ``keep``, where a replacement keeps its place."""
        structure_changed()
        for registry in (self._parameters, self._buffers, self._modules):
            if registry is not keep:
                registry.pop(name, None)
        self._non_persistent.discard(name)

    def register_parameter(self, name: str, param: Parameter | None):
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: {name!r} must be a Parameter or None; got "
                            f"{type(param).__name__}")
        self._forget(name, keep=self._parameters)
        self._parameters[name] = param
        self.__dict__[name] = param

    def register_buffer(self, name: str, value, persistent: bool = True):
        """A non-trainable tensor that belongs to the module's state (BatchNorm's running mean);
        persistent buffers go into the state dict."""
        if value is not None and not isinstance(value, Tensor):
            value = Tensor(np.asarray(value))
        self._forget(name, keep=self._buffers)
        self._buffers[name] = value
        if not persistent:
            self._non_persistent.add(name)
        self.__dict__[name] = value

    def register_module(self, name: str, module: Module | None):
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"register_module: {name!r} must be a Module or None; got "
                            f"{type(module).__name__}")
        self._forget(name, keep=self._modules)
        self._modules[name] = module
        self.__dict__[name] = module

    add_module = register_module

    # ------------------------------------------------------------ traversal

    def named_modules(self, prefix: str = ""):
        """``(dotted name, module)`` for this module and every descendant, depth first, each
        module once."""
        seen = set()
        stack = [(prefix, self)]
        while stack:
            name, m = stack.pop()
            if id(m) in seen:
                continue
            seen.add(id(m))
            yield name, m
            children = [(f"{name}.{n}" if name else n, c) for n, c in m._modules.items()
                        if c is not None]
            stack.extend(reversed(children))

    def modules(self):
        return (m for _, m in self.named_modules())

    def named_children(self):
        seen = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self):
        return (m for _, m in self.named_children())

    def _named_members(self, registry: str, prefix: str, recurse: bool):
        seen = set()
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mod_name, m in modules:
            for name, value in getattr(m, registry).items():
                if value is None or id(value) in seen:
                    continue
                seen.add(id(value))
                yield (f"{mod_name}.{name}" if mod_name else name), value

    def named_parameters(self, prefix: str = "", recurse: bool = True):
        """``(dotted name, Parameter)`` in registration order; a shared parameter appears once."""
        return self._named_members("_parameters", prefix, recurse)

    def parameters(self, recurse: bool = True):
        return (p for _, p in self.named_parameters(recurse=recurse))

    def named_buffers(self, prefix: str = "", recurse: bool = True):
        return self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse: bool = True):
        return (b for _, b in self.named_buffers(recurse=recurse))

    # ------------------------------------------------------------ modes and gradients

    def train(self, mode: bool = True):
        """Set training mode (dropout active, BatchNorm on batch statistics) here and below."""
        mode = bool(mode)
        for m in self.modules():
            if m.__dict__["training"] is not mode:
                structure_changed()  # only a real change (train() inside a step is common)
                m.__dict__["training"] = mode
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True):
        """Reset every parameter's gradient: to None (the default; the next backward writes it
        afresh), or to zeros with ``set_to_none=False`` (in place where the array allows it)."""
        reset_grads(list(self.parameters()), set_to_none)

    def requires_grad_(self, requires_grad: bool = True):
        """Switch gradient tracking of every parameter here and below (freeze with False)."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def apply(self, fn):
        """Call ``fn(module)`` on every descendant, then on this module (PyTorch's order)."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------------ state

    def _state_items(self):
        """``(key, tensor)`` in PyTorch's state-dict order: each module's parameters, then its
        persistent buffers, then its children. A shared module or tensor appears under every
        name it has, as in PyTorch."""
        stack = [("", self)]
        while stack:
            prefix, m = stack.pop()
            for name, p in m._parameters.items():
                if p is not None:
                    yield prefix + name, p
            for name, b in m._buffers.items():
                if b is not None and name not in m._non_persistent:
                    yield prefix + name, b
            stack.extend(reversed([(f"{prefix}{n}.", c) for n, c in m._modules.items()
                                   if c is not None]))

    def state_dict(self) -> dict:
        """``{dotted name: ndarray copy}`` of parameters and persistent buffers, with PyTorch's
        key names for the same structure."""
        return {key: np.array(t.data, copy=True) for key, t in self._state_items()}

    def load_state_dict(self, state_dict, strict: bool = True) -> IncompatibleKeys:
        """Copy ``state_dict``'s arrays into the existing parameters and buffers, in place and in
        their own dtypes. Everything is checked before anything is written, so a failed load
        changes nothing. Shape mismatches always raise; missing or unexpected keys raise when
        ``strict``, and are returned (``missing_keys``, ``unexpected_keys``) otherwise."""
        if not hasattr(state_dict, "keys"):
            raise TypeError(f"load_state_dict: expected a dict of arrays; got "
                            f"{type(state_dict).__name__}")
        own = dict(self._state_items())
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        problems, updates = [], []
        for key, target in own.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            value = as_array(value)
            if value.dtype.kind not in "biuf":
                problems.append(f"{key}: expected a numeric array; got dtype {value.dtype}")
            elif value.shape != target.shape:
                problems.append(f"{key}: shape {value.shape} in the state dict but "
                                f"{target.shape} in the model")
            else:
                updates.append((target, value))
        if strict:
            if missing:
                problems.append("missing keys: " + ", ".join(missing))
            if unexpected:
                problems.append("unexpected keys: " + ", ".join(unexpected))
        if problems:
            raise ValueError(f"load_state_dict into {type(self).__name__} failed:\n  "
                             + "\n  ".join(problems))
        for target, value in updates:
            np.copyto(target.data, value, casting="unsafe")
            bump_version(target)  # a graph recorded before the load must not use the new values
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------ printing

    def extra_repr(self) -> str:
        """The text inside the parentheses of this module's repr (its settings)."""
        return ""

    def __str__(self):
        """The repr, then the number of trainable parameters (and the total if some are frozen)."""
        total = trainable = 0
        for p in self.parameters():
            total += p.data.size
            trainable += p.data.size if p.requires_grad else 0
        count = f"{trainable:,}" if trainable == total else f"{trainable:,} of {total:,}"
        return f"{self!r}\nTrainable parameters: {count}"

    def __repr__(self):
        lines = [line for line in self.extra_repr().split("\n") if line]
        for name, m in self._modules.items():
            child = repr(m).replace("\n", "\n  ")
            lines.append(f"({name}): {child}")
        if not self._modules and len(lines) <= 1:
            return f"{type(self).__name__}({''.join(lines)})"
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"
