"""Kernels of ``ridgeline.ir.ops.matmul``, one for numpy and torch: f16/bf16 products accumulate
in f32 (as matrix units do) and are rounded once; integer products of narrower types are formed in
int64 and wrap to the output type (the same values as a wrapping product in the type itself, and
what torch's CPU matmul, which has no small-integer kernels, needs). Both tables register
``KERNELS``."""

from __future__ import annotations

import math
from typing import Any

from .namespace import namespace

__all__ = ["KERNELS"]


def _wide(xp, x, ints: bool = True) -> Any:
    """``x`` in the type its products are formed in (``ints``: narrow integers too)."""
    name = xp.name_of(x.dtype)
    if name in ("f16", "bf16"):
        return xp.astype(x, xp.float32)
    return xp.astype(x, xp.int64) if ints and name[0] in "iu" and name not in ("i64", "u64") else x


def matmul(node, a, b):
    xp = namespace(a)
    a, b = xp.same_device(a, b)
    return xp.astype(xp.asarray(xp.matmul(_wide(xp, a), _wide(xp, b))), a.dtype)


def gemm(node, a, b, c=None):
    xp = namespace(a)
    a, b, c = xp.same_device(a, b, c)
    a = a.T if node.attr("transA") else a
    b = b.T if node.attr("transB") else b
    y = node.attr("alpha") * (_wide(xp, a, ints=False) @ _wide(xp, b, ints=False))
    if c is not None:
        y = y + node.attr("beta") * c
    return xp.astype(xp.asarray(y), a.dtype)


def _per_row(zp, operand) -> Any:
    # a 1-D zero point or scale of A holds one entry per row (M): make it a column
    if zp.ndim == 1 and math.prod(zp.shape) > 1 and operand.ndim >= 2:
        return zp.reshape(-1, 1)
    return zp


def matmul_integer(node, a, b, a_zero_point=None, b_zero_point=None):
    xp = namespace(a)
    a, b, a_zero_point, b_zero_point = xp.same_device(a, b, a_zero_point, b_zero_point)
    a64, b64 = xp.astype(a, xp.int64), xp.astype(b, xp.int64)      # the products of 8-bit values fit
    if a_zero_point is not None:
        a64 = a64 - xp.astype(_per_row(a_zero_point, a), xp.int64)
    if b_zero_point is not None:
        b64 = b64 - xp.astype(b_zero_point, xp.int64)
    return xp.astype(xp.matmul(a64, b64), xp.dtype("i32"))


def qlinear_matmul(node, a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point):
    xp = namespace(a)
    a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point = xp.same_device(
        a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point)
    i64, f64 = xp.int64, xp.float64
    acc = xp.matmul(xp.astype(a, i64) - xp.astype(_per_row(a_zero_point, a), i64),
                    xp.astype(b, i64) - xp.astype(b_zero_point, i64))
    real = xp.astype(acc, f64) * (xp.astype(_per_row(a_scale, a), f64) * xp.astype(b_scale, f64))
    q = xp.rint(real / xp.astype(y_scale, f64).reshape(())) + xp.astype(y_zero_point, f64).reshape(())
    info = xp.iinfo(y_zero_point.dtype)
    return xp.astype(xp.clip(q, info.min, info.max), y_zero_point.dtype)


def einsum(node, *xs):
    xp = namespace(*xs)
    xs = xp.same_device(*xs)
    dt = xs[0].dtype
    # low-precision floats accumulate in float32 (as matmul units do); others in their own type
    work = [xp.astype(x, xp.float32) if xp.name_of(x.dtype) in ("f16", "bf16") else x for x in xs]
    return xp.astype(xp.asarray(xp.einsum(node.attr("equation"), *work)), dt)


KERNELS = {"MatMul": matmul, "Gemm": gemm, "MatMulInteger": matmul_integer, "QLinearMatMul": qlinear_matmul,
           "Einsum": einsum}
