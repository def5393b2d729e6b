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
    # through the real entry point (``python -m ridgeline``): its exit status, not only main()'s
    assert_user_error(run_cli("show", "no/such/model.onnx", subprocess=True), "no such file")
    assert_user_error(run_cli("show", "not-a-preset-or-file", subprocess=True), "not a preset")


def test_bad_flags(tmp_path, run_cli):
    p = write(tmp_path, "m.onnx", mlp_model().SerializeToString())
    assert_user_error(run_cli("run", p, "--dim", "batch"), "NAME=SIZE")
    assert_user_error(run_cli("run", p, "--dim", "batch=x"), "integer")
    assert_user_error(run_cli("run", p), "unbound dims")
    assert_user_error(run_cli("run", p, "--dim", "batch=2", "--backend", "nope"), "unknown backend 'nope'")
    assert_user_error(run_cli("run", p, "--dim", "batch=2", "--inputs", tmp_path / "none.npz"), "no such file")
    assert_user_error(run_cli("frobnicate", subprocess=True), "invalid choice")  # argparse's exit, for real


def test_run_show_ir_work(tmp_path, run_cli):
    p = write(tmp_path, "m.onnx", mlp_model().SerializeToString())
    proc = run_cli("run", p, "--dim", "batch=3", "--json", "-o", tmp_path / "out.npz", subprocess=True)
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


# ---------------------------------------------------------------------------- hostile input
from onnx_builders import external_data_model, hostile_models  # noqa: E402

HOSTILE = hostile_models()
# every case is checked through the API in tests/frontends/test_onnx_import.py; these go through the CLI too
CLI_CASES = ["control-flow", "recursive-local-function", "duplicate-producer", "attribute-of-wrong-kind",
             "absurd-computed-shape", "initializer-size-mismatch", "too-many-outputs"]


def _unchanged(tmp_path, files: dict[str, str]) -> None:
    assert sorted(x.name for x in tmp_path.iterdir()) == sorted(files)
    for name, digest in files.items():
        assert hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() == digest, name


def _digests(tmp_path) -> dict[str, str]:
    return {x.name: hashlib.sha256(x.read_bytes()).hexdigest() for x in tmp_path.iterdir() if x.is_file()}


@pytest.mark.parametrize("case", CLI_CASES)
def test_hostile_onnx_one_line_exit_2(tmp_path, run_cli, case):
    model, fragments = HOSTILE[case]
    p = write(tmp_path, f"{case}.onnx", model.SerializeToString())
    before = _digests(tmp_path)
    assert_user_error(run_cli("run", p, "--dim", "batch=1"), *fragments)
    _unchanged(tmp_path, before)


@pytest.mark.parametrize("location", ["../secret.bin", "/etc/hostname", "w.bin"])
def test_external_data_escapes_one_line_exit_2(tmp_path, run_cli, location):
    d = tmp_path / "model"
    d.mkdir()
    (tmp_path / "secret.bin").write_bytes(b"\0" * 16)
    if location == "w.bin":  # a symlink inside the folder that points out of it
        (d / "w.bin").symlink_to(tmp_path / "secret.bin")
    p = write(d, "m.onnx", external_data_model(location).SerializeToString())
    before = _digests(d)
    for cmd in ("show", "run"):
        assert_user_error(run_cli(cmd, p), "external data", location)
    _unchanged(d, before)


def test_dim_param_code_is_not_run(tmp_path, run_cli):
    marker = tmp_path / "pwned"
    m = mlp_model()
    m.graph.input[0].type.tensor_type.shape.dim[0].dim_param = f"__import__('os').system('touch {marker}')"
    p = write(tmp_path, "m.onnx", m.SerializeToString())
    proc = run_cli("show", p, "--json")
    assert proc.returncode == 0, proc.stderr
    assert not marker.exists()


_GOOD_RIR = "graph @g(%x: f32[n, 2]) -> (%y: f32[n, 2]) {\n  %y = Relu(%x) : f32[n, 2]\n  return %y\n}\n"


@pytest.mark.parametrize("text, fragments", [
    (_GOOD_RIR[:40], ["bad.rir:"]),                                                       # truncated
    (_GOOD_RIR.replace("Relu", "Frobnicate"), ["bad.rir:2:", "Frobnicate"]),               # unknown op
    (_GOOD_RIR.replace("f32[n, 2]) {", "f99[n, 2]) {"), ["bad.rir:1:", "f99"]),             # unknown dtype
    (_GOOD_RIR.replace("%y: f32[n, 2]) {", "%y: f32[n, 3]) {"), ["bad.rir"]),             # type contradicts
    (_GOOD_RIR.replace("f32[n, 2]", 'f32["(lambda: 1)()", 2]', 1), ["bad.rir:1:", "lambda"]),  # code as a dim
    (_GOOD_RIR.replace("return %y", "return %x"), ["bad.rir"]),                           # wrong output
    (_GOOD_RIR + "graph @h() -> () {\n}\n", ["bad.rir:5:"]),                              # trailing junk
    ("\ufeff" + "\x00" * 10, ["bad.rir:1:"]),                                             # binary
])
def test_malformed_ir_text_one_line_exit_2(tmp_path, run_cli, text, fragments):
    p = write(tmp_path, "bad.rir", text.encode("utf-8"))
    before = _digests(tmp_path)
    assert_user_error(run_cli("run", p, "--dim", "n=2"), *fragments)
    _unchanged(tmp_path, before)


def test_rir_with_broken_sidecar_one_line_exit_2(tmp_path, run_cli):
    p = write(tmp_path, "m.onnx", mlp_model().SerializeToString())
    rir = tmp_path / "m.rir"
    assert run_cli("ir", p, "-o", rir).returncode == 0
    side = tmp_path / "m.rir.npz"
    if not side.exists():
        pytest.skip("the model's constants are all inline")
    side.write_bytes(side.read_bytes()[:100])  # truncated zip
    before = _digests(tmp_path)
    assert_user_error(run_cli("run", rir, "--dim", "batch=2"), "sidecar")
    _unchanged(tmp_path, before)


def test_absurd_dims_on_the_command_line(tmp_path, run_cli):
    p = write(tmp_path, "m.onnx", mlp_model().SerializeToString())
    assert_user_error(run_cli("run", p, "--dim", f"batch={10 ** 11}"), "GiB", "smaller dims")


def test_run_on_a_target_says_it_estimates(tmp_path, run_cli):
    # dims bound with --dim: the error is that a target estimates, not that dims are unbound
    p = write(tmp_path, "m.onnx", mlp_model().SerializeToString())
    proc = run_cli("run", p, "-b", "host-cpu", "--dim", "batch=1")
    assert_user_error(proc, "'host-cpu' is a target", "ridgeline estimate")
    assert "--dim" not in proc.stderr
