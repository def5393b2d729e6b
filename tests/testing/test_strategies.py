"""The graph generator: every op with a spec is generated, generated graphs are valid and run to
finite outputs, idioms hold their patterns, inputs stay in their domains, shrinking removes nodes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st

from ridgeline.backends.numpy import NumpyBackend
from ridgeline.ir import Graph, parse_graph, print_graph, tensor
from ridgeline.ir.errors import IRError
from ridgeline.ir.ops import all_specs
from ridgeline.testing import random_inputs
from ridgeline.testing import strategies as rs
from ridgeline.testing.inputs import testing_meta as _meta

FAST = settings(max_examples=25, database=None, derandomize=True, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _ops(g: Graph) -> set[str]:
    out = set()
    for n in g:
        out.add(n.op)
        if n.body is not None:
            out |= _ops(n.body)
    return out


def _finite(arrays) -> bool:
    for a in arrays:
        a = np.asarray(a)
        if a.dtype.kind == "f" or a.dtype.name in ("bfloat16",) or a.dtype.name.startswith("float8"):
            if not np.all(np.isfinite(a.astype(np.float64))):
                return False
    return True


def test_coverage_table_has_a_recipe_for_every_op_with_a_spec():
    """A new op without generator support fails here: add a recipe in
    ridgeline/testing/strategies/recipes/ (or make its spec fit the generic elementwise one)."""
    table = rs.coverage_table()
    assert set(table) == set(all_specs())
    missing = sorted(op for op, how in table.items() if how is None)
    assert not missing, f"ops with a spec but no graph generator recipe: {missing}"
    assert len(table) >= 150


class _Found(Exception):
    pass


def _generates(op: str) -> bool:
    @settings(max_examples=40, database=None, derandomize=True, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(rs.graphs(ops=[op], max_nodes=2))
    def search(g):
        if op in _ops(g):
            g.verify()
            raise _Found(op)
    try:
        search()
    except _Found:
        return True
    return False


def test_every_op_with_a_spec_appears_in_generated_graphs():
    missing = [op for op in sorted(all_specs()) if not _generates(op)]
    assert not missing, f"never generated: {missing}"


@FAST
@given(rs.graphs(max_nodes=10), st.integers(0, 1000))
def test_generated_graphs_verify_run_and_stay_finite(g, seed):
    g.verify()
    out = NumpyBackend().compile(g).run(random_inputs(g, seed=seed))
    assert len(out) == len(g.outputs) >= 1
    assert _finite(out.values())
    assert print_graph(parse_graph(print_graph(g))) == print_graph(g)  # the text form keeps every graph


@FAST
@given(rs.unfused(), st.integers(0, 1000))
def test_idiom_graphs_verify_run_and_stay_finite(g, seed):
    g.verify()
    out = NumpyBackend().compile(g).run(random_inputs(g, seed=seed))
    # the nonfinite idiom feeds NaN and ±inf on purpose (input kind "specials")
    assert _finite(out.values()) or "specials" in (_meta(g).get("kinds") or {}).values()


@pytest.mark.parametrize("strategy, ops", [
    (rs.attention_blocks, {"MatMul", "Softmax"}),
    (rs.gelu_idioms, {"Mul", "Add"}),
    (rs.layernorm_idioms, {"ReduceMean", "Sub", "Sqrt"}),
    (rs.rmsnorm_idioms, {"ReduceMean", "Sqrt"}),
    (rs.rotary_idioms, {"Slice", "Neg", "Concat", "Cos", "Sin"}),
    (rs.matmul_epilogues, set()),
    (rs.elementwise_chains, set()),
    (rs.duplicate_idioms, set()),
    (rs.folding_idioms, set()),
], ids=lambda x: getattr(x, "__name__", ""))
def test_idioms_write_their_patterns(strategy, ops):
    seen: set[str] = set()

    @FAST
    @given(strategy())
    def run(g):
        g.verify()
        assert ops <= _ops(g)
        seen.update(_ops(g))
    run()
    assert seen


def test_gelu_idioms_write_both_forms():
    forms = set()

    @settings(FAST, max_examples=60)
    @given(rs.gelu_idioms())
    def run(g):
        forms.add("erf" if "Erf" in _ops(g) else "tanh" if "Tanh" in _ops(g) else "?")
    run()
    assert {"erf", "tanh"} <= forms


def test_attention_idioms_cover_gqa_masks_and_rope():
    seen = set()

    @settings(FAST, max_examples=120)
    @given(rs.attention_blocks())
    def run(g):
        ops = _ops(g)
        if "Expand" in ops and "Unsqueeze" in ops:
            seen.add("repeat-kv")
        if "Where" in ops:
            seen.add("where-mask")
        if "Cos" in ops and "Sin" in ops:
            seen.add("rope")
        if any(n.op == "Add" and n.inputs[1] is not None and n.inputs[1].const and
               n.inputs[1].data is not None and n.inputs[1].data.ndim >= 2 for n in g):
            seen.add("additive-mask")
    run()
    assert {"repeat-kv", "where-mask", "rope", "additive-mask"} <= seen


def test_ops_and_dtypes_restrict_the_draw():
    @FAST
    @given(rs.graphs(ops=["Add", "Mul"], dtypes=["f16"], max_nodes=5))
    def run(g):
        assert _ops(g) <= {"Add", "Mul"}
        assert {v.type.dtype.name for v in g.values()} == {"f16"}
    run()

    @FAST
    @given(rs.graphs(ops="reduction", max_nodes=3))
    def run_category(g):
        assert {all_specs()[op].category for op in _ops(g)} == {"reduction"}
    run_category()


def test_unknown_ops_and_idioms_are_named():
    with pytest.raises(IRError, match="Frobnicate"):
        rs.graphs(ops=["Frobnicate"])
    with pytest.raises(IRError, match="nope"):
        rs.graphs(idioms=["nope"])


def test_shapes_bound_rank_and_size():
    @FAST
    @given(rs.graphs(ops=["Relu", "Add"], shapes=rs.Shapes(max_rank=2, max_dim=3, symbolic=False)))
    def run(g):
        for v in g.values():
            assert v.type.rank <= 2 and all(isinstance(d, int) and d <= 3 for d in v.type.shape)
    run()


def test_symbolic_dims_are_bound_for_inputs():
    seen = 0

    @settings(FAST, max_examples=80)
    @given(rs.graphs(ops=["Relu", "Add"]))
    def run(g):
        nonlocal seen
        if not g.symbols():
            return
        seen += 1
        dims = g.meta["testing"]["dims"]
        assert set(dims) >= g.symbols()
        arrays = random_inputs(g)
        for v in g.inputs:
            for d, n in zip(v.type.shape, arrays[v.name].shape):
                assert n == (d if isinstance(d, int) else dims[d])
    run()
    assert seen


def test_shrinking_reaches_a_single_node():
    g = find(rs.graphs(ops=["Relu", "Add", "MatMul", "Tanh", "Transpose"], max_nodes=12),
             lambda g: "MatMul" in _ops(g), settings=settings(database=None, derandomize=True))
    assert len(g) <= 2 and "MatMul" in _ops(g)
    assert all(d == 1 for v in g.values() for d in v.type.shape)  # dims shrink to 1 too


def test_inputs_stay_inside_op_domains():
    """Log, Sqrt, Acosh, division: their inputs come from the domain the generator recorded."""
    @settings(FAST, max_examples=60)
    @given(rs.graphs(ops=["Log", "Sqrt", "Acosh", "Div", "Reciprocal", "Atanh"], max_nodes=4),
           st.integers(0, 10 ** 6))
    def run(g, seed):
        arrays = random_inputs(g, seed=seed)
        ranges = g.meta.get("testing", {}).get("ranges", {})
        for v in g.inputs:
            lo, hi = ranges[v.name]
            a = arrays[v.name].astype(np.float64)
            assert np.all(a >= lo - 1e-3 * abs(lo)) and np.all(a <= hi + 1e-3 * abs(hi))
        for n in g:
            if n.op in ("Log", "Sqrt") and n.inputs[0].producer is None and not n.inputs[0].const:
                assert ranges[n.inputs[0].name][0] > 0
        assert _finite(NumpyBackend().compile(g).run(arrays).values())
    run()


def test_inputs_for_binds_free_dims_and_respects_masks():
    g = Graph("g")
    x = g.add_input("x", tensor("f32", "n", 3))
    g.outputs = [g.add_node("Relu", [x]).outputs[0]]

    @FAST
    @given(rs.inputs_for(g))
    def run(inputs):
        assert inputs["x"].shape[1] == 3 and 1 <= inputs["x"].shape[0] <= 4
    run()

    m = Graph("m")
    mask = m.add_input("mask", tensor("bool", 4, 5))
    m.outputs = [m.add_node("Not", [mask]).outputs[0]]
    m.meta["testing"] = {"kinds": {"mask": "rowmask"}}
    for seed in range(5):
        assert random_inputs(m, seed=seed)["mask"].any(axis=-1).all()  # no fully masked row


def test_pattern_builds_a_plugin_authors_idiom():
    relu6 = rs.pattern(lambda b, x: b.Min(b.Relu(x), 6.0), within=(-10.0, 10.0))

    @FAST
    @given(relu6)
    def run(g):
        mins = [n for n in g if n.op == "Min" and n.inputs[0].producer is not None
                and n.inputs[0].producer.op == "Relu"]
        assert mins and float(mins[0].inputs[1].data) == 6.0
        lo, hi = g.meta["testing"]["ranges"][mins[0].inputs[0].producer.inputs[0].name]
        assert (lo, hi) == (-10.0, 10.0)
    run()


def test_fused_nodes_hold_valid_bodies():
    @FAST
    @given(rs.graphs(ops=["Fused"], max_nodes=2))
    def run(g):
        for n in g:
            assert n.op == "Fused" and n.body is not None and len(n.body) >= 1
            assert n.attr("kind") in ("elementwise", "matmul-epilogue")
        g.verify()
    run()


def test_graphs_per_second_is_not_pathological():
    """Not a timing threshold: a smoke check that generation completes a batch at all."""
    count = 0

    @settings(FAST, max_examples=30)
    @given(rs.default_graphs())
    def run(g):
        nonlocal count
        count += 1
    run()
    assert count == 30 and math.isfinite(count)
