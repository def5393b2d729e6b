"""The array namespace of the shared kernel math: the array API standard's names over numpy and
torch, for the functions whose names or signatures differ (``like`` gives the device where one is
created); ``module`` is the library itself, for the functions both name and call alike.
``namespace(x)`` picks one by an array's type; torch is imported only when a tensor is seen."""

from __future__ import annotations

import contextlib
import functools
import math
from typing import Any

import ml_dtypes
import numpy as np

__all__ = ["namespace"]


class _Numpy:
    module = np         # for the functions both libraries name alike (maximum, logical_and, isposinf, ...)
    float32, float64, int64, bool = np.float32, np.float64, np.int64, np.bool_
    concat, stack, where, tanh, exp, matmul = np.concatenate, np.stack, np.where, np.tanh, np.exp, np.matmul
    isneginf, permute_dims, square, sqrt, abs = np.isneginf, np.transpose, np.square, np.sqrt, np.abs
    arange = staticmethod(lambda n, like: np.arange(n))
    ones = staticmethod(lambda shape, dtype, like: np.ones(shape, dtype))
    astype = staticmethod(lambda x, dtype: x.astype(dtype, copy=False))
    pad_last = staticmethod(lambda x, n, value: np.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, n)], constant_values=value))
    # called as (x, axis, keepdims=...), (x, axis) and (x, axis, dtype), as numpy takes them
    max, sum, mean, min, prod = np.max, np.sum, np.mean, np.min, np.prod
    repeat, flip, argmax, argmin, take_along_axis = np.repeat, np.flip, np.argmax, np.argmin, np.take_along_axis
    cumsum, cumprod = np.cumsum, np.cumprod
    full = staticmethod(lambda shape, value, dtype, like: np.full(shape, value, dtype=dtype))
    chunk2 = staticmethod(lambda x: np.split(x, 2, axis=-1))
    matrix_transpose = staticmethod(lambda x: np.swapaxes(x, -1, -2))
    clip_min = staticmethod(lambda x, low: np.maximum(x, low))
    clip_max = staticmethod(lambda x, high: np.minimum(x, high))
    broadcast = staticmethod(np.broadcast_arrays)
    pad_constant = staticmethod(lambda x, widths, value: np.pad(x, widths, constant_values=value))
    from_numpy = staticmethod(lambda a, like: a)
    copy = staticmethod(lambda x: x.copy())     # C order, as np.copy (it keeps the layout) is not
    expand = staticmethod(lambda x, shape: np.broadcast_to(x, shape).copy())
    sign = staticmethod(lambda x: np.asarray(np.sign(x)))     # NaN for NaN, as in C
    clip, log1p = np.clip, np.log1p
    log, full_like, expand_dims, asarray, contiguous = np.log, np.full_like, np.expand_dims, np.asarray, \
        np.ascontiguousarray
    errstate = staticmethod(np.errstate)
    argsort_stable = staticmethod(lambda x, axis: np.argsort(x, axis=axis, kind="stable"))
    det = staticmethod(np.linalg.det)
    same_device = staticmethod(lambda *xs: list(xs))
    rint, any = np.rint, np.any
    finfo_max = staticmethod(lambda dtype: float(ml_dtypes.finfo(dtype).max))
    einsum, iinfo, sin, cos = np.einsum, np.iinfo, np.sin, np.cos
    host_array = staticmethod(lambda values, dtype: np.array(values, dtype=dtype))
    zeros = staticmethod(lambda shape, dtype, like: np.zeros(shape, dtype))
    windows = staticmethod(lambda x, k, axis: np.lib.stride_tricks.sliding_window_view(x, k, axis=axis))
    unique = staticmethod(lambda x, axis: np.unique(x, return_inverse=True, return_counts=True, axis=axis))
    to_numpy = staticmethod(np.asarray)
    # einsum free to sum in another order, through BLAS where it can (the convolutions)
    contract = staticmethod(lambda spec, *xs: np.einsum(spec, *xs, optimize=True))
    # math.erf per element in float64: exact to double precision, no scipy dependency
    erf = staticmethod(lambda x: np.vectorize(math.erf, otypes=[np.float64])(x.astype(np.float64)))

    @staticmethod
    def convert(x: np.ndarray, dtype: Any) -> np.ndarray:
        """``x`` as ``dtype`` (ml_dtypes rounds to nearest even; integers wrap around as in C),
        also between the pairs ml_dtypes does not convert directly (int4 <-> uint4)."""
        with np.errstate(invalid="ignore", over="ignore"):
            try:
                return x.astype(dtype)
            except (TypeError, ValueError):
                via = np.int64 if x.dtype.name in ("int4", "uint4") or x.dtype.kind in "iu" else np.float32
                return x.astype(via).astype(dtype)

    @staticmethod
    def scatter_rows(rows: np.ndarray, flat: np.ndarray, updates: np.ndarray, reduction: str) -> None:
        """``rows[flat] = updates`` in place, or combined with them by ``reduction`` (add, mul, max, min)."""
        if reduction == "none":
            rows[flat] = updates
        else:
            getattr(np, {"add": "add", "mul": "multiply", "max": "maximum", "min": "minimum"}[reduction]).at(
                rows, flat, updates)

    @staticmethod
    def dtype(name: str) -> Any:
        """The library's dtype of an IR dtype name."""
        from ...ir.dtypes import DTYPES
        return DTYPES[name].np_dtype

    @staticmethod
    @functools.cache   # kernels ask on every call (Gather, Div, Cast): a dict hit, not a dtype parse
    def name_of(dtype: Any) -> str:
        """The IR name of one of the library's dtypes."""
        from ...ir.dtypes import dtype as to_dtype
        return to_dtype(dtype).name


def _torch_namespace() -> type:
    import torch
    import torch.nn.functional as F

    from ..torch.convert import TORCH_DTYPES, torch_dtype
    from ..torch.convert import to_numpy as tensor_to_numpy
    from ..torch.kernels import same_device as torch_same_device

    class _Torch:
        module = torch
        float32, float64, int64, bool = torch.float32, torch.float64, torch.int64, torch.bool
        concat, stack, where = torch.cat, torch.stack, torch.where
        tanh, exp, matmul = torch.tanh, torch.exp, torch.matmul
        isneginf, permute_dims, square, sqrt, abs = torch.isneginf, torch.permute, torch.square, torch.sqrt, torch.abs
        arange = staticmethod(lambda n, like: torch.arange(n, device=like.device))
        ones = staticmethod(lambda shape, dtype, like: torch.ones(shape, dtype=dtype, device=like.device))
        astype = staticmethod(lambda x, dtype: x.to(dtype))
        repeat = staticmethod(lambda x, n, axis: torch.repeat_interleave(x, n, dim=axis))
        pad_last = staticmethod(lambda x, n, value: F.pad(x, (0, n), value=value))
        max = staticmethod(lambda x, axis, keepdims=False: torch.amax(x, dim=axis, keepdim=keepdims))
        sum = staticmethod(lambda x, axis, keepdims=False: torch.sum(x, dim=axis, keepdim=keepdims))
        mean = staticmethod(lambda x, axis, keepdims=False: torch.mean(x, dim=axis, keepdim=keepdims))
        min = staticmethod(lambda x, axis, keepdims=False: torch.amin(x, dim=axis, keepdim=keepdims))
        prod = staticmethod(_torch_prod)
        full = staticmethod(lambda shape, value, dtype, like: torch.full(shape, value, dtype=dtype, device=like.device))
        chunk2 = staticmethod(lambda x: list(torch.chunk(x, 2, dim=-1)))
        matrix_transpose = staticmethod(lambda x: x.mT)
        clip_min = staticmethod(lambda x, low: torch.clamp(x, min=low))
        clip_max = staticmethod(lambda x, high: torch.clamp(x, max=high))
        broadcast = staticmethod(torch.broadcast_tensors)
        pad_constant = staticmethod(_torch_pad_constant)
        from_numpy = staticmethod(lambda a, like: torch.from_numpy(a).to(like.device))
        copy = torch.clone
        expand = staticmethod(lambda x, shape: x.expand(shape))     # a view
        sign = staticmethod(lambda x: torch.where(torch.isnan(x), x, torch.sign(x)) if x.dtype.is_floating_point
                            else torch.sign(x))     # torch.sign(NaN) is 0
        clip, log1p = torch.clamp, torch.log1p
        log, full_like, expand_dims, asarray, contiguous = torch.log, torch.full_like, torch.unsqueeze, \
            staticmethod(lambda x: x), staticmethod(lambda x: x)
        errstate = staticmethod(lambda **_: contextlib.nullcontext())     # torch does not warn
        flip = staticmethod(lambda x, axis: torch.flip(x, [axis]))
        argmax = staticmethod(lambda x, axis: torch.argmax(x, dim=axis))
        argmin = staticmethod(lambda x, axis: torch.argmin(x, dim=axis))
        argsort_stable = staticmethod(lambda x, axis: torch.argsort(x, dim=axis, stable=True))
        take_along_axis = staticmethod(lambda x, idx, axis: torch.take_along_dim(x, idx, dim=axis))
        cumsum = staticmethod(lambda x, axis, dtype: torch.cumsum(x, dim=axis, dtype=dtype))
        cumprod = staticmethod(lambda x, axis, dtype: torch.cumprod(x, dim=axis, dtype=dtype))
        det = staticmethod(torch.linalg.det)
        same_device = staticmethod(torch_same_device)
        rint, any = torch.round, torch.any      # torch.round: half to even, as numpy's rint
        finfo_max = staticmethod(lambda dtype: torch.finfo(dtype).max)
        einsum, iinfo, sin, cos = torch.einsum, torch.iinfo, torch.sin, torch.cos
        host_array = staticmethod(lambda values, dtype: torch.tensor(values, dtype=dtype))   # shapes stay on the host
        zeros = staticmethod(lambda shape, dtype, like: torch.zeros(shape, dtype=dtype, device=like.device))
        windows = staticmethod(lambda x, k, axis: x.unfold(axis, k, 1))
        unique = staticmethod(lambda x, axis: torch.unique(x, sorted=True, return_inverse=True, return_counts=True,
                                                           dim=axis))
        scatter_rows = staticmethod(_torch_scatter_rows)
        to_numpy, erf, convert, contract = staticmethod(tensor_to_numpy), torch.erf, staticmethod(_torch_convert), \
            torch.einsum
        dtype = staticmethod(torch_dtype)
        name_of = staticmethod({v: k for k, v in reversed(TORCH_DTYPES.items())}.__getitem__)   # the first name

    return _Torch


def _torch_prod(x, axis, keepdims=False):
    """torch.prod over several axes (it takes one at a time)."""
    import torch
    for a in sorted(axis, reverse=True):
        x = torch.prod(x, dim=a, keepdim=keepdims)
    return x


def _torch_pad_constant(x, widths, value):
    """x padded by (begin, end) per axis with ``value`` (written into a full tensor: ``F.pad``
    takes the value as a float, which drops low bits of a large int64)."""
    import torch
    out = torch.full([d + b + e for d, (b, e) in zip(x.shape, widths)], value, dtype=x.dtype, device=x.device)
    out[tuple(slice(b, b + d) for d, (b, _) in zip(x.shape, widths))] = x
    return out


def _torch_convert(x, dtype):
    """``x.to(dtype)``; to and from float8 through float32 (or from float64), which torch converts."""
    import torch
    f8 = (torch.float8_e4m3fn, torch.float8_e5m2)
    return (x.float() if (dtype in f8 or x.dtype in f8) and x.dtype != torch.float64 else x).to(dtype)


def _torch_scatter_rows(rows, flat, updates, reduction: str) -> None:
    """The numpy namespace's ``scatter_rows`` by ``scatter_`` / ``scatter_reduce_`` along the rows."""
    idx = flat.reshape((-1,) + (1,) * (rows.ndim - 1)).expand(updates.shape)
    if reduction == "none":
        rows.scatter_(0, idx, updates)
    else:
        rows.scatter_reduce_(0, idx, updates, {"add": "sum", "mul": "prod", "max": "amax", "min": "amin"}[reduction])


_NAMESPACES: dict[str, Any] = {"numpy": _Numpy}


def namespace(*arrays: Any) -> Any:
    """The namespace of the first array that is not None (numpy for numpy arrays and scalars)."""
    x = arrays[0] if arrays[0] is not None else next((a for a in arrays if a is not None), None)
    if type(x) is not np.ndarray and type(x).__module__.startswith("torch"):
        if "torch" not in _NAMESPACES:
            _NAMESPACES["torch"] = _torch_namespace()
        return _NAMESPACES["torch"]
    return _Numpy
