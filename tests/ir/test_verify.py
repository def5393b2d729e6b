"""The verifier catches each broken invariant and names the offending node."""

from __future__ import annotations

import numpy as np
import pytest

from ridgeline.ir import Builder, Graph, UnsupportedOpError, VerifyError, tensor
from ridgeline.ir.graph import Node, Value


def base():
    g = Graph("g")
    x = g.add_input("x", tensor("f32", 2, 3))
    w = g.add_constant("w", np.ones((3, 4), np.float32))
    y = Builder(g).MatMul(x, w, _names=["y"])
    g.outputs = [y]
    return g, x, w, y


def test_wrong_declared_type_names_node():
    g, x, w, y = base()
    y.type = tensor("f32", 2, 5)
    with pytest.raises(VerifyError, match=r"MatMul node %y.*declared f32\[2, 5\].*infers f32\[2, 4\]"):
        g.verify()


def test_shape_mismatch_is_refused_when_building():
    g, x, w, y = base()
    with pytest.raises(VerifyError, match="contraction dims differ"):
        Builder(g).MatMul(x, x)


def test_dtype_constraint():
    g, x, w, y = base()
    i = g.add_input("i", tensor("i64", 2, 3))
    with pytest.raises(VerifyError, match="other T inputs"):
        Builder(g).Add(x, i)


def test_dangling_use_detected():
    g, x, w, y = base()
    ghost = Node("Relu", [y], [])
    y.uses.append((ghost, 0))
    with pytest.raises(VerifyError, match="dangling use"):
        g.verify()


def test_foreign_value_detected():
    g, x, w, y = base()
    other = Value("z", tensor("f32", 2, 3))
    y.producer.inputs[0] = other
    with pytest.raises(VerifyError, match="not a value of this graph"):
        g.verify()


def test_missing_required_attribute():
    g, x, w, y = base()
    node = g.add_node("Concat", [y, y], {"axis": 0})
    node.attrs = {}
    g.outputs = [node.outputs[0]]
    with pytest.raises(VerifyError, match="required attribute 'axis'"):
        g.verify()


def test_unsupported_op_in_graph():
    g, x, w, y = base()
    y.producer.op = "Conv3DTranspose"
    with pytest.raises(UnsupportedOpError, match="Conv3DTranspose"):
        g.verify()


def test_output_not_defined():
    g, x, w, y = base()
    g.outputs = [Value("nowhere", tensor("f32", 1))]
    with pytest.raises(VerifyError, match="not defined"):
        g.verify()


def test_body_type_mismatch():
    g, x, w, y = base()
    body = Graph("b")
    p = body.add_input("p", tensor("f32", 2, 4))
    body.outputs = [Builder(body).Relu(p)]
    f = g.add_node("Fused", [y], body=body)
    g.outputs = [f.outputs[0]]
    g.verify()
    body.inputs[0].type = tensor("f32", 9, 9)
    with pytest.raises(VerifyError, match="body input 0"):
        g.verify()
