"""Vectorizable f32 math in LLVM IR: exp, log, log1p, tanh, erf, sigmoid.

LLVM's ``llvm.exp.f32`` and friends lower to one libm call per element, which stops the loop
vectorizer; these are written with arithmetic, bit casts and selects only, so a loop over them
vectorizes to the host's full SIMD width. Each works on a scalar ``float`` or a ``<N x float>``
and keeps IEEE special values (NaN propagates, ±inf and 0 give the limits). Accuracy, checked
against float64 in ``tests/backends/test_llvm_math.py``: a few 1e-7 relative (erf: 5e-7).
f64 goes through the LLVM intrinsics (exact libm, scalar calls).

Sources of the approximations: Cephes (S. Moshier) ``expf``/``logf``/``tanhf`` range reductions
and minimax polynomials; the erf rational approximation on [-4, 4] used by Eigen, XLA and TVM
(``fast_erf``).
"""

from __future__ import annotations

import llvmlite.ir as ir

from .irutil import I32, call_intrinsic, const, intrinsic

__all__ = ["exp", "log", "log1p", "tanh", "erf", "sigmoid", "is_f32"]


def is_f32(ty: ir.Type) -> bool:
    return isinstance(ty, ir.FloatType) or (isinstance(ty, ir.VectorType) and isinstance(ty.element, ir.FloatType))


def _int_type(ty: ir.Type) -> ir.Type:
    return ir.VectorType(I32, ty.count) if isinstance(ty, ir.VectorType) else I32


def _poly(b: ir.IRBuilder, x: ir.Value, coeffs: list[float]) -> ir.Value:
    """Horner: coeffs from the highest power down; contracted to FMAs."""
    acc = const(x.type, coeffs[0])
    for c in coeffs[1:]:
        acc = b.fadd(b.fmul(acc, x, flags=("contract",)), const(x.type, c), flags=("contract",))
    return acc


def _clamp(b: ir.IRBuilder, x: ir.Value, lo: float, hi: float) -> ir.Value:
    # selects on ordered compares leave NaN alone (min/max intrinsics could drop it)
    x = b.select(b.fcmp_ordered(">", x, const(x.type, hi)), const(x.type, hi), x)
    return b.select(b.fcmp_ordered("<", x, const(x.type, lo)), const(x.type, lo), x)


def _pow2(b: ir.IRBuilder, n: ir.Value, ty: ir.Type) -> ir.Value:
    """2**n for integer n in the normal exponent range, as float bits."""
    ity = _int_type(ty)
    return b.bitcast(b.shl(b.add(n, const(ity, 127)), const(ity, 23)), ty)


def exp(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """e**x: x = n·ln2 + r, |r| <= ln2/2; e**r by a degree-6 polynomial; 2**n split in two
    factors so that results down to the subnormals and up to overflow come out right."""
    ty = x.type
    if not is_f32(ty):
        return call_intrinsic(b, "exp", x)
    xc = _clamp(b, x, -104.0, 89.0)
    n = call_intrinsic(b, "roundeven", b.fmul(xc, const(ty, 1.44269504088896341)))
    r = b.fsub(xc, b.fmul(n, const(ty, 0.693359375)))
    r = b.fsub(r, b.fmul(n, const(ty, -2.12194440e-4)))
    z = b.fmul(r, r)
    p = _poly(b, r, [1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2,
                     1.6666665459e-1, 5.0000001201e-1])
    y = b.fadd(b.fadd(b.fmul(p, z), r), const(ty, 1.0))
    ni = call_intrinsic(b, "fptosi.sat", n, ret=_int_type(ty), overload=[_int_type(ty), ty])
    n1 = b.ashr(ni, const(ni.type, 1))
    n2 = b.sub(ni, n1)
    return b.fmul(b.fmul(y, _pow2(b, n1, ty)), _pow2(b, n2, ty))


def log(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """ln x: x = m·2**e with m in [sqrt(1/2), sqrt 2); ln m by a degree-9 polynomial."""
    ty = x.type
    if not is_f32(ty):
        return call_intrinsic(b, "log", x)
    ity = _int_type(ty)
    # subnormals: scale into the normal range first
    tiny = b.fcmp_ordered("<", x, const(ty, 1.17549435e-38))
    xs = b.select(tiny, b.fmul(x, const(ty, 8388608.0)), x)
    eoff = b.select(tiny, const(ity, -23), const(ity, 0))
    bits = b.bitcast(xs, ity)
    e = b.sub(b.and_(b.lshr(bits, const(ity, 23)), const(ity, 0xFF)), const(ity, 126))
    e = b.add(e, eoff)
    m = b.bitcast(b.or_(b.and_(bits, const(ity, 0x007FFFFF)), const(ity, 0x3F000000)), ty)
    lt = b.fcmp_ordered("<", m, const(ty, 0.707106781186547524))
    e = b.sitofp(b.select(lt, b.sub(e, const(ity, 1)), e), ty)
    m = b.select(lt, b.fsub(b.fadd(m, m), const(ty, 1.0)), b.fsub(m, const(ty, 1.0)))
    z = b.fmul(m, m)
    p = _poly(b, m, [7.0376836292e-2, -1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1,
                     1.4249322787e-1, -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1,
                     3.3333331174e-1])
    y = b.fmul(b.fmul(p, m), z)
    y = b.fadd(y, b.fmul(e, const(ty, -2.12194440e-4)))
    y = b.fsub(y, b.fmul(z, const(ty, 0.5)))
    r = b.fadd(b.fadd(m, y), b.fmul(e, const(ty, 0.693359375)))
    # special values: log(0) = -inf, log(x<0) = NaN, log(inf) = inf, NaN stays NaN
    r = b.select(b.fcmp_ordered("==", x, const(ty, 0.0)), const(ty, float("-inf")), r)
    r = b.select(b.fcmp_ordered("<", x, const(ty, 0.0)), const(ty, float("nan")), r)
    r = b.select(b.fcmp_ordered("==", x, const(ty, float("inf"))), x, r)
    return b.select(b.fcmp_unordered("uno", x, x), x, r)


def log1p(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """ln(1 + x) without losing small x: log(u)·x/(u-1) with u = 1+x (Goldberg's trick)."""
    ty = x.type
    u = b.fadd(x, const(ty, 1.0))
    d = b.fsub(u, const(ty, 1.0))
    scaled = b.fdiv(b.fmul(log(b, u), x), d)
    exact = b.fcmp_ordered("==", d, const(ty, 0.0))   # 1 + x rounded to 1: ln(1+x) ~ x
    big = b.fcmp_ordered("==", u, const(ty, float("inf")))  # x = inf (or huge): keep log(u)
    return b.select(exact, x, b.select(big, log(b, u), scaled))


def tanh(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """tanh: an odd polynomial for |x| < 0.625, else sign(x)·(1 - 2/(e**(2|x|) + 1))."""
    ty = x.type
    if not is_f32(ty):
        return call_intrinsic(b, "tanh", x)
    ax = call_intrinsic(b, "fabs", x)
    z = b.fmul(x, x)
    p = _poly(b, z, [-5.70498872745e-3, 2.06390887954e-2, -5.37397155531e-2, 1.33314422036e-1,
                     -3.33332819422e-1])
    small = b.fadd(b.fmul(b.fmul(p, z), x), x)
    e = exp(b, b.fmul(ax, const(ty, 2.0)))
    big = b.fsub(const(ty, 1.0), b.fdiv(const(ty, 2.0), b.fadd(e, const(ty, 1.0))))
    big = call_intrinsic(b, "copysign", big, x)
    return b.select(b.fcmp_ordered("<", ax, const(ty, 0.625)), small, big)


_ERF_P = [-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06, -5.69250639462346e-05,
          -7.34990630326855e-04, -2.95459980854025e-03, -1.60960333262415e-02]
_ERF_Q = [-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03, -7.37332916720468e-03,
          -1.42647390514189e-02]


def erf(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """erf: x·P(x²)/Q(x²) on x clamped to [-4, 4] (beyond, erf is ±1 in float32)."""
    ty = x.type
    if not is_f32(ty):
        return _erf_libm(b, x)
    xc = _clamp(b, x, -4.0, 4.0)
    z = b.fmul(xc, xc)
    return b.fdiv(b.fmul(xc, _poly(b, z, _ERF_P)), _poly(b, z, _ERF_Q))


def _erf_libm(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    # LLVM has no erf intrinsic: call libm's erf (f64)
    fn = intrinsic(b.module, "erf", x.type, [x.type])
    return b.call(fn, [x])


def sigmoid(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """1 / (1 + e**-x)."""
    ty = x.type
    return b.fdiv(const(ty, 1.0), b.fadd(const(ty, 1.0), exp(b, b.fsub(const(ty, 0.0), x))))
