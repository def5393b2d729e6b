"""What a lowering produces, and the layout arithmetic every kernel shares.

A ``Lowering`` is one node's kernel at fixed shapes: it ``emit``s LLVM functions into a module
and, once they are compiled, ``bind`` returns the Python callable that runs them on numpy
buffers (``args -> outputs``). Lowerings may also be plain Python (the BLAS GEMM path).

Every value the llvm backend passes between nodes is C-contiguous, so a kernel's layout follows
from shapes alone and kernels are specialized on them (constant trip counts and strides).
"""

from __future__ import annotations

import ctypes
import math
import weakref
from typing import Any, Callable, Sequence

import llvmlite.ir as ir
import numpy as np

from ...ir.verifier import describe
from .irutil import checked_now
from .replay import replayable

__all__ = ["Lowering", "Unsupported", "KernelFn", "contiguous_strides", "broadcast_strides", "coalesce",
           "ptr", "Ptr", "cfunc", "outputs", "check_inputs", "launcher"]


class Unsupported(Exception):
    """A node this backend has no kernel for at these shapes; the message says why."""


KernelFn = Callable[..., None]


class Lowering:
    """Base of every node lowering; see the module docstring."""

    #: bytes moved plus flops of one run, to decide whether splitting across cores pays
    cost: float = 0.0

    def emit(self, module: ir.Module, name: Callable[[str], str]) -> None:
        """Define this lowering's functions in ``module``; ``name(local)`` gives their symbols."""

    def signature(self) -> tuple | None:
        """Everything ``emit`` depends on, as a key: lowerings with equal signatures emit the same
        IR, so the executor emits one of them (see ``signature.py``); None emits every time."""
        from .signature import lowering_signature
        return lowering_signature(self)

    def bind(self, fn: Callable[[str], KernelFn], runner: Any) -> Callable[[list, list], tuple]:
        """The runnable kernel ``run(args, outs) -> outputs``, given ``fn(local)`` -> compiled
        function and the core runner. ``outs[j]`` is a buffer to write output j into (planned
        by the executor) or None to allocate one; kernels never return their inputs."""
        raise NotImplementedError


def outputs(outs: Sequence[np.ndarray | None], shapes, dtypes) -> tuple[np.ndarray, ...]:
    """The planned output buffers, allocating the ones not planned; in checked mode filled with
    NaN (integers: their largest value) so that an element no kernel wrote cannot pass as a number."""
    res = tuple(o if o is not None else np.empty(s, d) for o, s, d in zip(outs, shapes, dtypes))
    if checked_now():   # as read at the start of this run: the environment costs ~1 µs a kernel
        for o in res:
            _poison(o)
    return res


def launcher(lw: Lowering, kern: KernelFn, runner: Any, extent: int, operands: Sequence[int | np.ndarray],
             expect: Sequence[tuple[int, tuple[int, ...]]], cost: float, grain: int = 1) -> Callable[[list, list], tuple]:
    """The ``bind`` of a one-launch kernel: a replayable ``run(args, outs)`` that takes its outputs
    (``lw.out_shapes``/``out_dtypes``) as ``outputs`` does, checks the inputs against ``expect`` and
    launches ``kern`` over ``extent`` on the pointers of ``operands`` — an int is that node input,
    an array a constant the kernel reads (kept alive with ``run``) — then of the outputs."""
    name, shapes, dtypes = describe(lw.node), lw.out_shapes, lw.out_dtypes
    empty = extent == 0 or any(math.prod(s) == 0 for s in shapes)
    fixed = [0 if isinstance(o, int) else ptr(o) for o in operands]
    args_idx = [(k, o) for k, o in enumerate(operands) if isinstance(o, int)]

    def run(args, outs):
        outs = outputs(outs, shapes, dtypes)
        if empty:
            return outs
        check_inputs(name, args, expect)
        ptrs = list(fixed)
        for k, i in args_idx:
            ptrs[k] = ptr(args[i])
        runner.launch(kern, extent, ptrs + [ptr(o) for o in outs], cost, grain)
        return outs
    run.keep = [o for o in operands if not isinstance(o, int)]
    return replayable(run)


def _poison(a: np.ndarray) -> None:
    if a.dtype.kind == "f" or a.dtype.kind == "V":
        a.reshape(-1).view(np.uint8).fill(0xFF)   # a NaN in every float format
    elif a.dtype.kind in "iu":
        a.fill(np.iinfo(a.dtype).max)
    elif a.dtype == np.bool_:
        a.reshape(-1).view(np.uint8).fill(0x7F)   # neither True (1) nor False (0)


def check_inputs(name: str, args: Sequence[np.ndarray | None], expect: Sequence[tuple[int, tuple[int, ...]]],
                 loose: frozenset[int] = frozenset()) -> None:
    """Refuse to run a kernel on buffers other than the ones it was compiled for (no reads out of
    bounds, whatever happens upstream); a None in an expected shape is a size read at run time.
    Inputs in ``loose`` may be strided (the kernel reads their strides)."""
    for i, shape in expect:
        a = args[i]
        if a.shape == shape and a.flags.c_contiguous:   # the common case, first (a decode step asks ~10^3 times)
            continue
        if len(a.shape) != len(shape) or any(e is not None and n != e for n, e in zip(a.shape, shape)) \
                or not (a.flags.c_contiguous or i in loose):
            from ...ir.errors import BackendError
            raise BackendError(f"{name}: llvm kernel compiled for input {i} of shape "
                               f"{['?' if e is None else e for e in shape]}, "
                               f"got {list(a.shape)}{'' if a.flags.c_contiguous else ' (not contiguous)'}")


class Ptr(int):
    """A buffer's address that also knows the buffer's size (``nbytes``), for checked mode."""


#: id(array) -> (weak reference, address): the planned buffers and weights a plan hands to its
#: kernels on every run are the same array objects, and ``a.ctypes.data`` builds a ctypes object
#: per call (microseconds — as much as a decode step's small kernels). An entry dies with its array.
_ADDRESSES: dict[int, tuple[weakref.ref, int]] = {}


def _forget(key: int, ref: weakref.ref) -> None:
    if _ADDRESSES.get(key, (None,))[0] is ref:
        _ADDRESSES.pop(key, None)


def ptr(a: np.ndarray) -> int:
    """The address of ``a``'s data; in checked mode tagged with its size in bytes — for a strided
    view, the bytes it reaches (first to last element), so a read past one row's end that stays
    inside that reach (into the next row, or a column block's neighbours) goes unnoticed."""
    if checked_now():
        p = Ptr(a.ctypes.data)
        # a strided view (a column block, a cache's first rows) reaches past its nbytes
        p.nbytes = a.nbytes if a.flags.c_contiguous or not a.size else \
            a.itemsize + sum((n - 1) * st for n, st in zip(a.shape, a.strides) if st > 0)
        return p
    key = id(a)
    hit = _ADDRESSES.get(key)
    if hit is not None and hit[0]() is a:
        return hit[1]
    address = a.ctypes.data
    try:
        ref = weakref.ref(a, lambda r, key=key: _forget(key, r))
    except TypeError:   # not weak-referenceable (a numpy scalar): no cache
        return address
    _ADDRESSES[key] = (ref, address)
    return address


_CFUNC: dict[int, Any] = {}


def cfunc(address: int, n_ptrs: int) -> KernelFn:
    """A ctypes callable ``f(lo, hi, *pointers)`` for a kernel (ctypes releases the GIL)."""
    proto = _CFUNC.get(n_ptrs)
    if proto is None:
        proto = _CFUNC[n_ptrs] = ctypes.CFUNCTYPE(None, ctypes.c_int64, ctypes.c_int64,
                                                  *([ctypes.c_void_p] * n_ptrs))
    return proto(address)


def contiguous_strides(shape: Sequence[int]) -> tuple[int, ...]:
    """C-order strides in elements."""
    out = []
    acc = 1
    for d in reversed(shape):
        out.append(acc)
        acc *= d
    return tuple(reversed(out))


def broadcast_strides(shape: Sequence[int], target: Sequence[int]) -> tuple[int, ...]:
    """Element strides reading a contiguous ``shape`` broadcast (right-aligned) to ``target``."""
    if len(shape) > len(target):
        raise Unsupported(f"shape {list(shape)} does not broadcast to {list(target)}")
    own = contiguous_strides(shape)
    pad = len(target) - len(shape)
    out = [0] * pad
    for d, n in enumerate(shape):
        t = target[pad + d]
        if n == t:
            out.append(own[d] if n != 1 else 0)
        elif n == 1:
            out.append(0)
        else:
            raise Unsupported(f"shape {list(shape)} does not broadcast to {list(target)}")
    return tuple(out)


def coalesce(shape: Sequence[int], strides: Sequence[Sequence[int]]) -> tuple[tuple[int, ...], list[tuple[int, ...]]]:
    """Drop size-1 dims and merge neighbours every operand walks contiguously (numpy's nditer
    does the same): a [B, S, D] add with a [D] bias becomes a 2-D loop, a plain add 1-D."""
    keep = [d for d, n in enumerate(shape) if n != 1]
    dims = [shape[d] for d in keep]
    st = [[s[d] for d in keep] for s in strides]
    if not dims:
        return (1,), [(0,) for _ in strides]
    out_dims = [dims[0]]
    out_st = [[s[0]] for s in st]
    for d in range(1, len(dims)):
        if all(s_[-1] == s[d] * dims[d] for s_, s in zip(out_st, st)):
            out_dims[-1] *= dims[d]
            for s_, s in zip(out_st, st):
                s_[-1] = s[d]
        else:
            out_dims.append(dims[d])
            for s_, s in zip(out_st, st):
                s_.append(s[d])
    return tuple(out_dims), [tuple(s) for s in out_st]
