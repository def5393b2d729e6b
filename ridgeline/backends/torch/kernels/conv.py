"""torch kernels of ``ridgeline.ir.ops.conv``: the reference's algorithm in torch — windows cut
from the padded input (``unfold``) and reduced in float64 — with the reference's own geometry."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ...numpy.kernels.conv import geometry, windows as _np_windows
from . import kernel, same_device


def _kind(spatial, dims, kernel_shape, device) -> torch.Tensor:
    """The reference's window codes (0 input, 1 explicit pad, 2 ceil-mode overhang), from shapes."""
    _, kind = _np_windows(np.zeros((1, 1) + tuple(spatial), np.int8), dims, kernel_shape, 0)
    return torch.from_numpy(np.array(kind[0, 0], order="C")).to(device)   # a copy: kind may be a read-only strided view


def windows(x: torch.Tensor, dims, kernel_shape, fill) -> torch.Tensor:
    """``(N, C, *out, *kernel)`` windows of x padded with ``fill`` (the reference's layout)."""
    pad = []
    for (out, b, _, s, dl), k, size in zip(dims, kernel_shape, x.shape[2:]):
        need = (out - 1) * s + (k - 1) * dl + 1
        pad.append((b, max(0, need - size - b)))
    flat = [p for pair in reversed(pad) for p in pair]   # F.pad lists the last dim first
    win = F.pad(x, flat, value=fill)
    for i, ((out, _, _, s, dl), k) in enumerate(zip(dims, kernel_shape)):
        win = win.unfold(2 + i, (k - 1) * dl + 1, s).narrow(2 + i, 0, out)
    n = len(dims)
    dil = tuple(slice(None, None, dl) for _, _, _, _, dl in dims)
    return win[(slice(None),) * (2 + n) + dil]


def _conv(x, w, node, fill=0.0):
    n = x.dim() - 2
    kernel_shape = tuple(w.shape[2:])
    dims = geometry(node, tuple(x.shape[2:]), kernel_shape)
    win = windows(x, dims, kernel_shape, fill)
    g = node.attr("group")
    nb, c = x.shape[:2]
    m = w.shape[0]
    outs = tuple(d[0] for d in dims)
    win = win.reshape((nb, g, c // g) + outs + kernel_shape)
    wg = w.reshape((g, m // g, c // g) + kernel_shape)
    letters, ks = "abcdefghij"[:n], "klmnopqrst"[:n]
    y = torch.einsum(f"NGC{letters}{ks},GMC{ks}->NGM{letters}", win, wg)
    return y.reshape((nb, m) + outs)


@kernel("Conv")
def conv(node, x, w, b=None):
    x, w, b = same_device(x, w, b)
    y = _conv(x.double(), w.double(), node)
    if b is not None:
        y = y + b.double().reshape((-1,) + (1,) * (x.dim() - 2))
    return y.to(x.dtype)


@kernel("ConvInteger")
def conv_integer(node, x, w, x_zero_point=None, w_zero_point=None):
    x, w, x_zero_point, w_zero_point = same_device(x, w, x_zero_point, w_zero_point)
    xs = x.to(torch.int64) - (x_zero_point.to(torch.int64) if x_zero_point is not None else 0)
    ws = w.to(torch.int64)
    if w_zero_point is not None:
        zp = w_zero_point.to(torch.int64)
        ws = ws - (zp.reshape((-1,) + (1,) * (w.dim() - 1)) if zp.numel() > 1 else zp.reshape(()))
    # float64 holds these exact sums (|products| < 2^16, far fewer than 2^37 terms); einsum has no int path
    return torch.round(_conv(xs.double(), ws.double(), node)).to(torch.int32)


def _pool(node, x, reduce):
    kernel_shape = tuple(node.attr("kernel_shape"))
    dims = geometry(node, tuple(x.shape[2:]), kernel_shape)
    win = windows(x.double(), dims, kernel_shape, 0.0)
    kind = _kind(tuple(x.shape[2:]), dims, kernel_shape, x.device).expand(win.shape)
    axes = tuple(range(win.dim() - len(kernel_shape), win.dim()))
    return reduce(win, kind, axes)


@kernel("AveragePool")
def average_pool(node, x):
    def avg(win, kind, axes):
        total = torch.sum(torch.where(kind == 0, win, torch.zeros_like(win)), dim=axes)
        counted = (kind == 0) | ((kind == 1) & bool(node.attr("count_include_pad")))
        return total / torch.sum(counted, dim=axes)
    return _pool(node, x, avg).to(x.dtype)


@kernel("LpPool")
def lp_pool(node, x):
    p = node.attr("p")
    return _pool(node, x, lambda win, kind, axes: torch.sum(torch.where(kind == 0, torch.abs(win) ** p,
                                                                        torch.zeros_like(win)), dim=axes) ** (1.0 / p)
                 ).to(x.dtype)


@kernel("MaxPool")
def max_pool(node, x):
    kernel_shape = tuple(node.attr("kernel_shape"))
    spatial = tuple(x.shape[2:])
    dims = geometry(node, spatial, kernel_shape)
    win = windows(x.double(), dims, kernel_shape, 0.0)
    kind = _kind(spatial, dims, kernel_shape, x.device).expand(win.shape)
    n = len(kernel_shape)
    masked = torch.where(kind == 0, win, torch.full_like(win, float("-inf")))
    axes = tuple(range(2 + n, 2 + 2 * n))
    y = torch.amax(masked, dim=axes).to(x.dtype)
    if len(node.outputs) == 1:
        return y
    # the flat index of the first maximum: window position -> input coordinate -> offset into X
    flat = masked.reshape(tuple(masked.shape[:2 + n]) + (-1,))
    best = torch.argmax(flat, dim=-1)   # first maximum, as numpy
    coords = []
    rem = best
    sizes = list(kernel_shape)
    for i in range(n):   # unravel in row-major order
        inner = int(np.prod(sizes[i + 1:])) if i + 1 < n else 1
        coords.append(rem // inner)
        rem = rem % inner
    pos = []
    for i, ((out, b, _, s, dl), c) in enumerate(zip(dims, coords)):
        shape = [1] * (2 + n)
        shape[2 + i] = out
        start = (torch.arange(out, device=x.device) * s - b).reshape(shape)
        pos.append(start + c * dl)
    nb, ch = x.shape[:2]
    base = (torch.arange(nb, device=x.device).reshape(-1, 1) * ch + torch.arange(ch, device=x.device).reshape(1, -1))
    base = base.reshape((nb, ch) + (1,) * n)
    if node.attr("storage_order"):  # column-major over the spatial dims
        offset, stride = 0, 1
        for i in range(n):
            offset = offset + pos[i] * stride
            stride *= spatial[i]
    else:
        offset = 0
        for i in range(n):
            offset = offset * spatial[i] + pos[i]
    return y, (base * int(np.prod(spatial)) + offset).to(torch.int64)


@kernel("GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool")
def global_pool(node, x):
    axes = tuple(range(2, x.dim()))
    xf = x.double()
    if node.op == "GlobalAveragePool":
        y = torch.mean(xf, dim=axes, keepdim=True)
    elif node.op == "GlobalMaxPool":
        y = torch.amax(xf, dim=axes, keepdim=True)
    else:
        p = node.attr("p")
        y = torch.sum(torch.abs(xf) ** p, dim=axes, keepdim=True) ** (1.0 / p)
    return y.to(x.dtype)


@kernel("ConvTranspose")
def conv_transpose(node, x, w, b=None):
    from ....ir.ops.conv import conv_transpose_geometry
    x, w, b = same_device(x, w, b)
    n = x.dim() - 2
    kernel_shape = tuple(w.shape[2:])
    strides = node.attr("strides") or (1,) * n
    dil = node.attr("dilations") or (1,) * n
    out_shape = node.attr("output_shape")
    if out_shape is not None and len(out_shape) == x.dim():
        out_shape = out_shape[2:]
    geo = conv_transpose_geometry(tuple(x.shape[2:]), kernel_shape, strides, dil, node.attr("pads") or (0,) * (2 * n),
                                  node.attr("output_padding") or (0,) * n, out_shape, node.attr("auto_pad"))
    g = node.attr("group")
    nb, c = x.shape[:2]
    m = w.shape[1] * g
    full = [s * (d - 1) + (k - 1) * dl + 1 for s, d, k, dl in zip(strides, x.shape[2:], kernel_shape, dil)]
    canvas = torch.zeros((nb, g, m // g) + tuple(full), dtype=torch.float64, device=x.device)
    xg = x.double().reshape((nb, g, c // g) + tuple(x.shape[2:]))
    wg = w.double().reshape((g, c // g, m // g) + kernel_shape)
    letters = "abcdefghij"[:n]
    for offset in np.ndindex(*kernel_shape):
        contrib = torch.einsum(f"NGC{letters},GCM->NGM{letters}", xg, wg[(slice(None),) * 3 + offset])
        dst = tuple(slice(o * dl, o * dl + s * (d - 1) + 1, s) for o, dl, s, d in zip(offset, dil, strides, x.shape[2:]))
        canvas[(slice(None),) * 3 + dst] += contrib
    canvas = canvas.reshape((nb, m) + tuple(full))
    y = torch.zeros((nb, m) + tuple(o for o, _ in geo), dtype=torch.float64, device=x.device)
    src, dst = [], []
    for (o, begin), f in zip(geo, full):
        lo, hi = max(begin, 0), min(begin + o, f)
        src.append(slice(lo, max(hi, lo)))
        dst.append(slice(lo - begin, lo - begin + max(hi - lo, 0)))
    y[(slice(None), slice(None)) + tuple(dst)] = canvas[(slice(None), slice(None)) + tuple(src)]
    if b is not None:
        y = y + b.double().reshape((-1,) + (1,) * n)
    return y.to(x.dtype)
