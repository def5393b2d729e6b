"""Contractions: operands whose inner dims agree and whose batch dims broadcast."""

from __future__ import annotations

import numpy as np

from ....ir.ops import NUMERIC, get_spec
from .._context import FLOATS, GenContext, dtype_limits
from . import recipe

__all__: list[str] = []


def _mag(ctx: GenContext, v) -> float:
    return ctx.info_of(v).magnitude


def _contract_bound(ctx: GenContext, a, b, k) -> tuple[float, float]:
    m = ctx.size(k) * _mag(ctx, a) * _mag(ctx, b)
    return -m, m


@recipe("MatMul")
def matmul(ctx: GenContext, op: str) -> None:
    a = ctx.pick(NUMERIC, min_rank=1)
    ash = tuple(a.type.shape)
    k = ash[-1]
    if len(ash) == 1 or ctx.rare():
        b_shape: tuple = (k,) if ctx.rare() or len(ash) == 1 else (k, ctx.dim())
    else:
        b_shape = (k, ctx.dim())
    batch = ash[:-2]
    if batch and len(b_shape) == 2 and ctx.flag():
        keep = ctx.integer(1, len(batch))
        b_shape = tuple(d if ctx.flag() else 1 for d in batch[len(batch) - keep:]) + b_shape

    def fits(v) -> bool:
        vs = tuple(v.type.shape)
        if not vs or (vs[0] if len(vs) == 1 else vs[-2]) != k:
            return False
        vb = vs[:-2]
        n = min(len(vb), len(batch))
        return all(x == y or x == 1 or y == 1 for x, y in zip(batch[len(batch) - n:], vb[len(vb) - n:]))
    cands = ctx.candidates([a.type.dtype.name], where=fits)
    b = ctx.choice(cands) if cands and ctx.flag() else ctx.leaf(a.type.dtype.name, b_shape)
    ctx.add(op, [a, b], ranges=[_contract_bound(ctx, a, b, k)])


@recipe("Gemm")
def gemm(ctx: GenContext, op: str) -> None:
    a = ctx.pick(get_spec(op).allowed_dtypes("T"), min_rank=2, max_rank=2)
    trans_a = ctx.flag()
    m, k = (a.type.shape[1], a.type.shape[0]) if trans_a else tuple(a.type.shape)
    n = ctx.dim()
    trans_b = ctx.flag()
    b = ctx.pick([a.type.dtype.name], shape=(n, k) if trans_b else (k, n))
    dt = a.type.dtype.name
    attrs = {}
    if trans_a:
        attrs["transA"] = 1
    if trans_b:
        attrs["transB"] = 1
    inputs = [a, b]
    cm = 0.0
    if ctx.flag():
        c_shape = ctx.choice([(m, n), (n,), (1, n), (m, 1), ()])
        c = ctx.pick([dt], shape=c_shape)
        inputs.append(c)
        cm = _mag(ctx, c)
    if dt in FLOATS:
        alpha, beta = ctx.choice([1.0, 0.5, 2.0]), ctx.choice([1.0, 0.5, -1.0])
        if alpha != 1.0:
            attrs["alpha"] = alpha
        if beta != 1.0:
            attrs["beta"] = beta
    else:
        alpha = beta = 1.0
    bound = abs(alpha) * ctx.size(k) * _mag(ctx, a) * _mag(ctx, b) + abs(beta) * cm
    ctx.add(op, inputs, attrs, ranges=[(-bound, bound)])


def _quant_operand(ctx: GenContext, dtypes, shape):
    dt = ctx.dtype(dtypes)
    lo, hi = dtype_limits(dt)
    return ctx.pick([dt], shape=shape, within=(lo, hi))


def _zero_point(ctx: GenContext, like, shape):
    dt = like.type.dtype.name
    lo, hi = dtype_limits(dt)
    return ctx.constant(ctx.random_array(dt, shape, max(lo, -8), min(hi, 8)), pool=False)


def _mk(ctx: GenContext):
    m, k, n = ctx.dim(static=True), ctx.dim(static=True), ctx.dim(static=True)
    lead = ctx.shape(max_rank=1, static=True)
    return lead, m, k, n


@recipe("MatMulInteger")
def matmul_integer(ctx: GenContext, op: str) -> None:
    lead, m, k, n = _mk(ctx)
    a = _quant_operand(ctx, {"u8", "i8"}, lead + (m, k))
    b = _quant_operand(ctx, {"u8", "i8"}, (k, n))
    inputs = [a, b]
    if ctx.flag():
        inputs.append(_zero_point(ctx, a, ctx.choice([(), (1,), (m,)])))
        if ctx.flag():
            inputs.append(_zero_point(ctx, b, ctx.choice([(), (1,), (n,)])))
    bound = k * 256 * 256
    ctx.add(op, inputs, ranges=[(-bound, bound)])


@recipe("QLinearMatMul")
def qlinear_matmul(ctx: GenContext, op: str) -> None:
    """Per-tensor scales and zero points (ONNX Runtime's case), now and then per row / column."""
    lead, m, k, n = _mk(ctx)
    a = _quant_operand(ctx, {"u8", "i8"}, lead + (m, k))
    b = _quant_operand(ctx, {"u8", "i8"}, (k, n))
    sdt = ctx.dtype({"f32", "f16", "bf16"})
    per = ctx.rare()
    a_scale = ctx.constant(ctx.rng().uniform(0.01, 0.1, (m,) if per else ()).astype(_np(sdt)), pool=False)
    a_zp = _zero_point(ctx, a, (m,) if per else ())
    b_scale = ctx.constant(ctx.rng().uniform(0.01, 0.1, (n,) if per else ()).astype(_np(sdt)), pool=False)
    b_zp = _zero_point(ctx, b, (n,) if per else ())
    ydt = ctx.dtype({"u8", "i8"})
    y_scale = ctx.constant(np.asarray(ctx.choice([0.05, 0.02, 0.1]), dtype=_np(sdt)), pool=False)
    y_zp = ctx.constant(np.asarray(ctx.integer(-4, 4) + (128 if ydt == "u8" else 0), dtype=_np(ydt)), pool=False)
    lo, hi = dtype_limits(ydt)
    ctx.add(op, [a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp], ranges=[(lo, hi)])


def _np(name: str):
    from ....ir.dtypes import DTYPES
    return DTYPES[name].np_dtype


# (equation, which labels are contracted away) — the forms attention, projections and
# diagonal/trace tricks write
_EINSUM = ["ij,jk->ik", "bij,bjk->bik", "ij->ji", "ii->i", "ij->", "i,i->", "i,j->ij", "bhqd,bhkd->bhqk",
           "...ij,...jk->...ik", "ij,jk", "ijk->kji", "bij->bj", "ij,ij->ij"]


@recipe("Einsum")
def einsum(ctx: GenContext, op: str) -> None:
    eq = ctx.choice(_EINSUM)
    lhs = eq.split("->")[0].split(",")
    labels = sorted({c for t in lhs for c in t if c.isalpha()})
    sizes = {c: ctx.dim(static=True) for c in labels}
    ell = ctx.shape(max_rank=2, static=True) if "..." in eq else ()
    dt = ctx.dtype(get_spec(op).allowed_dtypes("T"))
    ops = []
    for t in lhs:
        shape = []
        for c in t.replace("...", "."):
            shape.extend(ell if c == "." else (sizes[c],))
        ops.append(ctx.pick([dt], shape=tuple(shape)))
    # every output element sums at most the product of all label sizes of terms
    total = float(np.prod([sizes[c] for c in labels] + list(ell) or [1]))
    m = total
    for v in ops:
        m *= max(ctx.info_of(v).magnitude, 1.0)
    ctx.add(op, ops, {"equation": eq}, ranges=[(-m, m)])
