"""``gc_paused()``: no cyclic garbage collection while a big graph is built or rewritten."""

from __future__ import annotations

import contextlib
import gc

__all__ = ["gc_paused"]


@contextlib.contextmanager
def gc_paused():
    """Building or rewriting a big graph allocates many small reference cycles (a node and its
    outputs); Python's cyclic collector would rescan the whole graph again and again (~20% of
    importing a 60,000-node chain). Pause it and let it run normally afterwards."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
