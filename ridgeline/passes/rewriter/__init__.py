"""The pattern rewriter: declare a sub-graph pattern and its replacement; a greedy driver applies
rule sets to a fixed point, and explains near-misses.

    from ridgeline.passes.rewriter import Rule, Var, Const, ops, apply_rules

    x = Var("x")
    # gelu(x) = 0.5 · x · (1 + erf(x / √2))
    rule = Rule("gelu-erf",
                ops.Mul(ops.Mul(x, 0.5), ops.Add(ops.Erf(ops.Div(x, 1.4142135)), 1.0)),
                rewrite=lambda m, b: b.Gelu(m["x"]))
    apply_rules(graph, [rule])

``RewritePass`` turns a list of rules into a registered pass whose ``--explain`` output says,
for each rule that did not fire, which constraint failed on the nearest candidate.
"""

from .driver import RewriteStats, Rule, apply_rules, explain, try_rule
from .edit import RewriteBuilder, build_body, erase_dead, fuse_nodes, replace_value
from .match import Match, Matcher
from .pattern import Const, OneOf, Op, Pattern, Var, ops
from .rewrite_pass import RewritePass

__all__ = ["Rule", "RewriteStats", "apply_rules", "explain", "try_rule", "Match", "Matcher", "Pattern", "Var",
           "Const", "Op", "OneOf", "ops", "RewriteBuilder", "RewritePass", "build_body", "erase_dead",
           "fuse_nodes", "replace_value"]
