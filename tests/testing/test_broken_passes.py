"""Deliberately broken passes: check_pass must catch each one under the CI profile, and shrink the
failure to a graph of a handful of nodes.

Each bug is one a real pass could have: an attention fusion that loses the scale, a CSE that
ignores attributes, a dead-code pass that bypasses nodes still read, a "no-op" rewrite of a
Transpose into a Reshape (which swaps dims unless the moved dims are 1), constant folding in too
low a precision, a pass that writes into the constants it shares with the caller.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import settings

from ridgeline.ir import Graph
from ridgeline.passes import PassResult
from ridgeline.passes.base import PassContext
from ridgeline.passes.transforms.cse import CommonSubexpressionElimination
from ridgeline.testing import PassCheckError, check_pass
from ridgeline.testing import strategies as rs

sys.path.insert(0, str(Path(__file__).parent))
from mutants.attention import attention_scale_dropped as fuse_attention_dropping_scale
from mutants.classic import dce_bypasses_used_nodes as dce_bypassing_used_nodes
from mutants.classic import transpose_as_reshape
from mutants.folding import fold_constants_bf16 as fold_constants_in_bf16
from mutants.folding import scale_weights_in_place


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


CASES = [
    # (broken pass, graphs, failure kind, most nodes in the shrunk graph)
    # the attention recipe draws the Q projection, its split and the head reshape as one step, so
    # a shrunk failure can keep them (7 nodes) once fuse-attention matches a Q made that way
    (fuse_attention_dropping_scale, rs.attention_blocks, "mismatch", 7),
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
        # a budget far above what shrinking takes on a quiet machine: the shrunk size must not
        # depend on the machine's load (at load 14 a 60 s budget stopped one at 20 nodes)
        check_pass(broken, graphs=graphs(), repro_dir=tmp_path, shrink_seconds=600)
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
