"""Where kernel outputs live: buffers planned once per plan and reused on every run.

Allocating a fresh output per kernel per run costs a page fault per 4 KiB the first time each page
is written — as much as the kernel itself for a streaming op. Like onnxruntime's memory patterns,
the plan gives every kernel output that stays inside the graph a slice of a buffer that is
reused, run after run, and shared between values whose lifetimes do not overlap (best fit by
size). Values that may alias others (the outputs of views and of numpy fallbacks) extend the
lifetime of what they may alias. Buffers that reach the graph's outputs belong to the caller;
they are recycled only once the caller has dropped them (nothing else refers to the array).
"""

from __future__ import annotations

import math
import sys
from typing import Iterable, Sequence

import numpy as np

from ...ir import Graph, Node, TensorType
from ...ir.errors import BackendError

__all__ = ["MemoryPlan", "plan_memory"]


class MemoryPlan:
    """node -> buffers for its outputs (None: allocate per run), plus the recycling of outputs."""

    def __init__(self):
        self.buffers: dict[Node, list[np.ndarray | None]] = {}
        self.escaping: set[tuple[int, int]] = set()    # (id(node), output index) owned by the caller
        self._recycled: dict[tuple[int, int], np.ndarray] = {}
        self.arena: list[np.ndarray] = []               # the buffers planned outputs are views of
        self.arena_bytes = 0

    def outs(self, node: Node) -> list[np.ndarray | None]:
        bufs = self.buffers.get(node)
        if bufs is None:
            return [None] * len(node.outputs)
        if not self.escaping:
            return bufs
        out = list(bufs)
        for j in range(len(node.outputs)):
            key = (id(node), j)
            if key in self.escaping:
                prev = self._recycled.get(key)
                # 3 references: the dict, `prev`, getrefcount's argument — nobody else holds it
                if prev is not None and sys.getrefcount(prev) == 3:
                    out[j] = prev
                else:
                    out[j] = None
        return out

    def keep(self, node: Node, results: Sequence[np.ndarray]) -> None:
        """Remember the caller-owned outputs of this run for recycling in a later one."""
        for j in range(len(results)):
            key = (id(node), j)
            if key in self.escaping and results[j].base is None:   # a view (a present) is not a buffer to recycle
                self._recycled[key] = results[j]


def plan_memory(graph: Graph, kernel_nodes: Iterable[Node], folded: Iterable[Node],
                types: dict[int, TensorType]) -> MemoryPlan:
    """Assign buffers to the outputs of ``kernel_nodes`` (their static types by value id in ``types``);
    a kernel output missing from ``types`` (its size varies with a runtime dim) is allocated by its
    kernel at each run — fresh memory, aliasing nothing (kernels never return their inputs)."""
    mp = MemoryPlan()
    kernels = set(map(id, kernel_nodes))
    folded_ids = set(map(id, folded))
    nodes = graph.nodes
    # may_alias[value] = the kernel-output roots this value may share memory with
    may_alias: dict[int, set[int]] = {}
    defined_at: dict[int, int] = {}
    for idx, n in enumerate(nodes):
        if id(n) in kernels:
            for v in n.outputs:
                if id(v) not in types:
                    may_alias[id(v)] = set()
                    continue
                may_alias[id(v)] = {id(v)}
                defined_at[id(v)] = idx
        elif id(n) in folded_ids:
            continue
        else:  # views, numpy fallbacks, fused bodies: outputs may be views of any input
            roots: set[int] = set()
            for v in n.inputs:
                if v is not None:
                    roots |= may_alias.get(id(v), set())
            for v in n.outputs:
                may_alias[id(v)] = set(roots)
    last_use: dict[int, int] = {r: defined_at[r] for r in defined_at}
    for idx, n in enumerate(nodes):
        for v in n.inputs:
            if v is not None:
                for r in may_alias.get(id(v), ()):
                    last_use[r] = max(last_use[r], idx)
    escaping: set[int] = set()
    for v in graph.outputs:
        escaping |= may_alias.get(id(v), set())
    # best-fit assignment in program order
    free: list[np.ndarray] = []
    releases: dict[int, list[int]] = {}
    for r, last in last_use.items():
        releases.setdefault(last, []).append(r)
    slot_of: dict[int, np.ndarray] = {}
    buffers: list[np.ndarray] = []
    for idx, n in enumerate(nodes):
        if id(n) in kernels:
            bufs: list[np.ndarray | None] = []
            for j, v in enumerate(n.outputs):
                r = id(v)
                if r not in types:
                    bufs.append(None)
                    continue
                if r in escaping:
                    mp.escaping.add((id(n), j))
                    bufs.append(None)
                    continue
                t = types[r]
                size = math.prod(t.shape) * t.dtype.np_dtype.itemsize
                need = max(size, 1)
                fit = [k for k, b in enumerate(free) if b.nbytes >= need]
                if fit:
                    buf = free.pop(min(fit, key=lambda k: free[k].nbytes))
                else:
                    try:
                        buf = np.empty(need, np.uint8)
                    except MemoryError:  # declared shapes no input could fill (a hostile Reshape)
                        raise BackendError(f"{n.op} node %{v.name}: its output of {v.type} needs {need:,} bytes, "
                                           "more than this process can allocate") from None
                    buffers.append(buf)
                slot_of[r] = buf
                bufs.append(buf[:size].view(t.dtype.np_dtype).reshape(t.shape))
            mp.buffers[n] = bufs
        for r in releases.get(idx, ()):
            if r in slot_of:
                free.append(slot_of[r])
    mp.arena = buffers
    mp.arena_bytes = sum(b.nbytes for b in buffers)
    return mp
