"""Contractions: MatMul (numpy semantics, batched and broadcast) and Gemm.

FLOPs are 2·M·N·K per output batch (one multiply and one add per MAC); bytes are both operands
and the result, which is what an untiled kernel moves. Tiling passes refine the traffic per
memory level in ``node.meta``; the cost models read that.
"""

from __future__ import annotations

from .. import dims as D
from . import envelopes
from ._util import broadcast
from .spec import NUMERIC, CostContext, InferContext, op

__all__ = ["matmul_shape"]


def matmul_shape(a: tuple, b: tuple) -> tuple:
    """numpy.matmul's result shape, with 1-D operands promoted and removed again."""
    if not a or not b:
        raise ValueError("MatMul operands must have rank >= 1")
    a2 = (1,) + a if len(a) == 1 else a
    b2 = b + (1,) if len(b) == 1 else b
    k1, k2 = a2[-1], b2[-2]
    if k1 != k2 and isinstance(k1, int) and isinstance(k2, int):
        raise ValueError(f"contraction dims differ: {a} @ {b}")
    batch = broadcast(a2[:-2], b2[:-2])
    out = batch + (a2[-2], b2[-1])
    if len(a) == 1:
        out = out[:-2] + out[-1:]
    if len(b) == 1:
        out = out[:-1]
    return out


def _matmul_flops(c: CostContext):
    k = c.in_shape(0)[-1]
    return 2 * c.out_numel(0) * k


@op("MatMul", inputs=["A: T", "B: T"], outputs=["Y: T"], types={"T": NUMERIC}, category="matmul",
    flops=_matmul_flops, since=13, envelope=envelopes.dot(0, 1))
def _matmul(ctx: InferContext):
    """Y = A @ B with numpy broadcasting of batch dims."""
    try:
        return [matmul_shape(ctx.shape(0), ctx.shape(1))]
    except ValueError as e:
        ctx.fail(str(e))


def _gemm_flops(c: CostContext):
    a = c.in_shape(0)
    k = a[0] if c.attr("transA") else a[1]
    extra = c.out_numel(0) * (2 if len(c.in_types) > 2 and c.in_types[2] is not None else 0)
    return 2 * c.out_numel(0) * k + extra


@op("Gemm", inputs=["A: T", "B: T", "C?: T"], outputs=["Y: T"], types={"T": NUMERIC},
    attrs={"alpha": ("float", 1.0), "beta": ("float", 1.0), "transA": ("int", 0), "transB": ("int", 0)},
    category="matmul", flops=_gemm_flops, since=13, envelope=envelopes.gemm)
def _gemm(ctx: InferContext):
    """Y = alpha · op(A) @ op(B) + beta · C, with 2-D A and B and C broadcast to Y."""
    a, b = ctx.shape(0), ctx.shape(1)
    if len(a) != 2 or len(b) != 2:
        ctx.fail(f"A and B must be 2-D, got {ctx.type(0)} and {ctx.type(1)}")
    m, k = (a[1], a[0]) if ctx.attr("transA") else a
    k2, n = (b[1], b[0]) if ctx.attr("transB") else b
    if isinstance(k, int) and isinstance(k2, int) and k != k2:
        ctx.fail(f"contraction dims differ: {k} vs {k2}")
    if ctx.has(2):
        try:
            out = broadcast(ctx.shape(2), (m, n))
        except ValueError:
            ctx.fail(f"C {ctx.type(2)} does not broadcast to ({m}, {n})")
        if out != (m, n) and None not in out:
            ctx.fail(f"C {ctx.type(2)} does not broadcast to ({m}, {n})")
    return [(m, n)]


def _zero_point_fits(ctx: InferContext, i: int, operand: tuple, row: bool) -> None:
    """A zero point is a scalar, or one per row of A (``[..., M, 1]`` or ``[M]``) / column of B."""
    if not ctx.has(i):
        return
    zp = ctx.shape(i)
    if D.product(zp) == 1 and len(zp) <= 1:
        return
    n = operand[-2] if row else operand[-1]
    if len(zp) == 1:
        if isinstance(zp[0], int) and isinstance(n, int) and zp[0] != n:
            ctx.fail(f"zero point {ctx.type(i)} has {zp[0]} entries for {n} {'rows' if row else 'columns'}")
        return
    want = tuple(operand[:-1]) + (1,) if row else tuple(operand[:-2]) + (1, operand[-1])
    if len(zp) != len(want) or any(isinstance(a, int) and isinstance(b, int) and a != b for a, b in zip(zp, want)):
        ctx.fail(f"zero point {ctx.type(i)} does not fit operand {list(operand)}")


@op("MatMulInteger", inputs=["A: T1", "B: T2", "a_zero_point?: T1", "b_zero_point?: T2"], outputs=["Y: i32"],
    types={"T1": {"i8", "u8"}, "T2": {"i8", "u8"}}, category="matmul", flops=_matmul_flops, since=10)
def _matmul_integer(ctx: InferContext):
    """``(A - a_zero_point) @ (B - b_zero_point)`` accumulated in i32; zero points are per tensor,
    per row of A or per column of B."""
    try:
        out = matmul_shape(ctx.shape(0), ctx.shape(1))
    except ValueError as e:
        ctx.fail(str(e))
    _zero_point_fits(ctx, 2, ctx.shape(0), row=True)
    _zero_point_fits(ctx, 3, ctx.shape(1), row=False)
    return [out]


def _qlinear_flops(c: CostContext):
    return _matmul_flops(c) + 4 * c.out_numel(0)  # the integer matmul, then requantization


@op("QLinearMatMul",
    inputs=["a: T1", "a_scale: TS", "a_zero_point: T1", "b: T2", "b_scale: TS", "b_zero_point: T2",
            "y_scale: TS", "y_zero_point: T3"],
    outputs=["y: T3"], types={"T1": {"i8", "u8"}, "T2": {"i8", "u8"}, "T3": {"i8", "u8"},
                              "TS": {"f32", "f16", "bf16"}},
    category="matmul", flops=_qlinear_flops, since=21)
def _qlinear_matmul(ctx: InferContext):
    """Quantized matmul: dequantize a and b, multiply, requantize with y's scale and zero point
    (round half to even, saturate). Scales are per tensor, per row of a or per column of b."""
    try:
        out = matmul_shape(ctx.shape(0), ctx.shape(3))
    except ValueError as e:
        ctx.fail(str(e))
    for i, operand, row in ((1, ctx.shape(0), True), (2, ctx.shape(0), True), (4, ctx.shape(3), False),
                            (5, ctx.shape(3), False)):
        _zero_point_fits(ctx, i, operand, row)
    for i in (6, 7):
        if D.product(ctx.shape(i)) != 1:
            ctx.fail(f"{ctx.spec.inputs[i].name} must have one element, got {ctx.type(i)}")
    return [out]


def parse_einsum(equation: str, shapes: list[tuple]) -> tuple[dict, tuple, tuple]:
    """Bind an einsum equation to operand shapes.

    Returns ``(sizes, ellipsis_dims, output_labels)``: the size of each letter, the broadcast
    dims that ``...`` stands for, and the output's labels (``"..."`` marks the ellipsis). Raises
    ``ValueError`` on a malformed equation or inconsistent sizes.
    """
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise ValueError(f"equation has {len(terms)} operand terms for {len(shapes)} inputs")
    sizes: dict[str, object] = {}
    ellipsis: tuple = ()
    counts: dict[str, int] = {}
    for term, shape in zip(terms, shapes):
        labels = _einsum_labels(term)
        n_ell = len(shape) - (len(labels) - (1 if "..." in labels else 0))
        if ("..." not in labels and n_ell != 0) or n_ell < 0:
            raise ValueError(f"term {term!r} does not match an operand of rank {len(shape)}")
        pos = 0
        for lab in labels:
            if lab == "...":
                ell = tuple(shape[pos:pos + n_ell])
                ellipsis = broadcast(ellipsis, ell)
                pos += n_ell
                continue
            d = shape[pos]
            pos += 1
            counts[lab] = counts.get(lab, 0) + 1
            prev = sizes.get(lab)
            if prev is None or prev == 1:
                sizes[lab] = d
            elif isinstance(prev, int) and isinstance(d, int) and d not in (prev, 1):
                raise ValueError(f"label {lab!r} is {prev} in one operand and {d} in another")
    if arrow:
        out = _einsum_labels(rhs)
        for lab in out:
            if lab != "..." and lab not in sizes:
                raise ValueError(f"output label {lab!r} appears in no input")
    else:
        out = (["..."] if any("..." in t for t in terms) else []) + sorted(l for l, n in counts.items() if n == 1)
    return sizes, ellipsis, tuple(out)


def _einsum_labels(term: str) -> list[str]:
    labels, i = [], 0
    while i < len(term):
        if term.startswith("...", i):
            labels.append("...")
            i += 3
        elif term[i].isalpha():
            labels.append(term[i])
            i += 1
        else:
            raise ValueError(f"bad character {term[i]!r} in einsum term {term!r}")
    if labels.count("...") > 1:
        raise ValueError(f"term {term!r} has more than one ellipsis")
    return labels


def _einsum_flops(c: CostContext):
    # every combination of all index values costs one multiply per extra operand and one add
    sizes, ell, _ = parse_einsum(c.attr("equation"), [c.in_shape(i) for i in range(len(c.in_types))])
    total = 1
    for d in list(sizes.values()) + list(ell):
        total = total * d
    return max(len(c.in_types), 1) * total


@op("Einsum", inputs=["Inputs*: T"], outputs=["Output: T"], types={"T": NUMERIC}, attrs={"equation": ("str",)},
    category="matmul", flops=_einsum_flops, since=28, envelope=envelopes.multilinear)
def _einsum(ctx: InferContext):
    """Einstein summation over the operands, as ``numpy.einsum`` (explicit or implicit output,
    ``...`` broadcasting)."""
    try:
        sizes, ell, out = parse_einsum(ctx.attr("equation"), [ctx.shape(i) for i in range(ctx.num_inputs)])
    except ValueError as e:
        ctx.fail(f"equation {ctx.attr('equation')!r}: {e}")
    shape: list = []
    for lab in out:
        shape.extend(ell if lab == "..." else (sizes[lab],))
    return [tuple(shape)]
