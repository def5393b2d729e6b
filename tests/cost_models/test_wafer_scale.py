"""The wafer_scale family (Cerebras WSE-3): resident layout, regions, fabric pipeline, wafers."""

from __future__ import annotations

import math

import pytest

from ridgeline import models
from ridgeline.cost_models import GraphAnalysis, estimate, get_target
from ridgeline.ir.errors import BackendError

WSE = get_target("wse-3")


def _est(preset, **kw):
    opts = {k: kw.pop(k) for k in ("placement",) if k in kw}
    return estimate(models.build(preset, **kw), "wse-3", companion=None, **opts)


def test_8b_decode_fits_one_wafer_and_is_bounded_by_the_pipeline():
    est = _est("llama-3-8b", context=2048)
    assert est.devices == 1 and est.fits
    # each region's PEs multiply the weights they hold as the token's vector streams in over the
    # region's rows: per-PE MACs and streams, not the SRAM's bandwidth, bound a decode node
    mm = [r for r in est.nodes if r.op in ("MatMul", "Attention")]
    assert all(r.detail["compute_cycles"] >= r.detail["stream_cycles"] or r.bound == "memory" for r in mm)
    # far below what the SRAM's bandwidth would allow: weights are read in place, the pipeline
    # (streams through every layer's regions, hops) is the limit
    weights = est.memory.total_weights_bytes
    assert est.time_s > 10 * weights / WSE.device_memory.bandwidth
    # the records are each node's increment of the critical path: they add up to the step
    assert sum(r.time_s for r in est.nodes) == pytest.approx(est.time_s)


def test_large_prefill_gemms_are_compute_bound():
    est = _est("llama-3-8b", phase="prefill", context=2048)
    big = [r for r in est.nodes if r.op == "MatMul" and r.flops > 1e10]
    assert big and all(r.bound == "compute" for r in big)
    # many tokens share the fabric: each region takes up to its edge length of streams at once
    assert all(r.detail["routes"] > 1 for r in big)


def test_regions_hold_their_bytes_and_share_the_rest_by_work():
    est = _est("llama-3-8b", context=2048)
    pe_sram = WSE.array["pe_sram"]
    lay = est.detail["layout"]
    assert lay["pes_used"] <= WSE.array["pes"] * lay["wafers"]
    for r in est.nodes:
        if r.op == "MatMul":
            assert r.detail["pes"] * pe_sram >= r.bytes["sram"] - r.detail["tokens"] * 4 * 1e5   # weights fit
    gate = next(r for r in est.nodes if r.name.endswith("layers.0.mlp.gate_proj"))
    k = next(r for r in est.nodes if r.name.endswith("layers.0.self_attn.k_proj"))
    # 4096x14336 vs 4096x1024 weights: the bigger GEMM gets proportionally more PEs
    assert gate.detail["pes"] / k.detail["pes"] == pytest.approx(14, rel=0.05)


def test_parallel_branches_overlap_on_the_wafer():
    est = _est("llama-3-8b", context=2048)
    serial = sum(r.detail.get("latency", 0) for r in est.nodes) / WSE.clock_hz
    assert est.time_s < serial
    q = next(r for r in est.nodes if r.name == "layers.3.self_attn.q_proj")
    v = next(r for r in est.nodes if r.name == "layers.3.self_attn.v_proj")
    assert min(q.time_s, v.time_s) < 1e-7      # Q/K/V run side by side: only one of them extends the path


def test_models_bigger_than_a_wafer_pipeline_over_wafers():
    est = _est("llama-3-70b", context=2048)
    resident = est.memory.total_weights_bytes + est.memory.total_kv_cache_bytes
    usable = WSE.device_memory.total_capacity * WSE.efficiency["capacity_usable"]
    assert est.devices == est.detail["layout"]["wafers"] >= math.ceil(resident / usable)
    assert est.fits
    hops = [r for r in est.nodes if r.category == "transfer"]
    assert len(hops) == est.devices - 1
    assert all(r.bound == "communication" and r.unit == "link:swarmx" for r in hops)


def test_weight_streaming_from_memoryx_is_slow_for_decode():
    resident = _est("llama-3-8b", context=2048)
    stream = _est("llama-3-8b", context=2048, placement="stream")
    assert stream.detail["layout"]["placement"] == "stream" and stream.devices == 1
    mx = WSE.array["memoryx_bandwidth"]
    assert stream.time_s >= stream.memory.total_weights_bytes / mx
    assert stream.time_s > 10 * resident.time_s
    assert sum(r.bytes.get("memoryx", 0.0) for r in stream.nodes) == pytest.approx(stream.memory.total_weights_bytes)
    with pytest.raises(BackendError, match="placement must be one of auto, resident, stream"):
        _est("gpt2", placement="disk")


def test_batch_fills_the_pipeline():
    g1 = _est("llama-3-8b", context=2048)
    g8 = _est("llama-3-8b", context=2048, batch=8)
    assert g1.time_s < g8.time_s < 8 * g1.time_s
    assert g8.llm.tokens_per_s > 4 * g1.llm.tokens_per_s


def test_degrees_do_not_apply_and_estimates_repeat():
    g = models.build("gpt2")
    with pytest.raises(BackendError, match="--pp does not apply"):
        estimate(g, "wse-3", pp=2)
    a = GraphAnalysis(g)
    e1, e2 = estimate(g, "wse-3", analysis=a, companion=None), estimate(g, "wse-3", analysis=a, companion=None)
    assert e1.time_s == e2.time_s and [r.time_s for r in e1.nodes] == [r.time_s for r in e2.nodes]


def test_narrow_weights_need_fewer_wafers_and_are_widened_when_that_is_faster():
    from ridgeline.cost_models.families.wafer_scale import WaferScaleModel
    bf16 = _est("llama-3-70b", context=2048)
    g8 = models.build("llama-3-70b", context=2048, weight_dtype="int8")
    narrow = WaferScaleModel(WSE)._estimate(g8, None, None)      # int8 in SRAM, widened on the fly
    assert narrow.devices < bf16.devices
    assert narrow.memory.total_weights_bytes == pytest.approx(bf16.memory.total_weights_bytes / 2, rel=0.02)
    # half the wafers also means half the PEs per layer: the regions' MACs (and the dequantizing
    # prologue) take longer on the big GEMMs, so at batch 1 the narrow layout is slower ...
    gate = next(r for r in narrow.nodes if r.name.endswith("layers.0.mlp.gate_proj"))
    assert gate.detail["compute_cycles"] > next(r for r in bf16.nodes if r.name.endswith(
        "layers.0.mlp.gate_proj")).detail["compute_cycles"]
    # ... and the estimate takes the deployment that widens the weights at load, and says why
    int8 = estimate(g8, "wse-3", companion=None)
    assert int8.time_s <= bf16.time_s * (1 + 1e-9) < narrow.time_s
    assert int8.detail["weight_form"] == "widened at load" and any("widened" in n for n in int8.notes)


def test_tile_records_are_read_and_checked():
    from ridgeline.cost_models.traffic import flash_attention_tile
    from ridgeline.ir.errors import TargetError
    g = models.build("llama-3-8b", phase="prefill", context=2048)
    plain = estimate(g, "wse-3", companion=None)
    for n in g:
        if n.op == "Attention":
            n.meta["tile"] = flash_attention_tile(n, WSE)
    tiled = estimate(g, "wse-3", companion=None)
    att = lambda e: sum(r.compute_s for r in e.nodes if r.op == "Attention")
    assert att(tiled) < att(plain)                       # causal blocks above the diagonal are skipped
    next(n for n in g if n.op == "Attention").meta["tile"] = {"traffic": {"vmem": 1e6}}
    with pytest.raises(TargetError, match="level 'vmem'"):
        estimate(g, "wse-3", companion=None)


def test_target_schema_errors_name_the_field(tmp_path):
    from pathlib import Path

    from ridgeline.cost_models import targets as targets_pkg
    from ridgeline.cost_models.targets import load_target_file
    from ridgeline.ir.errors import TargetError
    src = Path(targets_pkg.__file__).with_name("wse-3.toml").read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text(src.replace("pes = 900000 ", "# pes removed "))
    with pytest.raises(TargetError, match=r"array.pes: missing"):
        load_target_file(bad)
    bad.write_text(src.replace('pe_sram = "48 KiB"', 'pe_sram = "lots"'))
    with pytest.raises(TargetError, match=r"array.pe_sram"):
        load_target_file(bad)
