"""torch kernels of ``ridgeline.ir.ops.movement``."""

from __future__ import annotations

import numpy as np
import torch

from ...kernel_math.movement import onnx_slice, pad_widths
from . import ints, kernel, same_device


@kernel("Slice")
def slice_(node, x, starts, ends, axes=None, steps=None):
    st, en = ints(starts), ints(ends)
    ax = list(range(len(st))) if axes is None else ints(axes)
    sp = [1] * len(st) if steps is None else ints(steps)
    out = x
    for a, s, e, k in zip(ax, st, en, sp):
        a = a % x.dim()
        idx = list(range(x.shape[a]))[onnx_slice(x.shape[a], s, e, k)]
        if k == 1:
            out = out.narrow(a, idx[0], len(idx)) if idx else out.narrow(a, 0, 0)
        else:  # torch slicing has no negative steps: select the positions explicitly
            out = out.index_select(a, torch.tensor(idx, dtype=torch.int64, device=x.device))
    return out


def _wrap(idx: torch.Tensor, n: int) -> torch.Tensor:
    idx = idx.to(torch.int64)
    return torch.where(idx < 0, idx + n, idx)


@kernel("Gather")
def gather(node, x, idx):
    axis = node.attr("axis") % x.dim()
    x, idx = same_device(x, idx)
    flat = _wrap(idx, x.shape[axis]).reshape(-1)
    if flat.numel() and (int(flat.min()) < 0 or int(flat.max()) >= x.shape[axis]):
        raise IndexError(f"index out of range for dim {axis} of size {x.shape[axis]}")
    out = x.index_select(axis, flat)
    return out.reshape(tuple(x.shape[:axis]) + tuple(idx.shape) + tuple(x.shape[axis + 1:]))


@kernel("GatherND")
def gather_nd(node, data, idx):
    b = node.attr("batch_dims")
    data, idx = same_device(data, idx)
    k = idx.shape[-1]
    nb = int(np.prod(data.shape[:b], dtype=np.int64))
    d = data.reshape((nb,) + tuple(data.shape[b:]))
    i = idx.reshape(nb, -1, k).to(torch.int64)
    batch = torch.arange(nb, device=data.device).reshape(nb, 1).expand(nb, i.shape[1])
    out = d[(batch,) + tuple(i[..., j] for j in range(k))]
    return out.reshape(tuple(idx.shape[:-1]) + tuple(data.shape[b + k:]))


@kernel("Expand")
def expand(node, x, shape):
    target = torch.broadcast_shapes(tuple(x.shape), tuple(ints(shape)))
    return torch.broadcast_to(x, target)


@kernel("Tile")
def tile(node, x, reps):
    r = ints(reps)
    return x.repeat(*r) if r else x.clone()  # a scalar tiles by no repeats: Tensor.repeat() wants some


@kernel("Pad")
def pad(node, x, pads, value=None, axes=None):
    crop, width = pad_widths(tuple(x.shape), ints(pads), None if axes is None else ints(axes))
    x = x[crop]
    mode = node.attr("mode")
    if mode == "constant":
        cv = value.reshape(-1)[0].item() if value is not None and value.numel() else 0
        out = torch.full([d + b + e for d, (b, e) in zip(x.shape, width)], cv, dtype=x.dtype, device=x.device)
        out[tuple(slice(b, b + d) for d, (b, _) in zip(x.shape, width))] = x
        return out
    # reflect / edge / wrap: the positions numpy's pad reads, one axis at a time
    np_mode = {"reflect": "reflect", "edge": "edge", "wrap": "wrap"}[mode]
    for a, (b, e) in enumerate(width):
        if b or e:
            idx = np.pad(np.arange(x.shape[a]), (b, e), mode=np_mode)
            x = x.index_select(a, torch.as_tensor(idx, dtype=torch.int64, device=x.device))
    return x


_REDUCE = {"add": "sum", "mul": "prod", "max": "amax", "min": "amin"}


@kernel("ScatterND")
def scatter_nd(node, data, indices, updates):
    data, indices, updates = same_device(data, indices, updates)
    k = indices.shape[-1]
    lead = tuple(data.shape[:k])
    idx = indices.to(torch.int64).reshape(-1, k)
    flat = torch.zeros(idx.shape[0], dtype=torch.int64, device=data.device)
    for j in range(k):  # row-major linear index over the first k dims, negatives counted from the end
        col = idx[:, j]
        flat = flat * lead[j] + torch.where(col < 0, col + lead[j], col)
    out = data.clone()
    rows = out.reshape((-1,) + tuple(data.shape[k:]))
    ups = updates.reshape((-1,) + tuple(data.shape[k:]))
    red = node.attr("reduction")
    if red == "none":
        rows[flat] = ups
    elif red == "add":
        rows.index_add_(0, flat, ups)
    else:
        rows.index_reduce_(0, flat, ups, _REDUCE[red], include_self=True)
    return out


@kernel("ScatterElements")
def scatter_elements(node, data, indices, updates):
    data, indices, updates = same_device(data, indices, updates)
    axis = node.attr("axis") % data.dim()
    idx = _wrap(indices, data.shape[axis])
    red = node.attr("reduction")
    out = data.clone()
    if red == "none":
        return out.scatter_(axis, idx, updates)
    return out.scatter_reduce_(axis, idx, updates, _REDUCE[red], include_self=True)


@kernel("NonZero")
def non_zero(node, x):
    if x.dim() == 0:
        return torch.zeros((0, int(bool(x))), dtype=torch.int64, device=x.device)
    return torch.nonzero(x).T.contiguous().to(torch.int64)


@kernel("Compress")
def compress(node, x, condition):
    x, condition = same_device(x, condition)
    axis = node.attr("axis")
    keep = torch.nonzero(condition.reshape(-1).to(torch.bool)).reshape(-1)
    if axis is None:
        flat = x.reshape(-1)
        return flat[keep[keep < flat.numel()]]
    axis = axis % x.dim()
    return x.index_select(axis, keep[keep < x.shape[axis]])


@kernel("ReverseSequence")
def reverse_sequence(node, x, lens):
    batch_axis, time_axis = node.attr("batch_axis"), node.attr("time_axis")
    out = x.clone()
    for i, n in enumerate(ints(lens)):
        src = [slice(None)] * x.dim()
        src[batch_axis], src[time_axis] = i, slice(0, n)
        part = x[tuple(src)]
        out[tuple(src)] = torch.flip(part, [time_axis - (1 if batch_axis < time_axis else 0)])
    return out


@kernel("Unique")
def unique(node, x):
    """np.unique's results (sorted values, first indices, inverse, counts), renumbered by first
    occurrence when ``sorted`` is 0."""
    axis = node.attr("axis")
    flat = x.reshape(-1) if axis is None else x
    dim = 0 if axis is None else axis % x.dim()
    y, inverse, counts = torch.unique(flat, sorted=True, return_inverse=True, return_counts=True,
                                      dim=None if axis is None else dim)
    n = flat.shape[dim]
    inverse = inverse.reshape(-1)
    first = torch.full((counts.numel(),), n, dtype=torch.int64, device=x.device)
    first = first.scatter_reduce(0, inverse, torch.arange(n, device=x.device), "amin")
    if not node.attr("sorted"):
        order = torch.argsort(first, stable=True)
        rank = torch.empty_like(order)
        rank[order] = torch.arange(order.numel(), device=x.device)
        y = torch.index_select(y, 0 if axis is None else dim, order)
        first, counts, inverse = first[order], counts[order], rank[inverse]
    outs = (y, first, inverse.to(torch.int64), counts.to(torch.int64))
    return outs[:len(node.outputs)]
