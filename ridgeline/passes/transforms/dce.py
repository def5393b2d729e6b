"""``dce``: remove nodes and constants whose results nothing reads.

Graph inputs and outputs are the model's interface and always stay. Walking the nodes from the
last to the first removes whole dead chains in one sweep: a node's users come after it.
"""

from __future__ import annotations

from ...ir import Graph
from ..base import Pass, PassContext, PassResult
from ..registry import register_pass

__all__ = ["DeadCodeElimination"]


@register_pass("dce")
class DeadCodeElimination(Pass):
    """Remove nodes and constants whose results are never used."""
    touches = ("elementwise", "movement")  # what check_pass generates for it

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        dead_nodes: dict[int, object] = {}
        for n in reversed(graph.nodes):  # users before producers: a node is dead if only dead nodes read it
            if not any(id(u) not in dead_nodes for v in n.outputs for u, _ in v.uses):
                dead_nodes[id(n)] = n
        graph.erase_nodes(dead_nodes.values())
        nodes = len(dead_nodes)
        dead = [c for c in graph.constants.values() if not c.uses]
        for c in dead:
            graph.remove_constant(c)
        return PassResult(graph, bool(nodes or dead), stats={"nodes": nodes, "constants": len(dead)})
