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
    small = estimate(_gemm(32, 32, 32), host).nodes[0]   # 12 KiB + 65 kFLOP: below the split threshold
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


def _host_with(tmp_path, overheads: str):
    from ridgeline.cost_models.targets import load_target_file
    import ridgeline
    from pathlib import Path
    text = (Path(ridgeline.__file__).parent / "cost_models" / "targets" / "host-cpu.toml").read_text()
    text = text.replace('name = "host-cpu"', 'name = "my-host"')
    head, rest = text.split("[overheads]\n", 1)
    tail = rest[rest.index("\n["):] if "\n[" in rest else ""
    path = tmp_path / "my-host.toml"
    path.write_text(head + "[overheads]\n" + overheads + "\n" + tail)
    return load_target_file(path)


def test_runtime_fixed_costs_land_where_the_runtime_pays_them(tmp_path):
    g = Graph("g")
    x = g.add_input("x", tensor("f32", 4, 8))
    shape = g.add_constant("s", __import__("numpy").array([8, 4], "int64"))
    r = g.add_node("Reshape", [x, shape]).outputs[0]          # a view: no kernel
    small = g.add_node("Neg", [r]).outputs[0]                 # one core
    big_in = g.add_input("y", tensor("f32", 1 << 20))
    big = g.add_node("Neg", [big_in]).outputs[0]              # 8 MiB touched: split across the cores
    g.outputs = [small, big]
    plain = estimate(g, _host_with(tmp_path, 'kernel = "5 us"'))
    host = _host_with(tmp_path, 'kernel = "5 us"\nnode = "2 us"\nrun = "30 us"\nparallel = "20 us"')
    e = estimate(g, host)
    by_op = {(n.op, n.detail.get("cores")): n for n in e.nodes}
    base = {(n.op, n.detail.get("cores")): n for n in plain.nodes}
    assert by_op[("Reshape", None)].time_s == pytest.approx(2e-6)
    assert by_op[("Neg", 1)].time_s == pytest.approx(base[("Neg", 1)].time_s)
    assert by_op[("Neg", 2)].time_s - base[("Neg", 2)].time_s == pytest.approx(20e-6)
    run = [n for n in e.nodes if n.op == "run"]
    assert len(run) == 1 and run[0].time_s == pytest.approx(30e-6)
    assert e.time_s - plain.time_s == pytest.approx(2e-6 + 20e-6 + 30e-6)


def _attention_graph(s: int, d: int) -> Graph:
    g = Graph("att")
    q = g.add_input("q", tensor("f32", 1, 4, s, d))
    g.outputs = [g.add_node("Attention", [q, q, q]).outputs[0]]
    return g


def test_measured_op_dispatch_and_attention_per_score(tmp_path):
    host = _host_with(tmp_path, 'kernel = "5 us"\nops = { Attention = "20 us", MatMul = "7 us" }')
    e = estimate(_gemm(4, 8, 8), host)
    assert e.nodes[0].overhead_s == pytest.approx(7e-6)
    a = estimate(_attention_graph(16, 8), host).nodes[0]
    assert a.overhead_s == pytest.approx(20e-6)
    text = (tmp_path / "my-host.toml").read_text().replace(
        "[array]\n", '[array]\nattention_score = "2 ns"\nattention_channel = "0.05 ns"\n')
    (tmp_path / "my-host.toml").write_text(text)
    from ridgeline.cost_models.targets import load_target_file
    timed = load_target_file(tmp_path / "my-host.toml")
    for s, d in ((64, 8), (128, 64)):
        r = estimate(_attention_graph(s, d), timed).nodes[0]
        assert r.compute_s == pytest.approx(4 * s * s * (2e-9 + 0.05e-9 * 2 * d), rel=1e-6)


def test_a_gemm_of_one_task_runs_on_one_core():
    host = get_target("host-cpu")
    one = estimate(_gemm(32, 256, 32), host).nodes[0]        # 0.5 MFLOP but one 64 x 256 task
    two = estimate(_gemm(128, 256, 32), host).nodes[0]       # two tasks
    gemv = estimate(_gemm(1, 4096, 64), host).nodes[0]        # a row: split by columns
    assert one.detail["cores"] == 1 and two.detail["cores"] == 2 and gemv.detail["cores"] == 2


def test_an_embedding_gather_reads_the_rows_it_selects_not_the_table():
    g = Graph("emb")
    ids = g.add_input("ids", tensor("i64", 1, 1))
    table = g.add_constant("wte", type=tensor("f32", 50257, 768))
    g.outputs = [g.add_node("Gather", [ids, table][::-1]).outputs[0]]
    r = estimate(g, "host-cpu").nodes[0]
    assert sum(r.bytes.values()) < 10 * 768 * 4          # one row (plus the index), not 154 MB


def test_a_gemm_task_that_is_not_rows_by_columns_is_refused(tmp_path):
    from ridgeline.cost_models.targets import load_target_file
    from ridgeline.ir.errors import TargetError
    _host_with(tmp_path, 'kernel = "5 us"')
    path = tmp_path / "my-host.toml"
    text = path.read_text()
    assert "gemm_task = [96, 256]" in text
    path.write_text(text.replace("gemm_task = [96, 256]", "gemm_task = [64]", 1))
    with pytest.raises(TargetError, match=r"gemm_task must be \[rows, columns\]"):
        estimate(_gemm(4, 8, 8), load_target_file(path))


def test_the_gemm_figures_are_the_llvm_backends():
    # cost_models cannot import backends: the family's defaults and the packaged host file state
    # the llvm GEMM's micro-tile, task and skinny-path figures, and must follow them when they change
    pytest.importorskip("llvmlite")
    from ridgeline.backends.llvm import gemm, quant_gemv
    from ridgeline.cost_models.families.cpu import CpuModel
    mr = gemm.TILE_512[0]
    want = {"gemm_rows": mr, "gemm_task": (gemm.BLOCKS_SMALL_L2[1] // mr * mr, 256), "skinny_rows": 8,
            "packed_rows": quant_gemv.MAX_ROWS}
    arr = CpuModel.schema["array"]
    assert {k: (tuple(arr[k].default) if k == "gemm_task" else arr[k].default) for k in want} == want
    host = get_target("host-cpu").array
    assert {k: (tuple(host[k]) if k == "gemm_task" else host[k]) for k in want} == want
    import inspect
    assert "if m < 8 else" in inspect.getsource(gemm.GemmLowering)       # the skinny path's threshold


@pytest.mark.parametrize("m", [1, 2, 5, 7, 8, 13, 32, 61])
def test_skinny_products_are_not_padded_tiled_ones_are(m):
    r = estimate(_gemm(m, 512, 256), "host-cpu").nodes[0]
    rows = m if m < 8 else -(-m // 6) * 6
    peak = get_target("host-cpu").peak("f32") * get_target("host-cpu").efficiency["matrix"]
    cores = r.detail["cores"]
    assert r.compute_s == pytest.approx(2.0 * rows * 512 * 256 / (peak * cores / 2), rel=1e-6)


@pytest.mark.parametrize(("batch", "wd"), [(3, "int4"), (8, "int8"), (16, "int4"), (24, "int4")])
def test_weight_only_products_of_few_rows_run_the_packed_gemv(batch, wd):
    # up to packed_rows rows: every row unpadded and each weight dequantized once, in the kernel's
    # loop (the matrix efficiency); more rows: the tiled GEMM (padded to gemm_rows) after a
    # separate dequantization pass at the element-wise efficiency
    host = get_target("host-cpu")
    g = models.build("gpt2", phase="decode", batch=batch, context=64, weight_dtype=wd)
    est = estimate(g, host, companion=None)
    rec = next(r for r in est.nodes if r.detail.get("kind") == "dequant-matmul" and "mlp" in r.name)
    node = next(n for n in g.nodes if n.name == rec.name or n.attr("label") == rec.name)
    from ridgeline.cost_models.work import shared_work
    w = shared_work(node)
    c = w.contractions[0]
    packed = batch <= host.array["packed_rows"]
    rows = batch if packed or batch < host.array["skinny_rows"] else -(-batch // 6) * 6
    share = rec.detail["cores"] / host.array["cores"]
    mat = host.best_unit(c.dtype, ("matrix",))
    vec = host.best_unit("f32", ("vector",))
    pro = c.b_prologue.flops + c.b_prologue.converts
    want = 2.0 * rows * c.n * c.k / (mat[0].peak[mat[1]] * host.efficiency["matrix"] * share) \
        + pro / (vec[0].peak[vec[1]] * host.efficiency["matrix" if packed else "vector"] * share) \
        + (w.vector_flops + w.converts) / (vec[0].peak[vec[1]] * host.efficiency["vector"] * share)   # epilogue
    assert c.m == batch and pro == pytest.approx(2.0 * c.n * c.k, rel=0.01)   # once per weight, not per row
    assert rec.compute_s == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize("dtype", ["fp16", "fp8"])
def test_a_dtype_the_simd_units_lack_runs_and_is_bounded_at_f32(dtype):
    # no f16/fp8 FMA on the host: widened to f32 (never to bf16, which has fewer significant bits);
    # MFU's peak and the note follow what the family runs, so the roofline invariant compares like with like
    host = get_target("host-cpu")
    g = models.build("gpt2", phase="prefill", prompt=64, dtype=dtype)
    est = estimate(g, host, companion=None)
    assert est.peak_flop_per_s == host.peak("f32")
    assert any("as f32" in n for n in est.notes)
    # the products in the narrow dtype (fp16 GEMMs, fp8 W8A8 kernels; attention runs in its own dtype)
    mm = [r for r in est.nodes if r.detail.get("kind") == "quant-matmul" or (dtype == "fp16" and r.unit.startswith("fma"))]
    assert mm and all(r.unit == "fma:f32" for r in mm)
