"""cpu: the host on the same roofline machinery, with cache levels and per-kernel dispatch."""

from __future__ import annotations

import pytest

from ridgeline import models
from ridgeline.cost_models import estimate, get_target
from ridgeline.ir import Graph, tensor


def _gemm(m, n, k, *, weight=True):
    g = Graph("g")
    x = g.add_input("x", tensor("f32", m, k))
    w = g.add_constant("w", type=tensor("f32", k, n)) if weight else g.add_input("w", tensor("f32", k, n))
    g.outputs = [g.add_node("MatMul", [x, w]).outputs[0]]
    return g


def test_small_working_sets_come_from_cache_big_weights_from_dram():
    host = get_target("host-cpu")
    small = estimate(_gemm(64, 64, 64), host).nodes[0]
    assert small.bytes["dram"] == 0 and small.bytes.get("l1", 0) + small.bytes.get("l2", 0) > 0
    big = estimate(_gemm(1, 8192, 8192), host).nodes[0]         # a 256 MiB weight: streamed from DRAM
    assert big.bytes["dram"] >= 8192 * 8192 * 4 and big.bound == "memory"
    assert big.detail["cores"] == 2 and small.detail["cores"] == 1


def test_compute_bound_gemm_uses_the_simd_peak():
    host = get_target("host-cpu")
    r = estimate(_gemm(2048, 2048, 2048, weight=False), host).nodes[0]
    assert r.bound == "compute" and r.unit == "fma:f32"
    attained = r.flops / (r.time_s - r.overhead_s)
    assert attained == pytest.approx(host.peak("f32") * host.efficiency["matrix"], rel=0.02)


def test_per_kernel_dispatch_and_option():
    g = models.build("gpt2", phase="decode", context=32)
    base = estimate(g, "host-cpu", companion=None)
    slow = estimate(g, "host-cpu", kernel_overhead="50 us", companion=None)
    kernels = sum(1 for r in base.nodes if r.detail.get("kernels", 1))
    assert slow.time_s - base.time_s == pytest.approx(kernels * (50e-6 - 2.5e-6), rel=1e-6)


def test_gpt2_decode_on_the_host_is_memory_bound_and_fits():
    e = estimate(models.build("gpt2", phase="decode", context=256), "host-cpu", companion=None)
    assert e.memory.fits and e.bound in ("memory", "overhead")
    assert e.llm.tokens_per_s > 0
