"""Hardware-independent totals of a graph: parameters, FLOPs, bytes touched, op histogram."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


from ._lazy import is_sympy, sympy
from .graph import Graph

__all__ = ["STRUCTURE_DTYPES", "GraphStats", "summarize"]

#: constants of these dtypes are the graph's structure, not its weights: shapes and indices (i64,
#: ONNX's shape dtype) and masks (bool). fold-constants turns shape arithmetic into such constants
#: (a causal mask once ``seq`` is bound), so counting them made ``-p default`` "add" parameters.
STRUCTURE_DTYPES = frozenset({"i64", "bool"})


@dataclass
class GraphStats:
    nodes: int
    ops: dict[str, int]
    parameters: Any            # elements of weight constants (an int, or symbolic); see STRUCTURE_DTYPES
    parameter_bytes: Any
    weightless: int            # constants that carry only a type
    flops: Any                 # sum of spec FLOPs (sympy expression when dims are unbound)
    bytes_touched: Any         # sum of spec bytes: what unfused kernels would move
    symbols: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        def plain(x):
            return x if isinstance(x, (int, float)) else str(x)
        return {"nodes": self.nodes, "ops": self.ops, "parameters": plain(self.parameters),
                "parameter_bytes": plain(self.parameter_bytes), "weightless_constants": self.weightless,
                "flops": plain(self.flops), "bytes_touched": plain(self.bytes_touched), "symbols": self.symbols}


def _simplify(x):
    if is_sympy(x):
        x = sympy.expand(x)
        return int(x) if x.is_Integer else x
    return int(x) if isinstance(x, float) and x.is_integer() else x


def summarize(graph: Graph) -> GraphStats:
    params: Any = 0
    pbytes: Any = 0
    weightless = 0
    for c in graph.constants.values():
        if c.type.dtype.name in STRUCTURE_DTYPES:
            continue
        n = c.type.numel
        params = params + (n if isinstance(n, int) else sympy.sympify(n))
        if isinstance(n, int):
            pbytes = pbytes + c.type.dtype.nbytes(n)
        if not c.has_data:
            weightless += 1
    flops = [n.spec.flops(n) for n in graph]
    moved = [n.spec.bytes(n) for n in graph]
    return GraphStats(nodes=len(graph), ops=graph.op_histogram(), parameters=_simplify(params),
                      parameter_bytes=_simplify(pbytes), weightless=weightless, flops=_simplify(_total(flops)),
                      bytes_touched=_simplify(_total(moved)), symbols=sorted(graph.symbols()))


def _total(terms: list) -> Any:
    """The sum, symbolic terms added in one sympy ``Add`` (adding them one at a time re-flattens
    the growing sum at every step: quadratic in the number of nodes)."""
    plain = sum(t for t in terms if not is_sympy(t))
    symbolic = [t for t in terms if is_sympy(t)]
    return sympy.Add(plain, *symbolic) if symbolic else plain
