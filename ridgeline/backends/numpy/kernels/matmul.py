"""Reference kernels of ``ridgeline.ir.ops.matmul``."""

from __future__ import annotations

import numpy as np

from . import kernel


def _accumulate_f32(x: np.ndarray) -> np.ndarray:
    # f16/bf16 products accumulate in f32, as matrix units do; the result is rounded once
    return x.astype(np.float32) if x.dtype == np.float16 or x.dtype.name == "bfloat16" else x


@kernel("MatMul")
def matmul(node, a, b):
    return np.matmul(_accumulate_f32(a), _accumulate_f32(b)).astype(a.dtype, copy=False)


@kernel("Gemm")
def gemm(node, a, b, c=None):
    a = a.T if node.attr("transA") else a
    b = b.T if node.attr("transB") else b
    y = node.attr("alpha") * (_accumulate_f32(a) @ _accumulate_f32(b))
    if c is not None:
        y = y + node.attr("beta") * c
    return np.asarray(y).astype(a.dtype, copy=False)


def _per_row(zp: np.ndarray, operand: np.ndarray) -> np.ndarray:
    # a 1-D zero point or scale of A holds one entry per row (M): make it a column
    if zp.ndim == 1 and zp.size > 1 and operand.ndim >= 2:
        return zp.reshape(-1, 1)
    return zp


@kernel("MatMulInteger")
def matmul_integer(node, a, b, a_zero_point=None, b_zero_point=None):
    a32, b32 = a.astype(np.int32), b.astype(np.int32)
    if a_zero_point is not None:
        a32 = a32 - _per_row(a_zero_point, a).astype(np.int32)
    if b_zero_point is not None:
        b32 = b32 - b_zero_point.astype(np.int32)
    return np.matmul(a32, b32)


@kernel("QLinearMatMul")
def qlinear_matmul(node, a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point):
    acc = np.matmul(a.astype(np.int64) - _per_row(a_zero_point, a).astype(np.int64),
                    b.astype(np.int64) - b_zero_point.astype(np.int64))
    real = acc * (_per_row(a_scale, a).astype(np.float64) * b_scale.astype(np.float64))
    q = np.rint(real / y_scale.astype(np.float64).reshape(())) + y_zero_point.astype(np.float64).reshape(())
    info = np.iinfo(y_zero_point.dtype)
    return np.clip(q, info.min, info.max).astype(y_zero_point.dtype)


@kernel("Einsum")
def einsum(node, *xs):
    dt = xs[0].dtype
    # low-precision floats accumulate in float32 (as matmul units do); others in their own type
    work = [x.astype(np.float32) for x in xs] if dt in (np.float16,) or dt.name == "bfloat16" else xs
    return np.asarray(np.einsum(node.attr("equation"), *work)).astype(dt)
