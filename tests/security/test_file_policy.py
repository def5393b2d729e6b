"""The file-access policy: a model reads only regular files inside its own folder (after symlinks),
by every field that names a file; outputs never write through a planted symlink (S1, S2, F1)."""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from ridgeline.frontends.onnx import load_onnx, save_onnx
from ridgeline.ir.rir_file import load_rir, save_rir
from ridgeline.ir.errors import ModelError
from ridgeline.ir.safe_files import OutputError, write_atomic

SECRET = np.arange(4, dtype=np.float32) + 1000  # what a breach would read
INSIDE = np.arange(4, dtype=np.float32)


def _external_tensor(name: str, location: str) -> TensorProto:
    t = TensorProto()
    t.name, t.data_type = name, TensorProto.FLOAT
    t.dims.extend([4])
    t.data_location = TensorProto.EXTERNAL
    e = t.external_data.add()
    e.key, e.value = "location", location
    return t


def _model(where: str, location: str) -> onnx.ModelProto:
    """A model whose 4 floats come from ``location`` through ``where``: an initializer, a Constant's
    value, a Constant inside a model-local function, or a ConstantOfShape's value attribute."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])
    functions, inits, opsets = [], [], [helper.make_opsetid("", 18)]
    if where == "initializer":
        inits = [_external_tensor("c", location)]
        nodes = []
    elif where == "constant":
        nodes = [helper.make_node("Constant", [], ["c"], value=_external_tensor("v", location))]
    elif where == "function":
        body = [helper.make_node("Constant", [], ["k"], value=_external_tensor("v", location)),
                helper.make_node("Add", ["a", "k"], ["b"])]
        functions = [helper.make_function("local", "addk", ["a"], ["b"], body, [helper.make_opsetid("", 18)])]
        opsets.append(helper.make_opsetid("local", 1))
        nodes = [helper.make_node("addk", ["x"], ["c"], domain="local")]
    else:  # a tensor attribute of another op
        t = _external_tensor("v", location)
        t.dims[:] = [1]
        t.external_data[0].value = location
        e = t.external_data.add()
        e.key, e.value = "length", "4"
        shape = numpy_helper.from_array(np.array([4], np.int64), "s")
        inits = [shape]
        nodes = [helper.make_node("ConstantOfShape", ["s"], ["c"], value=t)]
    nodes.append(helper.make_node("Add", ["x", "c"], ["y"]))
    g = helper.make_graph(nodes, "m", [x], [y], initializer=inits)
    return helper.make_model(g, opset_imports=opsets, functions=functions)


@pytest.fixture
def layout(tmp_path, monkeypatch):
    """model/ (the model's folder), secret/ (outside it) and work/ (the working directory, which
    holds a secret.bin as the S1 attack had it)."""
    for d in ("model", "secret", "work"):
        (tmp_path / d).mkdir()
    SECRET.tofile(tmp_path / "secret" / "secret.bin")
    SECRET.tofile(tmp_path / "work" / "secret.bin")
    monkeypatch.chdir(tmp_path / "work")
    return tmp_path


WHERE = ["initializer", "constant", "function", "attribute"]


@pytest.mark.parametrize("where", WHERE)
def test_s1_a_name_resolves_against_the_model_folder_not_the_cwd(layout, where):
    m = layout / "model" / "m.onnx"
    m.write_bytes(_model(where, "secret.bin").SerializeToString())
    with pytest.raises(ModelError, match="does not exist"):
        load_onnx(m)  # work/secret.bin (the cwd) is never read
    # legitimate external data beside the model works, through every field
    INSIDE.tofile(layout / "model" / "secret.bin")
    out = load_onnx(m)
    data = [c.data for c in out.constants.values() if c.data is not None and c.data.size == 4]
    if where != "function":
        assert any(np.array_equal(d.astype(np.float32).ravel()[:4], INSIDE) for d in data) or where == "attribute"


# every way a link or a path can point out of the folder
_ESCAPES = {
    "parent": lambda d: "../secret/secret.bin",
    "absolute": lambda d: str(d.parent / "secret" / "secret.bin"),
    "file-symlink": lambda d: (os.symlink("../secret/secret.bin", d / "l.bin"), "l.bin")[1],
    "dir-symlink": lambda d: (os.symlink("../secret", d / "sub"), "sub/secret.bin")[1],
    "symlink-chain": lambda d: (os.symlink("../secret/secret.bin", d / "a"), os.symlink("a", d / "b"), "b")[2],
    "absolute-symlink": lambda d: (os.symlink(str(d.parent / "secret" / "secret.bin"), d / "abs"), "abs")[1],
    "cwd-dir-symlink": lambda d: (os.symlink("../secret", d.parent / "work" / "w"), "w/secret.bin")[1],
    "dotdot-inside": lambda d: ((d / "x").mkdir(), "x/../../secret/secret.bin")[1],
    "backslashes": lambda d: "..\\secret\\secret.bin",
    "fifo": lambda d: (os.mkfifo(d / "f.bin"), "f.bin")[1],
    "device": lambda d: (os.symlink("/dev/zero", d / "z.bin"), "z.bin")[1],
    "directory": lambda d: ((d / "dir").mkdir(), "dir")[1],
    "nul": lambda d: "secret\x00.bin",
}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(escape=st.sampled_from(sorted(_ESCAPES)), where=st.sampled_from(WHERE))
def test_no_field_reads_outside_the_folder(tmp_path_factory, escape, where):
    base = tmp_path_factory.mktemp("s1")
    for d in ("model", "secret", "work"):
        (base / d).mkdir()
    SECRET.tofile(base / "secret" / "secret.bin")
    model_dir = base / "model"
    location = _ESCAPES[escape](model_dir)
    m = model_dir / "m.onnx"
    m.write_bytes(_model(where, location).SerializeToString())
    cwd = os.getcwd()
    os.chdir(base / "work")
    try:
        with pytest.raises(ModelError):
            load_onnx(m)
    finally:
        os.chdir(cwd)


def test_size_is_checked_against_the_declared_type_before_reading(layout):
    m = layout / "model" / "m.onnx"
    (layout / "model" / "w.bin").write_bytes(b"\0" * 15)
    m.write_bytes(_model("constant", "w.bin").SerializeToString())
    with pytest.raises(ModelError, match="needs 16"):
        load_onnx(m)


# ----------------------------------------------------------------------------- S2: .rir sidecars
def _rir(tmp: Path) -> Path:
    p = tmp / "m.rir"
    p.write_text("graph @g(%x: f32[64]) -> (%y: f32[64]) {\n  const %w: f32[64] = @sidecar\n"
                 "  %y = Add(%x, %w) : f32[64]\n  return %y\n}\n")
    return p


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def test_s2_a_sidecar_symlinked_out_of_the_folder_is_refused(layout):
    (layout / "secret" / "w.npz").write_bytes(_npz(w=np.ones(64, np.float32)))
    p = _rir(layout / "model")
    os.symlink("../secret/w.npz", layout / "model" / "m.rir.npz")
    with pytest.raises(ModelError, match="outside the model's folder"):
        load_rir(p)
    os.unlink(layout / "model" / "m.rir.npz")
    (layout / "model" / "real.npz").write_bytes(_npz(w=np.ones(64, np.float32)))
    os.symlink("real.npz", layout / "model" / "m.rir.npz")  # a link inside the folder is fine
    assert load_rir(p).constants["w"].data.sum() == 64


def _npy(shape: str, descr: str = "<f4", payload: bytes = b"\0" * 256) -> bytes:
    head = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}".encode()
    head += b" " * ((64 - (10 + len(head) + 1) % 64) % 64) + b"\n"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("w.npy", b"\x93NUMPY\x01\x00" + len(head).to_bytes(2, "little") + head + payload)
    return buf.getvalue()


@pytest.mark.parametrize("data, fragment", [
    (_npy("(1099511627776, 1099511627776)"), "declares"),   # would allocate 4 ZiB
    (_npy("(4611686018427387904,)"), "declares"),
    (_npy("(2,)", "|O"), "objects"),
    (_npy("(64,)", "<f4", b"\0" * 8), "declares"),
    (b"PK\x03\x04garbage", "not a readable .npz"),
    # numpy tokenizes the header: unclosed brackets raise tokenize.TokenError (the fuzz soak's find)
    (_npy("(2, [("), "malformed|unreadable"),
    (_npy("(2,) ) ]"), "malformed|unreadable"),
])
def test_sidecar_headers_are_checked_before_allocation(tmp_path, data, fragment):
    p = _rir(tmp_path)
    (tmp_path / "m.rir.npz").write_bytes(data)
    with pytest.raises(ModelError, match=fragment):
        load_rir(p)


def test_a_fifo_sidecar_is_refused_without_blocking(tmp_path):
    p = _rir(tmp_path)
    os.mkfifo(tmp_path / "m.rir.npz")
    with pytest.raises(ModelError, match="not a regular file"):
        load_rir(p)


# ----------------------------------------------------------------------------- F1: outputs
def _graph():
    from onnx_builders import mlp_model
    return load_onnx(mlp_model())


def _save_onnx(g, p):
    save_onnx(g, p)


def _save_rir(g, p):
    save_rir(g, p, constants="sidecar")


def _save_bytes(g, p):
    write_atomic(p, b"payload")


@pytest.mark.parametrize("save, suffix", [(_save_onnx, ".onnx"), (_save_rir, ".rir"), (_save_bytes, ".npz")])
@pytest.mark.parametrize("plant", ["tmp-link", "target-link", "sidecar-link", "dangling-tmp"])
def test_f1_outputs_never_write_through_a_planted_symlink(tmp_path, save, suffix, plant):
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"must not change")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / f"o{suffix}"
    link = {"tmp-link": out.with_name(out.name + ".tmp"), "target-link": out,
            "sidecar-link": out.with_name(out.name + ".npz"), "dangling-tmp": out.with_name(out.name + ".tmp")}[plant]
    os.symlink(victim if plant != "dangling-tmp" else tmp_path / "new-file", link)
    save(_graph(), out)
    assert victim.read_bytes() == b"must not change"
    assert not (tmp_path / "new-file").exists()
    assert out.is_file() and not out.is_symlink()
    leftovers = [p.name for p in out_dir.iterdir() if p.name.startswith(".")]
    assert leftovers == []


@pytest.mark.parametrize("target, fragment", [("dir", "is a directory"), ("missing/o.onnx", "does not exist"),
                                              ("/dev/full", "not a regular file")])
def test_unwritable_outputs_are_one_error(tmp_path, target, fragment):
    (tmp_path / "dir").mkdir()
    path = target if target.startswith("/") else tmp_path / target
    with pytest.raises(OutputError, match=fragment):
        write_atomic(path, b"x")


def test_cli_run_output_through_a_planted_tmp_symlink(tmp_path, run_cli):
    from onnx_builders import mlp_model
    model = tmp_path / "m.onnx"
    model.write_bytes(mlp_model().SerializeToString())
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"keep")
    os.symlink(victim, tmp_path / "o.npz.tmp")
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    r = run_cli("run", model, "--dim", "batch=2", "-o", tmp_path / "o.npz")
    assert r.returncode == 0, r.stderr
    assert victim.read_bytes() == b"keep" and hashlib.sha256(model.read_bytes()).hexdigest() == digest
    assert set(np.load(tmp_path / "o.npz")) == {"y"}
    r = run_cli("run", model, "--dim", "batch=2", "-o", "/dev/full")
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
