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

A weight that other nodes also read is never duplicated: ``Transpose(W)`` of a tied embedding
(``lm_head = embed_tokens.T``) stays a transposed *use* of the one ``W`` — a view for numpy and
torch — instead of a second copy of the largest tensor in the model. Folding a node whose result
is at least as large as a constant input with other users needs ``duplicate-shared=true``.
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
    touches = ("shape-chain", "constant-subgraph", "quantized-weights", "int-arith")  # what check_pass generates for it

    #: largest folded result (elements) allowed to exceed the size of its inputs
    size_limit: int = 1 << 20
    #: fold even when that copies a constant other nodes still read (a tied weight)
    duplicate_shared: bool = False
    #: constants below this many elements may be duplicated (shape tables, scalars: no real bytes)
    _SHARED_MIN = 1024

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        # Phase 1 computes every foldable value in order; phase 2 turns into constants only the
        # values something unfolded still reads (a 10-node shape chain becomes one constant).
        known: dict[int, np.ndarray] = {}       # folded value -> its array
        syms: dict[int, np.ndarray] = {}        # symbolic values (what the specs publish)
        folded: list[Node] = []
        counts = {"symbolic": 0, "evaluated": 0}
        no_evaluator = skipped_big = failed = kept_shared = 0
        for node in graph.nodes:
            if not node.outputs or any(v.is_output for v in node.outputs):
                continue
            arrays = _constant_inputs(node, known)
            if arrays is not None:
                if ctx.evaluator is not None:
                    out_size = sum(_numel(v) for v in node.outputs)
                    if out_size > self.size_limit and out_size > sum(a.size for a in arrays if a is not None):
                        skipped_big += 1
                        continue
                    if not self.duplicate_shared and self._duplicates_shared(node, out_size):
                        kept_shared += 1
                        continue
                    try:
                        results = list(ctx.evaluator(node, arrays))
                    except (RidgelineError, ArithmeticError, ValueError, TypeError, IndexError) as e:
                        ctx.log.debug("not folding %s: %s", node.op, e)
                        failed += 1
                        continue
                    self._record(node, results, known, syms)
                    folded.append(node)
                    counts["evaluated"] += 1
                    continue
                if not all(_small_int(v) for v in node.outputs):
                    no_evaluator += 1
                    continue
            results = self._symbolic(node, syms, known)
            if results is not None:
                self._record(node, results, known, syms)
                folded.append(node)
                counts["symbolic"] += 1
        self._materialize(graph, folded, known)
        if no_evaluator:
            ctx.note(f"fold-constants: {no_evaluator} node(s) with constant inputs left unevaluated (no evaluator; "
                     f"ridgeline.optimize and the CLI provide the numpy reference)")
        if skipped_big:
            ctx.note(f"fold-constants: {skipped_big} node(s) not folded: result above size-limit={self.size_limit}")
        if kept_shared:
            ctx.note(f"fold-constants: {kept_shared} node(s) not folded: each would copy a constant other nodes "
                     f"still read (a tied weight); duplicate-shared=true folds them")
        if failed:
            ctx.note(f"fold-constants: {failed} node(s) could not be evaluated (see -v)")
        return PassResult(graph, bool(folded), stats=counts)

    def _duplicates_shared(self, node: Node, out_size: int) -> bool:
        """Folding ``node`` would store a second tensor as large as a constant input that other
        nodes keep reading (so the input cannot go away)."""
        for v in node.inputs:
            if v is None or not v.const or not isinstance(v.type.numel, int) or v.type.numel < self._SHARED_MIN:
                continue
            if out_size >= v.type.numel and any(u is not node for u in v.users):
                return True
        return False

    @staticmethod
    def _symbolic(node: Node, syms: dict[int, np.ndarray], known: dict[int, np.ndarray]):
        if not all(_small_int(v) for v in node.outputs):
            return None
        if node.op not in _SHAPE_SOURCES and not any(
                v is not None and (id(v) in syms or (v.const and v.data is not None)) for v in node.inputs):
            return None
        try:
            infer_node_symbolic(node, syms)
        except RidgelineError:
            return None
        values = [syms.get(id(v)) for v in node.outputs]
        if any(s is None or not _int_value(s) for s in values):
            return None
        return [np.asarray(s.astype(np.int64)).astype(v.type.dtype.np_dtype).reshape(v.type.shape)
                for s, v in zip(values, node.outputs)]

    @staticmethod
    def _record(node: Node, results: list[np.ndarray], known: dict[int, np.ndarray],
                syms: dict[int, np.ndarray]) -> None:
        for v, a in zip(node.outputs, results):
            a = np.asarray(a)
            if a.dtype != v.type.dtype.np_dtype:
                a = a.astype(v.type.dtype.np_dtype)
            if v.type.is_static:
                a = a.reshape(tuple(int(d) for d in v.type.shape))
            known[id(v)] = a
            if a.dtype.kind in "iub" and a.size <= _SYM_LIMIT:
                syms[id(v)] = a.astype(np.int64).astype(object)

    @staticmethod
    def _materialize(graph: Graph, folded: list[Node], known: dict[int, np.ndarray]) -> None:
        gone = {id(n) for n in folded}
        for node in folded:
            for v in node.outputs:
                if not any(id(u) not in gone for u, _ in v.uses):
                    continue
                name = v.name
                v.name = graph.fresh_name(name + "_folding")  # free the name (renaming a node output is cheap)
                c = graph.add_constant(name, known[id(v)])
                for u, i in list(v.uses):
                    if id(u) not in gone:
                        u.set_input(i, c)
        graph.erase_nodes(folded)  # every remaining use is by another folded node


def _constant_inputs(node: Node, known: dict[int, np.ndarray]) -> list[np.ndarray | None] | None:
    """The node's input arrays if every input is known (a constant with data or a folded value)."""
    if not node.inputs:
        return None
    arrays: list[np.ndarray | None] = []
    for v in node.inputs:
        if v is None:
            arrays.append(None)
            continue
        a = v.data if v.const else known.get(id(v))
        if a is None:
            return None
        arrays.append(a)
    return arrays


def _numel(v: Value) -> int:
    n = v.type.numel
    return n if isinstance(n, int) else 1 << 62
