"""What the cost models read from passes: fused bodies, quantized dtypes, KV caches, tile records."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from ridgeline import models
from ridgeline.cost_models import estimate, get_target, node_work
from ridgeline.cost_models.traffic import attention_traffic, flash_attention_tile, gemm_traffic
from ridgeline.ir import Graph, tensor
from ridgeline.ir.errors import IRError, TargetError


def attention_graph(n: int, *, heads=32, kv=8, d=128, causal=True, dt="bf16") -> tuple[Graph, object]:
    g = Graph("attn")
    q = g.add_input("q", tensor(dt, 1, n, heads * d))
    k = g.add_input("k", tensor(dt, 1, n, kv * d))
    v = g.add_input("v", tensor(dt, 1, n, kv * d))
    node = g.add_node("Attention", [q, k, v], {"q_num_heads": heads, "kv_num_heads": kv, "is_causal": int(causal)},
                      outputs=1)
    g.outputs = [node.outputs[0]]
    return g, node


def test_matmul_work():
    g = Graph("mm")
    x = g.add_input("x", tensor("bf16", 2, 8, 64))
    w = g.add_constant("w", type=tensor("bf16", 64, 32))
    n = g.add_node("MatMul", [x, w])
    w_ = node_work(n)
    (c,) = w_.contractions
    assert (c.batch, c.m, c.n, c.k, c.dtype, c.b_weight) == (1, 16, 32, 64, "bf16", True)
    assert c.flops == w_.flops == 2 * 2 * 8 * 32 * 64
    assert w_.device_bytes == (2 * 8 * 64 + 64 * 32 + 2 * 8 * 32) * 2
    assert w_.weight_bytes == 64 * 32 * 2 and w_.kernels == 1


@given(lead=st.lists(st.integers(1, 5), min_size=1, max_size=3), m=st.integers(1, 9), k=st.integers(1, 70),
       n=st.integers(1, 70), b3=st.booleans())
@settings(max_examples=40, deadline=None)
def test_matmul_shape_semantics(lead, m, k, n, b3):
    # a 2-D B is one matrix shared by every leading index of A: one GEMM of prod(lead)*m rows;
    # a B with the same leading dims is a batch of independent products
    g = Graph("mm")
    x = g.add_input("x", tensor("bf16", *lead, m, k))
    w = g.add_input("w", tensor("bf16", *lead, k, n)) if b3 else g.add_constant("w", type=tensor("bf16", k, n))
    (c,) = node_work(g.add_node("MatMul", [x, w])).contractions
    rows = math.prod(lead)
    assert (c.batch, c.m) == ((rows, m) if b3 else (1, rows * m))
    assert c.flops == 2 * rows * m * n * k


def test_views_are_free():
    g = Graph("v")
    x = g.add_input("x", tensor("f32", 4, 6))
    shape = g.add_constant("s", np.array([6, 4], np.int64))
    n = g.add_node("Reshape", [x, shape])
    w = node_work(n)
    assert w.kernels == 0 and w.device_bytes == 0


def test_fused_node_flops_of_body_bytes_of_ports():
    g = Graph("f")
    x = g.add_input("x", tensor("bf16", 1024, 1024))
    body = Graph("b")
    v = body.add_input("x", x.type)
    for op in ("Tanh", "Exp", "Sigmoid"):
        v = body.add_node(op, [v]).outputs[0]
    body.outputs = [v]
    n = g.add_node("Fused", [x], {"kind": "elementwise"}, body=body)
    w = node_work(n)
    assert w.flops == w.vector_flops == (1 + 1 + 4) * 1024 * 1024
    assert w.device_bytes == 2 * 1024 * 1024 * 2             # one read, one write; no intermediates


def test_attention_untiled_materializes_scores_tiled_does_not():
    g, n = attention_graph(2048)
    untiled = node_work(n)
    io = sum(untiled.in_bytes) + sum(untiled.out_bytes)
    scores = 4 * 32 * 2048 * 2048 * 2
    assert untiled.extra_bytes == scores and untiled.device_bytes == io + scores
    h100 = get_target("h100")
    n.meta["tile"] = flash_attention_tile(n, h100)
    tiled = node_work(n)
    assert tiled.traffic["hbm"] == pytest.approx(io)          # K/V re-reads hit L2, not HBM
    assert tiled.traffic["l2"] > io
    e_untiled = estimate(attention_graph(2048)[0], h100, attention="materialized")
    e_tiled = estimate(g, h100)
    assert e_tiled.bytes["hbm"] < e_untiled.bytes["hbm"] / 10
    assert e_tiled.time_s < e_untiled.time_s
    # causal block skipping, declared by the record, halves the executed work
    assert e_tiled.flops == pytest.approx(e_untiled.flops * (2049 / 2 / 2048), rel=1e-6)


@settings(max_examples=8, deadline=None, phases=(Phase.explicit, Phase.generate))
@given(st.sampled_from(["h100", "a100", "b200", "tpu-v5p", "tpu-v6e", "trainium2"]),
       st.sampled_from(["llama-3-8b", "llama-2-7b", "gpt2"]), st.sampled_from(["prefill", "decode"]),
       st.sampled_from([1, 4]), st.sampled_from([128, 1000, 4096]), st.sampled_from([None, "fp8"]))
def test_default_attention_is_flash_equal_to_its_tile_records(target, preset, phase, batch, ctx, kv):
    """Serving runtimes run a fused Attention op FlashAttention-style; the GPU and systolic
    families price it so by default, exactly as if the IR carried the FlashAttention tile record
    (for a narrow-KV Fused attention too), and never above the score-materializing kernel."""
    t = get_target(target)
    ctx = min(ctx, 1024) if preset == "gpt2" else ctx          # its learned positions
    g = models.build(preset, phase=phase, batch=batch, context=ctx, prompt=ctx if phase == "prefill" else None,
                     kv_dtype=kv)
    by_default = estimate(g, t, companion=None)
    materialized = estimate(g, t, companion=None, attention="materialized")
    assert by_default.time_s <= materialized.time_s * (1 + 1e-9)
    assert by_default.flops <= materialized.flops * (1 + 1e-9)
    if kv is None:
        for n in g.nodes:
            if n.op == "Attention":
                n.meta["tile"] = flash_attention_tile(n, t)
        tiled = estimate(g, t, companion=None, attention="materialized")
        assert tiled.time_s == pytest.approx(by_default.time_s, rel=1e-9)
        assert tiled.bytes == pytest.approx(by_default.bytes, rel=1e-9)
    att = [r for r in by_default.nodes if r.op == "Attention"]
    assert all(r.detail.get("tile") for r in att)


def test_attention_option_is_checked():
    with pytest.raises(Exception, match="attention must be 'flash' or 'materialized'"):
        estimate(attention_graph(64)[0], "h100", attention="paged")


def test_flash_traffic_grows_like_n2_d2_over_m_untiled_like_n2():
    def tr(n, block_q=128, resident=0.0):
        return attention_traffic(batch=1, q_heads=32, kv_heads=32, sq=n, skv=n, d=128, dv=128, elem=2,
                                 block_q=block_q, resident=resident)
    ns = (512, 2048, 8192, 32768)
    # above the tile: K and V re-read per Q block, quadratic in N with the d^2/M constant
    for a, b in zip(ns, ns[1:]):
        assert 8 < tr(b)["inner"] / tr(a)["inner"] < 16.5
    assert tr(8192, block_q=64)["inner"] > 1.8 * tr(8192)["inner"]   # bigger blocks (larger M): fewer bytes
    # device memory, with a level in between holding a head's K and V: linear in N
    for a, b in zip(ns, ns[1:]):
        assert tr(b, resident=50e6)["outer"] / tr(a, resident=50e6)["outer"] == pytest.approx(4, rel=1e-6)
    untiled = 4 * 32 * 32768 ** 2 * 2
    assert tr(32768, resident=50e6)["outer"] < untiled / 100


def test_gemm_traffic_falls_as_tiles_grow_until_they_do_not_fit():
    prev = None
    for t in (16, 32, 64, 128, 256):
        tr = gemm_traffic(4096, 4096, 4096, tm=t, tn=t, a_bytes=2, b_bytes=2, c_bytes=2)
        if prev is not None:
            assert tr["inner"] < prev
        prev = tr["inner"]
    fits = gemm_traffic(4096, 4096, 4096, tm=128, tn=128, a_bytes=2, b_bytes=2, c_bytes=2, resident=50 * 2 ** 20)
    spills = gemm_traffic(4096, 4096, 4096, tm=128, tn=128, a_bytes=2, b_bytes=2, c_bytes=2, resident=1 * 2 ** 20)
    assert fits["outer"] < spills["outer"]


def test_tile_record_levels_are_checked_against_the_target():
    g, n = attention_graph(1024)
    n.meta["tile"] = {"traffic": {"hbm": 1e6, "vmem": 1e6}}
    with pytest.raises(TargetError, match="vmem.*h100"):
        estimate(g, "h100")
    n.meta["tile"] = {"traffic": {"hbm": 1e6}, "footprint": {"smem": 10 * 2 ** 20}}
    with pytest.raises(TargetError, match="needs 10 MiB of smem"):
        estimate(g, "h100")
    n.meta["tile"] = {"traffic": {"hbm": -5}}
    with pytest.raises(IRError, match="traffic.hbm"):
        estimate(g, "h100")
    n.meta["tile"] = {"shape": {"q": 64}}
    with pytest.raises(IRError, match="'traffic'"):
        estimate(g, "h100")
    n.meta["tile"] = {"traffic": {"hbm": 2e6, "l2": 4e6, "smem": 8e6}}
    r = estimate(g, "h100").nodes[0]
    assert r.bytes == {"hbm": 2e6, "l2": 4e6, "smem": 8e6}


def test_tile_record_survives_the_text_form():
    from ridgeline.ir.parser import parse_graph as parse
    g, n = attention_graph(256)
    n.meta["tile"] = flash_attention_tile(n, get_target("h100"))
    back = parse(str(g))
    before, after = estimate(g, "h100"), estimate(back, "h100")
    assert after.time_s == pytest.approx(before.time_s)


def test_kv_cache_is_updated_in_place():
    g = models.build("llama-3-8b", phase="decode", context=4096)
    att = next(n for n in g if n.op == "Attention")
    w = node_work(att)
    new_rows = 2 * 8 * 1 * 128 * 2                       # K and V of one token, 8 KV heads
    assert sum(w.out_bytes[1:]) == new_rows
    past = sum(w.in_bytes[4:6])
    assert past == 2 * 8 * 4095 * 128 * 2
    # the same for a KV cache stored in fp8 inside a fused kernel
    g8 = models.build("llama-3-8b", phase="decode", context=4096, kv_dtype="fp8")
    f = next(n for n in g8 if n.op == "Fused" and any(b.op == "Attention" for b in n.body))
    w8 = node_work(f)
    assert sum(w8.out_bytes[1:]) == new_rows / 2
    assert w8.converts > 0                               # the kernel widens the cache it reads


def test_quantized_dtypes_set_bytes_and_precision():
    g = models.build("llama-3-8b", phase="decode", weight_dtype="int4")
    f = next(n for n in g if n.op == "Fused" and n.attr("kind") == "dequant-matmul")
    w = node_work(f)
    (c,) = w.contractions
    assert c.dtype == "bf16" and c.b_dtype == "i4" and c.b_weight
    assert c.b_prologue.converts == c.k * c.n           # each weight widened (per M-tile)
    k, n = c.k, c.n
    assert w.weight_bytes == k * n / 2 + (k // 128) * n * 2      # int4 + one bf16 scale per 128
    g8 = models.build("llama-3-8b", phase="prefill", context=64, dtype="int8")
    q = next(n for n in g8 if n.op == "Fused" and n.attr("kind") == "quant-matmul")
    (c8,) = node_work(q).contractions
    assert c8.dtype == "i8" and not c8.a_prologue and not c8.b_prologue   # consumed natively


def test_onnx_quantization_ops_are_priced_as_the_kernels_they_are():
    g = Graph("q")
    a = g.add_input("a", tensor("u8", 512, 4096))
    s = g.add_constant("s", np.array(0.05, np.float32))
    za = g.add_constant("za", np.array(128, np.uint8))
    b = g.add_constant("b", type=tensor("i8", 4096, 1024))
    zb = g.add_constant("zb", np.array(0, np.int8))
    qmm = g.add_node("QLinearMatMul", [a, s, za, b, s, zb, s, za])
    (c,) = node_work(qmm).contractions
    assert (c.m, c.n, c.k, c.b_weight) == (512, 1024, 4096, True)      # operands 0 and 3, not the scales
    assert estimate_node(g, qmm, "h100").unit == "tensor_core:i8"
    mmi = g.add_node("MatMulInteger", [a, b])
    assert node_work(mmi).contractions[0].dtype in ("u8", "i8")
    # weight-only int4 written with ONNX's blocked DequantizeLinear inside a fused kernel
    f = Graph("f")
    x = f.add_input("x", tensor("f16", 1, 4096))
    w = f.add_constant("w", type=tensor("i4", 4096, 1024))
    sc = f.add_constant("sc", type=tensor("f16", 32, 1024))
    body = Graph("body")
    bx, bw, bs = body.add_input("x", x.type), body.add_input("w", w.type), body.add_input("s", sc.type)
    dq = body.add_node("DequantizeLinear", [bw, bs], {"axis": 0, "block_size": 128}).outputs[0]
    body.outputs = [body.add_node("MatMul", [bx, dq]).outputs[0]]
    fused = f.add_node("Fused", [x, w, sc], {"kind": "dequant-matmul"}, body=body)
    (c4,) = node_work(fused).contractions
    assert c4.dtype == "f16" and c4.b_dtype == "i4" and c4.b_weight
    assert c4.b_prologue.converts == 4096 * 1024
    assert node_work(fused).weight_bytes == 4096 * 1024 / 2 + 32 * 1024 * 2


def estimate_node(g, node, target):
    g.outputs = [node.outputs[0]]
    return next(r for r in estimate(g, target).nodes if r.name == node.outputs[0].name)


@settings(max_examples=20, deadline=None, phases=[Phase.generate])
@given(st.lists(st.floats(-4, 4, width=32), min_size=1, max_size=200),
       st.sampled_from(["float32", "float16", "int64"]))
def test_work_key_reads_array_attributes_by_content(values, dtype):
    """Equal arrays give one key, a changed element another (small arrays by bytes, large ones by
    digest); never the array's ``id()``, which a later array reuses once this one is collected."""
    from types import SimpleNamespace

    from ridgeline.cost_models.work import _attrs_key, work_key

    a = np.array(values, dtype)
    changed = a.copy()
    changed[-1] = changed[-1] + 1 if dtype == "int64" else -changed[-1] - 1
    assert _attrs_key(SimpleNamespace(attrs={"value": a})) == _attrs_key(SimpleNamespace(attrs={"value": a.copy()}))
    assert _attrs_key(SimpleNamespace(attrs={"value": changed})) != _attrs_key(SimpleNamespace(attrs={"value": a}))

    def node(arr):  # and through a real node's key
        g = Graph("c")
        return g.add_node("ConstantOfShape", [g.add_input("shape", tensor("i64", 2))], {"value": arr[-1:]}, outputs=1)
    assert work_key(node(a)) == work_key(node(a.copy())) != work_key(node(changed))
