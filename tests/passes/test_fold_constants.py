"""fold-constants: shape chains through the specs' symbolic values, other constants through the
evaluator; nothing without one; size limits."""

from __future__ import annotations

import numpy as np

from passes.golden import check_golden, optimize_text
from ridgeline.ir import parse_graph
from ridgeline.passes import run_pipeline

# the legacy exporter's way to say "reshape to [batch, seq, heads, 8]"
SHAPE_CHAIN = """
graph @heads(%x: f32[batch, seq, 32]) -> (%y: f32[batch, seq, 4, 8]) {
  const %i0: i64[] = 0
  const %i1: i64[] = 1
  const %ax: i64[1] = [0]
  const %h: i64[1] = [4]
  const %d: i64[1] = [8]
  %s = Shape(%x) : i64[3]
  %b = Gather(%s, %i0) : i64[]
  %t = Gather(%s, %i1) : i64[]
  %bu = Unsqueeze(%b, %ax) : i64[1]
  %tu = Unsqueeze(%t, %ax) : i64[1]
  %shape = Concat(%bu, %tu, %h, %d) {axis = 0} : i64[4]
  %y = Reshape(%x, %shape) : f32[batch, seq, 4, 8]
  return %y
}
"""


def test_shape_chain_folds_once_dims_are_bound():
    g = parse_graph(SHAPE_CHAIN).bind(batch=2, seq=3)
    run_pipeline(g, "fold-constants,dce", verify_each=True)  # no evaluator needed
    assert g.op_histogram() == {"Reshape": 1}
    shape = g.nodes[0].inputs[1]
    assert shape.const and shape.name == "shape" and shape.data.tolist() == [2, 3, 4, 8]


def test_symbolic_dims_keep_the_chain_but_fold_its_static_parts():
    before = SHAPE_CHAIN.replace("%b = Gather(%s, %i0) : i64[]", "%b = Gather(%s, %i0) : i64[]\n"
                                 "  const %i2: i64[] = 2\n  %last = Gather(%s, %i2) : i64[]")
    before = before.replace("-> (%y: f32[batch, seq, 4, 8])", "-> (%y: f32[batch, seq, 4, 8], %last: i64[])") \
        .replace("return %y", "return %y, %last")
    g = parse_graph(before)
    # %last is a graph output: outputs are never folded away; the batch/seq gathers stay symbolic
    run_pipeline(g, "fold-constants,dce", verify_each=True)
    assert g.op_histogram()["Reshape"] == 1 and "Shape" in g.op_histogram()


def test_evaluator_folds_weight_transposes_and_causal_masks():
    check_golden("""
graph @c(%x: f32[2, 3]) -> (%y: f32[2, 2], %m: f32[2, 2]) {
  const %w: f32[2, 3] = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
  const %n: i64[] = 2
  const %zero: i64[] = 0
  const %one: i64[] = 1
  const %a0: i64[1] = [0]
  const %a1: i64[1] = [1]
  const %lo: f32[] = -1000000000.0
  const %z: f32[] = 0.0
  %wt = Transpose(%w) {perm = [1, 0]} : f32[3, 2]
  %y = MatMul(%x, %wt) : f32[2, 2]
  %r = Range(%zero, %n, %one) : i64[2]
  %ri = Unsqueeze(%r, %a1) : i64[2, 1]
  %rj = Unsqueeze(%r, %a0) : i64[1, 2]
  %le = LessOrEqual(%rj, %ri) : bool[2, 2]
  %mask = Where(%le, %z, %lo) : f32[2, 2]
  %m = Add(%mask, %y) : f32[2, 2]
  return %y, %m
}
""", "fold-constants,dce", """
graph @c(%x: f32[2, 3]) -> (%y: f32[2, 2], %m: f32[2, 2]) {
  const %wt: f32[3, 2] = [[1.0, 4.0], [2.0, 5.0], [3.0, 6.0]]
  const %mask: f32[2, 2] = [[0.0, -1000000000.0], [0.0, 0.0]]
  %y = MatMul(%x, %wt) : f32[2, 2]
  %m = Add(%mask, %y) : f32[2, 2]
  return %y, %m
}
""")


def test_without_an_evaluator_constant_math_stays_and_is_reported():
    g = parse_graph("""
graph @c(%x: f32[3]) -> (%y: f32[3]) {
  const %a: f32[3] = [1.0, 2.0, 3.0]
  %s = Sqrt(%a) : f32[3]
  %y = Mul(%x, %s) : f32[3]
  return %y
}
""")
    report = run_pipeline(g, "fold-constants", verify_each=True)
    assert g.op_histogram() == {"Sqrt": 1, "Mul": 1}
    assert "no evaluator" in " ".join(report.records[0].notes)


def test_size_limit_keeps_big_broadcasts_unfolded():
    before = """
graph @big(%x: f32[64, 64]) -> (%y: f32[64, 64]) {
  const %shape: i64[2] = [64, 64]
  const %c: f32[] = 2.0
  %e = Expand(%c, %shape) : f32[64, 64]
  %y = Mul(%x, %e) : f32[64, 64]
  return %y
}
"""
    _, kept = optimize_text(before, "fold-constants{size-limit=100}")
    assert "Expand" in kept.op_histogram()
    _, folded = optimize_text(before, "fold-constants,dce")
    assert "Expand" not in folded.op_histogram()
    c = [v for v in folded.constants.values() if v.name == "e"][0]
    assert c.data.shape == (64, 64) and np.all(c.data == 2.0)


def test_weightless_constants_are_left_alone():
    g = parse_graph("""
graph @wl(%x: f32[2, 4]) -> (%y: f32[2, 3]) {
  const %w: f32[3, 4]
  %wt = Transpose(%w) {perm = [1, 0]} : f32[4, 3]
  %y = MatMul(%x, %wt) : f32[2, 3]
  return %y
}
""")
    from ridgeline.api import reference_evaluator
    report = run_pipeline(g, "fold-constants", verify_each=True, evaluator=reference_evaluator())
    assert g.op_histogram() == {"Transpose": 1, "MatMul": 1} and not report.modified
