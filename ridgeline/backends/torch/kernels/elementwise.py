"""torch kernels of ``ridgeline.ir.ops.elementwise`` (and Cast, CastLike)."""

from __future__ import annotations

import torch

from ....ir.dtypes import dtype as to_dtype
from ..convert import torch_dtype
from . import kernel, same_device

_UNARY = {"Erf": torch.erf, "Sigmoid": torch.sigmoid, "Relu": torch.relu}


@kernel(*_UNARY)
def unary(node, x):
    return _UNARY[node.op](x)


@kernel("BitShift")
def bit_shift(node, x, y):
    x, y = same_device(x, y)
    bits = x.element_size() * 8
    x, y = torch.broadcast_tensors(x, y)
    y64 = y.to(torch.int64)
    out_of_range = (y64 < 0) | (y64 >= bits)
    amount = torch.where(out_of_range, torch.zeros_like(y64), y64)
    # unsigned types shift logically: work in int64 where every u8..u32 value is non-negative
    wide = x.to(torch.int64) if x.dtype in (torch.uint8, torch.uint16, torch.uint32) else x
    if node.attr("direction") == "LEFT":
        out = torch.bitwise_left_shift(wide, amount.to(wide.dtype))
        fill = torch.zeros_like(wide)
    else:
        out = torch.bitwise_right_shift(wide, amount.to(wide.dtype))
        fill = torch.where(wide < 0, -torch.ones_like(wide), torch.zeros_like(wide))
    return torch.where(out_of_range, fill, out).to(x.dtype)


@kernel("Gelu")
def gelu(node, x):
    y = torch.nn.functional.gelu(x, approximate="tanh" if node.attr("approximate") == "tanh" else "none")
    # the tails as the reference (float64) gives them: Gelu(x) = x for x > 10 and 0 below -10
    # (|Gelu(-10)| < 1e-22); in f32 torch overflows near the max (inf), gives NaN at -inf and
    # -4e31 for the tanh form at -1e30
    return torch.where(x > 10, x, torch.where(x < -10, torch.zeros_like(x), y))


@kernel("Sign")
def sign(node, x):
    # Sign(NaN) is NaN, as in numpy and C; torch.sign gives 0
    return torch.where(torch.isnan(x), x, torch.sign(x)) if x.dtype.is_floating_point else torch.sign(x)


@kernel("Add", "Sub", "Mul", "Div")
def arith(node, a, b):
    a, b = same_device(a, b)
    if node.op == "Add":
        return a + b
    if node.op == "Sub":
        return a - b
    if node.op == "Mul":
        return a * b
    if not a.dtype.is_floating_point:
        # ONNX integer division truncates toward zero; numpy's reference gives 0 for x / 0, and
        # INT_MIN / -1 wraps to INT_MIN as in two's complement. The CPU's divide instruction traps
        # (SIGFPE) on both, so neither divisor ever reaches it.
        zero, minus_one = _trapping_divisors(b)
        q = torch.div(a, torch.where(zero | minus_one, torch.ones_like(b), b), rounding_mode="trunc")
        q = torch.where(minus_one, -a, q)  # negation wraps instead of trapping
        return torch.where(zero, torch.zeros_like(q), q)
    return a / b


def _trapping_divisors(b):
    """Masks of the integer divisors a hardware divide traps on: 0, and -1 (for INT_MIN / -1)."""
    zero = b == 0
    signed = b.dtype in (torch.int8, torch.int16, torch.int32, torch.int64)
    return zero, (b == -1) if signed else torch.zeros_like(zero)


@kernel("Mod")
def mod(node, a, b):
    a, b = same_device(a, b)
    if not a.dtype.is_floating_point:
        zero, minus_one = _trapping_divisors(b)  # x mod -1 is 0; x mod 0 is 0 in the reference
        safe = torch.where(zero | minus_one, torch.ones_like(b), b)
        out = torch.fmod(a, safe) if node.attr("fmod") else torch.remainder(a, safe)
        return torch.where(zero | minus_one, torch.zeros_like(out), out)
    out = torch.fmod(a, b) if node.attr("fmod") else torch.remainder(a, b)
    # torch's vectorized CPU loop gives NaN where the exact result is finite: a subnormal divisor
    # (read as 0) or a quotient beyond the dtype's range. Those elements are computed exactly in
    # float64 (every f32/f16/bf16 value is exact there, and so is the result).
    sub = torch.isnan(out) & torch.isfinite(a) & torch.isfinite(b) & (b != 0)
    if bool(sub.any()):
        a64, b64 = torch.broadcast_tensors(a.to(torch.float64), b.to(torch.float64))
        fix = _exact_mod(a64.cpu().numpy(), b64.cpu().numpy(), bool(node.attr("fmod")))
        out = torch.where(sub.expand_as(out), torch.from_numpy(fix).to(out.device, out.dtype), out)
    return out


def _exact_mod(a, b, fmod: bool):
    import numpy as np
    with np.errstate(all="ignore"):
        return np.fmod(a, b) if fmod else np.mod(a, b)


@kernel("Cast")
def cast(node, x):
    return _cast(x, to_dtype(node.attr("to")).name, node.attr("saturate"))


@kernel("CastLike")
def cast_like(node, x, target):
    name = next(k for k, v in _names().items() if v == target.dtype)
    return _cast(x, name, node.attr("saturate"))


def _names():
    from ..convert import TORCH_DTYPES
    return TORCH_DTYPES


def _cast(x: torch.Tensor, to: str, saturate: int) -> torch.Tensor:
    """ONNX Cast as the reference does it: a plain conversion, except that with ``saturate`` a
    float8 target clamps to its finite range (infinities included) while NaN stays NaN."""
    want = torch_dtype(to)
    if want in (torch.float8_e4m3fn, torch.float8_e5m2):
        xf = x.float() if x.dtype != torch.float64 else x
        if saturate:
            big = torch.finfo(want).max
            xf = torch.clamp(xf, -big, big)
        return xf.to(want)
    if x.dtype in (torch.float8_e4m3fn, torch.float8_e5m2):
        x = x.float()
    return x.to(want)
