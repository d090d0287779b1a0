"""Floor 6 (onnx.export): ``export(model_or_fn, example_inputs, path, ...)`` writes an ONNX model.

The forward is traced (``trace.py``), each recorded op is translated by its entry in
``translate.TRANSLATIONS``, parameters become initializers under their state-dict names, and the
result is checked with ``onnx.checker`` before it is written (atomically). ``onnx`` is imported
only here, when ``export`` runs, so the package imports without it.
"""
from __future__ import annotations

import os
import sys

import numpy as np

from .._atomic import atomic_write
from ..tensor import Tensor
from .trace import ExportError, trace_twice, describe
from .translate import DERIVED, TRANSLATIONS, GraphBuilder, OpView, onnx_dtype

__all__ = ["export", "DEFAULT_OPSET", "MIN_OPSET"]

DEFAULT_OPSET = 17
MIN_OPSET = 13


def _library_version() -> str:
    # Read, not imported: the package's __init__ sits above every floor. It is loaded by the time
    # anyone calls export.
    return str(getattr(sys.modules.get(__name__.split(".")[0]), "__version__", "unknown"))


def _import_onnx():
    try:
        import onnx
        import onnx.checker
        import onnx.helper
        import onnx.numpy_helper
    except ImportError as e:
        raise ImportError(f"ONNX export needs the onnx package, which is an optional extra: "
                          f"pip install 'tinygrad_mlp[onnx]' ({e})") from None
    return onnx


def _as_inputs(example_inputs) -> list:
    items = list(example_inputs) if isinstance(example_inputs, (tuple, list)) \
        else [example_inputs]
    if not items:
        raise ValueError("export: example_inputs is empty; pass a Tensor or a tuple of Tensors")
    out = []
    for k, x in enumerate(items):
        data = x.data if isinstance(x, Tensor) else x
        if not isinstance(data, np.ndarray):
            raise TypeError(f"export: example input {k} is a {type(x).__name__}; expected a "
                            f"Tensor or a numpy array")
        if data.dtype.kind != "f":
            raise TypeError(f"export: example input {k} has dtype {data.dtype}; only "
                            f"floating-point inputs can be traced")
        out.append(data)
    return out


def _dynamic_spec(dynamic_axes, dynamic_batch, input_names, inputs) -> tuple:
    """``{input index: {axis: symbol}}`` and ``{other name: set(axes)}`` (the outputs, checked
    once the forward has shown how many there are)."""
    if dynamic_axes is not None and dynamic_batch:
        raise ValueError("export: pass dynamic_axes= or dynamic_batch=True, not both")
    if dynamic_batch:
        dynamic_axes = {name: {0: "batch"} for name in input_names}
    dynamic_axes = dynamic_axes or {}
    if not isinstance(dynamic_axes, dict):
        raise TypeError(f"export: dynamic_axes must be a dict {{name: {{axis: symbol}}}}; got "
                        f"{type(dynamic_axes).__name__}")
    per_input, per_output = {}, {}
    for name, axes in dynamic_axes.items():
        if isinstance(axes, (list, tuple)):
            axes = {a: f"{name}_dim{a}" for a in axes}
        if not isinstance(axes, dict):
            raise TypeError(f"export: dynamic_axes[{name!r}] must be a dict {{axis: symbol}} or "
                            f"a list of axes; got {axes!r}")
        for axis in axes:
            if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
                raise TypeError(f"export: dynamic_axes[{name!r}]: axes must be integers; got "
                                f"{axis!r}")
        if name not in input_names:
            per_output[name] = {int(a) for a in axes}
            continue
        k = list(input_names).index(name)
        ndim = inputs[k].ndim
        resolved = {}
        for axis, symbol in axes.items():
            if not -ndim <= axis < ndim:
                raise ValueError(f"export: dynamic axis {axis} of input {name!r} is out of "
                                 f"range for its shape {inputs[k].shape}")
            resolved[int(axis) % ndim] = str(symbol)
        per_input[k] = resolved
    return per_input, per_output


def _second_inputs(inputs, per_input) -> tuple:
    """Other values, and on each dynamic axis another size, unique per symbol."""
    sizes = {}
    for k, axes in per_input.items():
        for axis, symbol in axes.items():
            n = inputs[k].shape[axis]
            if sizes.setdefault(symbol, n) != n:
                raise ValueError(f"export: dynamic axis {symbol!r} has sizes {sizes[symbol]} and "
                                 f"{n} in the example inputs")
    symbols = {s: (n, n + 1 + i) for i, (s, n) in enumerate(sizes.items())}
    rng = np.random.default_rng(20240229)  # its own generator: the library's stays untouched
    seconds = []
    for k, x in enumerate(inputs):
        shape = list(x.shape)
        for axis, symbol in per_input.get(k, {}).items():
            shape[axis] = symbols[symbol][1]
        # Uniform over the example's range keeps a domain the model may assume (pixels in
        # [0, 1] for a log, say); an example of one value gets normal noise around it.
        finite = x[np.isfinite(x)]
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
        values = rng.uniform(low, high, shape) if high > low else \
            low + rng.standard_normal(shape)
        seconds.append(values.astype(x.dtype))
    return seconds, symbols


def _dims(shape1, shape2, symbols, what: str) -> list:
    dims = []
    for a, b in zip(shape1, shape2):
        if a == b:
            dims.append(int(a))
            continue
        match = [s for s, sizes in symbols.items() if sizes == (a, b)]
        if not match:
            raise ExportError(f"export: {what} has shape {tuple(shape1)} for the example and "
                              f"{tuple(shape2)} for an input with other sizes on the dynamic "
                              f"axes; a dimension changes in a way that does not follow a "
                              f"dynamic axis")
        dims.append(match[0])
    return dims


def _is_module(obj) -> bool:
    return not isinstance(obj, type) and hasattr(obj, "named_parameters") and \
        hasattr(obj, "named_modules") and hasattr(obj, "eval")


def _modules_of(model_or_fn) -> list:
    """``[(name prefix, Module)]``: the Module itself, or the Modules a function uses (bound
    method, closure variables, globals it names), so that a function exports in eval mode with
    state-dict names too (prefixed by the variable name when it uses several)."""
    if _is_module(model_or_fn):
        return [("", model_or_fn)]
    if _is_module(getattr(model_or_fn, "__self__", None)):
        return [("", model_or_fn.__self__)]
    code = getattr(model_or_fn, "__code__", None)
    if code is None:
        return []
    found = {}
    for name, cell in zip(code.co_freevars, getattr(model_or_fn, "__closure__", None) or ()):
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if _is_module(value):
            found.setdefault(id(value), (name, value))
    globals_ = getattr(model_or_fn, "__globals__", {})
    for name in code.co_names:
        value = globals_.get(name)
        if _is_module(value):
            found.setdefault(id(value), (name, value))
    if len(found) == 1:
        return [("", m) for _, m in found.values()]
    return list(found.values())


def _fused_activation(g, trace, node, names):
    """``x * (x > 0)`` (ReLU as the library composes it) as one ``Relu`` node, and
    ``x * where(x > 0, 1, slope)`` as one ``LeakyRelu``: the same values, one pass."""
    if node.op != "Mul" or len(node.inputs) != 2:
        return None
    for x, mask in (node.inputs, node.inputs[::-1]):
        derived = trace.nodes[mask].derived
        if derived is None or derived[2] != x or x not in names:
            continue
        if trace.nodes[x].tensor.dtype != node.tensor.dtype or \
                trace.nodes[x].tensor.shape != node.tensor.shape:
            continue
        if derived[0] == "greater0":
            return g.node("Relu", [names[x]])
        if derived[0] == "positive_mask":
            return g.node("LeakyRelu", [names[x]], alpha=float(derived[1]["slope"]))
    return None


def _names(given, count: int, default: str, what: str) -> list:
    if given is None:
        return [default] if count == 1 else [f"{default}_{k}" for k in range(count)]
    given = [given] if isinstance(given, str) else list(given)
    if len(given) != count or len(set(given)) != count or \
            not all(isinstance(n, str) and n for n in given):
        raise ValueError(f"export: {what} must be {count} distinct non-empty strings; got {given}")
    return given


def export(model_or_fn, example_inputs, path=None, *, input_names=None, output_names=None,
           dynamic_axes=None, dynamic_batch: bool = False, opset: int = DEFAULT_OPSET):
    """Export a Module (in eval mode) or a function of Tensors to ONNX; returns the ``ModelProto``
    and writes it to ``path`` (atomically) unless ``path`` is None.

    ``example_inputs``: a Tensor or array, or a tuple of them (floating point). The forward is run
    twice with recording on (on the example, and on a second input with other values and, on the
    dynamic axes, other sizes); both graphs must agree. ``dynamic_batch=True`` makes axis 0 of
    every input and output the dynamic axis ``"batch"``; ``dynamic_axes`` names them as PyTorch
    does: ``{"input": {0: "batch"}, "logits": {0: "batch"}}``. Parameters become initializers
    named by their state-dict names; constants are folded. Raises ``ExportError`` naming the op
    and the module it came from when something has no faithful translation.
    """
    onnx = _import_onnx()
    if not callable(model_or_fn):
        raise TypeError(f"export: expected a Module or a function; got "
                        f"{type(model_or_fn).__name__}")
    if not isinstance(opset, (int, np.integer)) or \
            not MIN_OPSET <= opset <= onnx.defs.onnx_opset_version():
        raise ValueError(f"export: opset must be an integer from {MIN_OPSET} to "
                         f"{onnx.defs.onnx_opset_version()} (what this onnx knows); got {opset!r}")
    if path is not None:
        path = os.fspath(path)
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise FileNotFoundError(f"export: {path}: the directory {directory} does not exist")
    arrays = _as_inputs(example_inputs)
    input_names = _names(input_names, len(arrays), "input", "input_names")

    param_names, module_names, modes = {}, {}, []
    for prefix, module in _modules_of(model_or_fn):
        for name, p in list(module.named_parameters(prefix)) + \
                list(module.named_buffers(prefix)):
            if p is not None:
                param_names.setdefault(id(p), name)
        for name, m in module.named_modules(prefix):
            module_names.setdefault(id(m), name)
            modes.append((m, m.training))
        module.eval()
    try:
        leaves1 = [Tensor(a.copy(), requires_grad=True) for a in arrays]
        per_input, per_output = _dynamic_spec(dynamic_axes, dynamic_batch, input_names, arrays)
        seconds, symbols = _second_inputs(arrays, per_input)
        leaves2 = [Tensor(a, requires_grad=True) for a in seconds]
        t1, t2, single = trace_twice(model_or_fn, leaves1, leaves2, param_names, module_names)
    finally:
        for m, mode in modes:
            m.training = mode
    output_names = _names(output_names, len(t1.outputs), "output", "output_names")
    if dynamic_batch:
        per_output = {name: {0} for name in output_names}
    unknown = sorted(set(per_output) - set(output_names))
    if unknown:
        raise ValueError(f"export: dynamic_axes names {unknown}, which are neither inputs "
                         f"({input_names}) nor outputs ({output_names})")
    if set(input_names) & set(output_names):
        raise ValueError(f"export: input and output names overlap: "
                         f"{sorted(set(input_names) & set(output_names))}")

    symbol_sources = {}
    for k, axes in per_input.items():
        for axis, symbol in axes.items():
            symbol_sources.setdefault(symbol, (input_names[k], axis))
    g = GraphBuilder(onnx, int(opset), symbol_sources)
    g.used_names.update(input_names)
    g.used_names.update(output_names)
    names = {}

    def emit_derived(i):
        node = t1.nodes[i]
        kind, params, source = node.derived
        src = t1.nodes[source].tensor
        names[i] = DERIVED[kind](g, names[source], src.dtype, node.tensor.dtype, params)

    unnamed_params = 0
    for i, (n1, n2) in enumerate(zip(t1.nodes, t2.nodes)):
        if n1.kind == "input":
            names[i] = input_names[n1.name]
        elif n1.kind == "param":
            if n1.name is None:
                n1.name = f"param_{unnamed_params}"
                unnamed_params += 1
            names[i] = g.initializer(n1.tensor.data, n1.name)
        elif n1.kind == "const":
            if n1.derived is None:
                names[i] = g.initializer(n1.tensor.data)
        else:
            where = describe(n1, module_names)
            scope = getattr(n1.fn, "scope", ())
            g.scope = module_names.get(id(scope[-1]), "") if scope else ""
            fused = _fused_activation(g, t1, n1, names)
            if fused is not None:
                names[i] = fused
                g.scope = ""
                continue
            for j in n1.inputs:
                if j not in names:
                    emit_derived(j)
            translate = TRANSLATIONS.get(n1.op)
            if translate is None:
                raise ExportError(f"export: no ONNX translation for the op {n1.op} ({where}); "
                                  f"add one to tinygrad_mlp.onnx.TRANSLATIONS")
            dims = _dims(n1.tensor.shape, n2.tensor.shape, symbols, f"{n1.op} at {where}")
            view = OpView(n1.fn, [t1.nodes[j].tensor for j in n1.inputs], n1.tensor, dims, where)
            names[i] = translate(g, view, [names[j] for j in n1.inputs])
            g.scope = ""
    for i in t1.outputs:
        if i not in names:
            emit_derived(i)

    helper = onnx.helper
    graph_inputs = []
    for k, node in enumerate(t1.input_nodes):
        dims = list(node.tensor.shape)
        for axis, symbol in per_input.get(k, {}).items():
            dims[axis] = symbol
        graph_inputs.append(helper.make_tensor_value_info(
            input_names[k], onnx_dtype(helper, node.tensor.dtype), dims))
    graph_outputs = []
    for name, i in zip(output_names, t1.outputs):
        dims = _dims(t1.nodes[i].tensor.shape, t2.nodes[i].tensor.shape, symbols,
                     f"output {name!r}")
        for axis in per_output.get(name, ()):
            if not -len(dims) <= axis < len(dims) or isinstance(dims[axis], int):
                raise ExportError(f"export: output {name!r} (shape {t1.nodes[i].tensor.shape}) "
                                  f"was declared dynamic on axis {axis}, but that axis does not "
                                  f"follow any dynamic input axis")
        g.nodes.append(helper.make_node("Identity", [names[i]], [name], name=f"output_{name}"))
        graph_outputs.append(helper.make_tensor_value_info(
            name, onnx_dtype(helper, t1.nodes[i].tensor.dtype), dims))

    graph = helper.make_graph(g.nodes, "tinygrad_mlp", graph_inputs, graph_outputs,
                              initializer=g.initializers)
    opsets = [helper.make_opsetid("", int(opset))]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="tinygrad_mlp",
                              producer_version=_library_version())
    model.ir_version = helper.find_min_ir_version_for(opsets)
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as e:  # a translation bug, never the user's
        raise ExportError(f"export: the generated ONNX model fails onnx.checker: "
                          f"{str(e).splitlines()[0]}") from None
    if path is not None:
        with atomic_write(path, "wb") as f:
            f.write(model.SerializeToString())
    return model
