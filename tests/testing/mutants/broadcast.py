"""Broadcasting of size-1 axes: dropped, or aligned on the wrong side, also inside fused groups."""

from __future__ import annotations

import numpy as np

from ridgeline.ir import Graph
from ridgeline.passes import get_pass

from . import mutant
from ._build import const, graph, op

_BINARY = ("Add", "Sub", "Mul", "Div", "Max", "Min")


def _reshape_operand(g: Graph, n, i: int, shape) -> bool:
    """Feed operand ``i`` of ``n`` through Reshape(shape); keep it only if ``n``'s type stays."""
    from ridgeline.ir.infer import infer_node
    v, old = n.inputs[i], n.outputs[0].type
    n.set_input(i, g.add_node("Reshape", [v, const(g, list(shape), np.int64)], before=n).outputs[0])
    try:
        same = infer_node(n)[0] == old
    except Exception:
        same = False
    if not same:
        n.set_input(i, v)
    return same


def _w_col():
    g, x = graph("col", x=("f32", 2, 2), y=("f32", 2, 1))
    g.outputs = [op(g, "Relu", op(g, "Add", x["x"], x["y"]))]
    return g, {"x": np.zeros((2, 2), np.float32), "y": np.array([[1.0], [2.0]], np.float32)}


def squeeze_ones(g: Graph) -> bool:
    """Operands of binary elementwise ops with size-1 axes reshaped to their squeezed shape, kept
    when the node's result type does not change."""
    changed = False
    for n in list(g):
        if n.op not in _BINARY:
            continue
        for i, v in enumerate(n.inputs):
            shape = v.type.shape
            if v.type.rank < 2 or 1 not in shape or not v.type.is_static or all(d == 1 for d in shape):
                continue
            changed |= _reshape_operand(g, n, i, [d for d in shape if d != 1])
    return changed


mutant("squeeze-size1-operands", "size-1 broadcasting", _w_col, touches=("broadcast-chain", "elementwise-chain"))(
    squeeze_ones)


def _w_row():
    g, x = graph("row", x=("f32", 2, 2), y=("f32", 2))
    g.outputs = [op(g, "Mul", x["x"], x["y"])]
    return g, {"x": np.ones((2, 2), np.float32), "y": np.array([1.0, 2.0], np.float32)}


@mutant("broadcast-left-aligned", "size-1 broadcasting", _w_row)
def broadcast_left_aligned(g: Graph) -> bool:
    """Rank-extends a lower-rank operand by appending 1s (left-aligned, as Fortran would) instead of
    prepending them, kept when the result type does not change."""
    changed = False
    for n in list(g):
        if n.op not in _BINARY or len(n.inputs) != 2:
            continue
        a, b = n.inputs
        for i, (v, other) in enumerate(((a, b), (b, a))):
            if 0 < v.type.rank < other.type.rank and v.type.is_static:
                shape = list(v.type.shape) + [1] * (other.type.rank - v.type.rank)
                changed |= _reshape_operand(g, n, i, shape)
                break
    return changed


@mutant("fused-body-squeezes-ones", "size-1 broadcasting inside fused groups", _w_col,
        touches=("broadcast-chain", "elementwise-chain"))
def fused_body_squeezes_ones(g: Graph):
    """fuse-elementwise whose fused bodies then drop size-1 axes of their operands."""
    result = get_pass("fuse-elementwise")()(g)
    for n in g:
        if n.op == "Fused" and n.body is not None:
            squeeze_ones(n.body)
    return result
