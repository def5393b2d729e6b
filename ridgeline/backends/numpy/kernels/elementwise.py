"""Reference kernels of ``ridgeline.ir.ops.elementwise`` (and Cast, CastLike)."""

from __future__ import annotations

import math

import numpy as np

from ....ir.dtypes import dtype as to_dtype
from . import kernel

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def _erf(x: np.ndarray) -> np.ndarray:
    # math.erf per element in float64: exact to double precision, no scipy dependency.
    out = np.vectorize(math.erf, otypes=[np.float64])(x.astype(np.float64))
    return out.astype(x.dtype)


@kernel("Sign", "Erf")
def sign_erf(node, x):
    return np.asarray(np.sign(x)) if node.op == "Sign" else _erf(x)


@kernel("Sigmoid")
def sigmoid(node, x):
    with np.errstate(over="ignore"):
        xf = x.astype(np.float64)
        return (1.0 / (1.0 + np.exp(-xf))).astype(x.dtype)


@kernel("Relu")
def relu(node, x):
    return np.maximum(x, x.dtype.type(0))


@kernel("BitShift")
def bit_shift(node, x, y):
    bits = x.dtype.itemsize * 8
    x, y = np.broadcast_arrays(x, y)
    y64 = y.astype(np.int64)
    out_of_range = (y64 < 0) | (y64 >= bits)
    amount = np.where(out_of_range, 0, y64).astype(x.dtype)
    if node.attr("direction") == "LEFT":
        out = np.left_shift(x, amount)
        fill = np.zeros_like(x)
    else:
        out = np.right_shift(x, amount)  # arithmetic for signed types, as ONNX asks
        fill = np.where(x < 0, -1, 0).astype(x.dtype) if x.dtype.kind == "i" else np.zeros_like(x)
    return np.where(out_of_range, fill, out).astype(x.dtype)


@kernel("Gelu")
def gelu(node, x):
    xf = x.astype(np.float64)
    with np.errstate(all="ignore"):  # inf in, the limits below out
        if node.attr("approximate") == "tanh":
            y = 0.5 * xf * (1.0 + np.tanh(_SQRT_2_OVER_PI * (xf + 0.044715 * xf ** 3)))
        else:
            y = 0.5 * xf * (1.0 + _erf(xf / math.sqrt(2.0)))
    # the limits (the formula gives -inf * 0 = NaN at -inf): Gelu(inf) = inf, Gelu(-inf) = 0
    y = np.where(np.isinf(xf), np.where(xf > 0, xf, 0.0), y)
    return y.astype(x.dtype)


def _int_div(a, b):
    # ONNX integer division truncates toward zero (C semantics), unlike numpy's floor division.
    q = np.floor_divide(a, b)
    r = np.remainder(a, b)
    return q + ((r != 0) & ((a < 0) ^ (b < 0))).astype(q.dtype)


@kernel("Add", "Sub", "Mul", "Div")
def arith(node, a, b):
    with np.errstate(all="ignore"):
        if node.op == "Add":
            out = a + b
        elif node.op == "Sub":
            out = a - b
        elif node.op == "Mul":
            out = a * b
        elif a.dtype.kind in "iu":
            out = _int_div(a, b)
        else:
            out = a / b
    return np.asarray(out).astype(a.dtype, copy=False)


@kernel("Mod")
def mod(node, a, b):
    with np.errstate(all="ignore"):
        out = np.fmod(a, b) if node.attr("fmod") else np.mod(a, b)
    return out.astype(a.dtype, copy=False)


@kernel("Cast")
def cast(node, x):
    return _cast(x, to_dtype(node.attr("to")).np_dtype, node.attr("saturate"))


@kernel("CastLike")
def cast_like(node, x, target):
    return _cast(x, target.dtype, node.attr("saturate"))


def _cast(x: np.ndarray, to: np.dtype, saturate: int) -> np.ndarray:
    """ONNX Cast: a plain conversion (ml_dtypes rounds to nearest even; integers, int4 included,
    wrap around as in C), except that with ``saturate`` a float8 target clamps to its finite range
    (infinities included) while NaN stays NaN."""
    import ml_dtypes
    to = np.dtype(to)
    if saturate and to.name.startswith("float8"):
        big = float(ml_dtypes.finfo(to).max)
        xs = x if x.dtype.kind == "f" else x.astype(np.float64)  # exact for bf16, fp8 and int4
        return np.clip(xs, -big, big).astype(to)
    with np.errstate(invalid="ignore", over="ignore"):
        try:
            return x.astype(to)
        except (TypeError, ValueError):  # a pair ml_dtypes does not convert directly (int4 <-> uint4)
            via = np.int64 if x.dtype.name in ("int4", "uint4") or x.dtype.kind in "iu" else np.float32
            return x.astype(via).astype(to)
