"""Every error a user can cause is one line on stderr, exit status 2, no traceback, files untouched."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from helpers import assert_user_error
from onnx_builders import cyclic_model, mlp_model, shape_mismatch_model, unsupported_model


def write(tmp_path, name, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


@pytest.mark.parametrize("name, data, fragments", [
    ("trunc.onnx", mlp_model().SerializeToString()[:60], ["not a valid onnx"]),
    ("garbage.onnx", b"\xde\xad\xbe\xef" * 64, ["not a valid onnx"]),
    ("resize.onnx", unsupported_model().SerializeToString(), ["Resize (x2)", "GridSample (x1)"]),
    ("cycle.onnx", cyclic_model().SerializeToString(), ["cycle"]),
    ("mismatch.onnx", shape_mismatch_model().SerializeToString(), ["MatMul"]),
    ("bad.rir", b"graph @g(%x: f32[2]) -> (%y: f32[2]) {\n  %y = Relu(%nope) : f32[2]\n  return %y\n}\n",
     ["bad.rir:2:13", "undefined value %nope"]),
])
def test_bad_model_one_line_exit_2(tmp_path, run_cli, name, data, fragments):
    p = write(tmp_path, name, data)
    before = hashlib.sha256(p.read_bytes()).hexdigest()
    for cmd in ("show", "run", "ir"):
        proc = run_cli(cmd, p)
        assert_user_error(proc, *fragments)
    assert hashlib.sha256(p.read_bytes()).hexdigest() == before
    assert sorted(x.name for x in tmp_path.iterdir()) == [name]


def test_missing_file_and_unknown_preset(run_cli):
    assert_user_error(run_cli("show", "no/such/model.onnx"), "no such file")
    assert_user_error(run_cli("show", "not-a-preset-or-file"), "not a preset")


def test_bad_flags(tmp_path, run_cli):
    p = write(tmp_path, "m.onnx", mlp_model().SerializeToString())
    assert_user_error(run_cli("run", p, "--dim", "batch"), "NAME=SIZE")
    assert_user_error(run_cli("run", p, "--dim", "batch=x"), "integer")
    assert_user_error(run_cli("run", p), "unbound dims")
    assert_user_error(run_cli("run", p, "--dim", "batch=2", "--backend", "nope"), "unknown backend 'nope'")
    assert_user_error(run_cli("run", p, "--dim", "batch=2", "--inputs", tmp_path / "none.npz"), "no such file")
    assert_user_error(run_cli("frobnicate"), "invalid choice")


def test_run_show_ir_work(tmp_path, run_cli):
    p = write(tmp_path, "m.onnx", mlp_model().SerializeToString())
    proc = run_cli("run", p, "--dim", "batch=3", "--json", "-o", tmp_path / "out.npz")
    assert proc.returncode == 0, proc.stderr
    import json
    import numpy as np
    data = json.loads(proc.stdout)
    assert data["outputs"][0]["shape"] == [3, 1]
    assert np.load(tmp_path / "out.npz")["y"].shape == (3, 1)
    proc = run_cli("show", p, "--json")
    assert json.loads(proc.stdout)["ops"] == {"Add": 1, "MatMul": 1, "ReduceMean": 1, "Tanh": 1}
    rir = tmp_path / "m.rir"
    assert run_cli("ir", p, "-o", rir).returncode == 0
    assert (tmp_path / "m.rir.npz").exists() or "dense<" not in rir.read_text()
    again = run_cli("run", rir, "--dim", "batch=3", "--json")
    assert json.loads(again.stdout)["outputs"] == data["outputs"]
