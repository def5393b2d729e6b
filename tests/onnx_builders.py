"""Small ONNX models built with onnx.helper for frontend tests."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def mlp_model(opset: int = 18) -> onnx.ModelProto:
    """x[batch, 8] @ W + b -> Gelu-ish tanh -> ReduceMean over the last dim."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((8, 16)).astype(np.float32), "W")
    b = numpy_helper.from_array(rng.standard_normal(16).astype(np.float32), "b")
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["h"], name="mm"),
        helper.make_node("Add", ["h", "b"], ["hb"], name="bias"),
        helper.make_node("Tanh", ["hb"], ["t"], name="act"),
    ]
    if opset >= 18:
        axes = numpy_helper.from_array(np.array([-1], np.int64), "axes")
        nodes.append(helper.make_node("ReduceMean", ["t", "axes"], ["y"], keepdims=1, name="mean"))
        inits = [w, b, axes]
    else:
        nodes.append(helper.make_node("ReduceMean", ["t"], ["y"], axes=[-1], keepdims=1, name="mean"))
        inits = [w, b]
    g = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 1])], initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def unsupported_model() -> onnx.ModelProto:
    # ops ridgeline has no spec for (image resampling); the importer must list both with counts
    nodes = [helper.make_node("Resize", ["x", "", "w"], ["a"]), helper.make_node("Resize", ["a", "", "w"], ["b"]),
             helper.make_node("GridSample", ["b", "w"], ["c"]),
             helper.make_node("Relu", ["c"], ["y"])]
    w = numpy_helper.from_array(np.ones((1, 1, 1, 1), np.float32), "w")
    g = helper.make_graph(nodes, "convnet", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=[w])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])


def cyclic_model() -> onnx.ModelProto:
    nodes = [helper.make_node("Add", ["x", "b"], ["a"], name="first"),
             helper.make_node("Relu", ["a"], ["b"], name="second")]
    g = helper.make_graph(nodes, "loop", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                          [helper.make_tensor_value_info("b", TensorProto.FLOAT, [2])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])


def shape_mismatch_model() -> onnx.ModelProto:
    w = numpy_helper.from_array(np.ones((5, 4), np.float32), "W")
    g = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"], name="bad_mm")], "mismatch",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=[w])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])


def external_data_model(location: str) -> onnx.ModelProto:
    t = TensorProto()
    t.name, t.data_type = "W", TensorProto.FLOAT
    t.dims.extend([4])
    t.data_location = TensorProto.EXTERNAL
    e = t.external_data.add()
    e.key, e.value = "location", location
    g = helper.make_graph([helper.make_node("Add", ["x", "W"], ["y"])], "ext",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])], initializer=[t])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
