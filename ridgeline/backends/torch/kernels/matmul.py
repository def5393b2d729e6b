"""torch kernels of ``ridgeline.ir.ops.matmul``."""

from __future__ import annotations

import torch

from . import kernel, same_device


def _acc32(x):
    # f16/bf16 products accumulate in f32, as the reference (and matrix units) do
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


@kernel("MatMul")
def matmul(node, a, b):
    if not a.dtype.is_floating_point and a.device.type == "cpu" and a.dtype != torch.int64:
        return torch.matmul(a.to(torch.int64), b.to(torch.int64)).to(a.dtype)  # CPU matmul lacks small ints
    return torch.matmul(_acc32(a), _acc32(b)).to(a.dtype)


@kernel("Gemm")
def gemm(node, a, b, c=None):
    a = a.T if node.attr("transA") else a
    b = b.T if node.attr("transB") else b
    y = node.attr("alpha") * (_acc32(a) @ _acc32(b))
    if c is not None:
        y, c = same_device(y, c)
        y = y + node.attr("beta") * c
    return y.to(a.dtype)



def _per_row(zp, operand):
    # a 1-D zero point or scale of A holds one entry per row (M): make it a column
    if zp.dim() == 1 and zp.numel() > 1 and operand.dim() >= 2:
        return zp.reshape(-1, 1)
    return zp


@kernel("MatMulInteger")
def matmul_integer(node, a, b, a_zero_point=None, b_zero_point=None):
    a, b, a_zero_point, b_zero_point = same_device(a, b, a_zero_point, b_zero_point)
    # int64 on the CPU: torch has no int32 matmul there; the products fit
    a64, b64 = a.to(torch.int64), b.to(torch.int64)
    if a_zero_point is not None:
        a64 = a64 - _per_row(a_zero_point, a).to(torch.int64)
    if b_zero_point is not None:
        b64 = b64 - b_zero_point.to(torch.int64)
    return torch.matmul(a64, b64).to(torch.int32)


@kernel("QLinearMatMul")
def qlinear_matmul(node, a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point):
    a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point = same_device(
        a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point)
    acc = torch.matmul(a.to(torch.int64) - _per_row(a_zero_point, a).to(torch.int64),
                       b.to(torch.int64) - b_zero_point.to(torch.int64))
    real = acc.double() * (_per_row(a_scale, a).double() * b_scale.double())
    q = torch.round(real / y_scale.double().reshape(())) + y_zero_point.double().reshape(())
    info = torch.iinfo(y_zero_point.dtype)
    return torch.clamp(q, info.min, info.max).to(y_zero_point.dtype)


@kernel("Einsum")
def einsum(node, *xs):
    xs = same_device(*xs)
    dt = xs[0].dtype
    return torch.einsum(node.attr("equation"), *[_acc32(x) for x in xs]).to(dt)
