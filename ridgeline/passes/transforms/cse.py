"""``cse``: common-subexpression elimination by value numbering.

Two nodes are the same computation when they have the same op, the same attributes (spec defaults
filled in, so ``Softmax`` equals ``Softmax {axis = -1}``), the same inputs (in either order for a
two-input commutative op) and structurally equal bodies (names inside a body do not matter).
Walking in topological order, each node is looked up
by that key; a repeat is replaced by the first. Equal small constants merge first, so the many
``[0]``/``[-1]`` constants an exporter writes collapse and the nodes reading them become equal.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...ir import Graph, Node
from ..base import Pass, PassContext, PassResult
from ..registry import register_pass
from ..rewriter.edit import adopt_name, output_slots

__all__ = ["CommonSubexpressionElimination", "attr_key"]


def attr_key(value: Any) -> Any:
    """A hashable form of an attribute value (arrays by dtype, shape and bytes)."""
    if isinstance(value, np.ndarray):
        return ("tensor", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, (tuple, list)):
        return tuple(attr_key(v) for v in value)
    if hasattr(value, "items"):
        return tuple(sorted((k, attr_key(v)) for k, v in value.items()))
    if isinstance(value, float) and value != value:
        return ("nan",)
    return value


_NO_DEFAULT = object()


def _node_key(n: Node) -> tuple:
    spec = n.spec_or_none
    attrs = n.attrs
    if spec is None:
        key_attrs = tuple(sorted((k, attr_key(v)) for k, v in attrs.items()))
        commutative = False
    else:
        items = []
        for name, a in spec.attrs.items():  # spec defaults filled in: Softmax == Softmax{axis=-1}
            v = attrs.get(name, a.default if a.has_default else _NO_DEFAULT)
            if v is not _NO_DEFAULT:
                items.append((name, attr_key(v)))
        items += sorted((k, attr_key(v)) for k, v in attrs.items() if k not in spec.attrs)
        key_attrs = tuple(items)
        commutative = spec.commutative
    ins = [id(v) if v is not None else 0 for v in n.inputs]
    if commutative and len(ins) == 2:
        ins.sort()
    body = _body_key(n.body) if n.body is not None else None
    return (n.op, tuple(ins), key_attrs, len(n.outputs), body)


def _body_key(body: Graph) -> tuple:
    """The structure of a body: constants by value, nodes by op, attributes and operand positions."""
    index: dict[int, int] = {}
    items: list = []
    for v in body.inputs:
        index[id(v)] = len(index)
        items.append(("in", str(v.type)))
    for c in body.constants.values():
        index[id(c)] = len(index)
        items.append(("const", attr_key(c.data) if c.data is not None else str(c.type)))
    for n in body:
        ins = tuple(index.get(id(v), -1) if v is not None else None for v in n.inputs)
        items.append((n.op, ins, tuple(sorted((k, attr_key(v)) for k, v in n.attrs.items())),
                      _body_key(n.body) if n.body is not None else None))
        for v in n.outputs:
            index[id(v)] = len(index)
    items.append(("out", tuple(index[id(v)] for v in body.outputs)))
    return tuple(items)


@register_pass("cse")
class CommonSubexpressionElimination(Pass):
    """Merge identical computations and equal small constants."""
    touches = ("duplicates", "equal-axes")  # what check_pass generates for it

    #: constants with at most this many elements are compared by value
    max_constant_elements: int = 4096

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        consts = self._merge_constants(graph)
        seen: dict[tuple, Node] = {}
        merged = 0
        for n in graph.nodes:
            key = _node_key(n)
            first = seen.get(key)
            if first is None:
                seen[key] = n
                continue
            renames = []
            for old, new in zip(n.outputs, first.outputs):
                renames.append((old.name, new, output_slots(graph, old)))
                old.replace_all_uses_with(new)
            graph.erase_node(n)
            for name, new, slots in renames:
                if slots:
                    adopt_name(graph, new, name, created=False, slots=slots)
            merged += 1
        return PassResult(graph, bool(merged or consts), stats={"nodes": merged, "constants": consts})

    def _merge_constants(self, graph: Graph) -> int:
        seen: dict[tuple, Any] = {}
        merged = 0
        for c in list(graph.constants.values()):
            if c.data is None or c.data.size > self.max_constant_elements or c.is_output:
                continue
            key = (c.data.dtype.str, c.data.shape, c.data.tobytes())
            first = seen.get(key)
            if first is None:
                seen[key] = c
                continue
            c.replace_all_uses_with(first)
            graph.remove_constant(c)
            merged += 1
        return merged
