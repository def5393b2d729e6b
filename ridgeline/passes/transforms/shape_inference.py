"""``shape-inference``: re-derive every output type from the op specs.

Importers and ``Graph.bind`` already do this; run it after editing a graph by hand, or to turn
the unknown dims (``_u…``) an exporter left into what the specs can now say — for instance a
Reshape whose target shape became known after ``fold-constants``.
"""

from __future__ import annotations

from ...ir import Graph
from ...ir.infer import refine_types
from ..base import Pass, PassContext, PassResult
from ..registry import register_pass

__all__ = ["ShapeInference"]


@register_pass("shape-inference")
class ShapeInference(Pass):
    """Refine every value's type from the op specs (symbolic dims, computed shapes)."""

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        changed = refine_types(graph)
        return PassResult(graph, changed)
