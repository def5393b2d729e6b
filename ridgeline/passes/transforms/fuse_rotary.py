"""``fuse-rotary``: rotary position embedding (RoPE, rotate-half and interleaved) → ``RotaryEmbedding``
(ONNX opset 23).

The math matched, with x of shape [B, H, S, D] split into halves x₁ = x[..., :D/2] and
x₂ = x[..., D/2:], and per-position angles θ of shape [B, S, D/2]::

    y = x · cos(cat(θ, θ)) + cat(−x₂, x₁) · sin(cat(θ, θ))          (HF ``apply_rotary_pos_emb``)
      = RotaryEmbedding(x, cos θ, sin θ)                            (non-interleaved)

The cos/sin tables are unsqueezed at axis 1 to broadcast over heads, and may carry a constant
``attention_scaling`` factor, which moves onto the half-size tables. A second rule rotates before
the head split instead of after it (``num_heads``, 3-D input), so that ``fuse-attention`` can use
its 3-D form and drop the layout ops around the attention. A third folds partial rotation
(``cat(RoPE(x[..., :r]), x[..., r:])``, GPT-NeoX's ``rotary_pct``) into ``rotary_embedding_dim``.
"""

from __future__ import annotations

import numpy as np

from ...ir import Node
from ..registry import register_pass
from ..rewriter import Const, Match, OneOf, RewriteBuilder, RewritePass, Rule, Var, ops

__all__ = ["INTERLEAVED", "LAYOUT_3D", "PARTIAL", "ROTARY", "FuseRotary"]

x, theta = Var("x", rank=4), Var("theta", rank=3)


def _table(fn: str, name: str):
    """unsqueeze(cos(cat(θ, θ)) [· scale], 1): shared by every RoPE of the model."""
    wave = getattr(ops, fn)(ops.Concat(theta, theta, _uses="any", axis=lambda a: a in (-1, 2) or "not the last axis"),
                            _uses="any")
    scaled = OneOf(ops.Mul(wave, Const(name=f"{name}_scale"), _uses="any"), wave)
    # once dims are bound, fold-constants has computed the whole table: [B|1, 1, S, D]
    return OneOf(ops.Unsqueeze(scaled, Var(), _name=name, _uses="any"), Const(name=f"{name}_table"))


half1 = ops.Slice(x, Var(), Var(), Var(), _name="x1")
half1_steps = ops.Slice(x, Var(), Var(), Var(), Var(), _name="x1")
half2 = ops.Slice(x, Var(), Var(), Var(), _name="x2")
half2_steps = ops.Slice(x, Var(), Var(), Var(), Var(), _name="x2")
rotated = ops.Concat(ops.Neg(OneOf(half2, half2_steps)), OneOf(half1, half1_steps), _name="rot")
PATTERN = ops.Add(ops.Mul(x, _table("Cos", "cos")), ops.Mul(rotated, _table("Sin", "sin")))


def _const_list(n: Node, i: int) -> list[int] | None:
    if i >= len(n.inputs) or n.inputs[i] is None:
        return None
    v = n.inputs[i]
    if v.data is None:
        return None
    return [int(a) for a in np.asarray(v.data).reshape(-1)]


def _slice(n: Node, rank: int):
    starts, ends, axes = _const_list(n, 1), _const_list(n, 2), _const_list(n, 3)
    steps = _const_list(n, 4) or [1]
    if not starts or not ends or not axes or len(starts) != 1 or steps != [1]:
        return None
    return starts[0], ends[0], axes[0] % rank


def _check(m: Match) -> bool | str:
    xt = m["x"].type
    d = xt.shape[3]
    if not isinstance(d, int) or d % 2:
        return f"head size {d} is not a known even number"
    h = d // 2
    s1, s2 = _slice(m.node("x1"), 4), _slice(m.node("x2"), 4)
    if s1 is None or s2 is None or s1[2] != 3 or s2[2] != 3:
        return "the halves are not constant slices of the last axis"
    if s1[0] != 0 or s1[1] != h or s2[0] not in (h, h - d) or s2[1] < d:
        return f"slices {s1[:2]} and {s2[:2]} are not the two halves of {d}"
    if m.node("rot").attr("axis") % 4 != 3:
        return "the rotated halves are not concatenated on the last axis"
    if "cos_table" in m or "sin_table" in m:
        return _check_tables(m, xt, h)
    for t in ("cos", "sin"):
        if _const_list(m.node(t), 1) != [1]:
            return f"the {t} table is not unsqueezed at axis 1"
        if f"{t}_scale" in m and m.const(f"{t}_scale").size != 1:
            return f"the {t} scale is not a scalar"
    th = m["theta"].type.shape
    if th[2] != h or th[1] != xt.shape[2] or th[0] not in (xt.shape[0], 1):
        return f"angles {m['theta'].type} do not match x {xt}"
    if m["theta"].type.dtype != xt.dtype:
        return "angles and x have different dtypes"
    return True


def _check_tables(m: Match, xt, h: int) -> bool | str:
    """Folded tables: both constant, [B|1, 1, S, D], the two halves equal (cat(θ, θ))."""
    if "cos_table" not in m or "sin_table" not in m:
        return "one of the cos/sin tables is folded to a constant, the other is not"
    for t in ("cos", "sin"):
        c = m.const(f"{t}_table")
        if c.ndim != 4 or c.shape[1] != 1 or c.shape[2] != xt.shape[2] or c.shape[3] != 2 * h \
                or c.shape[0] not in (xt.shape[0], 1):
            return f"the constant {t} table {c.shape} is not [B, 1, S, D] for x {xt}"
        if not np.array_equal(c[..., :h], c[..., h:]):
            return f"the constant {t} table is not cat(θ, θ) (its halves differ)"
    if m.const("cos_table").dtype != xt.dtype.np_dtype:
        return "the tables and x have different dtypes"
    return True


def _rewrite(m: Match, b: RewriteBuilder):
    if "cos_table" in m:
        h = m["x"].type.shape[3] // 2
        tables = [b.constant(np.ascontiguousarray(m.const(f"{t}_table")[:, 0, :, :h]), f"{t}_half")
                  for t in ("cos", "sin")]
        return b.RotaryEmbedding(m["x"], tables[0], tables[1])
    tables = []
    for fn, t in (("Cos", "cos"), ("Sin", "sin")):
        table = b.op(fn, m["theta"], _names=[f"{m['theta'].name}_{t}"])
        if f"{t}_scale" in m:
            table = b.Mul(table, m[f"{t}_scale"])
        tables.append(table)
    return b.RotaryEmbedding(m["x"], tables[0], tables[1])


ROTARY = Rule("rope-rotate-half", PATTERN, _rewrite, check=_check, benefit=5,
              doc="x·cos(cat(θ,θ)) + cat(−x₂, x₁)·sin(cat(θ,θ)) = RotaryEmbedding(x, cos θ, sin θ)")


# interleaved (GPT-J/CodeGen ``rotate_every_two``): pairs (x₂ᵢ, x₂ᵢ₊₁) rotate by θᵢ, the tables
# repeat each angle twice (repeat_interleave), and the rotated tensor is stack(−x_odd, x_even).flatten
#     y = x · C + flatten(stack(−x[..., 1::2], x[..., 0::2])) · S,   C[..., 2i] = C[..., 2i+1] = cos θᵢ
#       = RotaryEmbedding(x, C[..., ::2], S[..., ::2], interleaved=1)
even = ops.Slice(x, Var(), Var(), Var(), Var(), _name="xe")
odd = ops.Slice(x, Var(), Var(), Var(), Var(), _name="xo")
pairs = ops.Concat(ops.Unsqueeze(ops.Neg(odd), Var(), _name="u1"), ops.Unsqueeze(even, Var(), _name="u2"),
                   _name="pairs")
PATTERN_INTERLEAVED = ops.Add(ops.Mul(x, Var("cos_t", rank=4)),
                              ops.Mul(ops.Reshape(pairs, Var(), _name="flat"), Var("sin_t", rank=4)))


def _step_slice(n: Node, rank: int):
    starts, ends, axes, steps = (_const_list(n, i) for i in (1, 2, 3, 4))
    if not starts or not ends or not axes or not steps or len(starts) != 1:
        return None
    return starts[0], ends[0], axes[0] % rank, steps[0]


def _repeated_pairs(v, depth: int = 0) -> bool:
    """Whether v[..., 2i] == v[..., 2i+1] everywhere, from how v is computed: a constant checked
    entry by entry, a function applied elementwise (Cos, Sin, a scalar factor, Unsqueeze at a
    leading axis) of such a value, or stack((t, t), -1).flatten(-2) of one t."""
    if depth > 6:
        return False
    if v.data is not None:
        a = np.asarray(v.data)
        return a.ndim >= 1 and a.shape[-1] % 2 == 0 and np.array_equal(a[..., 0::2], a[..., 1::2])
    n = v.producer
    if n is None:
        return False
    if n.op in ("Cos", "Sin", "Neg", "Cast"):
        return _repeated_pairs(n.inputs[0], depth + 1)
    if n.op == "Mul":
        a, b = n.inputs
        for t, c in ((a, b), (b, a)):
            if c.data is not None and np.asarray(c.data).size == 1:
                return _repeated_pairs(t, depth + 1)
        return False
    if n.op == "Unsqueeze":
        axes = _const_list(n, 1)
        return axes is not None and all(a % n.outputs[0].type.rank != n.outputs[0].type.rank - 1 for a in axes) \
            and _repeated_pairs(n.inputs[0], depth + 1)
    if n.op == "Reshape":  # flatten(-2) of stack((t, t), -1): [..., R, 2] -> [..., 2R]
        c = n.inputs[0].producer
        if c is None or c.op != "Concat" or len(c.inputs) != 2 or c.attr("axis") % c.outputs[0].type.rank \
                != c.outputs[0].type.rank - 1 or c.outputs[0].type.shape[-1] != 2:
            return False
        srcs = [u.producer for u in c.inputs]
        if any(s is None or s.op != "Unsqueeze" for s in srcs) or srcs[0].inputs[0] is not srcs[1].inputs[0]:
            return False
        return list(n.outputs[0].type.shape[:-1]) == list(c.outputs[0].type.shape[:-2])
    return False


def _check_interleaved(m: Match) -> bool | str:
    xt = m["x"].type
    d = xt.shape[3]
    if not isinstance(d, int) or d % 2:
        return f"head size {d} is not a known even number"
    e, o = _step_slice(m.node("xe"), 4), _step_slice(m.node("xo"), 4)
    if e is None or o is None or e[2] != 3 or o[2] != 3 or e[3] != 2 or o[3] != 2:
        return "the halves are not constant step-2 slices of the last axis"
    if e[0] != 0 or o[0] != 1 or e[1] < d or o[1] < d:
        return "the slices are not the even and odd elements"
    for u in ("u1", "u2"):
        if _const_list(m.node(u), 1) not in ([-1], [4]):
            return "the halves are not stacked on a new last axis"
    if m.node("pairs").attr("axis") % 5 != 4:
        return "the halves are not stacked on the last axis"
    if list(m.node("flat").outputs[0].type.shape) != list(xt.shape):
        return "the stacked pairs are not flattened back to x's shape"
    for t in ("cos_t", "sin_t"):
        tt = m[t].type
        if tt.dtype != xt.dtype or tt.shape[1] != 1 or tt.shape[2] != xt.shape[2] or tt.shape[3] != d \
                or tt.shape[0] not in (xt.shape[0], 1):
            return f"the table {tt} is not [B, 1, S, D] for x {xt}"
        if not _repeated_pairs(m[t]):
            return f"the table %{m[t].name} does not repeat each angle for both elements of a pair"
    return True


def _rewrite_interleaved(m: Match, b: RewriteBuilder):
    d = m["x"].type.shape[3]
    i64 = lambda name, *v: b.constant(np.array(v, dtype=np.int64), name)
    halves = [b.Squeeze(b.Slice(m[t], i64("i0", 0), i64("id", d), i64("ilast", -1), i64("i2", 2)), i64("i1", 1))
              for t in ("cos_t", "sin_t")]
    return b.RotaryEmbedding(m["x"], halves[0], halves[1], interleaved=1)


INTERLEAVED = Rule("rope-interleaved", PATTERN_INTERLEAVED, _rewrite_interleaved, check=_check_interleaved,
                   benefit=5, doc="x·C + flatten(stack(−x_odd, x_even))·S = RotaryEmbedding(x, C[..., ::2], "
                                  "S[..., ::2], interleaved=1) when C, S repeat each angle twice")


def _head_split_of(v):
    from .fuse_attention import _head_split
    return _head_split(v)


def _layout_check(m: Match) -> bool | str:
    n = m.node("rope")
    split = _head_split_of(m["x4"])
    if split is None:
        return f"%{m['x4'].name} is not a head split of a [B, S, H·D] tensor"
    # a 4-D input ignores num_heads; exporters (torch at opset 23) still set it, to H
    if n.attr("num_heads") and n.attr("num_heads") != split[1]:
        return f"num_heads={n.attr('num_heads')} is not the head split's {split[1]} heads"
    return True


def _layout(m: Match, b: RewriteBuilder):
    n = m.node("rope")
    x3, heads = _head_split_of(m["x4"])
    y3 = b.RotaryEmbedding(*[x3] + list(n.inputs[1:]), **{**n.attrs, "num_heads": heads})
    d = m["x4"].type.shape[3]
    y4 = b.Reshape(y3, b.constant(np.array([0, 0, heads, d], dtype=np.int64), "heads"))
    return b.Transpose(y4, perm=[0, 2, 1, 3])


# RoPE(Transpose(Reshape(x, [B, S, H, D]))) = Transpose(Reshape(RoPE₃ᴅ(x, num_heads=H))): the head
# split moves after the rotation, where fuse-attention's 3-D form can absorb it.
LAYOUT_3D = Rule("rope-layout-3d", OneOf(ops.RotaryEmbedding(Var("x4", rank=4), Var(), Var(), _name="rope"),
                                         ops.RotaryEmbedding(Var("x4", rank=4), Var(), Var(), Var(), _name="rope")),
                 _layout, check=_layout_check, benefit=1,
                 doc="RoPE(head_split(x)) = head_split(RoPE_3d(x, num_heads))")


def _partial_check(m: Match) -> bool | str:
    xt, rope = m["xp"].type, m.node("prope")
    d = xt.shape[3]
    if not isinstance(d, int):
        return f"head size {d} is not a known number"
    if rope.attr("rotary_embedding_dim") or rope.attr("num_heads") and rope.inputs[0].type.rank != 4:
        return "the RotaryEmbedding already rotates part of its input"
    a, c = _slice(m.node("pa"), 4), _slice(m.node("pb"), 4)
    if a is None or c is None or a[2] != 3 or c[2] != 3 or m.node("pcat").attr("axis") % 4 != 3:
        return "not constant slices of the last axis concatenated back on it"
    r = a[1]
    if a[0] != 0 or not 0 < r < d or r % 2 or c[0] not in (r, r - d) or c[1] < d:
        return f"slices {a[:2]} and {c[:2]} do not split head size {d} into a rotated prefix and the rest"
    return True


def _partial(m: Match, b: RewriteBuilder):
    rope = m.node("prope")
    r = _slice(m.node("pa"), 4)[1]
    return b.RotaryEmbedding(m["xp"], *rope.inputs[1:], **{**rope.attrs, "rotary_embedding_dim": r})


xp = Var("xp", rank=4)
_prefix = OneOf(ops.Slice(xp, Var(), Var(), Var(), _name="pa"), ops.Slice(xp, Var(), Var(), Var(), Var(), _name="pa"))
_rest = OneOf(ops.Slice(xp, Var(), Var(), Var(), _name="pb"), ops.Slice(xp, Var(), Var(), Var(), Var(), _name="pb"))
# cat(RoPE(x[..., :r]), x[..., r:]) = RoPE(x, rotary_embedding_dim=r) (GPT-NeoX's rotary_pct, Phi):
# the slices and the concat move inside the op
PARTIAL = Rule("rope-partial", ops.Concat(OneOf(ops.RotaryEmbedding(_prefix, Var(), Var(), _name="prope"),
                                                ops.RotaryEmbedding(_prefix, Var(), Var(), Var(), _name="prope")),
                                          _rest, _name="pcat"),
               _partial, check=_partial_check, benefit=3,
               doc="cat(RoPE(x[..., :r]), x[..., r:]) = RoPE(x, rotary_embedding_dim=r)")


@register_pass("fuse-rotary")
class FuseRotary(RewritePass):
    """Fuse rotate-half rotary position embeddings into RotaryEmbedding."""
    touches = ("rotary",)  # what check_pass generates for it
    rule_set = (ROTARY, INTERLEAVED, PARTIAL, LAYOUT_3D)
