"""``fold-constants``: replace what is computable at compile time by constants.

Two sources of compile-time values:

1. **Symbolic values from the op specs.** ``Shape`` publishes ``[batch, seq, 768]`` and the
   Gather/Concat/Unsqueeze/Slice/arithmetic specs carry such values along, so once the dims are
   bound (``--dim batch=1 --dim seq=128``) every shape-computation chain of an exported model
   resolves to integers and becomes a constant — no evaluator needed.
2. **The evaluator** (see ``ridgeline.passes.evaluate``) for any other node whose inputs are all
   constants with data: ``Transpose(W)``, the ``Range``/``LessOrEqual`` causal mask, ``Sqrt`` of
   a scale. Results larger than ``size-limit`` elements that would also be larger than their
   inputs are left alone (folding a broadcast would bloat the model).
"""

from __future__ import annotations

import numpy as np

from ...ir import Graph, Node, Value
from ...ir.errors import RidgelineError
from ...ir.infer import infer_node_symbolic
from ..base import Pass, PassContext, PassResult
from ..registry import register_pass

__all__ = ["FoldConstants"]

#: symbolic values are tracked for small integer tensors only (the specs' own limit)
_SYM_LIMIT = 64
_SHAPE_SOURCES = frozenset({"Shape", "Size"})


def _small_int(v: Value) -> bool:
    t = v.type
    return (t.dtype.is_integer or t.dtype.name == "bool") and t.is_static and t.numel <= _SYM_LIMIT


def _int_value(sym: np.ndarray) -> bool:
    return all(isinstance(x, (int, np.integer)) for x in sym.flat)


@register_pass("fold-constants")
class FoldConstants(Pass):
    """Fold shape computations and constant sub-graphs into constants."""

    #: largest folded result (elements) allowed to exceed the size of its inputs
    size_limit: int = 1 << 20

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        syms: dict[int, np.ndarray] = {}
        outputs = {id(v) for v in graph.outputs}
        symbolic = evaluated = skipped_big = no_evaluator = failed = 0
        for node in graph.nodes:
            if any(id(v) in outputs for v in node.outputs):
                continue
            if self._fold_symbolic(graph, node, syms):
                symbolic += 1
                continue
            if not node.inputs or not all(v is None or (v.const and v.data is not None) for v in node.inputs):
                continue
            if ctx.evaluator is None:
                no_evaluator += 1
                continue
            out_size = sum(_numel(v) for v in node.outputs)
            in_size = sum(v.data.size for v in node.inputs if v is not None)
            if out_size > self.size_limit and out_size > in_size:
                skipped_big += 1
                continue
            try:
                results = list(ctx.evaluator(node, [v.data if v is not None else None for v in node.inputs]))
            except (RidgelineError, ArithmeticError, ValueError, TypeError, IndexError) as e:
                ctx.log.debug("not folding %s: %s", node.op, e)
                failed += 1
                continue
            self._replace(graph, node, results)
            evaluated += 1
        if no_evaluator:
            ctx.note(f"fold-constants: {no_evaluator} node(s) with constant inputs left unevaluated (no evaluator; "
                     f"ridgeline.optimize and the CLI provide the numpy reference)")
        if skipped_big:
            ctx.note(f"fold-constants: {skipped_big} node(s) not folded: result above size-limit={self.size_limit}")
        if failed:
            ctx.note(f"fold-constants: {failed} node(s) could not be evaluated (see -v)")
        stats = {"symbolic": symbolic, "evaluated": evaluated}
        return PassResult(graph, bool(symbolic or evaluated), stats=stats)

    def _fold_symbolic(self, graph: Graph, node: Node, syms: dict[int, np.ndarray]) -> bool:
        if not node.outputs or not all(_small_int(v) for v in node.outputs):
            return False
        if node.op not in _SHAPE_SOURCES and not any(
                v is not None and (id(v) in syms or (v.const and v.data is not None)) for v in node.inputs):
            return False
        try:
            infer_node_symbolic(node, syms)
        except RidgelineError:
            return False
        values = [syms.get(id(v)) for v in node.outputs]
        if any(s is None or not _int_value(s) for s in values):
            return False
        arrays = [np.asarray(s.astype(np.int64)).astype(v.type.dtype.np_dtype).reshape(v.type.shape)
                  for s, v in zip(values, node.outputs)]
        self._replace(graph, node, arrays)
        return True

    @staticmethod
    def _replace(graph: Graph, node: Node, arrays: list[np.ndarray]) -> None:
        names = []
        for v, a in zip(node.outputs, arrays):
            a = np.asarray(a)
            if a.dtype != v.type.dtype.np_dtype:
                a = a.astype(v.type.dtype.np_dtype)
            c = graph.add_constant(v.name + "_folded", a.reshape(tuple(int(d) for d in v.type.shape))
                                   if v.type.is_static else a)
            v.replace_all_uses_with(c)
            names.append((c, v.name))
        graph.erase_node(node)
        for c, name in names:
            if not graph.has_value(name):
                c.name = name


def _numel(v: Value) -> int:
    n = v.type.numel
    return n if isinstance(n, int) else 1 << 62
