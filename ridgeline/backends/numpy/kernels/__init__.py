"""The numpy reference kernels, one per op, grouped like ``ridgeline.ir.ops``.

A kernel is ``fn(node, *inputs) -> array | tuple[array, ...]``: it reads attributes from ``node``
(``node.attr(name)`` applies the spec's defaults) and returns the outputs. Kernels are plain and
obviously correct rather than fast: they define what every op means.
"""

from __future__ import annotations

from ...kernel_table import KernelTable

__all__ = ["TABLE", "all_kernels", "get_kernel", "kernel"]

TABLE = KernelTable(__name__, "numpy", shared="ridgeline.backends.kernel_math")
kernel = TABLE.kernel
get_kernel = TABLE.get
all_kernels = TABLE.all
