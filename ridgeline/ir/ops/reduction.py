"""Reductions and row-wise ops: Reduce*, ArgMax/ArgMin, Softmax, LogSoftmax, CumSum.

Reduce ops follow opset 18 (``axes`` is an optional input; empty axes reduce everything unless
``noop_with_empty_axes``). Frontends rewrite the older attribute form into this one.
"""

from __future__ import annotations

import math


from .._lazy import sympy
from . import envelopes
from ._util import normalize_axes, per_element, static_length
from .spec import FLOAT, INDEX, NUMERIC, CostContext, InferContext, op

__all__ = ["reduced_shape"]


def reduced_shape(shape: tuple, axes: list[int], keepdims: bool) -> tuple:
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def _reduce_flops(k):
    def flops(c: CostContext):
        return k * c.in_numel(0)
    return flops


_REDUCE = {
    "ReduceSum": 1, "ReduceMean": 1, "ReduceMax": 1, "ReduceMin": 1, "ReduceProd": 1,
    "ReduceL1": 2, "ReduceL2": 2, "ReduceSumSquare": 2, "ReduceLogSum": 1, "ReduceLogSumExp": 3,
}


def _declare_reduce(name, k):
    def infer(ctx: InferContext):
        shape = ctx.shape(0)
        keep = bool(ctx.attr("keepdims"))
        if ctx.has(1):
            axes = ctx.value(1)
            if axes is None:  # axes known only at run time: the rank still follows from their count
                n = static_length(ctx, 1)
                if n == 0:
                    return [shape if ctx.attr("noop_with_empty_axes") else (() if not keep else (1,) * len(shape))]
                return [(None,) * (len(shape) if keep else len(shape) - n)]
            axes = axes.reshape(-1).tolist()
        else:
            axes = []
        if not axes:
            if ctx.attr("noop_with_empty_axes"):
                return [shape]
            axes = list(range(len(shape)))
        axes = normalize_axes(ctx, axes, len(shape))
        return [reduced_shape(shape, axes, keep)]
    infer.__doc__ = f"{name} over ``axes`` (all when empty), keeping reduced dims if ``keepdims``."
    allowed = NUMERIC | {"bool"} if name in ("ReduceMax", "ReduceMin") else NUMERIC  # bool since opset 20
    op(name, inputs=["data: T", "axes?: i64"], outputs=["reduced: T"], types={"T": allowed},
       attrs={"keepdims": ("int", 1), "noop_with_empty_axes": ("int", 0)}, category="reduction",
       flops=_reduce_flops(k), since=18,
       # a sum that cancels still rounded its terms: ulps of the sum of |x|
       envelope=envelopes.linear_in(0) if name in ("ReduceSum", "ReduceMean") else None)(infer)


for _name, _k in _REDUCE.items():
    _declare_reduce(_name, _k)


def _arg(ctx: InferContext):
    """Index of the first (or, with select_last_index, last) extreme value along ``axis``."""
    shape = ctx.shape(0)
    axis = ctx.normalize_axis(ctx.attr("axis"), len(shape))
    return [reduced_shape(shape, [axis], bool(ctx.attr("keepdims")))]


def _softmax(ctx: InferContext):
    """Softmax (or its logarithm) along ``axis``: exp(x - max) / sum(exp(x - max))."""
    ctx.normalize_axis(ctx.attr("axis"), ctx.rank(0))
    return [ctx.shape(0)]


for _name in ("ArgMax", "ArgMin"):
    op(_name, inputs=["data: T"], outputs=["reduced: i64"], types={"T": NUMERIC},
       attrs={"axis": ("int", 0), "keepdims": ("int", 1), "select_last_index": ("int", 0)},
       category="reduction", flops=_reduce_flops(1), since=13)(_arg)


# Softmax: max, subtract, exp, sum, divide — five operations per element.
for _name in ("Softmax", "LogSoftmax"):
    op(_name, inputs=["input: T"], outputs=["output: T"], types={"T": {"f64", "f32", "f16", "bf16"}},
       attrs={"axis": ("int", -1)}, category="reduction", flops=per_element(5), since=13,
       arbitrary="masked-rows")(_softmax)  # a row of all -inf is NaN by ONNX's formula; any value is right


@op("CumSum", inputs=["x: T", "axis: Tind"], outputs=["y: T"], types={"T": NUMERIC, "Tind": INDEX},
    attrs={"exclusive": ("int", 0), "reverse": ("int", 0)}, category="reduction",
    flops=per_element(1), since=14)
def _cumulative(ctx: InferContext):
    """Running sum along the scalar ``axis`` input (exclusive: starts from 0)."""
    if ctx.type(1).numel != 1:
        ctx.fail("axis must be a scalar")
    return [ctx.shape(0)]


def _topk_flops(c: CostContext):
    # a heap keeps the k best: about log2(k) comparisons per element scanned
    k = c.out_shape(0)[c.attr("axis") % len(c.out_shape(0))]
    if isinstance(k, int):
        return c.in_numel(0) * max(1, math.ceil(math.log2(max(k, 2))))
    return c.in_numel(0) * sympy.ceiling(sympy.log(sympy.Max(k, 2), 2))


@op("TopK", inputs=["X: T", "K: i64"], outputs=["Values: T", "Indices: i64"], types={"T": NUMERIC},
    attrs={"axis": ("int", -1), "largest": ("int", 1), "sorted": ("int", 1)}, category="reduction",
    flops=_topk_flops, since=24)
def _topk(ctx: InferContext):
    """The k largest (or smallest) elements along ``axis`` and their indices, best first; equal
    values keep their order (the lower index first)."""
    shape = ctx.shape(0)
    axis = ctx.normalize_axis(ctx.attr("axis"), len(shape))
    if ctx.type(1).numel != 1 or ctx.rank(1) > 1:
        ctx.fail(f"K must be a one-element 1-D tensor, got {ctx.type(1)}")
    k = ctx.sym(1)
    k = k.reshape(-1)[0] if k is not None else None
    if isinstance(k, int) and isinstance(shape[axis], int) and not 0 <= k <= shape[axis]:
        ctx.fail(f"K = {k} is out of range for dim {axis} of size {shape[axis]}")
    out = shape[:axis] + (k,) + shape[axis + 1:]
    return [out, out]


@op("Hardmax", inputs=["input: T"], outputs=["output: T"], types={"T": FLOAT}, attrs={"axis": ("int", -1)},
    category="reduction", flops=per_element(2), since=13)
def _hardmax(ctx: InferContext):
    """1 at the first maximum along ``axis``, 0 elsewhere."""
    ctx.normalize_axis(ctx.attr("axis"), ctx.rank(0))
    return [ctx.shape(0)]


op("CumProd", inputs=["x: T", "axis: Tind"], outputs=["y: T"],
   types={"T": FLOAT | {"i32", "i64", "u32", "u64"}, "Tind": INDEX},
   attrs={"exclusive": ("int", 0), "reverse": ("int", 0)}, category="reduction",
   flops=per_element(1), since=26, doc="Running product along the scalar ``axis`` input (exclusive: starts from 1).")(_cumulative)


def _det_flops(c: CostContext):
    n = c.in_shape(0)[-1]
    return c.out_numel(0) * 2 * n ** 3 / 3  # LU factorization per matrix


@op("Det", inputs=["X: T"], outputs=["Y: T"], types={"T": FLOAT}, category="reduction", flops=_det_flops,
    since=22)
def _det(ctx: InferContext):
    """Determinants of the square matrices in the last two dims."""
    shape = ctx.shape(0)
    if len(shape) < 2:
        ctx.fail(f"X must have rank >= 2, got {ctx.type(0)}")
    a, b = shape[-2:]
    if isinstance(a, int) and isinstance(b, int) and a != b:
        ctx.fail(f"matrices must be square, got {a}x{b}")
    return [shape[:-2]]


def _loss_shape(ctx: InferContext, what: str) -> tuple:
    x, t = ctx.shape(0), ctx.shape(1)
    if len(x) < 2 or len(t) != len(x) - 1:
        ctx.fail(f"{what} must be (N, C, d1, ...) and the targets (N, d1, ...), got {ctx.type(0)}, {ctx.type(1)}")
    for a, b in zip((x[0],) + tuple(x[2:]), t):
        if isinstance(a, int) and isinstance(b, int) and a != b:
            ctx.fail(f"targets {ctx.type(1)} do not match {what} {ctx.type(0)}")
    if ctx.has(2) and (ctx.rank(2) != 1 or (isinstance(ctx.shape(2)[0], int) and isinstance(x[1], int)
                                           and ctx.shape(2)[0] != x[1])):
        ctx.fail(f"weight must be 1-D with one entry per class ({x[1]}), got {ctx.type(2)}")
    reduction = ctx.attr("reduction")
    if reduction not in ("none", "sum", "mean"):
        ctx.fail(f"reduction must be 'none', 'sum' or 'mean', got {reduction!r}")
    return tuple(t) if reduction == "none" else ()


_LOSS_ATTRS = {"ignore_index": ("int", None), "reduction": ("str", "mean")}


@op("NegativeLogLikelihoodLoss", inputs=["input: T", "target: Tind", "weight?: T"], outputs=["loss: T"],
    types={"T": FLOAT, "Tind": INDEX}, attrs=_LOSS_ATTRS, category="reduction",
    flops=lambda c: 3 * c.in_numel(1), since=22)
def _nll_loss(ctx: InferContext):
    """``-input[n, target[n, d], d] · weight[target]`` (0 at ``ignore_index``); reduced by sum, or
    by mean = sum / Σ weights of the counted targets."""
    return [_loss_shape(ctx, "input")]


@op("SoftmaxCrossEntropyLoss", inputs=["scores: T", "labels: Tind", "weights?: T"],
    outputs=["output: T", "log_prob?: T"], types={"T": FLOAT, "Tind": INDEX}, attrs=_LOSS_ATTRS,
    category="reduction", flops=lambda c: 5 * c.in_numel(0) + 3 * c.in_numel(1), since=13)
def _softmax_cross_entropy(ctx: InferContext):
    """NegativeLogLikelihoodLoss of LogSoftmax over the class dim (1); also the log-probabilities."""
    return [_loss_shape(ctx, "scores"), ctx.shape(0)]
