"""Pass instrumentation objects and a pass's requires/ensures hooks (issue 16 item 4)."""

from __future__ import annotations

import io

import pytest
from passes.test_manager import GRAPH  # x -> Identity -> Relu -> Neg

from ridgeline.ir import parse_graph
from ridgeline.ir.errors import IRError, PassError
from ridgeline.passes import (
    DumpOnFailure,
    Instrument,
    Pass,
    PassOptions,
    PrintIR,
    VerifyEach,
    register_pass,
    run_passes,
    run_pipeline,
    unregister_pass,
)
from ridgeline.passes.pipeline import parse_pipeline


class Recorder(Instrument):
    def __init__(self):
        self.events: list[str] = []

    def before_pipeline(self, graph, report):
        self.events.append("start")

    def before(self, pass_text, graph):
        self.events.append(f"before {pass_text} {len(graph)}")

    def after(self, pass_text, graph, record):
        self.events.append(f"after {pass_text} {len(graph)} {record.modified}")

    def after_pipeline(self, graph, report):
        self.events.append(f"end {report.nodes_after}")


@pytest.fixture
def conditioned():
    @register_pass("test-needs-relu")
    class NeedsRelu(Pass):
        """Refuses a graph without a Relu; promises to leave no Identity."""

        def requires(self, graph):
            if not any(n.op == "Relu" for n in graph):
                raise IRError("no Relu to work on")

        def ensures(self, graph):
            assert not any(n.op == "Identity" for n in graph), "an Identity is left"

        def run(self, graph, ctx):
            return False
    yield
    unregister_pass("test-needs-relu")


def test_hooks_run_in_order_around_every_pass():
    rec = Recorder()
    run_pipeline(parse_graph(GRAPH), "canonicalize,dce", instruments=[rec], verify_each=False)
    assert rec.events == ["start", "before canonicalize 3", "after canonicalize 2 True",
                          "before dce 2", "after dce 2 False", "end 2"]


def test_run_passes_takes_objects_and_repeats_to_a_fixed_point():
    rec = Recorder()
    report = run_passes(parse_graph(GRAPH), parse_pipeline("canonicalize"), PassOptions(fixed_point=True),
                        [rec, VerifyEach()])
    assert report.iterations == 2 and report.verified and report.converged
    assert [e for e in rec.events if e.startswith("after")] == ["after canonicalize 2 True",
                                                                "after canonicalize 2 False"]


def test_print_ir_after_change_only_prints_passes_that_changed():
    out = io.StringIO()
    run_pipeline(parse_graph(GRAPH), "canonicalize,dce", instruments=[PrintIR(out, after_change=True)])
    text = out.getvalue()
    assert "IR after canonicalize" in text and "IR after dce" not in text


def test_a_failing_after_hook_names_the_pass_and_dump_attaches_the_ir(tmp_path):
    class Refuse(Instrument):
        def after(self, pass_text, graph, record):
            if pass_text == "dce":
                raise PassError(f"pass {pass_text} left {len(graph)} nodes", pass_name=pass_text)

    with pytest.raises(PassError) as e:
        run_passes(parse_graph(GRAPH), parse_pipeline("canonicalize,dce"), PassOptions(),
                   [DumpOnFailure(tmp_path), Refuse()])
    assert str(e.value).startswith("pass dce left 2 nodes; the IR before it is in ")
    assert str(e.value).endswith("(after canonicalize)")
    assert e.value.pass_name == "dce" and e.value.ir_before.op_histogram() == {"Relu": 1, "Neg": 1}
    assert e.value.ir_before_path.parent == tmp_path


def test_requires_failure_names_the_pass(conditioned):
    g = parse_graph(GRAPH.replace("Relu", "Abs"))
    with pytest.raises(PassError, match=r"^pass test-needs-relu: precondition failed: no Relu") as e:
        run_pipeline(g, "test-needs-relu")
    assert e.value.pass_name == "test-needs-relu"


def test_ensures_failure_names_the_pass(conditioned):
    with pytest.raises(PassError, match=r"^pass test-needs-relu: postcondition failed: an Identity is left"):
        run_pipeline(parse_graph(GRAPH), "test-needs-relu")
    run_pipeline(parse_graph(GRAPH), "canonicalize,test-needs-relu")  # canonicalize removes the Identity
