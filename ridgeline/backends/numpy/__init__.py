"""The numpy backend: the reference that defines what every op means."""

from __future__ import annotations

from ...ir import Graph, Node
from ..base import ExecutingBackend, InterpretedExecutable
from .interpreter import Interpreter, evaluate
from .kernels import get_kernel

__all__ = ["NumpyBackend", "NumpyExecutable", "Interpreter", "reference_evaluator"]


def reference_evaluator():
    """``fn(node, arrays) -> arrays`` by the numpy reference kernels, for ``fold-constants``.

    Passes sit below backends and may not import them; the layers above hand them this.
    """
    return evaluate


class NumpyExecutable(InterpretedExecutable):
    """A graph bound to the reference interpreter (``tiles=False``: ignore tile schedules)."""

    def __init__(self, graph: Graph, *, tiles: bool = True):
        self.graph = graph
        self.interpreter = Interpreter(graph, tiles=bool(tiles))


class NumpyBackend(ExecutingBackend):
    """Reference interpreter: one plain numpy kernel per op."""

    name = "numpy"
    default_pipeline = ""
    description = "reference interpreter: one plain numpy kernel per op; defines meaning"
    accepts = {"tiles": "run nodes with a tile schedule block by block (default) or as one kernel"}
    executable = NumpyExecutable

    def supports(self, node: Node) -> bool:
        return node.op == "Fused" or get_kernel(node.op) is not None
