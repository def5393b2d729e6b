"""The text form: exact round trip, and parse errors with line:column."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from ridgeline.ir import Builder, Graph, ParseError, parse_graph, print_graph, tensor

SAMPLE = """\
graph @tiny(%x: f32[batch, 64], %w: f32[64, 64]) -> (%y: f32[batch, 64]) {
  %0 = MatMul(%x, %w) : f32[batch, 64]
  %y = Gelu(%0) {approximate = "tanh"} : f32[batch, 64]
  return %y
}
"""


def test_design_example_round_trips():
    g = parse_graph(SAMPLE)
    assert print_graph(g) == SAMPLE


def rich_graph() -> Graph:
    g = Graph("rich")
    g.meta["onnx"] = {"opset": 18, "producer": "test"}
    x = g.add_input("in/put:0", tensor("f16", "batch", "past + seq", 8))
    c16 = g.add_constant("c16", np.arange(8, dtype=np.float16) / 3)
    cbf = g.add_constant("cbf", (np.arange(40, dtype=np.float32) / 7).astype(ml_dtypes.bfloat16).reshape(5, 8))
    ci4 = g.add_constant("ci4", np.array([-8, 7, 0, 3], dtype=ml_dtypes.int4))
    g.add_constant("big", np.random.default_rng(0).standard_normal((32, 8)).astype(np.float32))
    g.add_constant("weightless", type=tensor("bf16", 4096, 4096))
    b = Builder(g)
    y = b.Mul(x, c16)
    y.producer.meta["tile"] = {"m": 64, "order": ["m", "n"], "double_buffer": True, "note": None}
    z = b.Cast(y, to="f32")
    s = b.Shape(z)
    body = Graph("fused_0")
    p = body.add_input("p", tensor("f32", "batch", "past + seq", 8))
    bb = Builder(body)
    body.outputs = [bb.Tanh(bb.Add(p, p))]
    f = g.add_node("Fused", [z], {"kind": "elementwise"}, body=body).outputs[0]
    g.outputs = [f, s]
    g.verify()
    return g


def test_rich_graph_round_trips_exactly():
    g = rich_graph()
    text = print_graph(g)
    g2 = parse_graph(text)
    assert print_graph(g2) == text
    np.testing.assert_array_equal(g2.value("c16").data, g.value("c16").data)
    assert g2.value("cbf").data.dtype == ml_dtypes.bfloat16
    np.testing.assert_array_equal(g2.value("big").data, g.value("big").data)
    assert g2.value("weightless").data is None
    assert g2.nodes[0].meta["tile"]["order"] == ["m", "n"]


def test_elided_text_refuses_to_parse():
    text = print_graph(rich_graph(), constants="elide")
    assert "<elided" in text
    with pytest.raises(ParseError, match="elided"):
        parse_graph(text)


@pytest.mark.parametrize("text, line, col, fragment", [
    ("graph @g(%x: f32[2]) -> (%y: f32[2]) {\n  %y = Relu(%z) : f32[2]\n  return %y\n}\n", 2, 13, "undefined value %z"),
    ("graph @g(%x: f32[2]) -> (%y: f32[2]) {\n  %y = Frobnicate(%x) : f32[2]\n  return %y\n}\n", 2, 8, "unknown op"),
    ("graph @g(%x: q32[2]) -> (%y: f32[2]) {\n  return %x\n}\n", 1, 14, "unknown dtype"),
    ("graph @g(%x: f32[2]) -> (%y: f32[3]) {\n  %y = Relu(%x) : f32[3]\n  return %y\n}\n", 2, 3, "spec infers f32[2]"),
    ("graph @g(%x: f32[2]) -> (%y: f32[2]) {\n  %y = Relu(%x) {alpha = 1.0} : f32[2]\n  return %y\n}\n", 2, 3, "unknown attribute"),
    ("graph @g(%x: f32[2]) -> (%y: f32[2]) {\n  %y = Relu(%x) : f32[2]\n", 3, 1, "end of input"),
    ("graph @g(%x: f32[2]) -> (%y: f32[2]) {\n  const %c: f32[3] = [1.0, 2.0]\n  return %x\n}\n", 2, 22, "type says"),
])
def test_parse_errors_carry_line_and_column(text, line, col, fragment):
    with pytest.raises(ParseError) as ei:
        parse_graph(text, source="m.rir")
    assert (ei.value.line, ei.value.column) == (line, col), str(ei.value)
    assert fragment in str(ei.value)
    assert str(ei.value).startswith(f"m.rir:{line}:{col}:")
