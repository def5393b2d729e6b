"""The pattern rewriter: matching semantics, the greedy driver, and near-miss explanations."""

from __future__ import annotations

import numpy as np
import pytest

from ridgeline.ir import Builder, Graph, parse_graph, print_graph, tensor
from ridgeline.ir.errors import PassError
from ridgeline.passes.rewriter import OneOf, Rule, Var, apply_rules, explain, ops

x = Var("x")


def _graph(text: str) -> Graph:
    g = parse_graph(text)
    g.verify()
    return g


SILU = """
graph @s(%a: f32[4], %b: f32[4]) -> (%y: f32[4], %z: f32[4]) {
  %s = Sigmoid(%a) : f32[4]
  %y = Mul(%s, %a) : f32[4]
  %t = Sigmoid(%a) : f32[4]
  %z = Mul(%b, %t) : f32[4]
  return %y, %z
}
"""

# x·σ(x) = Sigmoid-weighted linear unit; the same Var twice means the same value
SILU_RULE = Rule("silu", ops.Mul(x, ops.Sigmoid(x)), lambda m, b: b.HardSwish(m["x"]))


def test_commutative_op_matches_both_orders_and_vars_bind_one_value():
    g = _graph(SILU)
    stats = apply_rules(g, [SILU_RULE])
    assert stats.rewrites == {"silu": 1}
    assert [n.op for n in g] == ["HardSwish", "Sigmoid", "Mul"]  # %z = b·σ(a) is not a SiLU
    assert g.outputs[0].name == "y" and g.outputs[0].producer.op == "HardSwish"


def test_non_commutative_ops_do_not_swap():
    g = _graph("""
graph @d(%a: f32[4]) -> (%y: f32[4]) {
  const %two: f32[] = 2.0
  %y = Div(%two, %a) : f32[4]
  return %y
}
""")
    rule = Rule("halve", ops.Div(x, 2.0), lambda m, b: b.Mul(m["x"], b.constant(np.float32(0.5))))
    assert apply_rules(g, [rule]).total == 0


def test_constants_match_within_the_precision_of_their_dtype():
    text = """
graph @c(%a: DT[4]) -> (%y: DT[4]) {
  const %c: DT[] = VALUE
  %y = Mul(%a, %c) : DT[4]
  return %y
}
"""
    rule = Rule("times-third", ops.Mul(x, 0.3333333), lambda m, b: b.Neg(m["x"]))
    assert apply_rules(_graph(text.replace("DT", "f32").replace("VALUE", "0.33333334")), [rule]).total == 1
    assert apply_rules(_graph(text.replace("DT", "f16").replace("VALUE", "0.33325195")), [rule]).total == 1
    assert apply_rules(_graph(text.replace("DT", "f32").replace("VALUE", "0.3334")), [rule]).total == 0


def test_interior_values_used_outside_block_the_match_unless_allowed():
    text = """
graph @i(%a: f32[4]) -> (%y: f32[4], %e: f32[4]) {
  %e = Exp(%a) : f32[4]
  %y = Neg(%e) : f32[4]
  return %y, %e
}
"""
    strict = Rule("neg-exp", ops.Neg(ops.Exp(x)), lambda m, b: b.Sigmoid(m["x"]))
    loose = Rule("neg-exp", ops.Neg(ops.Exp(x, _uses="any")), lambda m, b: b.Sigmoid(m["x"]))
    assert apply_rules(_graph(text), [strict]).total == 0
    g = _graph(text)
    assert apply_rules(g, [loose]).total == 1 and g.op_histogram() == {"Exp": 1, "Sigmoid": 1}


def test_one_of_named_nodes_and_checks():
    g = _graph("""
graph @o(%a: f32[2, 3]) -> (%y: f32[2, 3]) {
  %t = Transpose(%a) {perm = [1, 0]} : f32[3, 2]
  %y = Transpose(%t) {perm = [1, 0]} : f32[2, 3]
  return %y
}
""")
    seen = {}

    def check(m):
        seen["perm"] = m.node("outer").attr("perm")
        return True
    rule = Rule("tt", OneOf(ops.Transpose(ops.Transpose(x), _name="outer"), ops.Relu(x, _name="outer")),
                lambda m, b: b.Identity(m["x"]), check=check)
    assert apply_rules(g, [rule]).total == 1 and seen["perm"] == (1, 0)


def test_a_declining_rewrite_leaves_no_trace():
    g = _graph(SILU)
    before = print_graph(g)

    def decline(m, b):
        b.Neg(m["x"])  # built, then the rule changes its mind
        return None
    assert apply_rules(g, [Rule("decline", ops.Mul(x, ops.Sigmoid(x)), decline)]).total == 0
    assert print_graph(g) == before


def test_rules_that_undo_each_other_are_stopped():
    g = _graph("""
graph @p(%a: f32[4]) -> (%y: f32[4]) {
  %n = Neg(%a) : f32[4]
  %y = Relu(%n) : f32[4]
  return %y
}
""")
    flip = Rule("neg-to-abs", ops.Neg(x), lambda m, b: b.Abs(m["x"]))
    flop = Rule("abs-to-neg", ops.Abs(x), lambda m, b: b.Neg(m["x"]))
    with pytest.raises(PassError, match="did not converge"):
        apply_rules(g, [flip, flop])


def test_explain_reports_the_nearest_candidate_and_the_failed_constraint():
    g = _graph("""
graph @e(%a: f32[4]) -> (%y: f32[4]) {
  const %half: f32[] = 0.5
  const %one: f32[] = 1.0
  %t = Tanh(%a) : f32[4]
  %u = Add(%t, %one) : f32[4]
  %h = Mul(%a, %half) : f32[4]
  %y = Mul(%h, %u) : f32[4]
  return %y
}
""")
    rule = Rule("gelu-erf", ops.Mul(ops.Mul(x, 0.5), ops.Add(ops.Erf(x), 1.0)), lambda m, b: b.Gelu(m["x"]))
    (line,) = explain(rule, g)
    assert line.startswith("gelu-erf: did not fire on 2 candidate(s); nearest: Mul node %y matched 3/4 pattern ops")
    assert "%t (Tanh) is produced by Tanh, expected Erf" in line
    (line,) = explain(Rule("none", ops.Softmax(x), lambda m, b: None), g)
    assert line == "none: did not fire: no Softmax node in the graph"


def test_the_driver_is_linear_in_the_graph():
    # every attempt runs the predicate once; attempts must grow like the graph, not its square
    calls = {"n": 0}

    def where(v):
        calls["n"] += 1
        return True

    def chain(n: int) -> Graph:
        g = Graph("chain")
        v = g.add_input("x", tensor("f32", 8))
        b = Builder(g)
        for _ in range(n):
            v = b.Neg(b.Exp(v))
        g.outputs = [v]
        return g

    rule = Rule("neg-exp", ops.Neg(ops.Exp(Var("x", where=where))), lambda m, b: b.Sigmoid(m["x"]))
    counts = []
    for n in (500, 1000):
        calls["n"] = 0
        g = chain(n)
        assert apply_rules(g, [rule]).total == n
        counts.append(calls["n"])
    assert counts[1] <= 2 * counts[0] + 10


def test_a_rewrite_pass_without_rules_says_so():
    """A plugin that misspells ``rule_set`` gets a one-line error, not a pass that never fires."""
    from ridgeline.passes.base import PassContext
    from ridgeline.passes.rewriter import RewritePass

    class Misspelt(RewritePass):
        rules_set = ()

    with pytest.raises(PassError, match="Misspelt lists no rules"):
        Misspelt().run(Graph("g"), PassContext())
