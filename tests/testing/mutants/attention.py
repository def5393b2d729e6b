"""Attention: the scale, causal masks when query and key lengths differ, the mask's meaning."""

from __future__ import annotations

import math

import numpy as np

from ridgeline.ir import Graph
from ridgeline.passes import get_pass

from . import mutant
from ._build import before, const, const_data, graph, op, replace

TOUCHES = ("attention", "masked-softmax")


def _w_causal(fill: float = -math.inf, s: int = 2, t: int = 4, scale: float = 1.0):
    def build():
        g, x = graph("causal", q=("f32", 1, 1, s, 2), kt=("f32", 1, 1, 2, t), v=("f32", 1, 1, t, 2))
        allowed = np.tril(np.ones((s, t), bool), k=t - s)
        scores = op(g, "MatMul", x["q"], x["kt"])
        if scale != 1.0:
            scores = op(g, "Mul", scores, const(g, scale, np.float32))
        m = const(g, np.where(allowed, 0.0, fill).astype(np.float32).reshape(1, 1, s, t))
        p = op(g, "Softmax", op(g, "Add", scores, m), axis=-1)
        g.outputs = [op(g, "MatMul", p, x["v"])]
        rng = np.random.default_rng(1)
        return g, {k: rng.uniform(-2, 2, v.type.shape).astype(np.float32) for k, v in x.items()}
    return build


def _causal_offset(mask: np.ndarray) -> tuple[int, float] | None:
    """(t − s, fill) when ``mask`` (…, s, t) is a bottom-right aligned causal mask."""
    if mask.ndim < 2:
        return None
    s, t = mask.shape[-2:]
    allowed = np.tril(np.ones((s, t), bool), k=t - s)
    m = mask.reshape(-1, s, t)
    if mask.dtype == bool:
        return (t - s, 0.0) if all(np.array_equal(x, allowed) for x in m) else None
    if not all(np.all(x[allowed] == 0) for x in m) or allowed.all():
        return None
    fill = m[0][~allowed][0]
    return (t - s, float(fill)) if all(np.all(x[~allowed] == fill) for x in m) else None


@mutant("causal-mask-top-left", "causal mask with q != k", _w_causal(), touches=TOUCHES)
def causal_mask_top_left(g: Graph) -> bool:
    """Rebuilds constant causal masks from their shape as tril(k=0) — right only when q == k."""
    changed = False
    for c in list(g.constants.values()):
        data = c.data
        found = _causal_offset(data) if data is not None else None
        if not found or found[0] == 0:
            continue
        s, t = data.shape[-2:]
        top = np.tril(np.ones((s, t), bool))
        new = np.broadcast_to(top, data.shape) if data.dtype == bool else \
            np.where(top, 0, found[1]).astype(data.dtype) * np.ones(data.shape, data.dtype)
        fresh = g.add_constant(None, np.ascontiguousarray(new))
        c.replace_all_uses_with(fresh)
        changed = True
    return changed


@mutant("mask-as-multiplier", "causal mask with q != k", _w_causal(-1e4), touches=TOUCHES)
def mask_as_multiplier(g: Graph) -> bool:
    """An additive constant mask turned into a multiplicative one (scores · [mask == 0]) and filled
    after the softmax's shift — masked scores become 0, not −∞."""
    changed = False
    for n in list(g):
        if n.op != "Add" or len(n.outputs[0].uses) != 1 or n.outputs[0].uses[0][0].op != "Softmax":
            continue
        for i in (0, 1):
            m = const_data(n.inputs[i])
            if m is not None and m.ndim >= 2 and np.any(m != 0) and m.dtype.kind == "f":
                keep = const(g, (m == 0).astype(m.dtype))
                replace(g, n, before(g, n, "Mul", n.inputs[1 - i], keep))
                changed = True
                break
    return changed


@mutant("attention-scale-dropped", "attention", _w_causal(-math.inf, 2, 2, 0.5), touches=TOUCHES)
def attention_scale_dropped(g: Graph):
    """fuse-attention, then the scale attribute forgotten (the op falls back to 1/√d)."""
    result = get_pass("fuse-attention")()(g)
    for n in g:
        if n.op == "Attention" and "scale" in n.attrs:
            n.attrs = {k: v for k, v in n.attrs.items() if k != "scale"}
    return result


@mutant("attention-causal-flag", "causal mask with q != k", _w_causal(), touches=TOUCHES)
def attention_causal_flag(g: Graph):
    """fuse-attention, then a constant causal attn_mask replaced by is_causal=1 (top-left aligned
    in ONNX: right only when q == k)."""
    result = get_pass("fuse-attention")()(g)
    changed = False
    for n in list(g):
        if n.op == "Attention" and len(n.inputs) > 3 and n.inputs[3] is not None:
            m = const_data(n.inputs[3])
            if m is not None and _causal_offset(m) is not None and not n.attr("is_causal"):
                n.set_input(3, None)
                n.attrs = {**n.attrs, "is_causal": 1}
                changed = True
    from ridgeline.passes import PassResult
    return PassResult(g, result.modified or changed)
