"""Reference kernels of ``ridgeline.ir.ops.conv``: Conv and ConvInteger over the shared windows
(``kernel_math.conv``) in float64 / int64, ConvTranspose tap by tap; the pools are
``kernel_math.conv``'s."""

from __future__ import annotations

import numpy as np

from ...kernel_math.conv import geometry, transpose_crop, transpose_geometry, windows
from . import kernel

__all__ = ["geometry"]


def _conv(x, w, node, fill=0.0):
    n = x.ndim - 2
    kernel_shape = tuple(w.shape[2:])
    dims = geometry(node, x.shape[2:], kernel_shape)
    win, _ = windows(x, dims, kernel_shape, fill)  # (N, C, *O, *k)
    g = node.attr("group")
    nb, c = x.shape[:2]
    m = w.shape[0]
    outs = tuple(d[0] for d in dims)
    win = win.reshape((nb, g, c // g) + outs + kernel_shape)
    wg = w.reshape((g, m // g, c // g) + kernel_shape)
    letters = "abcdefghij"[:n]
    ks = "klmnopqrst"[:n]
    y = np.einsum(f"NGC{letters}{ks},GMC{ks}->NGM{letters}", win, wg, optimize=True)
    return y.reshape((nb, m) + outs)


@kernel("Conv")
def conv(node, x, w, b=None):
    y = _conv(x.astype(np.float64), w.astype(np.float64), node)
    if b is not None:
        y = y + b.astype(np.float64).reshape((-1,) + (1,) * (x.ndim - 2))
    return y.astype(x.dtype)


@kernel("ConvInteger")
def conv_integer(node, x, w, x_zero_point=None, w_zero_point=None):
    xs = x.astype(np.int64) - (x_zero_point.astype(np.int64) if x_zero_point is not None else 0)
    ws = w.astype(np.int64)
    if w_zero_point is not None:
        zp = w_zero_point.astype(np.int64)
        ws = ws - (zp.reshape((-1,) + (1,) * (w.ndim - 1)) if zp.size > 1 else zp.reshape(()))
    return _conv(xs, ws, node, fill=0).astype(np.int32)



@kernel("ConvTranspose")
def conv_transpose(node, x, w, b=None):
    n = x.ndim - 2
    kernel_shape = tuple(w.shape[2:])
    strides, dil, geo = transpose_geometry(node, x.shape[2:], kernel_shape)
    g = node.attr("group")
    nb, c = x.shape[:2]
    m = w.shape[1] * g
    full = [s * (d - 1) + (k - 1) * dl + 1 for s, d, k, dl in zip(strides, x.shape[2:], kernel_shape, dil)]
    canvas = np.zeros((nb, g, m // g) + tuple(full))
    xg = x.astype(np.float64).reshape((nb, g, c // g) + x.shape[2:])
    wg = w.astype(np.float64).reshape((g, c // g, m // g) + kernel_shape)
    letters = "abcdefghij"[:n]
    for offset in np.ndindex(*kernel_shape):
        contrib = np.einsum(f"NGC{letters},GCM->NGM{letters}", xg, wg[(slice(None),) * 3 + offset])
        dst = tuple(slice(o * dl, o * dl + s * (d - 1) + 1, s)
                    for o, dl, s, d in zip(offset, dil, strides, x.shape[2:]))
        canvas[(slice(None),) * 3 + dst] += contrib
    canvas = canvas.reshape((nb, m) + tuple(full))
    y = np.zeros((nb, m) + tuple(o for o, _ in geo))
    src, dst = transpose_crop(geo, full)
    y[dst] = canvas[src]
    if b is not None:
        y = y + b.astype(np.float64).reshape((-1,) + (1,) * n)
    return y.astype(x.dtype)

