"""Constant evaluation for ``fold-constants``, without passes importing a backend.

Passes sit below backends (``passes ← backends``), yet folding ``Transpose(W)`` or a causal-mask
``Range``/``LessOrEqual`` chain needs the ops' meaning, which the numpy reference kernels define.
So folding takes an ``Evaluator`` — ``fn(node, input_arrays) -> output_arrays`` — from its
caller: ``ridgeline.api.optimize`` and the CLI inject the numpy reference interpreter's
``run_node``; Python users may pass their own (``run_pipeline(g, p, evaluator=...)``).

Without an evaluator, ``fold-constants`` still folds everything the op specs can compute
symbolically — every Shape/Gather/Concat/Unsqueeze/... chain of an exported model once its
dims are bound — and reports how many constant nodes it had to leave.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

if TYPE_CHECKING:
    from ..ir import Node

__all__ = ["Evaluator"]

#: ``evaluator(node, inputs) -> outputs``: one array per output of ``node``; raises on failure.
Evaluator = Callable[["Node", Sequence["np.ndarray | None"]], Sequence[np.ndarray]]
