"""ONNX import: numerics against onnxruntime, legacy forms, export, and hostile input."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnx
import pytest

from ridgeline.backends.numpy import NumpyBackend
from ridgeline.frontends.onnx import load_onnx, save_onnx
from ridgeline.ir.errors import ModelError, UnsupportedOpError

from onnx_builders import (cyclic_model, external_data_model, mlp_model, shape_mismatch_model,
                           unsupported_model)


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
