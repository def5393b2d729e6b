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


# --------------------------------------------------------------------------- hostile models
def _model(nodes, inputs, outputs, inits=(), opset=18, functions=(), extra_opsets=()) -> onnx.ModelProto:
    g = helper.make_graph(nodes, "hostile", inputs, outputs, initializer=list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset), *extra_opsets],
                             functions=list(functions))


def _raw_tensor(name: str, dims, raw: bytes, dtype=TensorProto.FLOAT) -> TensorProto:
    t = TensorProto()
    t.name, t.data_type = name, dtype
    t.dims.extend(dims)
    t.raw_data = raw
    return t


def hostile_models() -> dict[str, tuple[onnx.ModelProto, list[str]]]:
    """Malformed or hostile models by case name, each with fragments its one-line error must contain."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    y_any = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    branch = helper.make_graph([helper.make_node("Identity", ["x"], ["t"])], "branch", [],
                               [helper.make_tensor_value_info("t", TensorProto.FLOAT, [2])])
    cond = numpy_helper.from_array(np.array(True), "c")
    # a model-local function that calls itself: inlining it would never end
    fn = helper.make_function("local", "myfn", ["a"], ["b"], [helper.make_node("myfn", ["a"], ["b"], domain="local")],
                              [helper.make_opsetid("", 18), helper.make_opsetid("local", 1)])
    many = [helper.make_node("If", ["c"], ["i"], then_branch=branch, else_branch=branch),
            helper.make_node("FusedMatMul", ["i", "i"], ["j"], domain="com.microsoft"),
            helper.make_node("FusedMatMul", ["j", "j"], ["k"], domain="com.microsoft"),
            helper.make_node("StringNormalizer", ["k"], ["y"])]  # strings: never in the IR
    return {
        "control-flow": (_model([helper.make_node("If", ["c"], ["y"], then_branch=branch, else_branch=branch)],
                                [x], [y], [cond]), ["If (x1)", "control flow"]),
        "unknown-domain": (_model([helper.make_node("FusedMatMul", ["x", "x"], ["y"], domain="com.microsoft")],
                                  [x], [y], extra_opsets=[helper.make_opsetid("com.microsoft", 1)]),
                           ["com.microsoft.FusedMatMul (x1)", "domain 'com.microsoft'"]),
        "every-unsupported-op-at-once": (_model(many, [x], [y], [cond], extra_opsets=[helper.make_opsetid(
            "com.microsoft", 1)]), ["3 unsupported op(s)", "StringNormalizer (x1)", "com.microsoft.FusedMatMul (x2)",
                                              "If (x1)"]),
        "recursive-local-function": (_model([helper.make_node("myfn", ["x"], ["y"], domain="local")], [x], [y],
                                            functions=[fn], extra_opsets=[helper.make_opsetid("local", 1)]),
                                     ["local.myfn", "calls itself"]),
        "duplicate-producer": (_model([helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Neg", ["x"], ["y"])],
                                      [x], [y]), ["'y' is produced twice"]),
        "duplicate-input": (_model([helper.make_node("Relu", ["x"], ["y"])], [x, x], [y]), ["'x' is declared twice"]),
        "duplicate-initializer": (_model([helper.make_node("Add", ["x", "w"], ["y"])], [x], [y],
                                         [numpy_helper.from_array(np.ones(2, np.float32), "w")] * 2),
                                  ["'w' is defined twice"]),
        "missing-graph-output": (_model([helper.make_node("Relu", ["x"], ["z"])], [x], [y]),
                                 ["graph output 'y' is never produced"]),
        "no-graph-outputs": (_model([helper.make_node("Relu", ["x"], ["z"])], [x], []), ["declares no outputs"]),
        "undefined-input": (_model([helper.make_node("Add", ["x", "nope"], ["y"], name="add")], [x], [y]),
                            ["'add'", "reads 'nope'"]),
        "attribute-of-wrong-kind": (_model([helper.make_node("Transpose", ["x"], ["y"], perm=1.5, name="tr")],
                                           [x], [y]), ["'tr'", "perm", "expected ints"]),
        "unknown-attribute": (_model([helper.make_node("Relu", ["x"], ["y"], frob=3)], [x], [y]),
                              ["attribute 'frob'"]),
        "attribute-out-of-range": (_model([helper.make_node("Softmax", ["x"], ["y"], axis=7)], [x], [y]),
                                   ["axis 7 is out of range"]),
        "subgraph-attribute": (_model([helper.make_node("Relu", ["x"], ["y"], body=branch)], [x], [y]),
                               ["sub-graph", "control flow"]),
        "undecodable-string-attribute": (_model([helper.make_node("Gelu", ["x"], ["y"], approximate=b"\xff\xfe")],
                                                [x], [y], opset=20), ["not valid UTF-8"]),
        "too-many-outputs": (_model([helper.make_node("Relu", ["x"], ["y", "z"])], [x], [y]),
                             ["2 outputs", "Relu has 1"]),
        "absurd-input-dims": (_model([helper.make_node("Relu", ["x"], ["y"])],
                                     [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2 ** 50, 2 ** 50])],
                                     [y_any]), ["beyond any real tensor"]),
        "absurd-initializer": (_model([helper.make_node("Add", ["x", "w"], ["y"])], [x], [y],
                                      [_raw_tensor("w", [2 ** 31, 2 ** 31, 4], b"\0" * 8)]),
                               ["initializer 'w'", "beyond any real tensor"]),
        "absurd-computed-shape": (_model([helper.make_node("ConstantOfShape", ["s"], ["y"], name="cos")], [], [y_any],
                                         [numpy_helper.from_array(np.array([2 ** 40, 2 ** 40], np.int64), "s")]),
                                  ["'cos'", "beyond any real tensor"]),
        "initializer-size-mismatch": (_model([helper.make_node("Add", ["x", "w"], ["y"])], [x], [y],
                                             [_raw_tensor("w", [3], b"\0" * 8)]), ["holds 8 bytes", "need 12"]),
        "negative-initializer-dim": (_model([helper.make_node("Add", ["x", "w"], ["y"])], [x], [y],
                                            [_raw_tensor("w", [-1], b"")]), ["negative dimension"]),
        "string-initializer": (_model([helper.make_node("Identity", ["s"], ["y"])], [], [y],
                                      [helper.make_tensor("s", TensorProto.STRING, [1], [b"a"])]),
                               ["string tensors"]),
        "sequence-input": (_model([helper.make_node("Relu", ["x"], ["y"])],
                                  [helper.make_tensor_sequence_value_info("x", TensorProto.FLOAT, [2])], [y]),
                           ["only tensor values"]),
        "no-opset": (helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y]),
                                       opset_imports=[]), ["declares no opset"]),
        "future-opset": (_model([helper.make_node("Relu", ["x"], ["y"])], [x], [y], opset=99),
                         ["opset 99 is not supported"]),
        "declared-type-contradicts": (_model([helper.make_node("Relu", ["x"], ["y"])], [x],
                                             [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])]),
                                      ["declared f32[3] but inferred f32[2]"]),
        "reshape-shape-mismatch": (_model([helper.make_node("Reshape", ["x", "s"], ["y"])], [x], [y],
                                          [numpy_helper.from_array(np.array([3], np.int64), "s")]),
                                   ["cannot reshape 2 elements"]),
    }
