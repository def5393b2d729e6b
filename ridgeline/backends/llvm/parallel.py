"""Splitting a kernel's outer range across the host's cores.

Kernels take ``[lo, hi)`` of their outermost parallel dimension, so running on two cores is
calls on disjoint chunks. The calls go through ctypes, which releases the GIL, so persistent
worker threads run them truly in parallel. Dispatch costs some microseconds, so only kernels
whose estimated traffic (bytes moved plus flops) exceeds ``threshold`` are split.

The range is cut into a few chunks per core (a few dozen units: one each) that threads claim one
at a time, and the calling thread never waits for a worker that has not started: on a shared
machine (load above the core count) a worker may not be scheduled for milliseconds, and then the
caller runs every chunk itself instead of idling — a static even split waits for the slowest thread.

Two implementations sit behind ``Runner``: the native pool (``native_pool``: workers spinning
in JIT-compiled code, one ctypes call per launch, ~1-3 µs of dispatch) where it can be built, and
the pure-Python one below (a queue, a condition and a lock per launch, tens of µs) elsewhere or
with ``RIDGELINE_LLVM_RUNNER=python``. A launch from a second Python thread while another is in
flight on the same runner runs on its own thread rather than waiting.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Sequence

from ...ir.errors import BackendError
from ..threads import available_cores
from . import native_pool

__all__ = ["DEFAULT_THRESHOLD", "NATIVE_THRESHOLD", "Runner", "finish", "get_runner"]

#: kernels below this cost (bytes + flops) run on one core: a split through the Python runner costs
#: ~10-30 µs of dispatch, the time one core needs for about this much work (an assumption checked
#: by bench_backends.py)
DEFAULT_THRESHOLD = 1 << 19
#: the same through the native pool, whose launch costs ~2 µs more than a direct call
#: (``bench_backends.py --only launch``: 2.3 µs against 7.3 through the Python runner, load 14):
#: a split pays from ~4 µs of one-core work (~128 KB at ~30 GB/s); twice that, for a margin
NATIVE_THRESHOLD = 1 << 18
#: chunks per thread: small enough that a late worker costs little, big enough to amortize calls
CHUNKS_PER_THREAD = 4
#: launches of up to this many grains (a product's tasks) get a native chunk each: 9 in 8 chunks ran 5 : 4
EVEN_UNITS = 64


def _chunk_count(units: int, threads: int, native: bool = True) -> int:
    return max(2, units if native and units <= EVEN_UNITS else min(threads * CHUNKS_PER_THREAD, units))


def finish(sizes: Sequence[float], threads: int) -> float:
    """When the last of ``threads`` cores (the lowering passes ``host().cores``, not a runner's thread count)
    is done with tasks of ``sizes`` in launch order, each claiming the native pool's next chunk when free."""
    n, chunks, loads = len(sizes), _chunk_count(len(sizes), threads), [0.0] * threads
    for k in range(chunks):
        loads[loads.index(min(loads))] += sum(sizes[n * k // chunks:n * (k + 1) // chunks])
    return max(loads)


class _Launch:
    """One split launch: chunks claimed under a lock; the caller waits only for started workers."""

    __slots__ = ("active", "bounds", "closed", "cond", "fn", "next", "ptrs")

    def __init__(self, fn, ptrs, bounds):
        self.fn, self.ptrs, self.bounds = fn, ptrs, bounds
        self.next = 0
        self.active = 0
        self.closed = False
        self.cond = threading.Condition(threading.Lock())

    def work(self) -> None:
        n = len(self.bounds) - 1
        while True:
            with self.cond:   # claim the next chunk
                k = self.next
                self.next += 1
            if k >= n:
                return
            self.fn(self.bounds[k], self.bounds[k + 1], *self.ptrs)

    def join_worker(self) -> None:
        with self.cond:
            if self.closed:
                return   # the caller already finished every chunk: nothing to do
            self.active += 1
        try:
            self.work()
        finally:
            with self.cond:
                self.active -= 1
                self.cond.notify_all()

    def finish(self) -> None:
        """Run chunks in the caller, then wait for workers still inside a chunk."""
        self.work()
        with self.cond:
            self.closed = True
            while self.active:
                self.cond.wait()


class Runner:
    """Runs kernels on ``threads`` cores (the caller's thread plus ``threads - 1`` workers)."""

    def __init__(self, threads: int | None = None, threshold: float | None = None, *,
                 native: bool | None = None, spin_us: float | None = None):
        self.threads = max(1, int(threads if threads is not None else available_cores()))
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._started = False
        self._lock = threading.Lock()
        if native is None:
            choice = os.environ.get("RIDGELINE_LLVM_RUNNER", "native").strip().lower()
            if choice not in ("native", "python"):
                raise BackendError(f"RIDGELINE_LLVM_RUNNER must be native or python, got {choice!r}")
            native = choice == "native"
        self._pool = (native_pool.Pool(self.threads, spin_us)
                      if native and self.threads > 1 and native_pool.available() else None)
        if threshold is None:   # the default: what a split costs through this runner
            threshold = NATIVE_THRESHOLD if self._pool is not None else DEFAULT_THRESHOLD
        self.threshold = threshold

    @property
    def native(self) -> bool:
        """True when launches go through the native pool."""
        return self._pool is not None

    def _start(self) -> None:
        with self._lock:
            if self._started:
                return
            for _ in range(self.threads - 1):
                threading.Thread(target=self._work, daemon=True, name="ridgeline-llvm").start()
            self._started = True

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            job.join_worker()

    def launch(self, fn: Callable[..., None], extent: int, ptrs: Sequence[int], cost: float = 0.0,
               grain: int = 1) -> None:
        """``fn(lo, hi, *ptrs)`` over ``[0, extent)``, split across cores when it pays."""
        verify = getattr(fn, "verify", None)
        if verify is not None:   # a bounds-checked kernel: sizes and an error record appended
            plain, (full, rec) = fn.fn, fn.expand(ptrs)
            self._launch(plain, extent, full, cost, grain)
            verify(rec, ptrs)
            return
        self._launch(fn, extent, ptrs, cost, grain)

    def serial(self, extent: int, cost: float, grain: int = 1) -> bool:
        """Whether a launch of this extent and cost runs as one call on the calling thread."""
        return self.threads == 1 or cost < self.threshold or extent < 2 * grain

    def _launch(self, fn: Callable[..., None], extent: int, ptrs: Sequence[int], cost: float, grain: int) -> None:
        n = self.threads
        if self.serial(extent, cost, grain):
            fn(0, extent, *ptrs)
            return
        pool = self._pool
        chunks = _chunk_count(extent // grain, n, pool is not None)
        if pool is not None and len(ptrs) <= native_pool.MAX_ARGS:
            if not pool.lock.acquire(blocking=False):   # another thread's launch is in flight
                fn(0, extent, *ptrs)
                return
            try:
                pool.launch(fn, extent, grain, chunks, ptrs)
            finally:
                pool.lock.release()
            return
        self._start()
        bounds = sorted({min(extent, (extent * k // chunks + grain - 1) // grain * grain) for k in range(chunks)}
                        | {extent})
        job = _Launch(fn, ptrs, bounds)
        for _ in range(n - 1):
            self._jobs.put(job)
        job.finish()

    def close(self) -> None:
        """Stop the workers; the next split launch starts them again."""
        if self._pool is not None:
            self._pool.close()
        if not self._started:
            return
        for _ in range(self.threads - 1):
            self._jobs.put(None)
        self._started = False


_RUNNERS: dict[tuple[int | None, float | None], Runner] = {}


def get_runner(threads: int | None = None, threshold: float | None = None) -> Runner:
    """The process-wide runner for this thread count (workers are shared between executables)."""
    key = (threads, threshold)
    r = _RUNNERS.get(key)
    if r is None:
        r = _RUNNERS[key] = Runner(threads, threshold)
    return r
