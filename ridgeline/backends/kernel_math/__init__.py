"""Every op's kernel, written once for numpy and torch, one module per category of ``ir.ops``
(each module's ``KERNELS``), with the index logic they share (positions, pads, windows, masks,
heads). Kernels take the array namespace from their inputs (:func:`namespace`), a small shim with
the array API standard's names; run on numpy they are the reference that defines each op.

Why not ``array-api-compat``: it is not installed in our environment, and the handful of
functions these kernels need (``concat``, ``permute_dims``, ``where``, ``arange``, ``astype``)
differ between numpy and torch only in name, so the shim is short; the kernels that torch has as
one call (``scaled_dot_product_attention``, ``conv*d``, ``conv_transpose*d``) are torch's own
(``backends/torch/kernels``).
"""

from __future__ import annotations

from .namespace import namespace

__all__ = ["namespace"]
