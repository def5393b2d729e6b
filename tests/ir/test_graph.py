"""Graph editing keeps use-def exact; copy, bind and networkx views behave."""

from __future__ import annotations

import numpy as np
import pytest

from ridgeline.ir import Builder, Graph, IRError, VerifyError, tensor


def small_graph():
    g = Graph("g")
    x = g.add_input("x", tensor("f32", "batch", 8))
    w = g.add_constant("w", np.ones((8, 8), np.float32))
    b = Builder(g)
    y = b.MatMul(x, w)
    z = b.Relu(y)
    u = b.Add(z, y)
    g.outputs = [u]
    g.verify()
    return g, x, w, y, z, u


def test_uses_track_every_edge():
    g, x, w, y, z, u = small_graph()
    assert [n.op for n, _ in y.uses] == ["Relu", "Add"]
    assert y.users == [z.producer, u.producer]
    assert w.uses == [(y.producer, 1)]


def test_replace_all_uses_and_erase():
    g, x, w, y, z, u = small_graph()
    z.replace_all_uses_with(y)          # drop the Relu
    assert z.uses == []
    g.erase_node(z.producer)
    g.verify()
    assert [n.op for n in g] == ["MatMul", "Add"]
    assert u.producer.inputs == [y, y]
    assert sorted(i for _, i in y.uses) == [0, 1] and all(n is u.producer for n, _ in y.uses)


def test_erasing_a_used_node_is_refused():
    g, x, w, y, z, u = small_graph()
    with pytest.raises(IRError, match="still used"):
        g.erase_node(y.producer)


def test_insert_before_keeps_order_valid():
    g, x, w, y, z, u = small_graph()
    b = Builder(g, before=u.producer)
    t = b.Tanh(z)
    u.producer.set_input(1, t)
    g.verify()
    assert [n.op for n in g] == ["MatMul", "Relu", "Tanh", "Add"]


def test_out_of_order_insert_is_caught_and_sortable():
    g, x, w, y, z, u = small_graph()
    t = Builder(g).Tanh(y)          # appended at the end
    z.producer.set_input(0, t)      # ... but now read by an earlier node
    with pytest.raises(VerifyError, match="before it is defined"):
        g.verify()
    g.topological_sort()
    g.verify()


def test_cycle_is_named():
    g, x, w, y, z, u = small_graph()
    y.producer.set_input(0, z)      # MatMul reads Relu, which reads MatMul
    with pytest.raises(VerifyError, match="cycle"):
        g.verify()


def test_copy_is_independent():
    g, *_ = small_graph()
    h = g.copy()
    assert str(h) == str(g)
    n = h.nodes[1]
    n.outputs[0].replace_all_uses_with(h.nodes[0].outputs[0])
    h.erase_node(n)
    h.verify()
    g.verify()
    assert len(g) == 3 and len(h) == 2


def test_bind_specializes_types():
    g, *_ = small_graph()
    b = g.bind(batch=4)
    assert all(v.type.is_static for v in b.values())
    assert str(b.outputs[0].type) == "f32[4, 8]"
    assert g.symbols() == {"batch"}          # the original is untouched
    with pytest.raises(IRError, match="cannot bind seq"):
        g.bind(seq=3)


def test_weightless_constant_costs_no_memory():
    g = Graph("big")
    w = g.add_constant("w", type=tensor("bf16", 16384, 16384))
    x = g.add_input("x", tensor("bf16", 1, 16384))
    g.outputs = [Builder(g).MatMul(x, w)]
    g.verify()
    assert w.data is None and w.type.nbytes == 16384 * 16384 * 2


def test_networkx_view():
    import networkx as nx
    g, *_ = small_graph()
    ng = g.to_networkx()
    assert nx.is_directed_acyclic_graph(ng)
    assert [n.op for n in nx.topological_sort(ng)] == ["MatMul", "Relu", "Add"]


def test_symbolic_reshape_resolves_through_shape_chain():
    # Shape -> Gather -> Concat -> Reshape: the exported-model idiom
    g = Graph("chain")
    x = g.add_input("x", tensor("f32", "batch", "seq", 64))
    b = Builder(g)
    shp = b.Shape(x)
    idx0 = g.add_constant("i0", np.array(0, np.int64))
    idx1 = g.add_constant("i1", np.array(1, np.int64))
    bdim = b.Unsqueeze(b.Gather(shp, idx0), g.add_constant("ax", np.array([0], np.int64)))
    sdim = b.Unsqueeze(b.Gather(shp, idx1), g.add_constant("ax1", np.array([0], np.int64)))
    rest = g.add_constant("rest", np.array([4, 16], np.int64))
    target = b.Concat(bdim, sdim, rest, axis=0)
    r = b.Reshape(x, target)
    g.outputs = [r]
    from ridgeline.ir import refine_types
    refine_types(g)
    g.verify()
    assert str(r.type) == "f32[batch, seq, 4, 16]"
    assert str(g.bind(batch=2, seq=5).outputs[0].type) == "f32[2, 5, 4, 16]"


def _tiled(name: str) -> Graph:
    """x tiled by a graph input: every output dim is unknown (a fresh ``_u`` name)."""
    g = Graph(name)
    x = g.add_input("x", tensor("f32", "batch", 8))
    reps = g.add_input("reps", tensor("i64", 2))
    y = Builder(g).Tile(x, reps)
    g.outputs = [y]
    return g


def test_unknown_dims_are_numbered_per_graph():
    from ridgeline.ir.printer import print_graph
    first = print_graph(_tiled("a"))
    for _ in range(3):
        _tiled("other")  # what ran before does not renumber the next graph
    assert print_graph(_tiled("a")) == first
    assert _tiled("a").outputs[0].type.shape == ("_u0", "_u1")


def test_unknown_dims_skip_names_the_graph_already_holds():
    g = Graph("g")
    g.add_input("x", tensor("f32", "_u0", "_u2"))
    assert [g.unknown_dim() for _ in range(3)] == ["_u1", "_u3", "_u4"]
    assert g.unknown_dim("i") == "_ui5"


def test_imported_unknown_dims_do_not_depend_on_earlier_imports():
    import onnx
    from onnx import TensorProto, helper

    from ridgeline.frontends.onnx import load_onnx
    from ridgeline.ir.printer import print_graph

    def model(width: int) -> onnx.ModelProto:
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, width])  # a dim with no name
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
        g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "m", [x], [y])
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])

    first = print_graph(load_onnx(model(4)))
    load_onnx(model(3))
    assert print_graph(load_onnx(model(4))) == first
    assert "_ui0" in first
