"""Floor 6 (onnx.translate): one ONNX translation per primitive op, and the graph builder they use.

``TRANSLATIONS`` maps an op's class name (``ops.Add`` -> ``"Add"``) to a function
``translate(g, op, ins) -> output name``: ``g`` is the ``GraphBuilder``, ``op`` the ``OpView`` of
the recorded op (its Function, input and output Tensors, output dims with dynamic axes resolved) and
``ins`` the ONNX names of its inputs. Adding a primitive to the exporter is one entry here.

``DERIVED`` does the same for the values computed outside the graph that ``trace.DERIVATIONS``
recognises (ReLU's mask, softmax's shift, ...).
"""
from __future__ import annotations

import numpy as np

__all__ = ["TRANSLATIONS", "DERIVED", "GraphBuilder", "OpView"]


class OpView:
    """What a translation sees of one recorded op."""

    __slots__ = ("fn", "inputs", "out", "out_dims", "where")

    def __init__(self, fn, inputs, out, out_dims, where):
        self.fn, self.inputs, self.out, self.out_dims, self.where = fn, inputs, out, out_dims, where

    @property
    def name(self) -> str:
        return type(self.fn).__name__


class GraphBuilder:
    """Collects ONNX nodes and initializers; names every value uniquely."""

    def __init__(self, onnx_module, opset: int, symbol_sources: dict):
        self.onnx, self.helper = onnx_module, onnx_module.helper
        self.opset = opset
        self.nodes, self.initializers = [], []
        self.used_names = set()
        self.symbol_sources = symbol_sources  # symbol -> (input name, axis)
        self._symbol_dims = {}
        self._counter = 0
        self.scope = ""

    def fresh(self, hint: str) -> str:
        base = f"{self.scope}/{hint}" if self.scope else hint
        name, k = base, 0
        while name in self.used_names:
            k += 1
            name = f"{base}_{k}"
        self.used_names.add(name)
        return name

    def node(self, op_type: str, inputs, **attrs) -> str:
        out = self.fresh(op_type)
        self._counter += 1
        self.nodes.append(self.helper.make_node(op_type, list(inputs), [out],
                                                name=f"{op_type}_{self._counter}", **attrs))
        return out

    def initializer(self, array, name=None) -> str:
        array = np.asarray(array)
        if name is None or name in self.used_names:
            name = self.fresh(name or "const")
        else:
            self.used_names.add(name)
        self.initializers.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(array),
                                                                   name))
        return name

    def scalar(self, value, dtype) -> str:
        return self.initializer(np.asarray(value, dtype=dtype))

    def ints(self, values) -> str:
        return self.initializer(np.asarray(values, dtype=np.int64))

    def cast(self, name: str, from_dtype, to_dtype) -> str:
        if np.dtype(from_dtype) == np.dtype(to_dtype):
            return name
        return self.node("Cast", [name], to=onnx_dtype(self.helper, to_dtype))

    def shape(self, dims) -> str:
        """A 1-D int64 tensor holding ``dims``: ints are static, strings are dynamic axes (read
        from the graph input they belong to at run time)."""
        if all(isinstance(d, int) for d in dims):
            return self.ints(dims)
        parts, static = [], []
        for d in dims:
            if isinstance(d, int):
                static.append(d)
                continue
            if static:
                parts.append(self.ints(static))
                static = []
            parts.append(self._symbol_dim(d))
        if static:
            parts.append(self.ints(static))
        return self.node("Concat", parts, axis=0)

    def _symbol_dim(self, symbol: str) -> str:
        if symbol not in self._symbol_dims:
            source, axis = self.symbol_sources[symbol]
            shape = self.node("Shape", [source])
            self._symbol_dims[symbol] = self.node("Gather", [shape, self.ints([axis])], axis=0)
        return self._symbol_dims[symbol]

    def axes_input_or_attr(self, op_type: str, inputs, axes, since: int, **attrs) -> str:
        """Reductions took ``axes`` as an attribute until opset ``since``, then as an input."""
        if axes is None:
            return self.node(op_type, inputs, **attrs)
        if self.opset >= since:
            return self.node(op_type, list(inputs) + [self.ints(axes)], **attrs)
        return self.node(op_type, inputs, axes=list(axes), **attrs)


def onnx_dtype(helper, dtype) -> int:
    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


# ---------------------------------------------------------------- translations

def _unary(onnx_type):
    def translate(g, op, ins):
        return g.node(onnx_type, [g.cast(ins[0], op.inputs[0].dtype, op.out.dtype)])
    return translate


def _elementwise(onnx_type):
    """Binary (or variadic) ops: numpy promoted mixed dtypes, ONNX wants them equal."""
    def translate(g, op, ins):
        return g.node(onnx_type, [g.cast(n, t.dtype, op.out.dtype)
                                  for n, t in zip(ins, op.inputs)])
    return translate


def _expm1(g, op, ins):
    return g.node("Sub", [g.node("Exp", ins), g.scalar(1, op.out.dtype)])


def _log1p(g, op, ins):
    return g.node("Log", [g.node("Add", [ins[0], g.scalar(1, op.out.dtype)])])


def _clamp(g, op, ins):
    # Clamp(low=, high=), either bound may be None: Clip with its optional min/max inputs.
    dtype = op.out.dtype
    bounds = [g.scalar(b, dtype) if b is not None else "" for b in (op.fn.low, op.fn.high)]
    return g.node("Clip", [g.cast(ins[0], op.inputs[0].dtype, dtype)] + bounds)


def _where(g, op, ins):
    cond, a, b = ins
    cond = g.cast(cond, op.inputs[0].dtype, np.bool_)
    return g.node("Where", [cond, g.cast(a, op.inputs[1].dtype, op.out.dtype),
                            g.cast(b, op.inputs[2].dtype, op.out.dtype)])


def _reduce_axes(op):
    axis = op.fn.axis
    if axis is None:
        return list(range(op.inputs[0].ndim))
    return [axis] if isinstance(axis, (int, np.integer)) else [int(a) for a in axis]


def _reduction(onnx_type, axes_input_since):
    def translate(g, op, ins):
        axes = _reduce_axes(op)
        if not axes:  # a reduction over no axis is the identity (numpy's sum(axis=()))
            return g.node("Identity", ins)
        return g.axes_input_or_attr(onnx_type, ins, axes, axes_input_since,
                                    keepdims=int(bool(op.fn.keepdims)))
    return translate


def _reshape(g, op, ins):
    return g.node("Reshape", [ins[0], g.shape(op.out_dims)])


def _transpose(g, op, ins):
    return g.node("Transpose", ins, perm=[int(a) for a in op.fn.axes])


def _broadcast_to(g, op, ins):
    return g.node("Expand", [ins[0], g.shape(op.out_dims)])


def _matmul(g, op, ins):
    a, b = (g.cast(n, t.dtype, op.out.dtype) for n, t in zip(ins, op.inputs))
    if getattr(op.fn, "ta", False):
        a = g.node("Transpose", [a], perm=[1, 0])
    if getattr(op.fn, "tb", False):
        b = g.node("Transpose", [b], perm=[1, 0])
    return g.node("MatMul", [a, b])


def _cast(g, op, ins):
    return g.cast(ins[0], op.inputs[0].dtype, op.out.dtype)


def _concatenate(g, op, ins):
    return g.node("Concat", [g.cast(n, t.dtype, op.out.dtype) for n, t in zip(ins, op.inputs)],
                  axis=int(op.fn.axis))


_INT64_MAX, _INT64_MIN = np.iinfo(np.int64).max, np.iinfo(np.int64).min


def _getitem(g, op, ins):
    index = op.fn.index
    items = list(index) if isinstance(index, tuple) else [index]
    ndim = op.inputs[0].ndim
    arrays = [i for i in items if isinstance(i, np.ndarray)]
    if arrays:
        # One integer array on one axis, full slices elsewhere: a Gather.
        rest = [i for i in items if not isinstance(i, np.ndarray)]
        if len(arrays) == 1 and arrays[0].dtype.kind in "iu" and \
                all(isinstance(i, slice) and i == slice(None) for i in rest) and \
                all(i is not Ellipsis for i in items):
            axis = next(k for k, i in enumerate(items) if isinstance(i, np.ndarray))
            return g.node("Gather", [ins[0], g.ints(arrays[0])], axis=axis)
        raise _unsupported(op, f"the index {index!r} (only one integer array on one axis, with "
                               f"full slices elsewhere, becomes a Gather)")
    if any(i is Ellipsis for i in items):
        k = items.index(Ellipsis)
        fill = ndim - sum(1 for i in items if i is not None and i is not Ellipsis)
        items = items[:k] + [slice(None)] * fill + items[k + 1:]
    starts, ends, axes, steps = [], [], [], []
    axis = 0
    for item in items:
        if item is None:
            continue
        if isinstance(item, (int, np.integer)):
            i = int(item)
            starts.append(i), ends.append(i + 1 if i != -1 else _INT64_MAX)
            axes.append(axis), steps.append(1)
        elif isinstance(item, slice):
            if item != slice(None):
                step = 1 if item.step is None else int(item.step)
                starts.append(int(item.start) if item.start is not None else
                              (0 if step > 0 else _INT64_MAX))
                ends.append(int(item.stop) if item.stop is not None else
                            (_INT64_MAX if step > 0 else _INT64_MIN))
                axes.append(axis), steps.append(step)
        else:
            raise _unsupported(op, f"the index item {item!r}")
        axis += 1
    x = ins[0]
    if axes:
        x = g.node("Slice", [x, g.ints(starts), g.ints(ends), g.ints(axes), g.ints(steps)])
    # Integer items drop their axis and None adds one: a reshape to the recorded result's shape.
    return g.node("Reshape", [x, g.shape(op.out_dims)])


def _unsupported(op, what: str):
    from .trace import ExportError
    return ExportError(f"export: {op.name} at {op.where}: {what} has no ONNX translation")


TRANSLATIONS = {
    "Add": _elementwise("Add"),
    "Sub": _elementwise("Sub"),
    "Mul": _elementwise("Mul"),
    "Div": _elementwise("Div"),
    "Pow": _elementwise("Pow"),
    "Maximum": _elementwise("Max"),
    "Minimum": _elementwise("Min"),
    "Neg": _unary("Neg"),
    "Exp": _unary("Exp"),
    "Log": _unary("Log"),
    "Sqrt": _unary("Sqrt"),
    "Abs": _unary("Abs"),
    "Sin": _unary("Sin"),
    "Cos": _unary("Cos"),
    "Tanh": _unary("Tanh"),
    "Relu": _unary("Relu"),
    "Sigmoid": _unary("Sigmoid"),
    "Erf": _unary("Erf"),
    "Expm1": _expm1,
    "Log1p": _log1p,
    "Clamp": _clamp,
    "Where": _where,
    "Sum": _reduction("ReduceSum", 13),
    "Max": _reduction("ReduceMax", 18),
    "Reshape": _reshape,
    "Transpose": _transpose,
    "BroadcastTo": _broadcast_to,
    "GetItem": _getitem,
    "MatMul": _matmul,
    "Cast": _cast,
    "Concatenate": _concatenate,
}


# ---------------------------------------------------------------- values computed outside the graph

def _derived_greater0(g, src, src_dtype, out_dtype, params):
    return g.node("Greater", [src, g.scalar(0, src_dtype)])


def _derived_greater_equal0(g, src, src_dtype, out_dtype, params):
    if g.opset >= 12:
        return g.node("GreaterOrEqual", [src, g.scalar(0, src_dtype)])
    return g.node("Not", [g.node("Less", [src, g.scalar(0, src_dtype)])])


def _derived_identity(g, src, src_dtype, out_dtype, params):
    return g.node("Identity", [src])


def _derived_sign(g, src, src_dtype, out_dtype, params):
    return g.cast(g.node("Sign", [src]), src_dtype, out_dtype)


def _derived_positive_mask(g, src, src_dtype, out_dtype, params):
    positive = g.node("Greater", [src, g.scalar(0, src_dtype)])
    return g.node("Where", [positive, g.scalar(1, out_dtype), g.scalar(params["slope"], out_dtype)])


def _derived_max_keepdims(g, src, src_dtype, out_dtype, params):
    return g.axes_input_or_attr("ReduceMax", [src], list(params["axes"]), 18, keepdims=1)


DERIVED = {
    "identity": _derived_identity,
    "greater0": _derived_greater0,
    "greater_equal0": _derived_greater_equal0,
    "sign": _derived_sign,
    "positive_mask": _derived_positive_mask,
    "max_keepdims": _derived_max_keepdims,
}
