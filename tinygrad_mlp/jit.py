"""Floor 4 (jit): ``jit(fn)`` captures the array work of a function once and replays it.

A training step run eagerly builds Tensor objects, graph nodes and a topological order on every
call, all to reach the same numpy calls in the same order. ``jit`` runs ``fn`` eagerly while the
engine reports every computation to a recorder (``autograd._Capture``): each primitive op's
forward, each ``autograd.kernel`` (masks, random draws, label encodings, checks), each literal
constant, each ``.grad`` that backward assigns and each ``autograd.replayed`` call (an optimiser's
step, zero_grad, a schedule's step). Later calls with the same signature run that list on arrays:
no Tensors, no graph, no sort.

What changes between calls is read at replay: the arguments' arrays, every tensor the function
reads but did not make (parameters, buffers: through the tensor, so a ``load_state_dict`` or an
optimiser's in-place update is seen), the learning rate and step count (the optimiser's own step
runs), and random draws (the dropout kernel draws from the generator as it is then).

Nothing is replayed that was not checked twice. The first call of a signature records; the second
records again and must record the same work: the same ops with the same settings, the same
external tensors (a tensor made afresh on each call from raw values would differ: refused), equal
literal constants. Reading a value (``.item()``, ``bool(t)``, ``.numpy()``, ``.data`` outside
the library), an in-place change of a tensor, module and tensor hooks, and the few library paths
that branch on values refuse capture: the function then runs eagerly for that signature, with one
``JitWarning`` saying why. A change of a module between calls (``train()``/``eval()``, a new
layer, another attribute) is checked against the attributes every plan saw: a plan whose modules
changed is not replayed (a signature keeps a plan per module state met). ``load_state_dict``
writes in place and keeps plans valid.
"""
from __future__ import annotations

import functools
import sys
import weakref
import types
import warnings

import numpy as np

from . import ops
from .autograd import _Capture, _GradMode, _Recording
from .nn import Module as _Module
from .tensor import Tensor

__all__ = ["jit", "JitWarning"]

_new = object.__new__
_wrap = Tensor._from_op


class JitWarning(UserWarning):
    """A compiled function runs eagerly for a signature, and why."""


class _Slot:
    """An array argument of a kernel or an op's parameter, read from the plan's slots."""

    __slots__ = ("i",)

    def __init__(self, i):
        self.i = i

    def __eq__(self, other):
        return type(other) is _Slot and other.i == self.i

    def __repr__(self):
        return f"<slot {self.i}>"


# --------------------------------------------------------------------------------------------
# Capture
# --------------------------------------------------------------------------------------------

class _Recorder:
    """What one call of the function did, as the engine reported it."""

    def __init__(self):
        self.slot = {}        # id(array) -> slot index, valid while refs[slot]() is that array
        self.refs = []        # slot -> a weak reference to the array at capture (weak, so a
        #                       capture holds no more memory than the eager call it is)
        self.meta = []        # slot -> (shape, dtype, layout) of that array, for the buffers
        self.views = set()    # op outputs that were views of their first input
        self.steps = []       # see the methods below for each kind
        self.inputs = []      # slots of the arguments' arrays, in order
        self.arg_tensors = {}  # id(argument tensor) -> position among the array arguments
        self.externals = []   # (slot, tensor): read through the tensor at every replay
        self.constants = []   # (slot, array): literal values, kept
        self.escaping = set()  # slots handed out (outputs, .grad): fresh arrays at every replay
        self.template = None  # the structure of the return value
        self.reason = None    # why this call cannot be replayed (the first reason found)
        self.clock = _Capture.clock
        self.modules = []     # modules called during the capture (Module.__call__ adds itself)

    # ---------------------------------------------------------------- slots

    def new_slot(self, arr) -> int:
        s = len(self.refs)
        self.refs.append(weakref.ref(arr))
        flags = arr.flags
        self.meta.append((arr.shape, arr.dtype, "C" if flags.c_contiguous else
                          "F" if flags.f_contiguous else None))
        self.slot[id(arr)] = s
        return s

    def find(self, arr):
        """The slot of ``arr``, or None (an id is reused only after its array is gone: the weak
        reference then no longer gives it)."""
        s = self.slot.get(id(arr))
        return s if s is not None and self.refs[s]() is arr else None

    def refuse(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason

    def tensor_slot(self, t) -> int:
        arr = t.data
        s = self.find(arr)
        if s is None:
            s = self.new_slot(arr)
            self.externals.append((s, t))
        return s

    def array_slot(self, arr, who: str) -> int:
        s = self.find(arr)
        if s is None:
            self.refuse(f"{who} was given an array of shape {arr.shape} that is not an "
                        f"argument nor the result of a recorded operation: a numpy array made "
                        f"inside the function (np.arange(n), a mask from .data) is not "
                        f"captured; pass it as an argument")
            s = self.new_slot(arr)
        return s

    def lift(self, value, who: str):
        """``value`` with every array in it replaced by its slot."""
        if isinstance(value, np.ndarray):
            return _Slot(self.array_slot(value, who))
        if isinstance(value, Tensor):
            self.refuse(f"{who} was given a tensor where arrays are expected")
            return _Slot(self.tensor_slot(value))
        if type(value) is tuple:
            return tuple(self.lift(v, who) for v in value)
        if type(value) is list:
            return [self.lift(v, who) for v in value]
        if type(value) is dict:
            return {k: self.lift(v, who) for k, v in value.items()}
        return value

    def output(self, arr, who: str) -> int:
        if self.find(arr) is not None:
            self.refuse(f"{who} returned an array it had been given (an alias)")
        return self.new_slot(arr)

    # ---------------------------------------------------------------- what the engine reports

    def op(self, fn, inputs, params, out):
        """A primitive op ran: ("op", class, input slots, params, output slot, state)."""
        cls = type(fn)
        if cls is ops.GetItem and _has_bool_array(params["index"]):
            self.refuse("indexing with a boolean mask gives a shape that depends on values")
        ins = tuple([self.tensor_slot(t) for t in inputs])
        params = {k: self.lift(v, cls.__name__) for k, v in params.items()}
        o = self.output(out.data, cls.__name__)
        if cls.makes_view and inputs and np.may_share_memory(out.data, inputs[0].data):
            self.views.add(o)
        state = []
        for name in cls.__slots__:  # arrays the forward kept for its backward (a mask)
            v = getattr(fn, name, None)
            if isinstance(v, np.ndarray) and self.find(v) is None:
                state.append((name, self.new_slot(v)))
        self.steps.append(("op", cls, ins, params, o, tuple(state)))

    def kernel(self, fn, args):
        """``autograd.kernel(fn, *args)``: ("kernel", fn, lifted args, output slots)."""
        name = getattr(fn, "__qualname__", repr(fn))
        lifted = self.lift(tuple(args), name)
        _Capture.active = None
        try:
            out = _arrays(fn(*args))
        finally:
            _Capture.active = self
        if any(isinstance(a, np.ndarray) and isinstance(o, np.ndarray) and
               np.may_share_memory(a, o) for a in args
               for o in (out if type(out) is tuple else (out,))):
            self.refuse(f"{name} returned a view of an array it was given")
        if out is None:
            outs = None
        elif isinstance(out, np.ndarray):
            outs = self.output(out, name)
        elif type(out) is tuple and all(isinstance(a, np.ndarray) for a in out):
            outs = tuple(self.output(a, name) for a in out)
        else:
            self.refuse(f"{name} returned {type(out).__name__}, not arrays")
            outs = None
        self.steps.append(("kernel", fn, lifted, outs))
        return out

    def literal(self, arr):
        if self.find(arr) is None:
            self.constants.append((self.new_slot(arr), arr))

    def call(self, method, args, kwargs):
        """An ``autograd.replayed`` call: ("call", method, args, kwargs, output slot)."""
        name = getattr(method, "__qualname__", repr(method))
        # An iterator argument (model.parameters()) is used up by one call: the call and every
        # replay get the list of what it yields.
        args = tuple(list(v) if _is_iterator(v) else v for v in args)
        kwargs = {k: list(v) if _is_iterator(v) else v for k, v in kwargs.items()}
        if name.rsplit(".", 1)[-1] in _WRITES_GRADS and args and type(args[0]) is list and \
                any(isinstance(t, Tensor) and t.grad is not None and t.grad._ctx is not None
                    for t in args[0]):
            self.refuse(f"{name} acts on gradients that are part of a graph (create_graph): "
                        f"a replay's gradients have none, so it would write into arrays the "
                        f"graph still reads")
        _Capture.active = None
        try:
            result = method(*args, **kwargs)
        finally:
            _Capture.active = self
        out = self.output(result.data, name) if isinstance(result, Tensor) else None
        if out is not None:
            self.escaping.add(out)
        self.steps.append(("call", method, args, kwargs, out))
        return result

    def set_grad(self, t):
        """backward assigned ``t.grad``: ("grad", target, slot)."""
        s = self.find(t.grad.data)
        if s is None:
            self.refuse(f"backward accumulated into the .grad of a tensor of shape {t.shape} "
                        f"that was there before the call (call zero_grad() inside the function)")
            return
        position = self.arg_tensors.get(id(t))
        target = ("arg", position) if position is not None else t
        self.escaping.add(s)
        self.steps.append(("grad", target, s))

    # ---------------------------------------------------------------- the call's ends

    def begin(self, arrays, tensors, watch):
        self.watched = [(obj, dict(obj.__dict__)) for obj in watch]
        for i, (arr, t) in enumerate(zip(arrays, tensors)):
            if self.find(arr) is not None:
                self.refuse("the same array is passed as two arguments")
            self.inputs.append(self.new_slot(arr))
            if t is not None:
                self.arg_tensors[id(t)] = i

    def finish(self, result, free_modules=()):
        self.template = self._template(result)
        self._check_grads()
        seen_tensors = set()
        for _, t in self.externals:
            if id(t) in seen_tensors:
                self.refuse(f"the .data of a tensor of shape {t.shape} was replaced during the "
                            f"call (a replay reads each tensor once, at its start)")
            seen_tensors.add(id(t))
        self.modules.extend(free_modules)
        for obj, attrs in self.watched:
            if not _unchanged([(obj, attrs)]):
                self.refuse(f"the function changes the attributes of its {type(obj).__name__} "
                            f"(Python state a replay would not update)")
        seen = {}
        for top in self.modules:
            for m in top.modules():
                if id(m) not in seen:
                    seen[id(m)] = (m, dict(m.__dict__))
        self.snapshot = list(seen.values())  # every module called, and every one below them
        self.modules = None
        # A list, dict, set or array held by one of them and changed in place keeps its
        # identity: such values are copied and compared by value before every replay.
        self.containers = [(m, k, _copy_value(v)) for m, attrs in self.snapshot
                           for k, v in attrs.items()
                           if k not in _MODULE_INTERNALS and type(v) in _CONTAINERS]

    def _check_grads(self):
        """Every .grad the steps leave must be what the tensor holds at the end of the call:
        a .grad set or cleared by hand (``p.grad = None``) would not be replayed."""
        expected = {}
        for step in self.steps:
            if step[0] == "grad" and type(step[1]) is not tuple:
                expected[id(step[1])] = (step[1], step[2])
            elif step[0] == "call" and _resets(step):
                for t in step[2][0]:
                    if id(t) in expected:
                        expected[id(t)] = (t, None)
        for t, s in expected.values():
            g = t.grad
            if (None if g is None else self.find(g.data)) != s:
                self.refuse(f"the .grad of a tensor of shape {t.shape} is changed by hand after "
                            f"backward (a replay would not repeat it)")

    def _template(self, value):
        if isinstance(value, Tensor):
            ctx = value._ctx
            if ctx is not None and not ctx.released and _GradMode.enabled:
                self.refuse("the function returns a tensor with its graph (a compiled model, "
                            "as torch.compile(model)?): its caller's backward would need that "
                            "graph, which a replay does not build; compile the whole step "
                            "(forward, backward and the optimiser's step)")
        if isinstance(value, (Tensor, np.ndarray)):
            tensor = isinstance(value, Tensor)
            s = self.find(value.data if tensor else value)
            if s is None:
                self.refuse(f"the function returns {'a tensor' if tensor else 'an array'} of "
                            f"shape {value.shape} made from values outside the recorded "
                            f"operations")
                return ("V", None)
            self.escaping.add(s)
            return ("T" if tensor else "A", s)
        if type(value) in (tuple, list):
            return (type(value).__name__, tuple(self._template(v) for v in value))
        if type(value) is dict:
            return ("dict", tuple((k, self._template(v)) for k, v in value.items()))
        if value is None or type(value) is str:
            return ("V", value)
        if type(value) in (bool, int, float):
            self.refuse(f"the function returns a Python {type(value).__name__} (a logged value, "
                        f"e.g. a learning rate?), which a replay would return unchanged; return "
                        f"a tensor, or read it outside the function")
            return ("V", value)
        self.refuse(f"the function returns a {type(value).__name__}, which a replay cannot "
                    f"rebuild (return Tensors, arrays, numbers, or tuples/lists/dicts of them)")
        return ("V", None)


# --------------------------------------------------------------------------------------------
# Comparing two captures
# --------------------------------------------------------------------------------------------

_WRITES_GRADS = ("reset_grads", "clip_grad_norm_", "clip_grad_value_")


def _is_iterator(v) -> bool:
    return hasattr(v, "__next__") and not isinstance(v, (np.ndarray, Tensor))


def _resets(step) -> bool:
    """Whether a recorded call sets the .grad of the tensors in its first argument to None."""
    method, args, kwargs = step[1], step[2], step[3]
    if getattr(method, "__name__", "") != "reset_grads" or not args or type(args[0]) is not list:
        return False
    return bool(kwargs.get("set_to_none", args[1] if len(args) > 1 else True))


def _has_bool_array(index) -> bool:
    items = index if type(index) is tuple else (index,)
    return any(isinstance(i, np.ndarray) and i.dtype == np.bool_ for i in items)


def _same(a, b) -> bool:
    """Equal as settings of a step: numbers by value (NaN equals NaN), containers element by
    element, functions and objects by identity."""
    ta = type(a)
    if ta is not type(b):
        return False
    if ta in (int, bool, str, type(None), _Slot, slice, type(Ellipsis)):
        return a == b
    if ta is float:
        return a == b or (a != a and b != b)
    if ta in (tuple, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if ta is dict:
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if ta is types.MethodType:
        return a.__self__ is b.__self__ and a.__func__ is b.__func__
    if isinstance(a, np.dtype):
        return a == b
    if isinstance(a, np.generic):
        return a.dtype == b.dtype and (a == b or (a != a and b != b))
    return a is b


def _difference(a: _Recorder, b: _Recorder):
    """Why two captures of the same signature differ (None when they do not)."""
    if len(a.steps) != len(b.steps):
        return f"the two calls recorded {len(a.steps)} and {len(b.steps)} steps"
    for k, (x, y) in enumerate(zip(a.steps, b.steps)):
        if not _same(x, y):
            what = x[1].__name__ if x[0] == "op" else \
                getattr(x[1], "__qualname__", x[0]) if x[0] in ("kernel", "call") else "a .grad"
            if x[0] == "op" and x[1] is y[1] and x[2] != y[2]:
                return (f"{what} (step {k}) read tensors that were made anew on each call from "
                        f"values outside the recorded operations")
            return f"step {k} ({what}) differs between the two calls"
    if len(a.externals) != len(b.externals) or \
            any(s != t or x is not y for (s, x), (t, y) in zip(a.externals, b.externals)):
        for (s, x), (t, y) in zip(a.externals, b.externals):
            if x is not y:
                return (f"a tensor of shape {x.shape} read by the function is made anew on each "
                        f"call from values outside the recorded operations (e.g. with .data or "
                        f"numpy); pass it as an argument or compute it with tensor operations")
        return "the two calls read different tensors"
    if len(a.constants) != len(b.constants):
        return "the two calls used different constants"
    for (s, x), (t, y) in zip(a.constants, b.constants):
        if s != t or x.dtype != y.dtype or x.shape != y.shape or \
                not np.array_equal(x, y, equal_nan=x.dtype.kind in "fc"):
            return (f"a constant of shape {x.shape} differs between the two calls (a number "
                    f"computed from values, e.g. float(t.data.sum()), is not captured)")
    if a.inputs != b.inputs or a.escaping != b.escaping or not _same(a.template, b.template):
        return "the two calls returned different structures"
    return None


# --------------------------------------------------------------------------------------------
# Replay
# --------------------------------------------------------------------------------------------

def _unchanged(snapshot) -> bool:
    """Whether every object in ``snapshot`` still has the same attributes (by identity), and no
    module has gained a forward hook (registering one changes no attribute)."""
    for m, attrs in snapshot:
        d = m.__dict__
        if len(d) != len(attrs) or any(d.get(k, d) is not v for k, v in attrs.items()):
            return False
        if d.get("_forward_hooks") or d.get("_forward_pre_hooks"):
            return False
    return True


def _free_values(fn):
    """A function returning what ``fn`` reads from outside, besides its arguments: its closure's
    cells and the globals its code names (modules excepted), and the object of a bound method.
    A plan is replayed only while these are the same objects (numbers: equal)."""
    owner = fn.__self__ if isinstance(fn, types.MethodType) else None
    f = fn.__func__ if isinstance(fn, types.MethodType) else fn
    if not isinstance(f, types.FunctionType):
        return lambda: (owner,)
    cells = f.__closure__ or ()
    g = f.__globals__
    names = tuple(n for n in f.__code__.co_names
                  if n in g and not isinstance(g[n], types.ModuleType))

    def values():
        out = [owner]
        for c in cells:
            try:
                out.append(c.cell_contents)
            except ValueError:  # a cell not filled yet
                out.append(_EMPTY)
        out.extend([g.get(n, _EMPTY) for n in names])
        return tuple(out)
    return values


_EMPTY = object()
_MODULE_INTERNALS = frozenset(("_parameters", "_buffers", "_modules", "_non_persistent",
                               "_forward_pre_hooks", "_forward_hooks"))
_CONTAINERS = (list, dict, set, np.ndarray)


def _copy_value(v):
    return v.copy() if type(v) is not list else list(v)


def _containers_unchanged(containers) -> bool:
    for m, k, kept in containers:
        now = m.__dict__.get(k, _EMPTY)
        if type(now) is not type(kept):
            return False
        if type(kept) is np.ndarray:
            if now.shape != kept.shape or now.dtype != kept.dtype or \
                    not np.array_equal(now, kept, equal_nan=kept.dtype.kind in "fc"):
                return False
        elif type(kept) is set:
            if now != kept:
                return False
        elif not _same(now, kept):
            return False
    return True


class _Copied:
    """A list, dict or set the function reads from outside, with a copy of its contents: it is
    compared by identity and by value (``cfg["beta"] = 0.5`` changes no identity)."""

    __slots__ = ("original", "copy")

    def __init__(self, original):
        self.original, self.copy = original, _copy_value(original)


def _kept(values: tuple) -> tuple:
    return tuple(_Copied(v) if type(v) in (list, dict, set) else v for v in values)


def _same_values(now: tuple, kept: tuple) -> bool:
    """Whether the values ``_free_values`` gives ``now`` are those ``_kept`` kept."""
    if len(now) != len(kept):
        return False
    for x, y in zip(now, kept):
        if type(y) is _Copied:
            if x is not y.original or not (x == y.copy if type(x) is set else _same(x, y.copy)):
                return False
        elif x is not y and not (type(x) is type(y) and type(x) in (int, float, str, bool)
                                 and (x == y or (x != x and y != y))):
            return False
    return True


def _resolve(value, v):
    if type(value) is _Slot:
        return v[value.i]
    if type(value) is tuple:
        return tuple(_resolve(x, v) for x in value)
    if type(value) is list:
        return [_resolve(x, v) for x in value]
    if type(value) is dict:
        return {k: _resolve(x, v) for k, x in value.items()}
    return value


def _has_slot(value) -> bool:
    if type(value) is _Slot:
        return True
    if type(value) in (tuple, list):
        return any(_has_slot(x) for x in value)
    if type(value) is dict:
        return any(_has_slot(x) for x in value.values())
    return False


def _op_step(cls, ins, params, o, state):
    fwd = cls.forward
    if state or _has_slot(params):
        def run(v):
            fn = _new(cls)
            v[o] = fwd(fn, *[v[i] for i in ins], **_resolve(params, v))
            for name, s in state:
                v[s] = getattr(fn, name)
        return run
    if len(ins) == 1:
        i0 = ins[0]
        if params:
            def run(v):
                v[o] = fwd(_new(cls), v[i0], **params)
        else:
            def run(v):
                v[o] = fwd(_new(cls), v[i0])
        return run
    if len(ins) == 2 and not params:
        i0, i1 = ins

        def run(v):
            v[o] = fwd(_new(cls), v[i0], v[i1])
        return run

    def run(v):
        v[o] = fwd(_new(cls), *[v[i] for i in ins], **params)
    return run


# Ops whose forward is one ufunc (or matmul, or a sum): replayed into a buffer allocated once,
# with ``out=``. The same numpy call as the op's forward, so the same bits.
_BINARY = {ops.Add: np.add, ops.Sub: np.subtract, ops.Mul: np.multiply, ops.Div: np.divide}
_UNARY = {ops.Neg: np.negative, ops.Exp: np.exp, ops.Log: np.log, ops.Sin: np.sin,
          ops.Cos: np.cos, ops.Tanh: np.tanh}


def _bufferable(cls, params) -> bool:
    """Whether the op has a replay that writes into a buffer (``_buffered_op_step``)."""
    if cls in _BINARY or cls in _UNARY:
        return not params
    return cls is ops.Relu or (cls in (ops.MatMul, ops.Sum) and not _has_slot(params))


def _buffered_op_step(cls, ins, params, o, state, buf, mask):
    """A replay of the op writing into ``buf`` (ReLU's mask into ``mask``; None when no later
    step reads the mask, which is then not computed)."""
    ufunc = _BINARY.get(cls)
    if ufunc is not None and not params:
        i0, i1 = ins

        def run(v):
            v[o] = ufunc(v[i0], v[i1], out=buf)
        return run
    ufunc = _UNARY.get(cls)
    if ufunc is not None and not params:
        i0 = ins[0]

        def run(v):
            v[o] = ufunc(v[i0], out=buf)
        return run
    if cls is ops.MatMul and not _has_slot(params):
        i0, i1 = ins
        ta, tb = params.get("ta", False), params.get("tb", False)
        matmul = np.matmul
        if not ta and not tb:
            def run(v):
                v[o] = matmul(v[i0], v[i1], out=buf)
        elif ta and not tb:
            def run(v):
                v[o] = matmul(v[i0].T, v[i1], out=buf)
        elif tb and not ta:
            def run(v):
                v[o] = matmul(v[i0], v[i1].T, out=buf)
        else:
            def run(v):
                v[o] = matmul(v[i0].T, v[i1].T, out=buf)
        return run
    if cls is ops.Sum and not _has_slot(params):
        i0 = ins[0]
        axis, keepdims = params.get("axis"), params.get("keepdims", False)
        reduce = np.add.reduce

        def run(v):
            v[o] = reduce(v[i0], axis=axis, keepdims=keepdims, out=buf)
        return run
    if cls is ops.Relu:
        i0 = ins[0]
        (name, s), = state
        maximum, greater = np.maximum, np.greater
        if mask is not None:
            def run(v):
                a = v[i0]
                v[s] = greater(a, 0, out=mask)
                v[o] = maximum(a, 0, out=buf)
        else:
            def run(v):
                v[o] = maximum(v[i0], 0, out=buf)
        return run
    return None


def _arrays(out):
    """A kernel's result with numpy scalars (what a ufunc gives for 0-d inputs) as 0-d arrays."""
    if isinstance(out, np.generic):
        return np.asarray(out)
    if type(out) is tuple:
        return tuple(np.asarray(a) if isinstance(a, np.generic) else a for a in out)
    return out


_VIEWS = (ops.Reshape, ops.Transpose, ops.BroadcastTo, ops.GetItem)


def _view_once_step(cls, i0, params, o):
    """A view of a buffer that every replay reuses: made at the first replay, then kept."""
    fwd, made = cls.forward, []

    def run(v):
        if not made:
            made.append(fwd(_new(cls), v[i0], **params))
        v[o] = made[0]
    return run


def _kernel_into_step(into, args, out, buf):
    """A kernel with an ``into(out, *args)`` form, written into a buffer reused per replay."""
    dynamic = _has_slot(args)

    def run(v):
        v[out] = into(buf, *(_resolve(args, v) if dynamic else args))
    return run


def _kernel_step(fn, args, outs):
    dynamic = _has_slot(args)
    if outs is None:
        def run(v):
            fn(*(_resolve(args, v) if dynamic else args))
    elif type(outs) is int:
        def run(v):
            v[outs] = _arrays(fn(*(_resolve(args, v) if dynamic else args)))
    else:
        def run(v):
            for s, a in zip(outs, _arrays(fn(*(_resolve(args, v) if dynamic else args)))):
                v[s] = a
    return run


def _call_step(method, args, kwargs, out):
    if out is None:
        def run(v):
            method(*args, **kwargs)
    else:
        def run(v):
            v[out] = method(*args, **kwargs).data
    return run


def _grad_step(target, s, plan):
    if type(target) is tuple:  # an argument tensor: the one of this call
        position = target[1]

        def run(v):
            plan.call_tensors[position].grad = _wrap(v[s])
    else:
        def run(v):
            target.grad = _wrap(v[s])
    return run


def _slots_in(value, into: set):
    if type(value) is _Slot:
        into.add(value.i)
    elif type(value) in (tuple, list):
        for x in value:
            _slots_in(x, into)
    elif type(value) is dict:
        for x in value.values():
            _slots_in(x, into)


def _escaping(rec) -> set:
    """Slots whose arrays leave a replay (outputs, .grad), and the arrays they are views of:
    those get fresh memory at every replay, the rest a buffer reused from one replay to the next."""
    escaping = set(rec.escaping)
    for step in reversed(rec.steps):
        # Views as the capture saw them (whatever the op's class claims): a copy can't escape
        # a buffer, a view must take its buffer with it.
        if step[0] == "op" and step[4] in rec.views and step[4] in escaping:
            escaping.add(step[2][0])
    return escaping


class _Pool:
    """Buffers by (shape, dtype, layout), handed out and given back while a plan is built."""

    def __init__(self):
        self.specs, self.free, self.owner = [], {}, {}

    def take(self, slot, shape, dtype, order) -> int:
        key = (shape, dtype.str, order)
        free = self.free.get(key)
        b = free.pop() if free else None
        if b is None:
            b = len(self.specs)
            self.specs.append(key)
        self.owner[slot] = b
        return b

    def give(self, slot):
        b = self.owner.pop(slot)
        self.free.setdefault(self.specs[b], []).append(b)

    def allocate(self) -> list:
        return [np.empty(shape, np.dtype(dtype), order=order) for shape, dtype, order in self.specs]


class _Plan:
    """A checked capture, ready to replay."""

    def __init__(self, rec: _Recorder, clock: int):
        self.clock = clock
        self.size = len(rec.refs)
        self.base = [None] * self.size
        for s, arr in rec.constants:
            self.base[s] = arr
        self.inputs = rec.inputs
        self.externals = [(s, t, t.data.shape, t.data.dtype, t.requires_grad)
                          for s, t in rec.externals]
        self.template = rec.template
        self.call_tensors = None
        self.snapshot = rec.snapshot
        self.containers = rec.containers
        self.watched = rec.watched
        self.free, self.free_now = rec.free, rec.free_values
        self.strides = [t.data.strides for _, t in rec.externals]
        # Tensors whose .grad backward assigns with no zero_grad before it in the plan: as at
        # capture, they must have none when a replay starts (else eager would accumulate).
        covered, self.must_be_none, self.args_must_be_none = set(), [], []
        for step in rec.steps:
            if step[0] == "call" and _resets(step):
                covered.update(id(t) for t in step[2][0])
            elif step[0] == "grad":
                target = step[1]
                if type(target) is tuple:
                    self.args_must_be_none.append(target[1])
                elif id(target) not in covered:
                    self.must_be_none.append(target)
        self.steps = self._build(rec)
        self.replays = 0

    def _build(self, rec):
        """The replay's steps. Op outputs that stay inside a replay go into buffers allocated
        once, shared by slots whose lifetimes do not overlap (a buffer returns to the pool after
        the last step that reads its slot, or a view of it); a view of a buffer is made once.
        Planned from the shapes and layouts the capture noted (it keeps no array alive)."""
        escaping, meta = _escaping(rec), rec.meta
        last = {}  # slot -> index of the last step that reads it
        for k, step in enumerate(rec.steps):
            reads = set()
            if step[0] == "op":
                reads.update(step[2])
                _slots_in(step[3], reads)
            elif step[0] == "kernel":
                _slots_in(step[2], reads)
            for r in reads:
                last[r] = k
        pool = _Pool()
        root, end, plan = {}, {}, []  # root: view slot -> buffered slot it views

        def take(s, k):
            shape, dtype, order = meta[s]
            root[s], end[s] = s, last.get(s, k)
            return pool.take(s, shape, dtype, order)

        stable = {sl for sl, _ in rec.constants}  # the same array at every replay
        for k, step in enumerate(rec.steps):
            kind = step[0]
            if kind == "op":
                cls, ins, params, o, state = step[1:]
                if o not in escaping and meta[o][2] is not None and _bufferable(cls, params):
                    mask = None
                    if state and state[0][1] in last:
                        mask = take(state[0][1], k)
                        stable.add(state[0][1])
                    plan.append(("buffered", step, take(o, k), mask))
                    stable.add(o)
                elif cls in _VIEWS and ins[0] in stable and not _has_slot(params) and \
                        o in rec.views and \
                        (cls is not ops.GetItem or ops._is_basic_index(params["index"])):
                    plan.append(("view", step))
                    stable.add(o)
                    if ins[0] in root:  # a view of a pooled buffer keeps it taken
                        r = root[o] = root[ins[0]]
                        end[r] = max(end[r], last.get(o, k))
                else:
                    plan.append(("op", step))
                    if o in rec.views and ins[0] in root:  # a view made afresh each replay,
                        r = root[o] = root[ins[0]]        # of a pooled buffer: keep it taken
                        end[r] = max(end[r], last.get(o, k))
            elif kind == "kernel":
                fn, args, outs = step[1:]
                if getattr(fn, "into", None) is not None and type(outs) is int and \
                        outs not in escaping and meta[outs][2] is not None:
                    plan.append(("into", step, take(outs, k)))
                    stable.add(outs)
                else:
                    plan.append(("kernel", step))
            else:
                plan.append((kind, step))
            for r in [r for r, e in end.items() if e <= k]:
                del end[r]
                pool.give(r)
        buffers = pool.allocate()
        steps = []
        for item in plan:
            kind, step = item[0], item[1]
            if kind == "buffered":
                steps.append(_buffered_op_step(*step[1:], buffers[item[2]],
                                               None if item[3] is None else buffers[item[3]]))
            elif kind == "view":
                steps.append(_view_once_step(step[1], step[2][0], step[3], step[4]))
            elif kind == "op":
                steps.append(_op_step(*step[1:]))
            elif kind == "into":
                steps.append(_kernel_into_step(step[1].into, step[2], step[3], buffers[item[2]]))
            elif kind == "kernel":
                steps.append(_kernel_step(*step[1:]))
            elif kind == "call":
                steps.append(_call_step(*step[1:]))
            else:
                steps.append(_grad_step(step[1], step[2], self))
        self.buffer_bytes = sum(b.nbytes for b in buffers)
        return steps

    def valid(self, tensors) -> bool:
        if _Capture.clock != self.clock:
            # Some module changed somewhere (or a hook was registered): this plan stays valid if
            # none of the modules it saw has another attribute or a hook now (train() then
            # eval() then train() leaves them as they were).
            if not _unchanged(self.snapshot) or any(t._hooks for _, t, *_ in self.externals):
                return False
            self.clock = _Capture.clock
        if self.watched and not _unchanged(self.watched):
            return False
        if self.containers and not _containers_unchanged(self.containers):
            return False
        if not _same_values(self.free_now(), self.free):
            return False  # the function's closure or globals name other objects now
        for (s, t, shape, dtype, requires_grad), strides in zip(self.externals, self.strides):
            a = t.data
            if a.shape != shape or a.dtype != dtype or t.requires_grad is not requires_grad \
                    or a.strides != strides:
                return False
        for t in self.must_be_none:
            if t.grad is not None:
                return False
        for i in self.args_must_be_none:
            if tensors[i].grad is not None:
                return False
        for t in tensors:
            if t is not None and t._hooks:
                return False
        return True

    def run(self, arrays, tensors):
        v = self.base.copy()
        for s, a in zip(self.inputs, arrays):
            v[s] = a
        for s, t, _, _, _ in self.externals:
            v[s] = t.data
        self.call_tensors = tensors
        try:
            for step in self.steps:
                step(v)
        finally:
            self.call_tensors = None
        self.replays += 1
        return _build(self.template, v)


def _build(template, v):
    kind, value = template
    if kind == "T":
        return _wrap(v[value])
    if kind == "A":
        return v[value]
    if kind == "V":
        return value
    if kind == "tuple":
        return tuple(_build(t, v) for t in value)
    if kind == "list":
        return [_build(t, v) for t in value]
    return {k: _build(t, v) for k, t in value}


# --------------------------------------------------------------------------------------------
# The decorator
# --------------------------------------------------------------------------------------------

def _signature(args, kwargs):
    """The key of a call, its array arguments in order, and the tensors they came from."""
    parts, arrays, tensors, keep = [_GradMode.enabled], [], [], []
    for a in (args if not kwargs else args + tuple(kwargs.values())):
        if isinstance(a, Tensor):
            d = a.data
            parts.append((d.shape, d.dtype.str, d.strides, a.requires_grad))
            arrays.append(d)
            tensors.append(a)
        elif isinstance(a, np.ndarray):
            parts.append(("array", a.shape, a.dtype.str, a.strides))
            arrays.append(a)
            tensors.append(None)
        elif a is None or type(a) in (bool, int, str):
            parts.append((type(a).__name__, a))
        elif type(a) is float:
            parts.append(("float", repr(a)))
        elif isinstance(a, (list, tuple, dict, set)):
            return None, arrays, tensors, keep  # made afresh per call: no stable key
        else:  # a module, an optimiser...: by identity, kept alive so the id stays its own
            parts.append(("object", id(a)))
            keep.append(a)
    if kwargs:
        parts.append(tuple(kwargs))
    return tuple(parts), arrays, tensors, keep


class jit:
    """Compile ``fn``: capture its work on the first calls of each signature, replay it after.

    Usable as ``@tg.jit`` or ``step = tg.jit(step)``. ``watch``: objects the function reads
    whose attributes it or its caller may change (a stateful loss object): a change during a
    capture call makes the signature run eagerly, a change between calls means a new capture. A signature is the shapes, dtypes and
    ``requires_grad`` of the Tensor and ndarray arguments, the values of number and string
    arguments, the identity of other arguments, and the gradient mode. The first two calls of a
    signature run ``fn`` eagerly while recording (the second checks the first); later calls
    replay. What a replay returns is built from arrays computed afresh: returned tensors carry
    no graph (a compiled function does its own backward). See docs/jit.md.
    """

    max_plans = 32  # signatures per function; beyond that, new ones run eagerly
    max_modes = 4   # plans per signature, for different module states (train, eval)

    def __new__(cls, fn=None, *, watch=()):
        if fn is None:  # @jit(watch=...)
            return lambda f: cls(f, watch=watch)
        return super().__new__(cls)

    def __init__(self, fn=None, *, watch=()):
        if not callable(fn):
            raise TypeError(f"jit: expected a function; got {type(fn).__name__}")
        self.watch = tuple(watch)
        for obj in self.watch:
            if not hasattr(obj, "__dict__"):
                raise TypeError(f"jit: watch= takes objects with attributes; got "
                                f"{type(obj).__name__}")
        self._warned = set()
        functools.update_wrapper(self, fn)
        self.fn = fn
        self._free = _free_values(fn)
        self._entries = {}  # key -> _Entry
        self.replays = 0    # calls that were replays (for tests and benchmarks)
        self._keep = {}     # key -> objects the key names by id
        self.eager_reasons = {}  # key -> why that signature runs eagerly

    def __get__(self, obj, objtype=None):
        return self if obj is None else types.MethodType(self, obj)

    def reset(self) -> None:
        """Forget every plan: the next calls capture afresh."""
        self._entries.clear()
        self._keep.clear()

    def __call__(self, *args, **kwargs):
        if _Capture.active is not None or _Recording.on_record is not None or \
                Tensor.__dict__["data"] is not _DATA:
            # Inside another capture (also inside a replayed call or kernel of one, where
            # ``_Capture.active`` is None for the while), or a graph trace is on.
            return self.fn(*args, **kwargs)
        key, arrays, tensors, keep = _signature(args, kwargs)
        entry = self._entries.get(key)
        if entry is None:
            if key is None or len(self._entries) >= self.max_plans:
                return self._eager_with_warning(
                    "an argument is a list, tuple, dict or set (pass its tensors as separate "
                    "arguments)" if key is None else
                    f"it has met {self.max_plans} signatures already (shapes that change on "
                    f"every call are not worth capturing)", args, kwargs)
            entry = self._entries[key] = _Entry()
            self._keep[key] = keep
        if entry.eager:
            return self.fn(*args, **kwargs)
        plans = entry.plans
        for i, plan in enumerate(plans):
            if plan.valid(tensors):
                if i:  # the plan that fits now goes first (train and eval mode alternate)
                    plans.insert(0, plans.pop(i))
                result = plan.run(arrays, tensors)
                self.replays += 1
                return result
        first = entry.pending
        if first is not None and first.clock != _Capture.clock:
            if _unchanged(first.snapshot):
                first.clock = _Capture.clock
            else:
                first = None  # a first capture from before a module changed: start again
        if first is not None and ((first.watched and not _unchanged(first.watched)) or
                                  not _same_values(self._free(), first.free)):
            first = None
        rec = _Recorder()
        objects = [a for a in (args if not kwargs else args + tuple(kwargs.values()))
                   if not isinstance(a, (Tensor, np.ndarray)) and hasattr(a, "__dict__")]
        free_before = _kept(self._free())
        rec.begin(arrays, tensors, list(self.watch) +
                  [o for o in objects + [free_before[0]]
                   if hasattr(o, "__dict__") and not isinstance(o, _Module)])
        clock = _Capture.clock
        _Capture.active = rec
        Tensor.data = _WATCHED_DATA  # reading .data outside the library is a value read
        try:
            result = self.fn(*args, **kwargs)
        except BaseException:
            entry.pending = None
            raise
        finally:
            _Capture.active = None
            Tensor.data = _DATA
        rec.free, rec.free_values = _kept(self._free()), self._free
        if not _same_values(self._free(), free_before):
            rec.refuse("the function rebinds a variable it closes over, or a global (Python "
                       "state a replay would not update)")
        rec.finish(result, [m for m in objects + list(rec.free) if isinstance(m, _Module)])
        if _Capture.clock != clock:
            rec.refuse("the function changes a module's attributes or mode")
        reason = rec.reason
        if reason is None and first is not None:
            reason = _difference(first, rec)
        if reason is not None:
            entry.eager = True
            entry.pending = None
            self.eager_reasons[key] = reason
            warnings.warn(f"jit({getattr(self.fn, '__qualname__', 'function')}): runs eagerly "
                          f"for this signature: {reason}", JitWarning, stacklevel=2)
        elif first is not None:
            plans.insert(0, _Plan(rec, clock))
            del plans[self.max_modes:]
            entry.pending = None
        else:
            entry.pending = rec
        return result

    def _eager_with_warning(self, why, args, kwargs):
        if why not in self._warned:
            self._warned.add(why)
            warnings.warn(f"jit({getattr(self.fn, '__qualname__', 'function')}): runs eagerly: "
                          f"{why}", JitWarning, stacklevel=3)
        return self.fn(*args, **kwargs)


class _Entry:
    """One signature: its plans (one per module state met, e.g. train and eval mode), a first
    capture awaiting its check, or the verdict that it runs eagerly."""

    __slots__ = ("plans", "pending", "eager")

    def __init__(self):
        self.plans, self.pending, self.eager = [], None, False


# ``Tensor.data`` while a capture runs: a read (or write) from outside the library is a value
# the function computes with in Python, which a replay would not repeat.
_DATA = Tensor.__dict__["data"]


def _outside_the_library(frame) -> bool:
    return not frame.f_globals.get("__name__", "").startswith("tinygrad_mlp")


def _get_data(t):
    rec = _Capture.active
    if rec is not None and _outside_the_library(sys._getframe(1)):
        rec.refuse("the function reads .data (what it computes with the array is not recorded; "
                   "use tensor operations, or pass arrays as arguments)")
    return _DATA.__get__(t, Tensor)


def _set_data(t, value):
    rec = _Capture.active
    if rec is not None and _outside_the_library(sys._getframe(1)):
        rec.refuse("the function assigns .data")
    _DATA.__set__(t, value)


_WATCHED_DATA = property(_get_data, _set_data)
