"""fuse-rmsnorm: x/√(mean(x²) + ε)·γ → RMSNormalization, in Llama's spellings from both exporters."""

from __future__ import annotations

from passes.golden import check_golden, optimize_text

# the legacy exporter: Div(1, Sqrt(...)), and the weight first in the last Mul
RMS = """
graph @rms(%x: f32[2, 4, 8]) -> (%y: f32[2, 4, 8]) {
  const %axes: i64[1] = [-1]
  const %two: f32[] = 2.0
  const %eps: f32[] = 1e-06
  const %one: f32[] = 1.0
  const %w: f32[8] = [1.0, 2.0, 0.5, 1.5, 1.0, 1.0, 3.0, 0.25]
  %sq = Pow(%x, %two) : f32[2, 4, 8]
  %ms = ReduceMean(%sq, %axes) : f32[2, 4, 1]
  %a = Add(%ms, %eps) : f32[2, 4, 1]
  %r = Sqrt(%a) : f32[2, 4, 1]
  %inv = Div(%one, %r) : f32[2, 4, 1]
  %n = Mul(%x, %inv) : f32[2, 4, 8]
  %y = Mul(%w, %n) : f32[2, 4, 8]
  return %y
}
"""

FUSED = """
graph @rms(%x: f32[2, 4, 8]) -> (%y: f32[2, 4, 8]) {
  const %w: f32[8] = [1.0, 2.0, 0.5, 1.5, 1.0, 1.0, 3.0, 0.25]
  %y = RMSNormalization(%x, %w) {axis = -1, epsilon = 1e-06} : f32[2, 4, 8]
  return %y
}
"""


def test_legacy_spelling():
    check_golden(RMS, "fuse-rmsnorm,dce", FUSED)


def test_dynamo_spelling_with_reciprocal():
    before = RMS.replace("%inv = Div(%one, %r)", "%inv = Reciprocal(%r)")
    check_golden(before, "fuse-rmsnorm,dce", FUSED)


def test_divide_by_rms():
    before = RMS.replace("%inv = Div(%one, %r) : f32[2, 4, 1]\n  %n = Mul(%x, %inv)", "%n = Div(%x, %r)")
    check_golden(before, "fuse-rmsnorm,dce", FUSED)


def test_weight_of_another_shape_stays_outside():
    before = RMS.replace("const %w: f32[8] = [1.0, 2.0, 0.5, 1.5, 1.0, 1.0, 3.0, 0.25]",
                         "const %w: f32[4, 1] = [[1.0], [2.0], [0.5], [1.5]]")
    _, after = optimize_text(before, "fuse-rmsnorm,dce")
    assert after.op_histogram() == {"RMSNormalization": 1, "Mul": 1}


def test_a_layernorm_is_the_rmsnorm_of_centered_x():
    # (x − μ)/√(mean((x − μ)²) + ε) is RMSNorm(x − μ): the rule fires on d = x − μ, and the result
    # still computes the layer norm (the default pipeline fuses LayerNormalization first)
    from passes.test_fuse_layernorm import LN
    _, after = optimize_text(LN, "fuse-rmsnorm,dce")
    rms = [n for n in after if n.op == "RMSNormalization"]
    assert len(rms) == 1 and rms[0].inputs[0].producer.op == "Sub"
    _, both = optimize_text(LN, "fuse-layernorm,fuse-rmsnorm,dce")
    assert both.op_histogram() == {"LayerNormalization": 1}


def test_power_spellings_of_the_root():
    # x · (mean(x²) + ε)^-½ (a rsqrt written as Pow) and x / (mean(x²) + ε)^½
    inv_pow = RMS.replace("const %one: f32[] = 1.0", "const %one: f32[] = 1.0\n  const %mhalf: f32[] = -0.5").replace(
        "%r = Sqrt(%a) : f32[2, 4, 1]\n  %inv = Div(%one, %r)", "%inv = Pow(%a, %mhalf)")
    check_golden(inv_pow, "fuse-rmsnorm,dce", FUSED)
    div_pow = RMS.replace("const %one: f32[] = 1.0", "const %half: f32[] = 0.5").replace(
        "%r = Sqrt(%a) : f32[2, 4, 1]\n  %inv = Div(%one, %r) : f32[2, 4, 1]\n  %n = Mul(%x, %inv)",
        "%r = Pow(%a, %half) : f32[2, 4, 1]\n  %n = Div(%x, %r)")
    check_golden(div_pow, "fuse-rmsnorm,dce", FUSED)
