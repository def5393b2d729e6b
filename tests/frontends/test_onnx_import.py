"""ONNX import: numerics against onnxruntime, legacy forms, export, and hostile input."""

from __future__ import annotations

import hashlib

import numpy as np
import onnx
import pytest

from ridgeline.backends.numpy import NumpyBackend
from ridgeline.frontends.onnx import load_onnx, save_onnx
from ridgeline.ir import dims
from ridgeline.ir.errors import IRError
from ridgeline.ir.errors import ModelError, RidgelineError, UnsupportedOpError

from onnx_builders import (cyclic_model, external_data_model, hostile_models, mlp_model, shape_mismatch_model,
                           unsupported_model)

HOSTILE = hostile_models()


def ort_run(model: onnx.ModelProto, feeds):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"]).run(None, feeds)


@pytest.mark.parametrize("opset", [13, 17, 18])
def test_import_matches_onnxruntime(opset):
    m = mlp_model(opset)
    g = load_onnx(m)
    assert g.meta["onnx"]["opset"] == opset
    assert [n.op for n in g] == ["MatMul", "Add", "Tanh", "ReduceMean"]
    x = np.random.default_rng(1).standard_normal((3, 8)).astype(np.float32)
    got = NumpyBackend().compile(g).run({"x": x})["y"]
    np.testing.assert_allclose(got, ort_run(m, {"x": x})[0], rtol=1e-5, atol=1e-6)


def test_export_round_trip_runs_in_onnxruntime(tmp_path):
    g = load_onnx(mlp_model(17))
    out = tmp_path / "again.onnx"
    save_onnx(g, out)
    x = np.random.default_rng(2).standard_normal((2, 8)).astype(np.float32)
    ref = NumpyBackend().compile(g).run({"x": x})["y"]
    np.testing.assert_allclose(ort_run(onnx.load(out), {"x": x})[0], ref, rtol=1e-5, atol=1e-6)


def test_dims_bind_on_load():
    g = load_onnx(mlp_model(), dims={"batch": 4})
    assert str(g.outputs[0].type) == "f32[4, 1]"


def test_unsupported_ops_listed_once_with_counts():
    with pytest.raises(UnsupportedOpError) as ei:
        load_onnx(unsupported_model())
    assert ei.value.counts == {"Resize": 2, "GridSample": 1}
    assert "Resize (x2)" in str(ei.value) and "GridSample (x1)" in str(ei.value)


def test_cycle_is_refused():
    with pytest.raises(ModelError, match="cycle"):
        load_onnx(cyclic_model())


def test_shape_mismatch_is_refused():
    with pytest.raises(ModelError, match="bad_mm|contraction"):
        load_onnx(shape_mismatch_model())


@pytest.mark.parametrize("content", [b"", b"\x00\x01garbage\xff" * 10, None])
def test_garbage_and_truncated_files(tmp_path, content):
    p = tmp_path / "bad.onnx"
    if content is None:
        content = mlp_model().SerializeToString()[:57]   # truncated mid-message
    p.write_bytes(content)
    with pytest.raises(ModelError):
        load_onnx(p)


@pytest.mark.parametrize("location", ["../secret.bin", "/etc/passwd", "sub/../../x.bin"])
def test_external_data_outside_the_folder_is_refused(tmp_path, location):
    d = tmp_path / "model"
    d.mkdir()
    (tmp_path / "secret.bin").write_bytes(np.ones(4, np.float32).tobytes())
    p = d / "m.onnx"
    p.write_bytes(external_data_model(location).SerializeToString())
    with pytest.raises(ModelError, match="absolute|leaves|outside"):
        load_onnx(p)


def test_external_data_symlink_escape_is_refused(tmp_path):
    d = tmp_path / "model"
    d.mkdir()
    (tmp_path / "secret.bin").write_bytes(np.ones(4, np.float32).tobytes())
    (d / "w.bin").symlink_to(tmp_path / "secret.bin")
    p = d / "m.onnx"
    p.write_bytes(external_data_model("w.bin").SerializeToString())
    with pytest.raises(ModelError, match="outside"):
        load_onnx(p)


def test_external_data_inside_the_folder_loads(tmp_path):
    (tmp_path / "w.bin").write_bytes(np.arange(4, dtype=np.float32).tobytes())
    p = tmp_path / "m.onnx"
    p.write_bytes(external_data_model("w.bin").SerializeToString())
    g = load_onnx(p)
    np.testing.assert_array_equal(g.value("W").data, np.arange(4, dtype=np.float32))


def test_external_data_size_checked(tmp_path):
    (tmp_path / "w.bin").write_bytes(np.arange(3, dtype=np.float32).tobytes())
    p = tmp_path / "m.onnx"
    p.write_bytes(external_data_model("w.bin").SerializeToString())
    with pytest.raises(ModelError, match="needs 16"):
        load_onnx(p)


def test_input_file_is_never_modified(tmp_path):
    p = tmp_path / "m.onnx"
    p.write_bytes(mlp_model().SerializeToString())
    before = hashlib.sha256(p.read_bytes()).hexdigest()
    load_onnx(p)
    assert hashlib.sha256(p.read_bytes()).hexdigest() == before


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_model_gives_one_clear_error(case, tmp_path):
    model, fragments = HOSTILE[case]
    p = tmp_path / f"{case}.onnx"
    p.write_bytes(model.SerializeToString())
    before = p.read_bytes()
    with pytest.raises(RidgelineError) as ei:
        load_onnx(p)
    message = str(ei.value)
    assert "\n" not in message and message.startswith(str(p)), message
    for f in fragments:
        assert f.lower() in message.lower(), (f, message)
    assert p.read_bytes() == before and [x.name for x in tmp_path.iterdir()] == [p.name]


def test_unsupported_ops_are_checked_before_anything_else():
    # one message for all of them, even though the graph has other problems further on
    model, _ = HOSTILE["every-unsupported-op-at-once"]
    with pytest.raises(UnsupportedOpError) as ei:
        load_onnx(model)
    assert ei.value.counts == {"If": 1, "com.microsoft.FusedMatMul": 2, "StringNormalizer": 1}


@pytest.mark.parametrize("param", [
    "__import__('os').system('touch {marker}')",
    "(lambda: open('{marker}', 'w'))()",
    "().__class__.__base__.__subclasses__()",
    "a if open('{marker}', 'w') else b",
    "9**9**9**9",
    "x" * 5000,
    "lambda",
])
def test_dim_params_are_never_evaluated(param, tmp_path):
    """dim_param is untrusted text: it becomes a (sanitized) name, never Python."""
    marker = tmp_path / "marker"
    m = mlp_model()
    m.graph.input[0].type.tensor_type.shape.dim[0].dim_param = param.format(marker=marker)
    m.graph.output[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    g = load_onnx(m)
    (dim,) = g.inputs[0].type.shape[:1]
    assert isinstance(dim, str) and dims.is_name(dim)
    assert not marker.exists()
    assert g.outputs[0].type.shape[0] == dim  # inference carries the sanitized name through


@pytest.mark.parametrize("text", ["(lambda: 1)()", "a.__class__", "x[0]", "9**9**9**9", "seq**99", "a;b",
                                  "floor", "open(x)", "((((((((((((((((((a))))))))))))))))))", "1" * 30])
def test_malformed_dim_expressions_are_refused(text):
    with pytest.raises(IRError):
        dims.check_dim(text)


@pytest.mark.parametrize("text, canonical", [("past + seq", "past + seq"), ("seq+past", "past + seq"),
                                             ("batch*seq**2", "batch*seq**2"), ("floor(seq/2)", "floor(seq/2)"),
                                             ("Max(b, a) + 0", "Max(a, b)"), ("-seq + 3", "3 - seq")])
def test_well_formed_dim_expressions_still_parse(text, canonical):
    assert dims.check_dim(text) == canonical


@pytest.mark.parametrize("location, fragment", [("w\x00.bin", "malformed"), ("sub", "not a regular file"),
                                                ("C:/w.bin", "absolute")])
def test_external_data_malformed_locations(tmp_path, location, fragment):
    (tmp_path / "sub").mkdir()
    p = tmp_path / "m.onnx"
    p.write_bytes(external_data_model(location).SerializeToString())
    with pytest.raises(ModelError, match=fragment):
        load_onnx(p)


@pytest.mark.parametrize("offset, length, fragment", [(0, 2 ** 40, "needs 16"), (8, 16, "runs past the end"),
                                                      (-4, 16, "outside"), (1 << 50, 16, "outside")])
def test_external_data_offsets_and_lengths_are_checked(tmp_path, offset, length, fragment):
    (tmp_path / "w.bin").write_bytes(np.arange(4, dtype=np.float32).tobytes())
    m = external_data_model("w.bin")
    t = m.graph.initializer[0]
    for key, value in (("offset", offset), ("length", length)):
        e = t.external_data.add()
        e.key, e.value = key, str(value)
    p = tmp_path / "m.onnx"
    p.write_bytes(m.SerializeToString())
    with pytest.raises(ModelError, match=fragment):
        load_onnx(p)


def test_external_data_absurd_dims_are_refused_before_reading(tmp_path):
    (tmp_path / "w.bin").write_bytes(b"\0" * 16)
    m = external_data_model("w.bin")
    del m.graph.initializer[0].dims[:]
    m.graph.initializer[0].dims.extend([2 ** 40, 2 ** 40])
    p = tmp_path / "m.onnx"
    p.write_bytes(m.SerializeToString())
    with pytest.raises(ModelError, match="beyond any real tensor"):
        load_onnx(p)


def test_external_data_needs_a_path_to_resolve_against():
    with pytest.raises(ModelError, match="load it by path"):
        load_onnx(external_data_model("w.bin"))


def test_save_to_an_unwritable_place_is_a_model_error(tmp_path):
    from ridgeline.ir.rir_file import save_rir
    g = load_onnx(mlp_model())
    (tmp_path / "dir.onnx").mkdir()
    with pytest.raises(ModelError, match="cannot write"):
        save_onnx(g, tmp_path / "dir.onnx")
    with pytest.raises(ModelError, match="cannot write"):
        save_rir(g, tmp_path / "missing" / "m.rir")
    assert sorted(x.name for x in tmp_path.iterdir()) == ["dir.onnx"]  # no temporary files left
