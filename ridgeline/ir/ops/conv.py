"""Convolutions and pooling over ``(N, C, D1, ..., Dn)`` tensors (ViT patch embeddings, Whisper and
wav2vec front ends, vision heads).

Every op here slides a window of ``kernel_shape`` dims with ``strides`` and ``dilations`` (a
dilated window spans ``w = (k - 1)·d + 1`` positions) over an input padded by ``pads`` (begin
values then end values) or by ``auto_pad``:

* ``NOTSET``: the explicit pads; ``O = floor((D + b + e - w) / s) + 1``, or with ``ceil_mode``
  the ceiling, dropping a last window that would start past the input and its begin padding;
* ``SAME_UPPER`` / ``SAME_LOWER``: ``O = ceil(D / s)``, with ``max(0, (O - 1)·s + w - D)`` pads
  split evenly, the odd one at the end (UPPER) or the beginning (LOWER);
* ``VALID``: no padding, ``O = floor((D - w) / s) + 1``.

Padding is zero for Conv; pools ignore it except ``count_include_pad`` averages, which count the
explicit pads (never the extra positions ``ceil_mode`` reaches).
"""

from __future__ import annotations

import math

from .. import dims as D
from . import envelopes
from ._util import broadcast
from .spec import FLOAT, CostContext, InferContext, op

__all__ = ["window_output", "window_attrs", "window_dims", "conv_transpose_geometry", "AUTO_PADS"]

AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


def window_output(dim, k: int, s: int, d: int, begin: int, end: int, auto_pad: str, ceil_mode: int):
    """The output length of one spatial dim (an int, a symbolic dim, or None if unknown)."""
    w = (k - 1) * d + 1
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        return D.ceildiv(dim, s)
    if auto_pad == "VALID":
        begin = end = 0
    span = D.sub(D.add(dim, begin + end), w)
    if isinstance(span, int):
        if span < 0:
            return -1  # the caller reports it
        if ceil_mode:
            out = -(-span // s) + 1
            if (out - 1) * s >= dim + begin:
                out -= 1
            return out
        return span // s + 1
    if ceil_mode and s > 1:
        return None  # the last-window rule depends on the size
    return D.add(D.floordiv(span, s), 1)


def window_attrs(obj, n: int) -> dict:
    """A windowed op's geometry attributes for ``n`` spatial dims with ONNX's defaults, from a node
    or an inference context: strides, dilations, pads, auto_pad, ceil_mode and ConvTranspose's
    output_padding and output_shape (pools without dilations or ceil_mode get 1s and 0)."""
    def get(name: str):
        return obj.attr(name) if name in obj.spec.attrs else None
    out_shape = get("output_shape")
    if out_shape is not None and len(out_shape) == n + 2:
        out_shape = out_shape[2:]  # some exporters give the full (N, C, ...) shape
    return {"strides": get("strides") or (1,) * n, "dilations": get("dilations") or (1,) * n,
            "pads": get("pads") or (0,) * (2 * n), "auto_pad": get("auto_pad"), "ceil_mode": get("ceil_mode") or 0,
            "output_padding": get("output_padding") or (0,) * n, "output_shape": out_shape}


def window_dims(spatial: tuple, kernel: tuple, a: dict) -> list[tuple]:
    """Per spatial dim: (output length, begin pad, end pad, stride, dilation) for ``window_attrs``
    ``a``; SAME pads are split as the module docstring says (a symbolic dim keeps the explicit ones)."""
    n, auto, pads = len(spatial), a["auto_pad"], a["pads"]
    dims = []
    for i, (d, k, s, dl) in enumerate(zip(spatial, kernel, a["strides"], a["dilations"])):
        b, e = (0, 0) if auto == "VALID" else (pads[i], pads[n + i])
        if auto in ("SAME_UPPER", "SAME_LOWER") and isinstance(d, int):
            total = max(0, (-(-d // s) - 1) * s + (k - 1) * dl + 1 - d)
            b = total // 2 if auto == "SAME_UPPER" else total - total // 2
            e = total - b
        dims.append((window_output(d, k, s, dl, pads[i], pads[n + i], auto, a["ceil_mode"]), b, e, s, dl))
    return dims


def _geometry(ctx: InferContext, x: tuple, kernel: tuple) -> list:
    n = len(x) - 2
    if len(kernel) != n:
        ctx.fail(f"kernel_shape {list(kernel)} does not match {n} spatial dims of {ctx.type(0)}")
    a = window_attrs(ctx, n)
    strides, dilations, pads = a["strides"], a["dilations"], a["pads"]
    if a["auto_pad"] not in AUTO_PADS:
        ctx.fail(f"auto_pad must be one of {', '.join(AUTO_PADS)}, got {a['auto_pad']!r}")
    if len(strides) != n or len(dilations) != n or len(pads) != 2 * n:
        ctx.fail(f"strides/dilations need {n} values and pads {2 * n}")
    if min(strides) < 1 or min(dilations) < 1 or min(pads, default=0) < 0 or min(kernel) < 1:
        ctx.fail("kernel_shape, strides and dilations must be positive and pads non-negative")
    out = []
    for i, (o, *_) in enumerate(window_dims(x[2:], kernel, a)):
        if o == -1 or (isinstance(o, int) and o < 1):
            ctx.fail(f"the {kernel[i]}-wide kernel (dilation {dilations[i]}) does not fit spatial dim {i} "
                     f"of size {x[2 + i]} with pads {pads[i]}+{pads[n + i]}")
        out.append(o)
    return out


def _conv_flops(c: CostContext):
    w = c.in_shape(1)
    per_output = 2
    for d in w[1:]:
        per_output = per_output * d  # (C / group) · prod(kernel) multiply-adds
    return c.out_numel(0) * per_output


def _conv_shape(ctx: InferContext, w_index: int) -> tuple:
    x, w = ctx.shape(0), ctx.shape(w_index)
    if len(x) < 3 or len(w) != len(x):
        ctx.fail(f"X must be (N, C, D1, ...) and W (M, C/group, k1, ...), got {ctx.type(0)}, {ctx.type(w_index)}")
    g = ctx.attr("group")
    c, m = x[1], w[0]
    if isinstance(c, int) and isinstance(w[1], int) and c != w[1] * g:
        ctx.fail(f"{c} input channels do not match W's {w[1]} per group x {g} groups")
    if isinstance(m, int) and m % g:
        ctx.fail(f"{m} output channels are not divisible by {g} groups")
    kernel = ctx.attr("kernel_shape") or tuple(w[2:])
    if not all(isinstance(k, int) for k in kernel):
        ctx.fail("the kernel shape must be static")
    if ctx.attr("kernel_shape") and tuple(w[2:]) != tuple(kernel) and all(isinstance(k, int) for k in w[2:]):
        ctx.fail(f"kernel_shape {list(kernel)} differs from W's {list(w[2:])}")
    return (x[0], m, *_geometry(ctx, x, tuple(kernel)))


_CONV_ATTRS = {"auto_pad": ("str", "NOTSET"), "dilations": ("ints", None), "group": ("int", 1),
               "kernel_shape": ("ints", None), "pads": ("ints", None), "strides": ("ints", None)}


@op("Conv", inputs=["X: T", "W: T", "B?: T"], outputs=["Y: T"], types={"T": FLOAT}, attrs=_CONV_ATTRS,
    category="matmul", flops=_conv_flops, since=22, envelope=envelopes.multilinear)
def _conv(ctx: InferContext):
    """N-D cross-correlation of X with W (``group``s of channels), plus the per-channel bias B."""
    out = _conv_shape(ctx, 1)
    if ctx.has(2) and (ctx.rank(2) != 1 or broadcast(ctx.shape(2), (out[1],)) != (out[1],)):
        ctx.fail(f"B must be 1-D with {out[1]} entries, got {ctx.type(2)}")
    return [out]


@op("ConvInteger", inputs=["x: T1", "w: T2", "x_zero_point?: T1", "w_zero_point?: T2"], outputs=["y: i32"],
    types={"T1": {"i8", "u8"}, "T2": {"i8", "u8"}}, attrs=_CONV_ATTRS, category="matmul",
    flops=_conv_flops, since=10)
def _conv_integer(ctx: InferContext):
    """Conv of ``x - x_zero_point`` with ``w - w_zero_point`` (per tensor, or per output channel
    for w) accumulated in i32; padding contributes zero."""
    return [_conv_shape(ctx, 1)]


def _pool_flops(c: CostContext):
    return c.out_numel(0) * math.prod(c.attr("kernel_shape"))


def _pool_shape(ctx: InferContext) -> tuple:
    x = ctx.shape(0)
    if len(x) < 3:
        ctx.fail(f"X must be (N, C, D1, ...), got {ctx.type(0)}")
    kernel = ctx.attr("kernel_shape")
    if ctx.attr("auto_pad") != "NOTSET" and ctx.attr("ceil_mode"):
        ctx.fail("ceil_mode applies to explicit pads only (auto_pad is set)")
    return (x[0], x[1], *_geometry(ctx, x, tuple(kernel)))


_POOL_ATTRS = {"auto_pad": ("str", "NOTSET"), "ceil_mode": ("int", 0), "dilations": ("ints", None),
               "kernel_shape": ("ints",), "pads": ("ints", None), "strides": ("ints", None)}


@op("AveragePool", inputs=["X: T"], outputs=["Y: T"], types={"T": FLOAT},
    attrs={**_POOL_ATTRS, "count_include_pad": ("int", 0)}, category="reduction", flops=_pool_flops, since=22)
def _average_pool(ctx: InferContext):
    """Mean of each window's input elements (and of its explicit pads if ``count_include_pad``)."""
    return [_pool_shape(ctx)]


@op("MaxPool", inputs=["X: T"], outputs=["Y: T", "Indices?: i64"], types={"T": FLOAT | {"i8", "u8"}},
    attrs={**_POOL_ATTRS, "storage_order": ("int", 0)}, category="reduction", flops=_pool_flops, since=22)
def _max_pool(ctx: InferContext):
    """Maximum of each window, and the flat index of the (first) maximum into X (row-major, or
    column-major over the spatial dims with ``storage_order=1``)."""
    if ctx.attr("storage_order") not in (0, 1):
        ctx.fail(f"storage_order must be 0 (row-major) or 1 (column-major), got {ctx.attr('storage_order')}")
    out = _pool_shape(ctx)
    return [out, out]


@op("LpPool", inputs=["X: T"], outputs=["Y: T"], types={"T": FLOAT}, attrs={**_POOL_ATTRS, "p": ("int", 2)},
    category="reduction", flops=_pool_flops, since=22)
def _lp_pool(ctx: InferContext):
    """``(Σ |x|^p)^(1/p)`` over each window (padding adds nothing)."""
    return [_pool_shape(ctx)]


def _global_shape(ctx: InferContext) -> tuple:
    x = ctx.shape(0)
    if len(x) < 3:
        ctx.fail(f"X must be (N, C, D1, ...), got {ctx.type(0)}")
    return (x[0], x[1]) + (1,) * (len(x) - 2)


for _name, _doc, _attrs in (("GlobalAveragePool", "Mean over all spatial dims (kept as size 1).", {}),
                            ("GlobalMaxPool", "Maximum over all spatial dims (kept as size 1).", {}),
                            ("GlobalLpPool", "Lp norm over all spatial dims (kept as size 1).", {"p": ("int", 2)})):
    def _global(ctx: InferContext):
        return [_global_shape(ctx)]
    _global.__doc__ = _doc
    op(_name, inputs=["X: T"], outputs=["Y: T"], types={"T": FLOAT}, attrs=_attrs, category="reduction",
       flops=lambda c: c.in_numel(0), since=22)(_global)



def conv_transpose_geometry(spatial, kernel, a: dict):
    """Per spatial dim of ConvTranspose, for ``window_attrs`` ``a``: (output length, begin pad). The full result of
    scattering each input position over its dilated kernel has ``s·(D - 1) + (k - 1)·d + 1``
    positions; ``output_padding`` extends it at the end and the pads crop it. An explicit
    ``output_shape`` (or SAME auto_pad, which asks for ``D·s``) decides the pads instead: their total
    is split evenly, the odd one at the end for SAME_UPPER and at the beginning otherwise."""
    n, auto_pad, output_shape = len(spatial), a["auto_pad"], a["output_shape"]
    strides, dilations, pads, output_padding = a["strides"], a["dilations"], a["pads"], a["output_padding"]
    out = []
    for i in range(n):
        full = D.add(D.mul(strides[i], D.sub(spatial[i], 1)), (kernel[i] - 1) * dilations[i] + 1 + output_padding[i])
        if output_shape is not None or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            target = output_shape[i] if output_shape is not None else D.mul(spatial[i], strides[i])
            total = D.sub(full, target)
            if isinstance(total, int):
                begin = total // 2 if auto_pad == "SAME_UPPER" else total - total // 2
            else:
                begin = None
            out.append((target, begin))
        else:
            b, e = (0, 0) if auto_pad == "VALID" else (pads[i], pads[n + i])
            out.append((D.sub(full, b + e), b))
    return out


@op("ConvTranspose", inputs=["X: T", "W: T", "B?: T"], outputs=["Y: T"], types={"T": FLOAT},
    attrs={**_CONV_ATTRS, "output_padding": ("ints", None), "output_shape": ("ints", None)},
    category="matmul", flops=lambda c: 2 * c.in_numel(0) * math.prod(c.in_shape(1)[1:]), since=22,
    envelope=envelopes.multilinear)
def _conv_transpose(ctx: InferContext):
    """The transpose (gradient) of Conv: every input position adds its value times the kernel
    into a strided window of the output; W is ``(C, M / group, k1, ...)``."""
    x, w = ctx.shape(0), ctx.shape(1)
    if len(x) < 3 or len(w) != len(x):
        ctx.fail(f"X must be (N, C, D1, ...) and W (C, M/group, k1, ...), got {ctx.type(0)}, {ctx.type(1)}")
    n, g = len(x) - 2, ctx.attr("group")
    if isinstance(x[1], int) and isinstance(w[0], int) and x[1] != w[0]:
        ctx.fail(f"{x[1]} input channels differ from W's {w[0]}")
    kernel = tuple(ctx.attr("kernel_shape") or w[2:])
    if not all(isinstance(k, int) for k in kernel) or len(kernel) != n:
        ctx.fail("the kernel shape must be static and match the spatial rank")
    a = window_attrs(ctx, n)
    if a["auto_pad"] not in AUTO_PADS:
        ctx.fail(f"auto_pad must be one of {', '.join(AUTO_PADS)}, got {a['auto_pad']!r}")
    if len(a["strides"]) != n or len(a["dilations"]) != n or len(a["pads"]) != 2 * n or \
            len(a["output_padding"]) != n or (a["output_shape"] is not None and len(a["output_shape"]) != n):
        ctx.fail(f"strides/dilations/output_padding/output_shape need {n} values and pads {2 * n}")
    geo = conv_transpose_geometry(x[2:], kernel, a)
    for i, (o, _) in enumerate(geo):
        if isinstance(o, int) and o < 1:
            ctx.fail(f"spatial dim {i} of the output would have size {o} (pads crop more than the result)")
    return [(x[0], D.mul(w[1], g), *(o for o, _ in geo))]
