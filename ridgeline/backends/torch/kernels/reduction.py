"""torch kernels of ``ridgeline.ir.ops.reduction``: the Reduce* family and Hardmax (the others are
``kernel_math.reduction``'s)."""

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


@kernel("Hardmax")
def hardmax(node, x):
    axis = node.attr("axis") % x.dim()
    y = torch.zeros_like(x)
    if x.numel():
        y.scatter_(axis, torch.argmax(x, dim=axis, keepdim=True), 1)
    return y
