"""`ridgeline opt`, `ridgeline passes` and `ridgeline show -p`: outputs, files, one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import assert_user_error
from passes.test_fuse_attention import MHA

from ridgeline.backends.numpy import Interpreter
from ridgeline.frontends.onnx import load_onnx, save_onnx
from ridgeline.frontends.onnx.lowering import STD_DOMAIN, standard_op
from ridgeline.ir.rir_file import load_rir
from ridgeline.ir import parse_graph
from ridgeline.testing.inputs import random_inputs

# an attention block with a GELU MLP and LayerNorm, as an ONNX file
BLOCK = MHA.replace("-> (%y: f32[2, 4, 16])", "-> (%out: f32[2, 4, 16])").replace("  return %y\n}", """
  const %axes: i64[1] = [-1]
  const %eps: f32[] = 1e-05
  const %sqrt2: f32[] = 1.4142135381698608
  const %one: f32[] = 1.0
  const %half: f32[] = 0.5
  %r = Add(%x, %y) : f32[2, 4, 16]
  %mu = ReduceMean(%r, %axes) : f32[2, 4, 1]
  %dev = Sub(%r, %mu) : f32[2, 4, 16]
  %dsq = Mul(%dev, %dev) : f32[2, 4, 16]
  %var = ReduceMean(%dsq, %axes) : f32[2, 4, 1]
  %vpe = Add(%var, %eps) : f32[2, 4, 1]
  %sd = Sqrt(%vpe) : f32[2, 4, 1]
  %n = Div(%dev, %sd) : f32[2, 4, 16]
  %h = MatMul(%n, %wq) : f32[2, 4, 16]
  %g1 = Div(%h, %sqrt2) : f32[2, 4, 16]
  %g2 = Erf(%g1) : f32[2, 4, 16]
  %g3 = Add(%g2, %one) : f32[2, 4, 16]
  %g4 = Mul(%h, %g3) : f32[2, 4, 16]
  %g5 = Mul(%g4, %half) : f32[2, 4, 16]
  %out = Add(%r, %g5) : f32[2, 4, 16]
  return %out
}""")


@pytest.fixture
def block_onnx(tmp_path):
    path = tmp_path / "block.onnx"
    save_onnx(parse_graph(BLOCK), path)
    return path


def test_opt_to_onnx_runs_in_onnxruntime_with_the_same_outputs(run_cli, block_onnx, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    out = tmp_path / "opt.onnx"
    before_bytes = block_onnx.read_bytes()
    proc = run_cli("opt", block_onnx, "-p", "default", "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert block_onnx.read_bytes() == before_bytes  # the input is never modified
    assert "wrote" in proc.stderr and "nodes" in proc.stderr
    import onnx
    proto = onnx.load(str(out))
    # the block keeps its opset (< 23): Attention is onnxruntime's MultiHeadAttention by default
    # (--emit ort-contrib), a call of a model-local function with --emit std
    opset = {o.domain: o.version for o in onnx.load(str(block_onnx)).opset_import}[""]
    assert opset < 23 and {o.domain: o.version for o in proto.opset_import}[""] == opset
    ops = [standard_op(n) for n in proto.graph.node]
    assert ops.count("MultiHeadAttention") == 1 and ops.count("LayerNormalization") == 1 and "Erf" not in ops
    std = tmp_path / "std.onnx"
    assert run_cli("opt", block_onnx, "-p", "default", "-o", std, "--emit", "std").returncode == 0
    assert [standard_op(n) for n in onnx.load(str(std)).graph.node].count("Attention") == 1
    # fused nodes are calls of model-local functions whose bodies are the Fused bodies
    local = {f.name for f in proto.functions}
    assert local and all(n.domain in ("ridgeline", STD_DOMAIN) for n in proto.graph.node if n.op_type in local)
    g = load_onnx(block_onnx)
    inputs = random_inputs(g, seed=3)
    want = Interpreter(g).run(inputs)["out"]
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = sess.run(None, inputs)[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_opt_to_rir_and_timing(run_cli, block_onnx, tmp_path):
    out = tmp_path / "opt.rir"
    proc = run_cli("opt", block_onnx, "-p", "default", "-o", out, "--timing")
    assert proc.returncode == 0, proc.stderr
    for name in ("fold-constants", "fuse-attention", "fuse-layernorm", "fuse-gelu", "nodes before", "total"):
        assert name in proc.stdout, name
    g, opt = load_onnx(block_onnx), load_rir(out)
    inputs = random_inputs(g, seed=4)
    np.testing.assert_allclose(Interpreter(opt).run(inputs)["out"], Interpreter(g).run(inputs)["out"], rtol=1e-5,
                               atol=1e-6)


def test_opt_prints_ir_and_json_report(run_cli, block_onnx):
    proc = run_cli("opt", block_onnx, "-p", "fuse-gelu,dce")
    assert proc.returncode == 0 and proc.stdout.startswith("graph @") and "Gelu(" in proc.stdout
    rep = run_cli("opt", block_onnx, "-p", "fuse-gelu,dce", "--json")
    data = json.loads(rep.stdout)
    assert data["pipeline"] == "fuse-gelu,dce" and data["passes"][0]["nodes_before"] > data["passes"][0]["nodes_after"]


def test_print_ir_after_all_and_explain(run_cli, block_onnx):
    proc = run_cli("opt", block_onnx, "-p", "fuse-gelu,fuse-rotary", "--print-ir-after-all", "--explain")
    assert proc.returncode == 0, proc.stderr
    assert "IR after fuse-gelu" in proc.stderr and "IR after fuse-rotary (no change)" in proc.stderr
    assert "rope-rotate-half: did not fire" in proc.stdout


@pytest.mark.parametrize("pipeline,fragments", [
    ("fuse-atention", ["unknown pass 'fuse-atention'", "did you mean 'fuse-attention'"]),
    ("fuse-elementwise{max-nodes=big}", ["option max-nodes expects an integer"]),
    ("canonicalize,{", ["malformed pipeline", "column"]),
])
def test_bad_pipelines_are_one_line_errors(run_cli, block_onnx, pipeline, fragments):
    assert_user_error(run_cli("opt", block_onnx, "-p", pipeline), *fragments)


def test_output_file_checks(run_cli, block_onnx, tmp_path):
    assert_user_error(run_cli("opt", block_onnx, "-p", "dce", "-o", block_onnx), "is the input model")
    assert_user_error(run_cli("opt", block_onnx, "-p", "dce", "-o", tmp_path / "x.txt"), "must end in .onnx or .rir")


def test_passes_lists_everything(run_cli):
    proc = run_cli("passes")
    assert proc.returncode == 0, proc.stderr
    for name in ("fuse-attention", "fuse-elementwise", "max-nodes", "built-in", "default (pipeline)"):
        assert name in proc.stdout, name


def test_show_with_a_pipeline_reports_nodes_and_bytes_before_and_after(run_cli, block_onnx):
    proc = run_cli("show", block_onnx, "-p", "default", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["after"]["nodes"] < data["nodes"]
    assert data["after"]["bytes_touched"] < data["bytes_touched"]
    text = run_cli("show", block_onnx, "-p", "default")
    assert "after -p default" in text.stdout


def test_opt_opset_23_writes_the_fused_ops_natively(run_cli, block_onnx, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    import onnx
    out = tmp_path / "opt23.onnx"
    proc = run_cli("opt", block_onnx, "-p", "default", "-o", out, "--opset", "23")
    assert proc.returncode == 0, proc.stderr
    proto = onnx.load(str(out))
    assert {o.domain: o.version for o in proto.opset_import}[""] == 23
    assert [n.op_type for n in proto.graph.node].count("Attention") == 1
    assert not any(f.domain == STD_DOMAIN for f in proto.functions)
    g = load_onnx(block_onnx)
    inputs = random_inputs(g, seed=5)
    got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, inputs)[0]
    np.testing.assert_allclose(got, Interpreter(g).run(inputs)["out"], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("args, fragment", [(["--opset", "5"], "--opset 5"), (["--opset", "99"], "--opset 99")])
def test_opt_bad_opset_is_a_user_error(run_cli, block_onnx, tmp_path, args, fragment):
    out = tmp_path / "x.onnx"
    assert_user_error(run_cli("opt", block_onnx, "-p", "dce", "-o", out, *args), fragment)
    assert not out.exists()
