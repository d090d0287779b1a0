"""Floor 6 (onnx.trace): record a forward twice and tell what is computed from the inputs.

Reads what the floors below leave behind: ``Tensor._ctx`` (the op that made a tensor),
``Function.inputs`` and ``Function.scope``. Numpy only; nothing here knows ONNX.

A recorded graph holds ops, inputs, parameters and *constants*: tensors made outside the graph.
Most constants are true constants (``x * 0.5``, BatchNorm's running statistics in eval mode), but
a few are values computed from the data without a recorded op: ReLU's mask ``x > 0``, sigmoid's
``x >= 0``, the detached maximum subtracted by softmax. Folding those into the file would freeze
them at the example's values: a silently wrong model. So the forward runs twice, on the example
and on a second input with other values (and other sizes on the dynamic axes), and

* the two graphs must have the same structure (otherwise the forward branches on the data);
* a constant that is the same in both is folded;
* a constant that differs must be one of the recognised derivations of an earlier value (the
  table ``DERIVATIONS``), which the exporter then computes in the graph; anything else is refused;
* a shape that differs must follow one of the dynamic axes.
"""
from __future__ import annotations

import warnings

import numpy as np

from ..autograd import enable_grad, trace_modules

__all__ = ["ExportError", "Node", "Trace", "trace_twice", "DERIVATIONS"]

# Slots the engine gives every op: not part of what an op computes.
_ENGINE_SLOTS = {"inputs", "needs_grad", "released", "scope"}


class ExportError(RuntimeError):
    """A model or function cannot be exported faithfully; the message says which op and why."""


class Node:
    """One value of a traced graph: an input, a parameter, a constant, or the result of an op."""

    __slots__ = ("kind", "tensor", "fn", "inputs", "name", "index", "derived")

    def __init__(self, kind, tensor, fn=None, inputs=(), name=None):
        self.kind, self.tensor, self.fn, self.inputs, self.name = kind, tensor, fn, inputs, name
        self.index = -1
        self.derived = None  # for an input-dependent constant: (derivation name, params, source)

    @property
    def op(self) -> str:
        return type(self.fn).__name__ if self.fn is not None else self.kind


class Trace:
    """The nodes of one forward in topological order, and which of them are the outputs."""

    def __init__(self, nodes, outputs, input_nodes):
        self.nodes, self.outputs, self.input_nodes = nodes, outputs, input_nodes


def _record(forward, inputs, param_names) -> Trace:
    """Run ``forward`` on ``inputs`` (leaf Tensors that require grad) and collect its graph."""
    with enable_grad(), trace_modules():
        out = forward(*inputs)
    single = not isinstance(out, (tuple, list))
    outs = [out] if single else list(out)
    for k, o in enumerate(outs):
        if not hasattr(o, "_ctx") or not hasattr(o, "data"):
            raise ExportError(f"export: the forward returned a {type(o).__name__} as output {k}; "
                              f"expected a Tensor or a tuple of Tensors")
    input_ids = {id(t): k for k, t in enumerate(inputs)}
    nodes, index_of = [], {}
    input_nodes = [None] * len(inputs)
    # Iterative post-order walk (no recursion: a long graph must export too).
    stack = [(t, False) for t in reversed(outs)]
    while stack:
        t, ready = stack.pop()
        if id(t) in index_of:
            continue
        ctx = t._ctx
        if ctx is not None and not ready:
            stack.append((t, True))
            stack.extend((i, False) for i in reversed(ctx.inputs) if id(i) not in index_of)
            continue
        if ctx is not None:
            node = Node("op", t, ctx, [index_of[id(i)] for i in ctx.inputs])
        elif id(t) in input_ids:
            node = Node("input", t, name=input_ids[id(t)])
            input_nodes[input_ids[id(t)]] = node
        elif id(t) in param_names or t.requires_grad:
            node = Node("param", t, name=param_names.get(id(t)))
        else:
            node = Node("const", t)
        node.index = len(nodes)
        index_of[id(t)] = node.index
        nodes.append(node)
    for k, node in enumerate(input_nodes):
        if node is None:  # unused input: still part of the exported signature
            node = Node("input", inputs[k], name=k)
            node.index = len(nodes)
            nodes.append(node)
            input_nodes[k] = node
    return Trace(nodes, [index_of[id(o)] for o in outs], input_nodes), single


def _freeze(value):
    """A comparable form of an op's attribute (index tuples may hold arrays and slices)."""
    if isinstance(value, np.ndarray):
        return ("ndarray", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, slice):
        return ("slice", value.start, value.stop, value.step)
    if isinstance(value, (tuple, list)):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, np.dtype):
        return ("dtype", value.str)
    return value


def attributes(fn) -> dict:
    """An op's own attributes (axis, keepdims, index, ...), without the engine's slots and without
    float arrays the forward keeps for backward (``Exp.out``, ``Max.share``) or slots an op
    declares ``backward_only`` (``Relu.mask``)."""
    out = {}
    skip = set(getattr(type(fn), "backward_only", ()))
    for cls in type(fn).__mro__:
        for slot in getattr(cls, "__slots__", ()):
            if slot in _ENGINE_SLOTS or slot in skip or not hasattr(fn, slot):
                continue
            value = getattr(fn, slot)
            if isinstance(value, np.ndarray) and value.dtype.kind in "fc":
                continue
            out[slot] = value
    return out


def describe(node, module_names: dict) -> str:
    """Where an op came from: its position and the modules whose forward recorded it."""
    scope = getattr(node.fn, "scope", ()) if node.fn is not None else ()
    where = f"op {node.index} of the traced forward"
    if scope:
        inner = scope[-1]
        name = module_names.get(id(inner))
        label = f"'{name}' " if name else ""
        where += f", inside module {label}({type(inner).__name__})"
    return where


# ---------------------------------------------------------------- derivations

def _same(a, b) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and \
        np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")


def _greater0(pairs):
    return {} if all(c.dtype == np.bool_ and _same(c, s > 0) for c, s in pairs) else None


def _greater_equal0(pairs):
    return {} if all(c.dtype == np.bool_ and _same(c, s >= 0) for c, s in pairs) else None


def _identity(pairs):  # a detached copy: same values, no gradient
    return {} if all(_same(c, s) for c, s in pairs) else None


def _sign(pairs):
    return {} if all(c.dtype.kind == "f" and _same(c, np.sign(s)) for c, s in pairs) else None


def _positive_mask(pairs):
    """``where(s > 0, 1, slope)`` (leaky ReLU's derivative mask): the slope read off the data."""
    slopes = set()
    for c, s in pairs:
        if c.dtype.kind != "f" or c.shape != s.shape or not np.all(c[s > 0] == 1):
            return None
        slopes.update(np.unique(c[~(s > 0)]).tolist())
    if len(slopes) != 1:
        return None
    return {"slope": slopes.pop()}


def _max_keepdims(pairs):
    """``s.max(axis, keepdims=True)`` taken on the arrays (the softmax family's shift)."""
    axes = None
    for c, s in pairs:
        if c.ndim != s.ndim or c.dtype != s.dtype or s.size == 0:
            return None
        here = {i for i, (m, n) in enumerate(zip(c.shape, s.shape)) if m == 1}
        if any(m not in (1, n) for m, n in zip(c.shape, s.shape)):
            return None
        axes = here if axes is None else axes & here
    if not axes:
        return None
    axes = tuple(sorted(axes))
    for c, s in pairs:
        if not _same(c, s.max(axis=axes, keepdims=True)):
            return None
    return {"axes": axes}


# Each derivation: name -> (test on [(constant, source)] from both traces, giving its parameters or
# None). The exporter's translate.DERIVED computes each one in the graph. Tried in this order.
DERIVATIONS = {
    "identity": _identity,
    "greater0": _greater0,
    "greater_equal0": _greater_equal0,
    "sign": _sign,
    "positive_mask": _positive_mask,
    "max_keepdims": _max_keepdims,
}


_MASKS = ("greater0", "greater_equal0")  # bool masks only: a float constant of ones is common


def _derive(t1, t2, n1, n2, consumer, kinds, same_shape=False):
    """The first ``(derivation, params, source index)`` that reproduces constant ``n1``/``n2``
    from a value the consumer depends on (nearest first), in both traces; None if none does."""
    for j in _ancestors_by_distance(t1, consumer):
        s1, s2 = t1.nodes[j].tensor.data, t2.nodes[j].tensor.data
        if same_shape and s1.shape != n1.tensor.shape:
            continue
        pairs = [(n1.tensor.data, s1), (n2.tensor.data, s2)]
        for name in kinds:
            params = DERIVATIONS[name](pairs)
            if params is not None:
                return name, params, j
    return None


def _ancestors_by_distance(trace: Trace, consumer: int) -> list:
    """Indices of non-constant nodes the consumer depends on, nearest first (breadth first)."""
    seen, order, frontier = {consumer}, [], [consumer]
    nodes = trace.nodes
    while frontier:
        nxt = []
        for i in frontier:
            for j in nodes[i].inputs:
                if j not in seen:
                    seen.add(j)
                    if nodes[j].kind != "const":
                        order.append(j)
                    nxt.append(j)
        frontier = nxt
    return order


def trace_twice(forward, inputs1, inputs2, param_names, module_names):
    """Trace ``forward`` on two inputs; check the graphs agree and mark every constant that is
    computed from the inputs with the derivation that reproduces it. Returns both traces."""
    t1, single = _record(forward, inputs1, param_names)
    # The second input is ours, not the user's: its overflows and NaNs are not worth a warning.
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        t2, _ = _record(forward, inputs2, param_names)
    if len(t1.nodes) != len(t2.nodes) or t1.outputs != t2.outputs:
        raise ExportError(
            f"export: the forward recorded a different graph for a second input of other values "
            f"({len(t1.nodes)} vs {len(t2.nodes)} values): it branches on the data (Python "
            f"control flow on tensor values), which one ONNX graph cannot express")
    consumers = {}
    for n1, n2 in zip(t1.nodes, t2.nodes):
        where = describe(n1, module_names)
        if (n1.kind, n1.op, n1.inputs, n1.name) != (n2.kind, n2.op, n2.inputs, n2.name):
            raise ExportError(f"export: the graph differs between two inputs at {where} "
                              f"({n1.op} vs {n2.op}): the forward branches on the data")
        if n1.kind == "op":
            a1, a2 = attributes(n1.fn), attributes(n2.fn)
            if {k: _freeze(v) for k, v in a1.items()} != {k: _freeze(v) for k, v in a2.items()}:
                diff = sorted(k for k in a1 if _freeze(a1[k]) != _freeze(a2.get(k)))
                raise ExportError(f"export: {n1.op} at {where} has attribute(s) {diff} that "
                                  f"depend on the input's values; they cannot be stored as "
                                  f"constants")
            for j in n1.inputs:
                consumers.setdefault(j, n1.index)
        if n1.kind == "param" and n1.tensor is not n2.tensor:
            raise ExportError(f"export: parameter {n1.name or n1.index} is a different tensor in "
                              f"a second trace (was it created inside forward?)")
    for n1, n2 in zip(t1.nodes, t2.nodes):
        if n1.kind != "const":
            continue
        consumer = consumers.get(n1.index)
        if _same(n1.tensor.data, n2.tensor.data):
            # Unchanged, but a mask of an earlier value's shape that is one of its masks in both
            # traces (ReLU's x > 0 on values that happened to be positive both times) is still
            # computed, not frozen: a true constant mask almost never coincides like that.
            if consumer is not None and n1.tensor.ndim >= 1:
                n1.derived = _derive(t1, t2, n1, n2, consumer, _MASKS, same_shape=True)
            continue
        user = t1.nodes[consumer] if consumer is not None else n1
        found = _derive(t1, t2, n1, n2, consumer, DERIVATIONS) if consumer is not None else None
        if found is None:
            scope = getattr(user.fn, "scope", ()) if user.fn is not None else ()
            hint = ""
            if any(getattr(m, "training", False) for m in scope):
                hint = ("; a module there is in training mode: call .eval() on it first (export "
                        "does so itself only when given the Module)")
            raise ExportError(
                f"export: a constant of shape {n1.tensor.shape} used by {user.op} at "
                f"{describe(user, module_names)} changes with the input, but is computed outside "
                f"the recorded graph (numpy on .data, a comparison, argmax, ...) in a way the "
                f"exporter does not recognise (known: {', '.join(DERIVATIONS)}); folding it "
                f"would freeze it at the example's values{hint}")
        n1.derived = found
    return t1, t2, single
