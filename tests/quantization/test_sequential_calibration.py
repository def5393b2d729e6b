"""Calibrated methods run sequentially: each GEMM is calibrated on the activations the already
quantized GEMMs before it produce (GPTQ's and AutoGPTQ's order), not the fp32 model's."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ridgeline as rl
from ridgeline.backends.numpy import Interpreter
from ridgeline.ir import Graph, tensor
from ridgeline.ir.errors import PassError
from ridgeline.passes.transforms import quantize_calibrated
from ridgeline.passes.transforms.quantize import quantize_graph
from ridgeline.passes.transforms.quantize_methods import gptq, gptq_factor, roundtrip
from ridgeline.passes.transforms.quantize_schemes import parse_scheme

EVAL = rl.api.reference_evaluator()


def _chain(rows: int, k: int, h: int, n: int, seed: int) -> tuple[Graph, dict]:
    rng = np.random.default_rng(seed)
    g = Graph("chain")
    x = g.add_input("x", tensor("f32", rows, k))
    w1 = g.add_constant("w1", rng.standard_normal((k, h)).astype(np.float32))
    w2 = g.add_constant("w2", rng.standard_normal((h, n)).astype(np.float32))
    a = g.add_node("MatMul", [x, w1], names=["a"]).outputs[0]
    r = g.add_node("Relu", [a], names=["r"]).outputs[0]
    g.outputs = list(g.add_node("MatMul", [r, w2], names=["y"]).outputs)
    feeds = {"x": (rng.standard_normal((rows, k)) * rng.uniform(0.1, 4, k)).astype(np.float32)}
    return g, feeds


@settings(max_examples=8, deadline=None)
@given(k=st.integers(8, 48), h=st.integers(8, 48), n=st.integers(1, 24), group=st.sampled_from([0, 8, 12]),
       seed=st.integers(0, 2**16))
def test_second_gemm_sees_the_quantized_first(k, h, n, group, seed):
    g, feeds = _chain(64, k, h, n, seed)
    w1 = np.asarray(g.constants["w1"].data, np.float64)
    seen = []

    def spy(hessian, **kw):
        seen.append(np.array(hessian))
        return gptq_factor(hessian, **kw)
    scheme = f"int4-asym-g{group}" if group else "int4-asym"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(quantize_calibrated, "gptq_factor", spy)
        quantize_graph(g, scheme, method="gptq", samples=[feeds], evaluator=EVAL)
    assert len(seen) == 2
    x = feeds["x"].astype(np.float64)
    np.testing.assert_allclose(seen[0], x.T @ x, rtol=1e-9, atol=1e-9)
    # the first GEMM's weight as GPTQ rounded it: what the quantized model computes
    w1q = gptq(w1, seen[0], parse_scheme(scheme), np.dtype(np.float32))[2]
    r_q = np.maximum(x.astype(np.float32) @ w1q.astype(np.float32), 0).astype(np.float64)
    r_fp = np.maximum(x @ w1, 0)
    np.testing.assert_allclose(seen[1], r_q.T @ r_q, rtol=1e-4, atol=1e-4 * float(np.abs(r_q.T @ r_q).max()))
    assert np.abs(seen[1] - r_fp.T @ r_fp).max() > 10 * np.abs(seen[1] - r_q.T @ r_q).max()


@settings(max_examples=6, deadline=None)
@given(k=st.integers(16, 64), n=st.integers(4, 32), group=st.sampled_from([0, 16, 24]), seed=st.integers(0, 2**16))
def test_act_order_gptq_stays_on_the_stored_grid_and_beats_rounding(k, n, group, seed):
    """desc_act with static groups: the adjusted weight is exactly what quantize stores (codes ×
    the fixed scales), and its output error on the calibration rows is below plain rounding's."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((4 * k, k)) * rng.uniform(0.05, 5, k)
    w = rng.standard_normal((k, n))
    sch = parse_scheme(f"int4-g{group}" if group else "int4")
    s, z, wq = gptq(w, x.T @ x, sch, np.dtype(np.float32), act_order=True)
    assert z is None
    blk = group if group and group < k else k
    scale = np.repeat(s.reshape(-1, n) if s.ndim == 2 else s.reshape(1, n), blk, axis=0)[:k].astype(np.float64)
    codes = wq / scale
    np.testing.assert_allclose(codes, np.rint(codes), atol=1e-6)
    assert np.abs(np.rint(codes)).max() <= 8
    err = lambda v: float(np.square(x @ (v - w)).sum())
    assert err(wq) < err(roundtrip(w, sch, np.dtype(np.float32)))


def test_awq_sequential_output_matches_its_walk():
    """AWQ folds its scales after the walk; the quantized graph computes what the walk assumed."""
    g, feeds = _chain(32, 24, 32, 8, 7)
    ref = Interpreter(g).run(feeds)["y"]
    quantize_graph(g, "int4-asym-g8", method="awq", samples=[feeds], evaluator=EVAL)
    out = Interpreter(g).run(feeds)["y"]
    rel = np.abs(out - ref).max() / np.abs(ref).max()
    assert 0 < rel < 0.2


def test_damp_reaches_gptq_through_the_pass_and_is_checked():
    g, feeds = _chain(32, 16, 16, 8, 0)
    seen = []

    def spy(hessian, **kw):
        seen.append(kw.get("damp"))
        return gptq_factor(hessian, **kw)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(quantize_calibrated, "gptq_factor", spy)
        quantize_graph(g, "int4-asym", method="gptq", samples=[feeds], evaluator=EVAL, damp=0.1)
    assert seen == [0.1, 0.1]
    with pytest.raises(PassError, match="damp"):
        quantize_graph(_chain(32, 16, 16, 8, 0)[0], "int4", method="gptq", samples=[feeds], evaluator=EVAL, damp=0)


@settings(max_examples=12, deadline=None)
@given(k=st.integers(2, 96), rows=st.integers(1, 128), damp=st.sampled_from([0.001, 0.01, 0.1, 1.0]),
       act_order=st.booleans(), seed=st.integers(0, 2**16))
def test_gptq_factor_is_the_upper_cholesky_factor_of_the_inverse_hessian(k, rows, damp, act_order, seed):
    """GPTQ walks ``U`` with ``UᵀU = H⁻¹`` (H dampened, permuted to the walk order, dead channels
    set to 1), ``U`` upper triangular with a positive diagonal — numpy's inverse and Cholesky of
    the same matrix, also when fewer rows than channels leave ``XᵀX`` singular."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, k)) * rng.uniform(0.05, 5, k)
    x[:, rng.random(k) < 0.1] = 0.0                 # dead channels
    h = x.T @ x
    dead, perm, u = gptq_factor(h, damp=damp, act_order=act_order)
    want = h.copy()
    want[dead, dead] = 1.0
    want[np.diag_indices(k)] += damp * np.mean(np.diag(want))
    want = want[np.ix_(perm, perm)]
    np.testing.assert_array_equal(dead, np.diag(h) <= 0)
    assert sorted(perm) == list(range(k))
    if act_order:
        assert np.all(np.diff(np.diag(want)) <= 0)
    np.testing.assert_array_equal(u, np.triu(u))
    assert np.all(np.diag(u) > 0)
    np.testing.assert_allclose(u, np.linalg.cholesky(np.linalg.inv(want)).T, rtol=1e-6,
                               atol=1e-9 * float(np.abs(u).max()))


def test_the_walk_ends_at_the_last_gemm_it_calibrates():
    """Nodes from the last quantized GEMM on (a head kept in full precision, or the head itself)
    change no calibration statistic, so the sequential walk does not evaluate them."""
    def headed():
        g, feeds = _chain(32, 16, 16, 8, 3)
        head = g.add_constant("head", np.ones((8, 64), np.float32))
        g.outputs = list(g.add_node("MatMul", [g.outputs[0], head], names=["logits"]).outputs)
        return g, feeds
    ran = []

    def spy(node, args):
        ran.append(node.outputs[0].name)
        return EVAL(node, args)
    g, feeds = headed()
    summary = quantize_graph(g, "int8", method="gptq", samples=[feeds], evaluator=spy, skip="lm_head")
    assert summary.gemms == 2
    assert "a" in ran and "y" not in ran and "logits" not in ran     # y: the last calibrated GEMM
    ran.clear()
    g, feeds = headed()
    summary = quantize_graph(g, "int8", method="gptq", samples=[feeds], evaluator=spy)
    assert summary.gemms == 3
    assert "y" in ran and "logits" not in ran
