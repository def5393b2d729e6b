"""Graph outputs are uses (of the ``return`` sentinel): liveness is ``bool(value.uses)``.

Checked on generated graphs: the use lists always equal a recount from the node inputs plus the
output list, through random edits (replacing values, reassigning and dropping outputs, copying,
removing dead inputs), and the verifier accepts the result.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ridgeline.ir import Graph, IRError, parse_graph
from ridgeline.ir.graph import RETURN
from ridgeline.testing.check import prune
from ridgeline.testing.strategies import graphs, unfused


def recount(g: Graph) -> dict[int, list[tuple[int, int]]]:
    """Every value's uses, recomputed from scratch: (id of reader, slot), sentinel included."""
    uses: dict[int, list[tuple[int, int]]] = {id(v): [] for v in g.values()}
    for n in g:
        for i, v in enumerate(n.inputs):
            if v is not None:
                uses[id(v)].append((id(n), i))
    for k, v in enumerate(g.outputs):
        uses[id(v)].append((id(g.output_node), k))
    return uses


def assert_exact(g: Graph) -> None:
    want = recount(g)
    for v in g.values():
        assert sorted((id(u), i) for u, i in v.uses) == sorted(want[id(v)]), v
        assert v.is_output == any(o is v for o in g.outputs)
    g.verify()


@settings(max_examples=20, deadline=None)
@given(g=st.one_of(graphs(), unfused()), data=st.data())
def test_uses_stay_exact_through_edits(g, data):
    assert_exact(g)
    values = [v for v in g.values() if v.producer is not None]
    outs = g.outputs
    # reassign the outputs: a subset, reordered, possibly repeated
    picked = data.draw(st.lists(st.sampled_from(outs), min_size=1, max_size=len(outs) + 1))
    g.outputs = picked
    assert_exact(g)
    # point one value's readers (and output slots) at another value of the same type
    for v in values:
        same = [w for w in values if w is not v and w.type == v.type
                and (w.producer is None or _before(w.producer, v))]
        if same and data.draw(st.booleans()):
            v.replace_all_uses_with(same[0])
            assert not v.uses and not v.is_output
            break
    assert_exact(g)
    c = g.copy()
    assert_exact(c)
    assert [v.name for v in c.outputs] == [v.name for v in g.outputs]
    prune(c)
    assert_exact(c)
    assert all(v.uses for v in c.inputs) and all(v.uses for n in c for v in n.outputs[:1] if len(n.outputs) == 1)


def _before(a, b) -> bool:
    n = a
    while n is not None:
        if n is b:
            return True
        n = n._next
    return False


def test_erasing_a_node_read_by_the_outputs_is_refused():
    g = parse_graph("""
graph @g(%x: f32[4]) -> (%y: f32[4]) {
  %y = Relu(%x) : f32[4]
  return %y
}
""")
    (relu,) = g.nodes
    with pytest.raises(IRError, match="still used by graph output"):
        g.erase_node(relu)
    assert g.output_node.op == RETURN and g.output_node.is_return and not relu.is_return


def test_remove_input():
    g = parse_graph("""
graph @g(%x: f32[4], %unused: f32[2]) -> (%y: f32[4]) {
  %y = Relu(%x) : f32[4]
  return %y
}
""")
    x, unused = g.inputs
    with pytest.raises(IRError, match="still used by Relu"):
        g.remove_input(x)
    g.remove_input(unused)
    assert g.inputs == [x] and not g.has_value("unused")
    with pytest.raises(IRError, match="not an input"):
        g.remove_input(unused)
    g.verify()
