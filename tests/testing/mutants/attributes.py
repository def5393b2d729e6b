"""Attributes that only matter for some values: a perm over equal-size axes, reduction axes,
epsilon, the GELU approximation, Pow's exponent, Gemm's transposes."""

from __future__ import annotations

import math

import numpy as np

from ridgeline.ir import Graph
from ridgeline.passes import get_pass

from . import mutant
from ._build import before, const, const_data, graph, op, replace


def _w_perm():
    g, x = graph("perm", x=("f32", 2, 2, 2))
    g.outputs = [op(g, "Transpose", op(g, "Transpose", x["x"], perm=[1, 0, 2]), perm=[0, 2, 1])]
    return g, {"x": np.arange(8, dtype=np.float32).reshape(2, 2, 2)}


@mutant("transpose-pair-by-shape", "attribute: perm over equal dims", _w_perm, touches=("equal-axes", "Transpose"))
def transpose_pair_by_shape(g: Graph) -> bool:
    """Two Transposes in a row cancel "when the shape comes back" — not when the perms don't compose
    to the identity over equal-size axes."""
    changed = False
    for n in list(g):
        p = n.inputs[0].producer if n.op == "Transpose" else None
        if p is not None and p.op == "Transpose" and p.inputs[0].type == n.outputs[0].type:
            n.outputs[0].replace_all_uses_with(p.inputs[0])
            changed = True
    return changed


def _w_cse_perm():
    g, x = graph("cseperm", x=("f32", 2, 2))
    g.outputs = [op(g, "Sub", op(g, "Transpose", x["x"], perm=[1, 0]), op(g, "Identity", x["x"]))]
    return g, {"x": np.arange(4, dtype=np.float32).reshape(2, 2)}


@mutant("same-type-views-merge", "attribute: perm over equal dims", _w_cse_perm)
def same_type_views_merge(g: Graph) -> bool:
    """CSE of data movement keyed on (input, result type): a Transpose over equal dims and an
    Identity (or another perm) of the same input merge."""
    seen: dict = {}
    changed = False
    for n in list(g):
        if n.op in ("Transpose", "Identity", "Reshape") and n.inputs[0] is not None:
            key = (id(n.inputs[0]), str(n.outputs[0].type))
            if key in seen and seen[key] is not n:
                n.outputs[0].replace_all_uses_with(seen[key].outputs[0])
                changed = True
            else:
                seen[key] = n
    return changed


def _w_axes():
    g, x = graph("axes", x=("f32", 2, 2))
    g.outputs = [op(g, "ReduceSum", x["x"], const(g, [0], np.int64), keepdims=0)]
    return g, {"x": np.arange(4, dtype=np.float32).reshape(2, 2)}


@mutant("reduce-axes-from-end", "attribute: reduction axes", _w_axes, touches=("equal-axes", "reduction"))
def reduce_axes_from_end(g: Graph) -> bool:
    """Normalizes reduction axes counting from the end (a → rank−1−a), accepted when the result type
    does not change — which it does not over equal-size axes."""
    changed = False
    for n in list(g):
        axes = const_data(n.inputs[1]) if n.op.startswith("Reduce") and len(n.inputs) > 1 else None
        if axes is None or axes.size == 0:
            continue
        r = n.inputs[0].type.rank
        new = np.asarray(sorted(r - 1 - (int(a) % r) for a in axes.ravel()), np.int64)
        if np.array_equal(np.sort(axes.ravel() % r), new):
            continue
        old, before_axes = n.outputs[0].type, n.inputs[1]
        n.set_input(1, const(g, new))
        if _infers(n, old):
            changed = True
        else:
            n.set_input(1, before_axes)
    return changed


def _infers(n, old) -> bool:
    from ridgeline.ir.infer import infer_node
    try:
        return infer_node(n)[0] == old
    except Exception:
        return False


def _fused_then(name: str, op_name: str, **attrs):
    def run(g: Graph):
        result = get_pass(name)()(g)
        for n in g:
            if n.op == op_name:
                n.attrs = {**n.attrs, **attrs}
        return result
    return run


def _w_norm(kind: str, eps: float, axes=(-1,)):
    def build():
        g, x = graph(kind, x=("f32", 2, 3, 2))
        a = const(g, list(axes), np.int64)
        v = x["x"]
        if kind == "ln":
            v = op(g, "Sub", v, op(g, "ReduceMean", v, a))
        var = op(g, "ReduceMean", op(g, "Mul", v, v), a)
        g.outputs = [op(g, "Div", v, op(g, "Sqrt", op(g, "Add", var, const(g, eps, np.float32))))]
        rng = np.random.default_rng(0)
        base = 1.0 if kind == "ln" else 0.0
        return g, {"x": (base + 1e-2 * rng.standard_normal((2, 3, 2))).astype(np.float32)}
    return build


mutant("layernorm-eps-default", "attribute: epsilon", _w_norm("ln", 1e-3), touches=("layernorm", "norm-edge"))(
    _fused_then("fuse-layernorm", "LayerNormalization", epsilon=1e-5))
mutant("rmsnorm-eps-default", "attribute: epsilon", _w_norm("rms", 1e-3), touches=("rmsnorm", "norm-edge"))(
    _fused_then("fuse-rmsnorm", "RMSNormalization", epsilon=1e-5))
mutant("layernorm-last-axis", "attribute: reduction axes", _w_norm("ln", 1e-5, (-2, -1)),
       touches=("layernorm", "norm-edge"))(_fused_then("fuse-layernorm", "LayerNormalization", axis=-1))


def _w_gelu(tanh: bool):
    def build():
        g, x = graph("gelu", x=("f32", 16))
        v = x["x"]
        if tanh:
            cube = op(g, "Mul", op(g, "Mul", v, v), v)
            t = op(g, "Mul", op(g, "Add", v, op(g, "Mul", cube, const(g, 0.044715, np.float32))),
                   const(g, math.sqrt(2 / math.pi), np.float32))
            inner = op(g, "Add", op(g, "Tanh", t), const(g, 1.0, np.float32))
        else:
            inner = op(g, "Add", op(g, "Erf", op(g, "Div", v, const(g, math.sqrt(2), np.float32))),
                       const(g, 1.0, np.float32))
        g.outputs = [op(g, "Mul", op(g, "Mul", v, const(g, 0.5, np.float32)), inner)]
        return g, {"x": np.linspace(-4, 4, 16, dtype=np.float32)}
    return build


mutant("gelu-always-tanh", "attribute: GELU approximation", _w_gelu(False), touches=("gelu",))(
    _fused_then("fuse-gelu", "Gelu", approximate="tanh"))
mutant("gelu-always-erf", "attribute: GELU approximation", _w_gelu(True), touches=("gelu",))(
    _fused_then("fuse-gelu", "Gelu", approximate="none"))


def _w_pow():
    g, x = graph("pow", x=("f32", 4))
    g.outputs = [op(g, "Pow", x["x"], const(g, 3.0, np.float32))]
    return g, {"x": np.array([-2, -0.5, 0.5, 2], np.float32)}


@mutant("pow-as-square", "attribute: exponent", _w_pow)
def pow_as_square(g: Graph) -> bool:
    """Pow by a constant exponent as x·x (written for the x² of a variance; no exponent check)."""
    changed = False
    for n in list(g):
        if n.op == "Pow" and const_data(n.inputs[1]) is not None and n.inputs[1].type.numel == 1:
            replace(g, n, before(g, n, "Mul", n.inputs[0], n.inputs[0]))
            changed = True
    return changed


def _w_gemm():
    g, x = graph("gemm", a=("f32", 2, 2), b=("f32", 2, 2))
    g.outputs = [op(g, "Gemm", x["a"], x["b"], transB=1)]
    return g, {"a": np.array([[1, 2], [3, 4]], np.float32), "b": np.array([[0, 1], [2, 3]], np.float32)}


@mutant("gemm-ignores-trans", "attribute: transposes", _w_gemm, touches=("noise", "matmul-epilogue", "Gemm"))
def gemm_ignores_trans(g: Graph) -> bool:
    """Gemm → MatMul (+ C) that forgets transA/transB when the shapes still fit (square operands)."""
    changed = False
    for n in list(g):
        if n.op != "Gemm" or n.attr("alpha") != 1.0 or n.attr("beta") != 1.0:
            continue
        a, b = n.inputs[0], n.inputs[1]
        if a.type.shape[1] != b.type.shape[0]:
            continue
        y = before(g, n, "MatMul", a, b)
        if len(n.inputs) > 2 and n.inputs[2] is not None:
            y = before(g, n, "Add", y, n.inputs[2])
        if y.type != n.outputs[0].type:
            continue
        replace(g, n, y)
        changed = True
    return changed
