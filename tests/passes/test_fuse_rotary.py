"""fuse-rotary: HF's rotate-half RoPE, x·cos + cat(−x₂, x₁)·sin → RotaryEmbedding."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from passes.golden import assert_same_outputs, check_golden, optimize_text

from ridgeline.backends.numpy import Interpreter

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


def _interleaved(b: int, h: int, s: int, d: int, table: str = "stack") -> str:
    """GPT-J's rotate_every_two: tables repeat each angle twice (stack((θ, θ), -1).flatten(-2))."""
    r = d // 2
    inv = ", ".join(repr(float(10000.0 ** (-i / r))) for i in range(r))
    tables = {
        "stack": f"""
  %tu = Unsqueeze(%theta, %last) : f32[{b}, {s}, {r}, 1]
  %tt = Concat(%tu, %tu) {{axis = -1}} : f32[{b}, {s}, {r}, 2]
  %rep = Reshape(%tt, %flat3) : f32[{b}, {s}, {d}]""",
        # not a repetition: the second element of each pair gets a different angle
        "wrong": f"""
  %tu = Unsqueeze(%theta, %last) : f32[{b}, {s}, {r}, 1]
  %tw = Mul(%tu, %two) : f32[{b}, {s}, {r}, 1]
  %tt = Concat(%tu, %tw) {{axis = -1}} : f32[{b}, {s}, {r}, 2]
  %rep = Reshape(%tt, %flat3) : f32[{b}, {s}, {d}]"""}[table]
    return f"""
graph @rope(%x: f32[{b}, {h}, {s}, {d}], %pos: i64[{b}, {s}]) -> (%y: f32[{b}, {h}, {s}, {d}]) {{
  const %inv: f32[{r}] = [{inv}]
  const %two: f32[] = 2.0
  const %a2: i64[1] = [2]
  const %a1: i64[1] = [1]
  const %s0: i64[1] = [0]
  const %s1: i64[1] = [1]
  const %st2: i64[1] = [2]
  const %end: i64[1] = [9223372036854775807]
  const %last: i64[1] = [-1]
  const %flat3: i64[3] = [0, 0, -1]
  const %flat4: i64[4] = [0, 0, 0, -1]
  %pu = Unsqueeze(%pos, %a2) : i64[{b}, {s}, 1]
  %pf = Cast(%pu) {{to = "f32"}} : f32[{b}, {s}, 1]
  %theta = Mul(%pf, %inv) : f32[{b}, {s}, {r}]{tables}
  %cos = Cos(%rep) : f32[{b}, {s}, {d}]
  %sin = Sin(%rep) : f32[{b}, {s}, {d}]
  %c4 = Unsqueeze(%cos, %a1) : f32[{b}, 1, {s}, {d}]
  %s4d = Unsqueeze(%sin, %a1) : f32[{b}, 1, {s}, {d}]
  %xe = Slice(%x, %s0, %end, %last, %st2) : f32[{b}, {h}, {s}, {r}]
  %xo = Slice(%x, %s1, %end, %last, %st2) : f32[{b}, {h}, {s}, {r}]
  %nxo = Neg(%xo) : f32[{b}, {h}, {s}, {r}]
  %u1 = Unsqueeze(%nxo, %last) : f32[{b}, {h}, {s}, {r}, 1]
  %u2 = Unsqueeze(%xe, %last) : f32[{b}, {h}, {s}, {r}, 1]
  %pairs = Concat(%u1, %u2) {{axis = -1}} : f32[{b}, {h}, {s}, {r}, 2]
  %rot = Reshape(%pairs, %flat4) : f32[{b}, {h}, {s}, {d}]
  %xc = Mul(%x, %c4) : f32[{b}, {h}, {s}, {d}]
  %rs = Mul(%rot, %s4d) : f32[{b}, {h}, {s}, {d}]
  %y = Add(%xc, %rs) : f32[{b}, {h}, {s}, {d}]
  return %y
}}
"""


@settings(max_examples=10, deadline=None)
@given(b=st.integers(1, 2), h=st.integers(1, 3), s=st.integers(1, 5), d=st.sampled_from([2, 4, 6, 8, 12, 16, 24]),
       seed=st.integers(0, 99))
def test_interleaved_becomes_rotary_embedding_interleaved(b, h, s, d, seed):
    g, after = optimize_text(_interleaved(b, h, s, d), "fuse-rotary,dce")
    (rope,) = [n for n in after if n.op == "RotaryEmbedding"]
    assert rope.attr("interleaved") == 1
    assert not any(n.op == "Neg" for n in after)
    assert_same_outputs(g, after, seed=seed, dims=None)


def test_interleaved_with_tables_that_do_not_repeat_does_not_fuse():
    # cos/sin whose pairs hold different angles are not an interleaved RoPE: no rewrite
    _, after = optimize_text(_interleaved(1, 2, 3, 8, table="wrong"), "fuse-rotary,dce")
    assert "RotaryEmbedding" not in after.op_histogram()


def test_interleaved_survives_default_and_runs_in_onnxruntime_below_opset_23():
    from frontends.test_onnx_lowering import _ort

    from ridgeline.frontends.onnx import to_onnx
    g, after = optimize_text(_interleaved(2, 2, 4, 8), "default")
    assert sum(n.op == "RotaryEmbedding" for n in after) == 1
    inputs = {"x": np.random.default_rng(0).standard_normal((2, 2, 4, 8), np.float32),
              "pos": np.arange(4).reshape(1, 4).repeat(2, 0) + 3}
    want = Interpreter(g).run(inputs)["y"]
    (got,) = _ort(to_onnx(after, opset=18), inputs)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
