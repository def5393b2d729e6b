"""fuse-gelu: the erf and tanh forms, in the associations exporters write, and near-misses."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from passes.golden import assert_same_outputs, check_golden, optimize_text

TANH = """
graph @mlp(%x: f32[2, 8], %w: f32[8, 16]) -> (%y: f32[2, 16]) {
  const %half: f32[] = 0.5
  const %three: f32[] = 3.0
  const %c: f32[] = 0.044715
  const %k: f32[] = 0.7978845608
  const %one: f32[] = 1.0
  %h = MatMul(%x, %w) : f32[2, 16]
  %a = Mul(%h, %half) : f32[2, 16]
  %p = Pow(%h, %three) : f32[2, 16]
  %q = Mul(%p, %c) : f32[2, 16]
  %s = Add(%h, %q) : f32[2, 16]
  %t = Mul(%s, %k) : f32[2, 16]
  %th = Tanh(%t) : f32[2, 16]
  %u = Add(%th, %one) : f32[2, 16]
  %y = Mul(%a, %u) : f32[2, 16]
  return %y
}
"""

GELU_TANH = """
graph @mlp(%x: f32[2, 8], %w: f32[8, 16]) -> (%y: f32[2, 16]) {
  %h = MatMul(%x, %w) : f32[2, 16]
  %y = Gelu(%h) {approximate = "tanh"} : f32[2, 16]
  return %y
}
"""


def test_tanh_form_becomes_gelu_tanh():
    check_golden(TANH, "fuse-gelu,dce", GELU_TANH)


def test_tanh_form_with_cube_as_products_and_constant_first():
    before = TANH.replace("%p = Pow(%h, %three) : f32[2, 16]",
                          "%sq = Mul(%h, %h) : f32[2, 16]\n  %p = Mul(%sq, %h) : f32[2, 16]") \
                 .replace("%t = Mul(%s, %k)", "%t = Mul(%k, %s)")
    check_golden(before, "fuse-gelu,dce", GELU_TANH)


# BERT's spelling: (x · (erf(x / √2) + 1)) · 0.5
ERF = """
graph @mlp(%x: f32[4, 8]) -> (%y: f32[4, 8]) {
  const %sqrt2: f32[] = 1.4142135381698608
  const %one: f32[] = 1.0
  const %half: f32[] = 0.5
  %d = Div(%x, %sqrt2) : f32[4, 8]
  %e = Erf(%d) : f32[4, 8]
  %u = Add(%e, %one) : f32[4, 8]
  %m = Mul(%x, %u) : f32[4, 8]
  %y = Mul(%m, %half) : f32[4, 8]
  return %y
}
"""


def test_erf_form_becomes_gelu():
    check_golden(ERF, "fuse-gelu,dce", """
graph @mlp(%x: f32[4, 8]) -> (%y: f32[4, 8]) {
  %y = Gelu(%x) : f32[4, 8]
  return %y
}
""")


def test_erf_form_with_reciprocal_multiplication():
    before = ERF.replace("const %sqrt2: f32[] = 1.4142135381698608", "const %isqrt2: f32[] = 0.7071067690849304") \
                .replace("%d = Div(%x, %sqrt2)", "%d = Mul(%x, %isqrt2)")
    _, after = optimize_text(before, "fuse-gelu,dce")
    assert after.op_histogram() == {"Gelu": 1}


def test_wrong_constant_does_not_fuse_and_explain_says_which():
    before = TANH.replace("const %c: f32[] = 0.044715", "const %c: f32[] = 0.05")
    g, after = optimize_text(before, "fuse-gelu", explain=True)
    assert "Gelu" not in after.op_histogram()
    from ridgeline.passes import run_pipeline
    report = run_pipeline(g.copy(), "fuse-gelu", explain=True)
    notes = " ".join(report.records[0].notes)
    assert "gelu-tanh: did not fire" in notes
    assert "constant %c is 0.05" in notes and "0.044715" in notes


def test_intermediate_used_elsewhere_blocks_the_fusion():
    before = TANH.replace("-> (%y: f32[2, 16])", "-> (%y: f32[2, 16], %th: f32[2, 16])") \
                 .replace("return %y", "return %y, %th")
    _, after = optimize_text(before, "fuse-gelu,dce")
    assert "Gelu" not in after.op_histogram()


@pytest.mark.parametrize("dtype", ["f16", "f64"])
def test_other_float_dtypes(dtype):
    before = ERF.replace("f32", dtype)
    _, after = optimize_text(before, "fuse-gelu,dce")
    assert after.op_histogram() == {"Gelu": 1}


# quick-GELU (CLIP, some GPT-2 variants): x·σ(1.702·x) is NOT GELU (it differs by up to ~0.02), so
# fuse-gelu must leave it alone; -p default fuses the chain into one elementwise Fused node instead
@settings(max_examples=10, deadline=None)
@given(rows=st.integers(1, 4), k=st.integers(1, 24), n=st.integers(1, 40), swap_mul=st.booleans(),
       const_first=st.booleans(), seed=st.integers(0, 99))
def test_quick_gelu_is_one_elementwise_node_never_gelu(rows, k, n, swap_mul, const_first, seed):
    scaled = "Mul(%c, %h)" if const_first else "Mul(%h, %c)"
    gated = "Mul(%s, %h)" if swap_mul else "Mul(%h, %s)"
    before = f"""
graph @quick(%x: f32[{rows}, {k}], %w: f32[{k}, {n}]) -> (%y: f32[{rows}, {n}]) {{
  const %c: f32[] = 1.702
  %h = MatMul(%x, %w) : f32[{rows}, {n}]
  %a = {scaled} : f32[{rows}, {n}]
  %s = Sigmoid(%a) : f32[{rows}, {n}]
  %y = {gated} : f32[{rows}, {n}]
  return %y
}}
"""
    g, after = optimize_text(before, "fuse-gelu")
    assert "Gelu" not in after.op_histogram()
    g, after = optimize_text(before, "default")
    (fused,) = [nd for nd in after if nd.op == "Fused"]
    inner = fused.body.op_histogram()
    assert "Gelu" not in inner and inner.get("Sigmoid") == 1 and not any(nd.op in ("Sigmoid", "Mul") for nd in after)
    assert_same_outputs(g, after, seed=seed)
