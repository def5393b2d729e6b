"""Kernels of ``ridgeline.ir.ops.views``, one for numpy and torch: each is a reshape (or the
input itself), so only the target shape is computed here; both tables register ``KERNELS``."""

from __future__ import annotations

import math
from typing import Any

from .namespace import namespace

__all__ = ["KERNELS", "along", "ints"]


def ints(a: Any) -> list[int]:
    """A shape/axes tensor as Python ints (one host read on a device)."""
    return [int(v) for v in a.reshape(-1).tolist()] if a is not None else []


def along(axis: int, index: Any) -> tuple:
    """The index that takes ``index`` (a slice or positions) along ``axis``, all of the axes before it."""
    return (slice(None),) * axis + (index,)


def reshape(node, x, shape):
    target = ints(shape)
    if not node.attr("allowzero"):
        target = [x.shape[i] if d == 0 else d for i, d in enumerate(target)]
    return x.reshape(target)


def flatten(node, x):
    axis = node.attr("axis")
    axis = axis + x.ndim if axis < 0 else axis
    return x.reshape(math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))


def squeeze(node, x, axes=None):
    if axes is None:
        return x.reshape([d for d in x.shape if d != 1])
    drop = {a % x.ndim for a in ints(axes)}
    if any(x.shape[a] != 1 for a in drop):
        raise ValueError(f"cannot squeeze axes {sorted(drop)} of shape {list(x.shape)}: not all of size one")
    return x.reshape([d for i, d in enumerate(x.shape) if i not in drop])


def unsqueeze(node, x, axes):
    shape = list(x.shape)
    rank = len(shape) + len(ints(axes))
    for a in sorted(a % rank for a in ints(axes)):
        shape.insert(a, 1)
    return x.reshape(shape)


def identity(node, x):
    return x


def dropout(node, x, ratio=None, training_mode=None):
    if training_mode is not None and bool(training_mode.reshape(())) and \
            not (ratio is not None and float(ratio.reshape(())) == 0.0):
        from ...ir.errors import BackendError
        raise BackendError("training-mode Dropout is random and not supported (ridgeline is inference-only)")
    xp = namespace(x)
    return (x, xp.ones(tuple(x.shape), xp.bool, x))[:len(node.outputs)]


KERNELS = {"Reshape": reshape, "Flatten": flatten, "Squeeze": squeeze, "Unsqueeze": unsqueeze,
           "Identity": identity, "Dropout": dropout}
