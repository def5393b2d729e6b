"""Elementwise ops: the generic recipe (ports and type letters from the spec, operands that
broadcast, inputs inside the op's domain) and the few ops that need more."""

from __future__ import annotations

import math

from ....ir.ops import get_spec
from ....ir.ops.spec import OpSpec
from .._context import FLOATS, GenContext, Skip, dtype_limits
from . import recipe

__all__ = ["DOMAINS", "DISCONTINUOUS", "ATTRS", "generic_elementwise", "generic_applies", "draw_attrs"]

INF = math.inf

#: where each input must lie (by input index) for a finite, well-conditioned result
DOMAINS: dict[str, dict[int, tuple[float, float]]] = {
    "Sqrt": {0: (0.1, INF)}, "Log": {0: (0.1, INF)}, "Reciprocal": {0: (0.25, INF)},
    "Acosh": {0: (1.1, INF)}, "Atanh": {0: (-0.9, 0.9)}, "Asin": {0: (-0.95, 0.95)}, "Acos": {0: (-0.95, 0.95)},
    "Tan": {0: (-1.3, 1.3)}, "Exp": {0: (-INF, 7.0)}, "Sinh": {0: (-6.0, 6.0)}, "Cosh": {0: (-6.0, 6.0)},
    "Softplus": {0: (-INF, 20.0)}, "Mish": {0: (-INF, 20.0)},
    "Div": {1: (0.25, INF)}, "Pow": {0: (0.1, 8.0), 1: (-3.0, 3.0)}, "Mod": {1: (1.0, INF)},
    "BitShift": {0: (0.0, 16.0), 1: (0.0, 3.0)},
}

#: ops whose result jumps as an input crosses a threshold: they read only exact values (see _context)
DISCONTINUOUS = frozenset({
    "Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual", "Floor", "Ceil", "Round", "Sign", "Mod",
    "Shrink", "ThresholdedRelu", "IsInf", "IsNaN",
})

#: attribute values to draw (the first is the spec's default, and where shrinking goes)
ATTRS: dict[str, dict[str, list]] = {
    "Gelu": {"approximate": ["none", "tanh"]},
    "LeakyRelu": {"alpha": [0.01, 0.2, 1.5]},
    "HardSigmoid": {"alpha": [0.2, 0.5], "beta": [0.5, 0.25]},
    "Elu": {"alpha": [1.0, 0.5, 2.0]},
    "Celu": {"alpha": [1.0, 0.5, 2.0]},
    "Selu": {"alpha": [1.67326319217681884765625, 1.5], "gamma": [1.05070102214813232421875, 1.25]},
    "ThresholdedRelu": {"alpha": [1.0, 0.0, -0.5]},
    "Swish": {"alpha": [1.0, 0.5, 1.75]},
    "Shrink": {"bias": [0.0, 0.5], "lambd": [0.5, 1.0, 0.0]},
    "IsInf": {"detect_negative": [1, 0], "detect_positive": [1, 0]},
    "BitShift": {"direction": ["LEFT", "RIGHT"]},
    "SwiGLU": {"alpha": [1.0, 1.702]},
}


def draw_attrs(ctx: GenContext, op: str, spec: OpSpec, table: dict[str, dict[str, list]] = ATTRS) -> dict:
    """Attributes from ``table`` (defaults left out, so a shrunk graph prints plainly); a required
    attribute with no values to draw makes the op ungeneratable here."""
    choices = table.get(op, {})
    out = {}
    for name, a in spec.attrs.items():
        if name in choices:
            v = ctx.choice(choices[name])
            if not (a.has_default and v == a.default):
                out[name] = v
        elif a.required:
            raise Skip(f"{op}: no values to draw for required attribute {name}")
    return out


def generic_applies(spec: OpSpec) -> bool:
    return spec.category == "elementwise" and 1 <= len(spec.inputs) <= 3 and len(spec.outputs) == 1


def generic_elementwise(ctx: GenContext, op: str) -> None:
    """Inputs for every port (variadic ones 1-3 times, optional ones now and then), the first one
    read from the pool, the others broadcasting with it; dtypes follow the type letters."""
    spec = get_spec(op)
    dom = DOMAINS.get(op, {})
    exact = op in DISCONTINUOUS
    ports = []
    for p in spec.inputs:
        if p.variadic:
            ports += [p] * (1 + ctx.integer(0, 2))
        elif p.optional:
            ports.append(p if ctx.flag() else None)
        else:
            ports.append(p)
    first = ports[0]
    x = ctx.pick(spec.allowed_dtypes(first.constraint), within=dom.get(0), exact=exact,
                 allow_dynamic=len([p for p in ports if p is not None]) == 1)
    letters = {first.constraint: x.type.dtype.name}
    inputs = [x]
    for i, p in enumerate(ports[1:], 1):
        if p is None:
            inputs.append(None)
            continue
        dt = letters.get(p.constraint) or ctx.dtype(spec.allowed_dtypes(p.constraint))
        letters[p.constraint] = dt
        inputs.append(ctx.operand_for(x, [dt], within=dom.get(i), exact=exact))
    ctx.add(op, inputs, draw_attrs(ctx, op, spec))


@recipe("Cast", "CastLike")
def cast(ctx: GenContext, op: str) -> None:
    """A target dtype first; float sources going to integers must be exact and inside the target's
    range (a float-to-int conversion outside it is undefined in C and differs between runtimes)."""
    spec = get_spec(op)
    to = ctx.dtype(spec.allowed_dtypes("T2"))
    within = None
    exact = False
    if to not in FLOATS:
        exact = True
        lo, hi = dtype_limits(to) if to != "bool" else (-INF, INF)
        within = (lo, hi)
    x = ctx.pick(spec.allowed_dtypes("T1"), within=within, exact=exact, allow_dynamic=op == "Cast")
    if x.type.dtype.name in FLOATS and to not in FLOATS:
        if not ctx.info_of(x).exact:
            raise Skip("inexact float to integer")
    elif x.type.dtype.name not in FLOATS and to not in FLOATS and to != "bool":
        lo, hi = dtype_limits(to)
        if not ctx.info_of(x).within(lo, hi):
            raise Skip("integer narrowing that wraps")  # defined, but runtimes disagree on the sign
    attrs = {}
    if to.startswith("f8") and ctx.rare():
        attrs["saturate"] = 0
    if op == "Cast":
        attrs["to"] = to
        ctx.add(op, [x], attrs)
    else:
        target = ctx.pick([to])
        ctx.add(op, [x, target], attrs)


@recipe("Clip")
def clip(ctx: GenContext, op: str) -> None:
    spec = get_spec(op)
    x = ctx.pick(spec.allowed_dtypes("T"), allow_dynamic=True)
    dt = x.type.dtype.name
    xi = ctx.info_of(x)
    bounds = []
    for _ in range(2):
        if ctx.flag():
            lo, hi = ctx.leaf_range(dt)
            bounds.append(ctx.leaf(dt, (), lo=lo, hi=hi))
        else:
            bounds.append(None)
    lo, hi = xi.lo, xi.hi
    if bounds[0] is not None:
        m = ctx.info_of(bounds[0])
        lo, hi = max(lo, m.lo), max(hi, m.hi)
    if bounds[1] is not None:
        m = ctx.info_of(bounds[1])
        lo, hi = min(lo, m.lo), min(hi, m.hi)
    ctx.add(op, [x] + bounds, ranges=[(lo, hi)])


@recipe("Where")
def where(ctx: GenContext, op: str) -> None:
    x = ctx.pick(get_spec(op).allowed_dtypes("T"))
    cond = ctx.operand_for(x, ["bool"], exact=True)
    y = ctx.operand_for(x)
    ctx.add(op, [cond, x, y])


@recipe("PRelu")
def prelu(ctx: GenContext, op: str) -> None:
    x = ctx.pick(get_spec(op).allowed_dtypes("T"))
    slope = ctx.operand_for(x, grow=False)  # ONNX: the slope broadcasts to X, not the other way
    ctx.add(op, [x, slope])


@recipe("SwiGLU")
def swiglu(ctx: GenContext, op: str) -> None:
    a = ctx.pick(get_spec(op).allowed_dtypes("T"))
    b = ctx.operand_for(a, same_shape=True)
    ctx.add(op, [a, b], draw_attrs(ctx, op, get_spec(op)))


@recipe("Mod")
def mod(ctx: GenContext, op: str) -> None:
    """Integer Mod either way; float Mod only as fmod (ONNX requires fmod=1 for floats)."""
    spec = get_spec(op)
    x = ctx.pick(spec.allowed_dtypes("T"), exact=True)
    dt = x.type.dtype.name
    lo, hi = (1.0, 4.0) if ctx.flag() or dt.startswith("u") else (-4.0, -1.0)
    y = ctx.operand_for(x, within=(lo, hi), exact=True)
    fmod = 1 if dt in FLOATS else ctx.choice([0, 1])
    ctx.add(op, [x, y], {"fmod": fmod} if fmod else {})


@recipe("RotaryEmbedding")
def rotary(ctx: GenContext, op: str) -> None:
    """X as [B, H, S, D] (or packed [B, S, H·D] with num_heads); cos/sin per position, either
    [B, S, R/2] or a [P, R/2] table read through position_ids; full or partial rotation."""
    dt = ctx.dtype(get_spec(op).allowed_dtypes("T"))
    b, s = ctx.dim(), ctx.dim()
    h = ctx.integer(1, 3)
    half = ctx.integer(1, 3)
    d = 2 * half + (2 * ctx.integer(0, 1) if ctx.rare() else 0)  # partial rotation leaves a tail
    rot = 2 * half
    attrs: dict = {}
    if rot != d:
        attrs["rotary_embedding_dim"] = rot
    if ctx.flag():
        attrs["interleaved"] = 1
    packed = ctx.rare()
    if packed:
        x = ctx.pick([dt], shape=(b, s, h * d))
        attrs["num_heads"] = h
    else:
        x = ctx.pick([dt], shape=(b, h, s, d))
    if ctx.flag():
        p = ctx.integer(1, 6)
        cos = ctx.leaf(dt, (p, half), lo=-1.0, hi=1.0)
        sin = ctx.leaf(dt, (p, half), lo=-1.0, hi=1.0)
        pos = ctx.leaf("i64", (b, s), lo=0, hi=p - 1)
        inputs = [x, cos, sin, pos]
    else:
        cos = ctx.leaf(dt, (b, s, half), lo=-1.0, hi=1.0)
        sin = ctx.leaf(dt, (b, s, half), lo=-1.0, hi=1.0)
        inputs = [x, cos, sin]
    m = ctx.info_of(x).magnitude
    ctx.add(op, inputs, attrs, ranges=[(-2 * m, 2 * m)])
