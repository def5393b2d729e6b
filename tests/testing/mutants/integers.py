"""Integer semantics: truncating division, the sign of a modulo, wrap-around on overflow."""

from __future__ import annotations

import numpy as np

from ridgeline.ir import Graph

from . import mutant
from ._build import before, const, const_data, graph, op, replace

TOUCHES = ("int-arith",)


def _int(v) -> bool:
    return v is not None and v.type.dtype.is_integer


def _w_div():
    g, x = graph("div", x=("i32", 6))
    g.outputs = [op(g, "Div", x["x"], const(g, 2, np.int32))]
    return g, {"x": np.array([-7, -1, 0, 1, 7, -8], np.int32)}


@mutant("int-div-floors", "integer semantics", _w_div, touches=TOUCHES)
def int_div_floors(g: Graph) -> bool:
    """Integer Div lowered through float division and Floor: floors instead of truncating."""
    changed = False
    for n in list(g):
        if n.op == "Div" and _int(n.outputs[0]):
            dt = n.outputs[0].type.dtype.name
            a, b = (before(g, n, "Cast", v, to="f64") for v in n.inputs)
            r = before(g, n, "Cast", before(g, n, "Floor", before(g, n, "Div", a, b)), to=dt)
            replace(g, n, r)
            changed = True
    return changed


def _w_mod():
    g, x = graph("mod", x=("i32", 4))
    g.outputs = [op(g, "Mod", x["x"], const(g, 3, np.int32), fmod=1)]
    return g, {"x": np.array([-7, -1, 5, 7], np.int32)}


@mutant("int-mod-sign", "integer semantics", _w_mod, touches=TOUCHES)
def int_mod_sign(g: Graph) -> bool:
    """Drops Mod's fmod attribute on integers ("the same for positive operands")."""
    changed = False
    for n in g:
        if n.op == "Mod" and _int(n.outputs[0]) and n.attrs.get("fmod"):
            n.attrs = {k: v for k, v in n.attrs.items() if k != "fmod"}
            changed = True
    return changed


def _w_mul():
    g, x = graph("mul", x=("i8", 3), y=("i8", 3))
    g.outputs = [op(g, "Mul", x["x"], x["y"])]
    return g, {"x": np.array([100, -100, 3], np.int8), "y": np.array([2, 3, 4], np.int8)}


@mutant("int-mul-saturates", "integer semantics", _w_mul, touches=TOUCHES)
def int_mul_saturates(g: Graph) -> bool:
    """Integer Mul computed in float64 and clipped to the dtype: saturates where ints wrap."""
    changed = False
    for n in list(g):
        if n.op == "Mul" and _int(n.outputs[0]):
            dt = n.outputs[0].type.dtype
            info = np.iinfo(dt.np_dtype)
            a, b = (before(g, n, "Cast", v, to="f64") for v in n.inputs)
            m = before(g, n, "Clip", before(g, n, "Mul", a, b), const(g, float(info.min)), const(g, float(info.max)))
            replace(g, n, before(g, n, "Cast", m, to=dt.name))
            changed = True
    return changed


@mutant("div-as-reciprocal", "integer semantics", _w_div, touches=("int-arith", "elementwise-chain"))
def div_as_reciprocal(g: Graph) -> bool:
    """Division by a constant as multiplication by its reciprocal — for every dtype (in integers
    the reciprocal truncates to 0 or ±1)."""
    changed = False
    for n in list(g):
        c = const_data(n.inputs[1]) if n.op == "Div" else None
        if c is not None and np.all(c != 0):
            with np.errstate(all="ignore"):
                inv = (1.0 / c.astype(np.float64)).astype(c.dtype)
            replace(g, n, before(g, n, "Mul", n.inputs[0], const(g, inv)))
            changed = True
    return changed


def _w_cancel():
    g, x = graph("cancel", x=("i32", 4))
    c = const(g, 2, np.int32)
    g.outputs = [op(g, "Mul", op(g, "Div", x["x"], c), c)]
    return g, {"x": np.array([7, -7, 4, 0], np.int32)}


@mutant("div-mul-cancel", "integer semantics", _w_cancel, touches=TOUCHES)
def div_mul_cancel(g: Graph) -> bool:
    """(x / c) · c → x, exact in real numbers, not in truncating integer division."""
    changed = False
    for n in list(g):
        if n.op != "Mul" or n.inputs[0].producer is None:
            continue
        d = n.inputs[0].producer
        c1, c2 = const_data(d.inputs[1]) if d.op == "Div" else None, const_data(n.inputs[1])
        if c1 is not None and c2 is not None and c1.shape == c2.shape and np.array_equal(c1, c2) \
                and d.inputs[0].type == n.outputs[0].type:
            n.outputs[0].replace_all_uses_with(d.inputs[0])
            changed = True
    return changed


def _w_cast():
    g, x = graph("cast", x=("i32", 3))
    g.outputs = [op(g, "Cast", op(g, "Cast", x["x"], to="i8"), to="i32")]
    return g, {"x": np.array([300, -200, 5], np.int32)}


@mutant("cast-roundtrip-dropped", "integer semantics", _w_cast)
def cast_roundtrip_dropped(g: Graph) -> bool:
    """Cast(Cast(x, narrow), back) → x: drops the wrap (ints) or rounding (floats) of the middle."""
    changed = False
    for n in list(g):
        p = n.inputs[0].producer if n.op == "Cast" and n.inputs else None
        if p is not None and p.op == "Cast" and p.inputs[0].type == n.outputs[0].type:
            n.outputs[0].replace_all_uses_with(p.inputs[0])
            changed = True
    return changed
