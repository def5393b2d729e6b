"""torch kernels of ``ridgeline.ir.ops.reduction``."""

from __future__ import annotations

import torch

from . import ints, kernel, same_device


def _axes(node, x, axes):
    ax = ints(axes)
    if not ax:
        return None if node.attr("noop_with_empty_axes") else tuple(range(x.dim()))
    return tuple(sorted(a % x.dim() for a in ax))


def _prod(x, ax, keep):
    out = x
    for a in sorted(ax, reverse=True):
        out = torch.prod(out, dim=a, keepdim=keep)
    return out


def _extreme(fn):
    def reduce(x, ax, keep):
        return fn(x, dim=ax, keepdim=keep) if ax else x
    return reduce


_REDUCE = {
    "ReduceSum": lambda x, ax, k: torch.sum(x, dim=ax, keepdim=k),
    "ReduceMean": lambda x, ax, k: torch.mean(x, dim=ax, keepdim=k),
    "ReduceMax": _extreme(torch.amax),
    "ReduceMin": _extreme(torch.amin),
    "ReduceProd": _prod,
    "ReduceL1": lambda x, ax, k: torch.sum(torch.abs(x), dim=ax, keepdim=k),
    "ReduceL2": lambda x, ax, k: torch.sqrt(torch.sum(x * x, dim=ax, keepdim=k)),
    "ReduceSumSquare": lambda x, ax, k: torch.sum(x * x, dim=ax, keepdim=k),
    "ReduceLogSum": lambda x, ax, k: torch.log(torch.sum(x, dim=ax, keepdim=k)),
    "ReduceLogSumExp": lambda x, ax, k: torch.log(torch.sum(torch.exp(x), dim=ax, keepdim=k)),
}


# with noop_with_empty_axes and no axes, a reduction reduces nothing but its elementwise part still
# applies (onnx.reference); torch's dim=() would reduce every dim instead
_NOOP = {"ReduceL1": torch.abs, "ReduceL2": lambda x: torch.sqrt(x * x), "ReduceSumSquare": lambda x: x * x,
         "ReduceLogSum": torch.log, "ReduceLogSumExp": lambda x: torch.log(torch.exp(x))}


@kernel(*_REDUCE)
def reduce(node, x, axes=None):
    ax = _axes(node, x, axes)
    if ax is None:
        return _NOOP.get(node.op, lambda v: v)(x)
    keep = bool(node.attr("keepdims"))
    if x.numel() == 0 and node.op in ("ReduceMax", "ReduceMin"):
        shape = [1 if i in ax else d for i, d in enumerate(x.shape)] if keep else \
            [d for i, d in enumerate(x.shape) if i not in ax]
        if x.dtype == torch.bool:
            fill = node.op == "ReduceMin"  # the identities of any() and all()
        elif x.dtype.is_floating_point:
            fill = float("-inf") if node.op == "ReduceMax" else float("inf")
        else:
            info = torch.iinfo(x.dtype)
            fill = info.min if node.op == "ReduceMax" else info.max
        return torch.full(shape, fill, dtype=x.dtype, device=x.device)
    if x.dtype == torch.bool:
        return _REDUCE[node.op](x.to(torch.uint8), ax, keep).to(torch.bool)
    if node.op == "ReduceMean" and not x.dtype.is_floating_point:
        return torch.mean(x.double(), dim=ax, keepdim=keep).to(x.dtype)
    return _REDUCE[node.op](x, ax, keep).to(x.dtype)


@kernel("ArgMax", "ArgMin")
def argext(node, x):
    axis = node.attr("axis") % x.dim()
    fn = torch.argmax if node.op == "ArgMax" else torch.argmin
    if node.attr("select_last_index"):
        out = x.shape[axis] - 1 - fn(torch.flip(x, [axis]), dim=axis)
    else:
        out = fn(x, dim=axis)
    return out.unsqueeze(axis) if node.attr("keepdims") else out


def softmax(x: torch.Tensor, axis: int) -> torch.Tensor:
    """Softmax that gives 0 (not NaN) on rows that are entirely -inf, like the reference."""
    m = torch.amax(x, dim=axis, keepdim=True)
    m = torch.where(torch.isneginf(m), torch.zeros_like(m), m)
    e = torch.exp(x - m)
    s = torch.sum(e, dim=axis, keepdim=True)
    return e / torch.where(s == 0, torch.ones_like(s), s)


@kernel("Softmax")
def softmax_k(node, x):
    # ONNX's definition exp(x - max) / sum(exp(x - max)): an all -inf row is NaN, as it is there
    axis = node.attr("axis") % x.dim()
    e = torch.exp(x - torch.amax(x, dim=axis, keepdim=True))
    return e / torch.sum(e, dim=axis, keepdim=True)


@kernel("LogSoftmax")
def log_softmax(node, x):
    axis = node.attr("axis") % x.dim()
    s = x - torch.amax(x, dim=axis, keepdim=True)
    return s - torch.log(torch.sum(torch.exp(s), dim=axis, keepdim=True))


def _scan(node, x, axis, fn, identity):
    """Inclusive or exclusive (shifted by one from the identity), forward or reversed, in X's type."""
    axis = ints(axis)[0] % x.dim()
    y = torch.flip(x, [axis]) if node.attr("reverse") else x
    out = fn(y, dim=axis, dtype=x.dtype)
    if node.attr("exclusive"):
        first = torch.full_like(out.narrow(axis, 0, 1), identity)
        out = torch.cat([first, out.narrow(axis, 0, out.shape[axis] - 1)], dim=axis)
    return torch.flip(out, [axis]) if node.attr("reverse") else out


@kernel("CumSum")
def cumsum(node, x, axis):
    return _scan(node, x, axis, torch.cumsum, 0)


@kernel("CumProd")
def cumprod(node, x, axis):
    return _scan(node, x, axis, torch.cumprod, 1)


@kernel("TopK")
def topk(node, x, k):
    axis = node.attr("axis") % x.dim()
    k = ints(k)[0]
    if node.attr("largest"):
        # stable ascending sort of the reversed axis, read backwards: descending values, equal
        # values in increasing index order (the reference's tie rule)
        rev = torch.argsort(torch.flip(x, [axis]), dim=axis, stable=True)
        order = x.shape[axis] - 1 - torch.flip(rev, [axis])
    else:
        order = torch.argsort(x, dim=axis, stable=True)
    idx = order.narrow(axis, 0, k)
    return torch.gather(x, axis, idx), idx.to(torch.int64)


@kernel("Hardmax")
def hardmax(node, x):
    axis = node.attr("axis") % x.dim()
    y = torch.zeros_like(x)
    if x.numel():
        y.scatter_(axis, torch.argmax(x, dim=axis, keepdim=True), 1)
    return y


@kernel("Det")
def det(node, x):
    return torch.linalg.det(x.double()).to(x.dtype)


def _nll(node, logp: torch.Tensor, target: torch.Tensor, weight) -> torch.Tensor:
    """Negative log-likelihood of float64 log-probabilities (N, C, ...) at integer targets."""
    ignore = node.attr("ignore_index")
    target = target.to(torch.int64)
    counted = target != ignore if ignore is not None else torch.ones_like(target, dtype=torch.bool)
    safe = torch.where(counted, target, torch.zeros_like(target))
    picked = torch.gather(logp, 1, safe.unsqueeze(1)).squeeze(1)
    w = weight.double()[safe] if weight is not None else torch.ones(target.shape, dtype=torch.float64, device=logp.device)
    w = torch.where(counted, w, torch.zeros_like(w))
    loss = -picked * w
    reduction = node.attr("reduction")
    if reduction == "sum":
        return torch.sum(loss)
    if reduction == "mean":
        return torch.sum(loss) / torch.sum(w)
    return loss


@kernel("NegativeLogLikelihoodLoss")
def nll_loss(node, x, target, weight=None):
    x, target, weight = same_device(x, target, weight)
    return _nll(node, x.double(), target, weight).to(x.dtype)


@kernel("SoftmaxCrossEntropyLoss")
def softmax_cross_entropy(node, scores, labels, weights=None):
    scores, labels, weights = same_device(scores, labels, weights)
    s = scores.double()
    shifted = s - torch.amax(s, dim=1, keepdim=True)
    logp = shifted - torch.log(torch.sum(torch.exp(shifted), dim=1, keepdim=True))
    loss = _nll(node, logp, labels, weights).to(scores.dtype)
    return (loss, logp.to(scores.dtype))[:len(node.outputs)]
