"""Floor 1 (autograd): graph nodes, the backward engine, gradient mode and ``grad()``.

Imports numpy only, so ``tensor.py`` sits on top of this file rather than beside it. The engine
never imports the ``Tensor`` class: ``tensor.py`` registers it at import
(``register_tensor_class``), and what the engine reads and writes on a tensor is written down
once, in ``TensorContract`` below. That is the whole contract between the two files; anything
else a backward needs it does with ordinary Tensor operations, in ``ops.py``.

We keep ``Function`` here, apart from ``Tensor`` (DeZero and tinygrad put them side by side),
because the engine then reads in one short file with no Tensor math in it, and the contract it
relies on is a list a reader can check, rather than whatever the Tensor class happens to have.
"""
from __future__ import annotations

import contextlib
import functools
from typing import Optional, Protocol

from numpy import may_share_memory as _np_may_share_memory
from numpy import ndarray as _ndarray
from numpy import ones as _np_ones
from numpy import zeros_like as _np_zeros_like

__all__ = ["Function", "TensorContract", "register_tensor_class", "constant", "bump_version",
           "shared_version", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled",
           "grad", "backward", "topological_order", "RemovableHandle", "trace_modules",
           "module_stack", "reset_grads", "kernel", "literal", "replayed", "refuse_capture",
           "structure_changed", "is_capturing"]


# --------------------------------------------------------------------------------------------
# The contract with the Tensor class
# --------------------------------------------------------------------------------------------

class TensorContract(Protocol):
    """Everything the engine (this file and ``Function.apply``) uses on a tensor, and why.

    ``tensor.Tensor`` provides it; a test checks that it does. Nothing else about tensors is
    assumed here: a backward works on gradients with Tensor operations (``ops.py``), and a
    constant tensor is made with ``constant(array)``.

    The registered class itself is used in two ways: ``cls._from_op(array)`` below, and
    ``cls(data, dtype=...)``, which turns a gradient given by a user or a hook into a tensor.
    """

    data: _ndarray                 # the value: forward runs on inputs' data
    requires_grad: bool            # an op is recorded only when one of its inputs requires grad
    grad: Optional[TensorContract]  # where backward() accumulates a leaf's gradient
    _ctx: Optional[Function]       # the op that produced this tensor; None for a leaf
    _hooks: Optional[list]         # register_hook()'s functions, called on the gradient
    _retains_grad: bool            # retain_grad(): keep a non-leaf's gradient in .grad too
    _version: Optional[list]       # version cell, shared by views (see bump_version)
    shape: tuple                   # in error messages, and to find broadcast gradients
    dtype: object                  # a gradient is handed out in its tensor's dtype
    size: int                      # backward() without a gradient needs one element

    @staticmethod
    def _from_op(array) -> TensorContract:
        """A new tensor wrapping ``array`` as it is, no checks: each op's output (the hot path,
        hence no validation) and every ``constant``."""

    def _sum_to(self, shape) -> TensorContract:
        """This gradient summed over broadcast axes down to ``shape`` (an input's shape)."""

    def astype(self, dtype) -> TensorContract:
        """The same values in ``dtype`` (mixed-dtype arithmetic may have promoted a gradient)."""

    def __add__(self, other) -> TensorContract:
        """Gradients arriving from several consumers are summed."""


_tensor_class = None  # set by register_tensor_class
_wrap = None          # _tensor_class._from_op, read once per op by Function.apply


def register_tensor_class(cls) -> None:
    """Tell the engine which class its tensors are (``tensor.py`` does, once, at import)."""
    global _tensor_class, _wrap
    _tensor_class, _wrap = cls, cls._from_op


def constant(array):
    """A tensor holding ``array`` (shared, not copied) that requires no grad: what an op's
    backward multiplies a gradient by (a mask, a saved output). No checks: for arrays the
    library made itself; users and upper floors call ``tinygrad_mlp.as_tensor``."""
    return _wrap(array)


# --------------------------------------------------------------------------------------------
# Gradient mode
# --------------------------------------------------------------------------------------------

class _GradMode:
    # A class attribute, not a thread-local: reading it sits on every op's hot path.
    enabled = True


def is_grad_enabled() -> bool:
    return _GradMode.enabled


class _GradModeSwitch:
    """Context manager and decorator that turns graph recording on or off."""

    def __init__(self, mode: bool):
        self.mode = bool(mode)
        self.prev = None

    def __enter__(self):
        self.prev = _GradMode.enabled
        _GradMode.enabled = self.mode
        return self

    def __exit__(self, *exc):
        _GradMode.enabled = self.prev
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            prev = _GradMode.enabled
            _GradMode.enabled = self.mode
            try:
                return fn(*args, **kwargs)
            finally:
                _GradMode.enabled = prev
        return wrapper


class set_grad_enabled(_GradModeSwitch):
    """``set_grad_enabled(False)`` switches recording off at once, as in PyTorch; used as a context
    manager or a decorator it switches only for the block or the function."""

    def __init__(self, mode: bool):
        super().__init__(mode)
        self.prev = _GradMode.enabled
        _GradMode.enabled = self.mode

    def __enter__(self):
        return self  # switched already, by __init__; __exit__ restores the mode found there

    def __call__(self, fn):
        _GradMode.enabled = self.prev  # decorating is not running: switch only inside fn
        return super().__call__(fn)


class no_grad(_GradModeSwitch):
    """Record nothing inside: ``with no_grad(): ...`` or ``@no_grad()`` (``@no_grad`` works too)."""

    def __new__(cls, fn=None):
        self = super().__new__(cls)
        if callable(fn):  # used bare as ``@no_grad``
            self.__init__()
            return self(fn)
        return self

    def __init__(self, fn=None):
        super().__init__(False)


class enable_grad(_GradModeSwitch):
    """Record inside, even within ``no_grad``: ``with enable_grad(): ...`` or as a decorator."""

    def __new__(cls, fn=None):
        self = super().__new__(cls)
        if callable(fn):
            self.__init__()
            return self(fn)
        return self

    def __init__(self, fn=None):
        super().__init__(True)


# --------------------------------------------------------------------------------------------
# Capture (tinygrad_mlp.jit): what the engine tells a recorder
# --------------------------------------------------------------------------------------------

class _Capture:
    # ``active``: the jit's recorder while a compiled function runs its capture call, else None;
    # one class-attribute read per op is what capture costs eager code.
    # ``clock``: counts changes of module structure (attributes, train/eval), which invalidate
    # every captured plan.
    active = None
    clock = 0


def is_capturing() -> bool:
    """Whether a compiled function is being captured (for shortcuts that write in place)."""
    return _Capture.active is not None


def structure_changed() -> None:
    """A module's attributes or mode changed: plans captured before must not be replayed."""
    _Capture.clock += 1


def kernel(fn, *args):
    """``fn(*args)``: a computation on arrays outside the primitive ops (a mask, a random draw,
    a label encoding, a check that raises) that a compiled function must repeat at every replay.

    ``args`` are arrays (each must come from the function's arguments, its parameters or an
    earlier op or kernel) and static values; ``fn`` returns an array, a tuple of arrays or None
    and must depend on nothing else that changes between calls (a generator it resolves inside
    is fine: it is resolved again at replay). Eager code pays one attribute read. A ``fn`` with
    an ``into`` attribute, ``fn.into(out, *args)`` writing the same values into ``out``, lets a
    replay reuse one buffer instead of allocating."""
    rec = _Capture.active
    if rec is None:
        return fn(*args)
    return rec.kernel(fn, args)


def literal(array):
    """A constant tensor whose value depends on no input (a zero, a Python number operand, the
    seed gradient of backward): a compiled function may keep it as it is."""
    rec = _Capture.active
    if rec is not None:
        rec.literal(array)
    return _wrap(array)


def replayed(method):
    """Decorator for a method with effects outside the graph (an optimiser's step, zero_grad, a
    schedule's step, gradient clipping): under capture it runs as one unit and the compiled
    function calls it again, with the same arguments, at every replay."""
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        rec = _Capture.active
        if rec is None:
            return method(*args, **kwargs)
        return rec.call(method, args, kwargs)
    wrapper.__replayed__ = True
    return wrapper


def replay_overrides(cls, name: str) -> None:
    """Make ``cls.<name>`` replayed when a subclass overrides a replayed method (from the base's
    ``__init_subclass__``): otherwise only the base's part, called through ``super()``, would be
    replayed, and the override's own effects would run only on capture."""
    method = cls.__dict__.get(name)
    if callable(method) and not getattr(method, "__replayed__", False):
        setattr(cls, name, replayed(method))


def refuse_capture(reason: str) -> None:
    """Under capture, note that this call cannot be replayed (``reason`` says why): the compiled
    function then runs eagerly for this signature. No effect otherwise."""
    rec = _Capture.active
    if rec is not None:
        rec.refuse(reason)


# --------------------------------------------------------------------------------------------
# Versions (in-place changes)
# --------------------------------------------------------------------------------------------

class _InPlaceClock:
    # Counts every in-place change in the process. A recorded op notes the count when it is
    # recorded (one integer, whatever its inputs); a tensor changed in place notes the count of
    # that change in its version cell, shared with every view of its memory. An input changed
    # after the op was recorded then has a version above the op's note.
    count = 0


def bump_version(t) -> None:
    """Note that ``t``'s memory (and so every view of it) was just changed in place."""
    if _Capture.active is not None:
        _Capture.active.refuse(f"an in-place change of a tensor of shape {t.shape}")
    _InPlaceClock.count += 1
    cell = t._version
    if cell is None:
        t._version = [_InPlaceClock.count]
    else:
        cell[0] = _InPlaceClock.count


def shared_version(t) -> list:
    """``t``'s version cell, created on first use, for a tensor that views ``t``'s memory."""
    cell = t._version
    if cell is None:
        cell = t._version = [0]
    return cell


def _check_versions(order) -> None:
    """Refuse a backward through an op whose saved input was changed in place after recording."""
    now = _InPlaceClock.count
    for t in order:
        ctx = t._ctx
        # Usually every op was recorded after the last in-place change: one comparison each.
        if ctx is None or ctx.epoch == now or ctx.released:
            continue
        if ctx.saves_output and ctx.out_version[0] > ctx.epoch:
            raise RuntimeError(
                f"backward: the output of {ctx.name} (a tensor of shape {t.shape}, dtype "
                f"{t.dtype}), saved for its backward, was modified by an in-place operation "
                f"(through a view or .detach()) after {ctx.name} was recorded, so its gradient "
                f"would be wrong. Change a copy (x.clone()) instead")
        if not ctx.reads_inputs:
            continue
        for i, inp in enumerate(ctx.inputs):
            cell = inp._version
            if cell is not None and cell[0] > ctx.epoch:
                raise RuntimeError(
                    f"backward: input {i} of {ctx.name} (a tensor of shape {inp.shape}, dtype "
                    f"{inp.dtype}), saved for its backward, was modified by an in-place operation "
                    f"after {ctx.name} was recorded, so its gradient would be wrong. Change a copy "
                    f"(x = x + y, or x.clone()), or do the in-place change after backward()")


# --------------------------------------------------------------------------------------------
# Module scopes (for drawing a graph collapsed by module)
# --------------------------------------------------------------------------------------------

class _Recording:
    # Called as ``on_record(fn)`` with each op as it is recorded; None unless a trace is on,
    # so what tracing costs every op is this one attribute read.
    on_record = None


class _ModuleScope:
    # The modules whose ``forward`` is running; a list only while a trace is on.
    stack = None


def module_stack():
    """The list of modules whose ``forward`` is running, or None when no trace is on.

    ``nn.Module.__call__`` pushes itself here while a trace is on; each op recorded meanwhile keeps
    the tuple of enclosing modules in ``Function.scope``.
    """
    return _ModuleScope.stack


def _note_scope(fn) -> None:
    stack = _ModuleScope.stack
    if stack:
        fn.scope = tuple(stack)


@contextlib.contextmanager
def trace_modules():
    """Within this block, recorded ops remember which module calls produced them (what
    ``draw_graph(collapse_modules=...)`` groups by). The one definition: ``tinygrad_mlp.viz``
    re-exports it under the same name."""
    prev = _ModuleScope.stack, _Recording.on_record
    _ModuleScope.stack, _Recording.on_record = [], _note_scope
    try:
        yield
    finally:
        _ModuleScope.stack, _Recording.on_record = prev


# --------------------------------------------------------------------------------------------
# Graph nodes
# --------------------------------------------------------------------------------------------

_new_node = object.__new__


class Function:
    """One recorded operation: ``forward`` works on ndarrays, ``backward`` on Tensors.

    Subclasses define ``forward(self, *arrays, **params) -> ndarray`` and
    ``backward(self, grad) -> tuple`` (one gradient Tensor or None per input). ``self.inputs`` holds
    the input Tensors and ``self.needs_grad`` which of them want a gradient, so a backward can skip
    work nobody asked for. Because backward is written with Tensor operations, running it with
    recording on (``create_graph=True``) records the derivative's own graph.
    """

    __slots__ = ("inputs", "needs_grad", "released", "scope", "epoch", "out_version")
    # Whether backward reads its inputs' values (then they are checked for in-place changes made
    # after recording); ops that need only shapes say False.
    reads_inputs = True
    # Whether the output may be a view of the first input's memory (reshape, transpose, basic
    # indexing): then the two share a version cell, so an in-place change of either is seen.
    makes_view = False
    # Whether backward reads the op's own output (exp and tanh keep it): then the output's
    # version is checked too, so changing it through a view or .detach() is refused.
    saves_output = False

    @classmethod
    def apply(cls, *inputs, **params):
        fn = _new_node(cls)
        out = _wrap(fn.forward(*[t.data for t in inputs], **params))
        if cls.makes_view and _np_may_share_memory(out.data, inputs[0].data):
            out._version = shared_version(inputs[0])
        if _GradMode.enabled:
            needs = tuple([t.requires_grad for t in inputs])
            if True in needs:  # record only when some input wants a gradient
                fn.inputs = inputs
                fn.needs_grad = needs
                fn.released = False
                fn.epoch = _InPlaceClock.count
                if cls.saves_output:
                    fn.out_version = shared_version(out)
                out.requires_grad = True
                out._ctx = fn
                if _Recording.on_record is not None:
                    _Recording.on_record(fn)
        if _Capture.active is not None:
            _Capture.active.op(fn, inputs, params, out)
        return out

    def forward(self, *arrays, **params):
        raise NotImplementedError

    def backward(self, grad):
        raise NotImplementedError

    @property
    def name(self) -> str:
        return type(self).__name__

    def release(self):
        """Drop everything backward would need, so the graph's arrays can be freed."""
        self.inputs = ()
        self.released = True
        for slot in type(self).__slots__:
            if hasattr(self, slot):
                delattr(self, slot)

    def __repr__(self):
        return f"<{self.name}>"


class RemovableHandle:
    """Returned by ``Tensor.register_hook``; ``remove()`` unregisters the hook."""

    __slots__ = ("hooks", "fn")

    def __init__(self, hooks: list, fn):
        self.hooks, self.fn = hooks, fn

    def remove(self):
        if self.fn in self.hooks:
            self.hooks.remove(self.fn)


# --------------------------------------------------------------------------------------------
# The engine
# --------------------------------------------------------------------------------------------

def topological_order(roots) -> list:
    """Tensors reachable from ``roots`` through recorded ops, each after every tensor it feeds.

    Iterative depth-first search with an explicit stack (no recursion), so a graph of any depth
    works. Only tensors that require grad are followed; the first entries are the roots.
    """
    order, visited = [], set()
    stack = [(root, False) for root in reversed(list(roots))]
    while stack:
        t, children_done = stack.pop()
        if children_done:
            order.append(t)
            continue
        # Mark on expansion, not on push: a tensor may sit on the stack below one of its consumers
        # and must be appended only after all of them.
        if id(t) in visited:
            continue
        visited.add(id(t))
        stack.append((t, True))
        ctx = t._ctx
        if ctx is not None:
            for inp, needs in zip(ctx.inputs, ctx.needs_grad):
                if needs and id(inp) not in visited:
                    stack.append((inp, False))
    order.reverse()
    return order


def _check_root(root, gradient, who="backward", keyword="gradient"):
    if not root.requires_grad:
        raise RuntimeError(
            f"{who}: this tensor does not require grad and has no recorded graph "
            "(create its inputs with requires_grad=True, and do not compute it under no_grad)")
    if gradient is None:
        if root.size != 1:
            raise RuntimeError(
                f"{who}: {keyword} can be implied only for a tensor with one element; this one "
                f"has shape {root.shape}. Pass {keyword}= of that shape (e.g. ones) or reduce "
                f"first")
        return literal(_np_ones(root.shape, dtype=root.dtype))
    gradient = _as_gradient(gradient, root)
    if gradient.shape != root.shape:
        raise ValueError(f"{who}: {keyword} has shape {gradient.shape} but the tensor has "
                         f"shape {root.shape}")
    return gradient


def run_backward(roots, gradients, retain_graph: bool, create_graph: bool, capture=None):
    """Propagate ``gradients`` from ``roots`` back through the recorded graph.

    With ``capture`` (a list of tensors) the gradients reaching those tensors are returned and no
    ``.grad`` is written (that is ``grad()``); without it, leaves accumulate into ``.grad`` and
    tensors that called ``retain_grad()`` keep theirs (that is ``backward()``).
    """
    order = topological_order(roots)
    _check_versions(order)
    grads = {}
    for r, g in zip(roots, gradients):
        grads[id(r)] = grads[id(r)] + g if id(r) in grads else g
    captured = {id(t): None for t in capture} if capture is not None else None
    # Memory of gradients handed to the user in this pass (the caller's own gradients count), so
    # that no two handed-out gradients share an array.
    handed_out = {id(_memory(g.data)) for g in gradients}

    prev = _GradMode.enabled
    _GradMode.enabled = create_graph
    # Popped off the end, so each tensor (and the activations its op saved) can be freed as soon
    # as its gradient has been passed on; the tensors still waiting stay alive, so the ids that
    # key ``grads`` cannot be reused meanwhile.
    order.reverse()
    try:
        while order:
            t = order.pop()
            g = grads.pop(id(t), None)
            if g is None:
                continue
            if t._hooks:
                if _Capture.active is not None:
                    _Capture.active.refuse("a tensor hook runs on a gradient (Python code a "
                                           "replay would skip)")
                for hook in list(t._hooks):
                    replaced = hook(g)
                    if replaced is not None:
                        replaced = _as_gradient(replaced, t)
                        if replaced.shape != g.shape:
                            raise ValueError(
                                f"backward: a hook returned a gradient of shape {replaced.shape} "
                                f"for a tensor of shape {g.shape}")
                        g = replaced
                        handed_out.add(id(_memory(g.data)))
            ctx = t._ctx
            if captured is not None:
                if id(t) in captured:
                    captured[id(t)] = _hand_out(g, t, handed_out, create_graph)
            elif ctx is None or t._retains_grad:
                # Accumulate as a new tensor: ``t.grad`` may be held elsewhere (an optimiser, the
                # caller), and the sum must not change it behind their back.
                t.grad = _hand_out(g, t, handed_out, create_graph) if t.grad is None \
                    else t.grad + _cast(g, t)
                if _Capture.active is not None:
                    _Capture.active.set_grad(t)
            if ctx is None:
                continue
            if ctx.released:
                raise RuntimeError(
                    f"backward: the graph through {ctx.name} was already released by an earlier "
                    f"backward; pass retain_graph=True to the first backward to go through it twice")
            input_grads = ctx.backward(g)
            for inp, needs, ig in zip(ctx.inputs, ctx.needs_grad, input_grads):
                if not needs or ig is None:
                    continue
                if ig.data.shape != inp.data.shape:
                    ig = ig._sum_to(inp.data.shape)
                key = id(inp)
                grads[key] = grads[key] + ig if key in grads else ig
            if not retain_graph:
                ctx.release()
            del ctx, input_grads
    finally:
        _GradMode.enabled = prev
    if captured is not None:
        return [captured[id(t)] for t in capture]
    return None


def _memory(array):
    """The array that owns ``array``'s memory (numpy points every view at the owner)."""
    return array if array.base is None else array.base


def _as_gradient(g, t):
    """A gradient given by a user or a hook, as a tensor (an array or list in ``t``'s dtype)."""
    return g if isinstance(g, _tensor_class) else _tensor_class(g, dtype=t.dtype)


def _copy(array):
    return array.copy()


def _cast(g, t):
    return g if g.dtype == t.dtype else g.astype(t.dtype)


def _hand_out(g, t, handed_out: set, create_graph: bool):
    """The gradient as ``t`` gets it: in ``t``'s dtype (mixed-dtype arithmetic may have promoted
    it) and, unless it is part of a graph, in a writable array of its own. Ops pass gradients on
    unchanged (add), as read-only broadcast views (sum) or as views of one array (reshape), so
    without the copy an in-place update of one ``.grad`` could change another or fail."""
    g = _cast(g, t)
    if create_graph:
        return g
    memory = _memory(g.data)
    if id(memory) in handed_out or not g.data.flags.writeable:
        g = _wrap(kernel(_copy, g.data))
        memory = g.data
    handed_out.add(id(memory))
    return g


def backward(root, gradient=None, retain_graph: bool = False, create_graph: bool = False):
    """``root.backward()``: accumulate d(root)/d(leaf) into every leaf's ``.grad``."""
    gradient = _check_root(root, gradient)
    run_backward([root], [gradient], retain_graph or create_graph, create_graph)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph: bool = False,
         allow_unused: bool = False) -> list:
    """Gradients of ``outputs`` with respect to ``inputs``, returned as a list; ``.grad`` is untouched.

    With ``create_graph=True`` the returned gradients carry their own graph, so they can be
    differentiated again (second derivatives, Hessian-vector products, gradient penalties).
    """
    single_out = not isinstance(outputs, (list, tuple))
    outputs = [outputs] if single_out else list(outputs)
    inputs = [inputs] if not isinstance(inputs, (list, tuple)) else list(inputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif not isinstance(grad_outputs, (list, tuple)):
        grad_outputs = [grad_outputs]
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"grad: got {len(outputs)} outputs but {len(grad_outputs)} grad_outputs")
    for i, t in enumerate(inputs):
        if not getattr(t, "requires_grad", False):
            raise RuntimeError(f"grad: input {i} (shape {t.shape}) does not require grad")
    gradients = [_check_root(o, g, "grad", "grad_outputs") for o, g in zip(outputs, grad_outputs)]
    if retain_graph is None:
        retain_graph = create_graph
    result = run_backward(outputs, gradients, retain_graph, create_graph, capture=inputs)
    for i, (t, g) in enumerate(zip(inputs, result)):
        if g is None:
            if not allow_unused:
                raise RuntimeError(
                    f"grad: input {i} (shape {t.shape}) was not used to compute the outputs; "
                    f"pass allow_unused=True to get None for it")
        elif g.shape != t.shape:
            result[i] = g._sum_to(t.shape)
    return result


@replayed
def reset_grads(params, set_to_none: bool = True) -> None:
    """``zero_grad`` for modules and optimisers alike: every ``.grad`` to None (the default; the
    next backward writes it afresh), or to zeros, in place where the array allows it and as a
    fresh zero tensor where the gradient is part of a graph (``create_graph``) or read-only, so
    a gradient penalty built on it is not changed behind its back."""
    for p in params:
        g = p.grad
        if set_to_none or g is None:
            p.grad = None
        elif g.data.flags.writeable and g._ctx is None:
            g.data[...] = 0
        else:
            p.grad = constant(_np_zeros_like(g.data))
