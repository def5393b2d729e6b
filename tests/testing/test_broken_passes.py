"""Deliberately broken passes: check_pass must catch each one under the CI profile, and shrink the
failure to a graph of a handful of nodes.

Each bug is one a real pass could have: an attention fusion that loses the scale, a CSE that
ignores attributes, a dead-code pass that bypasses nodes still read, a "no-op" rewrite of a
Transpose into a Reshape (which swaps dims unless the moved dims are 1), constant folding in too
low a precision, a pass that writes into the constants it shares with the caller.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from hypothesis import settings

from ridgeline.ir import Graph
from ridgeline.passes import PassResult, get_pass
from ridgeline.passes.base import PassContext
from ridgeline.passes.transforms.cse import CommonSubexpressionElimination
from ridgeline.testing import PassCheckError, check_pass
from ridgeline.testing import strategies as rs


def fuse_attention_dropping_scale(g: Graph) -> PassResult:
    """fuse-attention, then the scale attribute forgotten (the op falls back to 1/√d)."""
    result = get_pass("fuse-attention")()(g)
    for n in g:
        if n.op == "Attention" and "scale" in n.attrs:
            n.attrs = {k: v for k, v in n.attrs.items() if k != "scale"}
    return result


class CSEIgnoringAttributes(CommonSubexpressionElimination):
    """CSE whose key forgets attributes: Softmax(x, axis=0) and Softmax(x, axis=-1) merge."""

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        from ridgeline.passes.transforms import cse
        original = cse._node_key
        cse._node_key = lambda n: (n.op, tuple(id(v) for v in n.inputs), len(n.outputs))
        try:
            return super().run(graph, ctx)
        finally:
            cse._node_key = original


def dce_bypassing_used_nodes(g: Graph) -> bool:
    """A dead-code pass that takes any same-typed unary node read once for a leftover copy
    and removes it, wiring its reader to its input."""
    changed = False
    outputs = {id(v) for v in g.outputs}
    for n in list(g):
        if len(n.inputs) == 1 and len(n.outputs) == 1 and n.inputs[0] is not None:
            x, y = n.inputs[0], n.outputs[0]
            if x.type == y.type and len(y.uses) == 1 and id(y) not in outputs:
                y.replace_all_uses_with(x)
                g.erase_node(n)
                changed = True
    return changed


def transpose_as_reshape(g: Graph) -> bool:
    """Rewrites Transpose(x) into Reshape(x, shape of the result): the same shape, and the same
    data only when the permuted dims are 1."""
    changed = False
    for n in list(g):
        if n.op == "Transpose" and n.outputs[0].type.is_static:
            shape = g.add_constant(None, np.array(n.outputs[0].type.shape, dtype=np.int64))
            r = g.add_node("Reshape", [n.inputs[0], shape], before=n)
            n.outputs[0].replace_all_uses_with(r.outputs[0])
            g.erase_node(n)
            changed = True
    return changed


def fold_constants_in_bf16(g: Graph) -> PassResult:
    """fold-constants whose evaluator computes in bfloat16 and casts back."""
    from ridgeline.api import reference_evaluator
    ev = reference_evaluator()

    def low(node, arrays):
        cast = [a.astype(ml_dtypes.bfloat16) if a is not None and a.dtype == np.float32 else a for a in arrays]
        try:
            out = ev(node, cast)
        except Exception:
            out = ev(node, arrays)
        return [np.asarray(o).astype(v.type.dtype.np_dtype) for o, v in zip(out, node.outputs)]
    return get_pass("fold-constants")()(g, PassContext(evaluator=low))


def scale_weights_in_place(g: Graph) -> bool:
    """Folds x·2 into constants by writing into their arrays — shared with the caller's graph."""
    changed = False
    for c in list(g.constants.values()):
        if c.data is not None and c.data.dtype == np.float32 and c.data.flags.owndata and c.data.size > 1:
            c.data.setflags(write=True)
            c.data *= 1.0 + 2 ** -10
            changed = True
    return changed


CASES = [
    # (broken pass, graphs, failure kind, most nodes in the shrunk graph)
    (fuse_attention_dropping_scale, rs.attention_blocks, "mismatch", 6),
    (CSEIgnoringAttributes, lambda: rs.duplicate_idioms(max_nodes=8), "mismatch|interface", 4),
    (dce_bypassing_used_nodes, lambda: rs.graphs(ops=["Relu", "Neg", "Add", "Tanh", "Exp"], max_nodes=10),
     "mismatch", 3),
    (transpose_as_reshape, lambda: rs.graphs(ops=["Transpose", "Relu", "Add"], max_nodes=5), "mismatch", 2),
    (fold_constants_in_bf16, lambda: rs.folding_idioms(max_nodes=8), "mismatch", 5),
    (scale_weights_in_place, lambda: rs.graphs(ops=["MatMul", "Add", "Relu"]), "mutated-constant", 2),
]


@pytest.mark.parametrize("broken, graphs, kind, most", CASES, ids=[c[0].__name__ for c in CASES])
def test_check_pass_catches_and_shrinks(broken, graphs, kind, most, tmp_path):
    assert settings.default.derandomize  # the CI profile: the same graphs on every run
    with pytest.raises(PassCheckError) as e:
        check_pass(broken, graphs=graphs(), repro_dir=tmp_path)
    f = e.value.failure
    assert f.kind in kind.split("|"), e.value
    assert len(f.graph) <= most, f"shrunk to {len(f.graph)} nodes:\n{e.value}"
    assert f.repro is not None and f.repro.rir.exists()


def test_the_correct_passes_pass_the_same_graphs():
    """The broken passes' correct counterparts, on the same strategies, find nothing."""
    check_pass("fuse-attention", graphs=rs.attention_blocks())
    check_pass("cse", graphs=rs.duplicate_idioms())
    check_pass("dce", graphs=rs.graphs(ops=["Relu", "Neg", "Add", "Tanh", "Exp"], max_nodes=10))
    check_pass("fold-constants", graphs=rs.folding_idioms())
