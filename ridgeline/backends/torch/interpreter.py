"""The generic interpreter (``backends/interpreter.py``) over torch tensors on one device.

Only the array namespace differs from the numpy reference: inputs and constants are moved to the
device, results take their declared dtypes with ``.to``, torch's ``RuntimeError`` is bad data, and
nodes are timed after a device sync. A ``Fused`` node runs as one Python function over its body —
the unit ``torch.compile`` can turn into one kernel. Shape values (small integer constants) stay
on the host so that reading them never waits for a device.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager as ContextManager

import numpy as np
import torch

from ...ir import Graph, Node, Value
from ...ir.dtypes import DType
from ..interpreter import Interpreter
from .convert import to_numpy, to_torch, torch_dtype
from .kernels import TABLE

__all__ = ["HOST_CONSTANT_LIMIT", "TorchInterpreter", "TorchNamespace"]

#: integer constants up to this many elements stay on the host: they are shapes, axes, indices
HOST_CONSTANT_LIMIT = 64


class TorchNamespace:
    """torch tensors on ``device``; constants are uploaded once and kept."""

    name = "torch"
    errors = (ValueError, IndexError, TypeError, RuntimeError)

    def __init__(self, device: torch.device):
        self.device = device
        self._uploaded: dict[int, tuple[Value, torch.Tensor]] = {}

    def constant(self, c: Value) -> torch.Tensor:
        hit = self._uploaded.get(id(c))
        if hit is None or hit[0] is not c:
            from ..interpreter import NUMPY
            data = NUMPY.constant(c)   # the one "no data" error
            host = c.type.dtype.is_integer and data.size <= HOST_CONSTANT_LIMIT
            hit = self._uploaded[id(c)] = (c, to_torch(data, torch.device("cpu") if host else self.device))
        return hit[1]

    def from_numpy(self, a: np.ndarray) -> torch.Tensor:
        return to_torch(a, self.device)

    def to_numpy(self, a: torch.Tensor) -> np.ndarray:
        return to_numpy(a)

    def cast(self, a: torch.Tensor, dtype: DType) -> torch.Tensor:
        want = torch_dtype(dtype)
        return a if a.dtype == want else a.to(want)

    def guard(self) -> ContextManager:
        return contextlib.nullcontext()

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


class TorchInterpreter(Interpreter):
    """Executes ``graph`` with torch kernels on ``device``; ``run`` takes and returns numpy arrays,
    ``run_values`` tensors already on the device. ``compile_fused`` wraps each fused body's
    function (``torch.compile``)."""

    def __init__(self, graph: Graph, device: torch.device, *, compile_fused: Callable | None = None,
                 xp: TorchNamespace | None = None):
        super().__init__(graph, TABLE, xp if xp is not None else TorchNamespace(device))
        self.device = device
        self._compile_fused = compile_fused
        for c in graph.constants.values():   # uploaded now: a weightless graph fails at compile time
            self.xp.constant(c)

    def body_function(self, node: Node) -> Callable[..., tuple]:
        fn = self._bodies.get(node)
        if fn is None:
            fn = super().body_function(node)
            if self._compile_fused is not None:
                fn = self._bodies[node] = self._compile_fused(fn)
        return fn

    def nested(self, body: Graph) -> TorchInterpreter:
        return TorchInterpreter(body, self.device, xp=self.xp)

