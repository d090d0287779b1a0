"""Floor 6 (viz): read a recorded graph for drawing: its tensors, their names and gradients.

Reads what the floors below leave behind (``Tensor._ctx``, ``Function.inputs``) and imports nothing
above them. Every traversal is a loop over a list, never recursion, so any depth can be read.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .. import autograd
from ..tensor import Tensor


def as_roots(root) -> list:
    roots = list(root) if isinstance(root, (list, tuple)) else [root]
    if not roots:
        raise ValueError("draw_graph: root is an empty list; pass a Tensor or a list of Tensors")
    for r in roots:
        if not isinstance(r, Tensor):
            raise TypeError(f"draw_graph: root must be a Tensor or a list of Tensors; got "
                            f"{type(r).__name__}")
    return roots


def collapse_depth(collapse_modules) -> int:
    if collapse_modules is True:
        return 1
    if collapse_modules is False or collapse_modules is None:
        return 0
    if isinstance(collapse_modules, int) and collapse_modules >= 1:
        return collapse_modules
    raise ValueError(f"draw_graph: collapse_modules must be True/False or a depth >= 1; got "
                     f"{collapse_modules!r}")


def collect(roots):
    """Every tensor reachable from ``roots`` in breadth-first order (roots first, so a cut by
    ``max_nodes`` keeps what is nearest the output), and for each the indices of its op's inputs.

    Unlike ``autograd.topological_order`` this also follows inputs that need no gradient: the
    data and constants are part of the picture.
    """
    index, tensors, args = {}, [], []
    for r in roots:
        if id(r) not in index:
            index[id(r)] = len(tensors)
            tensors.append(r)
    pos = 0
    while pos < len(tensors):
        ctx = tensors[pos]._ctx
        pos += 1
        ids = []
        if ctx is not None:
            if getattr(ctx, "released", False):
                raise RuntimeError(
                    f"draw_graph: the graph through {ctx.name} was released by backward(), so "
                    f"there is nothing left to draw; draw before calling backward(), or call "
                    f"backward(retain_graph=True)")
            for inp in ctx.inputs:
                k = index.get(id(inp))
                if k is None:
                    k = index[id(inp)] = len(tensors)
                    tensors.append(inp)
                ids.append(k)
        args.append(ids)
    return tensors, args


def names_of(params):
    """(root module or None, {id(tensor): name}, {id(module): name})."""
    if params is None:
        return None, {}, {}
    if hasattr(params, "named_parameters"):
        names = {id(t): n for n, t in params.named_parameters()}
        modules = {id(m): n for n, m in params.named_modules()} \
            if hasattr(params, "named_modules") else {}
        return params, names, modules
    if isinstance(params, Mapping):
        for n, t in params.items():
            if not isinstance(t, Tensor):
                raise TypeError(f"draw_graph: params[{n!r}] is a {type(t).__name__}, not a Tensor")
        return None, {id(t): str(n) for n, t in params.items()}, {}
    raise TypeError(f"draw_graph: params must be a Module or a dict of name -> Tensor; got "
                    f"{type(params).__name__}")


def gradient_norms(roots, tensors) -> dict:
    """{id(tensor): norm of d(sum of roots)/d(tensor), or None if it gets none}."""
    for r in roots:
        if not r.requires_grad:
            raise RuntimeError("draw_graph(show_grads=True): a root does not require grad, so it "
                               "has no gradient to show")
        if r.size != 1:
            raise ValueError(f"draw_graph(show_grads=True): a root has shape {r.shape}; gradients "
                             f"are shown for a scalar root (a loss): reduce it first")
    wanted = [t for t in tensors if t.requires_grad]
    grads = autograd.grad(roots, wanted, retain_graph=True, allow_unused=True)
    # float64: a float32 sum of squares overflows for exactly the exploding gradients we look for
    return {id(t): None if g is None else
            float(np.sqrt(np.sum(np.square(g.data, dtype=np.float64))))
            for t, g in zip(wanted, grads)}


class LeafNamer:
    """Kind and title of a leaf. The graph does not say which leaves are data and which are
    constants made inside composed ops (a relu mask, a softmax's detached max), so unnamed ones are
    told apart by a guess (scalars and bool masks are constants) until the caller names the data."""

    def __init__(self, names, unnamed_are_const):
        self.names, self.unnamed_are_const = names, unnamed_are_const

    def kind(self, t) -> str:
        if t.requires_grad:
            return "param"
        if id(t) in self.names:
            return "input"
        if self.unnamed_are_const or t.size == 1 or t.dtype == np.bool_:
            return "const"
        return "input"

    def title(self, t, kind) -> str:
        return self.names.get(id(t), "const" if kind == "const" else "input")
