"""Reference kernels of ``ridgeline.ir.ops.matmul``."""

from __future__ import annotations

import numpy as np

from . import kernel


@kernel("MatMul")
def matmul(node, a, b):
    return np.matmul(a, b)


@kernel("Gemm")
def gemm(node, a, b, c=None):
    a = a.T if node.attr("transA") else a
    b = b.T if node.attr("transB") else b
    y = node.attr("alpha") * (a @ b)
    if c is not None:
        y = y + node.attr("beta") * c
    return np.asarray(y).astype(a.dtype, copy=False)
