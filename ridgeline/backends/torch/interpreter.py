"""Runs a graph node by node with the torch kernels, on one device.

Mirrors the numpy reference ``Interpreter`` (same binding checks, same freeing of values after
their last use, same per-node profile) over ``torch.Tensor`` values. A ``Fused`` node runs as one
Python function over its body — the unit ``torch.compile`` can turn into one kernel.
Shape values (the outputs of ``Shape``, small integer constants) stay on the host so that reading
them never waits for a device.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from ...ir import Graph, Node, Value
from ...ir.errors import BackendError
from ..numpy.interpreter import Interpreter, bind_inputs
from .convert import to_numpy, to_torch, torch_dtype
from .kernels import get_kernel

__all__ = ["TorchInterpreter", "HOST_CONSTANT_LIMIT"]

#: integer constants up to this many elements stay on the host: they are shapes, axes, indices
HOST_CONSTANT_LIMIT = 64


class TorchInterpreter:
    """Executes ``graph`` with torch kernels on ``device``; ``run`` takes and returns numpy arrays."""

    def __init__(self, graph: Graph, device: torch.device, *, compile_fused: Callable | None = None):
        self.graph = graph
        self.device = device
        self.timings: dict[Node, float] = {}
        self._compile_fused = compile_fused
        self._constants = {id(c): self._upload(c) for c in graph.constants.values()}
        self._bodies: dict[int, Callable] = {}
        self._last_use = Interpreter._compute_last_use(graph)

    def _upload(self, c: Value) -> torch.Tensor:
        if c.data is None:
            raise BackendError(f"constant %{c.name} has no data (a weightless graph can be estimated, not run)")
        host = c.type.dtype.is_integer and c.data.size <= HOST_CONSTANT_LIMIT
        return to_torch(c.data, torch.device("cpu") if host else self.device)

    # -------------------------------------------------------------------------------- running
    def run(self, inputs: Mapping[str, Any] | Sequence[Any] = (), *, profile: bool = False) -> dict[str, np.ndarray]:
        env_np = bind_inputs(self.graph, inputs)
        args = [to_torch(env_np[id(v)], self.device) for v in self.graph.inputs]
        outs = self.run_tensors(args, profile=profile)
        return {v.name: to_numpy(t) for v, t in zip(self.graph.outputs, outs)}

    def run_tensors(self, args: Sequence[torch.Tensor], *, profile: bool = False) -> list[torch.Tensor]:
        """Execute on tensors already on the device; returns the outputs in order."""
        env: dict[int, torch.Tensor] = dict(self._constants)
        env.update({id(v): a for v, a in zip(self.graph.inputs, args)})
        if profile:
            self.timings = {}
        for node in self.graph:
            ins = [env[id(v)] if v is not None else None for v in node.inputs]
            if profile:
                self._sync()
                t0 = time.perf_counter()
            outs = self.run_node(node, ins)
            if profile:
                self._sync()
                self.timings[node] = time.perf_counter() - t0
            for v, a in zip(node.outputs, outs):
                env[id(v)] = a
            for v in self._last_use.get(id(node), ()):
                env.pop(id(v), None)
        return [env[id(v)] for v in self.graph.outputs]

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def run_node(self, node: Node, args: list[torch.Tensor | None]) -> list[torch.Tensor]:
        """Run one node's kernel and give its results the declared dtypes."""
        try:
            result = self.call_kernel(node, args)
        except BackendError:
            raise
        except (ValueError, IndexError, TypeError, RuntimeError) as e:
            from ...ir.verifier import describe
            raise BackendError(f"{describe(node)} failed at run time on torch: {type(e).__name__}: "
                               f"{str(e).splitlines()[0] if str(e) else ''}") from None
        outs = list(result) if isinstance(result, (tuple, list)) else [result]
        if len(outs) != len(node.outputs):
            raise BackendError(f"torch kernel of {node.op} returned {len(outs)} outputs for {len(node.outputs)}")
        fixed = []
        for v, a in zip(node.outputs, outs):
            want = torch_dtype(v.type.dtype)
            if a.dtype != want:
                a = a.to(want)
            fixed.append(a)
        return fixed

    def call_kernel(self, node: Node, args: list[torch.Tensor | None]) -> Any:
        if node.op == "Fused":
            return self._body_fn(node)(*args)
        fn = get_kernel(node.op)
        if fn is None:
            raise BackendError(f"the torch backend has no kernel for {node.op}")
        while args and args[-1] is None:
            args = args[:-1]
        return fn(node, *args)

    def _body_fn(self, node: Node) -> Callable:
        """The fused node's body as one function of tensors (compiled once when asked)."""
        fn = self._bodies.get(id(node))
        if fn is None:
            sub = TorchInterpreter(node.body, self.device)

            def fused(*args):
                return tuple(sub.run_tensors(list(args)))
            fn = self._compile_fused(fused) if self._compile_fused is not None else fused
            self._bodies[id(node)] = fn
        return fn

