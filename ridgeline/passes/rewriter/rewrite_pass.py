"""``RewritePass``: a pass defined by a list of rules, applied by the greedy driver."""

from __future__ import annotations

from typing import ClassVar, Sequence

from ...ir import Graph
from ...ir.errors import PassError
from ..base import Pass, PassContext, PassResult
from .driver import Rule, apply_rules

__all__ = ["RewritePass"]


class RewritePass(Pass):
    """Subclasses list their rules in ``rule_set``, or implement ``rules()`` when the rules depend on
    the pass's options; with ``--explain`` each rule that did not fire says why."""

    rule_set: ClassVar[Sequence[Rule]] = ()

    def rules(self) -> Sequence[Rule]:
        if not self.rule_set:  # a misspelt ``rule_set`` would otherwise make a pass that never fires
            raise PassError(f"{type(self).__name__} lists no rules: set rule_set or implement rules()")
        return self.rule_set

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        stats = apply_rules(graph, self.rules(), explain=ctx.explain)
        for line in stats.near_misses.values():
            ctx.note(line)
        return PassResult(graph, stats.total > 0, tuple(ctx.notes), dict(stats.rewrites))
