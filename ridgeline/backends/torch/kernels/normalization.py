"""torch kernels of ``ridgeline.ir.ops.normalization``."""

from __future__ import annotations

import torch

from ....ir.ops.normalization import STASH_TYPES
from ..convert import torch_dtype
from . import kernel


def _stash(node, x):
    """The dtype of the statistics stage, as ``stash_type`` names it (an ONNX dtype code)."""
    return torch_dtype(STASH_TYPES[node.attr("stash_type")])


@kernel("LayerNormalization")
def layer_norm(node, x, scale, bias=None):
    axis = node.attr("axis") % x.dim()
    eps = node.attr("epsilon")
    xs = x.to(_stash(node, x))
    red = tuple(range(axis, x.dim()))
    mean = torch.mean(xs, dim=red, keepdim=True)
    var = torch.mean(torch.square(xs - mean), dim=red, keepdim=True)
    inv = 1.0 / torch.sqrt(var + eps)
    # stage one (statistics, normalization) in the stash type; scale and bias in X's type
    y = ((xs - mean) * inv).to(x.dtype) * scale
    if bias is not None:
        y = y + bias
    outs = (y.to(x.dtype), mean.to(xs.dtype), inv.to(xs.dtype))
    return outs[:len(node.outputs)]


@kernel("RMSNormalization")
def rms_norm(node, x, scale):
    axis = node.attr("axis") % x.dim()
    xs = x.to(_stash(node, x))
    red = tuple(range(axis, x.dim()))
    ms = torch.mean(torch.square(xs), dim=red, keepdim=True)
    return (xs / torch.sqrt(ms + node.attr("epsilon")) * scale.to(xs.dtype)).to(scale.dtype)


def _per_channel(p, ndim):
    return p.reshape((-1,) + (1,) * (ndim - 2))


@kernel("LpNormalization")
def lp_norm(node, x):
    axis, p = node.attr("axis") % x.dim(), node.attr("p")
    xf = x.double()
    norm = torch.sum(torch.abs(xf) ** p, dim=axis, keepdim=True) ** (1.0 / p)
    return torch.where(norm == 0, torch.zeros_like(xf), xf / norm).to(x.dtype)


@kernel("MeanVarianceNormalization")
def mvn(node, x):
    axes = tuple(a % x.dim() for a in node.attr("axes"))
    xf = x.double()
    mean = torch.mean(xf, dim=axes, keepdim=True)
    std = torch.sqrt(torch.clamp(torch.mean(xf ** 2, dim=axes, keepdim=True) - mean ** 2, min=0.0))
    return ((xf - mean) / (std + 1e-9)).to(x.dtype)


@kernel("InstanceNormalization")
def instance_norm(node, x, scale, bias):
    axes = tuple(range(2, x.dim()))
    xf = x.double()
    mean = torch.mean(xf, dim=axes, keepdim=True)
    var = torch.mean(torch.square(xf - mean), dim=axes, keepdim=True)
    y = (xf - mean) / torch.sqrt(var + node.attr("epsilon"))
    return (y * _per_channel(scale.double(), x.dim()) + _per_channel(bias.double(), x.dim())).to(x.dtype)


@kernel("GroupNormalization")
def group_norm(node, x, scale, bias):
    n, g = x.shape[0], node.attr("num_groups")
    xs = x.to(_stash(node, x)).reshape(n, g, -1)
    mean = torch.mean(xs, dim=-1, keepdim=True)
    var = torch.mean(torch.square(xs - mean), dim=-1, keepdim=True)
    normalized = ((xs - mean) / torch.sqrt(var + node.attr("epsilon"))).reshape(x.shape).to(x.dtype)
    return (normalized * _per_channel(scale, x.dim()) + _per_channel(bias, x.dim())).to(x.dtype)


@kernel("BatchNormalization")
def batch_norm(node, x, scale, bias, mean, var):
    xf = x.double()
    y = (xf - _per_channel(mean.double(), x.dim())) / torch.sqrt(_per_channel(var.double(), x.dim()) + node.attr("epsilon"))
    return (y * _per_channel(scale.double(), x.dim()) + _per_channel(bias.double(), x.dim())).to(x.dtype)
