"""The cost models price the tiles, and the tiles' traffic behaves as the physics says.

Exponents and ratios are fitted from the tool's own numbers (log-log slopes), never computed by
hand: untiled attention moves O(N²) bytes (the score matrix); FlashAttention tiles move
O(N²·d²/M) through the on-chip memory of size M; GEMM traffic falls as tiles grow, until they no
longer fit.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

import ridgeline as rl
from ridgeline.cost_models import cost_model, estimate, get_target
from ridgeline.ir import Graph, tensor
from ridgeline.passes.transforms.tile import tile_graph
from ridgeline.passes.transforms.tile_problems import problem_of
from ridgeline.passes.transforms.tile_search import evaluate_attention, evaluate_gemm, hierarchy, search

NS = [512 * 2 ** i for i in range(7)]          # 512 ... 32768


def attention_graph(n: int, d: int = 128, heads: int = 32, dt: str = "bf16") -> tuple[Graph, object]:
    g = Graph("attention")
    q, k, v = (g.add_input(name, tensor(dt, 1, heads, n, d)) for name in "qkv")
    node = g.add_node("Attention", [q, k, v], outputs=1)
    g.outputs = [node.outputs[0]]
    return g, node


def with_smem(capacity: float):
    t = get_target("h100")
    mem = tuple(dataclasses.replace(m, capacity=capacity) if m.name == "smem" else m for m in t.memory)
    return dataclasses.replace(t, memory=mem)


def materialized(target) -> dict:
    """Options pricing an untiled Attention with its score matrices in device memory (the GPU and
    systolic families price a fused Attention as FlashAttention by default; the baseline here is
    the materialized one)."""
    return {"attention": "materialized"} if "attention" in cost_model(target).option_fields else {}


def slope(x, y) -> float:
    return float(np.polyfit(np.log(np.asarray(x, float)), np.log(np.asarray(y, float)), 1)[0])


@pytest.fixture(scope="module")
def attention_sweep():
    """(N, untiled HBM bytes, tiled bytes per level) on h100, priced by the gpu_simt model."""
    h100 = get_target("h100")
    rows = []
    for n in NS:
        g, node = attention_graph(n)
        untiled = estimate(g, h100, **materialized(h100)).bytes["hbm"]
        tile_graph(g, h100)
        est = estimate(g, h100)
        # the estimate's bytes per level are the schedule's
        assert est.bytes == pytest.approx(node.meta["tile"]["traffic"])
        rows.append((n, untiled, dict(node.meta["tile"]["traffic"])))
    return rows


def test_untiled_attention_traffic_grows_like_n_squared(attention_sweep):
    assert 1.9 <= slope(NS, [r[1] for r in attention_sweep]) <= 2.05


def test_flash_attention_traffic_grows_like_n2_d2_over_m(attention_sweep):
    # through the level of size M (shared memory): N² ...
    big = [r for r in attention_sweep if r[0] >= 4096]
    assert 1.85 <= slope([r[0] for r in big], [r[2]["smem"] for r in big]) <= 2.05
    # ... times d² ...
    h100 = get_target("h100")
    by_d = []
    for d in (64, 128, 256):
        g, node = attention_graph(8192, d=d)
        tile_graph(g, h100)
        by_d.append(node.meta["tile"]["traffic"]["smem"])
    assert 1.8 <= slope([64, 128, 256], by_d) <= 2.1
    # ... over M
    caps = [57 * 1024, 114 * 1024, 228 * 1024, 456 * 1024]
    by_m = []
    for cap in caps:
        g, node = attention_graph(8192)
        tile_graph(g, with_smem(cap))
        by_m.append(node.meta["tile"]["traffic"]["smem"])
    assert -1.15 <= slope(caps, by_m) <= -0.85


def test_flash_attention_keeps_the_scores_off_device_memory(attention_sweep):
    ratios = []
    for n, untiled, tiled in attention_sweep:
        assert tiled["hbm"] < untiled
        ratios.append(untiled / tiled["hbm"])
    # a head's K/V stays in the 50 MiB L2, so tiled HBM traffic is linear and the gap widens with N
    assert all(b > a for a, b in itertools.pairwise(ratios))
    assert slope(NS, [t["hbm"] for _, _, t in attention_sweep]) == pytest.approx(1.0, abs=0.05)


def test_gemm_traffic_falls_as_tiles_grow_until_they_no_longer_fit():
    g = Graph("gemm")
    a = g.add_input("a", tensor("bf16", 8192, 8192))
    b = g.add_constant("b", type=tensor("bf16", 8192, 8192))
    node = g.add_node("MatMul", [a, b])
    g.outputs = [node.outputs[0]]
    h = hierarchy(get_target("h100"))
    p = problem_of(node)
    sizes = [16, 32, 64, 128, 256, 512, 1024]
    ev = evaluate_gemm(p, h, np.array(sizes), np.array(sizes), np.full(7, 64), ("m", "n", "k"), np.full(7, 2))
    into_smem = ev.traffic[-1]
    fits = ev.feasible
    assert fits[0] and not fits[-1]
    last_fit = int(np.flatnonzero(fits).max())
    assert all(fits[: last_fit + 1]) and not any(fits[last_fit + 1:])       # fits until it does not
    assert all(np.diff(into_smem[: last_fit + 1]) < 0)                       # and falls until then
    # the footprint of the first tile that does not fit exceeds shared memory
    assert ev.footprint[last_fit + 1] > h.tile.capacity or (sizes[last_fit + 1] ** 2 * 4 > h.tile.capacity)
    # the search's choice moves no more than the largest square tile that fits
    rec = search(p, h)
    assert rec["traffic"]["smem"] <= into_smem[last_fit] * (1 + 1e-9)
    assert rec["footprint"]["smem"] <= h.tile.capacity


def test_the_loop_order_decides_what_is_reloaded():
    """A[m,k] is reused across the inner N loop of order (m, k, n), reloaded per N tile otherwise."""
    g = Graph("gemm")
    a = g.add_input("a", tensor("f32", 512, 256))
    node = g.add_node("MatMul", [a, g.add_constant("b", type=tensor("f32", 256, 1024))])
    g.outputs = [node.outputs[0]]
    h = hierarchy(get_target("tpu-v6e"))
    p = problem_of(node)
    one = np.array([64.0])
    mnk = evaluate_gemm(p, h, one, one, one, ("m", "n", "k"), one).traffic[0][0]
    mkn = evaluate_gemm(p, h, one, one, one, ("m", "k", "n"), one).traffic[0][0]
    nkm = evaluate_gemm(p, h, one, one, one, ("n", "k", "m"), one).traffic[0][0]
    a_bytes, b_bytes = 512 * 256 * 4, 256 * 1024 * 4
    # (m, n, k): A once per N tile, B once per M tile, C written once
    assert mnk == pytest.approx(a_bytes * 16 + b_bytes * 8 + 512 * 1024 * 4)
    # (m, k, n): A once; the K loop sits outside N, so partial sums of C go out and back
    assert mkn == pytest.approx(a_bytes + b_bytes * 8 + 512 * 1024 * 4 * (1 + 2 * 3))
    # (n, k, m): B once, A once per N tile
    assert nkm == pytest.approx(a_bytes * 16 + b_bytes + 512 * 1024 * 4 * (1 + 2 * 3))


def test_prefill_estimate_drops_with_tiling_and_bytes_come_from_the_schedule():
    g = rl.load("llama-3-8b", phase="prefill", batch=1, context=8192)
    untiled = estimate(g, "h100", **materialized("h100"))
    rl.optimize(g, "tile{target=h100}")
    tiled = estimate(g, "h100")
    assert tiled.bytes["hbm"] < 0.5 * untiled.bytes["hbm"]        # the score matrices are gone
    assert tiled.time_s < untiled.time_s
    by_name = {n.outputs[0].name: n for n in g}
    for rec in tiled.nodes:
        node = by_name.get(rec.name)
        if node is not None and "tile" in node.meta:
            assert rec.bytes == pytest.approx(node.meta["tile"]["traffic"])


def test_causal_attention_skips_the_blocks_above_the_diagonal():
    h100 = get_target("h100")
    full, causal = attention_graph(8192), attention_graph(8192)
    causal[1].attrs = {**causal[1].attrs, "is_causal": 1}
    for g, _ in (full, causal):
        tile_graph(g, h100)
    f, c = full[1].meta["tile"], causal[1].meta["tile"]
    assert 0.45 < c["flops"] / f["flops"] < 0.55
    # at the same blocks, the key blocks a causal query block skips are not loaded either
    h = hierarchy(h100)
    same = [evaluate_attention(problem_of(node), h, 256, np.array([64.0]), np.array([2.0]))
            for _, node in (full, causal)]
    assert same[1].traffic[-1][0] < 0.6 * same[0].traffic[-1][0]
    # (the search may pick finer blocks for causal: they skip more of the diagonal's work)
    assert c["shape"]["q"] <= f["shape"]["q"]
    est_f, est_c = estimate(full[0], h100), estimate(causal[0], h100)
    assert est_c.flops == pytest.approx(c["flops"], rel=1e-6)
    assert est_c.time_s < 0.6 * est_f.time_s


@pytest.mark.parametrize("target", ["tpu-v6e", "trainium2", "groq-lpu", "wse-3", "host-cpu", "b200"])
def test_every_family_prices_the_schedules(target):
    """Systolic, wafer-scale, dataflow and CPU models read the same records: the estimate works,
    its bytes per level are the records', and FlashAttention removes the score matrices."""
    g = rl.load("llama-3-8b", phase="prefill", batch=1, context=2048)
    untiled = estimate(g, target, tp="auto", **materialized(target))
    rl.optimize(g, f"tile{{target={target}}}")
    tiled = estimate(g, target, tp="auto")
    dev = get_target(target).device_memory.name
    att = [r for r in tiled.nodes if r.op == "Attention"]
    att0 = [r for r in untiled.nodes if r.op == "Attention"]
    assert att and sum(r.bytes[dev] for r in att) < 0.5 * sum(r.bytes[dev] for r in att0)
    assert tiled.time_s <= untiled.time_s * 1.05
