"""Reference kernels of ``ridgeline.ir.ops.conv``: windows are cut with numpy stride tricks and
reduced in float64; see the spec module for the geometry."""

from __future__ import annotations

import numpy as np

from ...kernel_math.conv import geometry, max_pool_indices, pad_widths, transpose_crop, transpose_geometry, window_kinds
from . import kernel

__all__ = ["geometry", "windows"]


def windows(x: np.ndarray, dims, kernel_shape, fill) -> tuple[np.ndarray, np.ndarray]:
    """``(N, C, *out, *kernel)`` windows of x, and a same-shaped code: 0 input, 1 explicit
    padding, 2 positions only ``ceil_mode`` reaches. Padding holds ``fill``."""
    n = len(dims)
    spatial = x.shape[2:]
    xp = np.pad(x, [(0, 0), (0, 0)] + pad_widths(dims, kernel_shape, spatial), constant_values=fill)
    spans = [(k - 1) * dl + 1 for (_, _, _, _, dl), k in zip(dims, kernel_shape)]
    win = np.lib.stride_tricks.sliding_window_view(xp, spans, axis=tuple(range(2, 2 + n)))
    sel = tuple(slice(0, (out - 1) * s + 1, s) for out, _, _, s, _ in dims)
    dil = tuple(slice(None, None, dl) for _, _, _, _, dl in dims)
    win = win[(slice(None), slice(None)) + sel + dil]
    return win, np.broadcast_to(window_kinds(dims, kernel_shape, spatial), win.shape)


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


def _pool(node, x, reduce):
    kernel_shape = tuple(node.attr("kernel_shape"))
    dims = geometry(node, x.shape[2:], kernel_shape)
    win, kind = windows(x.astype(np.float64), dims, kernel_shape, 0.0)
    axes = tuple(range(-len(kernel_shape), 0))
    return reduce(win, kind, axes)


@kernel("AveragePool")
def average_pool(node, x):
    def avg(win, kind, axes):
        total = np.sum(np.where(kind == 0, win, 0.0), axis=axes)
        counted = (kind == 0) | ((kind == 1) & bool(node.attr("count_include_pad")))
        return total / np.sum(counted, axis=axes)
    return _pool(node, x, avg).astype(x.dtype)


@kernel("LpPool")
def lp_pool(node, x):
    p = node.attr("p")
    return _pool(node, x, lambda win, kind, axes: np.sum(np.where(kind == 0, np.abs(win) ** p, 0.0),
                                                         axis=axes) ** (1.0 / p)).astype(x.dtype)


@kernel("MaxPool")
def max_pool(node, x):
    kernel_shape = tuple(node.attr("kernel_shape"))
    dims = geometry(node, x.shape[2:], kernel_shape)
    win, kind = windows(x.astype(np.float64), dims, kernel_shape, 0.0)
    n = len(kernel_shape)
    axes = tuple(range(-n, 0))
    masked = np.where(kind == 0, win, -np.inf)
    y = np.max(masked, axis=axes).astype(x.dtype)
    if len(node.outputs) == 1:
        return y
    best = np.argmax(masked.reshape(masked.shape[: 2 + n] + (-1,)), axis=-1)   # the first maximum
    return y, max_pool_indices(best, dims, kernel_shape, x.shape, node.attr("storage_order"))



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

