"""torch kernels of ``ridgeline.ir.ops.normalization``."""

from __future__ import annotations

import torch

from . import kernel


def _stash(node, x):
    if x.dtype == torch.float64:
        return torch.float64
    return torch.float32 if node.attr("stash_type") == 1 else x.dtype


@kernel("LayerNormalization")
def layer_norm(node, x, scale, bias=None):
    axis = node.attr("axis") % x.dim()
    eps = node.attr("epsilon")
    xs = x.to(_stash(node, x))
    red = tuple(range(axis, x.dim()))
    mean = torch.mean(xs, dim=red, keepdim=True)
    var = torch.mean(torch.square(xs - mean), dim=red, keepdim=True)
    inv = 1.0 / torch.sqrt(var + eps)
    y = (xs - mean) * inv * scale.to(xs.dtype)
    if bias is not None:
        y = y + bias.to(xs.dtype)
    stat = torch.float32 if node.attr("stash_type") == 1 else x.dtype
    outs = (y.to(x.dtype), mean.to(stat), inv.to(stat))
    return outs[:len(node.outputs)]


@kernel("RMSNormalization")
def rms_norm(node, x, scale):
    axis = node.attr("axis") % x.dim()
    xs = x.to(_stash(node, x))
    red = tuple(range(axis, x.dim()))
    ms = torch.mean(torch.square(xs), dim=red, keepdim=True)
    return (xs / torch.sqrt(ms + node.attr("epsilon")) * scale.to(xs.dtype)).to(scale.dtype)
