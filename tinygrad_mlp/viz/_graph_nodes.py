"""Floor 6 (viz): turn a read graph into nodes and edges to draw: one node per tensor, or one box
per module call when the graph is collapsed by module.
"""
from __future__ import annotations

from dataclasses import dataclass

from ._dot import STYLES, Labeller, Node, op_title, shape_text
from ._graph_read import LeafNamer


@dataclass
class GraphPicture:
    """What ``draw_graph`` read from a recorded graph and how it labels it: the tensors (roots
    first), for each the indices of its op's inputs, and the namers of leaves, modules and lines."""
    tensors: list
    args: list
    is_root: set
    leaf: LeafNamer
    label: Labeller
    root_module: object = None
    module_names: dict = None

    def tensor_node(self, i) -> Node:
        t = self.tensors[i]
        if t._ctx is not None:
            return Node(f"n{i}", "output" if i in self.is_root else "op", op_title(t._ctx), t)
        kind = self.leaf.kind(t)
        return Node(f"n{i}", kind, self.leaf.title(t, kind), t)


def expanded(picture: GraphPicture):
    """One node per tensor, one edge per op input."""
    nodes, edges = [], []
    for i in range(len(picture.tensors)):
        nodes.append(picture.tensor_node(i))
        edges.extend((f"n{j}", f"n{i}") for j in picture.args[i])
    return nodes, edges


def collapsed(picture: GraphPicture, depth: int):
    """One box per module call at ``depth`` (1 = the root module's children); ops outside any
    module stay single nodes."""
    return _ModuleCalls(picture, depth).nodes_and_edges()


def _module_at_depth(scope, root_module, depth):
    # The root module's own call is the whole model: depth counts from its children.
    for k, m in enumerate(scope):
        if m is root_module:
            scope = scope[k + 1:]
            break
    return scope[min(depth, len(scope)) - 1] if scope else None


def _named_parameters(module):
    return list(module.named_parameters()) if hasattr(module, "named_parameters") else []


class _ModuleCalls:
    """The grouping of a graph's tensors into module calls. ``group[i]`` is the call tensor ``i``
    belongs to (the index of one of its members) or None; ``absorbed[j]`` the call whose box holds
    leaf ``j``."""

    def __init__(self, picture: GraphPicture, depth: int):
        self.picture = p = picture
        n = len(p.tensors)
        self.module = [None] * n
        traced = False
        for i, t in enumerate(p.tensors):
            if t._ctx is not None:
                scope = getattr(t._ctx, "scope", ())
                traced = traced or bool(scope)
                self.module[i] = _module_at_depth(scope, p.root_module, depth) if scope else None
        if not traced:
            raise RuntimeError(
                "draw_graph(collapse_modules=True): this graph was recorded without module "
                "scopes. Run the forward pass inside a trace, e.g.\n"
                "    with tinygrad_mlp.viz.trace_modules():\n"
                "        loss = loss_fn(model(x), y)\n"
                "    draw_graph(loss, params=model, collapse_modules=True)")
        self.group = self._connected_calls()
        self.consumers = [set() for _ in range(n)]
        for i in range(n):
            for j in p.args[i]:
                self.consumers[j].add(self.group[i] if self.group[i] is not None else ("t", i))
        self._absorb_leaves()
        self.members = {}
        for i in range(n):
            if self.group[i] is not None:
                self.members.setdefault(self.group[i], []).append(i)
        self.calls_of = {}
        for g in self.members:
            self.calls_of.setdefault(id(self.module[g]), []).append(g)

    def _connected_calls(self) -> list:
        # Ops of one module form one call when they are connected: two calls of a shared module on
        # unrelated data stay apart (the scope names the module, not the call).
        module, args = self.module, self.picture.args
        parent = list(range(len(module)))

        def find(i):
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for i in range(len(module)):
            if module[i] is not None:
                for j in args[i]:
                    if module[j] is module[i]:
                        parent[find(j)] = find(i)
        return [find(i) if module[i] is not None else None for i in range(len(module))]

    def _absorb_leaves(self):
        # A module's own parameters, and constants, used only inside one call become part of its box.
        p = self.picture
        self.absorbed = [None] * len(p.tensors)
        self.held = {}  # group -> indices of the leaves its box holds
        self.own_params = {}  # id(module) -> {id(parameter): local name}
        for j, t in enumerate(p.tensors):
            if t._ctx is None and j not in p.is_root and len(self.consumers[j]) == 1:
                (g,) = self.consumers[j]
                if not isinstance(g, tuple):  # a module call, not a single op
                    key = id(self.module[g])
                    if key not in self.own_params:
                        self.own_params[key] = {id(prm): name for name, prm
                                                in _named_parameters(self.module[g])}
                    if id(t) in self.own_params[key] or p.leaf.kind(t) == "const":
                        self.absorbed[j] = g
                        self.held.setdefault(g, []).append(j)

    def _node_name(self, i) -> str:
        return f"m{self.group[i]}" if self.group[i] is not None else f"n{i}"

    def nodes_and_edges(self):
        p, group, absorbed = self.picture, self.group, self.absorbed
        nodes, edges, seen_edges, drawn_groups = [], [], set(), set()
        for i in range(len(p.tensors)):
            if absorbed[i] is not None:
                continue
            g = group[i]
            if g is None:
                nodes.append(p.tensor_node(i))
            elif g not in drawn_groups:
                drawn_groups.add(g)
                nodes.append(self._module_node(g))
            for j in p.args[i]:
                if absorbed[j] is not None:
                    continue
                edge = (self._node_name(j), self._node_name(i))
                if edge[0] == edge[1]:
                    continue
                if group[i] is not None or group[j] is not None:  # many op edges become one
                    if edge in seen_edges:
                        continue
                    seen_edges.add(edge)
                edges.append(edge)
        return nodes, edges

    def _module_node(self, g) -> Node:
        p, label, module = self.picture, self.picture.label, self.module[g]
        member_ids, calls = self.members[g], self.calls_of[id(module)]
        own = self.own_params.get(id(module), {})
        name = (p.module_names or {}).get(id(module))
        cls = type(module).__name__
        title = f"{name}: {cls}" if name else cls
        if len(calls) > 1:
            # calls are listed from the output back; numbered in the order they ran
            title += f" (call {len(calls) - calls.index(g)} of {len(calls)})"
        # The call's outputs: its tensors used outside it, or roots.
        outs = [i for i in member_ids
                if i in p.is_root or any(c != g for c in self.consumers[i])]
        lines = [title, f"{len(member_ids)} op" + ("s" if len(member_ids) > 1 else "")]
        for i in outs:
            lines += ["→ " + s if k == 0 else s for k, s in enumerate(label.describe(p.tensors[i]))]
        for j in self.held.get(g, ()):
            t = p.tensors[j]
            if id(t) in own:
                line = own[id(t)] + (" " + shape_text(t.shape) if label.show_shapes else "")
                if label.norms is not None and label.norms.get(id(t)) is not None:
                    line += f" |grad| {label.norms[id(t)]:.3g}"
                lines.append(line)
        colours = [label.colour(p.tensors[i]) for i in outs]
        node = Node(f"m{g}", "module", lines=lines, fill=colours[0] if colours else None)
        if any(i in p.is_root for i in member_ids):
            node.extra = dict(STYLES["output"][1], shape="box3d")
            node.lines[0] += " (output)"
        return node
