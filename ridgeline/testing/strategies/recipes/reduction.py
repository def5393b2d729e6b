"""Reductions and row ops, with result bounds from the number of elements each output reduces."""

from __future__ import annotations

import math

import numpy as np

from ....ir.ops import FLOAT, INDEX, NUMERIC, get_spec
from .._context import FLOATS, GenContext, Skip
from . import recipe

__all__: list[str] = []


def _reduce_bounds(op: str, lo: float, hi: float, n: int) -> tuple[float, float]:
    m = max(abs(lo), abs(hi))
    if op == "ReduceSum":
        return n * lo, n * hi
    if op in ("ReduceMean", "ReduceMax", "ReduceMin"):
        return lo, hi
    if op == "ReduceProd":
        big = m ** n if m > 1 else 1.0
        return -big, big
    if op == "ReduceL1":
        return 0.0, n * m
    if op == "ReduceL2":
        return 0.0, math.sqrt(n) * m
    if op == "ReduceSumSquare":
        return 0.0, n * m * m
    if op == "ReduceLogSum":
        return math.log(max(lo, 1e-30)), math.log(n * hi) + 1e-6
    if op == "ReduceLogSumExp":
        return lo, hi + math.log(n) + 1e-6
    raise Skip(op)


#: ReduceLogSum is finite only on a positive sum; LogSumExp must not overflow before its log
_REDUCE_DOMAIN = {"ReduceLogSum": (0.1, math.inf), "ReduceLogSumExp": (-math.inf, 10.0)}


@recipe("ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
        "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp")
def reduce(ctx: GenContext, op: str) -> None:
    x = ctx.pick(get_spec(op).allowed_dtypes("T"), within=_REDUCE_DOMAIN.get(op))
    if x.type.dtype.name not in FLOATS and op in ("ReduceMean", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp"):
        raise Skip(f"{op} of integers rounds differently between runtimes")
    r = x.type.rank
    sizes = ctx.sizes(x.type.shape)
    attrs = {}
    if ctx.rare():
        attrs["keepdims"] = 0
    inputs = [x]
    if r and ctx.flag():
        axes = ctx.subset(list(range(r)), min_size=1)
        inputs.append(ctx.ints([a - r if ctx.flag() else a for a in axes]))
    elif ctx.rare():  # empty axes: everything, or nothing with noop_with_empty_axes
        inputs.append(ctx.ints(np.zeros(0, np.int64)))
        if ctx.flag():
            attrs["noop_with_empty_axes"] = 1
    if attrs.get("noop_with_empty_axes"):
        axes = []
    elif len(inputs) == 1 or not inputs[1].data.size:
        axes = list(range(r))
    n = int(np.prod([sizes[a % r] for a in axes], dtype=np.int64)) if axes else 1
    i = ctx.info_of(x)
    bounds = _reduce_bounds(op, i.lo, i.hi, max(n, 1))  # no axes: the op applied elementwise
    exact = i.exact if op in ("ReduceMax", "ReduceMin") else None
    ctx.add(op, inputs, attrs, ranges=[bounds], exact=exact)


@recipe("ArgMax", "ArgMin")
def arg(ctx: GenContext, op: str) -> None:
    x = ctx.pick(NUMERIC, min_rank=1, exact=True)
    r = x.type.rank
    axis = ctx.integer(-r, r - 1)
    attrs = {"axis": axis} if axis else {}
    if ctx.rare():
        attrs["keepdims"] = 0
    if ctx.flag():
        attrs["select_last_index"] = 1
    d = ctx.size(x.type.shape[axis])
    ctx.add(op, [x], attrs, ranges=[(0, d - 1)])


@recipe("Softmax", "LogSoftmax", "Hardmax")
def softmax(ctx: GenContext, op: str) -> None:
    x = ctx.pick(get_spec(op).allowed_dtypes("T"), min_rank=1, exact=op == "Hardmax")
    r = x.type.rank
    axis = ctx.integer(-r, r - 1)
    i = ctx.info_of(x)
    d = ctx.size(x.type.shape[axis])
    bounds = (-(i.hi - i.lo) - math.log(max(d, 1)) - 1e-6, 0.0) if op == "LogSoftmax" else (0.0, 1.0)
    ctx.add(op, [x], {"axis": axis} if axis != -1 else {}, ranges=[bounds])


@recipe("CumSum", "CumProd")
def cumulative(ctx: GenContext, op: str) -> None:
    x = ctx.pick(get_spec(op).allowed_dtypes("T"), min_rank=1)
    r = x.type.rank
    axis = ctx.integer(-r, r - 1)
    ax = ctx.ints([axis] if ctx.flag() else axis, ctx.choice(sorted(INDEX, reverse=True)))
    attrs = {}
    if ctx.flag():
        attrs["exclusive"] = 1
    if ctx.flag():
        attrs["reverse"] = 1
    i = ctx.info_of(x)
    d = ctx.size(x.type.shape[axis])
    if op == "CumSum":
        bounds = (d * min(i.lo, 0), d * max(i.hi, 0))
    else:
        m = max(abs(i.lo), abs(i.hi), 1.0)
        bounds = (-(m ** d), m ** d)
    ctx.add(op, [x, ax], attrs, ranges=[bounds])


@recipe("TopK")
def topk(ctx: GenContext, op: str) -> None:
    x = ctx.pick(NUMERIC, min_rank=1, exact=True, where=lambda v: any(isinstance(d, int) for d in v.type.shape))
    r = x.type.rank
    axis = ctx.choice([a for a in range(r) if isinstance(x.type.shape[a], int)])
    d = x.type.shape[axis]
    k = ctx.integer(1, d)
    attrs = {"axis": axis - r if ctx.flag() else axis}
    if attrs["axis"] == -1:
        del attrs["axis"]
    if ctx.flag():
        attrs["largest"] = 0
    i = ctx.info_of(x)
    ctx.add(op, [x, ctx.ints([k])], attrs, ranges=[(i.lo, i.hi), (0, d - 1)])


@recipe("Det")
def det(ctx: GenContext, op: str) -> None:
    n = ctx.integer(1, 3)
    lead = ctx.shape(max_rank=1)
    x = ctx.pick(FLOAT, shape=lead + (n, n))
    m = max(ctx.info_of(x).magnitude, 1.0)
    bound = math.factorial(n) * m ** n
    ctx.add(op, [x], ranges=[(-bound, bound)])


@recipe("NegativeLogLikelihoodLoss", "SoftmaxCrossEntropyLoss")
def loss(ctx: GenContext, op: str) -> None:
    """(N, C, d...) scores and (N, d...) class targets; with ``ignore_index``, targets are a
    constant that keeps one counted entry (a mean over no targets divides by zero)."""
    x = ctx.pick(FLOAT, min_rank=2, max_rank=3, static=True)
    n, c = x.type.shape[:2]
    tshape = (n,) + tuple(x.type.shape[2:])
    tdt = ctx.choice(sorted(INDEX, reverse=True))
    attrs = {}
    if ctx.rare():
        ignore = ctx.integer(0, c - 1)
        attrs["ignore_index"] = ignore
        data = ctx.rng().integers(0, c, size=tshape)
        data.reshape(-1)[0] = (ignore + 1) % c if c > 1 else ignore
        if c == 1:
            del attrs["ignore_index"]
        target = ctx.constant(data.astype(np.dtype(tdt.replace("i", "int"))), pool=False)
    else:
        target = ctx.leaf(tdt, tshape, lo=0, hi=c - 1)
    inputs = [x, target]
    wm = 1.0
    if ctx.flag():
        w = ctx.leaf(x.type.dtype.name, (c,), lo=0.25, hi=2.0)
        inputs.append(w)
        wm = 2.0 / 0.25  # a weighted mean divides by the counted weights
    red = ctx.choice(["mean", "sum", "none"])
    if red != "mean":
        attrs["reduction"] = red
    i = ctx.info_of(x)
    count = math.prod(tshape) if red == "sum" else 1
    per = (i.magnitude if op == "NegativeLogLikelihoodLoss" else (i.hi - i.lo) + math.log(c)) * wm * count
    outputs = 2 if op == "SoftmaxCrossEntropyLoss" and ctx.rare() else 1
    logp = (-(i.hi - i.lo) - math.log(c) - 1e-6, 0.0)
    ctx.add(op, inputs, attrs, outputs=outputs, ranges=[(-per, per), logp])
