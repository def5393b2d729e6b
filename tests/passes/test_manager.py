"""The pass manager: verify-each naming the pass that broke the graph, timing, IR printing, fixed
point, and how errors inside passes surface."""

from __future__ import annotations

import io
import os

import pytest

from ridgeline.ir.rir_file import load_rir
from ridgeline.ir import parse_graph, print_graph, tensor
from ridgeline.ir.errors import IRError, PassError
from ridgeline.passes import register_pass, run_pipeline, unregister_pass, verify_each_default

GRAPH = """
graph @g(%x: f32[4]) -> (%y: f32[4]) {
  %a = Identity(%x) : f32[4]
  %b = Relu(%a) : f32[4]
  %y = Neg(%b) : f32[4]
  return %y
}
"""


@pytest.fixture
def breaker():
    @register_pass("test-break-types")
    def break_types(graph):
        """Declares a wrong type: what a buggy pass might do."""
        for n in graph:
            if n.op == "Relu":
                n.outputs[0].type = tensor("f32", 5)
        return True

    @register_pass("test-raise-user-error")
    def raise_user_error(graph):
        """Fails the way an IR misuse does."""
        raise IRError("cannot erase Relu node: its output %b is still used by Neg")

    @register_pass("test-raise-bug")
    def raise_bug(graph):
        """Fails with a plain bug."""
        return {}["missing"]
    yield
    for name in ("test-break-types", "test-raise-user-error", "test-raise-bug"):
        unregister_pass(name)


def test_verify_each_is_on_in_tests():
    assert verify_each_default()


@pytest.mark.no_verify_each
def test_marker_turns_verify_each_off():
    assert not verify_each_default()


def test_verify_each_names_the_pass_and_saves_the_ir_before_it(breaker, tmp_path):
    g = parse_graph(GRAPH)
    with pytest.raises(PassError) as e:
        run_pipeline(g, "canonicalize,test-break-types,dce", dump_dir=tmp_path)
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith("pass test-break-types broke the graph:")
    assert "Relu" in msg and "after canonicalize" in msg
    assert e.value.pass_name == "test-break-types" and e.value.reason and e.value.reason in msg
    assert e.value.ir_before.op_histogram() == {"Relu": 1, "Neg": 1}
    saved = e.value.ir_before_path
    assert saved is not None and str(saved) in msg and os.path.dirname(saved) == str(tmp_path)
    before = load_rir(saved)
    assert before.op_histogram() == {"Relu": 1, "Neg": 1}  # canonicalize had already run


@pytest.mark.no_verify_each
def test_without_verify_each_the_broken_graph_gets_through(breaker):
    g = parse_graph(GRAPH)
    run_pipeline(g, "test-break-types")
    with pytest.raises(IRError):
        g.verify()


def test_user_errors_inside_a_pass_name_the_pass(breaker):
    with pytest.raises(PassError, match=r"^pass test-raise-user-error failed: cannot erase Relu .* \(after dce\)$"):
        run_pipeline(parse_graph(GRAPH), "dce,test-raise-user-error")


def test_bugs_keep_their_traceback_and_gain_a_note(breaker):
    with pytest.raises(KeyError) as e:
        run_pipeline(parse_graph(GRAPH), "test-raise-bug")
    assert any("test-raise-bug" in n for n in getattr(e.value, "__notes__", ["test-raise-bug"]))


def test_an_invalid_input_is_reported_before_any_pass():
    g = parse_graph(GRAPH)
    g.nodes[1].outputs[0].type = tensor("f32", 7)
    with pytest.raises(PassError, match="input graph is invalid before any pass ran"):
        run_pipeline(g, "dce")


def test_report_counts_nodes_and_time_per_pass():
    g = parse_graph(GRAPH)
    report = run_pipeline(g, "canonicalize,dce,cse")
    assert [r.pass_text for r in report.records] == ["canonicalize", "dce", "cse"]
    first = report.records[0]
    assert (first.nodes_before, first.nodes_after, first.modified) == (3, 2, True)
    assert first.stats == {"identity": 1}
    assert report.nodes_before == 3 and report.nodes_after == 2
    assert all(r.seconds >= 0 for r in report.records) and report.seconds >= sum(r.seconds for r in report.records)
    assert report.per_pass()["canonicalize"]["removed"] == 1
    assert report.as_dict()["passes"][0]["pass"] == "canonicalize"


def test_timing_and_ir_printing_go_to_the_stream():
    stream = io.StringIO()
    g = parse_graph(GRAPH)
    run_pipeline(g, "canonicalize,dce", timing=True, print_ir_after_all=True, ir_stream=stream)
    out = stream.getvalue()
    assert "// ----- IR after canonicalize ----- //" in out
    assert "// ----- IR after dce (no change) ----- //" in out
    assert out.count("graph @g") == 2
    assert "pass timing: canonicalize,dce" in out and "nodes before" in out


def test_print_ir_after_change_skips_unchanged_passes():
    stream = io.StringIO()
    run_pipeline(parse_graph(GRAPH), "dce,canonicalize", print_ir_after_change=True, ir_stream=stream)
    assert "after dce" not in stream.getvalue() and "after canonicalize" in stream.getvalue()


def test_fixed_point_repeats_until_nothing_changes():
    @register_pass("test-peel")
    def peel(graph):
        """Removes one Neg per run (so it needs several runs)."""
        for n in graph:
            if n.op == "Neg":
                n.outputs[0].replace_all_uses_with(n.inputs[0])
                if not n.outputs[0].uses and not any(o is n.outputs[0] for o in graph.outputs):
                    graph.erase_node(n)
                    return True
        return False
    try:
        text = """
graph @n(%x: f32[2]) -> (%y: f32[2]) {
  %a = Neg(%x) : f32[2]
  %b = Neg(%a) : f32[2]
  %c = Neg(%b) : f32[2]
  %y = Relu(%c) : f32[2]
  return %y
}
"""
        g = parse_graph(text)
        report = run_pipeline(g, "test-peel", fixed_point=True)
        assert g.op_histogram() == {"Relu": 1} and report.iterations == 4 and report.converged
        g = parse_graph(text)
        report = run_pipeline(g, "test-peel", fixed_point=True, max_iterations=2)
        assert not report.converged and g.op_histogram() == {"Relu": 1, "Neg": 1}
    finally:
        unregister_pass("test-peel")


def test_passes_do_not_touch_an_unrelated_graph_text():
    text = print_graph(parse_graph(GRAPH))
    g = parse_graph(text)
    run_pipeline(g.copy(), "default")
    assert print_graph(g) == text
