"""Reference kernels of ``ridgeline.ir.ops.movement``."""

from __future__ import annotations

import numpy as np

from . import kernel


@kernel("Transpose")
def transpose(node, x):
    perm = node.attr("perm")
    return np.transpose(x, perm)


@kernel("Concat")
def concat(node, *xs):
    return np.concatenate(xs, axis=node.attr("axis"))


@kernel("Split")
def split(node, x, sizes=None):
    axis = node.attr("axis") % x.ndim
    if sizes is not None:
        bounds = np.cumsum([int(s) for s in sizes])[:-1]
    else:
        n = len(node.outputs)
        part = -(-x.shape[axis] // n)
        bounds = [part * (i + 1) for i in range(n - 1)]
    return tuple(np.split(x, bounds, axis=axis))


@kernel("Slice")
def slice_(node, x, starts, ends, axes=None, steps=None):
    starts, ends = starts.reshape(-1).tolist(), ends.reshape(-1).tolist()
    axes = list(range(len(starts))) if axes is None else axes.reshape(-1).tolist()
    steps = [1] * len(starts) if steps is None else steps.reshape(-1).tolist()
    index = [slice(None)] * x.ndim
    for a, s, e, st in zip(axes, starts, ends, steps):
        a = a % x.ndim
        dim = x.shape[a]
        # clamp as ONNX does (large sentinels such as INT64_MAX mean "to the end")
        s = max(min(s, dim), -dim - 1)
        e = max(min(e, dim), -dim - 1)
        if st < 0 and e < -dim:
            e = None
        elif e is not None and e == -dim - 1 and st > 0:
            e = 0
        index[a] = slice(s, e, st)
    return x[tuple(index)]


@kernel("Gather")
def gather(node, x, idx):
    axis = node.attr("axis") % x.ndim
    idx = idx.astype(np.int64)
    idx = np.where(idx < 0, idx + x.shape[axis], idx)
    return np.take(x, idx, axis=axis)


@kernel("GatherElements")
def gather_elements(node, x, idx):
    axis = node.attr("axis") % x.ndim
    idx = idx.astype(np.int64)
    idx = np.where(idx < 0, idx + x.shape[axis], idx)
    return np.take_along_axis(x, idx, axis=axis)


@kernel("GatherND")
def gather_nd(node, data, idx):
    b = node.attr("batch_dims")
    batch_shape = data.shape[:b]
    k = idx.shape[-1]
    nb = int(np.prod(batch_shape, dtype=np.int64))
    d = data.reshape((nb,) + data.shape[b:])
    i = idx.reshape((nb, -1, k))
    out = []
    for n in range(nb):
        rows = [d[n][tuple(int(v) for v in row)] for row in i[n]]
        out.append(np.stack(rows) if rows else np.zeros((0,) + data.shape[b + k:], data.dtype))
    return np.stack(out).reshape(idx.shape[:-1] + data.shape[b + k:])


@kernel("Expand")
def expand(node, x, shape):
    target = np.broadcast_shapes(x.shape, tuple(int(d) for d in shape))
    return np.broadcast_to(x, target).copy()


@kernel("Tile")
def tile(node, x, reps):
    return np.tile(x, [int(r) for r in reps])


@kernel("Pad")
def pad(node, x, pads, value=None, axes=None):
    axes = list(range(x.ndim)) if axes is None else [int(a) % x.ndim for a in axes.reshape(-1)]
    pads = [int(p) for p in pads.reshape(-1)]
    width = [(0, 0)] * x.ndim
    for k, a in enumerate(axes):
        width[a] = (pads[k], pads[k + len(axes)])
    # negative pads crop
    crop = tuple(slice(max(-b, 0), x.shape[i] - max(-e, 0)) for i, (b, e) in enumerate(width))
    x = x[crop]
    width = [(max(b, 0), max(e, 0)) for b, e in width]
    mode = node.attr("mode")
    if mode == "constant":
        cv = value.reshape(()).item() if value is not None and value.size else 0
        return np.pad(x, width, mode="constant", constant_values=cv)
    return np.pad(x, width, mode={"reflect": "reflect", "edge": "edge", "wrap": "wrap"}[mode])


@kernel("Trilu")
def trilu(node, x, k=None):
    k = int(k.reshape(())) if k is not None else 0
    return np.triu(x, k) if node.attr("upper") else np.tril(x, k)
