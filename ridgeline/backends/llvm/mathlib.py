"""Vectorizable f32 math in LLVM IR: exp, log, log1p, tanh, erf, sigmoid.

LLVM's ``llvm.exp.f32`` and friends lower to one libm call per element, which stops the loop
vectorizer; these are written with arithmetic, bit casts and selects only, so a loop over them
vectorizes to the host's full SIMD width. Each works on a scalar ``float`` or a ``<N x float>``
and keeps IEEE special values (NaN propagates, ±inf and 0 give the limits). Accuracy, checked
against float64 in ``tests/backends/test_llvm_math.py``: a few 1e-7 relative (tanh 4e-7, erf 5e-7).
f64 goes through the LLVM intrinsics (exact libm, scalar calls).

Sources of the approximations: Cephes (S. Moshier) ``expf``/``logf`` range reductions and minimax
polynomials; the rational approximations of tanh (on ±7.9) and erf (on ±4) that Eigen uses for
float (``generic_fast_tanh_float``, ``generic_fast_erf_float``), as XLA and TVM do.
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
    # n is clamped to about ±150, so a plain conversion is exact (the saturating intrinsic is
    # scalarized on x86); NaN becomes 0 first — y is NaN already and must not turn into poison
    n_ok = b.select(b.fcmp_ordered("ord", n, n), n, const(ty, 0.0))
    ni = b.fptosi(n_ok, _int_type(ty))
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


_TANH_P = [-2.76076847742355e-16, 2.00018790482477e-13, -8.60467152213735e-11, 5.12229709037114e-08,
           1.48572235717979e-05, 6.37261928875436e-04, 4.89352455891786e-03]
_TANH_Q = [1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03, 4.89352518554385e-03]


def tanh(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """tanh: x·P(x²)/Q(x²) on x clamped to ±7.905 (where it rounds to ±1), x itself below 4e-4.
    One division and a dozen multiply-adds — half the work of a form through exp."""
    ty = x.type
    if not is_f32(ty):
        return call_intrinsic(b, "tanh", x)
    xc = _clamp(b, x, -7.90531110763549805, 7.90531110763549805)
    z = b.fmul(xc, xc)
    r = b.fdiv(b.fmul(xc, _poly(b, z, _TANH_P)), _poly(b, z, _TANH_Q))
    tiny = b.fcmp_ordered("<", call_intrinsic(b, "fabs", x), const(ty, 0.0004))
    return b.select(tiny, x, r)


_ERF_P = [-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06, -5.69250639462346e-05,
          -7.34990630326855e-04, -2.95459980854025e-03, -1.60960333262415e-02]
_ERF_Q = [-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03, -7.37332916720468e-03,
          -1.42647390514189e-02]


def erf(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """erf: x·P(x²)/Q(x²) on x clamped to [-4, 4] (beyond, erf is ±1 in float32)."""
    ty = x.type
    if not is_f32(ty):   # LLVM has no erf intrinsic: libm's erf (f64)
        return b.call(intrinsic(b.module, "erf", ty, [ty]), [x])
    xc = _clamp(b, x, -4.0, 4.0)
    z = b.fmul(xc, xc)
    return b.fdiv(b.fmul(xc, _poly(b, z, _ERF_P)), _poly(b, z, _ERF_Q))


def sigmoid(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """1 / (1 + e**-x)."""
    ty = x.type
    return b.fdiv(const(ty, 1.0), b.fadd(const(ty, 1.0), exp(b, b.fsub(const(ty, 0.0), x))))
