"""The facts of REFERENCE.md come out of the tool (graphs + target files), not out of constants."""

from __future__ import annotations

import json

import pytest

from ridgeline import models
from ridgeline.cost_models import GraphAnalysis, estimate, get_target, list_targets
from ridgeline.cost_models.families import is_implemented

KIB, GIB = 1024, 2 ** 30


def implemented_targets():
    return [t.name for t in list_targets() if is_implemented(t.family)]


def test_h100_ridge_point_from_cli(run_cli):
    proc = run_cli("targets", "--json")
    assert proc.returncode == 0, proc.stderr
    data = {t["name"]: t for t in json.loads(proc.stdout)}
    assert data["h100"]["ridge_flop_per_byte"]["bf16"] == pytest.approx(295, rel=0.01)
    assert set(data) >= {"a100", "h100", "h200", "b200", "tpu-v5e", "tpu-v5p", "tpu-v6e", "tpu-v7", "trainium2",
                         "wse-3", "groq-lpu", "host-cpu"}
    for t in data.values():
        assert t["ridge_flop_per_byte"], t["name"]


def test_llama3_70b_kv_cache_per_token_and_at_128k():
    g = models.build("llama-3-70b", phase="decode", context=131072)
    est = estimate(g, "h100", companion=None)
    assert est.llm.kv_cache_bytes_per_token == 320 * KIB          # 80 layers x 8 heads x 128 x 2 x 2 B
    assert est.llm.kv_cache_bytes == pytest.approx(40 * GIB)       # x 131,072 tokens
    # the same from the other phase's graph, and halved by an 8-bit cache
    assert estimate(models.build("llama-3-70b", phase="prefill", context=512), "h100",
                    companion=None).llm.kv_cache_bytes_per_token == 320 * KIB
    g8 = models.build("llama-3-70b", phase="decode", context=4096, kv_dtype="fp8")
    assert estimate(g8, "h100", companion=None).llm.kv_cache_bytes_per_token == 160 * KIB


def test_70b_decode_on_one_h100_is_bandwidth_capped_and_does_not_fit(run_cli):
    proc = run_cli("estimate", "llama-3-70b", "--target", "h100", "--phase", "decode", "--tp", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout)
    for key in ("target", "time_s", "bound", "nodes", "ttft_s", "tpot_s", "tokens_per_s", "tokens_per_s_per_user",
                "kv_cache_bytes_per_token", "fits", "devices"):
        assert key in d, key
    assert d["tokens_per_s"] <= 24                   # 140 GB of weights per token at 3.35 TB/s
    assert d["tokens_per_s"] > 12                    # ... and not absurdly below the ceiling
    assert d["fits"] is False and d["devices"] == 1
    assert d["devices_needed"] == 2                   # REFERENCE: needs >= 2 GPUs
    assert d["bound"] == "memory"
    assert d["ttft_s"] > d["tpot_s"] > 0
    assert len(d["nodes"]) > 80 * 10


@pytest.mark.parametrize("target", implemented_targets())
def test_decode_is_memory_bound_and_big_prefill_gemms_compute_bound(target):
    # a CPU's ridge point is a few FLOP/byte: GQA decode attention (group 4) sits right at it, so the
    # host is checked on a multi-head model, as REFERENCE's "1-10 FLOP/byte" decode has it
    cap = get_target(target).device_memory.total_capacity
    preset = "llama-2-7b" if cap < 30e9 else ("llama-3-8b" if cap < 100e9 else "llama-3-70b")
    dec = estimate(models.build(preset, phase="decode", context=2048), target, tp="auto", pp="auto",
                   companion=None)
    assert dec.bound == "memory"
    for r in dec.nodes:
        if r.op in ("MatMul", "Attention"):
            # small kernels on fast chips may be launch-bound; against the roofline all are memory-bound
            assert r.roofline == "memory", (target, r.name, r.roofline)
            assert r.bound in ("memory", "overhead"), (target, r.name, r.bound)
            assert r.intensity < 20                 # decode: 1-10 FLOP/byte against ~100s of capacity
    big_dec = max((r for r in dec.nodes if r.op == "MatMul"), key=lambda r: r.outer_bytes)
    assert big_dec.bound == "memory"
    pre = estimate(models.build(preset, phase="prefill", context=2048), target, tp="auto", pp="auto",
                   companion=None)
    big = [r for r in pre.nodes if r.op == "MatMul" and r.flops > 1e10]
    assert big
    for r in big:
        # the LPU streams a prompt through its chips in chunks sized where a weight tile's MXM
        # passes take about as long as its install: each chunk's product sits at that balance
        # (test_dataflow checks the whole prompt as one chunk is compute-bound)
        if get_target(target).family != "dataflow":
            assert r.bound == "compute", (target, r.name, r.bound)
        assert r.intensity > get_target(target).ridge("bf16") / 4


def test_memory_wall_ridge_points_are_far_above_decode_intensity():
    g = models.build("llama-3-8b", phase="decode")
    a = GraphAnalysis(g)
    for name in ("a100", "h100", "b200"):
        est = estimate(g, name, analysis=a, companion=None)
        gemv = [r for r in est.nodes if r.op == "MatMul"]
        assert max(r.intensity for r in gemv) < 5
        assert get_target(name).ridge("bf16") > 100
