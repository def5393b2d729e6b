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
* a constant mask that is exactly causal (0 on and below the diagonal, ≤ −10⁴ above) becomes
  ``is_causal=1``.

A query row whose keys are all masked is a softmax over nothing: exported graphs give it a
uniform average (additive finfo.min masks) and ``Attention`` gives zeros. An additive mask is
passed through as is, so the fused op computes what the graph did; ``where(C, ·, fill)`` becomes a
boolean mask, which differs from the graph only on such rows (padding queries nobody reads).

Three more rules shape any ``Attention`` node, fused here or written by an exporter:

* ``repeat-kv``: K and V that are ``repeat_kv`` copies of Hkv heads are read before the repeat
  (torch's opset-23 export repeats them before its native ``Attention``);

* ``kv-cache``: K and V built as ``Concat(past, new)`` on the sequence axis become the op's
  ``past_key``/``past_value`` inputs, and its ``present_*`` outputs replace those Concats;
* ``head-layout-3d``: when Q, K and V are head splits of ``[B, S, H·D]`` tensors
  (``Transpose(Reshape(x, [B, S, H, D]), [0, 2, 1, 3])``) and the result is merged back the same
  way, the 3-D form (``q_num_heads``/``kv_num_heads``) absorbs all of those reshapes and transposes.
"""

from __future__ import annotations

import numpy as np

from ...ir import Value
from ..registry import register_pass
from ..rewriter import Const, Match, OneOf, RewriteBuilder, RewritePass, Rule, Var, ops
from ._norm import attr_float

__all__ = ["ATTENTION", "KV_CACHE", "LAYOUT_3D", "REPEAT_KV", "FuseAttention"]

#: fill values at or below this count as "masked" (exporters use -inf, finfo.min or -10000)
MASKED = -1.0e4


def _last_axis(axis) -> bool | str:
    return axis == -1 or axis == 3 or f"softmax over axis {axis}, not the keys"


def _scaled(x, mul: str, div: str):
    """``x``, ``x·c`` or ``x/c`` with a scalar constant ``c`` (bound as ``mul`` or ``div``)."""
    return OneOf(ops.Mul(x, Const(name=mul, scalar=True)), ops.Div(x, Const(name=div, scalar=True)), x)


q, kt, v = Var("q", rank=4), Var("kt", rank=4), Var("v", rank=4)
# the scale may sit on Q, on Kᵀ, on both (√s·√s, the SDPA decomposition), on the scores, or several
qk = ops.MatMul(_scaled(q, "sq", "dq"), _scaled(kt, "sk", "dk"), _name="qk")
scaled = _scaled(qk, "s", "d")
masked = OneOf(ops.Add(ops.Add(scaled, Var("mask")), Var("mask2")),
               ops.Add(scaled, Var("mask")),
               ops.Where(Var("cond", dtype="bool"), scaled, Const(name="fill")),
               scaled)
sm = ops.Softmax(masked, _name="sm", axis=_last_axis)
# the fully-masked-row guard: where(isnan(P), 0, P) — what Attention does on such rows anyway
probs = OneOf(sm, ops.Where(ops.IsNaN(sm), Const(0.0), sm, _name="guard"))


def _attention_shaped(n) -> bool | str:
    """Only a MatMul reading a softmax (maybe through the guard) is a candidate, so ``--explain``
    names an attention sub-graph that almost matched rather than any MatMul of the model."""
    p = n.inputs[0].producer if n.inputs and n.inputs[0] is not None else None
    if p is not None and p.op == "Where":
        p = next((i.producer for i in p.inputs if i is not None and i.producer is not None
                  and i.producer.op == "Softmax"), p)
    return p is not None and p.op == "Softmax" or "its first operand is not a softmax (not attention-shaped)"


PATTERN = ops.MatMul(probs, v, _name="pv", _where=_attention_shaped)


def _scale(m: Match) -> float:
    s = 1.0
    for name in ("s", "sq", "sk"):
        if name in m:
            s *= m.scalar(name)
    for name in ("d", "dq", "dk"):
        if name in m:
            s /= m.scalar(name)
    return s


def _head_split(x: Value):
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
    """``Reshape(Expand(Unsqueeze(K, [2]), [B, Hkv, n, T, D]), [B, Hkv·n, T, D])`` (or Tile by
    ``[1, 1, n, 1, 1]``) → K, else None."""
    r = x.producer
    if r is None or r.op != "Reshape":
        return None
    e = r.inputs[0].producer
    if e is None or e.op not in ("Expand", "Tile"):
        return None
    if e.op == "Tile":  # Tile(Unsqueeze(K, 2), [1, 1, n, 1, 1]) repeats like the Expand
        reps = e.inputs[1].data if e.inputs[1] is not None else None
        if reps is None or [int(a) for a in np.asarray(reps).reshape(-1)][:2] + \
                [int(a) for a in np.asarray(reps).reshape(-1)][3:] != [1, 1, 1, 1]:
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


def _unflattened_transpose(kt_: Value):
    """``Kᵀ = Reshape(Transpose(Reshape(K, [N, T, D]), [0, 2, 1]), [B, H, D, T])`` → K, else None
    (the dynamo exporter's spelling of ``K.transpose(-2, -1)``)."""
    r2 = kt_.producer
    if r2 is None or r2.op != "Reshape":
        return None
    t = r2.inputs[0].producer
    if t is None or t.op != "Transpose" or tuple(t.attr("perm") or ()) != (0, 2, 1):
        return None
    r1 = t.inputs[0].producer
    if r1 is None or r1.op != "Reshape":
        return None
    k = r1.inputs[0]
    ks, flat, kts = k.type.shape, r1.outputs[0].type.shape, kt_.type.shape
    if len(ks) != 4 or len(flat) != 3 or flat[1:] != ks[2:] or kts != (ks[0], ks[1], ks[3], ks[2]):
        return None
    return k


def _key(m: Match, b: RewriteBuilder) -> Value:
    """K from Kᵀ: compose a feeding Transpose with the swap of the last two dims."""
    kt_ = m["kt"]
    k = _unflattened_transpose(kt_)
    if k is not None:
        return k
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
    d = qv.type.shape[3]
    if ktv.type.shape[2] != d and isinstance(d, int) and isinstance(ktv.type.shape[2], int):
        return f"Kᵀ {ktv.type} does not contract with Q {qv.type}"
    for name in ("s", "d", "sq", "sk", "dq", "dk"):
        if name in m and m.const(name).size != 1:
            return f"the scale %{m[name].name} is not a scalar"
    if "fill" in m and float(np.max(m.const("fill"))) > MASKED:
        return f"Where fills with {float(np.max(m.const('fill')))}, not a masking value (<= {MASKED:g})"
    for name in ("mask", "mask2"):
        if name in m:
            mt = m[name].type
            if mt.dtype.name != qv.type.dtype.name or mt.rank > 4:
                return f"mask {mt} is not an additive {qv.type.dtype.name} mask of rank <= 4"
    if vv.type.shape[3] is None:
        return "V's head size is unknown"
    return True


def _data_users(v: Value) -> list:
    """Users that read the values of ``v`` (a Shape only reads its type, which a rewrite keeps)."""
    return [u for u, _ in v.uses if u.op not in ("Shape", "Size")]


def _merge_users(y: Value):
    """The head merge after attention: ``Reshape(Transpose(y, [0, 2, 1, 3]), [B, S, H·Dv])``."""
    users = _data_users(y)
    if len(users) != 1:
        return None
    t = users[0]
    if t.op != "Transpose" or tuple(t.attr("perm") or ()) != (0, 2, 1, 3):
        return None
    after = _data_users(t.outputs[0])
    if len(after) != 1:
        return None
    r = after[0]
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
    if "mask2" in m:
        mask = b.Add(m["mask"], m["mask2"])
    elif "mask" in m or "cond" in m:
        mv = m["mask"] if "mask" in m else m["cond"]
        if mv.const and mv.data is not None and _causal(mv.data, sq, t):
            attrs["is_causal"] = 1
        else:
            mask = mv
    return b.Attention(qv, k_src, v_src, mask, _outputs=1, **attrs)


# ------------------------------------------------------------------ the layout of an Attention node
def _attention_node(n) -> bool | str:
    if len(n.outputs) not in (1, 3):
        return "the Attention node also returns its QK product"
    if n.attr("q_num_heads") is not None:
        return "already in the 3-D form"
    return True


att_inputs = [Var("q", rank=4), Var("k", rank=4), Var("v", rank=4)]
ATT = OneOf(ops.Attention(*att_inputs, _name="att", _where=_attention_node),
            ops.Attention(*att_inputs, Var("mask"), _name="att", _where=_attention_node),
            ops.Attention(*att_inputs, Var("mask"), Var("pk"), Var("pv"), _name="att", _where=_attention_node))


def _concat_seq(v: Value):
    """``v = Concat(past, new, axis=2)`` of 4-D tensors → (past, new), else None."""
    c = v.producer
    if c is None or c.op != "Concat" or len(c.inputs) != 2 or c.attr("axis") % 4 != 2:
        return None
    past, new = c.inputs
    if past is None or new is None or past.type.rank != 4 or past.type.shape[:2] != new.type.shape[:2]:
        return None
    return past, new


def _feeds(users, node) -> bool:
    """Does any of ``users`` compute an input of ``node`` (directly or not)?"""
    targets = {id(u) for u in users}
    seen, todo = set(), [v for v in node.inputs if v is not None]
    while todo:
        p = todo.pop().producer
        if p is None or id(p) in seen:
            continue
        if id(p) in targets:
            return True
        seen.add(id(p))
        todo.extend(v for v in p.inputs if v is not None)
    return False


def _kv_check(m: Match) -> bool | str:
    if "pk" in m:
        return "the KV cache is already an input"
    if _concat_seq(m["k"]) is None or _concat_seq(m["v"]) is None:
        return "K and V are not Concat(past, new) along the sequence axis"
    att = m.node("att")
    others = [u for x in ("k", "v") for u, _ in m[x].uses if u is not att]
    if others and _feeds(others, att):  # e.g. the mask's length read off the cache: a cycle
        return "the concatenated cache feeds the attention's own inputs"
    return True


def _kv_cache(m: Match, b: RewriteBuilder):
    att = m.node("att")
    (pk, k), (pv, v) = _concat_seq(m["k"]), _concat_seq(m["v"])
    node = b.node("Attention", [m["q"], k, v, m.get("mask"), pk, pv], dict(att.attrs), outputs=3)
    y, present_k, present_v = node.outputs
    return {att.outputs[0]: y, m["k"]: present_k, m["v"]: present_v}


# Attention(Q, Concat(past_k, K), Concat(past_v, V)) = Attention(Q, K, V, past_k, past_v) and its
# present outputs are those Concats: the KV cache becomes explicit for backends and cost models.
KV_CACHE = Rule("kv-cache", ATT, _kv_cache, check=_kv_check, benefit=8,
                doc="Attention(Q, cat(Pk, K), cat(Pv, V)) = Attention(Q, K, V, Pk, Pv)")


def _layout_check(m: Match) -> bool | str:
    if any(_head_split(m[x]) is None for x in ("q", "k", "v")):
        return "Q, K and V are not all head splits of [B, S, H·D] tensors"
    if _merge_users(m.node("att").outputs[0]) is None:
        return "the result is not merged back to [B, S, H·D]"
    return True


def _layout(m: Match, b: RewriteBuilder):
    att = m.node("att")
    (q3, hq), (k3, hkv), (v3, _) = (_head_split(m[x]) for x in ("q", "k", "v"))
    attrs = {**att.attrs, "q_num_heads": hq, "kv_num_heads": hkv}
    ins = [q3, k3, v3, m.get("mask"), m.get("pk"), m.get("pv")]
    names = [att.outputs[0].name + "_3d"] + [v.name + "_3d" for v in att.outputs[1:]]
    node = b.node("Attention", ins, attrs, outputs=len(att.outputs), names=[b.graph.fresh_name(n) for n in names])
    # hand back the 4-D view; canonicalize folds it into the head merge that follows
    dv = m["v"].type.shape[3]
    y4 = b.Reshape(node.outputs[0], b.constant(np.array([0, 0, hq, dv], dtype=np.int64), "heads"))
    out = {att.outputs[0]: b.Transpose(y4, perm=[0, 2, 1, 3])}
    out.update(zip(att.outputs[1:], node.outputs[1:]))
    return out


def _repeat_check(m: Match) -> bool | str:
    if "pk" in m:
        return "the KV cache is an input (its heads would change too)"
    if len(m.node("att").outputs) != 1:
        return "the Attention returns its present K/V (their heads would change)"
    k, v = _repeat_kv(m["k"]), _repeat_kv(m["v"])
    if k is None or v is None:
        return "K and V are not both repeat_kv (Reshape(Expand(Unsqueeze(K, 2))))"
    hq, hkv = m["q"].type.shape[1], k.type.shape[1]
    if v.type.shape[1] != hkv or not isinstance(hq, int) or hq % hkv:
        return f"{hq} query heads do not share {hkv} KV heads evenly"
    return True


def _repeat(m: Match, b: RewriteBuilder):
    att = m.node("att")
    ins = [m["q"], _repeat_kv(m["k"]), _repeat_kv(m["v"]), m.get("mask")]
    return b.node("Attention", ins, dict(att.attrs), outputs=1).outputs[0]


# Attention(Q, repeat_kv(K), repeat_kv(V)) = Attention(Q, K, V): the op shares each of the Hkv
# heads among Hq/Hkv query heads itself (an exporter's Attention, e.g. torch's at opset 23, reads
# the repeated copies)
REPEAT_KV = Rule("repeat-kv", ATT, _repeat, check=_repeat_check, benefit=9,
                 doc="Attention(Q, repeat_kv(K), repeat_kv(V)) = Attention(Q, K, V) (GQA/MQA)")


# Attention(Tr(Rs(q)), Tr(Rs(k)), Tr(Rs(v))) merged back = Attention3D(q, k, v, q_num_heads=H):
# the head split and merge (2 nodes per tensor) move inside the op.
LAYOUT_3D = Rule("head-layout-3d", ATT, _layout, check=_layout_check, benefit=6,
                 doc="head split → Attention → head merge = Attention(q, k, v, q_num_heads, kv_num_heads)")


ATTENTION = Rule("sdpa", PATTERN, _rewrite, check=_check, benefit=10,
                 doc="softmax(Q·Kᵀ·s + M)·V = Attention(Q, K, V, M, scale=s)")


@register_pass("fuse-attention")
class FuseAttention(RewritePass):
    """Fuse scaled dot-product attention (scale, causal/additive mask, GQA) into Attention."""
    touches = ("attention", "masked-softmax")  # what check_pass generates for it
    rule_set = (ATTENTION, REPEAT_KV, KV_CACHE, LAYOUT_3D)

    def run(self, graph, ctx):
        result = super().run(graph, ctx)
        if result.modified:  # present_* now come out of the Attention: users of the old Concat may precede it
            graph.topological_sort()
        return result
