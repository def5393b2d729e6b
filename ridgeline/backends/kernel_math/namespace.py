"""The array namespace of the shared kernel math: the array API standard's names over numpy and
torch, for the few functions whose names or signatures differ. ``namespace(x)`` picks one from an
array's type (torch is imported only when a tensor is seen)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["namespace"]


class _Numpy:
    float32, float64, int64, bool = np.float32, np.float64, np.int64, np.bool_
    concat, stack, where, tanh, exp, matmul = np.concatenate, np.stack, np.where, np.tanh, np.exp, np.matmul
    isneginf, permute_dims = np.isneginf, np.transpose

    @staticmethod
    def arange(n: int, like: Any) -> np.ndarray:
        return np.arange(n)

    @staticmethod
    def ones(shape: tuple, dtype: Any, like: Any) -> np.ndarray:
        return np.ones(shape, dtype)

    @staticmethod
    def astype(x: np.ndarray, dtype: Any) -> np.ndarray:
        return x.astype(dtype, copy=False)

    @staticmethod
    def repeat(x: np.ndarray, n: int, axis: int) -> np.ndarray:
        return np.repeat(x, n, axis=axis)

    @staticmethod
    def pad_last(x: np.ndarray, n: int, value: Any) -> np.ndarray:
        return np.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, n)], constant_values=value)

    @staticmethod
    def max(x: np.ndarray, axis: int, keepdims: bool = False) -> np.ndarray:
        return np.max(x, axis=axis, keepdims=keepdims)

    @staticmethod
    def sum(x: np.ndarray, axis: int, keepdims: bool = False) -> np.ndarray:
        return np.sum(x, axis=axis, keepdims=keepdims)

    @staticmethod
    def chunk2(x: np.ndarray) -> list[np.ndarray]:
        return np.split(x, 2, axis=-1)

    @staticmethod
    def matrix_transpose(x: np.ndarray) -> np.ndarray:
        return np.swapaxes(x, -1, -2)

    square, sqrt, abs = np.square, np.sqrt, np.abs

    @staticmethod
    def mean(x: np.ndarray, axis: Any, keepdims: bool = False) -> np.ndarray:
        return np.mean(x, axis=axis, keepdims=keepdims)

    @staticmethod
    def clip_min(x: np.ndarray, low: float) -> np.ndarray:
        return np.maximum(x, low)

    @staticmethod
    def dtype(name: str) -> Any:
        """The library's dtype of an IR dtype name."""
        from ...ir.dtypes import DTYPES
        return DTYPES[name].np_dtype


def _torch_namespace():
    import torch
    import torch.nn.functional as F

    class _Torch:
        float32, float64, int64, bool = torch.float32, torch.float64, torch.int64, torch.bool
        concat, stack, where = torch.cat, torch.stack, torch.where
        tanh, exp, matmul = torch.tanh, torch.exp, torch.matmul
        isneginf, permute_dims = torch.isneginf, torch.permute

        @staticmethod
        def arange(n: int, like: torch.Tensor) -> torch.Tensor:
            return torch.arange(n, device=like.device)

        @staticmethod
        def ones(shape: tuple, dtype: Any, like: torch.Tensor) -> torch.Tensor:
            return torch.ones(shape, dtype=dtype, device=like.device)

        @staticmethod
        def astype(x: torch.Tensor, dtype: Any) -> torch.Tensor:
            return x.to(dtype)

        @staticmethod
        def repeat(x: torch.Tensor, n: int, axis: int) -> torch.Tensor:
            return torch.repeat_interleave(x, n, dim=axis)

        @staticmethod
        def pad_last(x: torch.Tensor, n: int, value: Any) -> torch.Tensor:
            return F.pad(x, (0, n), value=value)

        @staticmethod
        def max(x: torch.Tensor, axis: int, keepdims: bool = False) -> torch.Tensor:
            return torch.amax(x, dim=axis, keepdim=keepdims)

        @staticmethod
        def sum(x: torch.Tensor, axis: int, keepdims: bool = False) -> torch.Tensor:
            return torch.sum(x, dim=axis, keepdim=keepdims)

        @staticmethod
        def chunk2(x: torch.Tensor) -> list[torch.Tensor]:
            return list(torch.chunk(x, 2, dim=-1))

        @staticmethod
        def matrix_transpose(x: torch.Tensor) -> torch.Tensor:
            return x.mT

        square, sqrt, abs = torch.square, torch.sqrt, torch.abs

        @staticmethod
        def mean(x: torch.Tensor, axis: Any, keepdims: bool = False) -> torch.Tensor:
            return torch.mean(x, dim=axis, keepdim=keepdims)

        @staticmethod
        def clip_min(x: torch.Tensor, low: float) -> torch.Tensor:
            return torch.clamp(x, min=low)

        @staticmethod
        def dtype(name: str) -> Any:
            from ..torch.convert import torch_dtype
            return torch_dtype(name)

    return _Torch


_NAMESPACES: dict[str, Any] = {"numpy": _Numpy}


def namespace(*arrays: Any) -> Any:
    """The namespace of the first array that is not None (numpy for numpy arrays and scalars)."""
    x = next((a for a in arrays if a is not None), None)
    if type(x).__module__.startswith("torch"):
        ns = _NAMESPACES.get("torch")
        if ns is None:
            ns = _NAMESPACES["torch"] = _torch_namespace()
        return ns
    return _Numpy
