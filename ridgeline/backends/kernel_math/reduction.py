"""Kernels of ``ridgeline.ir.ops.reduction``, one for numpy and torch: the Reduce* family,
arg-extremes, Hardmax, softmaxes, scans, TopK, Det and the two losses (in float64, as the
reference computes them); both tables register ``KERNELS``."""

from __future__ import annotations

import math

from .namespace import namespace
from .views import along, ints

__all__ = ["KERNELS", "REDUCE", "reduce_by"]


#: each Reduce* op as (elementwise part, reduction, final part): with ``noop_with_empty_axes`` and
#: no axes only the elementwise parts apply (ReduceL2 gives |x|, ReduceLogSum log(x): onnx.reference)
REDUCE = {
    "ReduceSum": (None, "sum", None), "ReduceMean": (None, "mean", None), "ReduceMax": (None, "max", None),
    "ReduceMin": (None, "min", None), "ReduceProd": (None, "prod", None), "ReduceL1": ("abs", "sum", None),
    "ReduceL2": ("square", "sum", "sqrt"), "ReduceSumSquare": ("square", "sum", None),
    "ReduceLogSum": (None, "sum", "log"), "ReduceLogSumExp": ("exp", "sum", "log"),
}


def reduce_by(xp, op: str, x, axes: tuple, keep: bool):
    """``op`` (a Reduce* name) of ``x`` over ``axes`` (none: the elementwise parts only)."""
    pre, red, post = REDUCE[op]
    y = getattr(xp, pre)(x) if pre else x
    if axes:
        if red == "mean" and xp.name_of(y.dtype)[0] in "iu":
            y = xp.astype(y, xp.float64)
        y = getattr(xp, red)(y, axes, keepdims=keep)
    return getattr(xp, post)(y) if post else y


def reduce(node, x, axes=None):
    xp = namespace(x)
    ax = tuple(sorted({a % x.ndim for a in ints(axes)}))
    if not ax and not node.attr("noop_with_empty_axes"):
        ax = tuple(range(x.ndim))
    keep = bool(node.attr("keepdims"))
    if math.prod(x.shape) == 0 and node.op in ("ReduceMax", "ReduceMin"):
        shape = tuple(1 if i in ax else d for i, d in enumerate(x.shape)) if keep else \
            tuple(d for i, d in enumerate(x.shape) if i not in ax)
        name = xp.name_of(x.dtype)
        if name == "bool":
            fill = node.op == "ReduceMin"  # the identities of any() and all()
        elif name[0] in "iu":
            info = xp.iinfo(x.dtype)
            fill = info.min if node.op == "ReduceMax" else info.max
        else:
            fill = float("-inf") if node.op == "ReduceMax" else float("inf")
        return xp.full(shape, fill, x.dtype, like=x)
    boolean = x.dtype == xp.bool
    with xp.errstate(all="ignore"):
        y = reduce_by(xp, node.op, xp.astype(x, xp.dtype("u8")) if boolean else x, ax, keep)  # torch: no bool sums
        return xp.astype(xp.asarray(y), x.dtype)


def argext(node, x):
    xp = namespace(x)
    axis = node.attr("axis") % x.ndim
    fn = xp.argmax if node.op == "ArgMax" else xp.argmin
    out = x.shape[axis] - 1 - fn(xp.flip(x, axis), axis) if node.attr("select_last_index") else fn(x, axis)
    out = xp.astype(out, xp.int64)
    return xp.expand_dims(out, axis) if node.attr("keepdims") else out


def hardmax(node, x):
    xp = namespace(x)
    if math.prod(x.shape) == 0:
        return xp.copy(x)
    axis = node.attr("axis") % x.ndim
    positions = xp.arange(x.shape[axis], like=x).reshape([-1 if i == axis else 1 for i in range(x.ndim)])
    return xp.astype(positions == xp.expand_dims(xp.argmax(x, axis), axis), x.dtype)


def softmax(node, x):
    # ONNX's definition exp(x - max) / sum(exp(x - max)): an all -inf row is NaN, as it is there
    xp = namespace(x)
    axis = node.attr("axis") % x.ndim
    with xp.errstate(invalid="ignore"):
        e = xp.exp(x - xp.max(x, axis, keepdims=True))
        return xp.astype(e / xp.sum(e, axis, keepdims=True), x.dtype)


def log_softmax(node, x):
    xp = namespace(x)
    axis = node.attr("axis") % x.ndim
    with xp.errstate(invalid="ignore", divide="ignore"):
        s = x - xp.max(x, axis, keepdims=True)
        return xp.astype(s - xp.log(xp.sum(xp.exp(s), axis, keepdims=True)), x.dtype)


def _scan(node, x, axis, fn, identity):
    # inclusive or exclusive (shifted by one, starting from the identity), forward or reversed
    xp = namespace(x)
    axis = ints(axis)[0] % x.ndim
    y = xp.flip(x, axis) if node.attr("reverse") else x
    out = fn(y, axis, x.dtype)
    if node.attr("exclusive"):
        first = xp.full_like(out[along(axis, slice(0, 1))], identity)
        out = xp.concat([first, out[along(axis, slice(0, -1))]], axis)
    out = xp.flip(out, axis) if node.attr("reverse") else out
    return xp.contiguous(xp.astype(out, x.dtype))


def cumsum(node, x, axis):
    return _scan(node, x, axis, namespace(x).cumsum, 0)


def cumprod(node, x, axis):
    return _scan(node, x, axis, namespace(x).cumprod, 1)


def topk(node, x, k):
    xp = namespace(x)
    axis = node.attr("axis") % x.ndim
    if node.attr("largest"):
        # stable ascending sort of the reversed axis, read backwards: descending values with
        # equal values in increasing index order
        rev = xp.argsort_stable(xp.flip(x, axis), axis)
        order = x.shape[axis] - 1 - xp.flip(rev, axis)
    else:
        order = xp.argsort_stable(x, axis)
    idx = xp.contiguous(order[along(axis, slice(0, ints(k)[0]))])
    return xp.take_along_axis(x, idx, axis), xp.astype(idx, xp.int64)


def det(node, x):
    xp = namespace(x)
    return xp.astype(xp.asarray(xp.det(xp.astype(x, xp.float64))), x.dtype)


def _nll(node, logp, target, weight):
    """Negative log-likelihood of float64 log-probabilities (N, C, ...) at integer targets."""
    xp = namespace(logp)
    ignore = node.attr("ignore_index")
    target = xp.astype(target, xp.int64)
    counted = target != ignore if ignore is not None else xp.ones(target.shape, xp.bool, like=target)
    safe = xp.where(counted, target, 0)
    picked = xp.take_along_axis(logp, xp.expand_dims(safe, 1), 1)[:, 0]
    w = xp.astype(weight, xp.float64)[safe] if weight is not None else xp.ones(target.shape, xp.float64, like=logp)
    w = xp.where(counted, w, 0.0)
    loss = -picked * w
    reduction = node.attr("reduction")
    if reduction == "sum":
        return xp.sum(loss, None)
    if reduction == "mean":
        with xp.errstate(invalid="ignore", divide="ignore"):
            return xp.sum(loss, None) / xp.sum(w, None)
    return loss


def nll_loss(node, x, target, weight=None):
    xp = namespace(x)
    x, target, weight = xp.same_device(x, target, weight)
    return xp.astype(xp.asarray(_nll(node, xp.astype(x, xp.float64), target, weight)), x.dtype)


def softmax_cross_entropy(node, scores, labels, weights=None):
    xp = namespace(scores)
    scores, labels, weights = xp.same_device(scores, labels, weights)
    s = xp.astype(scores, xp.float64)
    shifted = s - xp.max(s, 1, keepdims=True)
    logp = shifted - xp.log(xp.sum(xp.exp(shifted), 1, keepdims=True))
    loss = xp.astype(xp.asarray(_nll(node, logp, labels, weights)), scores.dtype)
    return (loss, xp.astype(logp, scores.dtype))[:len(node.outputs)]


KERNELS = {**dict.fromkeys(REDUCE, reduce), "ArgMax": argext, "ArgMin": argext, "Hardmax": hardmax,
           "Softmax": softmax,
           "LogSoftmax": log_softmax, "CumSum": cumsum, "CumProd": cumprod, "TopK": topk, "Det": det,
           "NegativeLogLikelihoodLoss": nll_loss, "SoftmaxCrossEntropyLoss": softmax_cross_entropy}
