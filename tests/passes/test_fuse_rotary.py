"""fuse-rotary: HF's rotate-half RoPE, x·cos + cat(−x₂, x₁)·sin → RotaryEmbedding."""

from __future__ import annotations

from passes.golden import assert_same_outputs, check_golden, optimize_text

ROPE = """
graph @rope(%x: f32[1, 2, 3, 8], %pos: i64[1, 3]) -> (%y: f32[1, 2, 3, 8]) {
  const %inv: f32[4] = [1.0, 0.1, 0.01, 0.001]
  const %a2: i64[1] = [2]
  const %a1: i64[1] = [1]
  const %s0: i64[1] = [0]
  const %s4: i64[1] = [4]
  const %end: i64[1] = [9223372036854775807]
  const %last: i64[1] = [-1]
  %pu = Unsqueeze(%pos, %a2) : i64[1, 3, 1]
  %pf = Cast(%pu) {to = "f32"} : f32[1, 3, 1]
  %theta = Mul(%pf, %inv) : f32[1, 3, 4]
  %cat = Concat(%theta, %theta) {axis = -1} : f32[1, 3, 8]
  %cos = Cos(%cat) : f32[1, 3, 8]
  %sin = Sin(%cat) : f32[1, 3, 8]
  %c4 = Unsqueeze(%cos, %a1) : f32[1, 1, 3, 8]
  %s4d = Unsqueeze(%sin, %a1) : f32[1, 1, 3, 8]
  %x1 = Slice(%x, %s0, %s4, %last) : f32[1, 2, 3, 4]
  %x2 = Slice(%x, %s4, %end, %last) : f32[1, 2, 3, 4]
  %nx2 = Neg(%x2) : f32[1, 2, 3, 4]
  %rot = Concat(%nx2, %x1) {axis = -1} : f32[1, 2, 3, 8]
  %xc = Mul(%x, %c4) : f32[1, 2, 3, 8]
  %rs = Mul(%rot, %s4d) : f32[1, 2, 3, 8]
  %y = Add(%xc, %rs) : f32[1, 2, 3, 8]
  return %y
}
"""


def test_rotate_half_becomes_rotary_embedding():
    check_golden(ROPE, "fuse-rotary,dce", """
graph @rope(%x: f32[1, 2, 3, 8], %pos: i64[1, 3]) -> (%y: f32[1, 2, 3, 8]) {
  const %inv: f32[4] = [1.0, 0.1, 0.01, 0.001]
  const %a2: i64[1] = [2]
  %pu = Unsqueeze(%pos, %a2) : i64[1, 3, 1]
  %pf = Cast(%pu) {to = "f32"} : f32[1, 3, 1]
  %theta = Mul(%pf, %inv) : f32[1, 3, 4]
  %theta_cos = Cos(%theta) : f32[1, 3, 4]
  %theta_sin = Sin(%theta) : f32[1, 3, 4]
  %y = RotaryEmbedding(%x, %theta_cos, %theta_sin) : f32[1, 2, 3, 8]
  return %y
}
""")


def test_q_and_k_share_the_tables():
    # two RoPEs reading one cos/sin: both fuse, and cse leaves one table of each
    before = ROPE.replace("(%x: f32[1, 2, 3, 8], %pos", "(%x: f32[1, 2, 3, 8], %k: f32[1, 1, 3, 8], %pos") \
        .replace("-> (%y: f32[1, 2, 3, 8])", "-> (%y: f32[1, 2, 3, 8], %yk: f32[1, 1, 3, 8])")
    k_rope = """
  %k1 = Slice(%k, %s0, %s4, %last) : f32[1, 1, 3, 4]
  %k2 = Slice(%k, %s4, %end, %last) : f32[1, 1, 3, 4]
  %nk2 = Neg(%k2) : f32[1, 1, 3, 4]
  %krot = Concat(%nk2, %k1) {axis = -1} : f32[1, 1, 3, 8]
  %kc = Mul(%k, %c4) : f32[1, 1, 3, 8]
  %ks = Mul(%krot, %s4d) : f32[1, 1, 3, 8]
  %yk = Add(%kc, %ks) : f32[1, 1, 3, 8]
  return %y, %yk"""
    before = before.replace("\n  return %y", k_rope)
    g, after = optimize_text(before, "fuse-rotary,cse,dce")
    hist = after.op_histogram()
    assert hist["RotaryEmbedding"] == 2 and hist["Cos"] == 1 and hist["Sin"] == 1
    assert_same_outputs(g, after)


def test_halves_swapped_the_wrong_way_do_not_match():
    before = ROPE.replace("%rot = Concat(%nx2, %x1)", "%rot = Concat(%x1, %nx2)")
    _, after = optimize_text(before, "fuse-rotary,dce")
    assert "RotaryEmbedding" not in after.op_histogram()


def test_slices_that_are_not_halves_do_not_match():
    before = ROPE.replace("const %s4: i64[1] = [4]", "const %s4: i64[1] = [3]").replace(
        "f32[1, 2, 3, 4]", "f32[1, 2, 3, 3]").replace("%x2 = Slice(%x, %s4, %end, %last) : f32[1, 2, 3, 3]",
                                                      "%x2 = Slice(%x, %s4, %end, %last) : f32[1, 2, 3, 5]") \
        .replace("%nx2 = Neg(%x2) : f32[1, 2, 3, 3]", "%nx2 = Neg(%x2) : f32[1, 2, 3, 5]")
    _, after = optimize_text(before, "fuse-rotary,dce")
    assert "RotaryEmbedding" not in after.op_histogram()


def test_rotation_moves_before_the_head_split():
    before = ROPE.replace("(%x: f32[1, 2, 3, 8], %pos", "(%x3: f32[1, 3, 16], %pos").replace(
        "  %pu = Unsqueeze", "  const %hs: i64[4] = [1, 3, 2, 8]\n  %x4 = Reshape(%x3, %hs) : f32[1, 3, 2, 8]\n"
        "  %x = Transpose(%x4) {perm = [0, 2, 1, 3]} : f32[1, 2, 3, 8]\n  %pu = Unsqueeze")
    g, after = optimize_text(before, "fuse-rotary,dce")
    (rope,) = [n for n in after if n.op == "RotaryEmbedding"]
    assert rope.inputs[0].name == "x3" and rope.attr("num_heads") == 2
    assert [n.op for n in after][-2:] == ["Reshape", "Transpose"]  # the head split, now after the rotation
    assert_same_outputs(g, after)
