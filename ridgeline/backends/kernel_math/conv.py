"""Convolution and pooling geometry (``ridgeline.ir.ops.conv``): output lengths, pads, which
window positions read input or padding, and how a transposed convolution is cropped; and the
kernels (``KERNELS``): the pools (windows cut and reduced in float64), and the reference
convolutions — Conv and ConvInteger as sums over the windows in float64 / int64, ConvTranspose
tap by tap (torch runs its own ``conv*d`` for these three)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...ir.ops.conv import conv_transpose_geometry, window_attrs, window_dims
from .namespace import namespace

__all__ = ["KERNELS", "Dim", "geometry", "integer_operands", "max_pool_indices", "pad_widths", "transpose_crop",
           "transpose_geometry", "window_kinds", "windows"]

#: per spatial dim: (output length, begin pad, end pad, stride, dilation)
Dim = tuple[int, int, int, int, int]


def geometry(node, spatial: tuple, kernel_shape: tuple) -> list[Dim]:
    """Per spatial dim: (output length, begin pad, end pad, stride, dilation), by the op spec."""
    return window_dims(spatial, kernel_shape, window_attrs(node, len(spatial)))


def pad_widths(dims: list[Dim], kernel_shape: tuple, spatial: tuple) -> list[tuple[int, int]]:
    """Per spatial dim, the (begin, end) padding that every window needs: the begin pad and as
    much at the end as the last window reaches (more than the end pad under ``ceil_mode``)."""
    widths = []
    for (out, b, _, s, dl), k, size in zip(dims, kernel_shape, spatial):
        need = (out - 1) * s + (k - 1) * dl + 1
        widths.append((b, max(0, need - size - b)))
    return widths


def window_kinds(dims: list[Dim], kernel_shape: tuple, spatial: tuple) -> np.ndarray:
    """``(*out, *kernel)`` codes of every window position: 0 input, 1 explicit padding, 2 a
    position only ``ceil_mode`` reaches (from shapes alone; the pools mask with them)."""
    n = len(dims)
    kind = None
    for i, ((out, b, e, s, dl), k, size, (_, right)) in enumerate(
            zip(dims, kernel_shape, spatial, pad_widths(dims, kernel_shape, spatial))):
        # padded coordinate of output o, tap j: o·s + j·dl, i.e. input position o·s + j·dl - b
        pos = (np.arange(out)[:, None] * s + np.arange(k)[None, :] * dl) - b
        codes = np.where((pos >= 0) & (pos < size), 0, np.where(pos < size + e, 1, 2)).astype(np.int8)
        shape = [1] * (2 * n)
        shape[i], shape[n + i] = out, k
        codes = codes.reshape(shape)
        kind = codes if kind is None else np.maximum(kind, codes)
    return kind if kind is not None else np.zeros((), np.int8)


def transpose_crop(geo: list[tuple[int, int]], full: list[int]) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
    """Slices (source in the uncropped result of length ``full``, destination in the output)
    that crop a transposed convolution by its begin pads; what falls outside stays zero
    (``output_padding``, negative pads)."""
    src, dst = [], []
    for (o, begin), f in zip(geo, full):
        lo, hi = max(begin, 0), min(begin + o, f)
        src.append(slice(lo, max(hi, lo)))
        dst.append(slice(lo - begin, lo - begin + max(hi - lo, 0)))
    lead = (slice(None), slice(None))
    return lead + tuple(src), lead + tuple(dst)


def transpose_geometry(node, spatial: tuple, kernel_shape: tuple) -> tuple[list[int], list[int], list[tuple[int, int]]]:
    """ConvTranspose's strides, dilations and per spatial dim (output length, begin crop), by
    the spec's ``conv_transpose_geometry`` (explicit or automatic pads, output_padding/shape)."""
    a = window_attrs(node, len(spatial))
    strides, dil = list(a["strides"]), list(a["dilations"])
    geo = conv_transpose_geometry(spatial, kernel_shape, a)
    return strides, dil, geo


def max_pool_indices(best, dims: list[Dim], kernel_shape: tuple, x_shape: tuple, storage_order: int):
    """MaxPool's ``Indices``: the flat offset into X of each window's first maximum, from ``best``,
    the argmax over each flattened window (an array of numpy or torch; the result is int64)."""
    from .namespace import namespace
    xp = namespace(best)
    n, spatial = len(kernel_shape), tuple(x_shape[2:])
    coords, rem = [], best
    for i, (out, b, _, s, dl) in enumerate(dims):   # window position -> input coordinate
        inner = math.prod(kernel_shape[i + 1:])
        tap, rem = rem // inner, rem % inner
        shape = [1] * (2 + n)
        shape[2 + i] = out
        coords.append((xp.arange(out, best) * s - b).reshape(shape) + tap * dl)
    nb, c = x_shape[:2]
    base = (xp.arange(nb, best).reshape(-1, 1) * c + xp.arange(c, best).reshape(1, -1)).reshape((nb, c) + (1,) * n)
    offset, stride = 0, 1
    for i in range(n):
        if storage_order:   # column-major over the spatial dims
            offset, stride = offset + coords[i] * stride, stride * spatial[i]
        else:
            offset = offset * spatial[i] + coords[i]
    return xp.astype(base * math.prod(spatial) + offset, xp.int64)


def windows(x: Any, dims: list[Dim], kernel_shape: tuple, fill: float) -> tuple[Any, Any]:
    """``(N, C, *out, *kernel)`` windows of x, and a same-shaped code: 0 input, 1 explicit
    padding, 2 positions only ``ceil_mode`` reaches. Padding holds ``fill``."""
    xp = namespace(x)
    n, spatial = len(dims), tuple(x.shape[2:])
    win = xp.pad_constant(x, [(0, 0), (0, 0)] + pad_widths(dims, kernel_shape, spatial), fill)
    for i, ((out, _, _, s, dl), k) in enumerate(zip(dims, kernel_shape)):
        win = xp.windows(win, (k - 1) * dl + 1, 2 + i)[(slice(None),) * (2 + i) + (slice(0, (out - 1) * s + 1, s),)]
    win = win[(slice(None),) * (2 + n) + tuple(slice(None, None, dl) for *_, dl in dims)]
    kind = xp.from_numpy(window_kinds(dims, kernel_shape, spatial), like=x)
    return win, xp.module.broadcast_to(kind, win.shape)


def _pool(node, x, reduce):
    """``reduce(windows, codes, kernel axes)`` over the pool's windows of x in float64."""
    xp = namespace(x)
    kernel_shape = tuple(node.attr("kernel_shape"))
    dims = geometry(node, tuple(x.shape[2:]), kernel_shape)
    win, kind = windows(xp.astype(x, xp.float64), dims, kernel_shape, 0.0)
    return reduce(xp, win, kind, tuple(range(win.ndim - len(kernel_shape), win.ndim)))


def average_pool(node, x):
    def avg(xp, win, kind, axes):
        total = xp.sum(xp.where(kind == 0, win, 0.0), axes)
        counted = (kind == 0) | ((kind == 1) & bool(node.attr("count_include_pad")))
        return total / xp.sum(counted, axes)
    return namespace(x).astype(_pool(node, x, avg), x.dtype)


def lp_pool(node, x):
    p = node.attr("p")
    y = _pool(node, x, lambda xp, win, kind, axes: xp.sum(xp.where(kind == 0, xp.abs(win) ** p, 0.0), axes) ** (1 / p))
    return namespace(x).astype(y, x.dtype)


def max_pool(node, x):
    kernel_shape = tuple(node.attr("kernel_shape"))
    dims = geometry(node, tuple(x.shape[2:]), kernel_shape)
    masked = _pool(node, x, lambda xp, win, kind, axes: xp.where(kind == 0, win, float("-inf")))
    n = len(kernel_shape)
    xp = namespace(x)
    y = xp.astype(xp.max(masked, tuple(range(2 + n, 2 + 2 * n))), x.dtype)
    if len(node.outputs) == 1:
        return y
    best = xp.argmax(masked.reshape(tuple(masked.shape[:2 + n]) + (-1,)), -1)   # the first maximum
    return y, max_pool_indices(best, dims, kernel_shape, tuple(x.shape), node.attr("storage_order"))


def global_pool(node, x):
    """GlobalAveragePool / GlobalMaxPool / GlobalLpPool over every spatial dim, in float64."""
    xp = namespace(x)
    axes = tuple(range(2, x.ndim))
    xf = xp.astype(x, xp.float64)
    if node.op == "GlobalAveragePool":
        y = xp.mean(xf, axes, keepdims=True)
    elif node.op == "GlobalMaxPool":
        y = xp.max(xf, axes, keepdims=True)
    else:
        p = node.attr("p")
        y = xp.sum(xp.abs(xf) ** p, axes, keepdims=True) ** (1.0 / p)
    return xp.astype(y, x.dtype)


def _conv(x, w, node, fill=0.0):
    """The convolution of x by w summed over the windows (in their dtype): (N, M, *out)."""
    xp = namespace(x)
    n = x.ndim - 2
    kernel_shape = tuple(w.shape[2:])
    dims = geometry(node, tuple(x.shape[2:]), kernel_shape)
    win, _ = windows(x, dims, kernel_shape, fill)  # (N, C, *O, *k)
    g = node.attr("group")
    nb, c = x.shape[:2]
    m = w.shape[0]
    outs = tuple(d[0] for d in dims)
    win = win.reshape((nb, g, c // g) + outs + kernel_shape)
    wg = w.reshape((g, m // g, c // g) + kernel_shape)
    letters = "abcdefghij"[:n]
    ks = "klmnopqrst"[:n]
    y = xp.contract(f"NGC{letters}{ks},GMC{ks}->NGM{letters}", win, wg)
    return y.reshape((nb, m) + outs)


def _bias(y, b):
    """y plus the per-channel bias b, in float64."""
    return y if b is None else y + namespace(b).astype(b, namespace(b).float64).reshape((-1,) + (1,) * (y.ndim - 2))


def conv(node, x, w, b=None):
    xp = namespace(x)
    x, w, b = xp.same_device(x, w, b)
    return xp.astype(_bias(_conv(xp.astype(x, xp.float64), xp.astype(w, xp.float64), node), b), x.dtype)


def integer_operands(x, w, x_zero_point=None, w_zero_point=None):
    """ConvInteger's operands less their zero points (w's per output channel or per tensor), in int64."""
    xp = namespace(x)
    xs = xp.astype(x, xp.int64) - (xp.astype(x_zero_point, xp.int64) if x_zero_point is not None else 0)
    ws = xp.astype(w, xp.int64)
    if w_zero_point is not None:
        zp = xp.astype(w_zero_point, xp.int64)
        ws = ws - (zp.reshape((-1,) + (1,) * (w.ndim - 1)) if math.prod(zp.shape) > 1 else zp.reshape(()))
    return xs, ws


def conv_integer(node, x, w, x_zero_point=None, w_zero_point=None):
    xp = namespace(x)
    xs, ws = integer_operands(*xp.same_device(x, w, x_zero_point, w_zero_point))
    return xp.astype(_conv(xs, ws, node, fill=0), xp.dtype("i32"))


def conv_transpose(node, x, w, b=None):
    xp = namespace(x)
    x, w, b = xp.same_device(x, w, b)
    n = x.ndim - 2
    kernel_shape = tuple(w.shape[2:])
    strides, dil, geo = transpose_geometry(node, tuple(x.shape[2:]), kernel_shape)
    g = node.attr("group")
    nb, c = x.shape[:2]
    m = w.shape[1] * g
    full = [s * (d - 1) + (k - 1) * dl + 1 for s, d, k, dl in zip(strides, x.shape[2:], kernel_shape, dil)]
    canvas = xp.zeros((nb, g, m // g) + tuple(full), xp.float64, like=x)
    xg = xp.astype(x, xp.float64).reshape((nb, g, c // g) + tuple(x.shape[2:]))
    wg = xp.astype(w, xp.float64).reshape((g, c // g, m // g) + kernel_shape)
    letters = "abcdefghij"[:n]
    for offset in np.ndindex(*kernel_shape):   # each tap adds its product at its strided positions
        contrib = xp.einsum(f"NGC{letters},GCM->NGM{letters}", xg, wg[(slice(None),) * 3 + offset])
        dst = tuple(slice(o * dl, o * dl + s * (d - 1) + 1, s)
                    for o, dl, s, d in zip(offset, dil, strides, x.shape[2:]))
        canvas[(slice(None),) * 3 + dst] += contrib
    canvas = canvas.reshape((nb, m) + tuple(full))
    y = xp.zeros((nb, m) + tuple(o for o, _ in geo), xp.float64, like=x)
    src, dst = transpose_crop(geo, full)
    y[dst] = canvas[src]
    return xp.astype(_bias(y, b), x.dtype)


KERNELS = {"AveragePool": average_pool, "LpPool": lp_pool, "MaxPool": max_pool,
           **{op: global_pool for op in ("GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool")},
           "Conv": conv, "ConvInteger": conv_integer, "ConvTranspose": conv_transpose}
