"""Reference kernels of ``ridgeline.ir.ops.normalization``."""

from __future__ import annotations

import numpy as np

from ....ir.dtypes import DTYPES
from ....ir.ops.normalization import STASH_TYPES
from . import kernel


def _stash(node, x: np.ndarray) -> np.dtype:
    """The dtype of the statistics stage, as ``stash_type`` names it."""
    return DTYPES[STASH_TYPES[node.attr("stash_type")]].np_dtype


@kernel("LayerNormalization")
def layer_norm(node, x, scale, bias=None):
    axis = node.attr("axis") % x.ndim
    eps = node.attr("epsilon")
    stash = _stash(node, x)
    xs = x.astype(stash)
    red = tuple(range(axis, x.ndim))
    mean = np.mean(xs, axis=red, keepdims=True)
    var = np.mean(np.square(xs - mean), axis=red, keepdims=True)
    inv = 1.0 / np.sqrt(var + eps)
    # stage one (statistics, normalization) in the stash type; scale and bias in X's type
    y = ((xs - mean) * inv).astype(x.dtype) * scale
    if bias is not None:
        y = y + bias
    outs = [y.astype(x.dtype)]
    outs += [mean.astype(stash), inv.astype(stash)]
    return tuple(outs[:len(node.outputs)])


@kernel("RMSNormalization")
def rms_norm(node, x, scale):
    axis = node.attr("axis") % x.ndim
    eps = node.attr("epsilon")
    xs = x.astype(_stash(node, x))
    red = tuple(range(axis, x.ndim))
    ms = np.mean(np.square(xs), axis=red, keepdims=True)
    y = xs / np.sqrt(ms + eps) * scale
    return y.astype(scale.dtype)


def _per_channel(p: np.ndarray, ndim: int) -> np.ndarray:
    return p.reshape((-1,) + (1,) * (ndim - 2))


@kernel("LpNormalization")
def lp_norm(node, x):
    axis, p = node.attr("axis") % x.ndim, node.attr("p")
    xf = x.astype(np.float64)
    norm = np.sum(np.abs(xf) ** p, axis=axis, keepdims=True) ** (1.0 / p)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norm == 0, 0.0, xf / norm).astype(x.dtype)


@kernel("MeanVarianceNormalization")
def mvn(node, x):
    axes = tuple(a % x.ndim for a in node.attr("axes"))
    xf = x.astype(np.float64)
    mean = np.mean(xf, axis=axes, keepdims=True)
    std = np.sqrt(np.maximum(np.mean(xf ** 2, axis=axes, keepdims=True) - mean ** 2, 0.0))
    return ((xf - mean) / (std + 1e-9)).astype(x.dtype)


@kernel("InstanceNormalization")
def instance_norm(node, x, scale, bias):
    axes = tuple(range(2, x.ndim))
    xf = x.astype(np.float64)
    mean = np.mean(xf, axis=axes, keepdims=True)
    var = np.var(xf, axis=axes, keepdims=True)
    y = (xf - mean) / np.sqrt(var + node.attr("epsilon"))
    return (y * _per_channel(scale, x.ndim) + _per_channel(bias, x.ndim)).astype(x.dtype)


@kernel("GroupNormalization")
def group_norm(node, x, scale, bias):
    n, g = x.shape[0], node.attr("num_groups")
    xs = x.astype(_stash(node, x)).reshape(n, g, -1)
    mean = np.mean(xs, axis=-1, keepdims=True)
    var = np.mean(np.square(xs - mean), axis=-1, keepdims=True)
    normalized = ((xs - mean) / np.sqrt(var + node.attr("epsilon"))).reshape(x.shape).astype(x.dtype)
    return (normalized * _per_channel(scale, x.ndim) + _per_channel(bias, x.ndim)).astype(x.dtype)


@kernel("BatchNormalization")
def batch_norm(node, x, scale, bias, mean, var):
    xf = x.astype(np.float64)
    y = (xf - _per_channel(mean, x.ndim)) / np.sqrt(_per_channel(var, x.ndim).astype(np.float64) + node.attr("epsilon"))
    return (y * _per_channel(scale, x.ndim) + _per_channel(bias, x.ndim)).astype(x.dtype)
