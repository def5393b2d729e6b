"""Reference kernels of ``ridgeline.ir.ops.reduction``: Hardmax (the others are
``kernel_math.reduction``'s)."""

from __future__ import annotations

import numpy as np

from . import kernel


@kernel("Hardmax")
def hardmax(node, x):
    axis = node.attr("axis") % x.ndim
    y = np.zeros_like(x)
    if x.size:
        np.put_along_axis(y, np.expand_dims(np.argmax(x, axis=axis), axis), 1, axis=axis)
    return y
