"""Model-local functions: ridgeline's Fused nodes survive save_onnx → load_onnx; others are inlined."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from ridgeline.backends.numpy import NumpyBackend
from ridgeline.frontends.onnx import load_onnx, save_onnx
from ridgeline.ir import Builder, Graph, print_graph, tensor
from ridgeline.ir.errors import ModelError


def fused_graph() -> Graph:
    g = Graph("f")
    x = g.add_input("x", tensor("f32", "batch", 8))
    bias = g.add_constant("bias", np.linspace(-1, 1, 8).astype(np.float32))
    body = Graph("elementwise_body")
    p, q = body.add_input("p", tensor("f32", "batch", 8)), body.add_input("q", tensor("f32", 8))
    bb = Builder(body)
    body.outputs = [bb.Gelu(bb.Add(p, q), approximate="tanh")]
    y = g.add_node("Fused", [x, bias], {"kind": "matmul-epilogue", "label": "ffn.act"}, body=body).outputs[0]
    g.outputs = [Builder(g).Relu(y)]
    g.verify()
    return g


def ort(model: onnx.ModelProto, feeds):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"]).run(None, feeds)


def test_fused_round_trips_through_onnx(tmp_path):
    g = fused_graph()
    path = tmp_path / "f.onnx"
    save_onnx(g, path)
    back = load_onnx(path)
    fused = [n for n in back if n.op == "Fused"]
    assert len(fused) == 1
    assert dict(fused[0].attrs) == {"kind": "matmul-epilogue", "label": "ffn.act"}
    assert [n.op for n in fused[0].body] == ["Add", "Gelu"]
    x = np.random.default_rng(0).standard_normal((3, 8)).astype(np.float32)
    want = NumpyBackend().compile(g).run({"x": x})
    got = NumpyBackend().compile(back).run({"x": x})
    np.testing.assert_allclose(next(iter(got.values())), next(iter(want.values())), rtol=1e-6)
    np.testing.assert_allclose(ort(onnx.load(path), {"x": x})[0], next(iter(want.values())), rtol=1e-5, atol=1e-6)
    # and the round trip is stable: saving the re-imported graph gives the same text IR
    assert print_graph(load_onnx(save_onnx(back))) == print_graph(back)


def _with_function(body_calls_self: bool = False) -> onnx.ModelProto:
    fn_nodes = [helper.make_node("Mul", ["a", "a"], ["sq"]), helper.make_node("Add", ["sq", "a"], ["out"])]
    if body_calls_self:
        fn_nodes.append(helper.make_node("SqPlus", ["out"], ["out2"], domain="custom"))
    fn = helper.make_function("custom", "SqPlus", ["a"], ["out"], fn_nodes, [helper.make_opsetid("", 18)])
    g = helper.make_graph([helper.make_node("SqPlus", ["x"], ["y"], domain="custom")], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("custom", 1)],
                             functions=[fn])


def test_foreign_local_functions_are_inlined():
    g = load_onnx(_with_function())
    assert [n.op for n in g] == ["Mul", "Add"]
    x = np.arange(4, dtype=np.float32)
    np.testing.assert_array_equal(NumpyBackend().compile(g).run({"x": x})["y"], x * x + x)


def test_recursive_local_function_is_refused():
    with pytest.raises(ModelError, match="calls itself"):
        load_onnx(_with_function(body_calls_self=True))
