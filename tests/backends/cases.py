"""Hand-built graphs covering every op with a spec, for differential tests of the backends.

``CASES`` maps a case name to a ``Case``: a verified graph and seeded inputs in the op's domain
(positive for Log, valid indices for Gather, …). Shapes are odd on purpose (37 is not a multiple
of any SIMD width) and include 1-element dims. ``compare`` checks a backend's outputs against
the numpy reference.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ridgeline.ir import Builder, Graph, tensor

__all__ = ["Case", "CASES", "compare", "assert_close", "fused", "biased_attention"]

RTOL = 1e-4


@dataclass
class Case:
    name: str
    graph: Graph
    inputs: dict[str, np.ndarray]
    ops: set[str] = field(default_factory=set)


def assert_close(ref: np.ndarray, out: np.ndarray, *, rtol: float = RTOL, what: str = "") -> None:
    """Equal dtype and shape; values within ``rtol`` relative to each element plus ``rtol`` times
    the tensor's largest magnitude (so values near zero are compared at the tensor's scale)."""
    assert out.dtype == ref.dtype, (what, out.dtype, ref.dtype)
    assert out.shape == ref.shape, (what, out.shape, ref.shape)
    if ref.dtype.kind in "biu" or ref.dtype == np.bool_:
        np.testing.assert_array_equal(out, ref, err_msg=what)
        return
    r = ref.astype(np.float64)
    o = out.astype(np.float64)
    finite = np.isfinite(r)
    np.testing.assert_array_equal(np.isnan(o), np.isnan(r), err_msg=f"{what}: NaN positions differ")
    inf = np.isinf(r)
    np.testing.assert_array_equal(o[inf], r[inf], err_msg=f"{what}: infinities differ")
    if finite.any():
        scale = np.max(np.abs(r[finite]))
        np.testing.assert_allclose(o[finite], r[finite], rtol=rtol, atol=rtol * scale, err_msg=what)


def compare(case: Case, exe) -> None:
    """Run ``exe`` on the case and check every output against the numpy reference."""
    from ridgeline.backends.numpy import NumpyBackend
    ref = NumpyBackend().compile(case.graph).run(case.inputs)
    out = exe.run(case.inputs)
    assert set(out) == set(ref)
    for k in ref:
        assert_close(ref[k], np.asarray(out[k]), what=f"{case.name}: output {k}")


# ------------------------------------------------------------------------------------ building
_rng = np.random.default_rng(1234)


def biased_attention(rng, bsz: int, hq: int, hkv: int, sq: int, d: int, past: int):
    """(graph, normal feeds) of one Attention with an additive f32 mask ``bias`` of shape
    (bsz, 1, sq, past + sq) shared by the heads, and with a past, the presents among its outputs."""
    g = Graph("attn")
    q = g.add_input("q", tensor("f32", bsz, hq, sq, d))
    k, v = (g.add_input(n, tensor("f32", bsz, hkv, sq, d)) for n in "kv")
    bias = g.add_input("bias", tensor("f32", bsz, 1, sq, past + sq))
    pk, pv = ((g.add_input(n, tensor("f32", bsz, hkv, past, d)) for n in ("pk", "pv")) if past else (None, None))
    out = Builder(g).Attention(q, k, v, bias, pk, pv, _outputs=3 if past else 1)
    g.outputs = list(out) if isinstance(out, tuple) else [out]
    return g, {p.name: rng.standard_normal(p.type.shape).astype(np.float32) for p in g.inputs}


def _normal(*shape, dtype=np.float32):
    return _rng.standard_normal(shape).astype(dtype)


def _graph(name: str, inputs: dict[str, np.ndarray], build: Callable, consts: dict[str, np.ndarray] | None = None):
    g = Graph(name.replace("-", "_"))
    vals = {k: g.add_input(k, tensor(_dt(a), *a.shape)) for k, a in inputs.items()}
    for k, a in (consts or {}).items():
        vals[k] = g.add_constant(k, a)
    out = build(Builder(g), vals)
    g.outputs = list(out) if isinstance(out, (tuple, list)) else [out]
    g.verify()
    return g


def _dt(a: np.ndarray) -> str:
    from ridgeline.ir.dtypes import from_numpy
    return from_numpy(a.dtype).name


def fused(g: Graph, inputs: list, build: Callable, *, kind: str = "elementwise", shapes=None):
    """Add a ``Fused`` node whose body ``build(b, params)`` makes; returns its outputs."""
    body = Graph("body")
    params = [body.add_input(f"p{i}", v.type) for i, v in enumerate(inputs)]
    out = build(Builder(body), params)
    body.outputs = list(out) if isinstance(out, (tuple, list)) else [out]
    node = g.add_node("Fused", inputs, {"kind": kind}, body=body)
    return node.outputs[0] if len(node.outputs) == 1 else tuple(node.outputs)


CASES: dict[str, Case] = {}


def case(name: str, inputs: dict[str, np.ndarray], build: Callable, ops: set[str],
         consts: dict[str, np.ndarray] | None = None) -> None:
    CASES[name] = Case(name, _graph(name, inputs, build, consts), inputs, ops)


# ------------------------------------------------------------------------------------ elementwise
_X = _normal(3, 37)
_POS = np.abs(_normal(3, 37)) + 0.05
_UNARY = {
    "Neg": _X, "Abs": _X, "Sqrt": _POS, "Reciprocal": _POS, "Exp": _X * 3, "Log": _POS, "Tanh": _X * 3,
    "Erf": _X * 2, "Sigmoid": _X * 4, "Relu": _X, "Cos": _X, "Sin": _X, "Tan": _X * 0.5, "Atan": _X,
    "Floor": _X * 4, "Ceil": _X * 4, "Round": np.round(_X * 4) / 2, "Sign": np.where(np.abs(_X) < 0.1, 0, _X).astype(np.float32),
    "Softplus": _X * 3, "Softsign": _X, "HardSwish": _X * 4, "Mish": _X * 3,
}
for _op, _x in _UNARY.items():
    case(f"unary-{_op}", {"x": _x}, lambda b, v, op=_op: b.op(op, v["x"]), {_op})
for _op, _attrs in {"LeakyRelu": {"alpha": 0.1}, "Elu": {"alpha": 0.7}, "Selu": {}, "Celu": {"alpha": 1.5},
                    "ThresholdedRelu": {"alpha": 0.3}, "HardSigmoid": {"alpha": 0.3, "beta": 0.4}}.items():
    case(f"unary-{_op}", {"x": _X * 3}, lambda b, v, op=_op, a=_attrs: b.op(op, v["x"], **a), {_op})
case("gelu-erf", {"x": _X * 3}, lambda b, v: b.Gelu(v["x"]), {"Gelu"})
case("gelu-tanh", {"x": _X * 3}, lambda b, v: b.Gelu(v["x"], approximate="tanh"), {"Gelu"})
case("not", {"x": _X > 0}, lambda b, v: b.Not(v["x"]), {"Not"})
_SPECIAL = np.array([[np.nan, np.inf, -np.inf, 0.0, 1.5, -2.0, 3e38, -1e-40]], np.float32)
case("isnan", {"x": _SPECIAL}, lambda b, v: b.IsNaN(v["x"]), {"IsNaN"})
case("isinf", {"x": _SPECIAL}, lambda b, v: (b.IsInf(v["x"]), b.IsInf(v["x"], detect_negative=0)), {"IsInf"})
case("exp-log-special", {"x": np.abs(_SPECIAL)}, lambda b, v: (b.Exp(v["x"]), b.Log(v["x"]), b.Tanh(v["x"])),
     {"Exp", "Log", "Tanh"})

# binary, with broadcasting from both sides and 1-element dims
_A, _B = _normal(4, 1, 37), _normal(3, 1)
for _op in ("Add", "Sub", "Mul", "Div"):
    case(f"binary-{_op}", {"a": _A, "b": _B}, lambda b, v, op=_op: b.op(op, v["a"], v["b"]), {_op})
_IA = _rng.integers(-50, 50, (5, 7)).astype(np.int64)
_IB = np.where(_rng.integers(-6, 6, (5, 7)) == 0, 3, _rng.integers(-6, 6, (5, 7))).astype(np.int64)
for _op in ("Add", "Sub", "Mul", "Div"):
    case(f"int-{_op}", {"a": _IA, "b": _IB}, lambda b, v, op=_op: b.op(op, v["a"], v["b"]), {_op})
case("mod-int", {"a": _IA, "b": _IB}, lambda b, v: (b.Mod(v["a"], v["b"]), b.Mod(v["a"], v["b"], fmod=1)), {"Mod"})
case("mod-float", {"a": _X * 5, "b": np.full((1, 37), 1.7, np.float32)},
     lambda b, v: (b.Mod(v["a"], v["b"], fmod=1), b.Mod(v["a"], v["b"])), {"Mod"})
case("pow", {"x": _POS, "y": _X}, lambda b, v: b.Pow(v["x"], v["y"]), {"Pow"})
case("pow-const", {"x": _X}, lambda b, v: (b.Pow(v["x"], v["three"]), b.Pow(v["x"], v["two"])), {"Pow"},
     consts={"three": np.array(3.0, np.float32), "two": np.array(2.0, np.float32)})
case("prelu", {"x": _X, "s": _normal(37)}, lambda b, v: b.PRelu(v["x"], v["s"]), {"PRelu"})
for _op in ("Max", "Min", "Sum", "Mean"):
    case(f"variadic-{_op}", {"a": _normal(2, 3, 37), "b": _normal(3, 1), "c": _normal(37)},
         lambda b, v, op=_op: b.op(op, v["a"], v["b"], v["c"]), {_op})
for _op in ("Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual"):
    _r = np.round(_X * 2)
    case(f"compare-{_op}", {"a": _r, "b": np.round(_normal(37) * 2)},
         lambda b, v, op=_op: b.op(op, v["a"], v["b"]), {_op})
for _op in ("And", "Or", "Xor"):
    case(f"logic-{_op}", {"a": _X > 0, "b": _normal(37) > 0}, lambda b, v, op=_op: b.op(op, v["a"], v["b"]), {_op})
for _op in ("BitwiseAnd", "BitwiseOr", "BitwiseXor"):
    case(f"bitwise-{_op}", {"a": _IA.astype(np.int32), "b": _IB.astype(np.int32)},
         lambda b, v, op=_op: b.op(op, v["a"], v["b"]), {_op})
case("where", {"c": _X > 0, "x": _X, "y": _normal(37)}, lambda b, v: b.Where(v["c"], v["x"], v["y"]), {"Where"})
case("clip", {"x": _X * 3}, lambda b, v: (b.Clip(v["x"], v["lo"], v["hi"]), b.Clip(v["x"], None, v["hi"]), b.Clip(v["x"])),
     {"Clip"}, consts={"lo": np.array(-0.5, np.float32), "hi": np.array(0.7, np.float32)})
case("cast", {"x": _X * 100, "i": _IA, "m": _X > 0},
     lambda b, v: (b.Cast(v["x"], to="i32"), b.Cast(v["x"], to="f64"), b.Cast(v["i"], to="f32"), b.Cast(v["m"], to="f32"),
                   b.Cast(v["x"], to="bool"), b.Cast(v["i"], to="i8"), b.Cast(v["x"], to="f16")), {"Cast"})
case("castlike", {"x": _X, "t": np.zeros(1, np.float64)}, lambda b, v: b.CastLike(v["x"], v["t"]), {"CastLike"})

# fused elementwise bodies (what fuse-elementwise produces), with constants inside and outside
_FX = _normal(2, 5, 37)


def _gelu_chain(b, p):
    y = b.Add(b.Mul(p[0], p[1]), p[2])
    return b.Gelu(y, approximate="tanh")


case("fused-gelu-chain", {"x": _FX, "a": _normal(37), "c": _normal(5, 1)},
     lambda b, v: fused(b.graph, [v["x"], v["a"], v["c"]], _gelu_chain), {"Fused"})


def _two_outputs(b, p):
    s = b.Sigmoid(p[0])
    w = b.Where(b.Greater(p[0], p[1]), s, b.Mul(p[0], b.constant(np.float32(0.25))))
    return s, b.Add(w, b.constant(np.linspace(-1, 1, 37).astype(np.float32)))


case("fused-two-outputs", {"x": _FX, "y": _normal(37)},
     lambda b, v: fused(b.graph, [v["x"], v["y"]], _two_outputs), {"Fused"})
case("fused-one-element", {"x": _normal(1, 1), "y": _normal(1)},
     lambda b, v: fused(b.graph, [v["x"], v["y"]], lambda bb, p: bb.Tanh(bb.Sub(p[0], p[1]))), {"Fused"})

# ------------------------------------------------------------------------------------ matmul
case("matmul-2d", {"a": _normal(13, 37), "b": _normal(37, 19)}, lambda b, v: b.MatMul(v["a"], v["b"]), {"MatMul"})
case("matmul-batched", {"a": _normal(2, 3, 5, 37), "b": _normal(3, 37, 7)}, lambda b, v: b.MatMul(v["a"], v["b"]), {"MatMul"})
case("matmul-vec", {"a": _normal(37), "b": _normal(2, 37, 5)}, lambda b, v: b.MatMul(v["a"], v["b"]), {"MatMul"})
case("matmul-weights", {"a": _normal(1, 3, 37)}, lambda b, v: b.MatMul(v["a"], v["w"]), {"MatMul"},
     consts={"w": _normal(37, 33)})
case("gemm", {"a": _normal(37, 5), "b": _normal(11, 37), "c": _normal(11)},
     lambda b, v: (b.Gemm(v["a"], v["b"], v["c"], transA=1, transB=1, alpha=0.5, beta=2.0), b.Gemm(v["a"], v["b"], transA=1, transB=1)),
     {"Gemm"})

# ------------------------------------------------------------------------------------ reductions
_RX = _normal(3, 4, 37)
for _op in ("ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceL1", "ReduceL2", "ReduceSumSquare",
            "ReduceLogSumExp"):
    case(f"reduce-{_op}", {"x": _RX}, lambda b, v, op=_op: (b.op(op, v["x"], v["last"]), b.op(op, v["x"], v["first"], keepdims=0),
                                                            b.op(op, v["x"], v["mid"]), b.op(op, v["x"])),
         {_op}, consts={"last": np.array([-1], np.int64), "first": np.array([0], np.int64), "mid": np.array([1, 2], np.int64)})
case("reduce-ReduceProd", {"x": 1 + 0.1 * _RX}, lambda b, v: (b.ReduceProd(v["x"], v["last"]), b.ReduceProd(v["x"], v["first"])),
     {"ReduceProd"}, consts={"last": np.array([-1], np.int64), "first": np.array([0], np.int64)})
case("reduce-ReduceLogSum", {"x": 0.1 + np.abs(_RX)}, lambda b, v: b.ReduceLogSum(v["x"], v["last"]), {"ReduceLogSum"},
     consts={"last": np.array([-1], np.int64)})
case("argmax", {"x": _RX}, lambda b, v: (b.ArgMax(v["x"], axis=2), b.ArgMin(v["x"], axis=0, keepdims=0, select_last_index=1)),
     {"ArgMax", "ArgMin"})
case("softmax", {"x": _RX * 3}, lambda b, v: (b.Softmax(v["x"]), b.LogSoftmax(v["x"]), b.Softmax(v["x"], axis=1)),
     {"Softmax", "LogSoftmax"})
_MASKED = _RX.copy()
_MASKED[0, 1, :] = -np.inf
case("softmax-masked-row", {"x": _MASKED}, lambda b, v: b.Softmax(v["x"]), {"Softmax"})
case("cumsum", {"x": _RX}, lambda b, v: (b.CumSum(v["x"], v["ax"]), b.CumSum(v["x"], v["ax"], exclusive=1, reverse=1)),
     {"CumSum"}, consts={"ax": np.array(2, np.int64)})

# ------------------------------------------------------------------------------------ normalization
case("layernorm", {"x": _normal(3, 5, 37) * 2 + 1, "s": _normal(37), "c": _normal(37)},
     lambda b, v: b.LayerNormalization(v["x"], v["s"], v["c"], epsilon=1e-5, _outputs=3), {"LayerNormalization"})
case("layernorm-axis", {"x": _normal(2, 3, 37)}, lambda b, v: b.LayerNormalization(v["x"], v["s"], axis=1),
     {"LayerNormalization"}, consts={"s": _normal(37)})
case("rmsnorm", {"x": _normal(3, 5, 37), "s": _normal(37)}, lambda b, v: b.RMSNormalization(v["x"], v["s"], epsilon=1e-6),
     {"RMSNormalization"})
case("norms-stash-f64", {"x": _normal(3, 5, 37) * 3 + 2, "s": _normal(37), "c": _normal(37)},
     lambda b, v: (b.LayerNormalization(v["x"], v["s"], v["c"], stash_type=11, _outputs=1),
                   b.RMSNormalization(v["x"], v["s"], stash_type=11)),
     {"LayerNormalization", "RMSNormalization"})

# ------------------------------------------------------------------------------------ attention
_Q, _K, _V = _normal(2, 4, 5, 16), _normal(2, 2, 7, 16), _normal(2, 2, 7, 16)
case("attention-gqa-causal", {"q": _Q, "k": _K, "v": _V}, lambda b, v: b.Attention(v["q"], v["k"], v["v"], is_causal=1, _outputs=1),
     {"Attention"})
case("attention-cache-mask", {"q": _normal(1, 2, 1, 8), "k": _normal(1, 2, 1, 8), "v": _normal(1, 2, 1, 8),
                              "m": _normal(1, 1, 1, 6), "pk": _normal(1, 2, 5, 8), "pv": _normal(1, 2, 5, 8)},
     lambda b, v: b.Attention(v["q"], v["k"], v["v"], v["m"], v["pk"], v["pv"], is_causal=1, _outputs=3), {"Attention"})
case("attention-3d-boolmask-softcap", {"q": _normal(2, 3, 12), "k": _normal(2, 9, 12), "v": _normal(2, 9, 12),
                                       "m": _rng.random((3, 9)) < 0.7},
     lambda b, v: b.Attention(v["q"], v["k"], v["v"], v["m"], q_num_heads=3, kv_num_heads=3, softcap=2.0, scale=0.3,
                             _outputs=3),
     {"Attention"})
_COS = np.cos(np.arange(16 * 4).reshape(16, 4) / 7).astype(np.float32)
_SIN = np.sin(np.arange(16 * 4).reshape(16, 4) / 7).astype(np.float32)
case("rotary", {"x": _normal(2, 3, 5, 8), "pos": np.array([[0, 1, 2, 3, 4], [7, 9, 2, 15, 0]], np.int64),
                "x3": _normal(2, 5, 36)},
     lambda b, v: (b.RotaryEmbedding(v["x"], v["cos"], v["sin"], v["pos"]),
                   b.RotaryEmbedding(v["x"], v["cos"], v["sin"], v["pos"], interleaved=1),
                   b.RotaryEmbedding(v["x3"], v["cos"], v["sin"], v["pos"], num_heads=3, rotary_embedding_dim=8,
                                     interleaved=1)),
     {"RotaryEmbedding"}, consts={"cos": _COS, "sin": _SIN})
case("rotary-no-positions", {"x": _normal(2, 3, 5, 8), "cos": _normal(2, 5, 4), "sin": _normal(2, 5, 4)},
     lambda b, v: b.RotaryEmbedding(v["x"], v["cos"], v["sin"]), {"RotaryEmbedding"})

# ------------------------------------------------------------------------------------ movement and views
_M = _normal(2, 3, 37)
case("transpose", {"x": _M}, lambda b, v: (b.Transpose(v["x"], perm=[2, 0, 1]), b.Transpose(v["x"])), {"Transpose"})
case("concat", {"x": _M, "y": _normal(2, 1, 37)}, lambda b, v: (b.Concat(v["x"], v["y"], axis=1), b.Concat(v["x"], v["x"], axis=-1)),
     {"Concat"})
case("split", {"x": _M}, lambda b, v: (*b.Split(v["x"], v["sizes"], axis=2, _outputs=2), *b.Split(v["x"], axis=1, num_outputs=3, _outputs=3)),
     {"Split"}, consts={"sizes": np.array([30, 7], np.int64)})
case("slice", {"x": _M}, lambda b, v: (b.Slice(v["x"], v["s"], v["e"], v["a"], v["st"]), b.Slice(v["x"], v["s2"], v["e2"])),
     {"Slice"}, consts={"s": np.array([-1, 1], np.int64), "e": np.array([-1000, 30], np.int64), "a": np.array([2, 1], np.int64),
                        "st": np.array([-3, 1], np.int64), "s2": np.array([1], np.int64), "e2": np.array([2 ** 62], np.int64)})
case("gather", {"x": _normal(11, 37), "i": np.array([[3, -1, 0], [10, 2, 2]], np.int64)},
     lambda b, v: (b.Gather(v["x"], v["i"]), b.Gather(v["x"], v["i"], axis=1)), {"Gather"})
case("gather-elements", {"x": _normal(4, 5), "i": _rng.integers(-5, 5, (4, 3)).astype(np.int64)},
     lambda b, v: b.GatherElements(v["x"], v["i"], axis=1), {"GatherElements"})
case("gather-nd", {"x": _normal(3, 4, 5), "i": _rng.integers(-3, 3, (2, 2)).astype(np.int64),
                   "ib": _rng.integers(0, 4, (3, 2, 1)).astype(np.int64)},
     lambda b, v: (b.GatherND(v["x"], v["i"]), b.GatherND(v["x"], v["ib"], batch_dims=1)), {"GatherND"})
case("expand", {"x": _normal(3, 1)}, lambda b, v: b.Expand(v["x"], v["shape"]), {"Expand"},
     consts={"shape": np.array([2, 1, 37], np.int64)})
case("tile", {"x": _normal(2, 3)}, lambda b, v: b.Tile(v["x"], v["reps"]), {"Tile"}, consts={"reps": np.array([2, 3], np.int64)})
case("pad", {"x": _normal(3, 5)}, lambda b, v: (b.Pad(v["x"], v["p"], v["cv"]), b.Pad(v["x"], v["p"], mode="reflect"),
                                                b.Pad(v["x"], v["p"], mode="edge"), b.Pad(v["x"], v["p2"], mode="wrap")),
     {"Pad"}, consts={"p": np.array([1, 2, 0, 1], np.int64), "cv": np.array(1.5, np.float32),
                      "p2": np.array([0, -1, 2, 3], np.int64)})
case("trilu", {"x": _normal(2, 5, 6)}, lambda b, v: (b.Trilu(v["x"]), b.Trilu(v["x"], v["k"], upper=0)), {"Trilu"},
     consts={"k": np.array(1, np.int64)})
case("views", {"x": _M}, lambda b, v: (b.Reshape(v["x"], v["shape"]), b.Flatten(v["x"], axis=2), b.Squeeze(b.Unsqueeze(v["x"], v["ax"]), v["ax"]),
                                      b.Identity(v["x"])),
     {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"},
     consts={"shape": np.array([0, -1], np.int64), "ax": np.array([1], np.int64)})

# ------------------------------------------------------------------------------------ shape ops
case("shape-ops", {"x": _M}, lambda b, v: (b.Shape(v["x"]), b.Size(v["x"]), b.ConstantOfShape(b.Shape(v["x"], start=1), value=np.array([2.5], np.float32)),
                                          b.Range(v["s"], v["l"], v["d"])),
     {"Shape", "Size", "ConstantOfShape", "Range"},
     consts={"s": np.array(1, np.int64), "l": np.array(20, np.int64), "d": np.array(3, np.int64)})
case("shape-runtime", {"x": _M, "n": np.array(7, np.int64)}, lambda b, v: b.Range(v["zero"], v["n"], v["one"]), {"Range"},
     consts={"zero": np.array(0, np.int64), "one": np.array(1, np.int64)})

# ------------------------------------------------------------------------------------ more ops
_UNIT = np.clip(_X * 0.4, -0.95, 0.95).astype(np.float32)
for _op, _x in {"Asin": _UNIT, "Acos": _UNIT, "Atanh": _UNIT, "Sinh": _X, "Cosh": _X, "Asinh": _X * 3,
                "Acosh": 1.0 + np.abs(_X) * 3}.items():
    case(f"unary-{_op}", {"x": np.asarray(_x, np.float32)}, lambda b, v, op=_op: b.op(op, v["x"]), {_op})
case("swish-shrink", {"x": _X * 3}, lambda b, v: (b.Swish(v["x"], alpha=1.7), b.Shrink(v["x"], lambd=0.8, bias=0.3)),
     {"Swish", "Shrink"})
case("swiglu", {"a": _normal(3, 37) * 3, "b": _normal(3, 37)}, lambda b, v: b.SwiGLU(v["a"], v["b"], alpha=1.2), {"SwiGLU"})
case("bitwise-not-shift", {"a": _IA.astype(np.int32), "s": np.abs(_IB).astype(np.int32) % 40},
     lambda b, v: (b.BitwiseNot(v["a"]), b.BitShift(v["a"], v["s"], direction="LEFT"),
                   b.BitShift(v["a"], v["s"], direction="RIGHT")), {"BitwiseNot", "BitShift"})
case("bitshift-u8", {"a": _rng.integers(0, 255, (4, 9)).astype(np.uint8), "s": _rng.integers(0, 10, (4, 9)).astype(np.uint8)},
     lambda b, v: (b.BitShift(v["a"], v["s"], direction="LEFT"), b.BitShift(v["a"], v["s"], direction="RIGHT")),
     {"BitShift"})
case("cumprod", {"x": 1 + 0.1 * _RX}, lambda b, v: (b.CumProd(v["x"], v["ax"]), b.CumProd(v["x"], v["ax"], exclusive=1, reverse=1)),
     {"CumProd"}, consts={"ax": np.array(1, np.int64)})
case("topk-hardmax", {"x": np.round(_RX * 2) / 2}, lambda b, v: (*b.TopK(v["x"], v["k"], _outputs=2),
                                                                 *b.TopK(v["x"], v["k"], axis=0, largest=0, _outputs=2),
                                                                 b.Hardmax(v["x"])),
     {"TopK", "Hardmax"}, consts={"k": np.array([3], np.int64)})
case("det", {"x": _normal(2, 4, 4)}, lambda b, v: b.Det(v["x"]), {"Det"})
_NCHW = _normal(2, 8, 3, 5)
case("norms-nchw", {"x": _NCHW, "s": _normal(8), "c": _normal(8)},
     lambda b, v: (b.InstanceNormalization(v["x"], v["s"], v["c"]), b.GroupNormalization(v["x"], v["s"], v["c"], num_groups=4),
                   b.BatchNormalization(v["x"], v["s"], v["c"], v["m"], v["var"]), b.LpNormalization(v["x"], axis=1),
                   b.LpNormalization(v["x"], p=1), b.MeanVarianceNormalization(v["x"])),
     {"InstanceNormalization", "GroupNormalization", "BatchNormalization", "LpNormalization", "MeanVarianceNormalization"},
     consts={"m": _normal(8), "var": np.abs(_normal(8)) + 0.5})
case("space-depth", {"x": _normal(2, 8, 4, 6)}, lambda b, v: (b.DepthToSpace(v["x"], blocksize=2), b.DepthToSpace(v["x"], blocksize=2, mode="CRD"),
                                                             b.SpaceToDepth(v["x"], blocksize=2)),
     {"DepthToSpace", "SpaceToDepth"})
case("scatter", {"d": _normal(5, 4), "u": _normal(2, 4), "ue": _normal(2, 3)},
     lambda b, v: (b.ScatterND(v["d"], v["i"], v["u"]), b.ScatterND(v["d"], v["i"], v["u"], reduction="add"),
                   b.ScatterElements(v["d"], v["ie"], v["ue"], axis=1), b.ScatterElements(v["d"], v["ie"], v["ue"], axis=1, reduction="max")),
     {"ScatterND", "ScatterElements"}, consts={"i": np.array([[4], [-5]], np.int64), "ie": np.array([[0, 3, -1], [2, 1, 0]], np.int64)})
case("tensor-scatter", {"cache": _normal(2, 2, 6, 4), "u": _normal(2, 2, 2, 4), "w": np.array([1, 5], np.int64)},
     lambda b, v: (b.TensorScatter(v["cache"], v["u"], v["w"], mode="circular"), b.TensorScatter(v["cache"], v["u"])),
     {"TensorScatter"})
case("onehot-nonzero-compress", {"i": np.array([[0, 3, -1], [2, 1, 4]], np.int64), "x": np.where(_X > 0.5, _X, 0).astype(np.float32),
                                 "c": np.array([True, False, True])},
     lambda b, v: (b.OneHot(v["i"], v["depth"], v["vals"]), b.NonZero(v["x"]), b.Compress(v["x"], v["c"], axis=0),
                   b.Compress(v["x"], v["c"])),
     {"OneHot", "NonZero", "Compress"}, consts={"depth": np.array(5, np.int64), "vals": np.array([-1.0, 2.0], np.float32)})
case("reverse-crop", {"x": _normal(5, 3, 4), "lens": np.array([5, 2, 0], np.int64)},
     lambda b, v: (b.ReverseSequence(v["x"], v["lens"]), b.CenterCropPad(v["x"], v["shape"])),
     {"ReverseSequence", "CenterCropPad"}, consts={"shape": np.array([3, 6, 3], np.int64)})
case("eye-bitcast-dropout", {"x": _normal(3, 5)}, lambda b, v: (b.EyeLike(v["x"], k=1), b.EyeLike(v["x"], dtype="i32", k=-1),
                                                                b.BitCast(v["x"], to="i32"), b.Dropout(v["x"], _outputs=2)[0]),
     {"EyeLike", "BitCast", "Dropout"})
case("einsum", {"a": _normal(2, 3, 4), "b": _normal(2, 4, 5)}, lambda b, v: (b.Einsum(v["a"], v["b"], equation="bij,bjk->bik"),
                                                                           b.Einsum(v["a"], equation="bij->ji")),
     {"Einsum"})
_QA = _rng.integers(0, 255, (4, 6)).astype(np.uint8)
_QB = _rng.integers(-128, 127, (6, 3)).astype(np.int8)
case("quant-matmul", {"a": _QA, "b": _QB},
     lambda b, v: (b.MatMulInteger(v["a"], v["b"], v["azp"], v["bzp"]),
                   b.QLinearMatMul(v["a"], v["as"], v["azp"], v["b"], v["bs"], v["bzp"], v["ys"], v["yzp"])),
     {"MatMulInteger", "QLinearMatMul"},
     consts={"azp": np.array(128, np.uint8), "bzp": np.array(3, np.int8), "as": np.array(0.02, np.float32),
             "bs": np.array(0.05, np.float32), "ys": np.array(0.3, np.float32), "yzp": np.array(10, np.uint8)})
case("quantize", {"x": _normal(4, 6) * 3}, lambda b, v: (b.QuantizeLinear(v["x"], v["s"], v["zp"]),
                                                         b.DequantizeLinear(b.QuantizeLinear(v["x"], v["sa"], v["zpa"], axis=1), v["sa"], v["zpa"], axis=1),
                                                         *b.DynamicQuantizeLinear(v["x"], _outputs=3),
                                                         b.QuantizeLinear(v["x"], v["s"], output_dtype="f8e4m3")),
     {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"},
     consts={"s": np.array(0.05, np.float32), "zp": np.array(3, np.int8), "sa": np.abs(_normal(6)) + 0.01,
             "zpa": _rng.integers(0, 20, 6).astype(np.uint8)})
case("linear-attention", {"q": _normal(2, 5, 8), "k": _normal(2, 5, 4), "v": _normal(2, 5, 6), "state": _normal(2, 2, 2, 3),
                          "g": -np.abs(_normal(2, 5, 2)), "beta": 1 / (1 + np.exp(-_normal(2, 5, 2)))},
     lambda b, v: (*b.LinearAttention(v["q"], v["k"], v["v"], v["state"], v["g"], v["beta"], q_num_heads=4, kv_num_heads=2,
                                      _outputs=2),),
     {"LinearAttention"})
case("causal-conv", {"x": _normal(2, 4, 7), "w": _normal(4, 1, 3), "c": _normal(4), "s": _normal(2, 4, 2)},
     lambda b, v: (*b.CausalConvWithState(v["x"], v["w"], v["c"], v["s"], activation="silu", _outputs=2),),
     {"CausalConvWithState"})
case("attention-window-external-cache", {"q": _normal(2, 4, 3, 8), "k": _normal(2, 2, 9, 8), "v": _normal(2, 2, 9, 8),
                                         "n": np.array([9, 6], np.int64)},
     lambda b, v: (b.Attention(v["q"], v["k"], v["v"], None, None, None, v["n"], is_causal=1, left_window_size=2, _outputs=1),
                   b.Attention(v["q"], v["k"], v["v"], right_window_size=1, left_window_size=4, _outputs=1)),
     {"Attention"})


def _epilogue(b, p):
    y = b.Add(b.MatMul(p[0], p[1]), p[2])
    return b.Add(b.Gelu(y, approximate="tanh"), p[3])


case("matmul-epilogue", {"x": _normal(2, 9, 37), "w": _normal(37, 45), "bias": _normal(45), "res": _normal(2, 9, 45)},
     lambda b, v: fused(b.graph, [v["x"], v["w"], v["bias"], v["res"]], _epilogue, kind="matmul-epilogue"), {"Fused"})
case("matmul-epilogue-decode", {"x": _normal(1, 1, 37), "w": _normal(37, 70), "g": _normal(1, 1, 70)},
     lambda b, v: fused(b.graph, [v["x"], v["w"], v["g"]],
                        lambda bb, p: bb.Mul(bb.Sigmoid(bb.MatMul(p[0], p[1])), bb.Mul(p[2], bb.constant(np.float32(0.5)))),
                        kind="matmul-epilogue"), {"Fused"})

# ------------------------------------------------------------------------------------ conv, pools, losses
_IMG = _normal(2, 4, 7, 9)
case("conv", {"x": _IMG, "w": _normal(6, 2, 3, 2), "c": _normal(6)},
     lambda b, v: (b.Conv(v["x"], v["w"], v["c"], group=2, pads=[1, 0, 2, 1], strides=[2, 1], dilations=[1, 2]),
                   b.Conv(v["x"], v["w"], group=2, auto_pad="SAME_UPPER")),
     {"Conv"})
case("conv-1d-integer", {"x": _rng.integers(0, 255, (1, 3, 11)).astype(np.uint8), "w": _rng.integers(-20, 20, (4, 3, 3)).astype(np.int8)},
     lambda b, v: b.ConvInteger(v["x"], v["w"], v["xz"], pads=[1, 1]), {"ConvInteger"},
     consts={"xz": np.array(100, np.uint8)})
case("conv-transpose", {"x": _normal(1, 4, 3, 5), "w": _normal(4, 3, 3, 2)},
     lambda b, v: (b.ConvTranspose(v["x"], v["w"], strides=[2, 3], pads=[1, 0, 0, 1], output_padding=[1, 0]),
                   b.ConvTranspose(v["x"], v["w"], group=2, auto_pad="SAME_LOWER", strides=[2, 1])),
     {"ConvTranspose"})
case("pools", {"x": _IMG},
     lambda b, v: (b.AveragePool(v["x"], kernel_shape=[3, 2], pads=[1, 1, 1, 0], strides=[2, 2], count_include_pad=1),
                   b.AveragePool(v["x"], kernel_shape=[2, 3], ceil_mode=1, strides=[2, 2]),
                   *b.MaxPool(v["x"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2], dilations=[1, 2], _outputs=2),
                   *b.MaxPool(v["x"], kernel_shape=[2, 2], storage_order=1, _outputs=2),
                   b.LpPool(v["x"], kernel_shape=[2, 2], p=3), b.GlobalAveragePool(v["x"]), b.GlobalMaxPool(v["x"]),
                   b.GlobalLpPool(v["x"], p=3)),
     {"AveragePool", "MaxPool", "LpPool", "GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"})
case("losses", {"s": _normal(4, 5, 3), "t": np.array([[0, 4, 2], [1, 1, -1], [3, 0, 0], [2, 2, 4]], np.int64),
                "w": np.abs(_normal(5)) + 0.1},
     lambda b, v: (b.NegativeLogLikelihoodLoss(v["s"], v["t"], v["w"], ignore_index=-1),
                   b.NegativeLogLikelihoodLoss(v["s"], v["t"], reduction="none", ignore_index=-1),
                   *b.SoftmaxCrossEntropyLoss(v["s"], v["t"], ignore_index=-1, reduction="sum", _outputs=2)),
     {"NegativeLogLikelihoodLoss", "SoftmaxCrossEntropyLoss"})
case("windows", {}, lambda b, v: (b.HannWindow(v["n"]), b.HammingWindow(v["n"], periodic=0), b.BlackmanWindow(v["n"])),
     {"HannWindow", "HammingWindow", "BlackmanWindow"}, consts={"n": np.array(10, np.int64)})
case("unique", {"x": np.array([[2, 1, 2], [3, 1, 2], [2, 1, 2]], np.int64)},
     lambda b, v: (*b.Unique(v["x"], _outputs=4), *b.Unique(v["x"], sorted=0, _outputs=4),
                   *b.Unique(v["x"], axis=0, _outputs=4)),
     {"Unique"})
