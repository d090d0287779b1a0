"""Floor 4 (optim.optimizer): ``Optimizer``, the base of every update rule: parameter groups,
per-parameter state, stepping, state dicts. The rules themselves are in ``rules.py``.

Updates are written on the numpy arrays in place: no graph is recorded, float32 stays float32,
and after the first step a step allocates nothing: intermediate results go into two work arrays
per dtype, sized once for the largest parameter. Hyper-parameters are read from the group as
Python floats on every step, so that numpy treats them as weak scalars and computes in the
parameters' own dtype.
"""
from __future__ import annotations

import math

import numpy as np

from ..autograd import bump_version, enable_grad, replay_overrides, replayed, reset_grads
from ..tensor import Tensor

__all__ = ["Optimizer"]

# Keys a group may hold besides the optimiser's hyper-parameters: a label of your own ("name")
# and what learning-rate schedules keep there (PyTorch's names). Anything else in a group dict
# is refused as a probable typo.
EXTRA_KEYS = ("name", "initial_lr", "max_lr", "min_lr", "base_momentum", "max_momentum")


def _check(condition: bool, message: str):
    if not condition:
        raise ValueError(message)


def _as_float(value, name: str) -> float:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number; got a bool")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number; got {type(value).__name__}") from None


class _RemovableHandle:
    def __init__(self, hooks: dict, key: int):
        self._hooks, self._key = hooks, key

    def remove(self):
        self._hooks.pop(self._key, None)


class Optimizer:
    """Holds parameter groups and per-parameter state.

    ``params`` is an iterable of Tensors (one group) or of dicts, each ``{"params": tensors,
    <hyper-parameter>: value, ...}``; a group's missing hyper-parameters come from the
    constructor's arguments (``defaults``). ``param_groups`` is that list of dicts (change a
    group's ``lr`` there); ``params`` and ``state`` are flat lists over all groups, in order.
    ``optimizer.lr`` (and every other hyper-parameter as an attribute) reads the first group and
    assigning it sets every group.

    Subclasses name their hyper-parameters in ``hyperparameters`` and implement
    ``_update(p, g, state, work, group)`` on arrays: ``p`` the parameter's data (updated in
    place), ``g`` its gradient, ``state`` the parameter's state dict, ``work`` two scratch arrays
    of ``p``'s shape and dtype, ``group`` its parameter group.
    """

    hyperparameters: tuple = ("lr",)

    def __init__(self, params, defaults: dict):
        name = type(self).__name__
        if isinstance(params, Tensor):
            raise TypeError(f"{name}: params must be an iterable of Tensors (e.g. "
                            f"model.parameters()) or of parameter-group dicts; got a single "
                            f"Tensor")
        if hasattr(params, "parameters") and callable(params.parameters):
            raise TypeError(f"{name}: pass model.parameters(), not the model itself")
        params = list(params)
        if not params:
            raise ValueError(f"{name}: got an empty parameter list")
        self._validate(self._normalized(defaults))
        object.__setattr__(self, "defaults", self._normalized(defaults))
        object.__setattr__(self, "param_groups", [])
        self.params, self.state, self._work = [], [], {}
        self._step_post_hooks = {}
        if all(isinstance(p, dict) for p in params):
            for group in params:
                self.add_param_group(group)
        elif any(isinstance(p, dict) for p in params):
            raise TypeError(f"{name}: params mixes Tensors and parameter-group dicts; pass "
                            f"either tensors or a list of dicts with 'params'")
        else:
            self.add_param_group({"params": params})

    # ------------------------------------------------------------ groups and hyper-parameters

    def _normalized(self, h: dict) -> dict:
        h = dict(h)
        if isinstance(h.get("betas"), (list, np.ndarray)):
            h["betas"] = tuple(h["betas"])
        return h

    def _validate(self, h: dict):
        name = type(self).__name__
        lr = _as_float(h["lr"], f"{name}: lr")
        _check(lr >= 0 and math.isfinite(lr), f"{name}: invalid learning rate {h['lr']} "
                                              f"(expected a finite lr >= 0)")

    def _check_tensors(self, tensors, where: str) -> list:
        name = type(self).__name__
        if isinstance(tensors, Tensor):
            tensors = [tensors]
        elif isinstance(tensors, (set, frozenset)):
            raise TypeError(f"{name}: {where} 'params' is a set, whose order changes between "
                            f"runs; pass a list")
        tensors = list(tensors)
        seen = {id(p) for p in self.params}
        for i, p in enumerate(tensors):
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: {where} parameter {i} is a {type(p).__name__}; "
                                f"expected a Tensor")
            if p.dtype.kind != "f" or not p.is_leaf:
                raise ValueError(f"{name}: {where} parameter {i} (shape {p.shape}) must be a "
                                 f"floating-point leaf tensor; got dtype {p.dtype}"
                                 + ("" if p.is_leaf else ", computed by an op"))
            if id(p) in seen:
                raise ValueError(f"{name}: {where} parameter {i} (shape {p.shape}) appears "
                                 f"twice (in this or another group); it would be updated twice "
                                 f"per step")
            seen.add(id(p))
        return tensors

    def add_param_group(self, param_group: dict):
        """Add ``{"params": tensors, <hyper-parameter>: value, ...}`` as a new group; missing
        hyper-parameters come from ``defaults``."""
        name = type(self).__name__
        where = f"group {len(self.param_groups)}:"
        if not isinstance(param_group, dict) or "params" not in param_group:
            raise TypeError(f"{name}: {where} a parameter group is a dict with a 'params' entry; "
                            f"got {type(param_group).__name__}")
        unknown = sorted(set(param_group) - {"params"} - set(self.hyperparameters)
                         - set(EXTRA_KEYS))
        if unknown:
            raise ValueError(f"{name}: {where} unknown keys {unknown}; {name}'s hyper-parameters "
                             f"are {list(self.hyperparameters)}")
        tensors = self._check_tensors(param_group["params"], where)
        if not tensors:
            raise ValueError(f"{name}: {where} got an empty parameter list")
        group = {**self.defaults, **self._normalized(param_group)}
        self._validate(group)
        group["params"] = tensors
        self.param_groups.append(group)
        self.params.extend(tensors)
        self.state.extend({} for _ in tensors)

    def __getattr__(self, key):
        # Called only when normal lookup fails: hyper-parameters read from the first group.
        if key in type(self).hyperparameters:
            groups = self.__dict__.get("param_groups")
            if groups:
                return groups[0][key]
            if "defaults" in self.__dict__:
                return self.__dict__["defaults"][key]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {key!r}")

    def __setattr__(self, key, value):
        if key in type(self).hyperparameters and "param_groups" in self.__dict__:
            # One value for every group (as ``optimizer.lr = x`` always meant), checked first.
            for group in self.param_groups:
                self._validate(self._normalized({**group, key: value}))
            value = self._normalized({key: value})[key]
            for group in self.param_groups:
                group[key] = value
            return
        object.__setattr__(self, key, value)

    # ------------------------------------------------------------ stepping

    def zero_grad(self, set_to_none: bool = True):
        """Set every parameter's ``.grad`` to None (or fill it with zeros)."""
        reset_grads(self.params, set_to_none)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        replay_overrides(cls, "step")

    @replayed
    def step(self, closure=None):
        """Update every parameter that has a gradient (those whose ``.grad`` is None are
        skipped). ``closure``, if given, re-evaluates the loss with gradients and is returned."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        i = 0
        states = self.state
        for group in self.param_groups:
            for p in group["params"]:
                g = p.grad
                if g is not None:
                    data, gd = p.data, g.data
                    if gd.shape != data.shape or gd.dtype != data.dtype:
                        self._bad_grad(i, p, gd)
                    self._update(data, gd, states[i],
                                 self._work_arrays(data, self._scratch(group)), group)
                    bump_version(p)  # an in-place change: a graph that saved p must not use it
                i += 1
        for hook in tuple(self._step_post_hooks.values()):
            hook(self, (), {})
        return loss

    def register_step_post_hook(self, hook):
        """Call ``hook(optimizer, args, kwargs)`` after every ``step()`` (PyTorch's signature);
        returns a handle whose ``remove()`` unregisters it."""
        if not callable(hook):
            raise TypeError(f"register_step_post_hook: hook must be callable; got "
                            f"{type(hook).__name__}")
        key = max(self._step_post_hooks, default=-1) + 1
        self._step_post_hooks[key] = hook
        return _RemovableHandle(self._step_post_hooks, key)

    def _bad_grad(self, i: int, p: Tensor, g):
        k, first = 0, 0
        for k, group in enumerate(self.param_groups):
            if i < first + len(group["params"]):
                break
            first += len(group["params"])
        raise ValueError(f"{type(self).__name__}.step: parameter {i} (group {k}) has shape "
                         f"{p.shape} and dtype {p.dtype}, but its .grad has shape "
                         f"{tuple(np.shape(g))} and dtype {getattr(g, 'dtype', type(g))}; a "
                         f"gradient must match its parameter")

    def _update(self, p: np.ndarray, g: np.ndarray, state: dict, work, group: dict):
        raise NotImplementedError

    def _scratch(self, group: dict) -> int:
        """How many scratch arrays ``_update`` needs with ``group``'s settings (1 or 2)."""
        return 2

    def _work_arrays(self, p: np.ndarray, count: int = 2):
        """Scratch arrays ``(a, b)`` shaped like ``p`` (``a`` None when one is enough): views into
        flat buffers shared by every parameter of that dtype, so the update needs no
        temporaries, and the second buffer is made only when some update needs it."""
        bufs = self._work.get(p.dtype)
        if bufs is None or bufs[1].size < p.size or (count == 2 and bufs[0] is None):
            size = max(q.data.size for q in self.params if q.dtype == p.dtype)
            size = max(size, p.size)
            first = None if count == 1 and (bufs is None or bufs[0] is None) else \
                np.empty(size, p.dtype)
            bufs = self._work[p.dtype] = (first, np.empty(size, p.dtype))
        n = p.size
        if p.flags.f_contiguous and not p.flags.c_contiguous:
            # Same layout as p, so that no elementwise pass walks one array against the other.
            views = [None if buf is None else buf[:n].reshape(p.shape[::-1]).T for buf in bufs]
        else:
            views = [None if buf is None else buf[:n].reshape(p.shape) for buf in bufs]
        return views[0] if count == 2 else None, views[1]

    # ------------------------------------------------------------ state

    def state_dict(self) -> dict:
        """Plain arrays, numbers and strings (so it saves to .npz without pickle)::

            {"type": "SGD",
             "param_groups": {"0": {"lr": 0.1, ..., "params": [0, 1]}, ...},
             "state": {"0": {"momentum_buffer": ndarray}, ...}}

        Parameters are named by their position over all groups, as a string in ``state`` and as
        an int in a group's ``params``; arrays are copies.
        """
        state = {}
        for i, s in enumerate(self.state):
            if s:
                state[str(i)] = {k: (np.array(v, copy=True) if isinstance(v, np.ndarray) else v)
                                 for k, v in s.items()}
        groups, first = {}, 0
        for k, group in enumerate(self.param_groups):
            n = len(group["params"])
            groups[str(k)] = {**{key: (list(v) if isinstance(v, tuple) else v)
                                 for key, v in group.items() if key != "params"},
                              "params": list(range(first, first + n))}
            first += n
        return {"type": type(self).__name__, "param_groups": groups, "state": state}

    def load_state_dict(self, state_dict: dict):
        """Restore groups' hyper-parameters and per-parameter state saved by ``state_dict``
        (also after a save/load round trip), so training resumes exactly. The groups must hold
        as many parameters as when saved. Checked fully before anything changes."""
        name = type(self).__name__
        if not isinstance(state_dict, dict) or "type" not in state_dict:
            raise ValueError(f"{name}.load_state_dict: expected a dict made by state_dict() with "
                             f"'type', 'param_groups' and 'state'")
        if state_dict["type"] != name:
            raise ValueError(f"{name}.load_state_dict: the state dict is for "
                             f"{state_dict['type']!r}, not {name!r}")
        if "param_groups" in state_dict:
            saved = dict(state_dict["param_groups"])
            saved = [saved.get(str(k)) for k in range(len(saved))]
        elif "hyperparameters" in state_dict:  # written before parameter groups existed
            saved = [{**state_dict["hyperparameters"],
                      "params": list(range(len(self.params)))}]
        else:
            raise ValueError(f"{name}.load_state_dict: no 'param_groups' in the state dict")
        if len(saved) != len(self.param_groups) or any(not isinstance(g, dict) for g in saved):
            raise ValueError(f"{name}.load_state_dict: the state dict has {len(saved)} parameter "
                             f"groups, this optimizer {len(self.param_groups)}")
        new_groups = []
        for k, (group, mine) in enumerate(zip(saved, self.param_groups)):
            group = dict(group)
            n_saved, n_mine = len(group.pop("params", ())), len(mine["params"])
            if n_saved != n_mine:
                raise ValueError(f"{name}.load_state_dict: group {k} has {n_saved} parameters in "
                                 f"the state dict, {n_mine} in this optimizer")
            unknown = sorted(set(group) - set(self.hyperparameters) - set(EXTRA_KEYS))
            missing = sorted(set(self.hyperparameters) - set(group))
            if unknown or missing:
                raise ValueError(f"{name}.load_state_dict: group {k}: hyper-parameters do not "
                                 f"match (missing {missing}, unexpected {unknown})")
            group = self._normalized(group)
            self._validate(group)
            group["params"] = mine["params"]
            new_groups.append(group)
        new_state = [{} for _ in self.params]
        for key, s in dict(state_dict.get("state", {})).items():
            try:
                i = int(key)
            except ValueError:
                i = -1
            if not 0 <= i < len(self.params):
                raise ValueError(f"{name}.load_state_dict: state for parameter {key!r}, but the "
                                 f"optimizer has {len(self.params)} parameters")
            new_state[i] = self._load_param_state(i, dict(s))
        self.param_groups[:] = new_groups
        self.state = new_state

    def _load_param_state(self, i: int, s: dict) -> dict:
        """One parameter's state, checked against the parameter: arrays become owned copies in
        its dtype, scalars Python numbers."""
        p = self.params[i]
        out = {}
        for k, v in s.items():
            arr = np.asarray(v)
            if arr.ndim == 0 and k == "step":
                out[k] = int(arr)
            elif arr.shape != p.shape or arr.dtype.kind not in "iuf":
                raise ValueError(f"{type(self).__name__}.load_state_dict: {k} of parameter {i} "
                                 f"has shape {arr.shape} and dtype {arr.dtype}; expected the "
                                 f"parameter's shape {p.shape}")
            else:
                out[k] = np.array(arr, dtype=p.dtype, copy=True)
        return out

    def __repr__(self):
        def settings(group):
            return ", ".join(f"{k}={group[k]}" for k in self.hyperparameters)
        name = type(self).__name__
        if len(self.param_groups) == 1:
            return f"{name}({len(self.params)} parameters, {settings(self.param_groups[0])})"
        lines = [f"  group {k}: {len(g['params'])} parameters, {settings(g)}"
                 for k, g in enumerate(self.param_groups)]
        return f"{name}(\n" + "\n".join(lines) + "\n)"
