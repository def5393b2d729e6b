"""Reference kernels of ``ridgeline.ir.ops.views``."""

from __future__ import annotations

import numpy as np

from . import kernel


@kernel("Reshape")
def reshape(node, x, shape):
    target = [int(d) for d in shape]
    if not node.attr("allowzero"):
        target = [x.shape[i] if d == 0 else d for i, d in enumerate(target)]
    return x.reshape(target)


@kernel("Flatten")
def flatten(node, x):
    axis = node.attr("axis")
    axis = axis + x.ndim if axis < 0 else axis
    return x.reshape(int(np.prod(x.shape[:axis], dtype=np.int64)), -1) if x.size else \
        x.reshape(int(np.prod(x.shape[:axis], dtype=np.int64)), int(np.prod(x.shape[axis:], dtype=np.int64)))


@kernel("Squeeze")
def squeeze(node, x, axes=None):
    if axes is None:
        return np.squeeze(x)
    return np.squeeze(x, axis=tuple(int(a) for a in axes.reshape(-1)))


@kernel("Unsqueeze")
def unsqueeze(node, x, axes):
    rank = x.ndim + axes.size
    axes = sorted(int(a) % rank for a in axes.reshape(-1))
    out = x
    for a in axes:
        out = np.expand_dims(out, a)
    return out


@kernel("Identity")
def identity(node, x):
    return x


@kernel("Dropout")
def dropout(node, x, ratio=None, training_mode=None):
    if training_mode is not None and bool(training_mode.reshape(())) and \
            not (ratio is not None and float(ratio.astype(np.float32).reshape(())) == 0.0):
        from ....ir.errors import BackendError
        raise BackendError("training-mode Dropout is random and not supported (ridgeline is inference-only)")
    return (x, np.ones(x.shape, dtype=bool))[:len(node.outputs)]
