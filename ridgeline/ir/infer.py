"""Type inference: runs each node's spec over its input types, constants and symbolic values.

``infer_node`` types one node (used when a node is built without explicit output types).
``infer_graph`` walks a graph in order, carrying the symbolic values that specs publish for small
integer tensors (``Shape`` and the arithmetic on it), so a Reshape whose target shape is
computed from ``Shape`` gets a precise output type, symbolic until dims are bound and static after.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import numpy as np

from . import dims as D
from .dtypes import DTYPES
from .errors import VerifyError
from .ops.registry import get_spec
from .ops.spec import InferContext, OpSpec
from .types import TensorType

if TYPE_CHECKING:
    from .graph import Graph, Node

__all__ = ["infer_node", "infer_graph", "infer_node_symbolic", "refine_types", "check_signature", "merge_types",
           "UNKNOWN_PREFIX", "is_unknown"]

UNKNOWN_PREFIX = "_u"
_detached = itertools.count()  # unknown dims of a node in no graph (a probe that is thrown away)


def is_unknown(d) -> bool:
    """A dim nobody knows (a fresh ``_u`` symbol): consistent with any other dim."""
    return isinstance(d, str) and d.startswith(UNKNOWN_PREFIX)


def _detached_unknown() -> str:
    return f"{UNKNOWN_PREFIX}d{next(_detached)}"


def check_signature(node: "Node", spec: OpSpec) -> dict[str, str]:
    """Check arity, attributes and dtype constraints; returns the bound constraint letters."""
    n = len(node.inputs)
    if n < spec.min_inputs:
        raise VerifyError(f"{spec.name} needs at least {spec.min_inputs} inputs, got {n}", node)
    if spec.max_inputs is not None and n > spec.max_inputs:
        raise VerifyError(f"{spec.name} takes at most {spec.max_inputs} inputs, got {n}", node)
    for i, v in enumerate(node.inputs):
        if v is None and not spec.input_port(i).optional:
            raise VerifyError(f"{spec.name}: required input {spec.input_port(i).name} is missing", node)
    for name, value in node.attrs.items():
        a = spec.attrs.get(name)
        if a is None:
            known = ", ".join(spec.attrs) or "none"
            raise VerifyError(f"{spec.name}: unknown attribute {name!r} (known: {known})", node)
        why = a.check(value)
        if why:
            raise VerifyError(f"{spec.name}: attribute {name}: {why}", node)
    for name, a in spec.attrs.items():
        if a.required and name not in node.attrs:
            raise VerifyError(f"{spec.name}: required attribute {name!r} is missing", node)
    bound: dict[str, str] = {}
    for i, v in enumerate(node.inputs):
        if v is None:
            continue
        port = spec.input_port(i)
        dt = v.type.dtype.name
        allowed = spec.allowed_dtypes(port.constraint)
        if dt not in allowed:
            raise VerifyError(f"{spec.name}: input {port.name} has dtype {dt}, expected one of "
                              f"{', '.join(sorted(allowed))}", node)
        if port.constraint in spec.types and port.constraint not in spec.extra.get("heterogeneous", ()):
            prev = bound.setdefault(port.constraint, dt)
            if prev != dt:
                raise VerifyError(f"{spec.name}: input {port.name} is {dt} but other {port.constraint} "
                                  f"inputs are {prev}", node)
    return bound


#: integer constants above this many elements are never read to infer types (see _input_values)
_MAX_SHAPE_VALUES = 1 << 12


def _large(v) -> bool:
    return v.stored.size > _MAX_SHAPE_VALUES


def _input_values(node: "Node", syms: dict[int, np.ndarray] | None):
    values, symvals = [], []
    for v in node.inputs:
        if v is None:
            values.append(None)
            symvals.append(None)
            continue
        # a file-backed weight not yet read stays unread: no shape depends on a float weight, nor
        # on a large integer one (quantized codes); shape tensors have at most a few dozen values
        values.append(v.data if v.const and not (v.is_lazy and (v.type.dtype.is_float or _large(v))) else None)
        symvals.append(syms.get(id(v)) if syms is not None else None)
    return values, symvals


def _normalize(spec: OpSpec, node: "Node", result, bound: dict[str, str], *,
               fresh: Callable[[], str] | None) -> list[TensorType | None]:
    out: list[TensorType | None] = []
    for j, r in enumerate(result):
        if r is None:
            out.append(None)
            continue
        if isinstance(r, (TensorType, _PartialType)):
            shape, dt = r.shape, r.dtype
        else:
            shape = r
            try:
                port = spec.output_port(j)
            except IndexError:
                raise VerifyError(f"{spec.name}: inference produced too many outputs", node) from None
            c = port.constraint
            if c in DTYPES:
                dt = DTYPES[c]
            elif c in bound:
                dt = DTYPES[bound[c]]
            else:
                raise VerifyError(f"{spec.name}: cannot infer the dtype of output {port.name} "
                                  f"(constraint {c} is not bound by any input)", node)
        dims = []
        for d in shape:
            if d is None:
                dims.append(fresh() if fresh else None)
            else:
                dims.append(d if isinstance(d, (int, str)) else D.check_dim(d))
        out.append(_PartialType(dt, tuple(dims)) if (not fresh and None in dims) else TensorType(dt, tuple(dims)))
    return out


class _PartialType:
    """An inferred type with unknown (None) dims; only the verifier and refinement see it."""

    __slots__ = ("dtype", "shape")

    def __init__(self, dtype, shape):
        self.dtype, self.shape = dtype, shape

    def __str__(self) -> str:
        return f"{self.dtype.name}[{', '.join('?' if d is None else str(d) for d in self.shape)}]"


def _run(node: "Node", syms, num_outputs, *, fresh: Callable[[], str] | None):
    spec = get_spec(node.op)
    bound = check_signature(node, spec)
    values, symvals = _input_values(node, syms)
    ctx = InferContext(node, spec, node.input_types(), values, symvals, num_outputs)
    try:
        result = spec.infer(ctx)
    except VerifyError:
        raise
    except (ValueError, IndexError, TypeError, KeyError, ZeroDivisionError) as e:
        raise VerifyError(f"{spec.name}: cannot infer output types: {type(e).__name__}: {e}", node) from None
    types = _normalize(spec, node, result, bound, fresh=fresh)
    if num_outputs is not None and len(types) != num_outputs:
        if len(types) > num_outputs and all(p.optional or p.variadic for p in spec.outputs[num_outputs:]):
            types = types[:num_outputs]  # trailing optional outputs the node does not produce
        else:
            raise VerifyError(f"{spec.name}: node has {num_outputs} outputs, the spec gives {len(types)}", node)
    return types, ctx.out_syms


def infer_node(node: "Node", num_outputs: int | None = None, graph: Graph | None = None) -> list[TensorType]:
    """Output types of a node from its spec (unknown dims become fresh symbols of ``graph``,
    by default the node's).

    Small integer inputs computed upstream (a shape built by Shape→Gather→Concat, axes from a
    Range) get their symbolic values by re-running the specs of the short chain that made them,
    so a node added after such a chain is typed as precisely as ``infer_graph`` would type it.
    ``num_outputs`` is the output count of a node under construction (a Split without sizes).
    """
    n = len(node.outputs) or num_outputs or None
    memo: dict[int, np.ndarray | None] = {}
    syms = {id(v): s for v in node.inputs if v is not None and (s := _symbolic_value(v, memo)) is not None}
    graph = graph if graph is not None else node.graph
    types, _ = _run(node, syms, n, fresh=graph.unknown_dim if graph is not None else _detached_unknown)
    return types  # type: ignore[return-value]


_SYM_DEPTH = 64  # a shape computation is a short chain; anything deeper is not one


def _is_small_int(v) -> bool:
    t = v.type
    if not t.dtype.is_integer:
        return False
    return t.rank <= 1 or (t.is_static and t.numel <= 64)


def _symbolic_value(v, memo: dict[int, np.ndarray | None], depth: int = 0) -> np.ndarray | None:
    """The symbolic value of a small integer, non-constant value, from its producer chain."""
    if v.const or v.producer is None or not _is_small_int(v) or depth > _SYM_DEPTH:
        return None
    if id(v) in memo:
        return memo[id(v)]
    memo[id(v)] = None  # guards against cycles in a graph under construction
    p = v.producer
    syms = {id(x): s for x in p.inputs if x is not None and (s := _symbolic_value(x, memo, depth + 1)) is not None}
    try:
        _, out_syms = _run(p, syms, len(p.outputs), fresh=_detached_unknown)  # types unused
    except VerifyError:
        out_syms = {}
    for j, o in enumerate(p.outputs):
        if j in out_syms:
            memo[id(o)] = out_syms[j]
    return memo.get(id(v))


def infer_graph(graph: "Graph", syms: dict[int, np.ndarray] | None = None) -> Iterator[tuple["Node", list]]:
    """Yield ``(node, inferred_types)`` in order; unknown dims are ``None`` in partial types.

    ``syms``, when given, collects the symbolic values the specs publish, keyed by ``id(value)``.
    """
    syms = {} if syms is None else syms
    for node in graph:
        yield node, infer_node_symbolic(node, syms)


def infer_node_symbolic(node: "Node", syms: dict[int, np.ndarray]) -> list:
    """Infer one node given the symbolic values of its inputs in ``syms``; adds its outputs' values.

    Returns the inferred types (``None`` dims where unknown), as ``infer_graph`` yields them.
    """
    types, out_syms = _run(node, syms, len(node.outputs), fresh=None)
    for j, s in out_syms.items():
        if j < len(node.outputs):
            syms[id(node.outputs[j])] = s
    return types


def merge_types(declared: TensorType, inferred) -> TensorType | None:
    """The refined type (inferred dims where known), or None if the two contradict."""
    if inferred is None:
        return declared
    if declared.dtype != inferred.dtype or len(declared.shape) != len(inferred.shape):
        return None
    dims = []
    for a, b in zip(declared.shape, inferred.shape):
        if b is None or a == b:
            dims.append(a)
        elif isinstance(a, int):
            if isinstance(b, int):
                return None
            dims.append(a)  # a static annotation is more precise than a symbolic inference
        elif isinstance(b, str) and b.startswith(UNKNOWN_PREFIX):
            dims.append(a)  # an unknown from upstream says less than a declared name
        else:
            dims.append(b)  # the spec knows better than an imported or unknown annotation
    return TensorType(declared.dtype, tuple(dims))


def refine_types(graph: "Graph") -> bool:
    """Replace declared output types by what inference now knows (after ``bind`` or a fold)."""
    changed = False
    for node, types in infer_graph(graph):
        for v, t in zip(node.outputs, types):
            new = merge_types(v.type, t)
            if new is None:
                raise VerifyError(f"{node.op} output %{v.name}: declared {v.type} but inferred {t}", node)
            if new != v.type:
                v.type = new
                changed = True
    return changed
