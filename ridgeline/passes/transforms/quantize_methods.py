"""Calibrated weight quantization: AWQ-style activation-aware scaling, GPTQ-style
error-compensating rounding and SmoothQuant, from statistics of each GEMM's input activation.

All three see a GEMM ``y = x · W`` (``W``: K input × N output channels) through the calibration
activations ``X`` (rows × K) it receives from the already quantized layers before it
(``quantize_calibrated`` walks the graph sequentially):

* **AWQ** (Lin et al. 2024, arXiv:2306.00978): input channels that carry large activations matter
  more; scale them up in the weight before rounding, ``W' = diag(s) · W``, and divide the
  activation by ``s`` (``x' = x / s``, folded into the preceding normalization where possible).
  ``s = mean|x|^α`` per channel, α on a grid in [0, 1], picked to minimize ``‖X W − X Ŵ‖²`` summed
  over the GEMMs sharing the activation (they must share ``s``).
* **GPTQ** (Frantar et al. 2023, arXiv:2210.17323): quantize input channels one by one and push
  each one's rounding error onto the channels not yet quantized, weighted by the inverse of the
  Hessian ``H = 2 XᵀX / rows`` (dampened by 1% of its mean diagonal, AutoGPTQ's ``percdamp``);
  channels in order of decreasing Hessian diagonal (``desc_act``) with static groups, blocks of
  128 channels with lazy updates.
* **SmoothQuant** (Xiao et al. 2023, arXiv:2211.10438): for W8A8, migrate activation outliers into
  the weights, ``s_j = max|x_j|^α / max|W_j|^(1−α)`` with α = 0.5, the same transform as AWQ's.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ...ir.errors import PassError
from .quantize_schemes import UNSIGNED, fit_scales, fit_weight, quantize_array, quantize_min, stored_layout

__all__ = ["METHODS", "awq_scales", "dequantized", "gptq", "gptq_factor", "integer_only", "roundtrip", "smooth_scales"]

METHODS = ("rtn", "awq", "gptq", "awq-gptq", "smoothquant")
#: AWQ's grid of exponents α (the paper's search uses 20 points in [0, 1))
AWQ_ALPHAS = tuple(np.round(np.linspace(0.0, 1.0, 11), 2))


def integer_only(scheme, method: str, clip: str = "weight") -> None:
    """``PassError`` when GPTQ or ``clip=output`` (integer grids per channel or group) meets other weights."""
    what = f"method={method}" if method in ("gptq", "awq-gptq") else "clip=output" if clip == "output" else ""
    if what and scheme.weights and (scheme.weights not in ("i8", "i4") or scheme.per_tensor):
        raise PassError(f"quantize: {what} rounds onto an integer grid per channel or group; scheme {scheme.name} "
                        f"is not int4/int8 (symmetric, -asym or -zp) per channel or group")


def dequantized(w: np.ndarray, scheme) -> np.ndarray:
    """``roundtrip`` without the clip search (each block's whole range): AWQ's inner loop."""
    return roundtrip(w, scheme, np.dtype(np.float32), ratios=(1.0,))


def awq_scales(weights: list[np.ndarray], rows: np.ndarray, mean_abs: np.ndarray, scheme,
               round_trip: Callable = dequantized) -> tuple[np.ndarray, float]:
    """The per-input-channel scale ``s`` (and its α) that minimizes the output error of the GEMMs
    ``rows · W`` sharing one activation (``weights``: K × N each) once ``diag(s)·W`` is quantized."""
    x = np.asarray(rows, np.float64)
    refs = [x @ w for w in weights]
    base = np.maximum(np.asarray(mean_abs, np.float64), 1e-8)
    best, best_err, best_a = np.ones_like(base), None, 0.0
    for a in AWQ_ALPHAS:
        s = base ** a
        s = s / np.sqrt(s.max() * s.min())         # centred, as AWQ does, to keep the range sane
        err = 0.0
        for w, ref in zip(weights, refs):
            wq = round_trip(w * s[:, None], scheme) / s[:, None]
            err += float(np.square(x @ wq - ref).sum())
        if best_err is None or err < best_err:
            best, best_err, best_a = s, err, float(a)
    return best, best_a


def smooth_scales(weights: list[np.ndarray], amax: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """SmoothQuant's ``s_j = max|x_j|^α / max|W_j|^(1−α)`` over the GEMMs sharing the activation."""
    wmax = np.max([np.abs(w).max(axis=1) for w in weights], axis=0)
    s = np.maximum(np.asarray(amax, np.float64), 1e-5) ** alpha / np.maximum(wmax, 1e-5) ** (1 - alpha)
    return np.where(np.isfinite(s) & (s > 0), s, 1.0)


def roundtrip(w: np.ndarray, scheme, scale_dtype: np.dtype, hessian: np.ndarray | None = None,
              ratios: tuple = (), params: tuple | None = None) -> np.ndarray:
    """``w`` (K × N) as ``quantize`` stores and dequantizes it (the same scale fits, clip search
    included): the weight a quantized GEMM computes with, for the sequential calibration walk.
    ``hessian`` (``XᵀX``, K × K): integer scales from the output-error clip search (AWQ's
    ``auto_clip``); ``ratios``: the clip ratios searched (``fit_scales``); ``params``: integer
    (scales, zero points) already fitted (``fit_weight``'s, keeping dims), not searched again."""
    from .quantize_schemes import _expand, block_amax, dequantize_nf4, quantize_nf4
    x = np.asarray(w, np.float64)
    dt = scheme.weights
    block = scheme.group if scheme.group and scheme.group < x.shape[0] else 0
    if scheme.per_tensor:
        s = fit_scales(x.reshape(1, -1), dt, 1, 0, scale_dtype, ratios=ratios).reshape(()).astype(np.float64)
        return quantize_array(x, s, dt, 0, 0).astype(np.float64) * s
    if dt == "nf4":
        amax = block_amax(x, 0, block)
        s = np.where(amax > 0, amax, 1.0).astype(scale_dtype).astype(np.float64)
        return dequantize_nf4(quantize_nf4(x, s, 0, block), s, 0, block)
    s, z = params or fit_weight(x, scheme, 0, block, scale_dtype, hessian, ratios)
    s, z = _expand(s, x.shape, 0, block).astype(np.float64), None if z is None else _expand(z, x.shape, 0, block)
    if scheme.asym == "min":
        return quantize_min(x, s, z, dt, 0, 0).astype(np.float64) * s + z.astype(np.float64)
    q = quantize_array(x, s, UNSIGNED[dt] if scheme.asym else dt, 0, 0, z).astype(np.float64)
    return (q - z.astype(np.float64)) * s if scheme.asym else q * s


def gptq_factor(hessian: np.ndarray, *, damp: float = 0.01, act_order: bool = True) -> tuple:
    """What GPTQ needs of a Hessian (``XᵀX``, K × K), shared by every GEMM reading the same
    activation: the dead channels, the walk order and the upper Cholesky factor of the inverse
    of the dampened, permuted Hessian. ``damp``: AutoGPTQ's ``percdamp`` (share of the mean
    diagonal added to it); ``act_order``: AutoGPTQ's ``desc_act`` (decreasing diagonal)."""
    k = hessian.shape[0]
    H = np.array(hessian, np.float64)
    dead = np.diag(H) <= 0
    H[dead, dead] = 1.0
    H[np.diag_indices(k)] += damp * float(np.mean(np.diag(H)))
    perm = np.argsort(-np.diag(H), kind="stable") if act_order else np.arange(k)
    H = H[np.ix_(perm, perm)]
    try:   # H⁻¹ = Uᵀ U with U = J M⁻¹ J, M·Mᵀ = J·H·J (J reverses): one factorization, not GPTQ's two
        M = np.linalg.cholesky(H[::-1, ::-1])
    except np.linalg.LinAlgError:
        raise PassError("quantize: method=gptq: the calibration Hessian is not positive definite; "
                        "give more calibration samples") from None
    return dead, perm, np.triu(_tri_inv(M)[::-1, ::-1])


def _tri_inv(L: np.ndarray) -> np.ndarray:
    """The inverse of a lower-triangular matrix (LAPACK's trtri when scipy is there)."""
    try:
        from scipy.linalg import lapack
        inv, info = lapack.dtrtri(L, lower=1)
        if info == 0:
            return inv
    except ImportError:   # pragma: no cover - scipy is optional
        pass
    return np.linalg.inv(L)


def gptq(w: np.ndarray, hessian: np.ndarray | tuple, scheme, scale_dtype: np.dtype, *, block: int = 128,
         damp: float = 0.01, act_order: bool = True, clip_hessian: np.ndarray | None = None
         ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """GPTQ on ``w`` (K × N) with ``hessian`` (K × K, ``XᵀX``, or its ``gptq_factor``): returns
    (scales, zero points — the float offsets of ``-asym`` — or None, the adjusted float weight) in the layout ``quantize_weight``
    stores — quantizing the adjusted weight with these scales gives GPTQ's codes exactly.
    ``damp``/``act_order``: see ``gptq_factor``; with ``act_order`` the groups are *static*
    (each group's scale fitted on the weights before any update, as AutoGPTQ's
    ``static_groups=True``) so groups stay contiguous in K, as ONNX blocked quantization and
    MatMulNBits store them. ``clip_hessian`` (``XᵀX``): those scales from the output-error clip
    search instead of the weight-error one. Integer schemes only."""
    integer_only(scheme, "gptq")
    k = w.shape[0]
    g = scheme.group if scheme.group and scheme.group < k else k
    dead, perm, hinv = hessian if isinstance(hessian, tuple) else gptq_factor(hessian, damp=damp, act_order=act_order)
    W = np.array(w, np.float64)                               # K × N: GPTQ walks input channels (rows)
    W[dead] = 0.0
    gb = g if g < k else 0
    offset = scheme.asym == "min"           # x ≈ q·s + m: a float zero point z = −m/s, kept as m
    s0, z0 = fit_weight(W, scheme, 0, gb, scale_dtype, clip_hessian)    # static groups: groups × N
    zeros = None if z0 is None else z0.astype(np.float64)
    scales = s0.astype(np.float64)
    W = W[perm]
    gid = perm // g                                           # the group of each walked channel
    stored = UNSIGNED[scheme.weights] if scheme.asym else scheme.weights
    for i1 in range(0, k, block):
        i2 = min(i1 + block, k)
        W1 = W[i1:i2].copy()
        E1 = np.zeros_like(W1)
        U1 = hinv[i1:i2, i1:i2]
        for i in range(i2 - i1):
            s = scales[gid[i1 + i]]
            z = zeros[gid[i1 + i]] if zeros is not None else None
            # the codes quantize_weight stores for this channel (one rounding, shared with it)
            if offset:
                deq = quantize_min(W1[i], s, z, scheme.weights, 0, 0).astype(np.float64) * s + z
            else:
                deq = quantize_array(W1[i], s, stored, 0, 0, z).astype(np.float64)
                deq = (deq - z) * s if z is not None else deq * s
            e = (W1[i] - deq) / U1[i, i]
            W1[i] = deq
            W1[i + 1:] -= np.outer(U1[i, i + 1:], e)
            E1[i] = e
        W[i1:i2] = W1
        W[i2:] -= hinv[i1:i2, i2:].T @ E1
    W = W[np.argsort(perm)]
    # the layout quantize_weight stores: blocked scales are (groups × N), per-channel ones (N,)
    s_out = scales.astype(scale_dtype)
    z_out = zeros.astype(scale_dtype) if offset else zeros
    return (*stored_layout(s_out, z_out, g < k), W)
