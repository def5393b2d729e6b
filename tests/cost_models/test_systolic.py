"""The systolic family (TPUs, Trainium): GEMMs on the arrays, vector unit, VMEM tiles, HBM, ICI."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ridgeline import models
from ridgeline.cost_models import estimate, get_target
from ridgeline.cost_models import targets as targets_pkg
from ridgeline.cost_models.families.systolic import SystolicModel
from ridgeline.cost_models.systolic_array import map_gemm, pipelined_cycles
from ridgeline.cost_models.targets import load_target_file
from ridgeline.ir import Graph, tensor
from ridgeline.ir.errors import BackendError, TargetError

SYSTOLIC = ["tpu-v5e", "tpu-v5p", "tpu-v6e", "tpu-v7", "trainium2"]


def _gemm(m, n, k, dt="bf16", *, weight=True, batch=None):
    g = Graph("gemm")
    a = g.add_input("a", tensor(dt, *((batch,) if batch else ()), m, k))
    b = g.add_constant("w", type=tensor(dt, k, n)) if weight else g.add_input("b", tensor(dt, k, n))
    g.outputs = [g.add_node("MatMul", [a, b]).outputs[0]]
    return g


def _node(g, target, **opts):
    return estimate(g, target, companion=None, **opts).nodes[0]


@pytest.mark.parametrize("target", SYSTOLIC)
def test_large_gemm_runs_at_the_calibrated_share_of_peak(target):
    t = get_target(target)
    r = _node(_gemm(8192, 8192, 8192), target)
    assert r.bound == "compute" and r.detail["gemms"][0]["load_bound"] is False
    achieved = r.flops / r.compute_s
    expected = t.peak("bf16") * t.efficiency["matrix"]
    assert achieved == pytest.approx(expected, rel=0.02)        # fill/drain and fold quantization are small


def test_cycles_follow_the_fold_model():
    t = get_target("tpu-v5e")
    r = _node(_gemm(300, 1000, 700), t)
    g = r.detail["gemms"][0]
    mp = map_gemm(300, 1000, 700, 128, 128, "ws")
    assert g["folds"] == mp.folds == math.ceil(700 / 128) * math.ceil(1000 / 128)
    assert g["folds_per_array"] == math.ceil(mp.folds / 4)
    speed = t.peak("bf16") / (4 * 128 * 128 * 2 * t.clock_hz)      # listed peak vs the array geometry
    stream = map_gemm(math.ceil(300 / speed / t.efficiency["matrix"]), 1000, 700, 128, 128, "ws")  # T / eff
    assert g["cycles"] == pipelined_cycles(stream, g["folds_per_array"])
    assert g["compute_s"] == pytest.approx(g["cycles"] / t.clock_hz)
    assert g["padding_efficiency"] == pytest.approx(mp.mapping_efficiency)


def test_padding_waste_one_column_more_costs_a_fold_row():
    a = _node(_gemm(4096, 512, 4096), "tpu-v5e").compute_s
    b = _node(_gemm(4096, 513, 4096), "tpu-v5e").compute_s
    assert b / a == pytest.approx(5 / 4, rel=0.02)             # 4 -> 5 column folds of 128


def test_dataflow_option_changes_the_mapping_and_bad_names_fail():
    g = _gemm(64, 4096, 4096)
    ws = _node(g, "tpu-v5e")
    os_ = _node(g, "tpu-v5e", dataflow="os")
    assert ws.detail["gemms"][0]["dataflow"] == "ws" and os_.detail["gemms"][0]["dataflow"] == "os"
    assert ws.detail["gemms"][0]["cycles"] != os_.detail["gemms"][0]["cycles"]
    with pytest.raises(BackendError, match="unknown dataflow 'rowwise'"):
        estimate(g, "tpu-v5e", dataflow="rowwise")


@pytest.mark.parametrize("target", SYSTOLIC)
def test_decode_gemv_is_memory_bound(target):
    r = _node(_gemm(1, 8192, 8192), target)
    assert r.bound == "memory" and r.roofline == "memory"
    hbm = get_target(target).device_memory
    assert r.memory_s == pytest.approx(r.bytes[hbm.name] / (hbm.bandwidth * get_target(target).efficiency["memory"]))
    assert r.intensity < 2


def test_int8_gemm_runs_twice_as_fast_where_the_array_doubles():
    bf = _node(_gemm(4096, 4096, 4096, "bf16"), "tpu-v5e")
    i8 = _node(_gemm(4096, 4096, 4096, "i8"), "tpu-v5e")
    assert i8.unit.endswith(":i8")
    assert bf.compute_s / i8.compute_s == pytest.approx(2.0, rel=0.02)


def test_f32_contractions_run_as_bf16_passes():
    bf = _node(_gemm(4096, 4096, 4096, "bf16"), "tpu-v6e")
    f32 = _node(_gemm(4096, 4096, 4096, "f32"), "tpu-v6e")
    assert f32.unit.endswith("bf16x3")
    assert f32.compute_s / bf.compute_s == pytest.approx(3.0, rel=0.02)


def test_int4_weights_cut_decode_bytes_and_time():
    bf = estimate(models.build("llama-2-7b", context=512), "tpu-v5e", companion=None)
    q4 = estimate(models.build("llama-2-7b", context=512, weight_dtype="int4"), "tpu-v5e", companion=None)
    assert q4.bytes["hbm"] < 0.4 * bf.bytes["hbm"]
    assert q4.time_s < 0.5 * bf.time_s
    # the dequantizing prologue runs on the vector unit, once per row of output tiles
    fused = [r for r in q4.nodes if r.op == "Fused" and r.detail.get("gemms")]
    assert fused and all(r.bound == "memory" for r in fused)


def test_operands_outgrowing_sbuf_are_read_again_from_hbm():
    g = _gemm(8192, 16384, 8192)              # B = 256 MiB: fits neither 24 MiB SBUF nor 128 MiB VMEM
    ideal = (8192 * 8192 + 8192 * 16384 + 8192 * 16384) * 2
    for target in ("trainium2", "tpu-v5e"):
        r = _node(g, target)
        assert r.bytes["hbm"] > ideal
        onchip = get_target(target).memory[-1].name
        assert r.bytes[onchip] >= r.bytes["hbm"]          # every tile's panels pass through VMEM/SBUF
    small = _node(_gemm(1024, 1024, 1024), "tpu-v5e")      # 2 MiB operands: each read once
    assert small.bytes["hbm"] == pytest.approx((3 * 1024 * 1024) * 2)


def test_tile_records_replace_the_bytes_and_are_checked():
    g = _gemm(2048, 2048, 2048)
    node = g.nodes[0]
    node.meta["tile"] = {"traffic": {"hbm": 1e9, "vmem": 4e9}, "footprint": {"vmem": 1 << 20}}
    r = _node(g, "tpu-v5e")
    assert r.bytes["hbm"] == 1e9 and r.bytes["vmem"] == 4e9
    node.meta["tile"] = {"traffic": {"smem": 1e6}}
    with pytest.raises(TargetError, match="level 'smem'"):
        estimate(g, "tpu-v5e")
    node.meta["tile"] = {"traffic": {"hbm": 1e6}, "footprint": {"vmem": 1 << 30}}
    with pytest.raises(TargetError, match="needs 1 GiB of vmem; tpu-v5e has 128 MiB"):
        estimate(g, "tpu-v5e")


def test_tensor_parallel_decode_pays_ici_collectives():
    est = estimate(models.build("llama-3-70b", context=2048), "tpu-v5e", tp="auto", pp="auto", companion=None)
    assert est.parallel["tp"] > 1
    comms = [r for r in est.nodes if r.category == "collective"]
    assert comms and all(r.unit == "link:ici" and r.bound == "communication" for r in comms)
    assert len(comms) >= 2 * 80                                  # two all-reduces per layer
    assert est.fits


def test_multi_core_chips_spread_folds_over_all_arrays():
    # v5p: 2 TensorCores x 4 MXUs; the same GEMM on v5e's 4 MXUs takes ~2x the cycles
    v5p = _node(_gemm(2048, 2048, 2048), "tpu-v5p").detail["gemms"][0]
    v5e = _node(_gemm(2048, 2048, 2048), "tpu-v5e").detail["gemms"][0]
    assert v5p["folds"] == v5e["folds"]
    assert v5e["folds_per_array"] == 2 * v5p["folds_per_array"]


def test_schema_errors_name_the_field(tmp_path):
    src = Path(targets_pkg.__file__).with_name("tpu-v5e.toml")
    text = src.read_text().replace("shape = [128, 128]", "shape = [128]")
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(TargetError, match=r"units\.mxu\.shape"):
        SystolicModel(load_target_file(p))
    p.write_text(src.read_text().replace("cores = 1 ", "cores = 1\nwavefront = 3 "))
    with pytest.raises(TargetError, match=r"array: unknown key\(s\) wavefront"):
        load_target_file(p)


@settings(max_examples=10, deadline=None, derandomize=True)
@given(st.sampled_from(("tpu-v5e", "tpu-v5p", "tpu-v6e", "tpu-v7", "trainium2")),
       st.sampled_from(("gpt2", "llama-2-7b", "llama-3-8b")), st.sampled_from(("prefill", "decode")),
       st.sampled_from((1, 2, 16)), st.sampled_from((128, 1024)), st.sampled_from(("bf16", "int8")))
def test_element_wise_runs_are_one_loop_fusion(target, preset, phase, batch, ctx, dtype):
    # XLA / neuronx-cc compile a norm after a residual add (and a quantizer after it) into one loop
    # fusion: the sum stays in VMEM for the norm, the norm's output for the quantizer. The step then
    # moves fewer HBM bytes and is never slower than kernel by kernel through HBM
    g = models.build(preset, phase=phase, batch=batch, context=ctx, prompt=ctx if phase == "prefill" else None,
                     dtype=dtype)
    fused, apart = estimate(g, target, fusion=True), estimate(g, target, fusion=False)
    assert fused.bytes["hbm"] < apart.bytes["hbm"]
    assert fused.time_s <= apart.time_s * (1 + 1e-9)
    assert all(b >= 0 for r in fused.nodes for b in r.bytes.values())
    # exactly what stays in VMEM: each read of a value made in the run, and the write of one no
    # kernel after the run reads (the residual stream is still written); a prefill's last-token
    # Gather reads rows, less than the whole value
    saved, bound, runs = _vmem_bytes(g, fused)
    assert sum(r.detail["kernels"] for r in fused.nodes if "loop_fusion" in r.detail) == runs    # one kernel each
    diff = apart.total_bytes["hbm"] - fused.total_bytes["hbm"]
    assert diff == saved if phase == "decode" else saved - bound <= diff <= saved


def _vmem_bytes(g, est) -> tuple[int, int, int]:
    """The HBM bytes the loop fusions of ``est`` should save (reads and writes of the values their
    runs make, through views), of those the reads by a Gather, and the number of runs."""
    from ridgeline.cost_models.work import FREE_CATEGORIES, node_label

    def readers(v):      # the kernels reading v (views make no kernel) and whether it leaves the graph
        out, leaves = [], v.is_output
        for u, _ in v.uses:
            if u.spec.category not in FREE_CATEGORIES:
                out.append(u)
                continue
            for o in u.outputs:
                more, gone = readers(o)
                out, leaves = out + more, leaves or gone
        return out, leaves

    node = {node_label(n): n for n in g.nodes}
    saved = gathered = runs = 0
    run: list = []
    for r in est.nodes:
        if "loop_fusion" not in r.detail:
            assert not run
            continue
        run.append(node[r.name])
        if len(run) < r.detail["loop_fusion"]:
            continue
        members = {id(n) for n in run}
        for v in (v for n in run for v in n.outputs):
            rd, leaves = readers(v)
            inside = [u for u in rd if id(u) in members]
            saved += int(v.type.nbytes) * (len(inside) + (not leaves and len(inside) == len(rd)))
            gathered += int(v.type.nbytes) * sum(u.op == "Gather" for u in inside)
        run, runs = [], runs + 1
    assert not run
    return saved, gathered, runs


def test_the_last_soak_violation_was_unfused_element_wise_kernels():
    # the last soak's one violation: 4.2 of 16.6 ms were activations through separate element-wise
    # kernels, 3.0x the weights+KV bound
    from ridgeline.testing.cost_invariants import Case, check
    assert not check(Case("llama-3-70b", "tpu-v6e", "prefill", 2, 128, "int8", None, 8, 1), ("roofline",))
