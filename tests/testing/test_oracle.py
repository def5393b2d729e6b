"""The error oracle (ridgeline.testing.compare): a rewrite is judged per element against the
original graph evaluated in float64, never against magnitudes elsewhere in the graph."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ridgeline.ir import Graph, tensor
from ridgeline.testing import PassCheckError, check_graph
from ridgeline.testing.compare import compare_outputs, reference_run

FILLS = [-1e4, float(np.finfo(np.float32).min), -math.inf]


def _masked_attention(fill: float, q: int, k: int, seed: int) -> tuple[Graph, dict]:
    """softmax(S + mask)·V with a causal mask (q ≤ k: every row sees a key) filled with ``fill``."""
    g = Graph("masked")
    s = g.add_input("s", tensor("f32", 2, q, k))
    v = g.add_input("v", tensor("f32", 2, k, 3))
    allowed = np.arange(k)[None, :] <= np.arange(q)[:, None] + (k - q)
    mask = g.add_constant("mask", np.where(allowed, 0.0, fill).astype(np.float32))
    p = g.add_node("Softmax", [g.add_node("Add", [s, mask]).outputs[0]], {"axis": -1}).outputs[0]
    g.outputs = [g.add_node("MatMul", [p, v]).outputs[0]]
    rng = np.random.default_rng(seed)
    return g, {"s": rng.uniform(-3, 3, (2, q, k)).astype(np.float32), "v": rng.uniform(-1, 1, (2, k, 3)).astype(np.float32)}


def _add_after(op: str, delta: float):
    """A broken rewrite: adds ``delta`` to the result of the first ``op``."""
    def broken(g: Graph) -> bool:
        for n in list(g):
            if n.op == op:
                y = n.outputs[0]
                c = g.add_constant(None, np.asarray(delta, dtype=y.type.dtype.np_dtype))
                bumped = g.add_node("Add", [y, c], after=n).outputs[0]
                for user, i in list(y.uses):
                    if user is not bumped.producer:
                        user.set_input(i, bumped)
                g.outputs = [bumped if o is y else o for o in g.outputs]
                return True
        return False
    return broken


@pytest.mark.parametrize("fill", FILLS, ids=["-1e4", "finfo.min", "-inf"])
@given(q=st.integers(1, 4), extra=st.integers(0, 3), seed=st.integers(0, 2 ** 16))
def test_an_error_behind_a_mask_is_flagged_whatever_the_fill(fill, q, extra, seed):
    g, inputs = _masked_attention(fill, q, q + extra, seed)
    for op in ("Softmax", "MatMul"):
        with pytest.raises(PassCheckError, match="differ"):
            check_graph(_add_after(op, 1e-3), g, inputs)
    check_graph(lambda g: None, g, inputs)  # and the unchanged graph passes


def _gelu(erf: bool) -> tuple[Graph, dict]:
    g = Graph("gelu")
    x = g.add_input("x", tensor("f32", 64))

    def c(v):
        return g.add_constant(None, np.asarray(v, dtype=np.float32))

    def op(name, *ins):
        return g.add_node(name, list(ins)).outputs[0]
    if erf:
        inner = op("Add", op("Erf", op("Mul", x, c(1 / math.sqrt(2)))), c(1.0))
    else:
        cube = op("Mul", op("Mul", x, x), x)
        t = op("Mul", op("Add", x, op("Mul", cube, c(0.044715))), c(math.sqrt(2 / math.pi)))
        inner = op("Add", op("Tanh", t), c(1.0))
    g.outputs = [op("Mul", op("Mul", x, c(0.5)), inner)]
    return g, {"x": np.linspace(-5, 5, 64, dtype=np.float32)}


def test_gelu_tanh_for_erf_is_flagged_in_f32():
    erf, inputs = _gelu(True)
    tanh, _ = _gelu(False)
    with pytest.raises(PassCheckError, match="differ"):
        check_graph(lambda g: tanh.copy(), erf, inputs)
    with pytest.raises(PassCheckError, match="differ"):
        check_graph(lambda g: erf.copy(), tanh, inputs)


@given(st.lists(st.floats(-1e4, 1e4, width=32), min_size=3, max_size=3), st.sampled_from(["f32", "f16", "f64"]),
       st.integers(0, 2 ** 16))
def test_reassociation_is_not_flagged(scales, dt, seed):
    """(a + b) + c → a + (b + c), and a·b + a·c → a·(b + c): legitimate, whatever the magnitudes."""
    g = Graph("sum")
    a, b, c = (g.add_input(n, tensor(dt, 8)) for n in "abc")
    g.outputs = [g.add_node("Add", [g.add_node("Add", [a, b]).outputs[0], c]).outputs[0],
                 g.add_node("Add", [g.add_node("Mul", [a, b]).outputs[0],
                                    g.add_node("Mul", [a, c]).outputs[0]]).outputs[0]]

    def reassociate(g: Graph) -> Graph:
        h = Graph("sum")
        x, y, z = (h.add_input(n, v.type) for n, v in zip("abc", g.inputs))
        h.outputs = [h.add_node("Add", [x, h.add_node("Add", [y, z]).outputs[0]]).outputs[0],
                     h.add_node("Mul", [x, h.add_node("Add", [y, z]).outputs[0]]).outputs[0]]
        return h
    rng = np.random.default_rng(seed)
    npd = {"f32": np.float32, "f16": np.float16, "f64": np.float64}[dt]
    lim = 30.0 if dt == "f16" else 1e4  # a·b stays finite in f16
    inputs = {n: (rng.uniform(-1, 1, 8) * min(abs(s), lim)).astype(npd) for n, s in zip("abc", scales)}
    check_graph(reassociate, g, inputs)


def test_non_finite_values_must_match_in_kind():
    g = Graph("log")
    x = g.add_input("x", tensor("f32", 4))
    g.outputs = [g.add_node("Log", [x]).outputs[0]]
    inputs = {"x": np.array([0.0, 1.0, 2.0, 3.0], np.float32)}   # log 0 = -inf

    def to_nan(g: Graph) -> bool:
        g.nodes[0].op = "Sqrt"  # finite where Log was -inf: a different kind
        return True
    with pytest.raises(PassCheckError, match="kind"):
        check_graph(to_nan, g, inputs)


def test_a_fully_masked_row_may_take_any_value():
    """Softmax of an all -inf row is NaN (ONNX), an Attention op gives zeros: both are right."""
    g, inputs = _masked_attention(-math.inf, 3, 3, 0)
    m = g.constants["mask"]
    data = m.data.copy()
    data[0, :] = -np.inf
    m.data = data
    ref = reference_run(g, inputs)
    assert np.isnan(ref.outputs[0][:, 0]).all() and ref.arbitrary[0][:, 0].all()
    zeros = ref.outputs[0].copy()
    zeros[:, 0] = 0.0
    assert compare_outputs(ref, [zeros]) == []
    zeros[:, 1] += 1e-3  # a row that sees keys is still judged
    assert compare_outputs(ref, [zeros])
