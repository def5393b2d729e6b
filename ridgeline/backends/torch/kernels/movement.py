"""torch kernels of ``ridgeline.ir.ops.movement``."""

from __future__ import annotations

import numpy as np
import torch

from . import ints, kernel, same_device


@kernel("Transpose")
def transpose(node, x):
    perm = node.attr("perm")
    perm = tuple(perm if perm is not None else reversed(range(x.dim())))
    return x.permute(*perm) if perm else x  # a scalar: permute() wants at least one dim


@kernel("Concat")
def concat(node, *xs):
    return torch.cat(same_device(*xs), dim=node.attr("axis") % xs[0].dim())


@kernel("Split")
def split(node, x, sizes=None):
    axis = node.attr("axis") % x.dim()
    if sizes is not None:
        parts = ints(sizes)
    else:
        n = len(node.outputs)
        part = -(-x.shape[axis] // n)
        parts = [part] * (n - 1) + [x.shape[axis] - part * (n - 1)]
    return tuple(torch.split(x, parts, dim=axis))


def _index(n: int, start: int, end: int, step: int) -> list[int]:
    """The positions ``range(n)[start:end:step]`` selects, with ONNX's clamping of sentinels."""
    start = max(min(start, n), -n - 1)
    end = max(min(end, n), -n - 1)
    if step < 0 and end < -n:
        return list(range(n))[start::step]
    if end == -n - 1 and step > 0:
        end = 0
    return list(range(n))[start:end:step]


@kernel("Slice")
def slice_(node, x, starts, ends, axes=None, steps=None):
    st, en = ints(starts), ints(ends)
    ax = list(range(len(st))) if axes is None else ints(axes)
    sp = [1] * len(st) if steps is None else ints(steps)
    out = x
    for a, s, e, k in zip(ax, st, en, sp):
        a = a % x.dim()
        idx = _index(x.shape[a], s, e, k)
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


@kernel("GatherElements")
def gather_elements(node, x, idx):
    axis = node.attr("axis") % x.dim()
    x, idx = same_device(x, idx)
    return torch.gather(x, axis, _wrap(idx, x.shape[axis]))


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
    axes = list(range(x.dim())) if axes is None else [a % x.dim() for a in ints(axes)]
    p = ints(pads)
    width = [(0, 0)] * x.dim()
    for k, a in enumerate(axes):
        width[a] = (p[k], p[k + len(axes)])
    # negative pads crop
    for a, (b, e) in enumerate(width):
        if b < 0 or e < 0:
            lo, hi = max(-b, 0), x.shape[a] - max(-e, 0)
            x = x.narrow(a, lo, hi - lo)
    width = [(max(b, 0), max(e, 0)) for b, e in width]
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


@kernel("Trilu")
def trilu(node, x, k=None):
    k = ints(k)[0] if k is not None else 0
    return torch.triu(x, k) if node.attr("upper") else torch.tril(x, k)
