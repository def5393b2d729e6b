"""fuse-matmul-epilogue: MatMul + bias + activation + residual → one Fused(kind=matmul-epilogue)."""

from __future__ import annotations

from passes.golden import check_golden, optimize_text

MLP = """
graph @mlp(%x: f32[2, 8], %w: f32[8, 8], %r: f32[2, 8]) -> (%y: f32[2, 8]) {
  const %b: f32[8] = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
  %h = MatMul(%x, %w) : f32[2, 8]
  %hb = Add(%h, %b) : f32[2, 8]
  %a = Gelu(%hb) : f32[2, 8]
  %y = Add(%r, %a) : f32[2, 8]
  return %y
}
"""


def test_bias_activation_residual():
    # a constant of at most 16 elements (here the bias) moves into the body; bigger ones stay inputs
    check_golden(MLP, "fuse-matmul-epilogue,dce", """
graph @mlp(%x: f32[2, 8], %w: f32[8, 8], %r: f32[2, 8]) -> (%y: f32[2, 8]) {
  %y = Fused(%x, %w, %r) {kind = "matmul-epilogue"} : f32[2, 8] body
    graph @matmul_epilogue_y(%x: f32[2, 8], %w: f32[8, 8], %r: f32[2, 8]) -> (%y: f32[2, 8]) {
      const %b: f32[8] = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
      %h = MatMul(%x, %w) : f32[2, 8]
      %hb = Add(%h, %b) : f32[2, 8]
      %a = Gelu(%hb) : f32[2, 8]
      %y = Add(%r, %a) : f32[2, 8]
      return %y
    }
  return %y
}
""")


def test_max_ops_bounds_the_epilogue():
    _, after = optimize_text(MLP, "fuse-matmul-epilogue{max-ops=2},dce")
    (fused,) = [n for n in after if n.op == "Fused"]
    assert [n.op for n in fused.body] == ["MatMul", "Add", "Gelu"]
    assert after.op_histogram() == {"Fused": 1, "Add": 1}


# SwiGLU: down(silu(gate(x)) · up(x)) + x
SWIGLU = """
graph @swiglu(%x: f32[2, 8], %wg: f32[8, 16], %wu: f32[8, 16], %wd: f32[16, 8]) -> (%y: f32[2, 8]) {
  %g = MatMul(%x, %wg) : f32[2, 16]
  %sg = Sigmoid(%g) : f32[2, 16]
  %silu = Mul(%g, %sg) : f32[2, 16]
  %u = MatMul(%x, %wu) : f32[2, 16]
  %gu = Mul(%silu, %u) : f32[2, 16]
  %d = MatMul(%gu, %wd) : f32[2, 8]
  %y = Add(%x, %d) : f32[2, 8]
  return %y
}
"""


def test_swiglu_fuses_silu_gate_and_residual():
    _, after = optimize_text(SWIGLU, "fuse-matmul-epilogue,dce")
    bodies = [[m.op for m in n.body] for n in after if n.op == "Fused"]
    assert after.op_histogram() == {"Fused": 3}
    assert ["MatMul", "Sigmoid", "Mul"] in bodies
    assert ["MatMul", "Add"] in bodies
    assert all(n.attr("kind") == "matmul-epilogue" for n in after)


def test_a_result_read_twice_stays_unfused():
    before = MLP.replace("-> (%y: f32[2, 8])", "-> (%y: f32[2, 8], %h: f32[2, 8])").replace("return %y",
                                                                                             "return %y, %h")
    _, after = optimize_text(before, "fuse-matmul-epilogue,dce")
    assert "Fused" not in after.op_histogram()


def test_an_epilogue_that_broadcasts_the_product_is_refused():
    before = """
graph @bc(%x: f32[2, 8], %w: f32[8, 1], %r: f32[2, 8]) -> (%y: f32[2, 8]) {
  %h = MatMul(%x, %w) : f32[2, 1]
  %y = Add(%h, %r) : f32[2, 8]
  return %y
}
"""
    _, after = optimize_text(before, "fuse-matmul-epilogue,dce")
    assert "Fused" not in after.op_histogram()
