"""gpu_simt: units by dtype, waves over SMs, small-M and GEMV fall-off, launches, fusion, CUDA graphs."""

from __future__ import annotations

import numpy as np
import pytest

from ridgeline import models
from ridgeline.cost_models import estimate, get_target
from ridgeline.ir import Graph, tensor


def gemm(m, n, k, dt="bf16", *, weight=True, batch=None):
    g = Graph("gemm")
    a = g.add_input("a", tensor(dt, *((batch,) if batch else ()), m, k))
    b = (g.add_constant("w", type=tensor(dt, k, n)) if weight else g.add_input("b", tensor(dt, k, n)))
    g.outputs = [g.add_node("MatMul", [a, b]).outputs[0]]
    return g


def node(est):
    return next(r for r in est.nodes if r.op == "MatMul")


def attained(g, target="h100", **opt):
    r = node(estimate(g, target, **opt))
    return r.flops / (r.time_s - r.overhead_s)


@pytest.mark.parametrize("dt, unit", [("bf16", "tensor_core:bf16"), ("f16", "tensor_core:f16"),
                                      ("f32", "tensor_core:tf32"), ("f64", "cuda_core:f64")])
def test_unit_by_dtype(dt, unit):
    assert node(estimate(gemm(4096, 4096, 4096, dt), "h100")).unit == unit


def test_tf32_off_uses_cuda_cores_and_is_slower():
    g = gemm(4096, 4096, 4096, "f32")
    on, off = node(estimate(g, "h100")), node(estimate(g, "h100", tf32=False))
    assert off.unit == "cuda_core:f32"
    assert off.time_s > 3 * on.time_s        # 67 vs 494.5 TFLOP/s


def test_big_gemms_reach_the_calibrated_share_of_peak():
    for name, eff in (("a100", 0.87), ("h100", 0.80), ("b200", 0.78)):
        t = get_target(name)
        got = attained(gemm(16384, 16384, 16384), name) / t.peak("bf16")
        assert eff * 0.95 < got <= eff


def test_wave_quantization_over_sms():
    # 132 SMs: 132 output tiles fill one wave; one tile more needs a second, mostly idle wave
    full = gemm(128, 128 * 132, 16384)
    over = gemm(128, 128 * 133, 16384)
    r_full, r_over = node(estimate(full, "h100")), node(estimate(over, "h100"))
    per_tile_full = (r_full.time_s - r_full.overhead_s) / 132
    per_tile_over = (r_over.time_s - r_over.overhead_s) / 133
    assert per_tile_over > per_tile_full
    for r in (r_full, r_over):
        g = r.detail["gemms"][0]
        assert 0 < g["wave_efficiency"] <= 1
        assert g["waves"] >= 1


def test_small_m_gemm_efficiency_falls_off():
    effs = [attained(gemm(m, 22016, 4096, "f16"), "h100") for m in (1, 8, 32, 128, 512, 2048, 8192)]
    assert all(a < b for a, b in zip(effs, effs[1:])), effs
    assert effs[0] < 0.01 * get_target("h100").peak("f16")
    assert effs[-1] > 0.6 * get_target("h100").peak("f16")


def test_decode_gemv_bandwidth_falls_off_for_small_matrices():
    h100 = get_target("h100")
    fracs = []
    for n in (256, 1024, 4096, 16384, 65536):
        r = node(estimate(gemm(1, n, 4096), "h100"))
        fracs.append(r.outer_bytes / (r.time_s - r.overhead_s) / h100.device_memory.bandwidth)
    assert all(a < b for a, b in zip(fracs, fracs[1:])), fracs
    assert fracs[-1] <= h100.efficiency["memory"] and fracs[-1] > 0.75
    assert fracs[0] < 0.5


def _chain(n_ops: int, fused: bool) -> Graph:
    g = Graph("chain")
    x = g.add_input("x", tensor("bf16", 4096, 4096))
    if fused:
        body = Graph("body")
        v = body.add_input("x", x.type)
        for _ in range(n_ops):
            v = body.add_node("Tanh", [v]).outputs[0]
        body.outputs = [v]
        g.outputs = [g.add_node("Fused", [x], {"kind": "elementwise"}, body=body).outputs[0]]
    else:
        v = x
        for _ in range(n_ops):
            v = g.add_node("Tanh", [v]).outputs[0]
        g.outputs = [v]
    return g


def test_fusion_saves_launches_and_bytes():
    unfused, fused = estimate(_chain(10, False), "h100"), estimate(_chain(10, True), "h100")
    assert len(fused.nodes) == 1 and len(unfused.nodes) == 10
    assert fused.flops == pytest.approx(unfused.flops)
    assert fused.bytes["hbm"] == pytest.approx(unfused.bytes["hbm"] / 10)   # intermediates stay on chip
    assert fused.time_s < unfused.time_s / 5


def test_launch_overhead_and_cuda_graphs():
    g = models.build("llama-3-8b", phase="decode", context=512)
    eager = estimate(g, "h100", companion=None)
    graphs = estimate(g, "h100", cuda_graphs=True, companion=None)
    slow_host = estimate(g, "h100", launch_overhead="20 us", companion=None)
    assert graphs.time_s < eager.time_s < slow_host.time_s
    assert graphs.breakdown["overhead"] < eager.breakdown["overhead"] < slow_host.breakdown["overhead"]
    # with 20 us per launch the host cannot keep up: most small kernels wait for it
    assert slow_host.breakdown["overhead"] > 0.3 * slow_host.time_s


def test_quantized_weights_follow_their_bits_and_dequant_kind():
    b = estimate(models.build("llama-3-70b", phase="decode"), "h100", companion=None)
    q = estimate(models.build("llama-3-70b", phase="decode", weight_dtype="int4"), "h100", companion=None)
    q8 = estimate(models.build("llama-3-70b", phase="decode", weight_dtype="int8"), "h100", companion=None)
    assert b.memory.weights_bytes / q.memory.weights_bytes > 3.5     # ~4x fewer bytes (scales aside)
    assert b.time_s / q.time_s > 2.5                                 # memory-bound decode follows the bytes
    assert q8.time_s > q.time_s
    slow = estimate(models.build("llama-3-70b", phase="decode", weight_dtype="int4"), "h100", dequant="convert",
                    companion=None)
    assert slow.time_s > q.time_s                                    # conversion instructions cost more
    dq = next(r for r in q.nodes if r.name.endswith("mlp.up_proj"))
    assert dq.op == "Fused" and dq.unit == "tensor_core:bf16"        # weight-only: multiply at 16 bits


def test_w8a8_and_fp8_run_on_low_precision_tensor_cores():
    for dt, unit in (("int8", "tensor_core:i8"), ("fp8", "tensor_core:f8e4m3")):
        g = models.build("llama-3-8b", phase="prefill", context=2048, dtype=dt)
        r = next(r for r in estimate(g, "h100", companion=None).nodes if r.name.endswith("mlp.up_proj"))
        assert r.unit == unit
        assert r.bound == "compute"
    bf = estimate(models.build("llama-3-8b", phase="prefill", context=4096), "h100", companion=None)
    f8 = estimate(models.build("llama-3-8b", phase="prefill", context=4096, dtype="fp8"), "h100", companion=None)
    gemm_t = lambda e: sum(r.time_s for r in e.nodes if "proj" in r.name)   # noqa: E731
    assert gemm_t(bf) / gemm_t(f8) > 1.6                                   # 2x the tensor-core rate


def test_estimates_are_deterministic():
    g = models.build("llama-3-8b", phase="decode")
    a, b = estimate(g, "h100"), estimate(g, "h100")
    assert a.time_s == b.time_s and [r.time_s for r in a.nodes] == [r.time_s for r in b.nodes]
    assert np.isfinite(a.time_s)
