"""Thread counts users ask for, checked against what this process may use.

A request of 1,000,000 threads would otherwise fail deep inside ("can't start new thread" in the
llvm runner, libgomp out of memory in torch); here it is one clear error before anything starts.
"""

from __future__ import annotations

import os

from ..ir.errors import BackendError

__all__ = ["available_cores", "check_threads"]


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, else the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def check_threads(threads: object) -> int | None:
    """``threads`` if it is None or a whole number from 1 to the cores available, else a ``BackendError``."""
    if threads is None:
        return None
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise BackendError(f"threads must be a positive integer, got {threads!r}")
    cores = available_cores()
    if threads > cores:
        raise BackendError(f"threads={threads} is more than the {cores} core(s) this process may use; "
                           f"pass at most {cores}")
    return threads
