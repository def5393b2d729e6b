"""Quantization schemes: their names, the arithmetic of symmetric linear quantization, and the
error bound each quantized element carries.

A scheme is written like ``int4-g128``, ``w8a8`` or ``int8+kv-int8`` (parts joined by ``+``):

========================  ===================================================================
``int8`` / ``int4``       weight-only, symmetric, per output channel; ``-gN``: groups of N input
                          channels share a scale (blocked DequantizeLinear, ONNX opset 21+)
``fp8`` (``fp8-e4m3``),   weight-only float8 with a per-channel (or ``-gN`` group) scale
``fp8-e5m2``
``w8a8``                  int8 weights per channel, activations quantized per token at run time
                          (scale = max |x| over the row / 127)
``w8a8-static``           int8 weights, activations with one calibrated scale per tensor
``w8a8-fp8``              float8 e4m3 weights and per-token dynamic float8 activations
``kv-int8`` / ``kv-fp8``  the KV cache stored narrow, one calibrated scale per KV head
``int4-asym`` /           asymmetric: unsigned codes, a scale and a *float* offset per channel or
``int8-asym``             group, ``x = q·s + m`` (llama.cpp's Q4_1/Q8_1 and k-quants, HQQ; a float
                          zero point ``−m/s``): any grid ``[min, max]`` exactly; ``int4-min`` /
                          ``int8-min`` are the same scheme
``int4-zp`` /             asymmetric with an *integer* zero point, ``x = (q − z)·s`` (AWQ/GPTQ
``int8-zp``               checkpoints, ONNX DequantizeLinear's zero point, MatMulNBits' packed
                          zero points): the grid's origin is a whole step, so a block whose
                          minimum is not a multiple of its step is off by up to half a step
``nf4``                   NF4 (QLoRA): u4 indices into 16 normal quantiles, times max |x|
``fp8-tensor``            float8 e4m3 with one scale for the whole weight
``w4a8``                  int4 weights (``-gN`` allowed), activations int8 per token at run time
``w4a16`` / ``w8a16``     spellings of ``int4-zp-g128`` (AWQ's layout) / ``int8``
``none``                  nothing (a baseline; combine with ``kv-…``)
========================  ===================================================================

Symmetric quantization of a block of values with ``amax = max |x|`` over the block:
``scale = amax / qmax`` (127 for int8, 7 for int4, the largest finite float8), ``q =
round_half_even(x / scale)`` clamped to the type's range, ``x̂ = q · scale``; integer weights take
the clipping range (a share of ``amax``) that minimizes each block's squared error (``fit_scales``). The scale is rounded
to its storage dtype first, and ``q`` is computed with the stored scale, so ``x̂`` is exactly what
``DequantizeLinear`` returns. Each element's error is bounded by ``step_bound``: half a step
(``scale / 2``) for integers; for float8 half a unit in the last place of ``x / scale`` (relative
``2^-(mantissa bits + 1)``, or half the smallest subnormal) times the scale.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import ml_dtypes
import numpy as np

from ...ir.dtypes import DTYPES
from ...ir.errors import PassError

__all__ = [
    "NF4_CODEBOOK",
    "QMAX",
    "SCHEME_NAMES",
    "Scheme",
    "block_amax",
    "dequantize_nf4",
    "fit_asym",
    "fit_min",
    "fit_scales",
    "fit_weight",
    "parse_scheme",
    "quantize_array",
    "quantize_min",
    "quantize_nf4",
    "scale_for",
    "step_bound",
    "stored_layout",
]

#: the largest magnitude a symmetric quantized value takes
QMAX = {"i8": 127.0, "i4": 7.0, "f8e4m3": float(ml_dtypes.finfo(ml_dtypes.float8_e4m3fn).max),
        "f8e5m2": float(ml_dtypes.finfo(ml_dtypes.float8_e5m2).max)}
_INT_RANGE = {"i8": (-128, 127), "i4": (-8, 7), "u8": (0, 255), "u4": (0, 15)}
#: asymmetric (zero-point) schemes store unsigned codes, as AWQ/GPTQ checkpoints and MatMulNBits do
UNSIGNED = {"i8": "u8", "i4": "u4"}

#: NF4 (QLoRA, Dettmers et al. 2023, arXiv:2305.14314, appendix E; bitsandbytes' table): the 16
#: quantiles of a unit normal, scaled to [-1, 1], with an exact zero. Codes are u4 indices.
NF4_CODEBOOK = np.array([
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
    -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
    0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
    0.7229568362236023, 1.0], dtype=np.float32)

# name -> (weight dtype, asymmetric, granularity default, activations, activation dtype)
_WEIGHTS = {"int8": ("i8", False, "channel"), "int4": ("i4", False, "channel"),
            "int8-asym": ("i8", "min", "channel"), "int4-asym": ("i4", "min", "channel"),
            "int8-min": ("i8", "min", "channel"), "int4-min": ("i4", "min", "channel"),
            "int8-zp": ("i8", True, "channel"), "int4-zp": ("i4", True, "channel"),
            "fp8": ("f8e4m3", False, "channel"), "fp8-e4m3": ("f8e4m3", False, "channel"),
            "fp8-tensor": ("f8e4m3", False, "tensor"), "fp8-e5m2": ("f8e5m2", False, "channel"),
            "nf4": ("nf4", False, "channel")}
_W8A8 = {"w8a8": ("i8", "dynamic", "i8"), "w8a8-static": ("i8", "static", "i8"),
         "w8a8-fp8": ("f8e4m3", "dynamic", "f8e4m3"), "w4a8": ("i4", "dynamic", "i8")}
#: spellings users know from other tools, and what they mean here (W4A16: AWQ's asymmetric g128,
#: integer zero points)
_ALIASES = {"w4a16": "int4-zp-g128", "w8a16": "int8"}
#: names of one scheme, and the one ``Scheme.name`` says
_CANONICAL = {"fp8-e4m3": "fp8", "int4-min": "int4-asym", "int8-min": "int8-asym"}
_KV = {"kv-int8": "i8", "kv-fp8": "f8e4m3"}
SCHEME_NAMES = tuple(_WEIGHTS) + tuple(_W8A8) + tuple(_ALIASES) + tuple(_KV) + ("none",)


@dataclass(frozen=True)
class Scheme:
    """What to quantize and how (see the module docstring for the spelling)."""

    name: str
    weights: str | None = None        # i8, i4, f8e4m3, f8e5m2, nf4
    group: int = 0                    # input channels per weight scale (0: per output channel)
    activations: str = "none"         # none | dynamic (per token) | static (calibrated, per tensor)
    act_dtype: str | None = None
    kv: str | None = None             # i8 | f8e4m3
    asym: bool | str = False          # True: integer zero points; "min": a float offset (stored unsigned)
    per_tensor: bool = False          # one weight scale for the whole tensor

    @property
    def stored(self) -> str | None:
        """The IR dtype the weight codes are stored in."""
        if self.weights == "nf4":
            return "u4"
        return UNSIGNED[self.weights] if self.asym and self.weights in UNSIGNED else self.weights


def parse_scheme(text: str, *, group: int | None = None, kv: str | None = None) -> Scheme:
    """``int4-g128``, ``int4-asym-g32``, ``nf4``, ``w8a8``, ``int8+kv-int8`` → a ``Scheme``; bad
    spellings are ``PassError``s."""
    parts = [_ALIASES.get(p.strip().lower(), p.strip().lower()) for p in str(text).split("+") if p.strip()]
    if not parts:
        raise PassError(f"empty quantization scheme; use one of {', '.join(SCHEME_NAMES)}")
    base_name = weights = act_dt = kv_dt = None
    g = 0
    asym = per_tensor = False
    activations = "none"
    for part in parts:
        m = re.fullmatch(r"(.+?)-g(\d+)", part)
        base, grp = (m.group(1), int(m.group(2))) if m else (part, None)
        if base in _KV and grp is None:
            if kv_dt is not None:
                raise PassError(f"scheme {text!r} names the KV cache twice")
            kv_dt = _KV[base]
            continue
        if base == "none" and grp is None:
            continue
        if base in _WEIGHTS or base in _W8A8:
            if weights is not None:
                raise PassError(f"scheme {text!r} names two weight schemes; combine one with kv-int8 or kv-fp8")
            base_name = base
            if base in _WEIGHTS:
                weights, asym, gran = _WEIGHTS[base]
                per_tensor = gran == "tensor"
            else:
                weights, activations, act_dt = _W8A8[base]
                if grp and weights != "i4":
                    raise PassError(f"scheme {part!r}: W8A8 uses one scale per output channel (the integer "
                                    f"product is rescaled once); group sizes apply to weight-only schemes and w4a8")
            if grp is not None:
                if grp < 1:
                    raise PassError(f"scheme {part!r}: the group size must be a positive number of input channels")
                if per_tensor:
                    raise PassError(f"scheme {part!r}: a per-tensor scale takes no group size")
                g = grp
            continue
        raise PassError(f"unknown quantization scheme {part!r}; schemes: {', '.join(SCHEME_NAMES)} "
                        f"(weight schemes take -gN for groups of N input channels, e.g. int4-g128; "
                        f"join a KV scheme with +, e.g. int8+kv-int8)")
    if group is not None and group:
        if g and g != group:
            raise PassError(f"scheme {text!r} says group {g} but the group option says {group}")
        if weights is None:
            raise PassError("a group size applies to weight quantization; the scheme quantizes no weights")
        if activations != "none" and weights != "i4":
            raise PassError(f"scheme {text!r}: W8A8 uses one scale per output channel; drop the group option")
        if per_tensor:
            raise PassError(f"scheme {text!r}: a per-tensor scale takes no group size")
        if group < 0:
            raise PassError(f"group must be >= 0, got {group}")
        g = group
    if kv:
        if kv.lower() not in ("int8", "fp8", "none"):
            raise PassError(f"kv must be int8, fp8 or none, got {kv!r}")
        if kv.lower() != "none":
            want = {"int8": "i8", "fp8": "f8e4m3"}[kv.lower()]
            if kv_dt is not None and kv_dt != want:
                raise PassError(f"scheme {text!r} and option kv={kv} disagree on the KV cache")
            kv_dt = want
    canon = []
    if weights is not None:
        base_name = _CANONICAL.get(base_name, base_name)
        canon.append(base_name + (f"-g{g}" if g else ""))
    if kv_dt is not None:
        canon.append(next(k for k, v in _KV.items() if v == kv_dt))
    return Scheme("+".join(canon) or "none", weights, g, activations, act_dt, kv_dt, asym, per_tensor)


# --------------------------------------------------------------------------- arithmetic
def block_amax(x: np.ndarray, axis: int, block: int) -> np.ndarray:
    """max |x| per block of ``block`` elements along ``axis`` (0: the whole axis), keeping dims;
    the last block may be short, as ONNX's blocked quantization allows."""
    a = np.abs(x.astype(np.float64))
    axis = axis % x.ndim
    n = x.shape[axis]
    if not block or block >= n:
        return a.max(axis=axis, keepdims=True)
    starts = np.arange(0, n, block)
    return np.maximum.reduceat(a, starts, axis=axis)


def scale_for(amax: np.ndarray, dtype: str, scale_dtype: np.dtype) -> np.ndarray:
    """The stored scale for blocks of magnitude ``amax`` (an all-zero block gets scale 1)."""
    s = np.where(amax > 0, amax / QMAX[dtype], 1.0)
    s = s.astype(scale_dtype)
    # a scale that rounds to zero or underflows in its storage type would divide by zero
    return np.where(s.astype(np.float64) > 0, s, np.asarray(1.0, scale_dtype)).astype(scale_dtype)


def quantize_array(x: np.ndarray, scale: np.ndarray, dtype: str, axis: int, block: int,
                   zero_point: np.ndarray | None = None) -> np.ndarray:
    """``x / scale (+ zero_point)`` rounded into ``dtype`` (``scale`` per block along ``axis``,
    broadcastable; a zero point has the scale's shape)."""
    s = _expand(scale, x.shape, axis, block).astype(np.float64)
    y = x.astype(np.float64) / s
    if dtype in _INT_RANGE:
        lo, hi = _INT_RANGE[dtype]
        y = np.rint(y)
        if zero_point is not None:
            y = y + _expand(zero_point, x.shape, axis, block).astype(np.float64)
        return np.clip(y, lo, hi).astype(DTYPES[dtype].np_dtype)
    big = QMAX[dtype]
    return np.clip(y, -big, big).astype(np.float32).astype(DTYPES[dtype].np_dtype)


#: shares of max |x| tried as the clipping range of integer weights (1.0: no clipping)
CLIP_RATIOS = tuple(np.round(np.linspace(0.6, 1.0, 21), 3))


#: the clip ratios of the output-error search (``hessian`` given): ``CLIP_RATIOS`` (so it never
#: does worse than them on a group's output), down to 0.5 of max |x| as AWQ's ``auto_clip``, and
#: steps of 0.01 near 1, where int8 finds a rounding-aware scale
OUTPUT_CLIP_RATIOS = tuple(sorted(set(np.round(np.linspace(0.5, 1.0, 26), 3)) | set(np.round(np.linspace(0.9, 1.0, 11), 3))))


def block_hessians(hessian: np.ndarray, k: int, block: int) -> np.ndarray:
    """The diagonal blocks (groups × B × B, a short last block zero-padded) of an input-channel
    Hessian ``XᵀX`` (K × K): what the output error of each group of a weight column weighs by."""
    b = block if block and block < k else k
    g = -(-k // b)
    h = np.zeros((g * b, g * b))
    h[:k, :k] = hessian
    return np.stack([h[i * b:(i + 1) * b, i * b:(i + 1) * b] for i in range(g)])


def _hess_err(d: np.ndarray, hb: np.ndarray) -> np.ndarray:
    """``eᵀ H_g e`` per (output channel, group) of block errors ``d`` (N × G × B): the squared
    output error each group's rounding adds on the calibration inputs (N × G)."""
    t = d.transpose(1, 0, 2)
    return ((t @ hb) * t).sum(-1).T


def _block_err(diff: np.ndarray, axis: int, block: int, hb: np.ndarray | None) -> np.ndarray:
    """Per-block error of a 2-D weight's rounding ``diff``, laid out as ``_block_sum``'s: squared
    (``hb`` None) or weighted by the calibration inputs' block Hessians (``block_hessians``)."""
    if hb is None:
        return _block_sum(np.square(diff), axis, block)
    d = np.moveaxis(diff, axis, -1)
    b = hb.shape[1]
    pad = hb.shape[0] * b - d.shape[-1]
    d = np.concatenate([d, np.zeros((d.shape[0], pad))], axis=-1) if pad else d
    e = _hess_err(d.reshape(d.shape[0], -1, b), hb)
    return e.T if axis % 2 == 0 else e


def _ratios(hessian, ratios) -> tuple:
    return ratios or (CLIP_RATIOS if hessian is None else OUTPUT_CLIP_RATIOS)


def fit_scales(x: np.ndarray, dtype: str, axis: int, block: int, scale_dtype: np.dtype,
               hessian: np.ndarray | None = None, ratios: tuple = ()) -> np.ndarray:
    """Per-block scales for weights ``x``: for integer types the clipping range that minimizes the
    block's squared rounding error among ``CLIP_RATIOS`` of max |x| (clipping a few outliers buys
    a finer step for all others: llama.cpp's and AWQ's clip search); float8 keeps max |x|.
    ``hessian`` (``XᵀX`` of the calibration inputs, K × K; 2-D ``x``): minimize each block's
    *output* error instead, over ``OUTPUT_CLIP_RATIOS`` (AWQ's ``auto_clip``); ``ratios``: others
    (``(1.0,)``: no clipping)."""
    amax = block_amax(x, axis, block)
    best = scale_for(amax, dtype, scale_dtype)
    if dtype not in _INT_RANGE:
        return best
    data = x.astype(np.float64)
    hb = None if hessian is None else block_hessians(hessian, x.shape[axis], block)
    best_err = None
    for r in _ratios(hessian, ratios):
        s = scale_for(amax * r, dtype, scale_dtype)
        q = quantize_array(data, s, dtype, axis, block).astype(np.float64)
        err = _block_err(data - q * _expand(s, data.shape, axis, block).astype(np.float64), axis, block, hb)
        if best_err is None:
            best, best_err = s, err
            continue
        better = err < best_err
        best = np.where(better, s, best)
        best_err = np.where(better, err, best_err)
    return best


def _block_reduce(ufunc, a: np.ndarray, axis: int, block: int) -> np.ndarray:
    axis = axis % a.ndim
    n = a.shape[axis]
    if not block or block >= n:
        return ufunc.reduce(a, axis=axis, keepdims=True)
    return ufunc.reduceat(a, np.arange(0, n, block), axis=axis)


def fit_asym(x: np.ndarray, dtype: str, axis: int, block: int, scale_dtype: np.dtype,
             hessian: np.ndarray | None = None, ratios: tuple = ()) -> tuple[np.ndarray, np.ndarray]:
    """Asymmetric (zero-point) scales and zero points per block for integer weights ``x``:
    ``x ≈ (q - z) · s`` with unsigned codes ``q`` in ``[0, 2^bits - 1]`` (``dtype``: i8/i4, the
    signedness of the scheme; codes are stored as u8/u4). The range ``[min, max]`` of each block
    (shrunk by ``CLIP_RATIOS``, keeping the one with the least squared error, as AWQ's clip
    search does) is mapped onto the codes; ``z = round(-min / s)``, an integer as ONNX
    DequantizeLinear and MatMulNBits store it. Returns (scale, zero point), both keeping dims.
    ``hessian``, ``ratios``: as ``fit_scales``'s."""
    udt = UNSIGNED[dtype]
    top = float(_INT_RANGE[udt][1])
    data = x.astype(np.float64)
    lo0 = np.minimum(_block_reduce(np.minimum, data, axis, block), 0.0)
    hi0 = np.maximum(_block_reduce(np.maximum, data, axis, block), 0.0)
    best = best_z = best_err = None
    hb = None if hessian is None else block_hessians(hessian, x.shape[axis], block)
    for r in _ratios(hessian, ratios):
        lo, hi = lo0 * r, hi0 * r
        s = scale_for((hi - lo) * QMAX[dtype] / top, dtype, scale_dtype)   # scale_for divides by QMAX
        z = np.clip(np.rint(-lo / s.astype(np.float64)), 0, top)
        q = quantize_array(data, s, udt, axis, block, z).astype(np.float64)
        deq = (q - _expand(z, data.shape, axis, block)) * _expand(s, data.shape, axis, block).astype(np.float64)
        err = _block_err(data - deq, axis, block, hb)
        if best_err is None:
            best, best_z, best_err = s, z, err
            continue
        better = err < best_err
        best, best_z = np.where(better, s, best), np.where(better, z, best_z)
        best_err = np.where(better, err, best_err)
    return best.astype(scale_dtype), best_z.astype(DTYPES[udt].np_dtype)


def fit_min(x: np.ndarray, dtype: str, axis: int, block: int, scale_dtype: np.dtype,
            hessian: np.ndarray | None = None, ratios: tuple = ()) -> tuple[np.ndarray, np.ndarray]:
    """Scale and float offset per block, ``x ≈ q · s + m`` with unsigned codes ``q`` (llama.cpp's
    Q4_1/Q8_1 and k-quants, HQQ: a float zero point). The first candidate maps the block's
    ``[min, max]`` onto the codes — weights already on such a grid (a model dequantized from
    Q4_1) come back exactly; the others shrink that range (``CLIP_RATIOS``, about its middle)
    and refit ``s`` and ``m`` to their codes by least squares, as llama.cpp's
    ``make_qkx2_quants`` does. Each block keeps the candidate with the least squared error (ties:
    the earlier). Returns (scale, offset), both keeping dims, in ``scale_dtype``. ``hessian``
    (2-D ``x``), ``ratios``: as ``fit_scales``'s (the least-squares refit stays)."""
    top = float(_INT_RANGE[UNSIGNED[dtype]][1])
    data = np.moveaxis(x.astype(np.float64), axis, -1)          # [..., K], cut into [..., G, B] blocks
    k = data.shape[-1]
    b = block if block and block < k else k
    g = -(-k // b)
    live = np.ones(g * b)
    if g * b > k:        # a short last block: padded with copies of its last value, weighted 0
        data = np.concatenate([data, np.repeat(data[..., -1:], g * b - k, axis=-1)], axis=-1)
        live[k:] = 0.0
    d = data.reshape(*data.shape[:-1], g, b)
    live = live.reshape(g, b)
    lo0, hi0 = d.min(axis=-1, keepdims=True), d.max(axis=-1, keepdims=True)
    count = live.sum(axis=-1, keepdims=True)

    def stored(s, m):
        s = np.where(np.isfinite(s) & (s > 0), s, 1.0).astype(scale_dtype)
        s = np.where(s.astype(np.float64) > 0, s, np.asarray(1.0, scale_dtype)).astype(scale_dtype)
        return s, m.astype(scale_dtype)

    def codes(s, m):
        return np.clip(np.rint((d - m.astype(np.float64)) / s.astype(np.float64)), 0.0, top)

    hb = None if hessian is None else block_hessians(hessian, k, b)

    def error(s, m, q):
        diff = (d - (q * s.astype(np.float64) + m.astype(np.float64))) * live
        return np.square(diff).sum(axis=-1, keepdims=True) if hb is None else _hess_err(diff, hb)[..., None]

    best_s, best_m = stored((hi0 - lo0) / top, lo0)
    best_err = error(best_s, best_m, codes(best_s, best_m))
    for r in sorted(_ratios(hessian, ratios), reverse=True)[1:]:
        span = (hi0 - lo0) * r
        s, m = stored(span / top, lo0 + (hi0 - lo0 - span) / 2)
        q = codes(s, m)
        # least squares of x on q per block: s = cov(q, x) / var(q), m = mean(x) − s · mean(q)
        ql = q * live
        sq, sx = ql.sum(axis=-1, keepdims=True), (d * live).sum(axis=-1, keepdims=True)
        var = (ql * q).sum(axis=-1, keepdims=True) * count - sq * sq
        cov = (ql * d).sum(axis=-1, keepdims=True) * count - sq * sx
        ok = var > 0
        s_ls = np.where(ok, cov / np.where(ok, var, 1.0), s.astype(np.float64))
        m_ls = np.where(ok, (sx - s_ls * sq) / count, m.astype(np.float64))
        for cs, cm in ((s, m), stored(s_ls, m_ls)):
            err = error(cs, cm, q if cs is s else codes(cs, cm))
            better = err < best_err
            best_s, best_m = np.where(better, cs, best_s), np.where(better, cm, best_m)
            best_err = np.where(better, err, best_err)
    # [..., G, 1] -> the input's layout with G (or 1) along ``axis``
    return (np.moveaxis(best_s[..., 0], -1, axis).astype(scale_dtype),
            np.moveaxis(best_m[..., 0], -1, axis).astype(scale_dtype))


def fit_weight(x: np.ndarray, scheme: Scheme, axis: int, block: int, scale_dtype: np.dtype,
               hessian: np.ndarray | None = None, ratios: tuple = ()) -> tuple[np.ndarray, np.ndarray | None]:
    """The integer ``scheme``'s (scales, zero points — or float offsets, or None), keeping dims:
    ``fit_min``, ``fit_asym`` or ``fit_scales`` (``hessian``, ``ratios``: theirs)."""
    fit = fit_min if scheme.asym == "min" else fit_asym if scheme.asym else fit_scales
    out = fit(x, scheme.weights, axis, block, scale_dtype, hessian, ratios)
    return out if isinstance(out, tuple) else (out, None)


def stored_layout(scale: np.ndarray, zero: np.ndarray | None, blocked: bool) -> tuple:
    """(scales, zero points) fitted keeping dims, as ``quantize_weight`` stores them: flat (N,) per channel."""
    return (scale, zero) if blocked else (scale.reshape(-1), None if zero is None else zero.reshape(-1))


def quantize_min(x: np.ndarray, scale: np.ndarray, minimum: np.ndarray, dtype: str, axis: int,
                 block: int) -> np.ndarray:
    """Unsigned codes ``round((x − m) / s)`` of the scale-and-minimum form."""
    udt = UNSIGNED[dtype]
    lo, hi = _INT_RANGE[udt]
    y = (x.astype(np.float64) - _expand(minimum, x.shape, axis, block).astype(np.float64)) \
        / _expand(scale, x.shape, axis, block).astype(np.float64)
    return np.clip(np.rint(y), lo, hi).astype(DTYPES[udt].np_dtype)


def quantize_nf4(x: np.ndarray, scale: np.ndarray, axis: int, block: int) -> np.ndarray:
    """NF4 codes (u4 indices into ``NF4_CODEBOOK``) of ``x / scale``: the nearest code."""
    y = x.astype(np.float64) / _expand(scale, x.shape, axis, block).astype(np.float64)
    mids = (NF4_CODEBOOK[1:].astype(np.float64) + NF4_CODEBOOK[:-1]) / 2
    return np.searchsorted(mids, np.clip(y, -1.0, 1.0)).astype(ml_dtypes.uint4)


def dequantize_nf4(q: np.ndarray, scale: np.ndarray, axis: int, block: int) -> np.ndarray:
    """The values NF4 codes stand for (float64)."""
    return NF4_CODEBOOK.astype(np.float64)[q.astype(np.int64)] * _expand(scale, q.shape, axis, block)


def _block_sum(a: np.ndarray, axis: int, block: int) -> np.ndarray:
    axis = axis % a.ndim
    n = a.shape[axis]
    if not block or block >= n:
        return a.sum(axis=axis, keepdims=True)
    return np.add.reduceat(a, np.arange(0, n, block), axis=axis)


def _expand(scale: np.ndarray, shape: tuple, axis: int, block: int) -> np.ndarray:
    axis = axis % len(shape)
    if not block or scale.shape[axis] == 1:
        return scale
    return np.repeat(scale, block, axis=axis).take(range(shape[axis]), axis=axis)


def step_bound(x: np.ndarray, scale: np.ndarray, dtype: str, axis: int, block: int,
               zero_point: np.ndarray | None = None) -> np.ndarray:
    """The largest error ``|x - dequantize(quantize(x))|`` each element of ``x`` can carry under
    ``scale``: half a step for integers; for float8 half an ulp of ``x / scale`` (relative
    2^-(mantissa+1) for normals, half the smallest subnormal below), times the scale. A value
    beyond the range is clipped: its bound is its distance to the range, if that is larger."""
    s = np.abs(_expand(scale, x.shape, axis, block).astype(np.float64))
    if dtype == "nf4":          # half the gap between the two codes around x / scale
        y = np.clip(x.astype(np.float64) / s, -1.0, 1.0)
        i = np.clip(np.searchsorted(NF4_CODEBOOK, y) - 1, 0, 14)
        gap = (NF4_CODEBOOK[i + 1].astype(np.float64) - NF4_CODEBOOK[i]) / 2
        return np.maximum(gap, np.abs(x) / s - 1.0) * s
    if zero_point is not None:  # asymmetric: codes in the unsigned range, shifted by the zero point
        lo, hi = _INT_RANGE[UNSIGNED.get(dtype, dtype)]
        y = x.astype(np.float64) / s + _expand(zero_point, x.shape, axis, block).astype(np.float64)
        return np.maximum(0.5, np.maximum(lo - y, y - hi)) * s
    y = np.abs(x.astype(np.float64)) / s
    if dtype in _INT_RANGE:
        hi = _INT_RANGE[dtype][1]
        return np.maximum(0.5, y - hi) * s           # rounding, or the clip to the range
    info = ml_dtypes.finfo(DTYPES[dtype].np_dtype)
    ulp_half = np.where(y >= float(info.smallest_normal), y * 2.0 ** -(info.nmant + 1),
                        float(info.smallest_subnormal) / 2)
    return np.maximum(ulp_half, y - float(info.max)) * s
