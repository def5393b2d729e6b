"""torch kernels of ``ridgeline.ir.ops.matmul``."""

from __future__ import annotations

import torch

from . import kernel, same_device


@kernel("MatMul")
def matmul(node, a, b):
    return torch.matmul(a, b)


@kernel("Gemm")
def gemm(node, a, b, c=None):
    a = a.T if node.attr("transA") else a
    b = b.T if node.attr("transB") else b
    y = node.attr("alpha") * (a @ b)
    if c is not None:
        y, c = same_device(y, c)
        y = y + node.attr("beta") * c
    return y.to(a.dtype)
