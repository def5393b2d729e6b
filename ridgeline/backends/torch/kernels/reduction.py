"""torch kernels of ``ridgeline.ir.ops.reduction``."""

from __future__ import annotations

import torch

from . import ints, kernel


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
        if x.dtype.is_floating_point:
            fill = float("-inf") if node.op == "ReduceMax" else float("inf")
        else:
            info = torch.iinfo(x.dtype)
            fill = info.min if node.op == "ReduceMax" else info.max
        return torch.full(shape, fill, dtype=x.dtype, device=x.device)
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
    return softmax(x, node.attr("axis") % x.dim())


@kernel("LogSoftmax")
def log_softmax(node, x):
    axis = node.attr("axis") % x.dim()
    s = x - torch.amax(x, dim=axis, keepdim=True)
    return s - torch.log(torch.sum(torch.exp(s), dim=axis, keepdim=True))


@kernel("CumSum")
def cumsum(node, x, axis):
    axis = ints(axis)[0] % x.dim()
    y = torch.flip(x, [axis]) if node.attr("reverse") else x
    out = torch.cumsum(y, dim=axis)
    if node.attr("exclusive"):
        out = out - y
    out = torch.flip(out, [axis]) if node.attr("reverse") else out
    return out.to(x.dtype)
