"""Graph edits shared by the rewriter and the passes: replacing values, erasing dead nodes, and
moving a group of nodes into the ``body`` of one ``Fused`` node.

Names matter to users: a graph output keeps its name through every rewrite (runtimes feed and
fetch by name), and a value a rewrite creates to replace another takes the old name, so an
optimized graph still reads like the model it came from.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from ...ir import Builder, Graph, Node, Value

__all__ = ["RewriteBuilder", "replace_value", "erase_dead", "adopt_name", "output_slots", "build_body", "fuse_nodes"]


class RewriteBuilder(Builder):
    """A ``Builder`` that remembers the nodes it creates (the driver revisits them)."""

    def __init__(self, graph: Graph, *, before: Node | None = None, after: Node | None = None, hint: str = ""):
        super().__init__(graph, before=before, after=after)
        self.created: list[Node] = []
        #: new values are named ``<hint>_<op>`` (the value they help replace), not by a counter
        self.hint = hint

    def op(self, op: str, *inputs: Value | None, _outputs=None, _names=None, _name: str = "", _meta=None,
           _body=None, **attrs: Any):
        inputs = _strip(inputs)
        if _names is None and self.hint:
            _names = [f"{self.hint}_{op.lower()}"]
        node = self.graph.add_node(op, inputs, attrs, outputs=_outputs, names=_names, body=_body, meta=_meta,
                                   name=_name, before=self.before, after=self.after)
        if self.after is not None:
            self.after = node
        self.created.append(node)
        return node.outputs[0] if len(node.outputs) == 1 else tuple(node.outputs)

    def node(self, op: str, inputs: Sequence[Value | None], attrs: dict[str, Any] | None = None, **kw: Any) -> Node:
        """Like ``op`` but returns the node (for multi-output nodes and their meta)."""
        node = self.graph.add_node(op, _strip(inputs), attrs, before=self.before, after=self.after, **kw)
        if self.after is not None:
            self.after = node
        self.created.append(node)
        return node


def _strip(inputs: Sequence[Value | None]) -> list[Value | None]:
    """Trailing missing optional inputs are left out, as ONNX writes them."""
    out = list(inputs)
    while out and out[-1] is None:
        out.pop()
    return out


def replace_value(graph: Graph, old: Value, new: Value) -> None:
    """Point every user of ``old`` (and the graph outputs) at ``new``."""
    if old is not new:
        old.replace_all_uses_with(new)


def adopt_name(graph: Graph, value: Value, name: str, *, created: bool, slots: Sequence[int] = ()) -> None:
    """Give ``value`` the freed ``name`` of the value it replaced, when that is safe.

    A created value always takes it (readable results). A pre-existing value takes it only when
    it now fills the graph-output ``slots`` the old value had (output names are the model's
    interface); if it is an input, a constant or another output, an ``Identity`` carries the name.
    """
    if value.name == name or graph.has_value(name):
        return
    if created:
        value.name = name
        return
    if not slots:
        return
    others = [k for k, o in enumerate(graph.outputs) if o is value and k not in slots]
    if value.producer is None or others:
        where = {"after": value.producer} if value.producer is not None else {"before": next(iter(graph), None)}
        ident = graph.add_node("Identity", [value], names=[name], **where)
        for k in slots:
            graph.output_node.set_input(k, ident.outputs[0])
        return
    value.name = name


def output_slots(graph: Graph, value: Value) -> list[int]:
    return sorted(k for u, k in value.uses if u.is_return)


def erase_dead(graph: Graph, nodes: Iterable[Node], *, on_erase=None) -> list[Node]:
    """Erase ``nodes`` that are dead, then any producer left dead by that, transitively.

    Returns the erased nodes; ``on_erase(node)`` is called for each before it goes.
    """
    stack = list(nodes)
    erased: list[Node] = []
    while stack:
        n = stack.pop()
        if n.graph is not graph:
            continue
        if any(v.uses for v in n.outputs):
            continue
        producers = [v.producer for v in n.inputs if v is not None and v.producer is not None]
        if on_erase is not None:
            on_erase(n)
        graph.erase_node(n)
        erased.append(n)
        stack.extend(producers)
    return erased


def build_body(name: str, nodes: Sequence[Node], outputs: Sequence[Value], *,
               inline_limit: int = 16) -> tuple[Graph, list[Value]]:
    """A body graph computing ``outputs`` from ``nodes`` (in topological order), and the outer
    values that feed it (the Fused node's inputs, in order).

    Constants of at most ``inline_limit`` elements move into the body; nested ``Fused`` nodes
    are inlined, so bodies stay flat.
    """
    body = Graph(name)
    vmap: dict[int, Value] = {}
    outer: list[Value] = []
    inside = {id(v) for n in nodes for v in n.outputs}

    def get(v: Value | None) -> Value | None:
        if v is None:
            return None
        got = vmap.get(id(v))
        if got is not None:
            return got
        if id(v) in inside:  # pragma: no cover - nodes were not in topological order
            raise ValueError(f"%{v.name} is used before it is computed in the fused group")
        if v.const and v.data is not None and v.data.size <= inline_limit:
            nv = body.add_constant(body.fresh_name(v.name), v.data)
        else:
            nv = body.add_input(body.fresh_name(v.name), v.type)
            outer.append(v)
        vmap[id(v)] = nv
        return nv

    for n in nodes:
        ins = [get(v) for v in n.inputs]
        if n.op == "Fused" and n.body is not None:
            inner = n.body
            imap: dict[int, Value] = {}
            for p, a in zip(inner.inputs, ins):
                imap[id(p)] = a  # type: ignore[assignment]
            for c in inner.constants.values():
                imap[id(c)] = body.add_constant(body.fresh_name(c.name), c.data, type=c.type)
            for m in inner:
                nm = body.add_node(m.op, [imap[id(v)] if v is not None else None for v in m.inputs], m.attrs,
                                   outputs=[v.type for v in m.outputs],
                                   names=[body.fresh_name(v.name) for v in m.outputs], meta=m.meta, name=m.name)
                for v, nv in zip(m.outputs, nm.outputs):
                    imap[id(v)] = nv
            for v, r in zip(n.outputs, inner.outputs):
                vmap[id(v)] = imap[id(r)]
            continue
        nn = body.add_node(n.op, ins, n.attrs, outputs=[v.type for v in n.outputs],
                           names=[body.fresh_name(v.name) for v in n.outputs], meta=n.meta, name=n.name,
                           body=n.body.copy() if n.body is not None else None)
        for v, nv in zip(n.outputs, nn.outputs):
            vmap[id(v)] = nv
    results = []
    for v in outputs:
        r = vmap[id(v)]
        if r.producer is None:  # an output that is a body input or constant: keep the body well formed
            r = body.add_node("Identity", [r], names=[body.fresh_name(v.name)]).outputs[0]
        if any(o is r for o in results):
            r = body.add_node("Identity", [r], names=[body.fresh_name(v.name)]).outputs[0]
        results.append(r)
    body.outputs = results
    return body, outer


def fuse_nodes(b: RewriteBuilder, nodes: Sequence[Node], outputs: Sequence[Value], *, kind: str,
               label: str = "", inline_limit: int = 16) -> tuple[Value, ...]:
    """Create (through ``b``) one ``Fused`` node computing ``outputs`` of ``nodes``; returns its
    outputs. The caller replaces the old values; the old nodes die with them."""
    last = outputs[-1]
    body, outer = build_body(f"{kind.replace('-', '_')}_{last.name}", nodes, outputs, inline_limit=inline_limit)
    attrs = {"kind": kind}
    if label:
        attrs["label"] = label
    node = b.node("Fused", outer, attrs, outputs=[v.type for v in outputs], body=body)
    return tuple(node.outputs)
