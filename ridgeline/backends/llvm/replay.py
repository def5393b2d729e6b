"""Replaying a kernel's launches when it runs again on the same buffers.

A decode step is ~360 small kernels; building each one's pointer list (shape checks, an address
per buffer, the output list) cost ~7 µs of Python per kernel, more than most of them take to run.
Most of a step's kernels read and write the same arrays every run: planned buffers (fixed per
plan), the graph's constants, and views of them. A kernel whose wrapper is marked ``replay``
does nothing but launch compiled code on pointers derived from those arrays, with extents fixed
by the plan — so when it is called again on the same array objects, the launches it made last
time are exactly the ones it would make now, and the executor repeats them instead of calling
the wrapper.

Safety rests on identity: a memo holds strong references to the arrays it was recorded on (so
their ids cannot be reused by other arrays), and is only made when every one of them is *stable*
— a planned buffer, a constant, or a view of one — so holding them keeps nothing alive that
would not live anyway (caller-owned outputs, which are recycled by reference count, are never
held). Checked mode never replays: every launch is verified as before.

A run of consecutive replayable steps is kept as one ``Segment``: inside it every input is an
output of an earlier step of the run (the same array objects each time) or a constant, so when
the arrays it reads from outside are the ones it was recorded on, all of its launches repeat
without the per-step bookkeeping (~3 µs of Python per step, ~400 steps in a SmolLM2 decode step).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["LaunchRecorder", "Segment", "is_stable", "replayable", "stable_ids"]


class LaunchRecorder:
    """The runner kernels are bound to: forwards every launch to the real runner (looked up per
    call, so patching ``runner.launch`` still takes effect) and, while ``log`` is a list, records
    ``(fn, extent, ptrs, cost, grain)`` of each."""

    __slots__ = ("log", "runner")

    def __init__(self, runner: Any):
        self.runner = runner
        self.log: list | None = None

    def launch(self, fn: Callable[..., None], extent: int, ptrs: Sequence[int], cost: float = 0.0,
               grain: int = 1) -> None:
        if self.log is not None:
            self.log.append((fn, extent, tuple(ptrs), cost, grain))
        self.runner.launch(fn, extent, ptrs, cost, grain)

    def __getattr__(self, name: str) -> Any:   # threads, threshold, native… of the real runner
        return getattr(self.runner, name)


def replayable(run: Callable) -> Callable:
    """Mark a kernel wrapper whose only effect is its launches (see the module docstring)."""
    run.replay = True
    return run


def stable_ids(arrays: Sequence[np.ndarray]) -> set[int]:
    """The ids of ``arrays`` and of the arrays they are views of (their bases)."""
    out: set[int] = set()
    for a in arrays:
        if isinstance(a, np.ndarray):
            out.add(id(a))
            if a.base is not None:
                out.add(id(a.base))
    return out


def is_stable(a: Any, stable: set[int]) -> bool:
    """True for None and arrays that are (views of) arrays in ``stable``."""
    if a is None:
        return True
    if not isinstance(a, np.ndarray):
        return False
    return id(a) in stable or (a.base is not None and id(a.base) in stable)


class Segment:
    """Consecutive replayable steps' memos as one replay: ``reads`` (value id, the array it held,
    for values from outside the run other than constants), ``calls`` in order ((None, a split
    launch's arguments), (a kernel, its arguments) or (a precheck, (its arguments,))), then
    ``sets`` of the values alive after it and ``pops`` of outside values it frees; ``end`` is
    the step after it. ``serial(extent, cost, grain)``: the runner runs such a launch as one call."""

    __slots__ = ("calls", "end", "memos", "pops", "reads", "sets")

    def __init__(self, steps: Sequence[tuple], memos: Sequence[tuple], constants: dict, end: int,
                 serial: Callable[[int, float, int], bool]):
        made: dict[int, Any] = {}
        reads: dict[int, Any] = {}
        self.calls: list[tuple] = []
        self.pops: list[int] = []
        for (_node, _kernel, ins, outs, free, *_), memo in zip(steps, memos):
            for i, a in zip(ins, memo[1]):
                if i is not None and i not in made and i not in constants:
                    reads.setdefault(i, a)
            if memo[4] is not None:
                self.calls.append((memo[4], (list(memo[1]),)))
            # a launch the runner would run as one call: that call, without the runner's frames
            self.calls += [(fn, (0, extent, *ptrs)) if serial(extent, cost, grain)
                           else (None, (fn, extent, ptrs, cost, grain)) for fn, extent, ptrs, cost, grain in memo[3]]
            made.update(zip(outs, memo[2]))
            for i in free:
                if made.pop(i, reads) is reads:   # not made here: an outside value dead after this step
                    self.pops.append(i)
        self.reads = tuple(reads.items())
        self.sets, self.end = made, end
        self.memos = tuple(memos)   # every array its launches point to stays alive with it

    @staticmethod
    def drop(segments: dict[int, Segment], step: int) -> None:
        """Forget the segments holding ``step``, whose memo is being recorded again."""
        for start in [s for s, seg in segments.items() if s <= step < seg.end]:
            del segments[start]
