"""A Fused node the llvm backend does not compile runs its body on the numpy reference."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import ridgeline as rl
from ridgeline.ir.errors import RidgelineError


def _model(path, shape: list[int]) -> None:
    """x[batch, 8] → MatMul → Add → Gelu (fused) → Reshape(shape) → Gather → LayerNorm."""
    rng = np.random.default_rng(0)
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Add", ["h", "c"], ["a"]),
             helper.make_node("Gelu", ["a"], ["g"]), helper.make_node("Reshape", ["g", "shape"], ["r"]),
             helper.make_node("Gather", ["r", "idx"], ["ga"], axis=1),
             helper.make_node("LayerNormalization", ["ga", "scale"], ["y"], axis=-1)]
    inits = [numpy_helper.from_array(rng.standard_normal((8, 8)).astype(np.float32), "W"),
             numpy_helper.from_array(np.ones(8, np.float32), "c"),
             numpy_helper.from_array(np.array(shape, np.int64), "shape"),
             numpy_helper.from_array(np.array([0, 1], np.int64), "idx"),
             numpy_helper.from_array(np.ones(2, np.float32), "scale")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 20)]), path)


@pytest.mark.parametrize("shape", [[2147483648, -1], [4, -1]])
def test_fused_body_without_an_llvm_kernel_runs_on_the_reference(tmp_path, shape):
    """Where a Reshape's target cannot be solved at plan time (found by the fuzz soak, seed 92204:
    a 2**31 dim), the Fused node before it is left uncompiled; its body must run on the numpy
    reference (not a nested llvm interpreter without a plan, which raised AttributeError), so llvm
    gives numpy's answer or numpy's one-line error."""
    path = tmp_path / "m.onnx"
    _model(path, shape)
    graph = rl.load(path)
    feeds = {"x": np.random.default_rng(1).standard_normal((3, 8)).astype(np.float32)}

    def outcome(backend):
        try:
            return rl.compile(graph, backend, pipeline="default").run(feeds)["y"]
        except RidgelineError as e:
            assert "\n" not in str(e)
            return type(e).__name__

    want, got = outcome("numpy"), outcome("llvm")
    if isinstance(want, str):
        assert isinstance(got, str)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
