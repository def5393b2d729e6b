"""canonicalize: no-ops removed, chains merged, Gemm normalized to MatMul + Add."""

from __future__ import annotations

import pytest

from passes.golden import check_golden, optimize_text


def test_no_ops_disappear():
    check_golden("""
graph @noops(%x: f32[2, 3]) -> (%y: f32[2, 3]) {
  const %shape: i64[2] = [2, 3]
  const %one: f32[] = 1.0
  const %zero: f32[2, 3] = [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
  %a = Identity(%x) : f32[2, 3]
  %b = Reshape(%a, %shape) : f32[2, 3]
  %c = Cast(%b) {to = "f32"} : f32[2, 3]
  %d = Transpose(%c) {perm = [0, 1]} : f32[2, 3]
  %e = Mul(%d, %one) : f32[2, 3]
  %f = Add(%zero, %e) : f32[2, 3]
  %y = Relu(%f) : f32[2, 3]
  return %y
}
""", "canonicalize,dce", """
graph @noops(%x: f32[2, 3]) -> (%y: f32[2, 3]) {
  %y = Relu(%x) : f32[2, 3]
  return %y
}
""")


def test_a_constant_that_broadcasts_is_not_neutral():
    _, after = optimize_text("""
graph @bc(%x: f32[3]) -> (%y: f32[2, 3]) {
  const %one: f32[2, 1] = [[1.0], [1.0]]
  %y = Mul(%x, %one) : f32[2, 3]
  return %y
}
""", "canonicalize")
    assert after.op_histogram() == {"Mul": 1}


def test_almost_one_is_not_one():
    _, after = optimize_text("""
graph @n(%x: f32[3]) -> (%y: f32[3]) {
  const %c: f32[] = 1.0001
  %y = Mul(%x, %c) : f32[3]
  return %y
}
""", "canonicalize")
    assert after.op_histogram() == {"Mul": 1}


def test_transposes_compose():
    check_golden("""
graph @tt(%x: f32[2, 3, 4]) -> (%y: f32[4, 2, 3], %z: f32[2, 3, 4]) {
  %a = Transpose(%x) {perm = [0, 2, 1]} : f32[2, 4, 3]
  %y = Transpose(%a) {perm = [1, 0, 2]} : f32[4, 2, 3]
  %b = Transpose(%x) {perm = [1, 2, 0]} : f32[3, 4, 2]
  %c = Transpose(%b) {perm = [2, 0, 1]} : f32[2, 3, 4]
  %z = Relu(%c) : f32[2, 3, 4]
  return %y, %z
}
""", "canonicalize,dce", """
graph @tt(%x: f32[2, 3, 4]) -> (%y: f32[4, 2, 3], %z: f32[2, 3, 4]) {
  %y = Transpose(%x) {perm = [2, 0, 1]} : f32[4, 2, 3]
  %z = Relu(%x) : f32[2, 3, 4]
  return %y, %z
}
""")


def test_view_chain_becomes_one_reshape():
    check_golden("""
graph @views(%x: f32[2, 6]) -> (%y: f32[3, 4]) {
  const %s: i64[3] = [2, 3, 2]
  const %ax: i64[1] = [0]
  %a = Reshape(%x, %s) : f32[2, 3, 2]
  %b = Unsqueeze(%a, %ax) : f32[1, 2, 3, 2]
  %c = Flatten(%b) {axis = 2} : f32[2, 6]
  %d = Reshape(%c, %s) : f32[2, 3, 2]
  %e = Flatten(%d) {axis = 1} : f32[2, 6]
  %y = Relu(%e) : f32[2, 6]
  return %y
}
""".replace("-> (%y: f32[3, 4])", "-> (%y: f32[2, 6])"), "canonicalize,dce", """
graph @views(%x: f32[2, 6]) -> (%y: f32[2, 6]) {
  %y = Relu(%x) : f32[2, 6]
  return %y
}
""")


@pytest.mark.parametrize("mid,merged", [("i64", True), ("f16", False)])
def test_cast_chain_merges_only_when_the_first_cast_is_exact(mid, merged):
    src = "i32" if mid == "i64" else "f32"
    _, after = optimize_text(f"""
graph @casts(%x: {src}[4]) -> (%y: f64[4]) {{
  %a = Cast(%x) {{to = "{mid}"}} : {mid}[4]
  %y = Cast(%a) {{to = "f64"}} : f64[4]
  return %y
}}
""", "canonicalize,dce")
    assert after.op_histogram() == ({"Cast": 1} if merged else {"Cast": 2})


def test_gemm_becomes_matmul_plus_add_and_folds_the_transpose():
    check_golden("""
graph @gemm(%a: f32[2, 3]) -> (%y: f32[2, 2]) {
  const %w: f32[2, 3] = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
  const %c: f32[2] = [0.5, -0.5]
  %y = Gemm(%a, %w, %c) {transB = 1, alpha = 2.0} : f32[2, 2]
  return %y
}
""", "canonicalize,fold-constants,dce", """
graph @gemm(%a: f32[2, 3]) -> (%y: f32[2, 2]) {
  const %c: f32[2] = [0.5, -0.5]
  const %alpha: f32[] = 2.0
  const %y_transpose: f32[3, 2] = [[1.0, 4.0], [2.0, 5.0], [3.0, 6.0]]
  %y_matmul = MatMul(%a, %y_transpose) : f32[2, 2]
  %y_mul = Mul(%y_matmul, %alpha) : f32[2, 2]
  %y = Add(%y_mul, %c) : f32[2, 2]
  return %y
}
""")


def test_flattened_linear_layer_keeps_its_batch_dims():
    # the legacy exporter's linear: Reshape to 2-D, Gemm with bias, Reshape back
    check_golden("""
graph @linear(%x: f32[2, 5, 4]) -> (%y: f32[2, 5, 3]) {
  const %flat: i64[2] = [-1, 4]
  const %back: i64[3] = [2, 5, 3]
  const %w: f32[4, 3] = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0]]
  const %b: f32[3] = [0.1, 0.2, 0.3]
  %x2 = Reshape(%x, %flat) : f32[10, 4]
  %h = Gemm(%x2, %w, %b) : f32[10, 3]
  %y = Reshape(%h, %back) : f32[2, 5, 3]
  return %y
}
""", "canonicalize,dce", """
graph @linear(%x: f32[2, 5, 4]) -> (%y: f32[2, 5, 3]) {
  const %w: f32[4, 3] = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0]]
  const %b: f32[3] = [0.1, 0.2, 0.3]
  %y_matmul = MatMul(%x, %w) : f32[2, 5, 3]
  %y = Add(%y_matmul, %b) : f32[2, 5, 3]
  return %y
}
""")


def test_symbolic_no_op_reshape_goes_away_without_binding():
    _, after = optimize_text("""
graph @sym(%x: f32[batch, seq, 8]) -> (%y: f32[batch, seq, 8]) {
  %s = Shape(%x) : i64[3]
  %r = Reshape(%x, %s) : f32[batch, seq, 8]
  %y = Relu(%r) : f32[batch, seq, 8]
  return %y
}
""", "canonicalize,dce")
    assert after.op_histogram() == {"Relu": 1}


def test_an_output_that_is_an_input_keeps_its_identity():
    # replacing the output %y by the input %x would rename the model's output: nothing to gain
    _, after = optimize_text("""
graph @io(%x: f32[2]) -> (%y: f32[2]) {
  %y = Identity(%x) : f32[2]
  return %y
}
""", "canonicalize", fixed_point=True)
    assert after.op_histogram() == {"Identity": 1} and after.outputs[0].name == "y"
