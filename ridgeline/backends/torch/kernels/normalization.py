"""Kernels of ``ridgeline.ir.ops.normalization``: the shared ones (``kernel_math.normalization``)."""

from __future__ import annotations

from ...kernel_math.normalization import KERNELS
from . import kernel

for _op, _fn in KERNELS.items():
    kernel(_op)(_fn)
