"""One interpreter for every array library: a kernel table plus an array namespace.

``Interpreter(graph, kernels, xp)`` runs ``graph`` node by node, like torch.fx's ``Interpreter``
and meant to be subclassed the same way. The call hierarchy::

    run(inputs)                  bind numpy inputs (checking dtypes and shapes), move them to xp
      run_values(args)           for each node in order (values freed after their last use):
        run_node(node, args)       evaluate_node: the kernel, errors as one line, declared dtypes
          call_kernel(node, args)  the kernel from ``kernels``; a ``Fused`` node runs its body
                                   (``body_function``: a nested interpreter, or what a subclass
                                   makes of it, such as torch.compile)

What differs between numpy and torch is only the ``xp`` (an :class:`ArrayNamespace`: how
constants and inputs get there, how a result takes its declared dtype, which exceptions mean bad
data, how to wait for a device) and the kernel table. :func:`evaluate_node` is the one way to
evaluate a single node outside a graph (constant folding, the llvm plan's folding, tiled bodies).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager as ContextManager
from typing import Any, Protocol

import numpy as np

from ..ir import Graph, Node, Value
from ..ir.dtypes import DType
from ..ir.errors import BackendError
from .kernel_table import KernelTable

__all__ = ["NUMPY", "ArrayNamespace", "Interpreter", "NumpyNamespace", "bind_inputs", "call_kernel",
           "evaluate_node", "last_uses"]


class ArrayNamespace(Protocol):
    """What the interpreter needs to know about an array library (numpy's is :data:`NUMPY`)."""

    name: str
    #: exceptions a kernel raises on bad data (an index out of range, a shape only wrong at run time)
    errors: tuple[type[BaseException], ...]

    def constant(self, c: Value) -> Any: ...          # a graph constant's data, in this library
    def from_numpy(self, a: np.ndarray) -> Any: ...   # a bound input
    def to_numpy(self, a: Any) -> np.ndarray: ...     # an output handed back to the caller
    def cast(self, a: Any, dtype: DType) -> Any: ...  # a kernel result given its declared dtype
    def guard(self) -> ContextManager: ...            # around every kernel call
    def sync(self) -> None: ...                       # before a clock is read (device queues)


class NumpyNamespace:
    """numpy arrays; kernels run under ``errstate(all="ignore")`` (IEEE semantics: 0·inf is nan,
    a value, not a warning on stderr)."""

    name = "numpy"
    errors = (ValueError, IndexError, TypeError, FloatingPointError, OverflowError, MemoryError)

    def constant(self, c: Value) -> np.ndarray:
        if c.data is None:
            raise BackendError(f"constant %{c.name} has no data (a weightless graph can be estimated, not run)")
        return c.data

    from_numpy = to_numpy = staticmethod(lambda a: a)   # the interpreter's inputs and outputs are numpy

    def cast(self, a: Any, dtype: DType) -> np.ndarray:
        a = np.asarray(a)
        return a if a.dtype == dtype.np_dtype else a.astype(dtype.np_dtype)

    def guard(self) -> ContextManager:
        return np.errstate(all="ignore")

    sync = staticmethod(lambda: None)   # no device queue to wait for


NUMPY = NumpyNamespace()


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


def last_uses(graph: Graph) -> dict[int, list[Value]]:
    """Per node (by id): the non-constant values no later node reads and the graph does not
    return, so the interpreter can free them once the node has run."""
    keep = {id(v) for v in graph.outputs}
    last: dict[int, Node] = {}
    for n in graph:
        for v in n.inputs:
            if v is not None and not v.const:
                last[id(v)] = n
    free: dict[int, list[Value]] = {}
    for n in graph:
        for v in n.inputs:
            if v is not None and not v.const and id(v) not in keep and last.get(id(v)) is n:
                lst = free.setdefault(id(n), [])
                if v not in lst:
                    lst.append(v)
    return free


KernelCall = Callable[[Node, list], Any]


def call_kernel(node: Node, args: list, kernels: KernelTable, xp: ArrayNamespace = NUMPY) -> Any:
    """``node``'s kernel from ``kernels`` on ``args`` (trailing absent optional inputs dropped);
    a ``Fused`` node runs its body with a nested interpreter."""
    if node.op == "Fused":
        return tuple(Interpreter(node.body, kernels, xp).run_values(args))
    fn = kernels.get(node.op)
    if fn is None:
        raise BackendError(f"the {kernels.label} backend has no kernel for {node.op}")
    while args and args[-1] is None:
        args = args[:-1]
    return fn(node, *args)


def evaluate_node(node: Node, args: list, kernels: KernelTable, xp: ArrayNamespace = NUMPY, *,
                  check: bool = True, call: KernelCall | None = None) -> list:
    """Run one node on ``args`` and give its results the declared dtypes (``check``: and ranks and
    static sizes). A kernel failing on bad data is a one-line ``BackendError`` naming the node.
    ``call`` replaces the plain kernel call (an interpreter's ``call_kernel`` hook)."""
    try:
        with xp.guard():
            result = call(node, args) if call is not None else call_kernel(node, args, kernels, xp)
    except BackendError:
        raise
    except xp.errors as e:
        from ..ir.verifier import describe
        msg = str(e).splitlines()[0] if str(e) else ""
        where = "" if xp is NUMPY else f" on {xp.name}"
        raise BackendError(f"{describe(node)} failed at run time{where}: {type(e).__name__}: {msg}") from None
    outs = list(result) if isinstance(result, (tuple, list)) else [result]
    if len(outs) != len(node.outputs):
        raise BackendError(f"{kernels.label} kernel of {node.op} returned {len(outs)} outputs for "
                           f"{len(node.outputs)}")
    fixed = []
    for v, a in zip(node.outputs, outs):
        a = xp.cast(a, v.type.dtype)
        if check:
            shape, got = v.type.shape, tuple(a.shape)
            if len(got) != len(shape) or any(isinstance(d, int) and d != n for d, n in zip(shape, got)):
                raise BackendError(f"{node.op} kernel produced {a.dtype}{list(got)} for "
                                   f"%{v.name}: {v.type}")
        fixed.append(a)
    return fixed


class Interpreter:
    """Runs ``graph`` with the kernels of ``kernels`` over the arrays of ``xp``; see the module
    docstring for the hooks. ``check=False`` skips the shape check of results."""

    def __init__(self, graph: Graph, kernels: KernelTable, xp: ArrayNamespace = NUMPY, *, check: bool = True):
        self.graph = graph
        self.kernels = kernels
        self.xp = xp
        self.check = check
        self.timings: dict[Node, float] = {}
        self._last_use = last_uses(graph)
        self._bodies: dict[Node, Callable[..., tuple]] = {}

    def run(self, inputs: Mapping[str, Any] | Sequence[Any] = (), *, profile: bool = False) -> dict[str, np.ndarray]:
        """Execute the graph once on numpy inputs; returns numpy outputs by name."""
        env = bind_inputs(self.graph, inputs)
        args = [self.xp.from_numpy(env[id(v)]) for v in self.graph.inputs]
        outs = self.run_values(args, profile=profile)
        return {v.name: self.xp.to_numpy(a) for v, a in zip(self.graph.outputs, outs)}

    def run_values(self, args: Sequence[Any], *, profile: bool = False) -> list:
        """Execute on arrays already in ``xp`` (in input order); returns the outputs in order."""
        xp = self.xp
        env: dict[int, Any] = {id(c): xp.constant(c) for c in self.graph.constants.values()}
        env.update({id(v): a for v, a in zip(self.graph.inputs, args)})
        if profile:
            self.timings = {}
        for node in self.graph:
            ins = [env[id(v)] if v is not None else None for v in node.inputs]
            if profile:
                xp.sync()
                t0 = time.perf_counter()
            outs = self.run_node(node, ins)
            if profile:
                xp.sync()
                self.timings[node] = time.perf_counter() - t0
            for v, a in zip(node.outputs, outs):
                env[id(v)] = a
            for v in self._last_use.get(id(node), ()):
                env.pop(id(v), None)
        return [env[id(v)] for v in self.graph.outputs]

    def run_node(self, node: Node, args: list) -> list:
        """Run one node (:func:`evaluate_node` through ``call_kernel``); override to observe."""
        return evaluate_node(node, args, self.kernels, self.xp, check=self.check, call=self.call_kernel)

    def call_kernel(self, node: Node, args: list) -> Any:
        """The kernel for ``node``; override to swap kernels (the llvm backend does)."""
        if node.op == "Fused":
            return self.body_function(node)(*args)
        return call_kernel(node, args, self.kernels, self.xp)

    def body_function(self, node: Node) -> Callable[..., tuple]:
        """A ``Fused`` node's body as one function of arrays (made once per node)."""
        fn = self._bodies.get(node)
        if fn is None:
            sub = self.nested(node.body)
            fn = self._bodies[node] = lambda *args: tuple(sub.run_values(list(args)))
        return fn

    def nested(self, body: Graph) -> Interpreter:
        """The interpreter of a fused body: this one's kind, kernels and namespace."""
        return Interpreter(body, self.kernels, self.xp, check=self.check)

