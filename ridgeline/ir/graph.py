"""The IR: ``Value`` (typed SSA edge), ``Node`` (an op application) and ``Graph``.

Use-def is kept exact by the graph's editing helpers: every ``Value`` knows its producer and the
``(node, input_index)`` pairs that read it. The graph's outputs are uses too: they are the inputs
of a ``return`` node that is never in the node list (like xDSL's ``func.return``), so "is this
value live" is ``bool(value.uses)`` everywhere. Nodes live in a doubly linked list in topological
order, so inserting before an anchor or erasing a node is O(1) — a rewriter applying thousands
of rewrites to a 20,000-node graph never rescans it.

A constant is a ``Value`` without producer that carries a numpy array, or only its type: a
weightless 70B-parameter graph holds shapes and dtypes, not 140 GB of weights.
"""

from __future__ import annotations

import itertools
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Sequence

import numpy as np

from . import dims as D
from .dtypes import from_numpy
from .errors import IRError
from .storage import LazyTensor
from .types import TensorType

if TYPE_CHECKING:
    import networkx
    from .ops.spec import OpSpec

__all__ = ["RETURN", "Builder", "Graph", "Node", "Value", "normalize_attr"]

#: the op of the output sentinel whose inputs are a graph's outputs
RETURN = "return"

#: the largest size ``bind`` accepts for a dim (the importers refuse larger declared dims too)
MAX_BIND = 2 ** 40


class Value:
    """A typed SSA value: a graph input, a constant, or output ``index`` of ``producer``."""

    __slots__ = ("_name", "type", "producer", "index", "uses", "_data", "const", "graph", "meta")

    def __init__(self, name: str, type: TensorType, *, producer: Node | None = None, index: int = 0,
                 const: bool = False, data: np.ndarray | LazyTensor | None = None):
        self._name = name
        self.type = type
        self.producer = producer
        self.index = index
        self.uses: list[tuple[Node, int]] = []
        self.const = const
        self._data = data
        self.graph: Graph | None = None
        self.meta: dict[str, Any] = {}

    @property
    def name(self) -> str:
        return self._name

    @name.setter
    def name(self, new: str) -> None:
        if self.graph is not None:
            self.graph._rename(self, new)
        else:
            self._name = new

    @property
    def dtype(self):
        return self.type.dtype

    @property
    def shape(self):
        return self.type.shape

    @property
    def has_data(self) -> bool:
        return self._data is not None

    @property
    def data(self) -> np.ndarray | None:
        """The constant's array (a file-backed weight is mapped on first access), or None."""
        d = self._data
        return d.numpy() if isinstance(d, LazyTensor) else d

    @data.setter
    def data(self, value: np.ndarray | LazyTensor | None) -> None:
        self._data = value

    @property
    def stored(self) -> np.ndarray | LazyTensor | None:
        """The data as stored: an array, a ``LazyTensor`` not yet read, or None (weightless).
        Code that only moves constants around (copy, export) passes this on untouched."""
        return self._data

    @property
    def is_lazy(self) -> bool:
        """True while the data is a file-backed ``LazyTensor`` nobody has read yet."""
        return isinstance(self._data, LazyTensor) and not self._data.loaded

    @property
    def is_input(self) -> bool:
        return self.producer is None and not self.const

    @property
    def is_output(self) -> bool:
        """True if the value is one of its graph's outputs."""
        return any(u.is_return for u, _ in self.uses)

    @property
    def users(self) -> list[Node]:
        """Distinct nodes reading this value, in use order."""
        seen: dict[int, Node] = {}
        for node, _ in self.uses:
            seen.setdefault(id(node), node)
        return list(seen.values())

    def replace_all_uses_with(self, other: Value) -> None:
        """Point every reader of this value (graph outputs included) at ``other``."""
        if other is self:
            return
        for node, i in list(self.uses):
            node.set_input(i, other)

    def __repr__(self) -> str:
        return f"%{self._name}: {self.type}"


def normalize_attr(value: Any) -> Any:
    """Attributes are immutable: lists become tuples, numpy scalars become Python scalars."""
    if isinstance(value, np.ndarray):
        arr = value.copy() if value.flags.writeable else value
        arr.setflags(write=False)
        return arr
    if isinstance(value, (list, tuple)):
        return tuple(normalize_attr(v) for v in value)
    if isinstance(value, Mapping):
        return MappingProxyType({k: normalize_attr(v) for k, v in value.items()})
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bool):
        return int(value)
    return value


class Node:
    """One op application: ``op`` with inputs, outputs, immutable ``attrs``, optional ``body``."""

    __slots__ = ("op", "inputs", "outputs", "_attrs", "body", "meta", "name", "graph", "_prev", "_next")

    def __init__(self, op: str, inputs: Sequence[Value | None], outputs: Sequence[Value],
                 attrs: Mapping[str, Any] | None = None, *, body: Graph | None = None,
                 meta: Mapping[str, Any] | None = None, name: str = ""):
        self.op = op
        self.inputs: list[Value | None] = list(inputs)
        self.outputs: list[Value] = list(outputs)
        self._attrs = MappingProxyType({k: normalize_attr(v) for k, v in (attrs or {}).items()})
        self.body = body
        self.meta: dict[str, Any] = dict(meta or {})
        self.name = name
        self.graph: Graph | None = None
        self._prev: Node | None = None
        self._next: Node | None = None

    @property
    def attrs(self) -> Mapping[str, Any]:
        return self._attrs

    @attrs.setter
    def attrs(self, new: Mapping[str, Any]) -> None:
        self._attrs = MappingProxyType({k: normalize_attr(v) for k, v in new.items()})

    def attr(self, name: str, default: Any = None) -> Any:
        """The attribute's value, else the spec's default, else ``default``."""
        if name in self._attrs:
            return self._attrs[name]
        spec = self.spec_or_none
        if spec is not None and name in spec.attrs and spec.attrs[name].has_default:
            return spec.attrs[name].default
        return default

    @property
    def spec(self) -> OpSpec:
        from .ops.registry import get_spec
        return get_spec(self.op)

    @property
    def spec_or_none(self) -> OpSpec | None:
        from .ops.registry import find_spec
        return find_spec(self.op)

    @property
    def is_return(self) -> bool:
        """True for a graph's output sentinel (its inputs are the graph outputs)."""
        return self.graph is not None and self.graph._return is self

    @property
    def output(self) -> Value:
        """The single output; raises if the node has several."""
        if len(self.outputs) != 1:
            raise IRError(f"{self.op} node has {len(self.outputs)} outputs; use .outputs")
        return self.outputs[0]

    def set_input(self, i: int, value: Value | None) -> None:
        """Replace input ``i``, keeping use lists exact."""
        old = self.inputs[i]
        if old is value:
            return
        if old is not None:
            old.uses.remove((self, i))
        self.inputs[i] = value
        if value is not None:
            value.uses.append((self, i))

    def input_types(self) -> list[TensorType | None]:
        return [v.type if v is not None else None for v in self.inputs]

    def __repr__(self) -> str:
        outs = ", ".join("%" + v.name for v in self.outputs)
        ins = ", ".join("%" + v.name if v is not None else "none" for v in self.inputs)
        return f"<{outs} = {self.op}({ins})>"


class Graph:
    """A function over tensors: inputs, constants, nodes in topological order, outputs."""

    def __init__(self, name: str = "main"):
        self.name = name
        self.inputs: list[Value] = []
        self._return = Node(RETURN, [], [])  # never linked: its inputs are the graph outputs
        self._return.graph = self
        self.constants: dict[str, Value] = {}
        self.meta: dict[str, Any] = {}
        self._values: dict[str, Value] = {}
        self._head: Node | None = None
        self._tail: Node | None = None
        self._count = 0
        self._fresh = itertools.count()
        self._suffix: dict[str, int] = {}  # next suffix to try per hint: fresh names stay O(1)
        self._unknowns: tuple[Iterator[int], set[str]] | None = None  # see unknown_dim

    @property
    def outputs(self) -> list[Value]:
        """The graph outputs (a new list; assign to change them, which keeps uses exact)."""
        return list(self._return.inputs)

    @outputs.setter
    def outputs(self, values: Iterable[Value]) -> None:
        ret = self._return
        for i, v in enumerate(ret.inputs):
            if v is not None:
                v.uses.remove((ret, i))
        ret.inputs = list(values)
        for i, v in enumerate(ret.inputs):
            v.uses.append((ret, i))

    @property
    def output_node(self) -> Node:
        """The ``return`` sentinel: ``(graph.output_node, k)`` is the use of graph output k."""
        return self._return

    # ----------------------------------------------------------------- names and values
    def fresh_name(self, hint: str | None = None) -> str:
        """A value name unused in this graph, derived from ``hint`` when given."""
        if hint and hint not in self._values:
            return hint
        if hint:
            for k in itertools.count(self._suffix.get(hint, 1)):
                cand = f"{hint}_{k}"
                if cand not in self._values:
                    self._suffix[hint] = k + 1
                    return cand
        while True:
            cand = str(next(self._fresh))
            if cand not in self._values:
                return cand

    def unknown_dim(self, tag: str = "") -> str:
        """A dim name for a size nobody knows (``_u<tag><N>``), unused in this graph so far.

        Numbered per graph, so the printed IR of a graph does not depend on what ran before it.
        """
        if self._unknowns is None:  # the names a parsed or copied graph already holds stay taken
            self._unknowns = (itertools.count(), self.symbols())
        counter, taken = self._unknowns
        while (name := f"_u{tag}{next(counter)}") in taken:
            pass
        taken.add(name)
        return name

    def _register(self, value: Value) -> Value:
        if value._name in self._values:
            raise IRError(f"value name %{value._name} is already defined in graph @{self.name}")
        self._values[value._name] = value
        value.graph = self
        return value

    def _unregister(self, value: Value) -> None:
        if self._values.get(value._name) is value:
            del self._values[value._name]
        value.graph = None

    def _rename(self, value: Value, new: str) -> None:
        if new == value._name:
            return
        if new in self._values:
            raise IRError(f"cannot rename %{value._name} to %{new}: name taken")
        del self._values[value._name]
        value._name = new
        self._values[new] = value
        if value.const:
            self.constants = {(new if k != new and v is value else k): v for k, v in self.constants.items()}

    def value(self, name: str) -> Value:
        try:
            return self._values[name]
        except KeyError:
            raise IRError(f"no value named %{name} in graph @{self.name}") from None

    def has_value(self, name: str) -> bool:
        return name in self._values

    def values(self) -> Iterator[Value]:
        """Every value: inputs, constants, then node outputs in order."""
        yield from self.inputs
        yield from self.constants.values()
        for n in self.nodes:
            yield from n.outputs

    # ----------------------------------------------------------------- building
    def add_input(self, name: str, type: TensorType) -> Value:
        v = self._register(Value(name if name else self.fresh_name("in"), type))
        self.inputs.append(v)
        return v

    def add_constant(self, name: str | None, data: np.ndarray | LazyTensor | None = None, *,
                     type: TensorType | None = None) -> Value:
        """A constant with ``data`` (an array, or a ``LazyTensor`` read on first use), or a
        weightless one with only ``type``."""
        if isinstance(data, LazyTensor):
            if type is None:
                type = TensorType(from_numpy(data.dtype), data.shape)
        elif data is not None:
            data = np.asarray(data)
            if type is None:
                type = TensorType(from_numpy(data.dtype), tuple(int(s) for s in data.shape))
            if data.flags.writeable:
                data = data.copy()
                data.setflags(write=False)
        elif type is None:
            raise IRError("a weightless constant needs a type")
        v = self._register(Value(self.fresh_name(name or "c"), type, const=True, data=data))
        self.constants[v.name] = v
        return v

    def add_node(self, op: str, inputs: Sequence[Value | None], attrs: Mapping[str, Any] | None = None, *,
                 outputs: int | Sequence[TensorType | None] | None = None,
                 names: Sequence[str | None] | None = None, body: Graph | None = None,
                 meta: Mapping[str, Any] | None = None, name: str = "",
                 before: Node | None = None, after: Node | None = None) -> Node:
        """Create a node and link it in (at the end, or ``before``/``after`` an anchor).

        Output types not given are inferred from the op's spec.
        """
        node = Node(op, inputs, [], attrs, body=body, meta=meta, name=name)
        if outputs is None or isinstance(outputs, int):
            types: list[TensorType | None] = [None] * (outputs if isinstance(outputs, int) else -1)
        else:
            types = list(outputs)
        if any(t is None for t in types) or not types:
            from .infer import infer_node
            inferred = infer_node(node, len(types) or None, self)
            if not types:
                types = [None] * len(inferred)
            types = [t if t is not None else inferred[i] for i, t in enumerate(types)]
        names = list(names) if names is not None else [None] * len(types)
        for i, t in enumerate(types):
            v = Value(self.fresh_name(names[i] if i < len(names) else None), t, producer=node, index=i)
            self._register(v)
            node.outputs.append(v)
        for i, v in enumerate(node.inputs):
            if v is not None:
                if v.graph is not self:
                    raise IRError(f"{op}: input %{v.name} belongs to another graph")
                v.uses.append((node, i))
        self._link(node, before=before, after=after)
        return node

    def insert(self, node: Node, *, before: Node | None = None, after: Node | None = None) -> Node:
        """Link an already-built node (whose values are unregistered) into this graph."""
        for v in node.outputs:
            self._register(v)
        for i, v in enumerate(node.inputs):
            if v is not None:
                v.uses.append((node, i))
        self._link(node, before=before, after=after)
        return node

    def _link(self, node: Node, *, before: Node | None, after: Node | None) -> None:
        node.graph = self
        if before is not None and after is not None:
            raise IRError("give `before` or `after`, not both")
        if before is not None and before.graph is not self:
            raise IRError("insertion anchor is not in this graph")
        # insert after ``anchor``; None: at the head (before the first node, or into an empty graph)
        anchor = before._prev if before is not None else (after if after is not None else self._tail)
        if anchor is not None and anchor.graph is not self:
            raise IRError("insertion anchor is not in this graph")
        node._prev, node._next = anchor, (anchor._next if anchor is not None else self._head)
        if anchor is None:
            self._head = node
        else:
            anchor._next = node
        if node._next is None:
            self._tail = node
        else:
            node._next._prev = node
        self._count += 1

    def _unlink(self, node: Node) -> None:
        if node._prev is None:
            self._head = node._next
        else:
            node._prev._next = node._next
        if node._next is None:
            self._tail = node._prev
        else:
            node._next._prev = node._prev
        node._prev = node._next = None
        node.graph = None
        self._count -= 1

    def erase_node(self, node: Node) -> None:
        """Remove a node whose outputs are unused (not read, not graph outputs)."""
        self.erase_nodes((node,))

    def erase_nodes(self, nodes: Iterable[Node]) -> None:
        """Erase a set of nodes at once; their outputs may only be read by each other.

        Each input's use list is filtered once, so erasing k readers of a value with n uses costs
        O(n), not O(n·k) as k ``erase_node`` calls would (a shape constant read by thousands of
        folded nodes).
        """
        group = list(nodes)
        ids = {id(n) for n in group}
        for n in group:
            if n.graph is not self or n is self._return:
                raise IRError(f"{n!r} is not in graph @{self.name}")
            for v in n.outputs:
                outside = [u for u, _ in v.uses if id(u) not in ids]
                if outside:
                    users = ", ".join(_user_text(u) for u in outside)
                    raise IRError(f"cannot erase {n.op} node: its output %{v.name} is still used by {users}")
        touched: dict[int, Value] = {}
        for n in group:
            for v in n.inputs:
                if v is not None:
                    touched[id(v)] = v
        for v in touched.values():
            v.uses = [(u, i) for u, i in v.uses if id(u) not in ids]
        for n in group:
            n.inputs = [None] * len(n.inputs)
            for v in n.outputs:
                self._unregister(v)
            self._unlink(n)

    def remove_constant(self, value: Value) -> None:
        """Remove an unused constant."""
        if value.uses:
            raise IRError(f"constant %{value.name} is still used")
        self.constants.pop(value.name, None)
        self._unregister(value)

    def remove_input(self, value: Value) -> None:
        """Remove an unused graph input."""
        if not any(v is value for v in self.inputs):
            raise IRError(f"%{value.name} is not an input of graph @{self.name}")
        if value.uses:
            raise IRError(f"input %{value.name} is still used by "
                          f"{', '.join(_user_text(u) for u, _ in value.uses)}")
        self.inputs = [v for v in self.inputs if v is not value]
        self._unregister(value)

    # ----------------------------------------------------------------- traversal
    @property
    def nodes(self) -> list[Node]:
        """A snapshot of the nodes in order: safe to iterate while editing."""
        out = []
        n = self._head
        while n is not None:
            out.append(n)
            n = n._next
        return out

    def __iter__(self) -> Iterator[Node]:
        n = self._head
        while n is not None:
            nxt = n._next
            yield n
            n = nxt

    def walk(self) -> Iterator[Node]:
        """Every node in order, each ``Fused`` body's nodes right after their node."""
        for n in self:
            yield n
            if n.body is not None:
                yield from n.body.walk()

    def __len__(self) -> int:
        return self._count

    def op_histogram(self) -> dict[str, int]:
        hist: dict[str, int] = {}
        for n in self:
            hist[n.op] = hist.get(n.op, 0) + 1
        return dict(sorted(hist.items(), key=lambda kv: (-kv[1], kv[0])))

    def topological_sort(self) -> None:
        """Reorder the node list topologically, keeping the current order where it is valid."""
        order = self.nodes
        pos = {id(n): i for i, n in enumerate(order)}
        indeg = {id(n): 0 for n in order}
        for n in order:
            for v in n.inputs:
                if v is not None and v.producer is not None and id(v.producer) in pos:
                    indeg[id(n)] += 1
        import heapq
        heap = [(pos[id(n)], n) for n in order if indeg[id(n)] == 0]  # positions are unique: no ties
        heapq.heapify(heap)
        sorted_nodes = []
        while heap:
            _, n = heapq.heappop(heap)
            sorted_nodes.append(n)
            for v in n.outputs:
                for user, _ in v.uses:
                    if id(user) in indeg:
                        indeg[id(user)] -= 1
                        if indeg[id(user)] == 0:
                            heapq.heappush(heap, (pos[id(user)], user))
        if len(sorted_nodes) != len(order):
            stuck = next(n for n in order if indeg[id(n)] > 0)
            raise IRError(f"graph @{self.name} has a cycle through {stuck.op} node producing "
                          f"%{stuck.outputs[0].name if stuck.outputs else '?'}")
        prev = None
        for n in sorted_nodes:
            n._prev, n._next = prev, None
            if prev is not None:
                prev._next = n
            prev = n
        self._head = sorted_nodes[0] if sorted_nodes else None
        self._tail = prev

    # ----------------------------------------------------------------- whole-graph operations
    def verify(self) -> None:
        """Check SSA, use-def, order, op specs, attributes and types; raises ``VerifyError``."""
        from .verifier import verify
        verify(self)

    def copy(self) -> Graph:
        """A structural copy; constant arrays are shared (they are read-only)."""
        new = Graph(self.name)
        new.meta = _copy_meta(self.meta)
        vmap: dict[int, Value] = {}
        for v in self.inputs:
            nv = new.add_input(v.name, v.type)
            nv.meta = dict(v.meta)
            vmap[id(v)] = nv
        for v in self.constants.values():
            nv = new._register(Value(v.name, v.type, const=True, data=v.stored))
            nv.meta = dict(v.meta)
            new.constants[nv.name] = nv
            vmap[id(v)] = nv
        for n in self:
            ins = [vmap[id(v)] if v is not None else None for v in n.inputs]
            nn = new.add_node(n.op, ins, n.attrs, outputs=[v.type for v in n.outputs],
                              names=[v.name for v in n.outputs],
                              body=n.body.copy() if n.body is not None else None,
                              meta=_copy_meta(n.meta), name=n.name)
            for v, nv in zip(n.outputs, nn.outputs):
                nv.meta = dict(v.meta)
                vmap[id(v)] = nv
        new.outputs = [vmap[id(v)] for v in self.outputs]
        return new

    def symbols(self) -> set[str]:
        """The symbolic dim names used anywhere in the graph."""
        out: set[str] = set()
        for v in self.values():
            out |= v.type.symbols
        for n in self:
            if n.body is not None:
                out |= n.body.symbols()
        return out

    def bind(self, _binding: Mapping[str, D.Dim] | None = None, **dims: D.Dim) -> Graph:
        """A copy with symbolic dims replaced: ``g.bind(batch=1, seq=128)``.

        Types are substituted and then re-inferred, so ops whose shapes follow from computed
        values (Reshape of a Shape→Gather→Concat chain) specialize too.
        """
        binding = {**(_binding or {}), **dims}
        known = self.symbols()
        unknown = sorted(set(binding) - known)
        if unknown:
            raise IRError(f"cannot bind {', '.join(unknown)}: graph @{self.name} has dims "
                          f"{', '.join(sorted(known)) or '(none)'}")
        binding = {k: D.check_dim(v) for k, v in binding.items()}
        for k, v in binding.items():  # a user's number: no real tensor has a dim beyond 2^40
            if isinstance(v, int) and v > MAX_BIND:
                raise IRError(f"cannot bind {k} = {v}: beyond any real tensor (limit 2^40)")
        new = self.copy()
        new._bind_in_place(binding)
        return new

    def _bind_in_place(self, binding: Mapping[str, D.Dim]) -> None:
        for v in itertools.chain(self.inputs, self.constants.values()):
            v.type = v.type.bind(binding)
        for n in self:
            for v in n.outputs:
                v.type = v.type.bind(binding)
            if n.body is not None:
                n.body._bind_in_place(binding)
        from .infer import refine_types
        refine_types(self)

    def to_networkx(self) -> "networkx.MultiDiGraph":
        """Nodes as networkx nodes (keyed by the ``Node``), values as edges with ``value=``."""
        import networkx as nx
        g = nx.MultiDiGraph(name=self.name)
        for n in self:
            g.add_node(n, op=n.op)
        for n in self:
            for i, v in enumerate(n.inputs):
                if v is not None and v.producer is not None:
                    g.add_edge(v.producer, n, key=(v.name, i), value=v)
        return g

    def __str__(self) -> str:
        from .printer import print_graph
        return print_graph(self)

    def __repr__(self) -> str:
        return f"<Graph @{self.name}: {len(self.inputs)} inputs, {len(self.constants)} constants, " \
               f"{len(self)} nodes, {len(self.outputs)} outputs>"


def _user_text(node: Node) -> str:
    return "graph output" if node.is_return else node.op


def _copy_meta(meta: Mapping[str, Any]) -> dict[str, Any]:
    import copy
    return copy.deepcopy(dict(meta))


class Builder:
    """Adds nodes at an insertion point: ``b = Builder(g, before=root); y = b.MatMul(x, w)``.

    Calling an op name returns its single output value (or a tuple for several outputs).
    Keyword arguments become attributes; ``_outputs=``, ``_name=``, ``_meta=``, ``_body=`` pass through.
    """

    def __init__(self, graph: Graph, *, before: Node | None = None, after: Node | None = None):
        self.graph, self.before, self.after = graph, before, after

    def op(self, op: str, *inputs: Value | None, _outputs=None, _names=None, _name: str = "",
           _meta=None, _body=None, **attrs: Any):
        node = self.graph.add_node(op, inputs, attrs, outputs=_outputs, names=_names, body=_body,
                                   meta=_meta, name=_name, before=self.before, after=self.after)
        if self.after is not None:
            self.after = node  # keep emitting in program order
        return node.outputs[0] if len(node.outputs) == 1 else tuple(node.outputs)

    def constant(self, data, name: str | None = None) -> Value:
        return self.graph.add_constant(name, np.asarray(data))

    def __getattr__(self, op: str):
        if op.startswith("_") or not op[:1].isupper():
            raise AttributeError(op)
        return lambda *inputs, **kw: self.op(op, *inputs, **kw)

