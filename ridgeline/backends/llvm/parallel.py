"""Splitting a kernel's outer range across the host's cores.

Kernels take ``[lo, hi)`` of their outermost parallel dimension, so running on two cores is two
calls on two halves. The calls go through ctypes, which releases the GIL, so persistent worker
threads run them truly in parallel. Dispatch costs tens of microseconds, so only kernels whose
estimated traffic (bytes moved plus flops) exceeds ``threshold`` are split.
"""

from __future__ import annotations

import os
import queue
import threading
from typing import Callable, Sequence

__all__ = ["Runner", "DEFAULT_THRESHOLD", "get_runner"]

#: kernels below this cost (bytes + flops) run on one core: a split costs ~20-50 µs of dispatch,
#: the time one core needs for about this much work (an assumption checked by bench_backends.py)
DEFAULT_THRESHOLD = 1 << 19


class Runner:
    """Runs kernels on ``threads`` cores (the caller's thread plus ``threads - 1`` workers)."""

    def __init__(self, threads: int | None = None, threshold: float = DEFAULT_THRESHOLD):
        if threads is None:
            try:
                threads = len(os.sched_getaffinity(0))
            except AttributeError:  # pragma: no cover
                threads = os.cpu_count() or 1
        self.threads = max(1, int(threads))
        self.threshold = threshold
        self._jobs: list[queue.SimpleQueue] = []
        self._done: queue.SimpleQueue = queue.SimpleQueue()
        self._started = False
        self._lock = threading.Lock()
        self._launch_lock = threading.Lock()  # one split launch at a time: completions share a queue

    def _start(self) -> None:
        with self._lock:
            if self._started:
                return
            for _ in range(self.threads - 1):
                q: queue.SimpleQueue = queue.SimpleQueue()
                threading.Thread(target=self._work, args=(q,), daemon=True, name="ridgeline-llvm").start()
                self._jobs.append(q)
            self._started = True

    def _work(self, q: queue.SimpleQueue) -> None:
        while True:
            job = q.get()
            if job is None:
                return
            fn, lo, hi, ptrs = job
            try:
                fn(lo, hi, *ptrs)
                self._done.put(None)
            except BaseException as e:  # pragma: no cover - ctypes calls do not raise
                self._done.put(e)

    def launch(self, fn: Callable[..., None], extent: int, ptrs: Sequence[int], cost: float = 0.0,
               grain: int = 1) -> None:
        """``fn(lo, hi, *ptrs)`` over ``[0, extent)``, split across cores when it pays."""
        n = self.threads
        if n == 1 or cost < self.threshold or extent < 2 * grain:
            fn(0, extent, *ptrs)
            return
        self._start()
        with self._launch_lock:
            self._split(fn, extent, ptrs, min(n, extent // grain), grain)

    def _split(self, fn, extent, ptrs, n, grain) -> None:
        bounds = [0] + [min(extent, (extent * k // n + grain - 1) // grain * grain) for k in range(1, n)] + [extent]
        for k in range(1, n):
            self._jobs[k - 1].put((fn, bounds[k], bounds[k + 1], ptrs))
        fn(bounds[0], bounds[1], *ptrs)
        err = None
        for _ in range(1, n):
            r = self._done.get()
            err = err or r
        if err is not None:  # pragma: no cover
            raise err

    def close(self) -> None:
        for q in self._jobs:
            q.put(None)
        self._jobs = []
        self._started = False


_RUNNERS: dict[tuple[int | None, float], Runner] = {}


def get_runner(threads: int | None = None, threshold: float = DEFAULT_THRESHOLD) -> Runner:
    """The process-wide runner for this thread count (workers are shared between executables)."""
    key = (threads, threshold)
    r = _RUNNERS.get(key)
    if r is None:
        r = _RUNNERS[key] = Runner(threads, threshold)
    return r
