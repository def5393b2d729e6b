"""register_pass for functions and small classes, get_pass, list_passes, name clashes."""

from __future__ import annotations

import pytest

from ridgeline.ir import Graph, parse_graph
from ridgeline.ir.errors import PipelineError, PluginError
from ridgeline.passes import (Pass, PassContext, PassResult, get_pass, list_passes, register_pass, run_pipeline,
                              unregister_pass)

GRAPH = """
graph @g(%x: f32[4]) -> (%y: f32[4]) {
  %a = Relu(%x) : f32[4]
  %y = Relu(%a) : f32[4]
  return %y
}
"""


def test_a_function_becomes_a_pass_with_typed_options():
    @register_pass
    def drop_double_relu(graph: Graph, *, times: int = 1) -> bool:
        """Relu(Relu(x)) = Relu(x)."""
        changed = False
        for n in graph:
            src = n.inputs[0].producer if n.inputs and n.inputs[0] is not None else None
            if n.op == "Relu" and src is not None and src.op == "Relu" and times:
                n.set_input(0, src.inputs[0])
                changed = True
        return changed
    try:
        cls = get_pass("drop-double-relu")
        assert cls is drop_double_relu.pass_class
        assert [str(o) for o in cls.options()] == ["times: int = 1"]
        assert cls.summary() == "Relu(Relu(x)) = Relu(x)."
        g = parse_graph(GRAPH)
        report = run_pipeline(g, "drop-double-relu{times=1},dce")
        assert g.op_histogram() == {"Relu": 1} and report.records[0].modified
        g2 = parse_graph(GRAPH)
        assert drop_double_relu(g2) is True  # still callable as the plain function
    finally:
        unregister_pass("drop-double-relu")


def test_a_small_class_with_ctx_and_result():
    @register_pass("count-ops")
    class CountOps:
        """Count nodes of one op (a read-only pass)."""
        op: str = "Relu"

        def run(self, graph, ctx: PassContext):
            n = sum(1 for node in graph if node.op == self.op)
            ctx.note(f"{n} {self.op} node(s)")
            return PassResult(graph, False, stats={self.op: n})
    try:
        assert issubclass(CountOps, Pass)
        report = run_pipeline(parse_graph(GRAPH), "count-ops{op=Relu}")
        assert report.records[0].stats == {"Relu": 2} and report.records[0].notes == ("2 Relu node(s)",)
        info = {i.name: i for i in list_passes()}["count-ops"]
        assert info.origin == f"local {__name__}" and info.summary.startswith("Count nodes")
        assert [o.name for o in info.options] == ["op"]
    finally:
        unregister_pass("count-ops")


def test_required_options_must_be_given():
    @register_pass("needs-factor")
    def needs_factor(graph, *, factor: float):
        """Needs a factor."""
        return False
    try:
        with pytest.raises(PipelineError, match=r"option factor is required \(write needs-factor\{factor=\.\.\.\}\)"):
            run_pipeline(parse_graph(GRAPH), "needs-factor")
        run_pipeline(parse_graph(GRAPH), "needs-factor{factor=2}")
    finally:
        unregister_pass("needs-factor")


def test_a_name_clash_is_refused_unless_replace():
    with pytest.raises(PluginError, match="pass 'dce' is already registered \\(built-in"):
        @register_pass("dce")
        def my_dce(graph):
            return False
    assert get_pass("dce").origin == "built-in"


def test_reregistering_the_same_definition_is_fine():
    # a notebook cell run twice defines the function again
    for _ in range(2):
        @register_pass("cell-pass")
        def cell_pass(graph):
            """Defined in a cell."""
            return False
    unregister_pass("cell-pass")


def test_unsupported_option_types_fail_at_registration():
    with pytest.raises(TypeError, match="option type"):
        @register_pass("bad-option")
        def bad(graph, *, sizes: list = ()):
            return False


def test_options_must_be_keyword_only():
    with pytest.raises(TypeError, match="keyword-only"):
        @register_pass("positional-option")
        def positional(graph, factor: int = 2):
            return False


def test_list_passes_has_every_builtin_with_summary_and_origin():
    infos = {i.name: i for i in list_passes()}
    for name in ("shape-inference", "fold-constants", "dce", "cse", "canonicalize", "fuse-attention",
                 "fuse-layernorm", "fuse-rmsnorm", "fuse-gelu", "fuse-matmul-epilogue", "fuse-elementwise",
                 "fuse-rotary"):
        assert infos[name].origin == "built-in" and infos[name].summary, name
    assert infos["default"].kind == "pipeline" and "fuse-attention" in infos["default"].expansion
    assert [str(o) for o in infos["fuse-elementwise"].options] == ["max-nodes: int = 16"]


def test_options_of_a_subclass_read_before_it_became_a_dataclass_are_not_stale():
    """``options_of`` is cached per class, and ``ensure_dataclass`` changes a class in place: a
    subclass whose options were read while it only inherited its parent's must see its own after."""
    from ridgeline.passes.base import ensure_dataclass, options_of

    class Parent(Pass):
        x: int = 3

        def run(self, graph, ctx):
            return PassResult(graph)

    parent = ensure_dataclass(Parent)

    class Child(parent):
        y: int = 1

    assert [o.name for o in options_of(Child)] == ["x"]
    ensure_dataclass(Child)
    assert [o.name for o in options_of(Child)] == ["x", "y"]
