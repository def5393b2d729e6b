"""Large weights stored inside an .onnx file are left in a read-only mapping of it
(``frontends/onnx/inline_weights.py``): loading parses only the rest, nothing is read until a
pass or kernel needs it, and the values are exactly the file's (at any alignment and dtype)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import helper, numpy_helper

import ridgeline as rl
from ridgeline.backends.registry import get_backend
from ridgeline.frontends.onnx.inline_weights import MIN_SPLIT_BYTES, split_inline_weights
from ridgeline.ir.errors import ModelError
from ridgeline.ir.storage import LazyTensor, materializations


def _model(shapes, dtype, names, pad: str) -> tuple[onnx.ModelProto, dict]:
    """A chain of Adds over initializers of ``shapes`` (a doc string of ``pad`` shifts offsets)."""
    rng = np.random.default_rng(len(shapes))
    arrays = {n: rng.standard_normal(s).astype(dtype) for n, s in zip(names, shapes)}
    code = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    nodes, x = [], "x"
    for i, n in enumerate(names):
        nodes.append(helper.make_node("Add", [x, n], [f"y{i}"]))
        x = f"y{i}"
    g = helper.make_graph(nodes, "inline", [helper.make_tensor_value_info("x", code, list(shapes[0]))],
                          [helper.make_tensor_value_info(x, code, list(shapes[0]))],
                          initializer=[numpy_helper.from_array(a, n) for n, a in arrays.items()], doc_string=pad)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), arrays


@settings(max_examples=12, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(rows=st.integers(1, 1100), cols=st.sampled_from([64, 128, 257]), n=st.integers(1, 3),
       dtype=st.sampled_from([np.float32, np.float16, np.float64, np.int64, np.int8]), pad=st.text(max_size=7))
def test_inline_weights_are_mapped_lazily_with_the_files_values(tmp_path_factory, rows, cols, n, dtype, pad):
    shapes = [(rows, cols)] * n
    proto, arrays = _model(shapes, dtype, [f"w{i}" for i in range(n)], pad)
    path = tmp_path_factory.mktemp("m") / "m.onnx"
    data = proto.SerializeToString()
    path.write_bytes(data)
    before = materializations()
    g = rl.load(path)
    assert materializations() == before   # loading reads no weight
    big = np.dtype(dtype).itemsize * rows * cols >= MIN_SPLIT_BYTES
    for name, want in arrays.items():
        v = g.value(name)
        assert isinstance(v.stored, LazyTensor) == big
        assert v.data.dtype == want.dtype and np.array_equal(v.data, want)
    if big:
        assert materializations() == before + n
    feeds = {"x": np.ones(shapes[0], dtype)}
    got = get_backend("numpy").compile(g).run(feeds)
    want = feeds["x"]
    for a in arrays.values():   # in the chain's order: the same roundings
        want = want + a
    assert np.array_equal(next(iter(got.values())), want)
    assert path.read_bytes() == data   # the user's file is untouched


def test_split_gives_the_model_without_its_large_raw_data():
    proto, arrays = _model([(4, 64), (300, 64)], np.float32, ["small", "big"], "")
    data = proto.SerializeToString()
    stripped, places = split_inline_weights(data)
    assert set(places) == {"big"}
    offset, length = places["big"]
    assert data[offset:offset + length] == arrays["big"].tobytes()
    want = onnx.ModelProto()
    want.CopyFrom(proto)
    next(t for t in want.graph.initializer if t.name == "big").ClearField("raw_data")
    got = onnx.ModelProto()
    got.ParseFromString(stripped)
    assert got == want


@pytest.mark.parametrize("cut", [1, 7, 100, 1000])
def test_truncated_inline_model_is_one_line_error(tmp_path, cut):
    proto, _ = _model([(300, 64)], np.float32, ["w"], "")
    path = tmp_path / "t.onnx"
    path.write_bytes(proto.SerializeToString()[:-cut])
    assert split_inline_weights(path.read_bytes()) is None   # falls back to protobuf's own parse
    with pytest.raises(ModelError) as e:
        rl.load(path)
    assert "\n" not in str(e.value)


def test_wrong_size_raw_data_is_refused(tmp_path):
    proto, _ = _model([(300, 64)], np.float32, ["w"], "")
    t = proto.graph.initializer[0]
    t.raw_data = t.raw_data + b"\0\0\0\0"
    path = tmp_path / "bad.onnx"
    path.write_bytes(proto.SerializeToString())
    with pytest.raises(ModelError, match="holds 76804 bytes"):
        rl.load(path)
