"""torch's own functions for elementwise ops whose shared kernel (``kernel_math``) computes the
reference's formula in float64: ``torch.sigmoid`` and ``F.gelu`` run in the input's dtype."""

from __future__ import annotations

import torch

from . import kernel


@kernel("Sigmoid")
def sigmoid(node, x):
    return torch.sigmoid(x)


@kernel("Gelu")
def gelu(node, x):
    y = torch.nn.functional.gelu(x, approximate="tanh" if node.attr("approximate") == "tanh" else "none")
    # the tails as the reference (float64) gives them: Gelu(x) = x for x > 10 and 0 below -10
    # (|Gelu(-10)| < 1e-22); in f32 torch overflows near the max (inf), gives NaN at -inf and
    # -4e31 for the tanh form at -1e30
    return torch.where(x > 10, x, torch.where(x < -10, torch.zeros_like(x), y))
