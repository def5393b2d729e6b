"""The Python half of ``RIDGELINE_LLVM_CHECKED=1``: sizes and an error record for every launch.

Kernels compiled in checked mode (see ``irutil``) take each buffer's size in bytes after its
pointers, and an i64[2] record (1 + 2 * buffer + store?, element index) where the first access out
of bounds is noted — the access itself goes to a scratch slot, so nothing outside the buffers is
read or written. ``CheckedKernel.launch`` appends the sizes (from ``lowering.ptr``, which tags
each address with its array's size) and turns a noted access into a ``BackendError`` naming the
kernel, the node being run and the index.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ...ir.errors import BackendError

__all__ = ["UNKNOWN_SIZE", "CheckedKernel", "current_node", "running"]

#: the size handed for an address without one (a plain int from outside the executor): unchecked
UNKNOWN_SIZE = 1 << 62

_state = threading.local()


def running(what: str | None) -> None:
    """Note the node the calling thread is about to run (for the error message)."""
    _state.node = what


def current_node() -> str:
    return getattr(_state, "node", None) or "a kernel outside a graph run"


class CheckedKernel:
    """A compiled kernel with bounds checks: call it like the plain one (``lo, hi, *ptrs``)
    through ``Runner.launch``, which uses ``expand``/``verify`` around the split calls."""

    def __init__(self, fn: Callable[..., None], symbol: str, n_ptrs: int):
        self.fn, self.symbol, self.n_ptrs = fn, symbol, n_ptrs

    def expand(self, ptrs: Sequence[int]) -> tuple[list[Any], np.ndarray]:
        if len(ptrs) != self.n_ptrs:
            raise BackendError(f"llvm kernel {self.symbol} of {current_node()}: launched with {len(ptrs)} "
                               f"buffers, compiled for {self.n_ptrs}")
        rec = np.zeros(2, np.int64)
        sizes = [int(getattr(p, "nbytes", UNKNOWN_SIZE)) for p in ptrs]
        return list(ptrs) + sizes + [rec.ctypes.data], rec

    def verify(self, rec: np.ndarray, ptrs: Sequence[int]) -> None:
        if not rec[0]:
            return
        (k, is_store), index = divmod(int(rec[0]) - 1, 2), int(rec[1])
        size = getattr(ptrs[k], "nbytes", None)
        raise BackendError(f"RIDGELINE_LLVM_CHECKED: llvm kernel {self.symbol} of {current_node()}: "
                           f"{'store to' if is_store else 'load from'} buffer {k} at element {index}, "
                           f"outside its {size} bytes")

    def __call__(self, lo: int, hi: int, *ptrs: int) -> None:
        full, rec = self.expand(ptrs)
        self.fn(lo, hi, *full)
        self.verify(rec, ptrs)
