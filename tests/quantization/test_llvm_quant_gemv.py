"""The llvm backend's packed int4/int8 GEMV (``backends/llvm/quant_gemv.py``) computes what the
numpy reference computes, in checked mode (bounds-checked loads), over generated shapes: K and N
not multiples of the group, a short last group, per-channel and grouped, signed and zero-point
codes, 1–4 rows."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ridgeline as rl
from ridgeline.ir import Graph, tensor
from ridgeline.passes.transforms.quantize import quantize_graph
from ridgeline.testing.differential import check_backend

SCHEMES = ("int4", "int4-asym", "int4-zp", "int8", "int8-asym", "int8-zp", "w4a16")


def _quant_gemv(rows, lead, k, n, scheme, group, seed) -> Graph:
    rng = np.random.default_rng(seed)
    g = Graph("qgemv")
    shape = (lead, rows, k) if lead else (rows, k)
    x = g.add_input("x", tensor("f32", *shape))
    w = g.add_constant("w", (rng.standard_normal((k, n)) * rng.uniform(0.1, 3, n)).astype(np.float32))
    g.outputs = list(g.add_node("MatMul", [x, w], names=["y"]).outputs)
    quantize_graph(g, scheme, group=group if scheme != "w4a16" else 0)
    return g


@st.composite
def quant_gemvs(draw) -> Graph:
    return _quant_gemv(draw(st.integers(1, 4)), draw(st.sampled_from([0, 0, 1])), draw(st.integers(1, 160)),
                       draw(st.integers(1, 40)), draw(st.sampled_from(SCHEMES)),
                       draw(st.sampled_from([0, 7, 16, 24, 32, 128])), draw(st.integers(0, 2**16)))


def test_packed_gemv_matches_the_reference_checked(monkeypatch):
    monkeypatch.setenv("RIDGELINE_LLVM_CHECKED", "1")
    # atol/rtol: the oracle holds a dequant-matmul kernel to 8 ulp of its output, not of Σ|x|·|w|
    # as it does a MatMul, so any other summation order than the reference's float32 one fails
    # on cancelling sums; a wrong code, scale or zero point moves outputs by ~0.1-1
    report = check_backend("llvm", quant_gemvs(), options={"strict": True}, rtol=1e-5, atol=1e-4,
                           settings=settings(max_examples=8, deadline=None, database=None,
                                             suppress_health_check=list(HealthCheck)))
    assert report.compared >= 6, report


@pytest.mark.parametrize("scheme,group", [("int4-asym", 32), ("int4-zp", 32), ("int8-asym", 0), ("int8", 0), ("int4", 24)])
def test_the_packed_kernel_runs_not_a_folded_float_weight(scheme, group):
    g = _quant_gemv(1, 0, 96, 20, scheme, group, 1)
    exe = rl.compile(g, backend="llvm", pipeline="")
    x = np.random.default_rng(2).standard_normal((1, 96)).astype(np.float32)
    exe.run({"x": x})
    assert list(exe.plan.kinds.values()) == ["quantgemv"]
    assert not exe.plan.folded          # the weight is never dequantized to float32


def test_many_rows_go_to_the_float_gemm():
    g = _quant_gemv(64, 0, 48, 16, "int4-asym", 16, 3)
    exe = rl.compile(g, backend="llvm", pipeline="")
    x = np.random.default_rng(2).standard_normal((64, 48)).astype(np.float32)
    np.testing.assert_allclose(exe.run({"x": x})["y"], rl.compile(g, pipeline="").run({"x": x})["y"],
                               rtol=1e-5, atol=1e-4)
    assert "quantgemv" not in exe.plan.kinds.values()


@settings(max_examples=3, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(rows=st.integers(1, 4), k=st.integers(1, 200), n=st.integers(17, 300), scheme=st.sampled_from(SCHEMES),
       group=st.sampled_from([0, 7, 16, 24, 32, 128]), seed=st.integers(0, 2**16))
def test_packed_gemv_is_bitwise_the_same_on_any_thread_count(rows, k, n, scheme, group, seed):
    # N split across threads in fixed chunks: each output is summed by one thread in one order
    g = _quant_gemv(rows, 0, k, n, scheme, group, seed)
    x = np.random.default_rng(seed).standard_normal((rows, k)).astype(np.float32)
    runs = []
    for threads in (1, 2):
        exe = rl.compile(g, backend="llvm", pipeline="", threads=threads, parallel_threshold=0)
        assert list(exe.plan.kinds.values()) == ["quantgemv"]
        runs += [exe.run({"x": x})["y"], exe.run({"x": x})["y"]]
    for r in runs[1:]:
        np.testing.assert_array_equal(r, runs[0])


def test_an_offset_gathered_otherwise_than_k_by_group_is_not_taken_for_one():
    # the packed kernel reads Add(DequantizeLinear, Gather(m, idx)) as a per-group offset only when
    # idx is k // group; with other indices it must compute what the graph says
    g = _quant_gemv(1, 0, 96, 20, "int4-asym", 32, 1)
    (fused,) = g.nodes
    body = fused.body
    idx = next(node for node in body.nodes if node.op == "Gather").inputs[1]
    idx.replace_all_uses_with(body.add_constant("idx_flipped", np.ascontiguousarray(np.asarray(idx.data)[::-1])))
    x = np.random.default_rng(2).standard_normal((1, 96)).astype(np.float32)
    want = rl.compile(g, pipeline="").run({"x": x})["y"]
    np.testing.assert_allclose(rl.compile(g, backend="llvm", pipeline="").run({"x": x})["y"], want,
                               rtol=1e-5, atol=1e-4)
