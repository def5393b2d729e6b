"""The verifier: every invariant a pass must keep, checked in one walk, naming the offending node.

Structure first (SSA names, exact use-def, definition before use, no cycles, outputs defined),
then semantics from the op specs (arity, attributes, dtype constraints, output types equal to
what the spec infers), then fused bodies recursively.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .errors import UnsupportedOpError, VerifyError
from .infer import _PartialType, infer_graph, is_unknown
from .ops.registry import find_spec

if TYPE_CHECKING:
    from .graph import Graph, Node, Value

__all__ = ["verify", "describe"]


def describe(node: "Node") -> str:
    """How errors name a node: its op, first output and, if imported, its original name."""
    out = f"%{node.outputs[0].name}" if node.outputs else "(no outputs)"
    origin = f" [{node.name}]" if node.name else ""
    return f"{node.op} node {out}{origin}"


def _fail(graph: "Graph", node: "Node | None", message: str):
    where = f"@{graph.name}: " + (f"{describe(node)}: " if node is not None else "")
    raise VerifyError(where + message, node)


def verify(graph: "Graph", *, check_types: bool = True) -> None:
    """Raise ``VerifyError`` on the first broken invariant (see the module docstring).

    ``check_types=False`` skips re-inferring every node; only for a caller that has just run
    ``refine_types`` on this graph (its result agrees with every spec by construction).
    """
    _check_structure(graph)
    unknown: dict[str, int] = {}
    for n in graph:
        if find_spec(n.op) is None:
            unknown[n.op] = unknown.get(n.op, 0) + 1
    if unknown:
        raise UnsupportedOpError(unknown, where=f"graph @{graph.name}")
    if check_types:
        _check_types(graph)
    for n in graph:
        if n.body is not None:
            _check_body(graph, n)


def _check_structure(graph: "Graph") -> None:
    defined: set[int] = set()
    for v in graph.inputs:
        if v.graph is not graph or graph._values.get(v.name) is not v:
            _fail(graph, None, f"input %{v.name} is not registered in the graph")
        if v.producer is not None or v.const:
            _fail(graph, None, f"input %{v.name} has a producer or is marked constant")
        defined.add(id(v))
    for name, v in graph.constants.items():
        if v.name != name or graph._values.get(name) is not v or not v.const:
            _fail(graph, None, f"constant table entry {name!r} is inconsistent")
        data = v.stored  # shape and dtype only: a file-backed weight is not read
        if data is not None:
            if tuple(data.shape) != v.type.shape:
                _fail(graph, None, f"constant %{v.name} holds data of shape {tuple(data.shape)}, "
                                   f"its type says {v.type}")
            if np.dtype(data.dtype) != v.type.dtype.np_dtype:
                _fail(graph, None, f"constant %{v.name} holds {data.dtype} data, its type says {v.type}")
        defined.add(id(v))

    order = graph.nodes
    position = {id(n): i for i, n in enumerate(order)}
    # every (value, user, slot) edge once, so checking a node's inputs is O(1) each even when one
    # value feeds 50,000 slots of a Concat (a list membership test there was quadratic)
    edges = {(id(v), id(u), i) for v in graph.values() for u, i in v.uses}
    if len(order) != len(graph):
        _fail(graph, None, f"node list holds {len(order)} nodes but the graph counts {len(graph)}")
    for n in order:
        if n.graph is not graph:
            _fail(graph, n, "node does not belong to this graph")
        for i, v in enumerate(n.inputs):
            if v is None:
                continue
            if v.graph is not graph:
                _fail(graph, n, f"input {i} %{v.name} is not a value of this graph (dangling or foreign)")
            if id(v) not in defined:
                if v.producer is not None and id(v.producer) in position:
                    _fail(graph, n, _order_message(graph, n, v))
                _fail(graph, n, f"input {i} %{v.name} is used but never defined")
            if (id(v), id(n), i) not in edges:
                _fail(graph, n, f"use-def broken: %{v.name} does not list this node as a user")
        for j, v in enumerate(n.outputs):
            if v.producer is not n or v.index != j:
                _fail(graph, n, f"output {j} %{v.name} does not point back at its producer")
            if graph._values.get(v.name) is not v:
                _fail(graph, n, f"output %{v.name} is not registered (or its name is taken twice)")
            defined.add(id(v))
    for v in graph.values():
        for user, i in v.uses:
            if user.graph is not graph or i >= len(user.inputs) or user.inputs[i] is not v:
                _fail(graph, None, f"dangling use: %{v.name} lists a {user.op} node that does not read it")
    ret = graph.output_node
    for k, v in enumerate(graph.outputs):
        if v.graph is not graph or id(v) not in defined:
            _fail(graph, None, f"graph output {k} %{v.name} is not defined in the graph")
        if (id(v), id(ret), k) not in edges:
            _fail(graph, None, f"use-def broken: graph output {k} %{v.name} does not list the output as a use")


def _order_message(graph: "Graph", node: "Node", value: "Value") -> str:
    try:
        import networkx as nx
        cycle = nx.find_cycle(graph.to_networkx())
        ops = " -> ".join(f"{u.op}(%{u.outputs[0].name})" for u, _, _ in cycle)
        return f"the graph has a cycle: {ops}"
    except Exception:  # no cycle: only the order is wrong
        return f"input %{value.name} is used before it is defined (nodes are not in topological order)"


def _check_types(graph: "Graph") -> None:
    it = infer_graph(graph)
    while True:
        try:
            node, types = next(it)
        except StopIteration:
            return
        except VerifyError as e:
            bad = e.node
            msg = str(e)
            raise VerifyError(f"@{graph.name}: {describe(bad)}: {msg}" if bad is not None else msg, bad) from None
        for v, t in zip(node.outputs, types):
            if t is None:
                continue
            if not _agrees(v.type, t):
                _fail(graph, node, f"output %{v.name} is declared {v.type} but the {node.op} spec infers {t}")


def _agrees(declared, inferred) -> bool:
    if declared.dtype != inferred.dtype or len(declared.shape) != len(inferred.shape):
        return False
    partial = isinstance(inferred, _PartialType)
    for a, b in zip(declared.shape, inferred.shape):
        if b is None or a == b or is_unknown(a) or is_unknown(b):
            continue
        if isinstance(a, int) and isinstance(b, int):
            return False
        if partial:
            continue
        if isinstance(a, int) or isinstance(b, int):
            continue  # one side static, the other symbolic: consistent until bound
        return False
    return True


def _check_body(graph: "Graph", node: "Node") -> None:
    body = node.body
    assert body is not None
    if len(body.inputs) != len(node.inputs):
        _fail(graph, node, f"body takes {len(body.inputs)} inputs but the node passes {len(node.inputs)}")
    for i, (v, p) in enumerate(zip(node.inputs, body.inputs)):
        if v is not None and v.type != p.type:
            _fail(graph, node, f"body input {i} %{p.name} is {p.type} but the node passes {v.type}")
    if len(body.outputs) != len(node.outputs):
        _fail(graph, node, f"body returns {len(body.outputs)} values but the node has {len(node.outputs)} outputs")
    for j, (v, r) in enumerate(zip(node.outputs, body.outputs)):
        if v.type != r.type:
            _fail(graph, node, f"body result {j} %{r.name} is {r.type} but the node output is {v.type}")
    try:
        verify(body)
    except VerifyError as e:
        raise VerifyError(f"in the body of {describe(node)}: {e}", node) from None
