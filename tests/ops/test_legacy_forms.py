"""Older ONNX op forms are upgraded on import to the form the spec follows, with the old meaning:
each model is built at its old opset and compared with onnx.reference running that opset."""

from __future__ import annotations

import numpy as np
import pytest

from op_harness import check_op, one_node_model
from ridgeline.frontends.onnx import load_onnx
from ridgeline.ir.errors import ModelError

R = np.random.default_rng(0)
X = R.standard_normal((2, 3, 4)).astype(np.float32)
AX = np.array([1], np.int64)


@pytest.mark.parametrize("op,inputs,attrs,opset,const", [
    ("ReduceMean", [X], {"axes": [1], "keepdims": 0}, 13, set()),
    ("ReduceSum", [X], {"axes": [-1]}, 11, set()),
    ("ReduceMax", [X], {"axes": [0, 2]}, 17, set()),
    ("Squeeze", [X[:, :1]], {"axes": [1]}, 11, set()),
    ("Unsqueeze", [X], {"axes": [0, -1]}, 11, set()),
    ("Split", [X], {"axis": 2, "split": [1, 3]}, 11, set()),
    ("Slice", [X], {"starts": [0, 1], "ends": [2, 100], "axes": [0, 2]}, 9, set()),
    ("Pad", [X], {"pads": [0, 1, 0, 0, 2, 1], "value": 1.5}, 10, set()),
    ("Clip", [X], {"min": -0.3, "max": 0.4}, 10, set()),
    ("Softmax", [X], {"axis": 2}, 11, set()),
    ("Hardmax", [X], {"axis": -1}, 11, set()),
    ("TopK", [X], {"k": 2, "axis": 1}, 9, set()),
    ("Dropout", [X], {"ratio": 0.3}, 10, set()),
    ("GroupNormalization", [R.standard_normal((2, 4, 3)).astype(np.float32), np.array([0.5, 2.0], np.float32),
                            np.array([1.0, -1.0], np.float32)], {"num_groups": 2}, 18, {1, 2}),
])
def test_old_forms_keep_their_meaning(op, inputs, attrs, opset, const):
    outputs = 2 if op in ("TopK", "Split") else 1
    check_op(op, inputs, attrs, outputs=outputs, opset=opset, const=const, rtol=1e-5, atol=1e-5)


def test_old_softmax_over_a_middle_axis_is_refused_with_a_reason():
    with pytest.raises(ModelError, match="2-D coercion"):
        load_onnx(one_node_model("Softmax", [X], {"axis": 1}, opset=11))


def test_opset18_group_norm_with_computed_scale_is_refused():
    m = one_node_model("GroupNormalization", [X, np.ones(3, np.float32), np.ones(3, np.float32)],
                       {"num_groups": 3}, opset=18)
    with pytest.raises(ModelError, match="re-export at opset >= 21"):
        load_onnx(m)


def test_opset8_batch_norm_spatial_by_definition():
    """onnx.reference cannot run opset-8 BatchNormalization; compare with the formula."""
    from ridgeline.testing.onnx_backend import StrictInterpreter
    x = R.standard_normal((2, 3, 4)).astype(np.float32)
    scale, bias = R.uniform(0.5, 2, 3).astype(np.float32), R.standard_normal(3).astype(np.float32)
    mean, var = R.standard_normal(3).astype(np.float32), R.uniform(0.5, 2, 3).astype(np.float32)
    g = load_onnx(one_node_model("BatchNormalization", [x, scale, bias, mean, var], {"spatial": 1}, opset=8))
    got = StrictInterpreter(g).run({f"in{i}": a for i, a in enumerate([x, scale, bias, mean, var])})["out0"]
    c = lambda a: a.reshape(1, 3, 1)  # noqa: E731
    np.testing.assert_allclose(got, c(scale) * (x - c(mean)) / np.sqrt(c(var) + 1e-5) + c(bias), rtol=1e-5)
    with pytest.raises(ModelError, match="spatial=0"):
        load_onnx(one_node_model("BatchNormalization", [x, scale, bias, mean, var], {"spatial": 0}, opset=8))
