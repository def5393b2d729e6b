"""Kernels of ``ridgeline.ir.ops.normalization``, one for numpy and torch: the statistics in the
``stash_type`` (LayerNormalization, RMSNormalization, GroupNormalization) or in float64, scale
and bias in X's type where ONNX says so. Both tables register ``KERNELS``."""

from __future__ import annotations

from ...ir.ops.normalization import STASH_TYPES
from .namespace import namespace

__all__ = ["KERNELS"]


def _stash(xp, node):
    """The dtype of the statistics stage, as ``stash_type`` (an ONNX dtype code) names it."""
    return xp.dtype(STASH_TYPES[node.attr("stash_type")])


def _per_channel(p, ndim: int):
    return p.reshape((-1,) + (1,) * (ndim - 2))


def layer_norm(node, x, scale, bias=None):
    xp = namespace(x)
    axis = node.attr("axis") % x.ndim
    stash = _stash(xp, node)
    xs = xp.astype(x, stash)
    red = tuple(range(axis, x.ndim))
    mean = xp.mean(xs, red, keepdims=True)
    var = xp.mean(xp.square(xs - mean), red, keepdims=True)
    inv = 1.0 / xp.sqrt(var + node.attr("epsilon"))
    # stage one (statistics, normalization) in the stash type; scale and bias in X's type
    y = xp.astype((xs - mean) * inv, x.dtype) * scale
    if bias is not None:
        y = y + bias
    return (xp.astype(y, x.dtype), xp.astype(mean, stash), xp.astype(inv, stash))[:len(node.outputs)]


def rms_norm(node, x, scale):
    xp = namespace(x)
    axis = node.attr("axis") % x.ndim
    xs = xp.astype(x, _stash(xp, node))
    ms = xp.mean(xp.square(xs), tuple(range(axis, x.ndim)), keepdims=True)
    return xp.astype(xs / xp.sqrt(ms + node.attr("epsilon")) * scale, scale.dtype)


def lp_norm(node, x):
    xp = namespace(x)
    axis, p = node.attr("axis") % x.ndim, node.attr("p")
    xf = xp.astype(x, xp.float64)
    norm = xp.sum(xp.abs(xf) ** p, axis, keepdims=True) ** (1.0 / p)
    return xp.astype(xp.where(norm == 0, 0.0, xf / norm), x.dtype)


def mvn(node, x):
    xp = namespace(x)
    axes = tuple(a % x.ndim for a in node.attr("axes"))
    xf = xp.astype(x, xp.float64)
    mean = xp.mean(xf, axes, keepdims=True)
    std = xp.sqrt(xp.clip_min(xp.mean(xf ** 2, axes, keepdims=True) - mean ** 2, 0.0))
    return xp.astype((xf - mean) / (std + 1e-9), x.dtype)


def instance_norm(node, x, scale, bias):
    xp = namespace(x)
    axes = tuple(range(2, x.ndim))
    xf = xp.astype(x, xp.float64)
    mean = xp.mean(xf, axes, keepdims=True)
    var = xp.mean(xp.square(xf - mean), axes, keepdims=True)
    y = (xf - mean) / xp.sqrt(var + node.attr("epsilon"))
    f64 = xp.float64
    return xp.astype(y * _per_channel(xp.astype(scale, f64), x.ndim) + _per_channel(xp.astype(bias, f64), x.ndim),
                     x.dtype)


def group_norm(node, x, scale, bias):
    xp = namespace(x)
    n, g = x.shape[0], node.attr("num_groups")
    xs = xp.astype(x, _stash(xp, node)).reshape(n, g, -1)
    mean = xp.mean(xs, -1, keepdims=True)
    var = xp.mean(xp.square(xs - mean), -1, keepdims=True)
    normalized = xp.astype(((xs - mean) / xp.sqrt(var + node.attr("epsilon"))).reshape(tuple(x.shape)), x.dtype)
    return xp.astype(normalized * _per_channel(scale, x.ndim) + _per_channel(bias, x.ndim), x.dtype)


def batch_norm(node, x, scale, bias, mean, var):
    xp = namespace(x)
    f64 = xp.float64
    xf = xp.astype(x, f64)
    y = (xf - _per_channel(xp.astype(mean, f64), x.ndim)) / \
        xp.sqrt(_per_channel(xp.astype(var, f64), x.ndim) + node.attr("epsilon"))
    return xp.astype(y * _per_channel(xp.astype(scale, f64), x.ndim) + _per_channel(xp.astype(bias, f64), x.ndim),
                     x.dtype)


KERNELS = {"LayerNormalization": layer_norm, "RMSNormalization": rms_norm, "LpNormalization": lp_norm,
           "MeanVarianceNormalization": mvn, "InstanceNormalization": instance_norm,
           "GroupNormalization": group_norm, "BatchNormalization": batch_norm}
