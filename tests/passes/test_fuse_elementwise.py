"""fuse-elementwise: chains and broadcast trees of elementwise ops → Fused(kind=elementwise)."""

from __future__ import annotations

from passes.golden import check_golden, optimize_text

CHAIN = """
graph @chain(%x: f32[4, 8], %b: f32[8]) -> (%y: f32[4, 8]) {
  const %two: f32[] = 2.0
  %a = Add(%x, %b) : f32[4, 8]
  %m = Mul(%a, %two) : f32[4, 8]
  %t = Tanh(%m) : f32[4, 8]
  %y = Neg(%t) : f32[4, 8]
  return %y
}
"""


def test_chain_with_broadcast_and_scalar_constant():
    check_golden(CHAIN, "fuse-elementwise,dce", """
graph @chain(%x: f32[4, 8], %b: f32[8]) -> (%y: f32[4, 8]) {
  %y = Fused(%x, %b) {kind = "elementwise"} : f32[4, 8] body
    graph @elementwise_y(%x: f32[4, 8], %b: f32[8]) -> (%y: f32[4, 8]) {
      const %two: f32[] = 2.0
      %a = Add(%x, %b) : f32[4, 8]
      %m = Mul(%a, %two) : f32[4, 8]
      %t = Tanh(%m) : f32[4, 8]
      %y = Neg(%t) : f32[4, 8]
      return %y
    }
  return %y
}
""")


def test_max_nodes_splits_a_long_chain():
    _, after = optimize_text(CHAIN, "fuse-elementwise{max-nodes=2},dce")
    sizes = sorted(len(n.body) for n in after if n.op == "Fused")
    assert sizes == [2, 2]


DIAMOND = """
graph @tree(%x: f32[4, 8], %z: f32[4, 1]) -> (%y: f32[4, 8]) {
  %e = Exp(%x) : f32[4, 8]
  %s = Sigmoid(%e) : f32[4, 8]
  %p = Mul(%e, %s) : f32[4, 8]
  %q = Sub(%z, %x) : f32[4, 8]
  %y = Add(%p, %q) : f32[4, 8]
  return %y
}
"""


def test_diamond_and_tree_become_one_node():
    _, after = optimize_text(DIAMOND, "fuse-elementwise,dce")
    (fused,) = after.nodes
    assert fused.op == "Fused" and len(fused.body) == 5
    assert [v.name for v in fused.inputs] == ["x", "z"] or sorted(v.name for v in fused.inputs) == ["x", "z"]


def test_a_value_used_outside_ends_the_group():
    before = DIAMOND.replace("-> (%y: f32[4, 8])", "-> (%y: f32[4, 8], %e: f32[4, 8])").replace(
        "return %y", "return %y, %e")
    _, after = optimize_text(before, "fuse-elementwise,dce")
    assert any(n.op == "Exp" for n in after)
    (fused,) = [n for n in after if n.op == "Fused"]
    assert "Exp" not in [m.op for m in fused.body]


def test_non_elementwise_ops_are_boundaries():
    before = """
graph @b(%x: f32[4, 8], %w: f32[8, 8]) -> (%y: f32[4, 8]) {
  %a = Relu(%x) : f32[4, 8]
  %m = MatMul(%a, %w) : f32[4, 8]
  %y = Relu(%m) : f32[4, 8]
  return %y
}
"""
    _, after = optimize_text(before, "fuse-elementwise,dce")
    assert after.op_histogram() == {"Relu": 2, "MatMul": 1}
