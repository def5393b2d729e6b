"""Small helpers for the mutants and their witness graphs."""

from __future__ import annotations

import numpy as np

from ridgeline.ir import Graph, Node, Value, tensor


def const(g: Graph, data, dtype=None) -> Value:
    return g.add_constant(None, np.asarray(data, dtype=dtype))


def op(g: Graph, name: str, *inputs, **attrs) -> Value:
    return g.add_node(name, list(inputs), attrs).outputs[0]


def replace(g: Graph, node: Node, new: Value) -> None:
    """Point every reader of ``node``'s (first) result at ``new`` and drop ``node``."""
    node.outputs[0].replace_all_uses_with(new)
    if not any(v.uses or any(v is o for o in g.outputs) for v in node.outputs):
        g.erase_node(node)


def before(g: Graph, node: Node, name: str, *inputs, **attrs) -> Value:
    return g.add_node(name, list(inputs), attrs, before=node).outputs[0]


def const_data(v: Value | None):
    """The array of a constant value, else None."""
    return None if v is None or not v.const else v.data


def graph(name: str, **inputs) -> tuple[Graph, dict[str, Value]]:
    """A graph with inputs ``name=(dtype, *shape)``."""
    g = Graph(name)
    return g, {k: g.add_input(k, tensor(spec[0], *spec[1:])) for k, spec in inputs.items()}


__all__ = ["const", "op", "replace", "before", "const_data", "graph"]
