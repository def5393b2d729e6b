"""The reference interpreter: runs a graph node by node with the numpy kernels.

Like torch.fx's ``Interpreter`` it is meant to be subclassed. The call hierarchy::

    run(inputs)                  bind inputs (checking dtypes and shapes), then for each node:
      run_node(node, args)         look up and call the node's kernel, check the results
        call_kernel(node, args)    the kernel itself; ``Fused`` runs its body with a nested
                                   interpreter; a node with a tile schedule (``meta["tile"]``)
          call_tiled(node, args)   runs block by block (``tiled.py``) unless ``tiles=False``

Override ``call_kernel`` to swap kernels (the llvm backend does, falling back to this one),
``run_node`` to observe every node (profilers, debuggers). Values are freed after their last use.
"""

from __future__ import annotations

import itertools
import time
from typing import Any, Mapping, Sequence

import numpy as np

from ...ir import Graph, Node, Value
from ...ir.errors import BackendError
from .kernels import get_kernel

__all__ = ["Interpreter", "bind_inputs"]


def bind_inputs(graph: Graph, inputs: Mapping[str, Any] | Sequence[Any]) -> dict[int, np.ndarray]:
    """Match user arrays to graph inputs, checking dtype, rank and a consistent binding of dims."""
    if not isinstance(inputs, Mapping):
        inputs = list(inputs)
        if len(inputs) != len(graph.inputs):
            raise BackendError(f"graph @{graph.name} takes {len(graph.inputs)} inputs, got {len(inputs)}")
        inputs = {v.name: a for v, a in zip(graph.inputs, inputs)}
    names = {v.name for v in graph.inputs}
    extra = sorted(set(inputs) - names)
    if extra:
        raise BackendError(f"unknown input(s) {', '.join(extra)}; graph @{graph.name} takes "
                           f"{', '.join(sorted(names)) or 'no inputs'}")
    env: dict[int, np.ndarray] = {}
    dims: dict[str, int] = {}
    for v in graph.inputs:
        if v.name not in inputs:
            raise BackendError(f"missing input %{v.name}: {v.type}")
        arr = np.asarray(inputs[v.name])
        want = v.type.dtype.np_dtype
        if arr.dtype != want:
            raise BackendError(f"input %{v.name} is {arr.dtype}, the graph wants {v.type}")
        if arr.ndim != v.type.rank:
            raise BackendError(f"input %{v.name} has shape {list(arr.shape)}, the graph wants {v.type}")
        for d, n in zip(v.type.shape, arr.shape):
            if isinstance(d, int):
                if d != n:
                    raise BackendError(f"input %{v.name} has shape {list(arr.shape)}, the graph wants {v.type}")
            elif dims.setdefault(d, n) != n:
                raise BackendError(f"dim {d} is {dims[d]} in one input and {n} in %{v.name}")
        env[id(v)] = arr
    return env


class Interpreter:
    """Runs ``graph`` with numpy kernels; see the module docstring for the hooks.

    ``tiles=False`` ignores tile schedules (the untiled reference of a tiled graph)."""

    def __init__(self, graph: Graph, *, check: bool = True, tiles: bool = True):
        self.graph = graph
        self.check = check
        self.tiles = tiles
        self.timings: dict[Node, float] = {}
        self._last_use = self._compute_last_use(graph)

    @staticmethod
    def _compute_last_use(graph: Graph) -> dict[int, list[Value]]:
        """The values each node reads for the last time (graph outputs, read by the output
        sentinel after every node, are never freed)."""
        order = {id(n): i for i, n in enumerate(graph)}
        end = len(order)
        free: dict[int, list[Value]] = {}
        for v in itertools.chain(graph.inputs, (o for n in graph for o in n.outputs)):
            if v.uses:
                last = max(v.uses, key=lambda use: order.get(id(use[0]), end))[0]
                if id(last) in order:
                    free.setdefault(id(last), []).append(v)
        return free

    def run(self, inputs: Mapping[str, Any] | Sequence[Any] = (), *, profile: bool = False) -> dict[str, np.ndarray]:
        """Execute the graph once; returns outputs by name."""
        env = bind_inputs(self.graph, inputs)
        for c in self.graph.constants.values():
            if c.data is None:
                raise BackendError(f"constant %{c.name} has no data (a weightless graph can be estimated, "
                                   f"not run)")
            env[id(c)] = c.data
        self.timings = {}
        for node in self.graph:
            args = [env[id(v)] if v is not None else None for v in node.inputs]
            t0 = time.perf_counter() if profile else 0.0
            outs = self.run_node(node, args)
            if profile:
                self.timings[node] = time.perf_counter() - t0
            for v, a in zip(node.outputs, outs):
                env[id(v)] = a
            for v in self._last_use.get(id(node), ()):
                env.pop(id(v), None)
        return {v.name: env[id(v)] for v in self.graph.outputs}

    def run_node(self, node: Node, args: list[np.ndarray | None]) -> list[np.ndarray]:
        """Run one node and check that its results have the declared dtypes and ranks."""
        try:
            with np.errstate(all="ignore"):  # IEEE semantics: 0·inf is nan, a value, not a warning on stderr
                result = self.call_kernel(node, args)
        except BackendError:
            raise
        except (ValueError, IndexError, TypeError, FloatingPointError, OverflowError, MemoryError) as e:
            # bad data reaching a kernel (an index out of range, a shape that only fails at run time)
            from ...ir.verifier import describe
            raise BackendError(f"{describe(node)} failed at run time: {type(e).__name__}: {e}") from None
        outs = list(result) if isinstance(result, (tuple, list)) else [result]
        if len(outs) != len(node.outputs):
            raise BackendError(f"kernel of {node.op} returned {len(outs)} outputs for {len(node.outputs)}")
        fixed = []
        for v, a in zip(node.outputs, outs):
            a = np.asarray(a)
            want = v.type.dtype.np_dtype
            if a.dtype != want:
                a = a.astype(want)
            if self.check:
                _check_shape(node, v, a)
            fixed.append(a)
        return fixed

    def call_kernel(self, node: Node, args: list[np.ndarray | None]) -> Any:
        """The kernel for ``node``; trailing missing optional inputs are dropped."""
        if self.tiles and "tile" in node.meta:
            out = self.call_tiled(node, args)
            if out is not None:
                return out
        if node.op == "Fused":
            sub = type(self)(node.body, check=self.check)
            sub.tiles = self.tiles
            res = sub.run({p.name: a for p, a in zip(node.body.inputs, args)})
            return tuple(res[v.name] for v in node.body.outputs)
        fn = get_kernel(node.op)
        if fn is None:
            raise BackendError(f"the numpy backend has no kernel for {node.op}")
        while args and args[-1] is None:
            args = args[:-1]
        return fn(node, *args)

    def call_tiled(self, node: Node, args: list[np.ndarray | None]) -> Any:
        """``node`` run block by block by its tile schedule; None falls back to ``call_kernel``."""
        from .tiled import run_tiled
        return run_tiled(node, args)


def _check_shape(node: Node, v: Value, a: np.ndarray) -> None:
    shape = v.type.shape
    if a.ndim != len(shape) or any(isinstance(d, int) and d != n for d, n in zip(shape, a.shape)):
        raise BackendError(f"{node.op} kernel produced {a.dtype}{list(a.shape)} for %{v.name}: {v.type}")
