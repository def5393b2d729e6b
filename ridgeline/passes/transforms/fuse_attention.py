"""``fuse-attention``: scaled dot-product attention → one ONNX ``Attention`` node.

The math matched::

    Y = softmax(Q·Kᵀ · s + M) · V          s: a scalar (·s or /(1/s); also Q·s₁ and Kᵀ·s₂)
                                            M: an additive mask, or where(C, ·, −∞) a boolean one

with the softmax over the keys (the last axis). Around that core the rewrite reads through the
layout idioms exporters emit:

* ``Kᵀ`` is whatever feeds the first MatMul; K is recovered by swapping its last two dims (a
  Transpose feeding it is composed away);
* grouped-query attention: ``repeat_kv`` — ``Reshape(Expand(Unsqueeze(K, 2)))`` repeating each of
  the Hkv heads n times — is dropped, since ``Attention`` shares each KV head among Hq/Hkv query
  heads itself;
* when Q, K and V are head splits of ``[B, S, H·D]`` tensors
  (``Transpose(Reshape(x, [B, S, H, D]), [0, 2, 1, 3])``) and the result is merged back the same
  way, the 3-D form (``q_num_heads``/``kv_num_heads``) absorbs all of those reshapes and transposes;
* a constant mask that is exactly causal (0 on and below the diagonal, ≤ −10⁴ above) becomes
  ``is_causal=1``.
"""

from __future__ import annotations

import numpy as np

from ...ir import Value
from ..registry import register_pass
from ..rewriter import Const, Match, OneOf, RewriteBuilder, RewritePass, Rule, Var, ops
from ._norm import attr_float

__all__ = ["FuseAttention", "ATTENTION"]

#: fill values at or below this count as "masked" (exporters use -inf, finfo.min or -10000)
MASKED = -1.0e4


def _last_axis(axis) -> bool | str:
    return axis == -1 or axis == 3 or f"softmax over axis {axis}, not the keys"


q, kt, v = Var("q", rank=4), Var("kt", rank=4), Var("v", rank=4)
qk = OneOf(ops.MatMul(q, kt, _name="qk"),
           ops.MatMul(ops.Mul(q, Const(name="sq")), ops.Mul(kt, Const(name="sk")), _name="qk"))
scaled = OneOf(ops.Mul(qk, Const(name="s")), ops.Div(qk, Const(name="d")), qk)
masked = OneOf(ops.Add(scaled, Var("mask")),
               ops.Where(Var("cond", dtype="bool"), scaled, Const(name="fill")),
               scaled)
PATTERN = ops.MatMul(ops.Softmax(masked, _name="sm", axis=_last_axis), v, _name="pv")


def _scale(m: Match) -> float:
    s = 1.0
    if "s" in m:
        s *= m.scalar("s")
    if "d" in m:
        s /= m.scalar("d")
    if "sq" in m:
        s *= m.scalar("sq") * m.scalar("sk")
    return s


def _head_split(x: Value, heads_dim: int = 1):
    """``x = Transpose(Reshape(x3, [B, S, H, D]), [0, 2, 1, 3])`` → (x3, H), else None."""
    t = x.producer
    if t is None or t.op != "Transpose" or tuple(t.attr("perm") or ()) != (0, 2, 1, 3):
        return None
    r = t.inputs[0].producer
    if r is None or r.op != "Reshape":
        return None
    x3 = r.inputs[0]
    s4 = r.outputs[0].type.shape
    if x3.type.rank != 3 or len(s4) != 4 or x3.type.shape[:2] != s4[:2] or not isinstance(s4[2], int):
        return None
    from ...ir import dims as D
    if D.mul(s4[2], s4[3]) != x3.type.shape[2]:
        return None
    return x3, s4[2]


def _repeat_kv(x: Value):
    """``Reshape(Expand(Unsqueeze(K, [2]), [B, Hkv, n, T, D]), [B, Hkv·n, T, D])`` → K, else None."""
    r = x.producer
    if r is None or r.op != "Reshape":
        return None
    e = r.inputs[0].producer
    if e is None or e.op != "Expand":
        return None
    u = e.inputs[0].producer
    if u is None or u.op != "Unsqueeze" or u.inputs[1] is None or u.inputs[1].data is None:
        return None
    if [int(a) for a in np.asarray(u.inputs[1].data).reshape(-1)] != [2]:
        return None
    k = u.inputs[0]
    ks, es, rs = k.type.shape, e.outputs[0].type.shape, x.type.shape
    if len(ks) != 4 or len(es) != 5 or len(rs) != 4:
        return None
    b, hkv, t, d = ks
    n = es[2]
    if es[:2] != (b, hkv) or es[3:] != (t, d) or not isinstance(n, int) or not isinstance(hkv, int):
        return None
    if rs != (b, hkv * n, t, d):
        return None
    return k


def _key(m: Match, b: RewriteBuilder) -> Value:
    """K from Kᵀ: compose a feeding Transpose with the swap of the last two dims."""
    kt_ = m["kt"]
    t = kt_.producer
    if t is not None and t.op == "Transpose":
        p = tuple(t.attr("perm") or (3, 2, 1, 0))
        perm = (p[0], p[1], p[3], p[2])
        if perm == (0, 1, 2, 3):
            return t.inputs[0]
        return b.Transpose(t.inputs[0], perm=list(perm))
    return b.Transpose(kt_, perm=[0, 1, 3, 2])


def _causal(mask: np.ndarray, sq, t) -> bool:
    if not (isinstance(sq, int) and isinstance(t, int)) or sq != t or mask.ndim < 2:
        return False
    if mask.shape[-2:] != (sq, t):
        return False
    flat = mask.reshape(-1, sq, t)
    if not all(np.array_equal(flat[0], f) for f in flat[1:]):
        return False
    lower = np.tril(np.ones((sq, t), dtype=bool))
    m = flat[0]
    if m.dtype == np.bool_:
        return bool(np.array_equal(m, lower))
    m = m.astype(np.float64)
    return bool(np.all(m[lower] == 0.0) and np.all(m[~lower] <= MASKED))


def _check(m: Match) -> bool | str:
    qv, vv, ktv = m["q"], m["v"], m["kt"]
    b, hq, sq, d = qv.type.shape
    if ktv.type.shape[2] != d and isinstance(d, int) and isinstance(ktv.type.shape[2], int):
        return f"Kᵀ {ktv.type} does not contract with Q {qv.type}"
    for name in ("s", "d", "sq", "sk"):
        if name in m and m.const(name).size != 1:
            return f"the scale %{m[name].name} is not a scalar"
    if "fill" in m and float(np.max(m.const("fill"))) > MASKED:
        return f"Where fills with {float(np.max(m.const('fill')))}, not a masking value (<= {MASKED:g})"
    if "mask" in m:
        mt = m["mask"].type
        if mt.dtype.name != qv.type.dtype.name or mt.rank > 4:
            return f"mask {mt} is not an additive {qv.type.dtype.name} mask of rank <= 4"
    if vv.type.shape[3] is None:
        return "V's head size is unknown"
    return True


def _merge_users(y: Value):
    """The head merge after attention: ``Reshape(Transpose(y, [0, 2, 1, 3]), [B, S, H·Dv])``."""
    if len(y.uses) != 1:
        return None
    t = y.uses[0][0]
    if t.op != "Transpose" or tuple(t.attr("perm") or ()) != (0, 2, 1, 3) or len(t.outputs[0].uses) != 1:
        return None
    r = t.outputs[0].uses[0][0]
    if r.op != "Reshape" or r.outputs[0].type.rank != 3:
        return None
    return r


def _rewrite(m: Match, b: RewriteBuilder):
    qv, vv = m["q"], m["v"]
    scale = _scale(m)
    if qv.type.dtype.name == "f32":
        scale = attr_float(np.float32(scale))
    k = _key(m, b)
    k_src = _repeat_kv(k) or k
    v_src = _repeat_kv(vv) or vv
    hq = qv.type.shape[1]
    hkv = k_src.type.shape[1]
    if v_src.type.shape[1] != hkv:  # only one of K and V was repeated: keep the repeated forms
        k_src, v_src, hkv = k, vv, k.type.shape[1]
    if isinstance(hq, int) and isinstance(hkv, int) and hq % hkv:
        return None
    attrs: dict = {"scale": scale}
    mask = None
    sq, t = qv.type.shape[2], k_src.type.shape[2]
    if "mask" in m:
        mv = m["mask"]
        if mv.const and mv.data is not None and _causal(mv.data, sq, t):
            attrs["is_causal"] = 1
        else:
            mask = mv
    elif "cond" in m:
        cv = m["cond"]
        if cv.const and cv.data is not None and _causal(cv.data, sq, t):
            attrs["is_causal"] = 1
        else:
            mask = cv
    split = [_head_split(x) for x in (qv, k_src, v_src)]
    merge = _merge_users(m["pv"] if "pv" in m else m.root.outputs[0])
    if all(s is not None for s in split) and merge is not None:
        (q3, hq3), (k3, hk3), (v3, _) = split  # type: ignore[misc]
        y3 = b.Attention(q3, k3, v3, mask, q_num_heads=hq3, kv_num_heads=hk3, _outputs=1, **attrs)
        # hand back the 4-D view; canonicalize folds it into the head merge that follows
        dv = vv.type.shape[3]
        y4 = b.Reshape(y3, b.constant(np.array([0, 0, hq3, dv], dtype=np.int64), "heads"))
        return b.Transpose(y4, perm=[0, 2, 1, 3])
    return b.Attention(qv, k_src, v_src, mask, _outputs=1, **attrs)


ATTENTION = Rule("sdpa", PATTERN, _rewrite, check=_check, benefit=10,
                 doc="softmax(Q·Kᵀ·s + M)·V = Attention(Q, K, V, M, scale=s)")


@register_pass("fuse-attention")
class FuseAttention(RewritePass):
    """Fuse scaled dot-product attention (scale, causal/additive mask, GQA) into Attention."""

    def rules(self):
        return [ATTENTION]
