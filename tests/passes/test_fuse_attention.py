"""fuse-attention: softmax(Q·Kᵀ·s + M)·V → Attention, through the layout idioms of exporters."""

from __future__ import annotations

import numpy as np

from passes.golden import assert_same_outputs, check_golden, optimize_text
from ridgeline.passes import run_pipeline

SDPA = """
graph @sdpa(%q: f32[1, 2, 4, 8], %k: f32[1, 2, 4, 8], %v: f32[1, 2, 4, 8], %mask: f32[1, 1, 4, 4])
    -> (%y: f32[1, 2, 4, 8]) {
  const %scale: f32[] = 0.3535533905932738
  %kt = Transpose(%k) {perm = [0, 1, 3, 2]} : f32[1, 2, 8, 4]
  %s = MatMul(%q, %kt) : f32[1, 2, 4, 4]
  %ss = Mul(%s, %scale) : f32[1, 2, 4, 4]
  %sm = Add(%ss, %mask) : f32[1, 2, 4, 4]
  %p = Softmax(%sm) {axis = -1} : f32[1, 2, 4, 4]
  %y = MatMul(%p, %v) : f32[1, 2, 4, 8]
  return %y
}
"""


def test_scale_and_additive_mask():
    check_golden(SDPA, "fuse-attention,dce", """
graph @sdpa(%q: f32[1, 2, 4, 8], %k: f32[1, 2, 4, 8], %v: f32[1, 2, 4, 8], %mask: f32[1, 1, 4, 4])
    -> (%y: f32[1, 2, 4, 8]) {
  %y = Attention(%q, %k, %v, %mask) {scale = 0.35355338} : f32[1, 2, 4, 8]
  return %y
}
""")


def test_mask_first_in_the_add_and_division_by_the_root():
    before = SDPA.replace("%ss = Mul(%s, %scale)", "%ss = Div(%s, %scale)").replace(
        "const %scale: f32[] = 0.3535533905932738", "const %scale: f32[] = 2.0").replace(
        "%sm = Add(%ss, %mask)", "%sm = Add(%mask, %ss)")
    after = check_golden(before, "fuse-attention,dce", """
graph @sdpa(%q: f32[1, 2, 4, 8], %k: f32[1, 2, 4, 8], %v: f32[1, 2, 4, 8], %mask: f32[1, 1, 4, 4])
    -> (%y: f32[1, 2, 4, 8]) {
  %y = Attention(%q, %k, %v, %mask) {scale = 0.5} : f32[1, 2, 4, 8]
  return %y
}
""")
    assert after.nodes[0].attr("scale") == 0.5


def test_constant_causal_mask_becomes_is_causal():
    causal = np.where(np.tril(np.ones((4, 4), bool)), 0.0, -1e9).astype(np.float32)
    rows = ", ".join("[" + ", ".join(repr(float(x)) for x in r) + "]" for r in causal)
    before = SDPA.replace(", %mask: f32[1, 1, 4, 4])", ")").replace(
        "const %scale", f"const %mask: f32[4, 4] = [{rows}]\n  const %scale")
    check_golden(before, "fuse-attention,dce", """
graph @sdpa(%q: f32[1, 2, 4, 8], %k: f32[1, 2, 4, 8], %v: f32[1, 2, 4, 8]) -> (%y: f32[1, 2, 4, 8]) {
  %y = Attention(%q, %k, %v) {scale = 0.35355338, is_causal = 1} : f32[1, 2, 4, 8]
  return %y
}
""")


def test_boolean_mask_through_where():
    before = SDPA.replace("%mask: f32[1, 1, 4, 4]", "%mask: bool[1, 1, 4, 4]").replace(
        "%sm = Add(%ss, %mask) : f32[1, 2, 4, 4]", "%sm = Where(%mask, %ss, %neg) : f32[1, 2, 4, 4]").replace(
        "const %scale", "const %neg: f32[] = -inf\n  const %scale")
    g, after = optimize_text(before, "fuse-attention,dce")
    (att,) = after.nodes
    assert att.op == "Attention" and att.inputs[3].type.dtype.name == "bool"
    inputs = {"q": np.ones((1, 2, 4, 8), np.float32), "k": np.ones((1, 2, 4, 8), np.float32),
              "v": np.random.default_rng(0).standard_normal((1, 2, 4, 8)).astype(np.float32),
              "mask": np.tril(np.ones((4, 4), bool))[None, None]}
    from ridgeline.backends.numpy import Interpreter
    np.testing.assert_allclose(Interpreter(after).run(inputs)["y"], Interpreter(g).run(inputs)["y"], rtol=1e-5)


def test_where_filling_with_zero_is_not_a_mask():
    before = SDPA.replace("%mask: f32[1, 1, 4, 4]", "%mask: bool[1, 1, 4, 4]").replace(
        "%sm = Add(%ss, %mask) : f32[1, 2, 4, 4]", "%sm = Where(%mask, %ss, %zero) : f32[1, 2, 4, 4]").replace(
        "const %scale", "const %zero: f32[] = 0.0\n  const %scale")
    g, _ = optimize_text(before, "dce")
    report = run_pipeline(g, "fuse-attention", explain=True)
    assert "Attention" not in g.op_histogram()
    assert "not a masking value" in " ".join(report.records[0].notes)


# head split → GQA repeat_kv → SDPA → head merge: the 3-D form absorbs all the layout ops
MHA = """
graph @mha(%x: f32[2, 4, 16], %wq: f32[16, 16], %wk: f32[16, 8], %wv: f32[16, 8]) -> (%y: f32[2, 4, 16]) {
  const %sq: i64[4] = [2, 4, 4, 4]
  const %skv: i64[4] = [2, 4, 2, 4]
  const %so: i64[3] = [2, 4, 16]
  const %d: f32[] = 2.0
  const %rep: i64[5] = [2, 2, 2, 4, 4]
  const %full: i64[4] = [2, 4, 4, 4]
  const %two: i64[1] = [2]
  %q = MatMul(%x, %wq) : f32[2, 4, 16]
  %k = MatMul(%x, %wk) : f32[2, 4, 8]
  %v = MatMul(%x, %wv) : f32[2, 4, 8]
  %q4 = Reshape(%q, %sq) : f32[2, 4, 4, 4]
  %qh = Transpose(%q4) {perm = [0, 2, 1, 3]} : f32[2, 4, 4, 4]
  %k4 = Reshape(%k, %skv) : f32[2, 4, 2, 4]
  %kh = Transpose(%k4) {perm = [0, 2, 1, 3]} : f32[2, 2, 4, 4]
  %v4 = Reshape(%v, %skv) : f32[2, 4, 2, 4]
  %vh = Transpose(%v4) {perm = [0, 2, 1, 3]} : f32[2, 2, 4, 4]
  %ku = Unsqueeze(%kh, %two) : f32[2, 2, 1, 4, 4]
  %ke = Expand(%ku, %rep) : f32[2, 2, 2, 4, 4]
  %kr = Reshape(%ke, %full) : f32[2, 4, 4, 4]
  %vu = Unsqueeze(%vh, %two) : f32[2, 2, 1, 4, 4]
  %ve = Expand(%vu, %rep) : f32[2, 2, 2, 4, 4]
  %vr = Reshape(%ve, %full) : f32[2, 4, 4, 4]
  %kt = Transpose(%kr) {perm = [0, 1, 3, 2]} : f32[2, 4, 4, 4]
  %s = MatMul(%qh, %kt) : f32[2, 4, 4, 4]
  %ss = Div(%s, %d) : f32[2, 4, 4, 4]
  %p = Softmax(%ss) {axis = 3} : f32[2, 4, 4, 4]
  %o = MatMul(%p, %vr) : f32[2, 4, 4, 4]
  %ot = Transpose(%o) {perm = [0, 2, 1, 3]} : f32[2, 4, 4, 4]
  %y = Reshape(%ot, %so) : f32[2, 4, 16]
  return %y
}
"""


def test_gqa_head_split_and_merge_become_the_3d_form():
    check_golden(MHA, "fuse-attention,canonicalize,dce", """
graph @mha(%x: f32[2, 4, 16], %wq: f32[16, 16], %wk: f32[16, 8], %wv: f32[16, 8]) -> (%y: f32[2, 4, 16]) {
  %q = MatMul(%x, %wq) : f32[2, 4, 16]
  %k = MatMul(%x, %wk) : f32[2, 4, 8]
  %v = MatMul(%x, %wv) : f32[2, 4, 8]
  %y = Attention(%q, %k, %v) {scale = 0.5, q_num_heads = 4, kv_num_heads = 2} : f32[2, 4, 16]
  return %y
}
""")


def test_gqa_in_4d_when_the_output_stays_split():
    before = MHA.replace("-> (%y: f32[2, 4, 16])", "-> (%o: f32[2, 4, 4, 4])").replace(
        "  %ot = Transpose(%o) {perm = [0, 2, 1, 3]} : f32[2, 4, 4, 4]\n", "").replace(
        "  %y = Reshape(%ot, %so) : f32[2, 4, 16]\n", "").replace("return %y", "return %o")
    g, after = optimize_text(before, "fuse-attention,canonicalize,dce")
    att = [n for n in after if n.op == "Attention"]
    assert len(att) == 1 and att[0].inputs[1].type.shape == (2, 2, 4, 4)  # K keeps its 2 KV heads
    assert "Expand" not in after.op_histogram()
    assert_same_outputs(g, after)


def test_softmax_over_queries_is_not_attention():
    before = SDPA.replace("%p = Softmax(%sm) {axis = -1}", "%p = Softmax(%sm) {axis = 2}")
    g, _ = optimize_text(before, "dce")
    report = run_pipeline(g, "fuse-attention", explain=True)
    assert "Attention" not in g.op_histogram()
    assert "softmax over axis 2" in " ".join(report.records[0].notes)


def test_probabilities_used_elsewhere_block_the_fusion():
    before = SDPA.replace("-> (%y: f32[1, 2, 4, 8])", "-> (%y: f32[1, 2, 4, 8], %p: f32[1, 2, 4, 4])").replace(
        "return %y", "return %y, %p")
    _, after = optimize_text(before, "fuse-attention,dce")
    assert "Attention" not in after.op_histogram()


# a decode step: K and V grow by the new positions; the Concats are the model's present outputs
KV = """
graph @decode(%q: f32[1, 2, 3, 8], %k: f32[1, 2, 3, 8], %v: f32[1, 2, 3, 8],
              %pk: f32[1, 2, 5, 8], %pv: f32[1, 2, 5, 8], %mask: f32[1, 1, 3, 8])
    -> (%y: f32[1, 2, 3, 8], %present_key: f32[1, 2, 8, 8], %present_value: f32[1, 2, 8, 8]) {
  const %scale: f32[] = 0.3535533905932738
  %present_key = Concat(%pk, %k) {axis = 2} : f32[1, 2, 8, 8]
  %present_value = Concat(%pv, %v) {axis = -2} : f32[1, 2, 8, 8]
  %kt = Transpose(%present_key) {perm = [0, 1, 3, 2]} : f32[1, 2, 8, 8]
  %s = MatMul(%q, %kt) : f32[1, 2, 3, 8]
  %ss = Mul(%s, %scale) : f32[1, 2, 3, 8]
  %sm = Add(%ss, %mask) : f32[1, 2, 3, 8]
  %p = Softmax(%sm) {axis = -1} : f32[1, 2, 3, 8]
  %y = MatMul(%p, %present_value) : f32[1, 2, 3, 8]
  return %y, %present_key, %present_value
}
"""


def test_kv_cache_concats_become_the_attention_cache():
    check_golden(KV, "fuse-attention,dce", """
graph @decode(%q: f32[1, 2, 3, 8], %k: f32[1, 2, 3, 8], %v: f32[1, 2, 3, 8],
              %pk: f32[1, 2, 5, 8], %pv: f32[1, 2, 5, 8], %mask: f32[1, 1, 3, 8])
    -> (%y: f32[1, 2, 3, 8], %present_key: f32[1, 2, 8, 8], %present_value: f32[1, 2, 8, 8]) {
  %y, %present_key, %present_value = Attention(%q, %k, %v, %mask, %pk, %pv) {scale = 0.35355338}
      : f32[1, 2, 3, 8], f32[1, 2, 8, 8], f32[1, 2, 8, 8]
  return %y, %present_key, %present_value
}
""")


def test_an_exported_attention_gets_the_3d_form():
    # what the opset-23 dynamo exporter writes: its own Attention between head split and merge
    before = """
graph @exp(%x: f32[2, 4, 16], %m: bool[2, 1, 4, 4]) -> (%y: f32[2, 4, 16]) {
  const %s4: i64[4] = [2, 4, 4, 4]
  const %s3: i64[3] = [2, 4, 16]
  %a = Reshape(%x, %s4) : f32[2, 4, 4, 4]
  %q = Transpose(%a) {perm = [0, 2, 1, 3]} : f32[2, 4, 4, 4]
  %o = Attention(%q, %q, %q, %m) {scale = 0.5, is_causal = 0, softcap = 0.0} : f32[2, 4, 4, 4]
  %t = Transpose(%o) {perm = [0, 2, 1, 3]} : f32[2, 4, 4, 4]
  %y = Reshape(%t, %s3) : f32[2, 4, 16]
  return %y
}
"""
    g, after = optimize_text(before, "fuse-attention,canonicalize,dce")
    (att,) = after.nodes
    assert att.op == "Attention" and att.attr("q_num_heads") == 4 and att.inputs[0].name == "x"
    assert att.outputs[0].name == "y" and att.attr("softcap") == 0.0
    inputs = {"x": np.random.default_rng(0).standard_normal((2, 4, 16)).astype(np.float32),
              "m": np.tril(np.ones((4, 4), bool))[None, None].repeat(2, 0)}
    from ridgeline.backends.numpy import Interpreter
    np.testing.assert_allclose(Interpreter(after).run(inputs)["y"], Interpreter(g).run(inputs)["y"], rtol=1e-5)
