"""Quantization ops against onnx.reference: per-tensor, per-axis and blocked scales; u8/i8/u16/
i16/u4/i4 saturation; fp8 with and without saturate; precision and output_dtype; rounding ties."""

from __future__ import annotations

import zlib

import ml_dtypes
import numpy as np
import pytest
from onnx import TensorProto

from op_harness import check_op, one_node_model
from ridgeline.frontends.onnx import load_onnx
from ridgeline.ir.errors import ModelError

_ZP = {"u8": np.uint8, "i8": np.int8, "u16": np.uint16, "i16": np.int16, "u4": ml_dtypes.uint4,
       "i4": ml_dtypes.int4, "f8e4m3": ml_dtypes.float8_e4m3fn, "f8e5m2": ml_dtypes.float8_e5m2}


def _scale_and_zp(rng, shape, target, scale_dt=np.float32):
    scale = rng.uniform(0.02, 0.3, size=shape).astype(scale_dt)
    if target.startswith("f8"):
        zp = np.zeros(shape, _ZP[target])
    else:
        info = ml_dtypes.iinfo(_ZP[target])
        zp = rng.integers(int(info.min) // 2, int(info.max) // 2 + 1, size=shape).astype(_ZP[target])
    return scale, zp


def _x(rng, shape, spread=30.0):
    x = (rng.standard_normal(shape) * spread).astype(np.float32)
    x.flat[:4] = [0.5, -0.5, 1.5, 2.5][: x.size]  # rounding ties (to even after dividing by 1)
    return x


@pytest.mark.parametrize("target", list(_ZP))
@pytest.mark.parametrize("granularity", ["tensor", "axis", "block"])
def test_quantize_dequantize_round_trip(target, granularity):
    rng = np.random.default_rng(zlib.crc32(f"{target}-{granularity}".encode()))
    x = _x(rng, (4, 6))
    if granularity == "tensor":
        sshape, attrs = (), {}
    elif granularity == "axis":
        sshape, attrs = (6,), {"axis": 1}
    else:
        sshape, attrs = (2, 6), {"axis": 0, "block_size": 2}
    scale, zp = _scale_and_zp(rng, sshape, target)
    if granularity == "tensor":
        scale = np.array(1.0, np.float32)  # exact ties reach the rounding
    q = check_op("QuantizeLinear", [x, scale, zp], attrs)[0]
    check_op("DequantizeLinear", [q, scale, zp], attrs)
    check_op("DequantizeLinear", [q, scale], attrs)


@pytest.mark.parametrize("saturate", [0, 1])
@pytest.mark.parametrize("target", ["f8e4m3", "f8e5m2"])
def test_fp8_quantize_saturation(saturate, target):
    x = np.array([0.0, -0.0, 1e-3, 300.0, 500.0, -1000.0, 6e4, 1e5, np.inf, -np.inf, np.nan], np.float32)
    check_op("QuantizeLinear", [x, np.array(1.0, np.float32), np.zeros((), _ZP[target])], {"saturate": saturate})


def test_blocked_with_a_short_last_block():
    rng = np.random.default_rng(3)
    x = _x(rng, (3, 7))
    scale = rng.uniform(0.05, 0.2, size=(3, 3)).astype(np.float32)  # ceil(7 / 3) = 3 blocks along axis 1
    zp = rng.integers(-5, 5, size=(3, 3)).astype(ml_dtypes.int4)
    q = check_op("QuantizeLinear", [x, scale, zp], {"axis": 1, "block_size": 3})[0]
    check_op("DequantizeLinear", [q, scale, zp], {"axis": 1, "block_size": 3})


def test_output_dtype_without_zero_point_and_defaults():
    rng = np.random.default_rng(4)
    x = _x(rng, (5,))
    scale = np.array(0.5, np.float32)
    check_op("QuantizeLinear", [x, scale])  # u8 by default
    check_op("QuantizeLinear", [x, scale], {"output_dtype": TensorProto.INT4})
    check_op("QuantizeLinear", [x, scale], {"output_dtype": TensorProto.INT16})


@pytest.mark.parametrize("scale_dt,out", [(np.float16, None), (np.float32, TensorProto.FLOAT16),
                                          (ml_dtypes.bfloat16, None), (np.float32, TensorProto.BFLOAT16)])
def test_dequantize_output_types(scale_dt, out):
    rng = np.random.default_rng(5)
    q = rng.integers(-128, 128, size=(4, 3)).astype(np.int8)
    scale = rng.uniform(0.01, 0.1, size=(3,)).astype(scale_dt)
    attrs = {"axis": 1} if out is None else {"axis": 1, "output_dtype": out}
    check_op("DequantizeLinear", [q, scale, np.zeros(3, np.int8)], attrs, rtol=1e-2)


def test_dequantize_int32_accumulators():
    rng = np.random.default_rng(6)
    acc = rng.integers(-2 ** 20, 2 ** 20, size=(3, 4)).astype(np.int32)
    check_op("DequantizeLinear", [acc, np.array(0.001, np.float32)])


def test_dynamic_quantize_linear():
    rng = np.random.default_rng(7)
    for x in (rng.standard_normal((3, 4)).astype(np.float32), np.abs(rng.standard_normal(6)).astype(np.float32),
              -np.abs(rng.standard_normal(6)).astype(np.float32), np.zeros(4, np.float32)):
        check_op("DynamicQuantizeLinear", [x], outputs=3)


@pytest.mark.parametrize("a_dt,b_dt", [(np.uint8, np.uint8), (np.int8, np.int8), (np.uint8, np.int8)])
def test_matmul_integer_zero_points(a_dt, b_dt):
    rng = np.random.default_rng(8)
    a = rng.integers(0 if a_dt == np.uint8 else -128, 128, size=(2, 4, 3)).astype(a_dt)
    b = rng.integers(0 if b_dt == np.uint8 else -128, 128, size=(3, 5)).astype(b_dt)
    check_op("MatMulInteger", [a, b])
    check_op("MatMulInteger", [a, b, np.array(3, a_dt), np.array(2, b_dt)])
    check_op("MatMulInteger", [a, b, None, rng.integers(0, 9, size=5).astype(b_dt)])


@pytest.mark.parametrize("dt,scale_dt", [(np.uint8, np.float32), (np.int8, np.float32), (np.int8, np.float16)])
def test_qlinear_matmul(dt, scale_dt):
    rng = np.random.default_rng(9)
    lo = 0 if dt == np.uint8 else -128
    a = rng.integers(lo, lo + 256, size=(2, 3, 4)).astype(dt)
    b = rng.integers(lo, lo + 256, size=(4, 5)).astype(dt)
    s = lambda: np.array([rng.uniform(0.01, 0.05)], scale_dt)  # noqa: E731
    z = lambda: np.array([rng.integers(lo, lo + 256) // 4], dt)  # noqa: E731
    check_op("QLinearMatMul", [a, s(), z(), b, s(), z(), np.array([0.2], scale_dt), z()])


@pytest.mark.parametrize("attrs,scale_shape,why", [
    ({"axis": 1}, (5,), "per-axis scale has 5 entries"),
    ({"axis": 0, "block_size": 2}, (3, 6), "expected ceil(4 / block_size 2) = 2"),
    ({"axis": 1}, (2, 6), "blocked quantization needs block_size"),
])
def test_bad_scale_shapes_are_named(attrs, scale_shape, why):
    x = np.zeros((4, 6), np.float32)
    m = one_node_model("QuantizeLinear", [x, np.ones(scale_shape, np.float32), np.zeros(scale_shape, np.uint8)],
                       attrs, const={1, 2})
    with pytest.raises(ModelError, match=why.replace("(", r"\(").replace(")", r"\)")):
        load_onnx(m)
