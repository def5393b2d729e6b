"""``canonicalize``: one spelling for each computation, so the fusions see one form.

Rules (each an identity of the math, checked on types, never on luck):

* no-ops: ``Identity(x)``; a Reshape/Squeeze/Unsqueeze/Flatten/Expand whose result type is its
  input's; ``Transpose`` by the identity permutation; ``Cast`` to the dtype it already has;
  ``x·1``, ``x/1``, ``x+0``, ``x−0`` and ``x ∧ true`` when the constant does not broadcast ``x``.
* chains: view∘view → one Reshape (when the result shape is known); Transpose∘Transpose → one
  Transpose (``perm = p₁[p₂]``); Cast∘Cast → one Cast when the first cast is exact.
* Gemm → MatMul + Add: ``Gemm(A, B, C) = α·op(A)·op(B) + β·C`` with the transposes made
  explicit, so matmul epilogues and attention see plain MatMuls.
* the flatten-around-matmul idiom of exported linear layers,
  ``Reshape(MatMul(Reshape(x, [M, K]), W) [+ b], [d₁, …, N]) = MatMul(Reshape(x, [d₁, …, K]), W) [+ b]``
  when ``M = d₁·…`` and ``b`` only varies along N (the inner Reshape vanishes when x already
  has that shape).
"""

from __future__ import annotations

import numpy as np

from ...ir import dims as D
from ...ir.types import TensorType
from ..registry import register_pass
from ..rewriter import Const, Match, OneOf, RewriteBuilder, RewritePass, Rule, Var, ops

__all__ = ["Canonicalize", "RULES"]


def _known(t: TensorType) -> bool:
    from ...ir.infer import is_unknown
    return not any(is_unknown(d) for d in t.shape)


def _same_type(m: Match, a: str, b: str) -> bool | str:
    ta, tb = m[a].type, m[b].type
    if ta == tb and _known(ta):
        return True
    if ta == tb:
        return f"type {ta} has a dim nobody knows: the result may not be x's shape"
    if str(ta) == str(tb):  # never "f32 differs from f32": say what differs
        return f"types print alike ({ta}) but differ: shape {ta.shape!r} vs {tb.shape!r}, {ta.dtype!r} vs {tb.dtype!r}"
    return f"type {ta} differs from {tb}"


# --------------------------------------------------------------------------- no-ops
x = Var("x")
y_view = OneOf(ops.Reshape(x, Var(), _name="y"), ops.Squeeze(x, _name="y"), ops.Squeeze(x, Var(), _name="y"),
               ops.Unsqueeze(x, Var(), _name="y"), ops.Flatten(x, _name="y"), ops.Expand(x, Var(), _name="y"))

IDENTITY = Rule("identity", ops.Identity(x), lambda m, b: m["x"],
                doc="Identity(x) = x")
NOOP_VIEW = Rule("noop-view", y_view, lambda m, b: m["x"], check=lambda m: _same_type(m, "x", "y"),
                 doc="a view or Expand that keeps the type is x itself")


def _identity_perm(perm) -> bool | str:
    return perm is not None and tuple(perm) == tuple(range(len(perm))) or f"perm {perm} is not the identity"


NOOP_TRANSPOSE = Rule("noop-transpose", ops.Transpose(x, perm=_identity_perm), lambda m, b: m["x"],
                      doc="Transpose(x, [0, 1, ..]) = x")


def _cast_noop(m: Match) -> bool | str:
    to = m.node("y").attr("to")
    return to == m["x"].type.dtype.name or f"casts {m['x'].type.dtype.name} to {to}"


NOOP_CAST = Rule("noop-cast", ops.Cast(x, _name="y"), lambda m, b: m["x"], check=_cast_noop,
                 doc="Cast(x, to=dtype(x)) = x")


def _exact_const(value: float):
    return Const(value, "c", rtol=0.0, atol=0.0, scalar=False)


def _neutral_check(m: Match) -> bool | str:
    return _same_type(m, "x", "y")


NEUTRAL = Rule("neutral-element",
               OneOf(ops.Mul(x, _exact_const(1.0), _name="y"), ops.Div(x, _exact_const(1.0), _name="y"),
                     ops.Add(x, _exact_const(0.0), _name="y"), ops.Sub(x, _exact_const(0.0), _name="y"),
                     ops.And(x, _exact_const(1.0), _name="y")),
               lambda m, b: m["x"], check=_neutral_check,
               doc="x·1 = x/1 = x+0 = x−0 = x ∧ true = x (when the constant does not broadcast x)")


# --------------------------------------------------------------------------- chains
def _view_chain_check(m: Match) -> bool | str:
    y = m["y"]
    if y.type.is_static:
        return True
    if y.type == m["x"].type and _known(y.type):
        if y.is_output:
            # an output keeps its node (its name is the interface), and a Reshape to a symbolic
            # shape cannot be written as a constant
            return f"the result {y.type} is a graph output with symbolic dims"
        return True
    return f"the result type {y.type} is not static"


def _view_chain(m: Match, b: RewriteBuilder):
    y = m["y"]
    if y.type == m["x"].type and not y.is_output:
        return m["x"]
    shape = np.array(m["y"].type.shape, dtype=np.int64)
    return b.Reshape(m["x"], b.constant(shape, "shape"))


# the inner view may have other users (a Shape of it, say): it stays for them, and is free anyway
inner_view = OneOf(ops.Reshape(x, Var(), _uses="any"), ops.Squeeze(x, _uses="any"),
                   ops.Squeeze(x, Var(), _uses="any"),
                   ops.Unsqueeze(x, Var(), _uses="any"), ops.Flatten(x, _uses="any"))
VIEW_CHAIN = Rule("view-chain",
                  OneOf(ops.Reshape(inner_view, Var(), _name="y"), ops.Squeeze(inner_view, _name="y"),
                        ops.Squeeze(inner_view, Var(), _name="y"), ops.Unsqueeze(inner_view, Var(), _name="y"),
                        ops.Flatten(inner_view, _name="y")),
                  _view_chain, check=_view_chain_check,
                  doc="view(view(x)) = Reshape(x, shape of the result)")


def _compose(m: Match, b: RewriteBuilder):
    p1 = m.node("t1").attr("perm")
    p2 = m.node("t2").attr("perm")
    rank = m["x"].type.rank
    p1 = tuple(range(rank))[::-1] if p1 is None else tuple(p1)
    p2 = tuple(range(rank))[::-1] if p2 is None else tuple(p2)
    perm = [p1[i] for i in p2]
    if perm == list(range(rank)):
        return m["x"]
    return b.Transpose(m["x"], perm=perm)


TRANSPOSE_CHAIN = Rule("transpose-chain", ops.Transpose(ops.Transpose(x, _name="t1", _uses="any"), _name="t2"),
                       _compose,
                       doc="Transpose(Transpose(x, p1), p2) = Transpose(x, p1[p2])")

# casts that change nothing about the values they carry
_EXACT = {
    "bool": {"i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "f16", "bf16", "f32", "f64"},
    "i8": {"i16", "i32", "i64", "f16", "bf16", "f32", "f64"},
    "u8": {"i16", "i32", "i64", "u16", "u32", "u64", "f16", "bf16", "f32", "f64"},
    "i16": {"i32", "i64", "f32", "f64"},
    "i32": {"i64", "f64"},
    "f16": {"f32", "f64"},
    "bf16": {"f32", "f64"},
    "f32": {"f64"},
}


def _cast_chain_check(m: Match) -> bool | str:
    src = m["x"].type.dtype.name
    mid = m.node("c1").attr("to")
    return mid in _EXACT.get(src, ()) or f"the first cast {src} -> {mid} may change values"


CAST_CHAIN = Rule("cast-chain", ops.Cast(ops.Cast(x, _name="c1"), _name="c2"),
                  lambda m, b: b.Cast(m["x"], to=m.node("c2").attr("to")), check=_cast_chain_check,
                  doc="Cast(Cast(x, A), B) = Cast(x, B) when x -> A is exact")


# --------------------------------------------------------------------------- Gemm → MatMul + Add
def _gemm(m: Match, b: RewriteBuilder):
    g = m.node("g")
    a, w = m["a"], m["w"]
    if g.attr("transA"):
        a = b.Transpose(a, perm=[1, 0])
    if g.attr("transB"):
        w = b.Transpose(w, perm=[1, 0])
    y = b.MatMul(a, w)
    dt = y.type.dtype.np_dtype
    if g.attr("alpha") != 1.0:
        y = b.Mul(y, b.constant(np.asarray(g.attr("alpha"), dtype=dt), "alpha"))
    c = m.get("c")
    if c is not None and g.attr("beta") != 0.0:
        if g.attr("beta") != 1.0:
            c = b.Mul(c, b.constant(np.asarray(g.attr("beta"), dtype=dt), "beta"))
        y = b.Add(y, c)
    if y.type != m["y"].type:  # C broadcast past A·B (Gemm allows it): keep Gemm
        return None
    return y


GEMM = Rule("gemm-to-matmul", OneOf(ops.Gemm(Var("a"), Var("w"), _name="g"),
                                    ops.Gemm(Var("a"), Var("w"), Var("c"), _name="g"), name="y"), _gemm,
            doc="Gemm(A, B, C) = α·op(A)·op(B) + β·C")


# --------------------------------------------------------------------------- flatten around matmul
def _flatten_check(m: Match) -> bool | str:
    xs, inner, out = m["x"].type.shape, m["x2"].type.shape, m["y"].type.shape
    w = m["w"].type.shape
    if len(inner) != 2 or len(w) != 2 or len(out) < 3:
        return "needs a 2-D flattened input, a 2-D weight and a result of rank >= 3"
    lead = tuple(out[:-1])
    if out[-1] != w[1] or D.product(lead) != inner[0]:
        return f"the outer reshape {m['y'].type} does not unflatten the matmul's rows {inner[0]}"
    if not (tuple(xs) == lead + (inner[1],) or all(isinstance(d, int) for d in lead) or tuple(xs[:len(lead)]) == lead):
        return f"{m['x'].type} cannot be reshaped to {lead + (inner[1],)} with a constant shape"
    bias = m.get("bias")
    if bias is not None:
        bs = bias.type.shape
        if any(d != 1 for d in bs[:-1]) or (bs and bs[-1] not in (1, w[1])) or len(bs) > len(out):
            return f"bias {bias.type} varies along more than the last dim"
    return True


def _flatten(m: Match, b: RewriteBuilder):
    x = m["x"]
    out = m["y"].type.shape
    rows = tuple(out[:-1]) + (m["x2"].type.shape[1],)
    if x.type.shape != rows:
        if all(isinstance(d, int) for d in rows):
            shape = rows
        else:  # symbolic leading dims: copy them from x (a 0 in Reshape's shape keeps that dim)
            shape = (0,) * (len(rows) - 1) + (rows[-1],)
        x = b.Reshape(x, b.constant(np.array(shape, dtype=np.int64), "shape"))
    y = b.MatMul(x, m["w"])
    bias = m.get("bias")
    if bias is not None:
        y = b.Add(y, bias)
    return y


flat = ops.Reshape(Var("x"), Var(), _name="x2")
MATMUL_FLATTEN = Rule("matmul-flatten",
                      OneOf(ops.Reshape(ops.MatMul(flat, Var("w")), Var(), _name="y"),
                            ops.Reshape(ops.Add(ops.MatMul(flat, Var("w")), Var("bias")), Var(), _name="y")),
                      _flatten, check=_flatten_check, benefit=2,
                      doc="Reshape(MatMul(Reshape(x, [M, K]), W) [+ b], [.., N]) = MatMul(x', W) [+ b]")

RULES = [IDENTITY, NOOP_VIEW, NOOP_TRANSPOSE, NOOP_CAST, NEUTRAL, VIEW_CHAIN, TRANSPOSE_CHAIN, CAST_CHAIN, GEMM,
         MATMUL_FLATTEN]


@register_pass("canonicalize")
class Canonicalize(RewritePass):
    """Remove no-ops, merge view/transpose/cast chains, turn Gemm into MatMul+Add."""
    touches = ("noise", "equal-axes", "Transpose", "Reshape", "Cast", "Gemm")  # what check_pass generates for it
    rule_set = RULES
