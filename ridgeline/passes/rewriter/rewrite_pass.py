"""``RewritePass``: a pass defined by a list of rules, applied by the greedy driver."""

from __future__ import annotations

from typing import Sequence

from ...ir import Graph
from ..base import Pass, PassContext, PassResult
from .driver import Rule, apply_rules

__all__ = ["RewritePass"]


class RewritePass(Pass):
    """Subclasses implement ``rules()``; with ``--explain`` each rule that did not fire says why."""

    def rules(self) -> Sequence[Rule]:  # pragma: no cover - abstract
        raise NotImplementedError

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        stats = apply_rules(graph, self.rules(), explain=ctx.explain)
        for line in stats.near_misses.values():
            ctx.note(line)
        return PassResult(graph, stats.total > 0, tuple(ctx.notes), dict(stats.rewrites))
