"""Floor 4 (optim.optimizer): ``Optimizer`` and the update rules ``SGD``, ``Adam``, ``AdamW``.

Updates are PyTorch's rules (so trajectories match for the same inputs), written on the numpy
arrays in place: no graph is recorded, float32 stays float32, and after the first step a step
allocates nothing: intermediate results go into two work arrays per dtype, sized once for the
largest parameter. Hyper-parameters are read as Python floats on every step, so that numpy treats
them as weak scalars and computes in the parameters' own dtype.
"""
from __future__ import annotations

import math

import numpy as np

from ..autograd import bump_version, enable_grad
from ..tensor import Tensor

__all__ = ["Optimizer", "SGD", "Adam", "AdamW"]


def _check(condition: bool, message: str):
    if not condition:
        raise ValueError(message)


def _as_float(value, name: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number; got {type(value).__name__}") from None


class Optimizer:
    """Holds parameters, the learning rate ``lr`` and per-parameter state.

    Subclasses name their hyper-parameters in ``hyperparameters`` (saved by ``state_dict``) and
    implement ``_update(p, g, state, work)`` on arrays: ``p`` the parameter's data (updated in
    place), ``g`` its gradient, ``state`` the parameter's state dict, ``work`` two scratch arrays
    of ``p``'s shape and dtype.
    """

    hyperparameters: tuple = ("lr",)

    def __init__(self, params, lr: float):
        name = type(self).__name__
        if isinstance(params, Tensor):
            raise TypeError(f"{name}: params must be an iterable of Tensors (e.g. "
                            f"model.parameters()); got a single Tensor")
        if hasattr(params, "parameters") and callable(params.parameters):
            raise TypeError(f"{name}: pass model.parameters(), not the model itself")
        params = list(params)
        if not params:
            raise ValueError(f"{name}: got an empty parameter list")
        seen = set()
        for i, p in enumerate(params):
            if isinstance(p, dict):
                raise TypeError(f"{name}: parameter groups (dicts) are not supported; pass one "
                                f"iterable of parameters")
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: parameter {i} is a {type(p).__name__}; expected a Tensor")
            if p.dtype.kind != "f" or not p.is_leaf:
                raise ValueError(f"{name}: parameter {i} (shape {p.shape}) must be a "
                                 f"floating-point leaf tensor; got dtype {p.dtype}"
                                 + ("" if p.is_leaf else ", computed by an op"))
            if id(p) in seen:
                raise ValueError(f"{name}: parameter {i} (shape {p.shape}) appears twice; it "
                                 f"would be updated twice per step")
            seen.add(id(p))
        self.params = params
        self.lr = lr
        self.state = [{} for _ in params]
        self._work = {}
        self._validate(self._hyper_values())

    # ------------------------------------------------------------ hyper-parameters

    def _hyper_values(self) -> dict:
        return {k: getattr(self, k) for k in self.hyperparameters}

    def _validate(self, h: dict):
        name = type(self).__name__
        lr = _as_float(h["lr"], f"{name}: lr")
        _check(lr >= 0 and math.isfinite(lr), f"{name}: invalid learning rate {h['lr']} "
                                              f"(expected a finite lr >= 0)")

    # ------------------------------------------------------------ stepping

    def zero_grad(self):
        """Set every parameter's ``.grad`` to None."""
        for p in self.params:
            p.grad = None

    def step(self, closure=None):
        """Update every parameter that has a gradient (those whose ``.grad`` is None are
        skipped). ``closure``, if given, re-evaluates the loss with gradients and is returned."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for p, state in zip(self.params, self.state):
            g = p.grad
            if g is None:
                continue
            self._update(p.data, g.data, state, self._work_arrays(p.data))
            bump_version(p)  # an in-place change: a graph that saved p must not use it
        return loss

    def _update(self, p: np.ndarray, g: np.ndarray, state: dict, work):
        raise NotImplementedError

    def _work_arrays(self, p: np.ndarray):
        """Two scratch arrays shaped like ``p``: views into flat buffers shared by every parameter
        of that dtype, so the update needs no temporaries."""
        bufs = self._work.get(p.dtype)
        if bufs is None or bufs[0].size < p.size:
            size = max(q.data.size for q in self.params if q.dtype == p.dtype)
            size = max(size, p.size)
            bufs = self._work[p.dtype] = (np.empty(size, p.dtype), np.empty(size, p.dtype))
        n = p.size
        if p.flags.f_contiguous and not p.flags.c_contiguous:
            # Same layout as p, so that no elementwise pass walks one array against the other.
            return bufs[0][:n].reshape(p.shape[::-1]).T, bufs[1][:n].reshape(p.shape[::-1]).T
        return bufs[0][:n].reshape(p.shape), bufs[1][:n].reshape(p.shape)

    # ------------------------------------------------------------ state

    def state_dict(self) -> dict:
        """Plain arrays, numbers and strings (so it saves to .npz without pickle)::

            {"type": "SGD", "hyperparameters": {"lr": 0.1, ...},
             "state": {"0": {"momentum_buffer": ndarray}, ...}}

        ``state`` is keyed by the parameter's position as a string; arrays are copies.
        """
        state = {}
        for i, s in enumerate(self.state):
            if s:
                state[str(i)] = {k: (np.array(v, copy=True) if isinstance(v, np.ndarray) else v)
                                 for k, v in s.items()}
        hyper = {k: (list(v) if isinstance(v, tuple) else v)
                 for k, v in self._hyper_values().items()}
        return {"type": type(self).__name__, "hyperparameters": hyper, "state": state}

    def load_state_dict(self, state_dict: dict):
        """Restore hyper-parameters and per-parameter state saved by ``state_dict`` (also after a
        save/load round trip), so training resumes exactly. Checked fully before anything
        changes."""
        name = type(self).__name__
        if not isinstance(state_dict, dict) or "type" not in state_dict:
            raise ValueError(f"{name}.load_state_dict: expected a dict made by state_dict() with "
                             f"'type', 'hyperparameters' and 'state'")
        if state_dict["type"] != name:
            raise ValueError(f"{name}.load_state_dict: the state dict is for "
                             f"{state_dict['type']!r}, not {name!r}")
        hyper = dict(state_dict.get("hyperparameters", {}))
        unknown = sorted(set(hyper) - set(self.hyperparameters))
        missing = sorted(set(self.hyperparameters) - set(hyper))
        if unknown or missing:
            raise ValueError(f"{name}.load_state_dict: hyper-parameters do not match "
                             f"(missing {missing}, unexpected {unknown})")
        hyper = {k: (tuple(v) if isinstance(v, (list, np.ndarray)) else v)
                 for k, v in hyper.items()}
        self._validate(hyper)
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
        for k, v in hyper.items():
            setattr(self, k, v)
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
        settings = ", ".join(f"{k}={v}" for k, v in self._hyper_values().items())
        return f"{type(self).__name__}({len(self.params)} parameters, {settings})"


class SGD(Optimizer):
    """Stochastic gradient descent, PyTorch's rule::

        g = grad + weight_decay * p
        buf = g (first step), then momentum * buf + (1 - dampening) * g
        g = g + momentum * buf if nesterov else buf        (when momentum != 0)
        p = p - lr * g
    """

    hyperparameters = ("lr", "momentum", "dampening", "nesterov", "weight_decay")

    def __init__(self, params, lr: float, momentum: float = 0.0, dampening: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0):
        self.momentum, self.dampening = momentum, dampening
        self.nesterov, self.weight_decay = nesterov, weight_decay
        super().__init__(params, lr)

    def _validate(self, h):
        super()._validate(h)
        _check(_as_float(h["momentum"], "SGD: momentum") >= 0,
               f"SGD: invalid momentum {h['momentum']} (expected >= 0)")
        _as_float(h["dampening"], "SGD: dampening")
        _check(_as_float(h["weight_decay"], "SGD: weight_decay") >= 0,
               f"SGD: invalid weight_decay {h['weight_decay']} (expected >= 0)")
        _check(not h["nesterov"] or (h["momentum"] > 0 and h["dampening"] == 0),
               "SGD: nesterov momentum requires momentum > 0 and dampening == 0")

    def _update(self, p, g, state, work):
        a, b = work
        lr, momentum = float(self.lr), float(self.momentum)
        wd = float(self.weight_decay)
        if wd:
            g = np.add(g, np.multiply(p, wd, out=a), out=a)
        if momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                # In p's layout, not g's: a gradient may be a transposed view, and a buffer that
                # followed it would make every later step walk p against the grain.
                buf = state["momentum_buffer"] = np.empty_like(p)
                np.copyto(buf, g)
            else:
                buf *= momentum
                dampening = float(self.dampening)
                buf += np.multiply(g, 1.0 - dampening, out=b) if dampening else g
            g = np.add(g, np.multiply(buf, momentum, out=b), out=b) if self.nesterov else buf
        p -= np.multiply(g, lr, out=b)


class Adam(Optimizer):
    """Adam, PyTorch's rule (``weight_decay`` is added to the gradient, i.e. L2)::

        g = grad + weight_decay * p
        m = m + (1 - beta1) * (g - m);  v = beta2 * v + (1 - beta2) * g * g
        p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)
    """

    hyperparameters = ("lr", "betas", "eps", "weight_decay")
    _decoupled = False

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        self.betas, self.eps, self.weight_decay = betas, eps, weight_decay
        super().__init__(params, lr)
        self.betas = tuple(float(b) for b in betas)

    def _validate(self, h):
        super()._validate(h)
        name = type(self).__name__
        betas = h["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"{name}: betas must be a pair (beta1, beta2); got {betas!r}")
        for i, beta in enumerate(betas):
            _check(0.0 <= _as_float(beta, f"{name}: betas[{i}]") < 1.0,
                   f"{name}: invalid betas[{i}] = {beta} (expected 0 <= beta < 1)")
        _check(_as_float(h["eps"], f"{name}: eps") >= 0, f"{name}: invalid eps {h['eps']} "
                                                          f"(expected >= 0)")
        _check(_as_float(h["weight_decay"], f"{name}: weight_decay") >= 0,
               f"{name}: invalid weight_decay {h['weight_decay']} (expected >= 0)")

    def _update(self, p, g, state, work):
        a, b = work
        lr, eps, wd = float(self.lr), float(self.eps), float(self.weight_decay)
        beta1, beta2 = (float(x) for x in self.betas)
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(p)
            state["exp_avg_sq"] = np.zeros_like(p)
        state["step"] = t = state["step"] + 1
        m, v = state["exp_avg"], state["exp_avg_sq"]
        if wd:
            if self._decoupled:
                p *= 1.0 - lr * wd
            else:
                g = np.add(g, np.multiply(p, wd, out=a), out=a)
        m += np.multiply(np.subtract(g, m, out=b), 1.0 - beta1, out=b)
        v *= beta2
        v += np.multiply(np.multiply(g, g, out=b), 1.0 - beta2, out=b)
        step_size = lr / (1.0 - beta1 ** t)
        denom = np.sqrt(v, out=b)
        denom /= math.sqrt(1.0 - beta2 ** t)
        denom += eps
        p -= np.multiply(np.divide(m, denom, out=b), step_size, out=b)


class AdamW(Adam):
    """Adam with decoupled weight decay (PyTorch's AdamW): ``p = p * (1 - lr * weight_decay)``
    before the Adam step, instead of adding ``weight_decay * p`` to the gradient."""

    _decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2):
        super().__init__(params, lr, betas, eps, weight_decay)
