"""The kinds of tests/testing/test_broken_passes.py: attributes forgotten by CSE, dead-code removal
that bypasses live nodes, a Transpose "no-op" rewritten into a Reshape."""

from __future__ import annotations

import numpy as np

from ridgeline.ir import Graph

from . import mutant
from ._build import const, graph, op


def _w_cse():
    g, x = graph("cse", x=("f32", 2, 3))
    g.outputs = [op(g, "Add", op(g, "Softmax", x["x"], axis=0), op(g, "Softmax", x["x"], axis=-1))]
    return g, {"x": np.arange(6, dtype=np.float32).reshape(2, 3)}


@mutant("cse-ignores-attributes", "CSE", _w_cse, touches=("duplicates",))
def cse_ignores_attributes(g: Graph) -> bool:
    """CSE keyed on (op, inputs) only: nodes differing in attributes merge."""
    seen: dict = {}
    changed = False
    for n in list(g):
        key = (n.op, tuple(id(v) for v in n.inputs), len(n.outputs))
        other = seen.get(key)
        if other is not None and all(u.type == v.type for u, v in zip(n.outputs, other.outputs)):
            for u, v in zip(n.outputs, other.outputs):
                u.replace_all_uses_with(v)
            changed = True
        else:
            seen[key] = n
    return changed


def _w_dce():
    g, x = graph("dce", x=("f32", 3))
    g.outputs = [op(g, "Add", op(g, "Neg", x["x"]), const(g, np.float32(1.0)))]
    return g, {"x": np.array([1, 2, 3], np.float32)}


@mutant("dce-bypasses-used-nodes", "DCE", _w_dce)
def dce_bypasses_used_nodes(g: Graph) -> bool:
    """Takes any same-typed unary node read once for a leftover copy and wires its reader past it."""
    changed = False
    outputs = {id(v) for v in g.outputs}
    for n in list(g):
        if len(n.inputs) == 1 and len(n.outputs) == 1 and n.inputs[0] is not None:
            x, y = n.inputs[0], n.outputs[0]
            if x.type == y.type and len(y.uses) == 1 and id(y) not in outputs:
                y.replace_all_uses_with(x)
                g.erase_node(n)
                changed = True
    return changed


def _w_transpose():
    g, x = graph("tr", x=("f32", 2, 3))
    g.outputs = [op(g, "Relu", op(g, "Transpose", x["x"], perm=[1, 0]))]
    return g, {"x": np.arange(6, dtype=np.float32).reshape(2, 3)}


@mutant("transpose-as-reshape", "data movement", _w_transpose)
def transpose_as_reshape(g: Graph) -> bool:
    """Transpose(x) → Reshape(x, the result's shape): the same data only when the moved dims are 1."""
    changed = False
    for n in list(g):
        if n.op == "Transpose" and n.outputs[0].type.is_static:
            shape = g.add_constant(None, np.array(n.outputs[0].type.shape, dtype=np.int64))
            r = g.add_node("Reshape", [n.inputs[0], shape], before=n)
            n.outputs[0].replace_all_uses_with(r.outputs[0])
            g.erase_node(n)
            changed = True
    return changed
