"""shape-inference: types the specs can now say replace what an importer had to leave unknown."""

from __future__ import annotations

from passes.golden import check_golden
from ridgeline.ir import parse_graph
from ridgeline.passes import run_pipeline


def test_unknown_dims_become_known_after_folding_the_shape():
    check_golden("""
graph @r(%x: f32[2, 12]) -> (%y: f32[2, 3, 4]) {
  const %s: i64[3] = [2, 3, 4]
  %a = Reshape(%x, %s) : f32[_u1, _u2, _u3]
  %y = Relu(%a) : f32[2, 3, 4]
  return %y
}
""", "shape-inference", """
graph @r(%x: f32[2, 12]) -> (%y: f32[2, 3, 4]) {
  const %s: i64[3] = [2, 3, 4]
  %a = Reshape(%x, %s) : f32[2, 3, 4]
  %y = Relu(%a) : f32[2, 3, 4]
  return %y
}
""")


def test_nothing_to_refine_is_no_change():
    g = parse_graph("""
graph @n(%x: f32[batch, 4]) -> (%y: f32[batch, 4]) {
  %y = Relu(%x) : f32[batch, 4]
  return %y
}
""")
    report = run_pipeline(g, "shape-inference")
    assert not report.modified
