"""The ``tile`` pass: what it records, on which nodes, for which targets, and its errors.

Every exported test model, tiled for a tiny GPU (tiles that do not divide its dims), runs on the
numpy backend block by block and matches the untiled run within 1e-5 relative.
"""

from __future__ import annotations

import numpy as np
import pytest
from exported_models import MODELS, dims_for, entries, feeds_for, max_rel_error
from helpers import assert_user_error
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ridgeline as rl
from ridgeline.backends.numpy import Interpreter
from ridgeline.cost_models import get_target
from ridgeline.cost_models.work import read_tile
from ridgeline.ir import Graph, parse_graph, print_graph, tensor
from ridgeline.ir.errors import PipelineError, RidgelineError, TargetError
from ridgeline.passes import run_pipeline

ALL = entries()
KERNELS = {"gemm", "attention", "rows", "elementwise"}


class Spy(Interpreter):
    def __init__(self, graph, **kw):
        super().__init__(graph, **kw)
        self.tiled = 0

    def call_tiled(self, node, args):
        out = super().call_tiled(node, args)
        self.tiled += out is not None
        return out


def tiled_nodes(g: Graph) -> list:
    return [n for n in g if "tile" in n.meta]


@pytest.mark.parametrize("e", ALL, ids=[e["file"] for e in ALL])
def test_tiled_exported_models_equal_untiled(e, toy_path):
    dims = dims_for(e, 2, 5, 3)
    g = rl.load(MODELS / e["file"], dims=dims)
    rl.optimize(g, f"default,tile{{target={toy_path}}}")
    tiled = tiled_nodes(g)
    assert len(tiled) >= 0.8 * sum(1 for n in g if n.spec.category not in ("view", "shape", "movement"))
    assert {n.meta["tile"]["kernel"] for n in tiled} >= {"gemm", "attention", "rows", "elementwise"} - (
        {"attention"} if "legacy" in e["file"] else set())
    feeds = feeds_for(e, dims, seed=7)
    spy = Spy(g)
    got = spy.run(feeds)
    assert spy.tiled == len(tiled), "every schedule ran block by block (none fell back)"
    ref = Interpreter(g, tiles=False).run(feeds)
    for k in ref:
        assert max_rel_error(got[k], ref[k]) <= 1e-5, k


def test_tiles_do_not_divide_the_toy_shapes(toy_path):
    """The toy target really exercises partial tiles: most GEMM tiles leave a remainder."""
    e = entries(file="llama-dynamo23-prefill.onnx")[0]
    g = rl.load(MODELS / e["file"], dims=dims_for(e, 2, 5, 3))
    rl.optimize(g, f"default,tile{{target={toy_path}}}")
    partial = 0
    for n in tiled_nodes(g):
        rec = n.meta["tile"]
        if rec["kernel"] == "gemm":
            m = int(np.prod(n.inputs[0].type.shape[:-1])) if n.op == "MatMul" else None
            if m is not None and m % rec["shape"]["m"]:
                partial += 1
            assert rec["shape"]["k"] < n.inputs[0].type.shape[-1] or n.op != "MatMul"
    assert partial >= 1


def test_tiled_graph_prints_parses_and_runs_the_same(toy_path):
    e = entries(file="gpt2-dynamo23-decode.onnx")[0]
    dims = dims_for(e, 2, 3, 4)
    g = rl.load(MODELS / e["file"], dims=dims)
    rl.optimize(g, f"default,tile{{target={toy_path}}}")
    text = print_graph(g)
    assert 'meta {tile = {target = "toy-gpu", kernel = ' in text
    again = parse_graph(text)
    assert print_graph(again) == text
    feeds = feeds_for(e, dims, seed=2)
    a, b = Interpreter(g).run(feeds), Interpreter(again).run(feeds)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


TARGETS = ["h100", "a100", "b200", "tpu-v6e", "tpu-v5p", "trainium2", "groq-lpu", "wse-3", "host-cpu"]


@pytest.mark.parametrize("target", TARGETS)
def test_records_follow_the_contract_on_every_target(target):
    """Kernel kind, tile sizes, order, buffers, traffic at levels the target has, a footprint that
    fits the tile level — and read_tile (what the cost models read) accepts it."""
    t = get_target(target)
    levels = {m.name: m for m in t.memory}
    g = rl.load("llama-3-8b", phase="prefill", batch=1, context=512)
    rl.optimize(g, f"tile{{target={target}}}")
    seen = set()
    for n in g:
        rec = n.meta.get("tile")
        if rec is None:
            continue
        assert read_tile(n) == rec
        assert rec["target"] == target and rec["kernel"] in KERNELS
        assert rec["level"] in levels
        assert set(rec["traffic"]) <= set(levels) and t.device_memory.name in rec["traffic"]
        assert all(v >= 0 for v in rec["traffic"].values())
        for lvl, b in rec.get("footprint", {}).items():
            assert b <= levels[lvl].capacity
        assert all(isinstance(v, int) and v >= 1 for v in rec["shape"].values())
        assert rec["buffers"] in (1, 2)
        seen.add((n.op, rec["kernel"]))
    assert {k for _, k in seen} == KERNELS
    assert {op for op, _ in seen} >= {"MatMul", "Attention", "RMSNormalization", "Add", "Fused", "RotaryEmbedding"}


def test_a_schedule_never_moves_fewer_bytes_than_the_compulsory_ones():
    g = rl.load("llama-3-8b", phase="decode", batch=8, context=2048)
    rl.optimize(g, "tile{target=h100}")
    for n in tiled_nodes(g):
        if n.op in ("MatMul", "RMSNormalization", "Add"):
            compulsory = sum(v.type.dtype.nbytes(v.type.numel) for v in list(n.inputs) + list(n.outputs)
                             if v is not None and v.type.numel > 1)
            assert n.meta["tile"]["traffic"]["hbm"] >= 0.99 * compulsory


def test_symbolic_nodes_are_left_untiled_with_a_note(toy_path):
    g = rl.load(MODELS / "llama-dynamo23-decode.onnx")
    report = run_pipeline(g, f"tile{{target={toy_path}}}")
    assert not tiled_nodes(g)
    assert any("bind the model's dims" in note for note in report.records[0].notes)


def test_clear_removes_schedules_and_retiling_replaces_them(toy_path):
    g = rl.load("gpt2", phase="prefill", context=64)
    rl.optimize(g, "tile{target=h100}")
    n = len(tiled_nodes(g))
    assert n and all(x.meta["tile"]["target"] == "h100" for x in tiled_nodes(g))
    rl.optimize(g, "tile{target=tpu-v6e}")
    assert len(tiled_nodes(g)) == n and all(x.meta["tile"]["target"] == "tpu-v6e" for x in tiled_nodes(g))
    rl.optimize(g, "tile{clear=true}")
    assert not tiled_nodes(g)


def test_buffers_option_fixes_the_buffering():
    g = rl.load("gpt2", phase="prefill", context=64)
    rl.optimize(g, "tile{target=h100,buffers=1}")
    assert {n.meta["tile"]["buffers"] for n in tiled_nodes(g)} == {1}


@pytest.mark.parametrize("pipeline,error,fragment", [
    ("tile{target=no-such-chip}", TargetError, "no-such-chip"),
    ("tile", PipelineError, "needs a target"),
    ("tile{target=h100,level=vmem}", TargetError, "has no memory level 'vmem'"),
    ("tile{target=h100,buffers=3}", PipelineError, "buffers"),
])
def test_bad_options_are_clear_errors(pipeline, error, fragment):
    g = rl.load("gpt2", phase="prefill", context=32)
    with pytest.raises(RidgelineError, match=fragment):
        run_pipeline(g, pipeline)


def test_estimating_on_a_target_without_the_tile_level_is_a_clear_error():
    g = rl.load("gpt2", phase="prefill", context=64)
    rl.optimize(g, "tile{target=h100}")
    with pytest.raises(TargetError, match="memory level 'hbm', which target host-cpu does not have"):
        rl.estimate(g, "host-cpu", companion=None)


def test_cli_bad_level_is_one_line_exit_2(run_cli):
    assert_user_error(run_cli("opt", "gpt2", "-p", "tile{target=h100,level=vmem}"), "no memory level 'vmem'",
                      "smem")
    assert_user_error(run_cli("opt", "gpt2", "-p", "tile{target=nope}"), "nope")


def test_cli_opt_prints_the_tile_records(run_cli, tmp_path):
    out = tmp_path / "tiled.rir"
    proc = run_cli("opt", "gpt2", "-p", "tile{target=h100}", "-o", out)
    assert proc.returncode == 0, proc.stderr
    g = rl.load(out)
    assert tiled_nodes(g) and tiled_nodes(g)[0].meta["tile"]["target"] == "h100"


# --------------------------------------------------------------------------- random graphs
@st.composite
def random_chains(draw):
    """A small random transformer-ish chain with static shapes: norms, projections, attention,
    element-wise ops, softmax and reductions."""
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    b, s = draw(st.integers(1, 3)), draw(st.integers(1, 11))
    heads, hd = draw(st.integers(1, 3)), draw(st.sampled_from([4, 6, 8]))
    h = heads * hd
    g = Graph("rand")
    x = g.add_input("x", tensor("f32", b, s, h))
    cur = x
    for step in draw(st.lists(st.sampled_from(["norm", "proj", "attn", "act", "softmax", "reduce"]),
                              min_size=1, max_size=6)):
        if step == "norm":
            cur = g.add_node("LayerNormalization", [cur, g.add_constant(None, rng.standard_normal(h).astype("f4")),
                                                    g.add_constant(None, rng.standard_normal(h).astype("f4"))],
                             {"axis": -1}, outputs=1).outputs[0]
        elif step == "proj":
            w = g.add_constant(None, (rng.standard_normal((h, h)) / np.sqrt(h)).astype("f4"))
            cur = g.add_node("MatMul", [cur, w]).outputs[0]
        elif step == "attn":
            cur = g.add_node("Attention", [cur, cur, cur], {"q_num_heads": heads, "kv_num_heads": heads,
                                                            "is_causal": int(draw(st.booleans()))},
                             outputs=1).outputs[0]
        elif step == "act":
            cur = g.add_node("Add", [g.add_node("Tanh", [cur]).outputs[0], cur]).outputs[0]
        elif step == "softmax":
            cur = g.add_node("Softmax", [cur], {"axis": -1}).outputs[0]
        else:
            axes = g.add_constant(None, np.array([-1], np.int64))
            r = g.add_node("ReduceMean", [cur, axes], {"keepdims": 1}).outputs[0]
            cur = g.add_node("Sub", [cur, r]).outputs[0]
    g.outputs = [cur]
    return g, {"x": rng.standard_normal((b, s, h)).astype(np.float32)}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=random_chains())
def test_tile_pass_preserves_random_graphs(case, toy_path):
    g, feeds = case
    ref = Interpreter(g).run(feeds)
    rl.optimize(g, f"default,tile{{target={toy_path}}}")
    spy = Spy(g)
    got = spy.run(feeds)
    assert spy.tiled == len(tiled_nodes(g))
    for k in ref:
        assert max_rel_error(got[k], ref[k]) <= 1e-5


def test_estimate_shows_the_tile_chosen_per_node(run_cli):
    import json
    args = ["estimate", "llama-3-8b", "--target", "h100", "--phase", "prefill", "--context", "1024",
            "-p", "tile{target=h100}"]
    proc = run_cli(*args, "--json")
    assert proc.returncode == 0, proc.stderr
    nodes = json.loads(proc.stdout)["nodes"]
    tiles = {n["op"]: n["detail"]["tile"] for n in nodes if "tile" in n.get("detail", {})}
    assert {"MatMul", "Attention", "RMSNormalization"} <= set(tiles)
    assert set(tiles["MatMul"]["shape"]) == {"m", "n", "k"} and tiles["Attention"]["kernel"] == "attention"
    for n in nodes:       # the estimate's bytes are the schedule's
        if "tile" in n.get("detail", {}):
            assert n["bytes"] == pytest.approx(n["detail"]["tile"]["traffic"])
    table = run_cli(*args, "--top", "5")
    assert table.returncode == 0, table.stderr
    shown = {"×".join(str(v) for v in n["detail"]["tile"]["shape"].values()) for n in nodes
             if "tile" in n.get("detail", {})}
    assert any(s in table.stdout for s in shown)


def test_cli_estimate_on_a_target_without_the_tile_levels_is_one_line_exit_2(run_cli, tmp_path):
    out = tmp_path / "tiled.rir"
    assert run_cli("opt", "gpt2", "-p", "tile{target=h100}", "-o", out).returncode == 0
    assert_user_error(run_cli("estimate", out, "--target", "host-cpu"), "tile schedule", "which target host-cpu does "
                      "not have")
