"""Elementwise ops and Cast against onnx.reference on random data, dtypes and broadcasts."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from op_harness import check_op
from ridgeline.ir.dtypes import DTYPES

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the reference overflows casts on purpose

_FLOATS = ("f64", "f32", "f16", "bf16")
_INTS = ("i64", "i32", "i16", "i8", "u64", "u32", "u16", "u8")


def _np(name: str) -> np.dtype:
    return DTYPES[name].np_dtype


def _random_shapes(rng, rank_max=4):
    """Two shapes that broadcast against each other (some dims 1, some missing)."""
    out = tuple(int(d) for d in rng.integers(1, 5, size=rng.integers(0, rank_max + 1)))
    other = list(out[rng.integers(0, len(out) + 1):])
    for k in range(len(other)):
        if rng.random() < 0.3:
            other[k] = 1
    return out, tuple(other)


def _ints(rng, dt, shape, lo=-20, hi=20, nonzero=False):
    info = np.iinfo(dt)
    a = rng.integers(max(lo, info.min), min(hi, info.max) + 1, size=shape).astype(dt)
    if nonzero:
        a[a == 0] = 1
    return a


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("dt", ["i64", "i32", "i8", "u8"])
def test_integer_div_truncates_and_mod_follows_the_divisor(seed, dt):
    rng = np.random.default_rng(seed)
    sa, sb = _random_shapes(rng)
    a, b = _ints(rng, _np(dt), sa), _ints(rng, _np(dt), sb, nonzero=True)
    check_op("Div", [a, b])
    check_op("Mod", [a, b])
    check_op("Mod", [a, b], {"fmod": 1})


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("dt", ["f32", "f16", "f64"])
def test_float_mod_and_fmod(seed, dt):
    rng = np.random.default_rng(seed)
    sa, sb = _random_shapes(rng)
    a = (rng.standard_normal(sa) * 10).astype(_np(dt))
    b = (rng.standard_normal(sb) * 3).astype(_np(dt))
    check_op("Mod", [a, b], {"fmod": 1}, rtol=1e-3, atol=1e-3)
    check_op("Mod", [a, b], {"fmod": 0}, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("x_dt,y_dt", [("f32", "i64"), ("f32", "f16"), ("f16", "f32"), ("i32", "i32"),
                                       ("i64", "i64"), ("i32", "f32"), ("f64", "i32"), ("bf16", "f32")])
def test_pow_with_mixed_types_keeps_the_base_type(x_dt, y_dt):
    rng = np.random.default_rng(1)
    if DTYPES[x_dt].is_integer:
        x = _ints(rng, _np(x_dt), (3, 4), -5, 5)
    else:
        x = np.abs(rng.standard_normal((3, 4))).astype(_np(x_dt)) + _np(x_dt).type(0.5)
    y = _ints(rng, _np(y_dt), (4,), 0, 4) if DTYPES[y_dt].is_integer else \
        rng.uniform(-2, 2, size=(4,)).astype(_np(y_dt))
    if DTYPES[x_dt].is_integer and not DTYPES[y_dt].is_integer:
        y = np.round(y) + _np(y_dt).type(2)  # integer bases to float powers: keep results integral
    rtol = 1e-2 if "bf16" in (x_dt, y_dt) else 2e-3 if "f16" in (x_dt, y_dt) else 1e-6
    check_op("Pow", [x, y], rtol=rtol, atol=1e-6)


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div", "Max", "Min", "Sum", "Mean", "Equal", "Less",
                                "Greater", "LessOrEqual", "GreaterOrEqual", "PRelu"])
@pytest.mark.parametrize("seed", range(3))
def test_broadcasting_binary_ops(op, seed):
    rng = np.random.default_rng(seed)
    sa, sb = _random_shapes(rng)
    a = rng.standard_normal(sa).astype(np.float32)
    b = rng.standard_normal(sb).astype(np.float32)
    if op == "PRelu":
        sa = sa or (1,)
        a, b = rng.standard_normal(sa).astype(np.float32), rng.standard_normal(sa[-1:]).astype(np.float32)
    check_op(op, [a, b], symbolic={0: {0: "d0"}} if sa and sa[0] > 1 and op != "PRelu" and
             (len(sb) < len(sa) or (sb and sb[0] == 1)) else None)


@pytest.mark.parametrize("seed", range(4))
def test_where_and_clip_broadcast(seed):
    rng = np.random.default_rng(seed)
    sa, sb = _random_shapes(rng)
    cond = rng.random(sb) < 0.5
    x, y = rng.standard_normal(sa).astype(np.float32), rng.standard_normal(sb).astype(np.float32)
    check_op("Where", [cond, x, y])
    lo, hi = np.array(-0.5, np.float32), np.array(0.7, np.float32)
    check_op("Clip", [x, lo, hi])
    check_op("Clip", [x, None, hi])
    xi = _ints(rng, np.int32, sa)
    check_op("Clip", [xi, np.array(-3, np.int32), None])


@pytest.mark.parametrize("op,attrs", [("Gelu", {}), ("Gelu", {"approximate": "tanh"}), ("Erf", {}),
                                      ("Sigmoid", {}), ("Softplus", {}), ("Swish", {"alpha": 1.702}),
                                      ("HardSwish", {}), ("Elu", {"alpha": 0.5}), ("Mish", {}), ("Celu", {}),
                                      ("Selu", {}), ("HardSigmoid", {}), ("LeakyRelu", {"alpha": 0.2}),
                                      ("Tanh", {}), ("Atanh", {}), ("Shrink", {"lambd": 0.3, "bias": 0.1})])
@pytest.mark.parametrize("dt", ["f32", "f16", "f64"])
def test_activations(op, attrs, dt):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((4, 7)) * (0.5 if op == "Atanh" else 3)).astype(_np(dt))
    if op == "Atanh":
        x = np.clip(x, -0.9, 0.9).astype(_np(dt))
    rtol = 2e-3 if dt == "f16" else 1e-5
    check_op(op, [x], attrs, rtol=rtol, atol=2e-3 if dt == "f16" else 1e-6)


# ------------------------------------------------------------------------------------------ Cast
def _cast_sources(name: str, target: str) -> np.ndarray:
    """Values of dtype ``name`` whose conversion to ``target`` ONNX defines."""
    dt = _np(name)
    if name == "bool":
        return np.array([True, False, True])
    if name in ("f8e4m3", "f8e5m2"):
        vals = np.arange(256, dtype=np.uint8).view(dt)
        if DTYPES[target].is_integer or target == "bool":  # NaN/out of range -> int is undefined
            f = vals.astype(np.float32)
            vals = vals[np.isfinite(f) & (np.abs(f) < 100)]
            if DTYPES[target].kind == "uint":
                vals = vals[vals.astype(np.float32) >= 0]
        return vals
    if name in ("i4", "u4"):
        return np.arange(-8 if name == "i4" else 0, 8 if name == "i4" else 16).astype(dt)
    if DTYPES[name].is_integer:
        info = np.iinfo(dt)
        vals = [0, 1, 2, 3, 7, 8, 15, 16, 100, 127, 255, 1000, 65535, 70000, -1, -2, -8, -9, -100, -129,
                int(info.max), int(info.min)]
        return np.array([v for v in vals if info.min <= v <= info.max], dtype=dt)
    floats = [0.0, -0.0, 0.5, 1.5, 2.5, -2.5, 3.7, -3.7, 7.0, 100.25, -100.5, 448.0, 449.0, 464.0, 500.0,
              1e4, 57344.0, 61440.0, 1e-3, -6e-5]
    specials = [np.inf, -np.inf, np.nan]
    if DTYPES[target].is_integer:
        info = ml_dtypes.iinfo(_np(target))
        lo = -16 if target in ("i4", "u4") else max(float(info.min), -1e4)
        hi = 16 if target in ("i4", "u4") else min(float(info.max), 1e4)
        vals = [v for v in floats if lo <= v <= hi and (v >= 0 or DTYPES[target].kind == "int")]
    elif target == "bool":
        vals = floats + [np.inf, -np.inf]
    else:
        vals = floats + specials
    return np.array(vals, dtype=np.float64).astype(dt)


_CASTABLE = ["f64", "f32", "f16", "bf16", "f8e4m3", "f8e5m2", "i64", "i32", "i16", "i8", "u64", "u32", "u16",
             "u8", "i4", "u4", "bool"]


@pytest.mark.parametrize("src", _CASTABLE)
def test_cast_matrix_matches_reference(src):
    """Every pair of IR dtypes (saturate on and off for fp8 targets), on edge values: rounding
    to nearest even, fp8 overflow/NaN/inf rules, integer wrap-around."""
    from onnx import helper
    for dst in _CASTABLE:
        x = _cast_sources(src, dst)
        if {src, dst} == {"i4", "u4"}:
            continue  # onnx.reference cannot convert between them (ml_dtypes refuses): see below
        to = DTYPES[dst].onnx_code
        for saturate in ((0, 1) if dst.startswith("f8") else (1,)):
            check_op("Cast", [x], {"to": to, "saturate": saturate})
            check_op("CastLike", [x, np.zeros(1, _np(dst))], {"saturate": saturate})
    assert helper  # the codes above are ONNX's TensorProto codes


def test_cast_between_int4_and_uint4_wraps():
    from op_harness import one_node_model
    from ridgeline.frontends.onnx import load_onnx
    from ridgeline.testing.onnx_backend import StrictInterpreter
    i4 = np.arange(-8, 8).astype(ml_dtypes.int4)
    m = one_node_model("Cast", [i4], {"to": DTYPES["u4"].onnx_code})
    got = StrictInterpreter(load_onnx(m)).run({"in0": i4})["out0"]
    assert got.dtype == ml_dtypes.uint4
    assert got.astype(np.int64).tolist() == [8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7]
    u4 = np.arange(16).astype(ml_dtypes.uint4)
    m = one_node_model("Cast", [u4], {"to": DTYPES["i4"].onnx_code})
    back = StrictInterpreter(load_onnx(m)).run({"in0": u4})["out0"]
    assert back.astype(np.int64).tolist() == list(range(8)) + list(range(-8, 0))
