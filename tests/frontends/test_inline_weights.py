"""Large weights stored inside an .onnx file are left in a read-only mapping of it
(``frontends/onnx/inline_weights.py``): loading parses only the rest, nothing is read until a
pass or kernel needs it, and the values are exactly the file's (at any alignment and dtype)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, event, given, settings
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


def _load_outcome(path, monkeypatch, scanner: bool):
    """('ok', nodes, {constant: (type, bytes)}) or ('error', message) for ``rl.load(path)``,
    with the inline-weight scanner on or off (off: protobuf parses the whole file)."""
    from ridgeline.frontends.onnx import importer
    with monkeypatch.context() as m:
        if not scanner:
            m.setattr(importer, "split_inline_weights", lambda buf: None)
        try:
            g = rl.load(path)
        except ModelError as e:
            return ("error", str(e))
        nodes = [(n.op, [v.name for v in n.inputs]) for n in g.nodes]
        consts = {k: (str(v.type), np.asarray(v.data).tobytes()) for k, v in g.constants.items()}
        return ("ok", nodes, consts)


def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field (protobuf merges a message's repeated occurrences)."""
    from ridgeline.frontends.onnx.inline_weights import _encode_varint
    return _encode_varint(number << 3 | 2) + _encode_varint(len(payload)) + payload


def _structured(model: onnx.ModelProto, draw) -> bytes:
    """The model serialized by hand with field-level edits protobuf accepts and resolves by its
    merge rules: a tensor's name or raw_data given twice (the last wins; two tensors may swap names), an initializer given
    twice, data_location set to external, the graph split over two ``graph`` fields."""
    graph = onnx.GraphProto()
    graph.CopyFrom(model.graph)
    del graph.initializer[:]
    tensors = []
    inits = list(model.graph.initializer)
    swap = len(inits) > 1 and draw(st.booleans())  # each of two tensors named twice, the last the other's
    for i, t in enumerate(inits):
        b = t.SerializeToString()
        if swap and i < 2:
            b += _field(8, inits[1 - i].name.encode())
        edit = draw(st.sampled_from(["none"] * 4 + ["rename", "second_raw", "small_second_raw", "external", "twice"]))
        if edit == "rename":
            b += _field(8, b"renamed")
        elif edit == "second_raw":
            b += _field(9, bytes(len(t.raw_data)))
        elif edit == "small_second_raw":
            b += _field(9, b"\x00" * 8)
        elif edit == "external":
            b += onnx.TensorProto(data_location=onnx.TensorProto.EXTERNAL).SerializeToString()
        tensors.append(_field(5, b))
        if edit == "twice":
            tensors.append(_field(5, b))
    rest = graph.SerializeToString()
    cut = draw(st.integers(0, len(tensors)))
    halves = [rest + b"".join(tensors[:cut]), b"".join(tensors[cut:])]
    shell = onnx.ModelProto()
    shell.CopyFrom(model)
    shell.ClearField("graph")
    graphs = [_field(7, h) for h in halves] if draw(st.booleans()) else [_field(7, b"".join(halves))]
    return shell.SerializeToString() + b"".join(graphs)


@settings(max_examples=150, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_scanner_agrees_with_protobuf_on_mutated_files(tmp_path_factory, monkeypatch, data):
    """Differential: a file edited field by field (see ``_structured``) and then byte by byte (bit
    flips, bytes cut or inserted, slices duplicated, so varints and lengths break) loads to the same graph and
    weights with the scanner as with the full protobuf parse, or both refuse it in one line."""
    n = data.draw(st.integers(1, 3))
    model, _ = _model([(128, 130)] * n, np.float32, [f"w{i}" for i in range(n)], pad="")
    buf = bytearray(_structured(model, data.draw))
    for _ in range(data.draw(st.sampled_from([0, 0, 1, 2, 3]))):
        near_structure = data.draw(st.booleans())
        hi = len(buf) - 1
        pos = data.draw(st.integers(0, min(hi, 1024)) if near_structure else st.integers(0, hi))
        kind = data.draw(st.sampled_from(["flip", "cut", "insert", "duplicate"]))
        if kind == "flip":
            buf[pos] ^= 1 << data.draw(st.integers(0, 7))
        elif kind == "cut":
            del buf[pos:pos + data.draw(st.integers(1, 8))]
        elif kind == "insert":
            buf[pos:pos] = data.draw(st.binary(min_size=1, max_size=6))
        else:
            start = data.draw(st.integers(0, hi))
            buf[pos:pos] = buf[start:start + data.draw(st.integers(2, 300))]
    path = tmp_path_factory.mktemp("mutant") / "m.onnx"
    path.write_bytes(bytes(buf))
    with_scanner = _load_outcome(path, monkeypatch, scanner=True)
    full_parse = _load_outcome(path, monkeypatch, scanner=False)
    event(f"{with_scanner[0]}, scanner {'used' if split_inline_weights(bytes(buf)) else 'not used'}")
    assert with_scanner[0] == full_parse[0], (with_scanner[:1], full_parse[:1])
    if with_scanner[0] == "ok":
        assert with_scanner == full_parse
    else:
        assert "\n" not in with_scanner[1] and "\n" not in full_parse[1]
