"""fuse-layernorm: (x − μ)/√(σ² + ε)·γ + β → LayerNormalization, with and without γ/β."""

from __future__ import annotations

from passes.golden import check_golden, optimize_text

LN = """
graph @ln(%x: f32[2, 5, 8]) -> (%y: f32[2, 5, 8]) {
  const %axes: i64[1] = [-1]
  const %two: f32[] = 2.0
  const %eps: f32[] = 1e-05
  const %gamma: f32[8] = [1.0, 2.0, 0.5, 1.5, 1.0, 1.0, 3.0, 0.25]
  const %beta: f32[8] = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
  %mean = ReduceMean(%x, %axes) : f32[2, 5, 1]
  %d = Sub(%x, %mean) : f32[2, 5, 8]
  %sq = Pow(%d, %two) : f32[2, 5, 8]
  %var = ReduceMean(%sq, %axes) : f32[2, 5, 1]
  %ve = Add(%var, %eps) : f32[2, 5, 1]
  %std = Sqrt(%ve) : f32[2, 5, 1]
  %n = Div(%d, %std) : f32[2, 5, 8]
  %s = Mul(%n, %gamma) : f32[2, 5, 8]
  %y = Add(%s, %beta) : f32[2, 5, 8]
  return %y
}
"""


def test_scale_and_bias():
    check_golden(LN, "fuse-layernorm,dce", """
graph @ln(%x: f32[2, 5, 8]) -> (%y: f32[2, 5, 8]) {
  const %gamma: f32[8] = [1.0, 2.0, 0.5, 1.5, 1.0, 1.0, 3.0, 0.25]
  const %beta: f32[8] = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
  %y = LayerNormalization(%x, %gamma, %beta) {axis = -1, epsilon = 1e-05} : f32[2, 5, 8]
  return %y
}
""")


def test_without_scale_and_bias_a_ones_scale_is_made():
    before = LN.replace("  %s = Mul(%n, %gamma) : f32[2, 5, 8]\n  %y = Add(%s, %beta) : f32[2, 5, 8]\n",
                        "  %y = Div(%d, %std) : f32[2, 5, 8]\n").replace("  %n = Div(%d, %std) : f32[2, 5, 8]\n", "")
    check_golden(before, "fuse-layernorm,dce", """
graph @ln(%x: f32[2, 5, 8]) -> (%y: f32[2, 5, 8]) {
  const %ones: f32[8] = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
  %y = LayerNormalization(%x, %ones) {axis = -1, epsilon = 1e-05} : f32[2, 5, 8]
  return %y
}
""")


def test_square_as_product_and_reciprocal_sqrt():
    before = LN.replace("%sq = Pow(%d, %two)", "%sq = Mul(%d, %d)") \
               .replace("%n = Div(%d, %std) : f32[2, 5, 8]",
                        "%r = Reciprocal(%std) : f32[2, 5, 1]\n  %n = Mul(%d, %r) : f32[2, 5, 8]")
    _, after = optimize_text(before, "fuse-layernorm,dce")
    assert after.op_histogram() == {"LayerNormalization": 1}


def test_two_trailing_axes():
    before = LN.replace("const %axes: i64[1] = [-1]", "const %axes: i64[2] = [1, 2]") \
               .replace("f32[2, 5, 1]", "f32[2, 1, 1]") \
               .replace("const %gamma: f32[8] = [1.0, 2.0, 0.5, 1.5, 1.0, 1.0, 3.0, 0.25]",
                        "const %gamma: f32[] = 2.0") \
               .replace("const %beta: f32[8] = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]", "const %beta: f32[] = 0.5")
    _, after = optimize_text(before, "fuse-layernorm,dce")
    (ln,) = after.nodes
    assert ln.op == "LayerNormalization" and ln.attr("axis") == -2


def test_mean_over_a_leading_axis_is_not_a_layernorm():
    before = LN.replace("const %axes: i64[1] = [-1]", "const %axes: i64[1] = [1]") \
               .replace("f32[2, 5, 1]", "f32[2, 1, 8]")
    _, after = optimize_text(before, "fuse-layernorm,dce")
    assert "LayerNormalization" not in after.op_histogram()


def test_different_values_in_the_two_means_do_not_match():
    before = LN.replace("%d = Sub(%x, %mean)", "%d = Sub(%x, %x)")
    _, after = optimize_text(before, "fuse-layernorm,dce")
    assert "LayerNormalization" not in after.op_histogram()


def test_per_token_scale_is_not_a_layernorm_scale():
    # γ that varies along the sequence is not a per-channel scale: LN alone fuses, the Mul stays
    before = LN.replace("const %gamma: f32[8] = [1.0, 2.0, 0.5, 1.5, 1.0, 1.0, 3.0, 0.25]",
                        "const %gamma: f32[5, 1] = [[1.0], [2.0], [0.5], [1.5], [1.0]]")
    _, after = optimize_text(before, "fuse-layernorm,dce")
    assert after.op_histogram() == {"LayerNormalization": 1, "Mul": 1, "Add": 1}
