"""torch's own functions for ``ridgeline.ir.ops.conv``: ``Conv``, ``ConvInteger`` and
``ConvTranspose`` are torch's ``conv*d``/``conv_transpose*d`` on the input padded by the shared
geometry (``kernel_math.conv``), in float32 for narrow types where the reference sums in float64;
the pools are ``kernel_math.conv``'s."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ....ir.errors import BackendError
from ...kernel_math.conv import geometry, integer_operands, pad_widths, transpose_crop, transpose_geometry
from . import kernel, same_device

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


def _work(dt: torch.dtype) -> torch.dtype:
    """float64 stays float64; narrower floats (and integer codes) compute in float32 at least."""
    return torch.float64 if dt in (torch.float64, torch.int64, torch.int32) else torch.float32


def _flat_pads(widths) -> list[int]:
    return [p for pair in reversed(widths) for p in pair]   # F.pad lists the last dim first


def _conv(node, x, w, b, work):
    """torch's convolution of the input padded as the geometry says (pads may be asymmetric)."""
    n = x.dim() - 2
    if n not in _CONV:
        raise BackendError(f"torch convolves 1 to 3 spatial dims, not {n}; run {node.op} on numpy")
    kernel_shape = tuple(w.shape[2:])
    dims = geometry(node, tuple(x.shape[2:]), kernel_shape)
    xp = F.pad(x.to(work), _flat_pads(pad_widths(dims, kernel_shape, tuple(x.shape[2:]))))
    return _CONV[n](xp, w.to(work), b.to(work) if b is not None else None, stride=[d[3] for d in dims],
                    dilation=[d[4] for d in dims], groups=node.attr("group"))


@kernel("Conv")
def conv(node, x, w, b=None):
    x, w, b = same_device(x, w, b)
    return _conv(node, x, w, b, _work(x.dtype)).to(x.dtype)


@kernel("ConvInteger")
def conv_integer(node, x, w, x_zero_point=None, w_zero_point=None):
    xs, ws = integer_operands(*same_device(x, w, x_zero_point, w_zero_point))
    # float64 holds these exact sums (|products| < 2^16, far fewer than 2^37 terms); torch has no int conv
    return torch.round(_conv(node, xs, ws, None, torch.float64)).to(torch.int32)



@kernel("ConvTranspose")
def conv_transpose(node, x, w, b=None):
    """torch's transposed convolution without pads (the full result), cropped as the spec says."""
    x, w, b = same_device(x, w, b)
    n = x.dim() - 2
    strides, dil, geo = transpose_geometry(node, tuple(x.shape[2:]), tuple(w.shape[2:]))
    work = _work(x.dtype)
    canvas = _CONV_T[n](x.to(work), w.to(work), stride=strides, dilation=dil, groups=node.attr("group"))
    y = torch.zeros(tuple(canvas.shape[:2]) + tuple(o for o, _ in geo), dtype=work, device=x.device)
    src, dst = transpose_crop(geo, list(canvas.shape[2:]))
    y[dst] = canvas[src]
    if b is not None:
        y = y + b.to(work).reshape((-1,) + (1,) * n)
    return y.to(x.dtype)

