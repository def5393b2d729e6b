"""Constant storage that is read only when a pass or kernel needs the values.

A ``LazyTensor`` stands in a constant ``Value`` for weights that live in a file (an ONNX model's
external data, memory-mapped): its shape, dtype and size are known without touching the bytes,
and ``numpy()`` gives the array on first use — a read-only view of the mapping, so even then no
copy is made and the OS pages bytes in as a kernel reads them. ``materializations()`` counts first
uses, so a test can assert that ``show`` and ``ir`` never reach the weights.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np

__all__ = ["LazyTensor", "materializations"]

_count = itertools.count()
_materialized = 0


def materializations() -> int:
    """How many lazy tensors have been turned into arrays in this process so far."""
    return _materialized


class LazyTensor:
    """An array of known ``shape`` and ``dtype`` whose data comes from ``load()`` on first use."""

    __slots__ = ("_array", "_load", "dtype", "shape", "source")

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype, load: Callable[[], np.ndarray], source: str = ""):
        self.shape = tuple(int(d) for d in shape)
        self.dtype = np.dtype(dtype)
        self._load = load
        self._array: np.ndarray | None = None
        self.source = source  # where the bytes live, for messages ("model.onnx.data @ 4096")

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    @property
    def loaded(self) -> bool:
        return self._array is not None

    def numpy(self) -> np.ndarray:
        """The values (read-only); the first call maps or reads them."""
        global _materialized
        if self._array is None:
            a = np.asarray(self._load())
            if a.shape != self.shape or a.dtype != self.dtype:
                raise ValueError(f"lazy tensor {self.source}: loaded {a.dtype}{list(a.shape)}, "
                                 f"declared {self.dtype}{list(self.shape)}")
            if a.flags.writeable:
                a.setflags(write=False)
            self._array = a
            self._load = None  # the loader may hold a file; the array keeps what it needs
            _materialized += 1
        return self._array

    def __reduce__(self):
        # pickled (a process pool, deepcopy) as the plain array: a mapping does not cross processes
        return np.array, (self.numpy(),)

    def __repr__(self) -> str:
        state = "loaded" if self.loaded else "not loaded"
        return f"LazyTensor({self.dtype}{list(self.shape)}, {self.source or '?'}, {state})"
