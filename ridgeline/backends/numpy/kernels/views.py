"""Kernels of ``ridgeline.ir.ops.views``: the shared ones (``kernel_math.views``)."""

from __future__ import annotations

from ...kernel_math.views import KERNELS
from . import kernel

for _op, _fn in KERNELS.items():
    kernel(_op)(_fn)
