"""Elementwise ops as LLVM IR on one element: the bodies fused kernels are made of.

``emit(b, node, args)`` computes ``node`` (an elementwise op) on ``Scalar`` operands — an SSA
value and its IR dtype — and returns its results. Values are computed in their own dtype: float
math in f32 uses the vectorizable ``mathlib``; bool is ``i1`` in registers (a byte in memory).
Semantics follow the numpy reference kernels, including ONNX integer division (truncating, and 0
for a zero divisor as the reference gives) and numpy's NaN-propagating max/min.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import llvmlite.ir as ir

from . import mathlib as M
from .irutil import F32, F64, I1, I8, I16, I32, I64, call_intrinsic, const, intrinsic
from .lowering import Unsupported

__all__ = ["Scalar", "COMPUTE", "emit", "SUPPORTED_OPS", "load_scalar", "store_value", "constant"]

#: IR dtype -> register type
COMPUTE: dict[str, ir.Type] = {"f32": F32, "f64": F64, "i64": I64, "i32": I32, "i16": I16, "i8": I8,
                               "u8": I8, "u16": I16, "u32": I32, "u64": I64, "bool": I1}


@dataclass(frozen=True)
class Scalar:
    v: ir.Value
    dt: str

    @property
    def is_float(self) -> bool:
        return self.dt in ("f32", "f64")

    @property
    def unsigned(self) -> bool:
        return self.dt.startswith("u")


def constant(dt: str, value) -> Scalar:
    if dt not in COMPUTE:
        raise Unsupported(f"dtype {dt}")
    ty = COMPUTE[dt]
    if dt == "bool":
        return Scalar(ir.Constant(I1, int(bool(value))), dt)
    if dt in ("f32", "f64"):
        return Scalar(ir.Constant(ty, float(value)), dt)
    return Scalar(ir.Constant(ty, int(value) & ((1 << ty.width) - 1)), dt)


def load_scalar(b: ir.IRBuilder, value: ir.Value, dt: str) -> Scalar:
    """A value loaded from memory (bytes for bool) into its register form."""
    if dt == "bool":
        return Scalar(b.icmp_unsigned("!=", value, ir.Constant(I8, 0)), dt)
    return Scalar(value, dt)


def store_value(b: ir.IRBuilder, s: Scalar) -> ir.Value:
    """The memory form of a register value."""
    return b.zext(s.v, I8) if s.dt == "bool" else s.v


# ---------------------------------------------------------------------------------- helpers
def _f(x: Scalar, v) -> ir.Constant:
    return const(x.v.type, v)


def _cmp(b, op: str, x: Scalar, y: Scalar) -> ir.Value:
    if x.is_float:
        return b.fcmp_ordered(op, x.v, y.v)
    if x.dt == "bool" or x.unsigned:
        return b.icmp_unsigned(op, x.v, y.v)
    return b.icmp_signed(op, x.v, y.v)


def _maxmin(b, which: str, x: Scalar, y: Scalar) -> ir.Value:
    if x.is_float:
        return call_intrinsic(b, "maximum" if which == "max" else "minimum", x.v, y.v)
    if x.dt == "bool":
        return b.or_(x.v, y.v) if which == "max" else b.and_(x.v, y.v)
    base = ("u" if x.unsigned else "s") + which
    return call_intrinsic(b, base, x.v, y.v)


def _cast(b: ir.IRBuilder, x: Scalar, to: str) -> Scalar:
    """numpy's astype between the dtypes kernels handle (float -> int truncates, saturating
    where numpy's result is platform-defined)."""
    if to not in COMPUTE:
        raise Unsupported(f"Cast to {to}")
    src, dst = x.dt, to
    tty = COMPUTE[dst]
    if src == dst:
        return x
    v = x.v
    if dst == "bool":
        if x.is_float:
            return Scalar(b.fcmp_unordered("une", v, _f(x, 0.0)), dst)  # NaN is truthy, as in numpy
        return Scalar(b.icmp_unsigned("!=", v, ir.Constant(v.type, 0)), dst)
    if src == "bool":
        return Scalar(b.uitofp(v, tty) if dst in ("f32", "f64") else b.zext(v, tty), dst)
    if x.is_float and dst in ("f32", "f64"):
        return Scalar(b.fpext(v, tty) if dst == "f64" else b.fptrunc(v, tty), dst)
    if x.is_float:
        name = "fptoui.sat" if dst.startswith("u") else "fptosi.sat"
        return Scalar(call_intrinsic(b, name, v, ret=tty, overload=[tty, v.type]), dst)
    if dst in ("f32", "f64"):
        return Scalar(b.uitofp(v, tty) if x.unsigned else b.sitofp(v, tty), dst)
    sw, dw = v.type.width, tty.width
    if dw < sw:
        return Scalar(b.trunc(v, tty), dst)
    if dw > sw:
        return Scalar(b.zext(v, tty) if x.unsigned else b.sext(v, tty), dst)
    return Scalar(v, dst)


def _float_only(x: Scalar, op: str) -> None:
    if not x.is_float:
        raise Unsupported(f"{op} on {x.dt}")


# ---------------------------------------------------------------------------------- unary
def _unary(b: ir.IRBuilder, node, x: Scalar) -> ir.Value:
    op = node.op
    v = x.v
    if op == "Neg":
        return b.fneg(v) if x.is_float else b.sub(ir.Constant(v.type, 0), v)
    if op == "Abs":
        if x.is_float:
            return call_intrinsic(b, "fabs", v)
        return v if x.unsigned else call_intrinsic(b, "abs", v, ir.Constant(I1, 0), overload=[v.type])
    zero = _f(x, 0)
    if op == "Relu":
        return b.select(_cmp(b, "<", x, Scalar(zero, x.dt)), zero, v)
    if op == "Sign":
        pos = _cmp(b, ">", x, Scalar(zero, x.dt))
        neg = _cmp(b, "<", x, Scalar(zero, x.dt))
        return b.select(pos, _f(x, 1), b.select(neg, _f(x, -1), v if x.is_float else zero))
    if op == "Not":
        return b.xor(v, ir.Constant(I1, 1))
    if op == "BitwiseNot":
        if x.is_float or x.dt == "bool":
            raise Unsupported(f"BitwiseNot on {x.dt}")
        return b.xor(v, ir.Constant(v.type, -1))
    _float_only(x, op)
    if op == "Sqrt":
        return call_intrinsic(b, "sqrt", v)
    if op == "Reciprocal":
        return b.fdiv(_f(x, 1.0), v)
    if op in ("Exp", "Log", "Tanh", "Erf", "Sigmoid"):
        return getattr(M, op.lower())(b, v)   # mathlib's inline polynomial forms
    if op in ("Floor", "Ceil", "Sin", "Cos", "Tan", "Atan", "Asin", "Acos", "Sinh", "Cosh"):
        return call_intrinsic(b, op.lower(), v)   # libm calls (no vector forms without a vector libm)
    if op in ("Asinh", "Acosh", "Atanh"):
        name = op.lower() + ("f" if v.type == F32 else "")
        return b.call(intrinsic(b.module, name, v.type, [v.type]), [v])
    if op == "Swish":
        return b.fmul(v, M.sigmoid(b, b.fmul(_f(x, node.attr("alpha")), v)))
    if op == "Shrink":
        lambd, bias = node.attr("lambd"), node.attr("bias")
        lo = b.fcmp_ordered("<", v, _f(x, -lambd))
        hi = b.fcmp_ordered(">", v, _f(x, lambd))
        return b.select(lo, b.fadd(v, _f(x, bias)), b.select(hi, b.fsub(v, _f(x, bias)), _f(x, 0.0)))
    if op == "Round":
        return call_intrinsic(b, "roundeven", v)  # half to even, like numpy
    if op == "IsNaN":
        return b.fcmp_unordered("uno", v, v)
    if op == "IsInf":
        pos = b.fcmp_ordered("==", v, _f(x, math.inf)) if node.attr("detect_positive") else ir.Constant(I1, 0)
        neg = b.fcmp_ordered("==", v, _f(x, -math.inf)) if node.attr("detect_negative") else ir.Constant(I1, 0)
        return b.or_(pos, neg)
    if op == "LeakyRelu":
        return b.select(b.fcmp_ordered(">=", v, _f(x, 0.0)), v, b.fmul(v, _f(x, node.attr("alpha"))))
    if op == "Elu":
        a = node.attr("alpha")
        return b.select(b.fcmp_ordered(">=", v, _f(x, 0.0)), v, b.fmul(_f(x, a), b.fsub(M.exp(b, v), _f(x, 1.0))))
    if op == "Selu":
        a, g = node.attr("alpha"), node.attr("gamma")
        neg = b.fmul(_f(x, a), b.fsub(M.exp(b, v), _f(x, 1.0)))
        return b.fmul(_f(x, g), b.select(b.fcmp_ordered(">", v, _f(x, 0.0)), v, neg))
    if op == "Celu":
        a = node.attr("alpha")
        e = b.fmul(_f(x, a), b.fsub(M.exp(b, b.fdiv(v, _f(x, a))), _f(x, 1.0)))
        return b.fadd(call_intrinsic(b, "maximum", v, _f(x, 0.0)), call_intrinsic(b, "minimum", e, _f(x, 0.0)))
    if op == "ThresholdedRelu":
        return b.select(b.fcmp_ordered(">", v, _f(x, node.attr("alpha"))), v, _f(x, 0.0))
    if op == "Softplus":
        return M.log1p(b, M.exp(b, v))
    if op == "Softsign":
        return b.fdiv(v, b.fadd(_f(x, 1.0), call_intrinsic(b, "fabs", v)))
    if op == "HardSigmoid":
        y = b.fadd(b.fmul(_f(x, node.attr("alpha")), v), _f(x, node.attr("beta")))
        return _clip01(b, x, y)
    if op == "HardSwish":
        return b.fmul(v, _clip01(b, x, b.fadd(b.fdiv(v, _f(x, 6.0)), _f(x, 0.5))))
    if op == "Mish":
        return b.fmul(v, M.tanh(b, M.log1p(b, M.exp(b, v))))
    if op == "Gelu":
        if node.attr("approximate") == "tanh":
            inner = b.fmul(_f(x, math.sqrt(2.0 / math.pi)),
                           b.fadd(v, b.fmul(_f(x, 0.044715), b.fmul(v, b.fmul(v, v)))))
            t = M.tanh(b, inner)
        else:
            t = M.erf(b, b.fmul(v, _f(x, 1.0 / math.sqrt(2.0))))
        y = b.fmul(b.fmul(_f(x, 0.5), v), b.fadd(_f(x, 1.0), t))
        # the tails as the reference (float64) gives them: Gelu(x) = x for x > 10 and 0 below -10
        # (in f32 the formula overflows near the max and gives -inf * 0 = NaN at -inf)
        y = b.select(b.fcmp_ordered(">", v, _f(x, 10.0)), v, y)
        return b.select(b.fcmp_ordered("<", v, _f(x, -10.0)), _f(x, 0.0), y)
    raise Unsupported(op)


def _clip01(b, x: Scalar, y: ir.Value) -> ir.Value:
    return call_intrinsic(b, "minimum", call_intrinsic(b, "maximum", y, _f(x, 0.0)), _f(x, 1.0))


# ---------------------------------------------------------------------------------- binary
def _int_div(b: ir.IRBuilder, x: Scalar, y: Scalar, rem: bool, floor: bool) -> ir.Value:
    """Integer quotient/remainder that never traps: a zero divisor gives 0 (the reference's
    result); MIN / -1 wraps instead of raising SIGFPE."""
    ty = x.v.type
    zero, one = ir.Constant(ty, 0), ir.Constant(ty, 1)
    is_zero = b.icmp_unsigned("==", y.v, zero)
    if x.unsigned:
        safe = b.select(is_zero, one, y.v)
        q = b.urem(x.v, safe) if rem else b.udiv(x.v, safe)
        return b.select(is_zero, zero, q)
    is_m1 = b.icmp_signed("==", y.v, ir.Constant(ty, -1))
    safe = b.select(b.or_(is_zero, is_m1), one, y.v)
    if rem:
        r = b.srem(x.v, safe)
        if floor:  # Python/numpy mod: the sign of the divisor
            fix = b.and_(b.icmp_signed("!=", r, zero), b.xor(b.icmp_signed("<", r, zero), b.icmp_signed("<", y.v, zero)))
            r = b.select(fix, b.add(r, y.v), r)
        r = b.select(is_m1, zero, r)
        return b.select(is_zero, zero, r)
    q = b.sdiv(x.v, safe)
    q = b.select(is_m1, b.sub(zero, x.v), q)
    return b.select(is_zero, zero, q)


def _binary(b: ir.IRBuilder, node, x: Scalar, y: Scalar) -> ir.Value:
    op = node.op
    if x.dt != y.dt and op != "Pow":
        raise Unsupported(f"{op} of {x.dt} and {y.dt}")
    f = x.is_float
    arith = {"Add": (b.fadd, b.add), "Sub": (b.fsub, b.sub), "Mul": (b.fmul, b.mul)}.get(op)
    if arith is not None:
        return arith[0 if f else 1](x.v, y.v)
    if op == "Div":
        return b.fdiv(x.v, y.v) if f else _int_div(b, x, y, rem=False, floor=False)
    if op == "Mod":
        fmod = node.attr("fmod")
        if not f:
            return _int_div(b, x, y, rem=True, floor=not fmod)
        r = b.frem(x.v, y.v)
        if fmod:
            return r
        fix = b.and_(b.fcmp_ordered("!=", r, _f(x, 0.0)),
                     b.xor(b.fcmp_ordered("<", r, _f(x, 0.0)), b.fcmp_ordered("<", y.v, _f(x, 0.0))))
        return b.select(fix, b.fadd(r, y.v), r)
    if op == "PRelu":
        _float_only(x, op)
        return b.select(b.fcmp_ordered("<", x.v, _f(x, 0.0)), b.fmul(x.v, y.v), x.v)
    if op in ("Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual"):
        cmp = {"Equal": "==", "Less": "<", "LessOrEqual": "<=", "Greater": ">", "GreaterOrEqual": ">="}[op]
        return _cmp(b, cmp, x, y)
    if op == "SwiGLU":
        _float_only(x, op)
        return b.fmul(b.fmul(x.v, M.sigmoid(b, b.fmul(_f(x, node.attr("alpha")), x.v))), y.v)
    if op == "BitShift":
        return _bit_shift(b, node, x, y)
    logic = {"And": b.and_, "Or": b.or_, "Xor": b.xor}.get(op.removeprefix("Bitwise"))
    if logic is not None:
        return logic(x.v, y.v)
    raise Unsupported(op)


def _bit_shift(b: ir.IRBuilder, node, x: Scalar, y: Scalar) -> ir.Value:
    """ONNX BitShift as the reference: shifts of the width or more (or negative) give 0 (-1 for a
    negative value shifted right), never LLVM's poison."""
    if x.is_float or x.dt == "bool":
        raise Unsupported(f"BitShift on {x.dt}")
    ty = x.v.type
    width = ir.Constant(ty, ty.width)
    bad = b.or_(b.icmp_signed("<", y.v, ir.Constant(ty, 0)) if not y.unsigned else ir.Constant(I1, 0),
                b.icmp_unsigned(">=", y.v, width))
    amount = b.select(bad, ir.Constant(ty, 0), y.v)
    if node.attr("direction") == "LEFT":
        return b.select(bad, ir.Constant(ty, 0), b.shl(x.v, amount))
    if x.unsigned:
        return b.select(bad, ir.Constant(ty, 0), b.lshr(x.v, amount))
    fill = b.select(b.icmp_signed("<", x.v, ir.Constant(ty, 0)), ir.Constant(ty, -1), ir.Constant(ty, 0))
    return b.select(bad, fill, b.ashr(x.v, amount))


def _pow(b: ir.IRBuilder, x: Scalar, y: Scalar, exponent: float | None) -> ir.Value:
    _float_only(x, "Pow")
    if exponent is not None:  # a constant exponent: the forms models use, without libm
        v = x.v
        if exponent == 1.0:
            return v
        if exponent == 2.0:
            return b.fmul(v, v)
        if exponent == 3.0:
            return b.fmul(b.fmul(v, v), v)
        if exponent == 0.5:
            return call_intrinsic(b, "sqrt", v)
        if exponent == -1.0:
            return b.fdiv(_f(x, 1.0), v)
        if exponent == 0.0:
            return _f(x, 1.0)
    yv = _cast(b, y, x.dt).v
    return call_intrinsic(b, "pow", x.v, yv)


# ---------------------------------------------------------------------------------- dispatch
_UNARY_OPS = {"Neg", "Abs", "Relu", "Sign", "Not", "Sqrt", "Reciprocal", "Exp", "Log", "Tanh", "Erf",
              "Sigmoid", "Floor", "Ceil", "Sin", "Cos", "Tan", "Atan", "Asin", "Acos", "Sinh", "Cosh", "Asinh",
              "Acosh", "Atanh", "Round", "IsNaN", "IsInf", "LeakyRelu", "Elu", "Selu", "Celu", "ThresholdedRelu",
              "Softplus", "Softsign", "HardSigmoid", "HardSwish", "Mish", "Gelu", "Swish", "Shrink", "BitwiseNot"}
_BINARY_OPS = {"Add", "Sub", "Mul", "Div", "Mod", "PRelu", "Equal", "Less", "LessOrEqual", "Greater",
               "GreaterOrEqual", "And", "Or", "Xor", "BitwiseAnd", "BitwiseOr", "BitwiseXor", "SwiGLU", "BitShift"}
SUPPORTED_OPS = _UNARY_OPS | _BINARY_OPS | {"Pow", "Max", "Min", "Sum", "Mean", "Where", "Clip", "Cast",
                                            "CastLike", "Identity"}


def emit(b: ir.IRBuilder, node, args: list[Scalar | None], *, const_of: Callable[[int], float | None]) -> list[Scalar]:
    """The results of elementwise ``node`` on one element; ``const_of(i)`` is input i's value
    when it is a known scalar (lets ``Pow(x, 3)`` become two multiplies)."""
    op = node.op
    out_dt = node.outputs[0].type.dtype.name
    if out_dt not in COMPUTE:
        raise Unsupported(f"{op} producing {out_dt}")
    for a in args:
        if a is not None and a.dt not in COMPUTE:
            raise Unsupported(f"{op} on {a.dt}")
    if op in _UNARY_OPS:
        return [Scalar(_unary(b, node, args[0]), out_dt)]
    if op in _BINARY_OPS:
        return [Scalar(_binary(b, node, args[0], args[1]), out_dt)]
    if op == "Pow":
        return [Scalar(_pow(b, args[0], args[1], const_of(1)), out_dt)]
    if op in ("Max", "Min", "Sum", "Mean"):
        acc = args[0]
        for a in args[1:]:
            if op in ("Max", "Min"):
                acc = Scalar(_maxmin(b, op.lower(), acc, a), acc.dt)
            else:
                acc = Scalar(b.fadd(acc.v, a.v) if acc.is_float else b.add(acc.v, a.v), acc.dt)
        if op == "Mean":
            n = len(args)
            acc = Scalar(b.fdiv(acc.v, _f(acc, n)) if acc.is_float else
                         _int_div(b, acc, Scalar(ir.Constant(acc.v.type, n), acc.dt), rem=False, floor=False), acc.dt)
        return [acc]
    if op == "Where":
        return [Scalar(b.select(args[0].v, args[1].v, args[2].v), out_dt)]
    if op == "Clip":
        x = args[0]
        v = x
        if len(args) > 1 and args[1] is not None:
            v = Scalar(_maxmin(b, "max", v, args[1]), x.dt)
        if len(args) > 2 and args[2] is not None:
            v = Scalar(_maxmin(b, "min", v, args[2]), x.dt)
        return [v]
    if op in ("Cast", "CastLike"):
        return [_cast(b, args[0], out_dt)]
    if op == "Identity":
        return [args[0]]
    raise Unsupported(f"{op} has no llvm elementwise kernel")
