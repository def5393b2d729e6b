"""Error envelopes declared per op spec (ridgeline.ir.ops.envelopes): the magnitude the oracle
counts ulps at is at least the magnitude of the terms an element was computed from, so a
cancelling result is not held to ulps of its own tiny value."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ridgeline.ir import Graph, tensor
from ridgeline.ir.ops import FLOAT, all_specs, envelopes, get_spec
from ridgeline.testing.compare import _Oracle


def _envelope_of(g: Graph, inputs: dict) -> np.ndarray:
    o = _Oracle(g)
    o.run(inputs)
    return o.env[id(g.outputs[0])]


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 5), st.integers(1, 6), st.integers(1, 5), st.floats(-3, 3).filter(lambda a: abs(a) > 0.1),
       st.booleans(), st.integers(0, 2 ** 16))
def test_gemm_counts_ulps_at_its_terms(m, k, n, alpha, trans_b, seed):
    rng = np.random.default_rng(seed)
    a = rng.uniform(-4, 4, (m, k))
    b = rng.uniform(-4, 4, (n, k) if trans_b else (k, n))
    g = Graph("gemm")
    x, w = g.add_input("a", tensor("f64", m, k)), g.add_constant("b", b)
    g.outputs = [g.add_node("Gemm", [x, w], {"alpha": alpha, "transB": int(trans_b)}).outputs[0]]
    env = _envelope_of(g, {"a": a})
    terms = abs(alpha) * (np.abs(a) @ np.abs(b.T if trans_b else b))
    assert np.all(env >= terms * (1 - 1e-12))


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 9), st.floats(1e2, 1e6), st.integers(0, 2 ** 16))
def test_layernorm_rows_far_from_zero_get_their_conditioning(width, offset, seed):
    """x = offset + small noise: ``x − mean`` cancels, so the allowance grows by max|x|/max|x − mean|."""
    rng = np.random.default_rng(seed)
    x = offset + rng.uniform(-1, 1, (3, width))
    g = Graph("ln")
    xi = g.add_input("x", tensor("f64", 3, width))
    s = g.add_constant("s", np.ones(width))
    # stash_type 11: statistics in float64 (the default, float32, would round the noise away)
    g.outputs = [g.add_node("LayerNormalization", [xi, s], {"axis": -1, "stash_type": 11}).outputs[0]]
    env = _envelope_of(g, {"x": x})
    y = np.abs((x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5))
    cond = np.abs(x).max(-1, keepdims=True) / np.abs(x - x.mean(-1, keepdims=True)).max(-1, keepdims=True)
    assert np.all(env >= 0.99 * y.max(-1, keepdims=True) * cond)


def test_every_contraction_and_statistics_op_declares_its_envelope():
    """A new matmul, attention or mean/variance normalization op must say how its error grows
    (else the oracle holds it to ulps of its own, possibly cancelled, value)."""
    def needs(spec) -> bool:
        if not spec.allowed_dtypes(spec.outputs[0].constraint) & FLOAT:
            return False  # integer results (MatMulInteger, QLinearMatMul) are compared exactly
        return spec.category in ("matmul", "attention", "conv") or spec.name in (
            "LayerNormalization", "RMSNormalization", "MeanVarianceNormalization", "InstanceNormalization",
            "GroupNormalization")
    missing = [s.name for s in map(get_spec, all_specs()) if needs(s) and s.domain == "" and s.extra.get("envelope") is None]
    assert not missing, f"declare envelope= on {missing}"


def test_rules_are_read_from_the_spec_then_the_category():
    g = Graph("t")
    x = g.add_input("x", tensor("f32", 2, 3))
    mm = g.add_node("MatMul", [x, g.add_constant("w", np.ones((3, 2), np.float32))])
    relu = g.add_node("Relu", [x])
    tr = g.add_node("Transpose", [x], {"perm": [1, 0]})
    sm = g.add_node("Softmax", [x])
    assert envelopes.default_rule(mm, True).__name__ == "dot"
    assert envelopes.default_rule(relu, True) is envelopes.elementwise
    assert envelopes.default_rule(tr, True).__name__ == "linear_in(0)"
    assert envelopes.default_rule(sm, True) is None          # restarts at its own magnitude
    assert envelopes.default_rule(relu, False) is envelopes.generator


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 4), st.integers(2, 8), st.integers(1, 5), st.integers(0, 2 ** 16))
def test_a_fused_group_keeps_the_envelopes_of_its_body(m, k, n, seed):
    """fuse-matmul-epilogue wraps MatMul + Add + Relu in one Fused node: its output is still held
    to ulps of |x|·|w| (the MatMul inside), not of its own, possibly cancelled, value."""
    from ridgeline.api import optimize
    rng = np.random.default_rng(seed)
    x, w, b = rng.uniform(-2, 2, (m, k)), rng.uniform(-2, 2, (k, n)), rng.uniform(-1, 1, n)
    g = Graph("epilogue")
    xi = g.add_input("x", tensor("f64", m, k))
    y = g.add_node("MatMul", [xi, g.add_constant("w", w)]).outputs[0]
    y = g.add_node("Add", [y, g.add_constant("b", b)]).outputs[0]
    g.outputs = [g.add_node("Relu", [y]).outputs[0]]
    fused = optimize(g.copy(), "fuse-matmul-epilogue")
    assert any(nd.op == "Fused" for nd in fused)
    terms = np.abs(x) @ np.abs(w)
    assert np.all(_envelope_of(fused, {"x": x}) >= terms * (1 - 1e-12))
