"""torch kernels of ``ridgeline.ir.ops.views``."""

from __future__ import annotations

import math

from . import ints, kernel


@kernel("Reshape")
def reshape(node, x, shape):
    target = ints(shape)
    if not node.attr("allowzero"):
        target = [x.shape[i] if d == 0 else d for i, d in enumerate(target)]
    return x.reshape(target)


@kernel("Flatten")
def flatten(node, x):
    axis = node.attr("axis")
    axis = axis + x.dim() if axis < 0 else axis
    return x.reshape(math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))


@kernel("Squeeze")
def squeeze(node, x, axes=None):
    if axes is None:
        return x.reshape([d for d in x.shape if d != 1])
    drop = {a % x.dim() for a in ints(axes)}
    return x.reshape([d for i, d in enumerate(x.shape) if i not in drop])


@kernel("Unsqueeze")
def unsqueeze(node, x, axes):
    rank = x.dim() + axes.numel()
    out = x
    for a in sorted(a % rank for a in ints(axes)):
        out = out.unsqueeze(a)
    return out


@kernel("Identity")
def identity(node, x):
    return x
