"""The reference interpreter: the generic one (``backends/interpreter.py``) with the numpy kernels.

It adds tile schedules: a node with ``meta["tile"]`` runs block by block (``tiled.py``) unless
``tiles=False``. Subclasses override ``call_kernel`` to swap kernels (the llvm backend does,
falling back to this one) or ``run_node`` to observe every node (profilers, debuggers, the
float64 oracle). A ``Fused`` body runs in a nested interpreter of the subclass's own kind.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...ir import Graph, Node
from ..interpreter import NUMPY, bind_inputs, call_kernel, evaluate_node
from ..interpreter import Interpreter as _Generic
from .kernels import TABLE
from .tiled import run_tiled

__all__ = ["Interpreter", "bind_inputs", "call_reference", "evaluate"]


def call_reference(node: Node, args: list, *, tiles: bool = True, check: bool = True) -> Any:
    """The numpy kernel of ``node`` on ``args``, by its tile schedule when it has one and
    ``tiles`` is on (``tiled.py`` says None when it cannot: then the plain kernel)."""
    if tiles and "tile" in node.meta:
        out = run_tiled(node, args)
        if out is not None:
            return out
    if node.op == "Fused":
        return tuple(Interpreter(node.body, check=check, tiles=tiles).run_values(args))
    return call_kernel(node, args, TABLE)


def evaluate(node: Node, args: list, *, check: bool = True) -> list[np.ndarray]:
    """One node evaluated by the numpy reference (tile schedules honoured), results checked."""
    return evaluate_node(node, args, TABLE, NUMPY, check=check, call=call_reference)


class Interpreter(_Generic):
    """Runs ``graph`` with numpy kernels; ``tiles=False`` ignores tile schedules (the untiled
    reference of a tiled graph)."""

    def __init__(self, graph: Graph, *, check: bool = True, tiles: bool = True):
        super().__init__(graph, TABLE, NUMPY, check=check)
        self.tiles = tiles

    def call_kernel(self, node: Node, args: list[np.ndarray | None]) -> Any:
        if self.tiles and "tile" in node.meta:
            out = self.call_tiled(node, args)
            if out is not None:
                return out
        return super().call_kernel(node, args)   # a Fused body: a nested interpreter of this kind

    def call_tiled(self, node: Node, args: list[np.ndarray | None]) -> Any:
        """``node`` run block by block by its tile schedule; None falls back to the plain kernel."""
        return run_tiled(node, args)

    def nested(self, body: Graph) -> Interpreter:
        sub = type(self)(body, check=self.check)
        sub.tiles = self.tiles
        return sub
