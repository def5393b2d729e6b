"""cse merges repeated computations and equal small constants; dce removes what nothing reads."""

from __future__ import annotations

from passes.golden import check_golden, optimize_text


def test_cse_merges_commutative_duplicates_and_equal_constants():
    check_golden("""
graph @cse(%x: f32[4], %y: f32[4]) -> (%a: f32[4], %b: f32[4], %c: f32[4]) {
  const %one: f32[] = 1.0
  const %one_again: f32[] = 1.0
  %s1 = Add(%x, %y) : f32[4]
  %s2 = Add(%y, %x) : f32[4]
  %a = Mul(%s1, %one) : f32[4]
  %b = Mul(%s2, %one_again) : f32[4]
  %c = Softmax(%s1) {axis = -1} : f32[4]
  %d = Softmax(%s2) : f32[4]
  %e = Sub(%c, %d) : f32[4]
  return %a, %b, %e
}
""".replace("%c: f32[4])", "%e: f32[4])"), "cse,dce", """
graph @cse(%x: f32[4], %y: f32[4]) -> (%a: f32[4], %b: f32[4], %e: f32[4]) {
  const %one: f32[] = 1.0
  %s1 = Add(%x, %y) : f32[4]
  %a = Mul(%s1, %one) : f32[4]
  %b = Identity(%a) : f32[4]
  %c = Softmax(%s1) {axis = -1} : f32[4]
  %e = Sub(%c, %c) : f32[4]
  return %a, %b, %e
}
""")


def test_cse_keeps_ops_with_different_attributes_and_non_commutative_orders():
    _, after = optimize_text("""
graph @keep(%x: f32[4, 4], %y: f32[4, 4]) -> (%a: f32[4, 4]) {
  %s1 = Sub(%x, %y) : f32[4, 4]
  %s2 = Sub(%y, %x) : f32[4, 4]
  %t1 = Softmax(%s1) {axis = 0} : f32[4, 4]
  %t2 = Softmax(%s1) {axis = 1} : f32[4, 4]
  %u = Add(%t1, %t2) : f32[4, 4]
  %a = Add(%u, %s2) : f32[4, 4]
  return %a
}
""", "cse,dce")
    assert after.op_histogram() == {"Sub": 2, "Softmax": 2, "Add": 2}


def test_dce_removes_dead_chains_and_constants_but_keeps_inputs():
    check_golden("""
graph @dead(%x: f32[4], %unused: f32[4]) -> (%y: f32[4]) {
  const %c: f32[] = 3.0
  %a = Mul(%x, %c) : f32[4]
  %b = Exp(%a) : f32[4]
  %y = Relu(%x) : f32[4]
  return %y
}
""", "dce", """
graph @dead(%x: f32[4], %unused: f32[4]) -> (%y: f32[4]) {
  %y = Relu(%x) : f32[4]
  return %y
}
""")
