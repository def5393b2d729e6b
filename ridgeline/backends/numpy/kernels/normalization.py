"""Reference kernels of ``ridgeline.ir.ops.normalization``."""

from __future__ import annotations

import numpy as np

from . import kernel


@kernel("LayerNormalization")
def layer_norm(node, x, scale, bias=None):
    axis = node.attr("axis") % x.ndim
    eps = node.attr("epsilon")
    stash = np.float32 if node.attr("stash_type") == 1 else x.dtype
    xs = x.astype(np.float64 if x.dtype == np.float64 else stash)
    red = tuple(range(axis, x.ndim))
    mean = np.mean(xs, axis=red, keepdims=True)
    var = np.mean(np.square(xs - mean), axis=red, keepdims=True)
    inv = 1.0 / np.sqrt(var + eps)
    y = (xs - mean) * inv * scale
    if bias is not None:
        y = y + bias
    outs = [y.astype(x.dtype)]
    stat_dt = np.dtype(stash) if node.attr("stash_type") == 1 else x.dtype
    outs += [mean.astype(stat_dt), inv.astype(stat_dt)]
    return tuple(outs[:len(node.outputs)])


@kernel("RMSNormalization")
def rms_norm(node, x, scale):
    axis = node.attr("axis") % x.ndim
    eps = node.attr("epsilon")
    stash = np.float32 if node.attr("stash_type") == 1 else x.dtype
    xs = x.astype(np.float64 if x.dtype == np.float64 else stash)
    red = tuple(range(axis, x.ndim))
    ms = np.mean(np.square(xs), axis=red, keepdims=True)
    y = xs / np.sqrt(ms + eps) * scale
    return y.astype(scale.dtype)
