"""Index logic the numpy reference and the torch backend share, written once.

Each function here computes *where* (which positions, pads, windows, masks, heads) from shapes
and attributes; the kernels compute *what* in their own library. Functions that must also touch
array values (the attention bias, rotary) take the array namespace from their inputs
(:func:`namespace`), a small shim with the array API standard's names.

Why not ``array-api-compat``: it is not installed in our environment, and the handful of
functions these kernels need (``concat``, ``permute_dims``, ``where``, ``arange``, ``astype``)
differ between numpy and torch only in name, so the shim is a few lines; the kernels that torch
has as one call (``scaled_dot_product_attention``, ``conv*d``, ``conv_transpose*d``) call torch.
"""

from __future__ import annotations

from .namespace import namespace

__all__ = ["namespace"]
