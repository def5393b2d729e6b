"""The numpy reference's kernel table: the shared kernels (``ridgeline.backends.kernel_math``), one
per op, over numpy arrays. They are plain and obviously correct rather than fast: they define
what every op means. A module here would register numpy's own kernel for an op (none does).
"""

from __future__ import annotations

from ...kernel_table import KernelTable

__all__ = ["TABLE", "all_kernels", "get_kernel", "kernel"]

TABLE = KernelTable(__name__, "numpy", shared="ridgeline.backends.kernel_math")
kernel = TABLE.kernel
get_kernel = TABLE.get
all_kernels = TABLE.all
