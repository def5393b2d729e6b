"""The default engine: a pool of worker processes on this machine (no extra install).

Workers live for the whole sweep, so each keeps its graph cache across chunks. ``workers=1``
runs in this process (no pickling, easiest to profile).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any

__all__ = ["LocalEngine"]


class LocalEngine:
    name = "local"

    def __init__(self, workers: int | None = None):
        self.workers = workers or max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                                      else (os.cpu_count() or 1))
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> LocalEngine:  # noqa: PYI034 - Self needs Python 3.11
        if self.workers > 1:
            import multiprocessing as mp
            # spawn: workers must not inherit the parent's threads (progress bar, Ray/Dask clients)
            self._pool = ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn"))
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=exc[0] is None, cancel_futures=True)
            self._pool = None

    def map(self, fn: Callable, payload: Any, chunks: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        if self._pool is None:
            for i, c in enumerate(chunks):
                yield i, fn(payload, c)
            return
        # keep a bounded window in flight: a killed run leaves little unfinished work behind
        todo = iter(enumerate(chunks))
        running: dict[Any, int] = {}
        for i, c in todo:
            running[self._pool.submit(fn, payload, c)] = i
            if len(running) >= 2 * self.workers:
                break
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for f in done:
                i = running.pop(f)
                yield i, f.result()
                nxt = next(todo, None)
                if nxt is not None:
                    running[self._pool.submit(fn, payload, nxt[1])] = nxt[0]
