"""``fuse-elementwise``: chains and broadcast trees of elementwise ops → one ``Fused`` node
(kind ``elementwise``) whose ``body`` is the sub-graph.

One rule, applied to a fixed point: an elementwise op (or an elementwise Fused node) absorbs a
producer that is itself elementwise (or such a Fused node) when every use of the producer's
result is by that op. The driver grows each group from its last op backwards, so a group is a
single-result DAG: all its other values stay inside, which is what makes it one kernel that
reads its inputs once and writes one result — and what rules out cycles through the rest of the
graph. ``max-nodes`` bounds a group (register pressure, compile time). Constants of at most
16 elements move into the body.
"""

from __future__ import annotations

from dataclasses import field

from ...ir import Node
from ...ir.ops import all_specs
from ..registry import register_pass
from ..rewriter import Match, RewriteBuilder, RewritePass, Rule, fuse_nodes
from ..rewriter.pattern import Op

__all__ = ["ELEMENTWISE_OPS", "FuseElementwise"]

KIND = "elementwise"


def _elementwise_ops() -> frozenset[str]:
    return frozenset(name for name, spec in all_specs().items() if spec.category == "elementwise")


ELEMENTWISE_OPS = _elementwise_ops()


def _fusible(n: Node | None) -> bool:
    if n is None:
        return False
    if n.op == "Fused":
        return n.attr("kind") == KIND
    return n.op in ELEMENTWISE_OPS


def _size(n: Node) -> int:
    return len(n.body) if n.op == "Fused" and n.body is not None else 1


def _producer_to_absorb(root: Node, max_nodes: int) -> Node | None:
    seen: set[int] = set()
    for v in root.inputs:
        if v is None or v.producer is None or id(v.producer) in seen:
            continue
        p = v.producer
        seen.add(id(p))
        if not _fusible(p) or len(p.outputs) != 1 or _size(p) + _size(root) > max_nodes:
            continue
        if all(u is root for u, _ in p.outputs[0].uses):
            return p
    return None


def _group(root: Node, max_nodes: int) -> list[Node]:
    """``root`` and every producer it can absorb now, transitively, in topological order.

    The same condition as ``_producer_to_absorb`` applied to the growing group (a producer whose
    result only the group reads, within ``max_nodes``), so one rewrite builds the body once where
    absorbing one producer per rewrite rebuilt it for each op (about ten body nodes built per node
    of a long chain). A producer whose other readers join later is left to the next firing.
    """
    members = {id(root): root}
    size = _size(root)
    queue = [root]
    while queue:
        n = queue.pop(0)
        for v in n.inputs:
            p = v.producer if v is not None else None
            if p is None or id(p) in members or not _fusible(p) or len(p.outputs) != 1:
                continue
            if size + _size(p) > max_nodes or p.outputs[0].is_output:
                continue
            if all(id(u) in members for u, _ in p.outputs[0].uses):
                members[id(p)] = p
                size += _size(p)
                queue.append(p)
    order: list[Node] = []
    done: set[int] = set()
    for start in members.values():  # iterative post-order: producers before their readers
        stack = [(start, iter([v.producer for v in start.inputs if v is not None and id(v.producer) in members]))]
        while stack:
            n, it = stack[-1]
            p = next(it, None)
            if p is None:
                stack.pop()
                if id(n) not in done:
                    done.add(id(n))
                    order.append(n)
            elif id(p) not in done:
                stack.append((p, iter([v.producer for v in p.inputs if v is not None and id(v.producer) in members])))
    return order



@register_pass("fuse-elementwise")
class FuseElementwise(RewritePass):
    """Fuse chains and trees of elementwise ops into Fused nodes of at most max-nodes ops."""
    touches = ("elementwise-chain", "broadcast-chain", "int-arith", "nonfinite")  # what check_pass generates for it

    #: most ops in one fused body
    max_nodes: int = field(default=16, metadata={"lo": 1})

    def rules(self):
        limit = self.max_nodes

        def check(m: Match) -> bool | str:
            if m.root.op == "Fused" and m.root.attr("kind") != KIND:
                return f"a {m.root.attr('kind')} Fused node is not elementwise"
            if len(m.root.outputs) != 1:
                return "has several outputs"
            if _producer_to_absorb(m.root, limit) is None:
                return f"no elementwise producer used only here (within max-nodes={limit})"
            return True

        def rewrite(m: Match, b: RewriteBuilder):
            return fuse_nodes(b, _group(m.root, limit), [m.root.outputs[0]], kind=KIND)[0]

        return [Rule("absorb-producer", Op(ELEMENTWISE_OPS | {"Fused"}, ...), rewrite, check=check,
                     doc="f(g(x), y) = Fused[f∘g](x, y) when g's result is only used by f")]
