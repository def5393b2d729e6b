"""The llvm backend: kernels generated as LLVM IR and JIT-compiled for the host CPU.

Fused elementwise bodies, row reductions (softmax, layer and RMS norm), attention and GEMM get
kernels specialized on their shapes, compiled at -O3 with the host's CPU features once per graph
and set of input shapes — except the KV-cache length, which attention reads at run time, so one
plan serves a whole generation — and run on numpy buffers without copies, on all cores when a
kernel is big enough. Other ops fall back to the numpy reference kernel per node, unless ``strict=True``
makes that an error. See ``docs/backends.md``.
"""

from __future__ import annotations

import threading
from typing import Any, Mapping, Sequence

import numpy as np

from ...ir import Graph, Node
from ...ir.errors import BackendError
from ..base import ExecutingBackend, InterpretedExecutable
from ..threads import check_threads
from .jit import HostInfo, host
from .executor import VIEW_OPS, LLVMInterpreter, Plan
from .parallel import get_runner

__all__ = ["LLVMBackend", "LLVMExecutable", "LLVMInterpreter", "host", "HostInfo"]

_OPTIONS = {"strict": "fail instead of running ops without a kernel on numpy",
            "threads": "cores to use (default: all this process may run on)",
            "gemm": "auto, jit or blas: who runs matrix products",
            "parallel_threshold": "smallest kernel cost (bytes + flops) split across cores (default: 256 KiB, 512 KiB with the Python runner)",
            "polymorphic": "one plan for every KV-cache length (default True; False: a plan per shape)"}


class LLVMExecutable(InterpretedExecutable):
    """A graph compiled for the host: ``run(inputs, profile=False)`` -> outputs by name.

    Plans are cached per set of input shapes; a graph whose input shapes are all static is
    compiled here, at compile time, so that ``strict`` errors surface before the first run.
    """

    def __init__(self, graph: Graph, *, strict: bool = False, threads: int | None = None,
                 gemm: str = "auto", parallel_threshold: float | None = None, polymorphic: bool = True):
        if gemm not in ("auto", "jit", "blas"):
            raise BackendError(f"gemm must be auto, jit or blas, got {gemm!r}")
        check_threads(threads)
        self.graph = graph
        self.strict = strict
        self.runner = get_runner(threads, parallel_threshold)
        self.interpreter = LLVMInterpreter(graph, runner=self.runner, options={"gemm": gemm, "polymorphic": bool(polymorphic)}, strict=strict)
        self._lock = threading.Lock()   # runs share the planned buffers: one at a time
        if all(v.type.is_static for v in graph.inputs):
            self.interpreter.prepare({v.name: tuple(v.type.shape) for v in graph.inputs})

    def run(self, inputs: Mapping[str, Any] | Sequence[Any] = (), *, profile: bool = False) -> dict[str, np.ndarray]:
        """Execute once; outputs by name (``profile=True`` fills ``timings``)."""
        with self._lock:
            return self.interpreter.run(inputs, profile=profile)

    @property
    def runtime_dims(self) -> frozenset[str]:
        """The input dims one plan serves at any value (see ``executor.runtime_dims``)."""
        return self.interpreter.runtime

    @property
    def compile_count(self) -> dict[str, int]:
        """Plans built and LLVM functions compiled by this executable so far (a decode loop's
        counts stop growing after its first step)."""
        return {"plans": self.interpreter.plans_built, "functions": self.interpreter.functions_compiled}

    @property
    def plan(self) -> Plan | None:
        """The plan of the last run (or of the static shapes compiled up front)."""
        return self.interpreter.plan


class LLVMBackend(ExecutingBackend):
    """JIT-compiles kernels for the host CPU with llvmlite."""

    name = "llvm"
    description = "JIT-compiles fused kernels for the host CPU with llvmlite"
    #: the fusions give it whole kernels: attention, norms, GELU, matmul epilogues, elementwise chains
    default_pipeline = "default"
    accepts = _OPTIONS
    executable = LLVMExecutable

    def supports(self, node: Node) -> bool:
        """True when ``node`` gets a kernel (or is free) at any static shape it may take."""
        from .lowerings import lower
        from .lowering import Unsupported
        if node.op in VIEW_OPS:
            return True
        if not all(v.type.is_static for v in node.outputs) or any(
                v is not None and not v.type.is_static for v in node.inputs):
            return False
        try:
            lower(node, [tuple(v.type.shape) if v is not None else None for v in node.inputs], {}, {"gemm": "auto"})
            return True
        except Unsupported:
            return False
