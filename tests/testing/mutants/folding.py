"""Folding per-axis quantized constant weights (and folding at too low a precision)."""

from __future__ import annotations

import ml_dtypes
import numpy as np

from ridgeline.ir import Graph
from ridgeline.passes import get_pass
from ridgeline.passes.base import PassContext

from . import mutant
from ._build import const, const_data, graph, op, replace

TOUCHES = ("quantized-weights", "constant-subgraph")


def _w_dq(axis: int = 1, zp: bool = True, square: bool = False):
    def build():
        k, n = (3, 3) if square else (3, 2)
        g, x = graph("dq", x=("f32", 2, k))
        w = const(g, np.arange(-k * n, k * n, 2, dtype=np.int8).reshape(k, n) * 7)
        ch = (k, n)[axis]
        scale = const(g, np.linspace(0.01, 0.05, ch).astype(np.float32))
        ins = [w, scale] + ([const(g, np.arange(ch, dtype=np.int8) - 1)] if zp else [])
        wf = g.add_node("DequantizeLinear", ins, {"axis": axis}).outputs[0]
        g.outputs = [op(g, "MatMul", x["x"], wf)]
        return g, {"x": np.linspace(-1, 1, 2 * k, dtype=np.float32).reshape(2, k)}
    return build


def _dq_nodes(g: Graph):
    for n in list(g):
        if n.op == "DequantizeLinear" and all(v is None or v.const and v.data is not None for v in n.inputs):
            yield n


def _fold(g: Graph, fn) -> bool:
    changed = False
    for n in _dq_nodes(g):
        x, s = n.inputs[0].data, n.inputs[1].data
        zp = n.inputs[2].data if len(n.inputs) > 2 and n.inputs[2] is not None else None
        w = fn(n, x.astype(np.float64), s.astype(np.float64), None if zp is None else zp.astype(np.float64))
        replace(g, n, const(g, np.asarray(w).astype(n.outputs[0].type.dtype.np_dtype)))
        changed = True
    return changed


def _axis_shape(n, x, s):
    shape = [1] * x.ndim
    if s.ndim:
        shape[n.attr("axis") % x.ndim] = -1
    return s.reshape(shape)


@mutant("fold-dequant-first-scale", "folding per-axis quantized weights", _w_dq(), touches=TOUCHES)
def fold_dequant_first_scale(g: Graph) -> bool:
    """Folds DequantizeLinear of constants with the first scale and zero point for every channel."""
    return _fold(g, lambda n, x, s, zp: (x - (0 if zp is None else zp.ravel()[0])) * s.ravel()[0])


@mutant("fold-dequant-no-zero-point", "folding per-axis quantized weights", _w_dq(), touches=TOUCHES)
def fold_dequant_no_zero_point(g: Graph) -> bool:
    """Folds DequantizeLinear of constants, forgetting the zero point."""
    return _fold(g, lambda n, x, s, zp: x * _axis_shape(n, x, s))


@mutant("fold-dequant-last-axis", "folding per-axis quantized weights", _w_dq(axis=0, square=True),
        touches=TOUCHES)
def fold_dequant_last_axis(g: Graph) -> bool:
    """Folds DequantizeLinear of constants broadcasting the scales along the last axis, whatever
    ``axis`` says (right for the usual [K, N] weight with axis=1)."""
    def fn(n, x, s, zp):
        z = 0 if zp is None else zp.reshape((1,) * (x.ndim - 1) + (-1,)) if zp.ndim else zp
        return (x - z) * (s.reshape((1,) * (x.ndim - 1) + (-1,)) if s.ndim else s)
    return _fold(g, fn)


@mutant("dequant-axis-default", "quantization axis", _w_dq(axis=0, square=True), touches=TOUCHES)
def dequant_axis_default(g: Graph) -> bool:
    """Rewrites DequantizeLinear with its default axis (1) when the result type still checks."""
    changed = False
    for n in g:
        if n.op == "DequantizeLinear" and n.attr("axis") % max(n.inputs[0].type.rank, 1) != 1 \
                and n.inputs[1].type.rank == 1 and n.inputs[0].type.rank >= 2 \
                and n.inputs[0].type.shape[1] == n.inputs[1].type.shape[0]:
            n.attrs = {**n.attrs, "axis": 1}
            changed = True
    return changed


def _w_fold_bf16():
    g, x = graph("fold", x=("f32", 3))
    c = const(g, np.array([1.001, 2.003, 3.007], np.float32))
    g.outputs = [op(g, "Add", x["x"], op(g, "Mul", c, const(g, np.float32(1.0009))))]
    return g, {"x": np.zeros(3, np.float32)}


@mutant("fold-constants-bf16", "folding precision", _w_fold_bf16, touches=("constant-subgraph", "shape-chain"))
def fold_constants_bf16(g: Graph):
    """fold-constants whose evaluator computes in bfloat16 and casts back."""
    from ridgeline.api import reference_evaluator
    ev = reference_evaluator()

    def low(node, arrays):
        cast = [a.astype(ml_dtypes.bfloat16) if a is not None and a.dtype == np.float32 else a for a in arrays]
        try:
            out = ev(node, cast)
        except Exception:
            out = ev(node, arrays)
        return [np.asarray(o).astype(v.type.dtype.np_dtype) for o, v in zip(out, node.outputs)]
    return get_pass("fold-constants")()(g, PassContext(evaluator=low))


def _w_inplace():
    g, x = graph("inplace", x=("f32", 2, 2))
    g.outputs = [op(g, "MatMul", x["x"], const(g, np.eye(2, dtype=np.float32)))]
    return g, {"x": np.ones((2, 2), np.float32)}


@mutant("scale-weights-in-place", "constants shared with the caller", _w_inplace)
def scale_weights_in_place(g: Graph) -> bool:
    """Folds x·2 into constants by writing into their arrays — shared with the caller's graph."""
    changed = False
    for c in list(g.constants.values()):
        if const_data(c) is not None and c.data.dtype == np.float32 and c.data.size > 1:
            c.data.setflags(write=True)
            c.data *= 1.0 + 2 ** -10
            changed = True
    return changed
