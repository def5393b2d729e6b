"""The llvm kernels' prefill blocking — GEMM row/column blocks split evenly, attention's blocks of
positions per task over aligned key blocks — against numpy at 1 and 2 threads, over drawn sizes
past the micro-tile, the K slice, the key block and the vector width."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

pytest.importorskip("llvmlite")

from cases import biased_attention

from ridgeline.backends.registry import get_backend
from ridgeline.ir import Builder, Graph, tensor

_CI = settings(max_examples=4, deadline=None, derandomize=True, database=None, phases=[Phase.generate],
               suppress_health_check=list(HealthCheck))


def _check(g: Graph, feeds: dict | list[dict], threads: int, rtol: float) -> None:
    ref, exe = get_backend("numpy").compile(g), get_backend("llvm").compile(g, strict=True, threads=threads)
    for f in feeds if isinstance(feeds, list) else [feeds]:
        got = exe.run(f)
        for name, w in ref.run(f).items():
            np.testing.assert_allclose(got[name], w, rtol=rtol, atol=rtol, err_msg=name)


@settings(_CI, max_examples=8)
@given(m=st.integers(1, 300), k=st.sampled_from([7, 64, 513, 576, 700, 1100]), n=st.integers(1, 400),
       threads=st.integers(1, 4), epi=st.booleans())
def test_gemm_blocks_match_numpy(monkeypatch, m, k, n, threads, epi):
    """Decode and prefill rows, K in one slice or several of even depth, tasks cut for a host of 1-4
    cores (run on as many as this one has)."""
    import dataclasses

    from ridgeline.backends.llvm import gemm
    from ridgeline.backends.threads import available_cores
    monkeypatch.setattr(gemm, "host", lambda h=dataclasses.replace(gemm.host(), cores=threads): h)
    rng = np.random.default_rng(m * 7 + n)
    g = Graph("mm")
    x = g.add_input("x", tensor("f32", m, k))
    y = Builder(g).MatMul(x, g.add_constant("w", rng.standard_normal((k, n)).astype(np.float32)))
    if epi:   # a fused bias epilogue, applied at the last K slice of every block
        y = Builder(g).Add(y, g.add_constant("b", rng.standard_normal(n).astype(np.float32)))
    g.outputs = [y]
    from ridgeline import api
    g = api.optimize(g, "default")
    _check(g, {"x": rng.standard_normal((m, k)).astype(np.float32)}, min(threads, available_cores()), 2e-4)


@_CI
@given(sq=st.integers(2, 150), hkv=st.integers(1, 3), group=st.sampled_from([1, 3, 4]),
       d=st.sampled_from([8, 40, 64]), past=st.sampled_from([0, 0, 37]), mask=st.sampled_from(["causal", "additive", "window"]),
       threads=st.sampled_from([1, 2]))
def test_prefill_attention_matches_numpy(sq, hkv, group, d, past, mask, threads):
    """Causal rows (unequal work per position), an additive causal mask with padding (by -inf, and
    by float32's minimum as transformers writes it: rows with every key masked then average them
    all), a sliding window; GQA; head dims below, at and not a multiple of the vector width; a KV cache."""
    rng = np.random.default_rng(sq * 31 + d)
    g = Graph("attn")
    b = Builder(g)
    hq, t = hkv * group, past + sq
    q = g.add_input("q", tensor("f32", 1, hq, sq, d))
    k, v = (g.add_input(n, tensor("f32", 1, hkv, sq, d)) for n in "kv")
    bias = g.add_input("bias", tensor("f32", 1, 1, sq, t)) if mask == "additive" else None
    pk, pv = ((g.add_input(n, tensor("f32", 1, hkv, past, d)) for n in ("pk", "pv")) if past else (None, None))
    attrs = {"is_causal": int(mask != "additive")}
    if mask == "window":
        attrs["left_window_size"] = 20
    out = b.Attention(q, k, v, bias, pk, pv, _outputs=3 if past else 1, **attrs)
    g.outputs = list(out) if isinstance(out, tuple) else [out]
    feeds = {p.name: rng.standard_normal(p.type.shape).astype(np.float32) for p in g.inputs}
    runs = [feeds]
    if bias is not None:   # causal, and the first 3 keys padded away
        runs = []
        for fill in (-np.inf, np.finfo(np.float32).min):
            m = np.triu(np.full((sq, t), fill, np.float32), past + 1)
            m[:, :3] = fill
            runs.append({**feeds, "bias": m[None, None]})
    _check(g, runs, threads, 1e-4)


@pytest.mark.parametrize("form", ["tied", "gemm", "gemm_t", "batched", "broadcast"])
@settings(_CI, max_examples=2)
@given(m=st.integers(1, 200), k=st.sampled_from([5, 64, 577]), n=st.integers(1, 300),
       tail=st.sampled_from(["none", "residual", "silu_gate", "gelu"]), threads=st.sampled_from([1, 2]))
def test_gemm_forms_match_numpy(form, m, k, n, tail, threads):
    """The other ways exports reach the GEMM — a tied weight read through its transpose, Gemm
    (transB, alpha, beta, a broadcast C), batched and broadcast products — with the epilogues the
    fusion passes put after it (a residual read per row, SiLU(gate)·up, bias + GELU)."""
    rng = np.random.default_rng(m * 1009 + k * 7 + n)
    g = Graph("forms")
    b = Builder(g)
    feeds: dict = {}

    def arg(name, *shape):
        feeds[name] = rng.standard_normal(shape).astype(np.float32)
        return g.add_input(name, tensor("f32", *shape))

    w = rng.standard_normal((k, n)).astype(np.float32)
    if form in ("gemm", "gemm_t"):
        c = arg("c", *[(n,), (1, n), (m, 1), (m, n)][(m + n) % 4])
        y = b.Gemm(arg("x", m, k), g.add_constant("w", np.ascontiguousarray(w.T) if form == "gemm_t" else w), c,
                   transB=int(form == "gemm_t"), alpha=0.5, beta=2.0)
    elif form == "tied":   # an embedding [N, K] used as the LM head: a transposed view of one array
        y = b.MatMul(arg("x", 2, m, k), g.add_constant("w", np.ascontiguousarray(w.T).T))
    elif form == "batched":
        y = b.MatMul(arg("x", 2, m, k), arg("wb", 2, k, n))
    else:
        y = b.MatMul(arg("x", 2, 1, m, k), arg("wb", 3, k, n))
    shape = tuple(y.type.shape)
    if tail == "residual":
        y = b.Add(arg("r", *shape), y)
    elif tail == "silu_gate":
        y = b.Mul(b.Mul(y, b.Sigmoid(y)), arg("u", *shape))
    elif tail == "gelu":
        y = b.Add(y, g.add_constant("bias", rng.standard_normal(n).astype(np.float32)))
        y = b.Mul(b.Mul(y, g.add_constant("half", np.float32(0.5))),
                  b.Add(b.Erf(b.Mul(y, g.add_constant("r2", np.float32(0.70710678)))), g.add_constant("one", np.float32(1))))
    g.outputs = [y]
    from ridgeline import api
    want = get_backend("numpy").compile(g).run(feeds)
    # Gemm as exported (the default pipeline rewrites it to MatMul + Add); the rest fused as users run it
    g2 = g if form.startswith("gemm") else api.optimize(g, "default")
    got = get_backend("llvm").compile(g2, strict=True, threads=threads).run(feeds)
    for name, v in want.items():
        np.testing.assert_allclose(got[name], v, rtol=3e-4, atol=3e-4 * np.sqrt(k), err_msg=name)


@pytest.mark.parametrize("past", [0, 5])
@pytest.mark.parametrize("threads", [1, 2])
def test_prefill_additive_mask_rows_match_numpy(past, threads):
    """The additive mask's trim over rows it must not empty or widen wrongly: a row of float32's
    minimum (averages every key), a row of -inf (zeros), -inf and float32's minimum mixed (averages
    the finite ones), -1e30 ends around one -1e29 key (that key alone); per batch entry, shared by
    3 query heads of a KV head; a head dim past the vector width."""
    rng = np.random.default_rng(past + 7)
    sq, d, t = 23, 33, past + 23
    g, feeds = biased_attention(rng, 2, 6, 2, sq, d, past)
    m = rng.standard_normal((2, 1, sq, t)).astype(np.float32)
    m[..., 20:] = -np.inf   # finite rows with a masked tail
    fmin = np.finfo(np.float32).min
    for bb, r in ((0, 0), (1, 9)):   # the special rows at other positions per batch entry
        m[bb, 0, r] = fmin
        m[bb, 0, r + 1] = -np.inf
        m[bb, 0, r + 2] = np.where(np.arange(t) % 3 == 1, fmin, -np.inf)
        m[bb, 0, r + 3] = -1e30
        m[bb, 0, r + 3, t // 2] = -1e29
    _check(g, {**feeds, "bias": m}, threads, 1e-4)


def _cut(monkeypatch, m: int, k: int, n: int, cores: int, bits: int):
    """The GEMM lowering of an (m x k) @ (k x n) product on a host of ``cores`` cores and ``bits``-bit
    vectors, and its tasks' sizes in rows x column strips, in launch order."""
    import dataclasses

    from ridgeline.backends.llvm import gemm
    monkeypatch.setattr(gemm, "host", lambda h=dataclasses.replace(gemm.host(), cores=cores, vector_bits=bits): h)
    g = Graph("mm")
    Builder(g).MatMul(g.add_input("x", tensor("f32", m, k)), g.add_input("w", tensor("f32", k, n)))
    lw = gemm.GemmLowering(g.nodes[0], [(m, k), (k, n)], {})
    cols, per = -(-n // lw.nr), lw.nc // lw.nr
    rows = [min(lw.mc, m - i) for i in range(0, m, lw.mc)]
    return lw, rows, cols, [r * min(per, cols - j) for r in rows for j in range(0, cols, per)]


@settings(_CI, max_examples=300)
@given(m=st.integers(1, 300), k=st.integers(1, 5000), n=st.integers(1, 6000), cores=st.integers(1, 4),
       bits=st.sampled_from([256, 512]))
def test_gemm_partition_even_over_cores_and_k(monkeypatch, m, k, n, cores, bits):
    """How a product is cut, on a host of ``cores`` cores: K slices differ in depth by under one
    step per slice (K 576 ran 512 + 64); the column strips per task keep at least 4 tasks a core
    for decode rows where there are strips enough; and where the tasks can split evenly (one row
    block, strips a multiple of the cores, few enough to claim one by one), the cores claiming the
    runner's chunks each finish exactly their share (2432 columns ran as 10 tasks in 8 chunks)."""
    from ridgeline.backends.llvm.parallel import EVEN_UNITS, finish
    lw, rows, cols, sizes = _cut(monkeypatch, m, k, n, cores, bits)
    slices = -(-k // lw.kc)
    assert lw.kc - (k - (slices - 1) * lw.kc) < slices
    assert len(sizes) == lw.tasks
    if m < 8:
        assert lw.tasks >= min(cols, 4 * cores) // 2
    if len(rows) == 1 and cols % cores == 0 and cols <= EVEN_UNITS:
        assert finish(sizes, cores) == sum(sizes) / cores, (lw.tasks, cols)


@settings(_CI, max_examples=60)
@given(m=st.integers(1, 7), k=st.integers(1, 3000), share=st.integers(1, 15), cores=st.integers(1, 4),
       bits=st.sampled_from([256, 512]))
def test_gemm_decode_strips_narrowed_to_split_evenly(monkeypatch, m, k, share, cores, bits):
    """Decode rows over columns that the narrowest strips (2 vectors) cut into ``share`` a core, under
    16 (one strip more on one core would cost over 1/16): the strips are narrowed until the tasks
    split evenly (SmolLM2's 576 columns at 2 cores and 512-bit vectors ran 9 strips, 5 : 4)."""
    from ridgeline.backends.llvm.parallel import finish
    _, _, _, sizes = _cut(monkeypatch, m, k, share * cores * 2 * bits // 32, cores, bits)
    assert finish(sizes, cores) == sum(sizes) / cores, sizes
