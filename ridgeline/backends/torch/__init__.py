"""The torch backend: the IR mapped to torch ops on ``cpu`` or ``cuda``, optionally ``torch.compile``d.

Every op with a spec runs its shared kernel (``backends.kernel_math``, the numpy reference's) over
torch tensors, or torch's own function for it (``kernels/``); a ``Fused`` node runs its body as
one function, which ``compile=True`` hands to ``torch.compile`` (inductor then emits one kernel
per fused body).

The CUDA path is written against torch's public API (tensors placed with ``device=``, host syncs
only to read shape values and to time nodes) but has not been run on a GPU by our tests, which run
on CPU-only machines: treat it as untested.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ...ir import Graph, Node
from ...ir.errors import BackendError
from ..base import ExecutingBackend, InterpretedExecutable
from ..threads import check_threads

try:
    import torch
except ImportError:  # pragma: no cover - the registry checks first; this guards direct imports
    raise BackendError("backend 'torch' needs torch, which is not installed: pip install 'ridgeline[torch]'") from None

from .convert import supported_dtype
from .interpreter import TorchInterpreter
from .kernels import get_kernel

__all__ = ["TorchBackend", "TorchExecutable", "TorchInterpreter"]

def resolve_device(device: str | torch.device) -> torch.device:
    """``cpu``, ``cuda`` or ``cuda:N``, checked against what this machine has."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise BackendError(f"unknown torch device {device!r}; use cpu or cuda[:N]") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            build = "a CPU-only build of torch" if torch.version.cuda is None else "no visible CUDA device"
            raise BackendError(f"device {device!r} asked for, but CUDA is not available here ({build}); "
                               f"use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise BackendError(f"device {device!r} does not exist: {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type != "cpu":
        raise BackendError(f"the torch backend runs on cpu or cuda, not {dev.type!r}")
    return dev


#: runs shorter than this are timed twice at each thread count when choosing (one timing of a
#: millisecond run on a loaded machine is mostly noise)
_SHORT_RUN = 0.02


def _size_bucket(inputs) -> tuple:
    """Inputs of the same ranks and dtypes within a factor of two in size share a thread choice
    (a decode step whose cache grows by one token is not measured again)."""
    arrays = inputs.values() if isinstance(inputs, Mapping) else inputs
    arrays = [np.asarray(a) for a in arrays]
    total = sum(a.size for a in arrays)
    return tuple((a.ndim, a.dtype.str) for a in arrays) + (int(total).bit_length(),)


class TorchExecutable(InterpretedExecutable):
    """A graph bound to torch on one device: ``run(inputs, profile=False)`` -> outputs by name
    (``timings`` are device-synchronized).

    On CPU without ``threads=``, the first run of each input size class first measures: a
    warm-up at torch's default threads, then one intra-op thread against the default,
    alternating (twice each when runs are shorter than 20 ms); then it runs at the faster
    (``thread_choice``), as every later run of that class does — so runs never mix thread
    counts (torch's reductions split by thread count: the bits would differ). A parallel
    region's barrier costs milliseconds when other processes hold the cores, which made graphs
    4-11x slower on all threads on a shared machine, while a quiet one gains from them: a
    measurement decides, not a size cutoff.
    """

    def __init__(self, graph: Graph, *, device: str | torch.device = "cpu", compile: bool = False,
                 threads: int | None = None):
        check_threads(threads)
        self.device = resolve_device(device)
        narrow = [f"%{v.name}: {v.type}" for v in graph.inputs if not supported_dtype(v.type.dtype)]
        if narrow:  # said here, at compile time, not as a TypeError inside the first run
            raise BackendError(f"the torch backend cannot take input {', '.join(narrow)} (torch has no such "
                               f"dtype); use numpy")
        bad = sorted({n.op for n in graph.walk() if not _supports(n)})
        if bad:
            raise BackendError(f"the torch backend cannot run {', '.join(bad)} "
                               f"(an op without a torch kernel or a dtype torch lacks, such as i4); use numpy")
        self.graph = graph
        self.compiled = bool(compile)
        self.threads = threads
        self.interpreter = TorchInterpreter(graph, self.device, compile_fused=_torch_compile if compile else None)
        #: size class of the inputs -> (the intra-op threads measured fastest, best seconds per count)
        self.thread_choice: dict[tuple, tuple[int, dict[int, float]]] = {}

    def _choose(self, bucket: tuple, inputs) -> int:
        """Time the graph at one thread and at torch's default on ``inputs``; keep the faster."""
        many = torch.get_num_threads()
        if many <= 1:
            self.thread_choice[bucket] = (many, {})
            return many
        self.interpreter.run(inputs)   # warm-up (first-touch allocation, caches)
        best = {1: float("inf"), many: float("inf")}
        for r in range(2):
            for n in (1, many):
                torch.set_num_threads(n)
                t0 = time.perf_counter()
                self.interpreter.run(inputs)
                best[n] = min(best[n], time.perf_counter() - t0)
            if max(best.values()) >= _SHORT_RUN:
                break
        torch.set_num_threads(many)
        self.thread_choice[bucket] = (min(best, key=best.get), best)
        return self.thread_choice[bucket][0]

    def run(self, inputs: Mapping[str, Any] | Sequence[Any] = (), *, profile: bool = False) -> dict[str, np.ndarray]:
        """Execute once; outputs by name (``profile=True`` fills ``timings``)."""
        before = torch.get_num_threads()
        threads = self.threads
        try:
            if threads is None and self.device.type == "cpu":
                bucket = _size_bucket(inputs)
                choice = self.thread_choice.get(bucket)
                threads = choice[0] if choice is not None else self._choose(bucket, inputs)
            if threads is not None and threads != torch.get_num_threads():
                torch.set_num_threads(threads)   # torch's setting is process-wide: restored below
            return self.interpreter.run(inputs, profile=profile)
        except BackendError:
            raise
        except Exception as e:  # torch.compile's backend (inductor needs a C++ compiler) failing
            if self.compiled and type(e).__module__.startswith("torch"):
                raise BackendError(f"torch.compile failed ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                                   f"run without compile") from None
            raise
        finally:
            if torch.get_num_threads() != before:
                torch.set_num_threads(before)


def _torch_compile(fn):
    return torch.compile(fn, dynamic=False)


def _supports(node: Node) -> bool:
    if not all(supported_dtype(v.type.dtype) for v in node.outputs):
        return False
    if node.op == "Fused":
        return node.body is not None and all(_supports(n) for n in node.body)
    return get_kernel(node.op) is not None


class TorchBackend(ExecutingBackend):
    """Executes graphs with torch on cpu or cuda."""

    name = "torch"
    description = "maps the IR to torch ops on cpu or cuda, optionally torch.compile"
    #: folding the shape arithmetic of exported graphs removes most of their nodes (each costs a
    #: Python dispatch here); fused bodies become single functions that ``compile=True`` compiles
    default_pipeline = "default"
    #: ``threads`` (``torch.set_num_threads``) is set for each run and restored; by default the faster
    #: of one and torch's default, measured per input size class (``TorchExecutable.thread_choice``)
    accepts = {"device": "cpu, cuda or cuda:N", "compile": "hand fused bodies to torch.compile",
               "threads": "torch's intra-op CPU threads"}
    executable = TorchExecutable

    def supports(self, node: Node) -> bool:
        return _supports(node)
