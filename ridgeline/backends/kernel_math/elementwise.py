"""Kernels of ``ridgeline.ir.ops.elementwise`` (and Cast, CastLike), one for numpy and torch: the
unary functions, arithmetic (integer division and modulo truncate like C, by zero give 0, and
never reach a divide instruction that traps), BitShift, IsInf, Pow, PRelu, the variadic
Max/Min/Sum/Mean, comparisons, logical and bitwise pairs, Where, Clip and the casts. Both tables
register ``KERNELS``."""

from __future__ import annotations

import operator

import numpy as np

from ...ir.dtypes import dtype as to_dtype
from .namespace import namespace

__all__ = ["KERNELS"]


#: op -> the function's name in numpy and torch alike (numpy 2 has the array API's names)
_UNARY = {
    "Neg": "negative", "Abs": "abs", "Sqrt": "sqrt", "Reciprocal": "reciprocal", "Exp": "exp", "Log": "log",
    "Tanh": "tanh", "Cos": "cos", "Sin": "sin", "Tan": "tan", "Atan": "atan", "Asin": "asin", "Acos": "acos",
    "Sinh": "sinh", "Cosh": "cosh", "Asinh": "asinh", "Acosh": "acosh", "Atanh": "atanh",
    "BitwiseNot": "bitwise_not", "Floor": "floor", "Ceil": "ceil", "Round": "round",   # both: half to even
    "Not": "logical_not", "IsNaN": "isnan",
}


def unary(node, x):
    xp = namespace(x)
    with xp.errstate(all="ignore"):
        y = xp.asarray(getattr(xp.module, _UNARY[node.op])(x))
    return xp.astype(y, xp.bool if node.op in ("IsNaN", "Not") else x.dtype)


def sign_erf(node, x):
    xp = namespace(x)
    if node.op == "Erf":
        return xp.astype(xp.erf(x), x.dtype)
    return xp.sign(x)


def _trapping_divisors(xp, b):
    """Masks of the integer divisors a hardware divide traps on: 0, and -1 (for INT_MIN / -1)."""
    zero = b == 0
    return zero, (b == -1) if xp.name_of(b.dtype)[0] == "i" else xp.zeros(tuple(b.shape), xp.bool, like=b)


def _int_div(xp, a, b):
    """ONNX integer division: truncated toward zero (C), unlike floor division; x / 0 is 0 and
    INT_MIN / -1 wraps to INT_MIN, as two's complement negation does."""
    zero, minus_one = _trapping_divisors(xp, b)
    b = xp.where(zero | minus_one, 1, b)
    q = xp.module.floor_divide(a, b)
    q = q + xp.astype((xp.module.remainder(a, b) != 0) & ((a < 0) ^ (b < 0)), q.dtype)
    return xp.where(zero, 0, xp.where(minus_one, -a, q))


_ARITH = {"Add": operator.add, "Sub": operator.sub, "Mul": operator.mul, "Div": None}


def arith(node, a, b):
    xp = namespace(a)
    a, b = xp.same_device(a, b)
    with xp.errstate(all="ignore"):
        if node.op == "Div":
            out = _int_div(xp, a, b) if xp.name_of(a.dtype)[0] in "iu" else a / b
        else:
            out = _ARITH[node.op](a, b)
    return out if type(out) is type(a) and out.dtype == a.dtype else xp.astype(xp.asarray(out), a.dtype)


def mod(node, a, b):
    xp = namespace(a)
    a, b = xp.same_device(a, b)
    fn = xp.module.fmod if node.attr("fmod") else xp.module.remainder
    if xp.module is np:   # numpy's own: x mod 0 and x mod -1 are 0, floats exact
        with np.errstate(all="ignore"):
            return fn(a, b).astype(a.dtype, copy=False)
    if xp.name_of(a.dtype)[0] in "iu":
        zero, minus_one = _trapping_divisors(xp, b)   # x mod -1 is 0; x mod 0 is 0 in the reference
        return xp.astype(xp.where(zero | minus_one, 0, fn(a, xp.where(zero | minus_one, 1, b))), a.dtype)
    with xp.errstate(all="ignore"):
        out = xp.astype(fn(a, b), a.dtype)
    # torch's vectorized CPU loop gives NaN where the exact result is finite: a subnormal divisor
    # (read as 0) or a quotient beyond the dtype's range. Those elements are computed exactly by
    # numpy in float64 (every f32/f16/bf16 value is exact there, and so is the result).
    wrong = xp.module.isnan(out) & xp.module.isfinite(a) & xp.module.isfinite(b) & (b != 0)
    if bool(xp.any(wrong)):
        a64, b64 = (xp.to_numpy(t) for t in xp.broadcast(xp.astype(a, xp.float64), xp.astype(b, xp.float64)))
        with np.errstate(all="ignore"):
            exact = np.fmod(a64, b64) if node.attr("fmod") else np.mod(a64, b64)
        out = xp.where(wrong, xp.astype(xp.from_numpy(exact, like=out), out.dtype), out)
    return out


def bit_shift(node, x, y):
    xp = namespace(x)
    x, y = xp.broadcast(*xp.same_device(x, y))
    y64 = xp.astype(y, xp.int64)
    out_of_range = (y64 < 0) | (y64 >= x.dtype.itemsize * 8)
    # unsigned types shift logically: work in int64, where every u8..u32 value is non-negative
    wide = xp.astype(x, xp.int64) if xp.name_of(x.dtype) in ("u8", "u16", "u32") else x
    amount = xp.astype(xp.where(out_of_range, 0, y64), wide.dtype)
    if node.attr("direction") == "LEFT":
        out, fill = xp.module.bitwise_left_shift(wide, amount), 0
    else:   # arithmetic for signed types, as ONNX asks: what falls off a negative value leaves -1
        out, fill = xp.module.bitwise_right_shift(wide, amount), xp.astype(xp.where(wide < 0, -1, 0), wide.dtype)
    return xp.astype(xp.where(out_of_range, fill, out), x.dtype)


def cast(node, x, like=None):
    """ONNX Cast (CastLike: to ``like``'s dtype): a plain conversion (``xp.convert``: rounding to
    nearest even; integers, int4 included, wrap around as in C), except that with ``saturate`` a
    float8 target clamps to its finite range (infinities included) while NaN stays NaN."""
    xp = namespace(x)
    to = xp.name_of(like.dtype) if like is not None else to_dtype(node.attr("to")).name
    if node.attr("saturate") and to.startswith("f8"):
        big = xp.finfo_max(xp.dtype(to))
        x = xp.clip(x if xp.name_of(x.dtype) in ("f16", "f32", "f64") else xp.astype(x, xp.float64), -big, big)
    return xp.convert(x, xp.dtype(to))


def isinf(node, x):
    xp = namespace(x)
    none = xp.zeros(x.shape, xp.bool, like=x)
    pos = xp.module.isposinf(x) if node.attr("detect_positive") else none
    neg = xp.isneginf(x) if node.attr("detect_negative") else none
    return pos | neg


def power(node, x, y):
    """x ** y in X's type: integer powers exactly (wrapping like C), everything else in float64."""
    xp = namespace(x)
    x, y = xp.same_device(x, y)
    with xp.errstate(all="ignore"):
        if xp.name_of(x.dtype)[0] in "iu" and xp.name_of(y.dtype)[0] in "iu":
            base, exp = xp.broadcast(xp.astype(x, xp.int64), xp.astype(y, xp.int64))
            negative = xp.module.trunc(xp.module.pow(xp.astype(base, xp.float64), xp.astype(exp, xp.float64)))
            out = xp.where(exp >= 0, xp.module.pow(base, xp.clip_min(exp, 0)), xp.astype(negative, xp.int64))
        else:
            out = xp.module.pow(xp.astype(x, xp.float64), xp.astype(y, xp.float64))
    return xp.astype(xp.asarray(out), x.dtype)


def prelu(node, x, slope):
    xp = namespace(x)
    x, slope = xp.same_device(x, slope)
    return xp.astype(xp.where(x < 0, x * slope, x), x.dtype)


_VARIADIC = {"Max": "maximum", "Min": "minimum", "Sum": "add", "Mean": "add"}


def variadic(node, *xs):
    xp = namespace(*xs)
    xs = xp.same_device(*xs)
    fn = getattr(xp.module, _VARIADIC[node.op])
    out = xs[0]
    for x in xs[1:]:
        out = fn(out, x)
    if node.op == "Mean":
        out = out / len(xs)
    return xp.astype(xp.asarray(out), xs[0].dtype)


_COMPARE = {"Equal": operator.eq, "Less": operator.lt, "LessOrEqual": operator.le, "Greater": operator.gt,
            "GreaterOrEqual": operator.ge}
_PAIRS = {"And": "logical_and", "Or": "logical_or", "Xor": "logical_xor", "BitwiseAnd": "bitwise_and",
          "BitwiseOr": "bitwise_or", "BitwiseXor": "bitwise_xor"}


def compare(node, a, b):
    xp = namespace(a)
    a, b = xp.same_device(a, b)
    return (_COMPARE.get(node.op) or getattr(xp.module, _PAIRS[node.op]))(a, b)


def where(node, cond, x, y):
    xp = namespace(x)
    return xp.where(*xp.same_device(cond, x, y))


def clip(node, x, lo=None, hi=None):
    xp = namespace(x)
    x, lo, hi = xp.same_device(x, lo, hi)
    out = x
    if lo is not None:
        out = xp.module.maximum(out, lo.reshape(()))
    if hi is not None:
        out = xp.module.minimum(out, hi.reshape(()))
    return xp.astype(out, x.dtype)


KERNELS = {**dict.fromkeys(_UNARY, unary), "Sign": sign_erf, "Erf": sign_erf, **dict.fromkeys(_ARITH, arith),
           "Mod": mod, "BitShift": bit_shift, "Cast": cast, "CastLike": cast, "IsInf": isinf, "Pow": power,
           "PRelu": prelu, **dict.fromkeys(_VARIADIC, variadic), **dict.fromkeys([*_COMPARE, *_PAIRS], compare),
           "Where": where, "Clip": clip}
