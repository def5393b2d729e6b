"""Weights without copies: external data is memory-mapped and read only when a pass or kernel
needs it (``show`` and ``ir`` never do: counted with ``materializations()``), the mapped arrays
are views of the file (no copy), and ``opt -o`` streams them back out to ``<out>.data``; the
input files are never changed."""

from __future__ import annotations

import hashlib

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

import ridgeline as rl
from ridgeline.backends.registry import get_backend
from ridgeline.cli import main
from ridgeline.ir.errors import ModelError
from ridgeline.ir.storage import materializations


def _mlp(tmp_path, hidden: int, ffn: int, seed: int = 0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    w1 = rng.standard_normal((hidden, ffn)).astype(dtype)
    w2 = rng.standard_normal((ffn, hidden)).astype(dtype)
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("MatMul", ["r", "w2"], ["y"])]
    code = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    g = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", code, ["b", hidden])],
                          [helper.make_tensor_value_info("y", code, ["b", hidden])],
                          initializer=[numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")])
    path = tmp_path / "mlp.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path),
              save_as_external_data=True, all_tensors_to_one_file=True, location="mlp.onnx.data", size_threshold=0)
    return path, {"w1": w1, "w2": w2}


def _digest(folder) -> dict:
    return {p.name: hashlib.sha1(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


@settings(max_examples=4, deadline=None)
@given(hidden=st.integers(1, 40), ffn=st.integers(1, 70), dtype=st.sampled_from([np.float32, np.float16]))
def test_external_weights_are_mapped_lazily_and_equal(tmp_path_factory, hidden, ffn, dtype):
    path, arrays = _mlp(tmp_path_factory.mktemp("lazy"), hidden, ffn, dtype=dtype)
    before = materializations()
    g = rl.load(path)
    assert materializations() == before
    assert all(g.constants[n].is_lazy for n in arrays)
    for name, want in arrays.items():
        got = g.constants[name].data
        np.testing.assert_array_equal(got, want)
        assert not got.flags.writeable and not got.flags.owndata  # a view of the mapping, not a copy
    assert materializations() == before + len(arrays)


def test_show_and_ir_never_read_weights(tmp_path, capsys):
    path, _ = _mlp(tmp_path, 24, 40)
    before = materializations()
    for argv in (["show", str(path)], ["ir", str(path)], ["show", str(path), "--json"]):
        assert main(argv) == 0
        assert materializations() == before, argv
    out = capsys.readouterr().out
    assert "w1" in out


def test_opt_streams_weights_out_and_leaves_inputs_alone(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    path, arrays = _mlp(src, 16, 48, seed=3)
    digest = _digest(src)
    out = tmp_path / "out.onnx"
    assert main(["opt", str(path), "-p", "default", "-o", str(out)]) == 0
    assert _digest(src) == digest
    assert (tmp_path / "out.onnx.data").stat().st_size >= sum(a.nbytes for a in arrays.values())
    m = onnx.load(str(out), load_external_data=False)
    assert all(t.data_location == TensorProto.EXTERNAL for t in m.graph.initializer if t.name in arrays)
    x = np.random.default_rng(0).standard_normal((3, 16)).astype(np.float32)
    want = get_backend("numpy").compile(rl.load(path)).run({"x": x})["y"]
    got = get_backend("numpy").compile(rl.load(out)).run({"x": x})["y"]
    np.testing.assert_allclose(got, want, rtol=1e-6)
    ort = pytest.importorskip("onnxruntime")
    ref = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(ref, want, rtol=1e-5, atol=1e-5)


def test_mapping_keeps_the_file_checks(tmp_path):
    path, _ = _mlp(tmp_path, 8, 8)
    data = tmp_path / "mlp.onnx.data"
    data.write_bytes(data.read_bytes()[:-4])  # shorter than the declared tensors
    with pytest.raises(ModelError, match="runs past the end|declared type needs"):
        rl.load(path)


def test_a_mapped_weight_pickles_as_its_array(tmp_path):
    import pickle
    path, arrays = _mlp(tmp_path, 8, 12)
    g = rl.load(path)
    for name, want in arrays.items():
        lazy = g.constants[name].stored
        got = pickle.loads(pickle.dumps(lazy))  # a process pool sees the array, never the mapping
        assert isinstance(got, np.ndarray)
        np.testing.assert_array_equal(got, want)
