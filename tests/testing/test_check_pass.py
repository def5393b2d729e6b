"""check_pass on every built-in pass and pipeline, and the checker's own contract: what it
catches (broken graphs, changed interfaces, written constants, mutated inputs, non-idempotence),
what it reports, and the repro files it writes."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
from hypothesis import settings

from ridgeline.ir.rir_file import load_rir
from ridgeline.ir import Graph, tensor
from ridgeline.passes import PassResult, list_passes
from ridgeline.testing import PassCheckError, check_graph, check_pass
from ridgeline.testing import strategies as rs

# passes whose idioms must make them fire in CI, and those that are idempotent (a second run
# changes nothing). Not idempotent, as found by these checks: cse (merging graph outputs leaves
# Identity nodes a second run merges again) and fuse-elementwise (a producer whose other reader
# was dead code is fused only by a second run).
FUSIONS = {"fuse-attention", "fuse-elementwise", "fuse-gelu", "fuse-layernorm", "fuse-matmul-epilogue",
           "fuse-rmsnorm", "fuse-rotary", "fold-constants", "cse", "dce", "canonicalize"}
IDEMPOTENT = {"dce", "fold-constants", "shape-inference", "fuse-attention", "fuse-layernorm",
              "fuse-matmul-epilogue", "fuse-rmsnorm", "fuse-rotary", "canonicalize"}
#: built-in passes checked with check_pass by their own area's tests (options, numeric bounds)
ELSEWHERE = {"tile": "tests/tiling/test_tile_check_pass.py",
             "quantize": "tests/quantization/test_quantize_check_pass.py"}
BUILTIN = sorted(p.name for p in list_passes() if p.origin == "built-in" and p.name not in ELSEWHERE)


def test_every_built_in_pass_and_pipeline_is_checked():
    """A new built-in pass fails here until a check_pass test covers it (here or in its area)."""
    names = {p.name for p in list_passes() if p.origin == "built-in"}
    here = set(rs.PASS_IDIOMS) | {"dce", "shape-inference", "cleanup", "default"}
    assert names - here - set(ELSEWHERE) == set(), "built-in passes without a check_pass test: write one and " \
        "list it in ELSEWHERE above (docs/extending.md, 'A pass')"
    assert names == here | set(ELSEWHERE)
    root = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
    for name, path in ELSEWHERE.items():
        text = open(os.path.join(root, path), encoding="utf-8").read()
        assert "check_pass" in text and name in text, path


@pytest.mark.parametrize("name", sorted(rs.PASS_IDIOMS))
def test_pass_keeps_meaning_of_its_idioms(name, check_pass):
    report = check_pass(name, graphs=rs.PASS_IDIOMS[name](), idempotent=name in IDEMPOTENT)
    assert report.examples == settings.default.max_examples
    if name in FUSIONS:
        assert report.modified > 0, f"{name} never fired on its idioms: {report}"


@pytest.mark.parametrize("name", BUILTIN)
def test_pass_keeps_meaning_of_random_graphs(name, check_pass):
    """Every op with a spec, mixed dtypes, symbolic dims: the passes' "does not apply" paths."""
    report = check_pass(name, graphs=rs.graphs(max_nodes=10), idempotent=name in IDEMPOTENT)
    assert report.examples == settings.default.max_examples


def test_dce_removes_dead_code_of_random_graphs(check_pass):
    report = check_pass("dce", graphs=rs.graphs(ops=["Relu", "Add", "Mul", "Tanh"], max_nodes=10))
    assert report.modified > 0 and report.nodes_after < report.nodes_before


@pytest.mark.parametrize("pipeline", ["cleanup", "default"])
def test_named_pipelines_keep_meaning_of_unfused_and_random_graphs(pipeline, check_pass):
    report = check_pass(pipeline)
    assert report.examples == settings.default.max_examples and report.modified > 0


# ---------------------------------------------------------------------------- the checker itself
def _tiny() -> Graph:
    g = Graph("tiny")
    x = g.add_input("x", tensor("f32", 2, 3))
    w = g.add_constant("w", np.arange(6, dtype=np.float32).reshape(3, 2) / 10)
    y = g.add_node("MatMul", [x, w]).outputs[0]
    g.outputs = [g.add_node("Relu", [y]).outputs[0]]
    return g


def test_check_graph_accepts_a_correct_pass_and_counts():
    out = check_graph("canonicalize,dce", _tiny())
    assert out.nodes_before == 2 and not out.modified


def test_a_pass_that_changes_values_is_a_mismatch(tmp_path):
    def negate_relu(g: Graph) -> None:
        for n in g:
            if n.op == "Relu":
                n.op = "Neg"  # keeps the type, changes the values
    with pytest.raises(PassCheckError) as e:
        check_pass(negate_relu, graphs=[_tiny()], repro_dir=tmp_path)
    f = e.value.failure
    assert f.kind == "mismatch" and f.mismatches and "differ" in str(e.value)
    assert "graph @tiny" in str(e.value)  # the input graph as text IR
    assert f.repro.rir.exists() and f.repro.inputs.exists() and f.repro.onnx.exists()
    assert load_rir(f.repro.rir).op_histogram() == {"MatMul": 1, "Relu": 1}


def test_a_pass_that_breaks_the_graph_is_named():
    def dangle(g: Graph) -> None:
        n = g.nodes[0]
        n.attrs = {"bogus": 1}
    with pytest.raises(PassCheckError, match="does not verify") as e:
        check_graph(dangle, _tiny())
    assert e.value.failure.kind == "broke-graph"


def test_a_pass_that_changes_the_interface_is_caught():
    def rename_input(g: Graph) -> None:
        g.inputs[0].name = "renamed"
    with pytest.raises(PassCheckError, match="interface"):
        check_graph(rename_input, _tiny())


def test_a_pass_that_raises_is_reported_with_its_error():
    def boom(g: Graph) -> None:
        raise ZeroDivisionError("nope")
    with pytest.raises(PassCheckError, match="ZeroDivisionError: nope") as e:
        check_graph(boom, _tiny())
    assert e.value.failure.kind == "raised"


def test_writing_into_a_shared_constant_is_caught():
    def scale_in_place(g: Graph) -> None:
        w = g.constants["w"]
        arr = w.data
        arr.setflags(write=True)  # the array owns its memory, so this is allowed... and wrong
        arr *= 2
        arr.setflags(write=False)
    with pytest.raises(PassCheckError, match="constant %w") as e:
        check_graph(scale_in_place, _tiny())
    assert e.value.failure.kind == "mutated-constant"


def test_a_pass_that_returns_a_copy_must_leave_its_input_alone():
    def copy_but_scribble(g: Graph) -> Graph:
        out = g.copy()
        g.outputs[0].name = "scribbled"
        return out
    with pytest.raises(PassCheckError, match="also changed") as e:
        check_graph(copy_but_scribble, _tiny())
    assert e.value.failure.kind == "mutated-input"

    def clean_copy(g: Graph) -> Graph:
        return g.copy()
    assert check_graph(clean_copy, _tiny()).modified  # a new graph counts as a change; the input is intact


def test_non_idempotence_is_caught_when_asked():
    def add_identity(g: Graph) -> bool:
        out = g.outputs[0]
        g.outputs = [g.add_node("Identity", [out]).outputs[0]]
        return True
    check_graph(add_identity, _tiny())  # fine once
    with pytest.raises(PassCheckError, match="second time") as e:
        check_graph(add_identity, _tiny(), idempotent=True)
    assert e.value.failure.kind == "not-idempotent"


def test_pass_results_and_registered_pass_objects_are_accepted():
    from ridgeline.passes import get_pass

    def fn(g: Graph) -> PassResult:
        return PassResult(g, False)
    assert not check_graph(fn, _tiny()).modified
    assert not check_graph(get_pass("dce"), _tiny()).modified
    assert not check_graph(get_pass("dce")(), _tiny()).modified


def test_the_failing_pass_of_a_pipeline_is_named(tmp_path):
    from ridgeline.passes import register_pass, unregister_pass

    @register_pass("test-zero-relu")
    def zero_relu(g: Graph) -> bool:
        for n in g:
            if n.op == "Relu":
                n.op = "Neg"
        return True
    try:
        with pytest.raises(PassCheckError) as e:
            check_pass("dce,test-zero-relu,cse", graphs=[_tiny()], repro_dir=tmp_path)
        assert "test-zero-relu (pass 2 of 3)" in str(e.value)
        assert '-p "dce,test-zero-relu,cse"' in str(e.value)
    finally:
        unregister_pass("test-zero-relu")


def test_the_repro_command_runs(tmp_path, run_cli):
    def negate_relu(g: Graph) -> None:
        for n in g:
            if n.op == "Relu":
                n.op = "Neg"
    with pytest.raises(PassCheckError) as e:
        check_pass(negate_relu, graphs=[_tiny()], repro_dir=tmp_path)
    repro = e.value.failure.repro
    proc = run_cli("run", str(repro.rir), "--inputs", str(repro.inputs), "-p", "", "--json")
    assert proc.returncode == 0, proc.stderr
    assert "outputs" in proc.stdout


def test_shrinking_gives_a_minimal_graph(tmp_path):
    """A pass that mishandles Tanh, on graphs of many ops: the failure shrinks to the one node."""
    def bad_tanh(g: Graph) -> None:
        for n in g:
            if n.op == "Tanh":
                n.op = "Sigmoid"
    with pytest.raises(PassCheckError) as e:
        check_pass(bad_tanh, graphs=rs.graphs(ops=["Relu", "Add", "Tanh", "MatMul", "Transpose"], max_nodes=10),
                   repro_dir=tmp_path)
    g = e.value.failure.graph
    assert "Tanh" in g.op_histogram() and len(g) <= 2


def test_report_says_what_fired():
    report = check_pass("fuse-gelu", graphs=rs.gelu_idioms(), max_examples=10)
    assert report.examples == 10
    assert str(report).startswith("check_pass(fuse-gelu): 10 graphs")
    if report.modified:
        assert any(k.startswith("fuse-gelu:gelu-") for k in report.stats)


def test_repro_dir_defaults_to_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("RIDGELINE_REPRO_DIR", str(tmp_path / "here"))

    def negate_relu(g: Graph) -> None:
        for n in g:
            if n.op == "Relu":
                n.op = "Neg"
    with pytest.raises(PassCheckError) as e:
        check_pass(negate_relu, graphs=[_tiny()])
    assert os.path.dirname(e.value.failure.repro.rir) == str(tmp_path / "here")


def test_unknown_pass_names_fail_fast():
    from ridgeline.ir.errors import PipelineError
    with pytest.raises(PipelineError, match="unknown pass"):
        check_pass("no-such-pass")


def test_failure_is_a_dataclass_with_the_graph():
    with pytest.raises(PassCheckError) as e:
        check_graph(lambda g: setattr(g.nodes[1], "op", "Neg"), _tiny())
    f = e.value.failure
    assert dataclasses.is_dataclass(f) and f.graph.name == "tiny" and f.result is not None


# ---------------------------------------------------------------------------- regressions
# Graphs check_pass shrank to, kept as text IR (check_graph replays them in any test).
GELU_BROADCAST = """
graph @random(%x0: f32[]) -> (%7: f32[1]) {
  const %s: f32[] = 3.0
  const %s_1: f32[] = 0.044714998453855515
  const %s_2: f32[] = 0.7978845834732056
  const %s_3: f32[1] = [1.0]
  const %s_4: f32[] = 0.5
  %0 = Pow(%x0, %s) : f32[]
  %1 = Mul(%0, %s_1) : f32[]
  %2 = Add(%x0, %1) : f32[]
  %3 = Mul(%2, %s_2) : f32[]
  %4 = Tanh(%3) : f32[]
  %5 = Add(%4, %s_3) : f32[1]
  %6 = Mul(%x0, %s_4) : f32[]
  %7 = Mul(%6, %5) : f32[1]
  return %7
}
"""


@pytest.mark.parametrize("pipeline", ["fuse-gelu", "default"])
def test_gelu_whose_one_broadcasts_a_scalar_keeps_its_shape(pipeline):
    from ridgeline.ir import parse_graph
    check_graph(pipeline, parse_graph(GELU_BROADCAST))


VIEW_CHAIN_OUTPUT = """
graph @random(%x0: f32[1, batch, 1]) -> (%3: f32[1, batch, 1]) {
  meta {testing = {dims = {batch = 2}}}
  const %k: i64[1] = [0]
  const %k_1: i64[1] = [0]
  %2 = Unsqueeze(%x0, %k) : f32[1, 1, batch, 1]
  %3 = Squeeze(%2, %k_1) : f32[1, batch, 1]
  return %3
}
"""


def test_symbolic_view_chain_ending_in_an_output():
    from ridgeline.ir import parse_graph
    check_graph("default", parse_graph(VIEW_CHAIN_OUTPUT))
