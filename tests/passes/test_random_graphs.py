"""Random graphs through the passes: whatever the passes do, the numpy reference must agree.

A small generator (the testing issue's strategies will cover every op) builds DAGs from the
idioms the passes look for — elementwise chains and broadcast trees, view and transpose chains,
no-op casts, matmuls with bias and activation, decomposed GELU and LayerNorm, duplicated
sub-expressions — mixed at random, so rewrites meet each other in orders nobody wrote by hand.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from passes.golden import assert_same_outputs
from ridgeline.api import reference_evaluator
from ridgeline.ir import Builder, Graph, tensor
from ridgeline.passes import run_pipeline

SHAPE = (2, 3, 4)


def _const(b: Builder, value, dtype=np.float32):
    return b.constant(np.asarray(value, dtype=dtype))


def _step(data, b: Builder, pool: list, rng: np.random.Generator):
    x = data.draw(st.sampled_from(pool), label="operand")
    kind = data.draw(st.sampled_from([
        "unary", "binary", "bias", "scalar", "transpose2", "reshape2", "cast", "identity", "linear", "gelu",
        "layernorm", "duplicate", "softmax"]), label="kind")
    if kind == "unary":
        op = data.draw(st.sampled_from(["Relu", "Tanh", "Neg", "Sigmoid", "Abs", "Erf"]))
        return b.op(op, x)
    if kind == "binary":
        y = data.draw(st.sampled_from(pool))
        op = data.draw(st.sampled_from(["Add", "Mul", "Sub", "Max", "Min"]))
        return b.op(op, x, y)
    if kind == "bias":
        return b.Add(x, b.constant(rng.standard_normal(SHAPE[-1]).astype(np.float32)))
    if kind == "scalar":
        op = data.draw(st.sampled_from(["Mul", "Add", "Div", "Sub"]))
        c = data.draw(st.sampled_from([1.0, 0.0, 0.5, 2.0])) if op != "Div" else data.draw(st.sampled_from([1.0, 2.0]))
        return b.op(op, x, _const(b, c))
    if kind == "transpose2":
        p1 = data.draw(st.permutations([0, 1, 2]))
        inv = [p1.index(i) for i in range(3)]
        return b.Transpose(b.Transpose(x, perm=list(p1)), perm=inv)
    if kind == "reshape2":
        return b.Reshape(b.Reshape(x, _const(b, [6, 4], np.int64)), _const(b, list(SHAPE), np.int64))
    if kind == "cast":
        return b.Cast(x, to="f32")
    if kind == "identity":
        return b.Identity(x)
    if kind == "linear":
        w = b.constant((rng.standard_normal((4, 4)) / 2).astype(np.float32))
        h = b.Add(b.MatMul(x, w), b.constant(rng.standard_normal(4).astype(np.float32)))
        return b.Relu(h) if data.draw(st.booleans()) else h
    if kind == "gelu":
        inner = b.Add(b.Erf(b.Div(x, _const(b, math.sqrt(2.0)))), _const(b, 1.0))
        return b.Mul(b.Mul(x, inner), _const(b, 0.5))
    if kind == "layernorm":
        axes = _const(b, [-1], np.int64)
        d = b.Sub(x, b.ReduceMean(x, axes))
        var = b.ReduceMean(b.Mul(d, d), axes)
        return b.Div(d, b.Sqrt(b.Add(var, _const(b, 1e-5))))
    if kind == "duplicate":
        return b.Add(b.Tanh(x), b.Tanh(x))
    q = b.MatMul(x, b.Transpose(x, perm=[0, 2, 1]))       # softmax(x·xᵀ)·x: rank-3 attention-like
    return b.MatMul(b.Softmax(b.Mul(q, _const(b, 0.5)), axis=-1), x)


@st.composite
def graphs(draw):
    seed = draw(st.integers(0, 2 ** 16))
    rng = np.random.default_rng(seed)
    g = Graph("random")
    pool = [g.add_input("x", tensor("f32", *SHAPE)), g.add_input("y", tensor("f32", *SHAPE))]
    b = Builder(g)
    for _ in range(draw(st.integers(1, 8))):
        pool.append(_step(_Data(draw), b, pool, rng))
    outs = draw(st.lists(st.sampled_from(pool[2:] or pool), min_size=1, max_size=2, unique_by=id))
    g.outputs = list(outs)
    return g


class _Data:
    """Adapts ``draw`` to the ``data.draw(strategy, label=...)`` calls of ``_step``."""

    def __init__(self, draw):
        self._draw = draw

    def draw(self, strategy, label=None):
        return self._draw(strategy)


@pytest.mark.parametrize("pipeline", ["default", "canonicalize,cse,dce", "fuse-elementwise{max-nodes=3},dce",
                                      "fuse-gelu,fuse-layernorm,fuse-matmul-epilogue,fuse-elementwise,dce"])
@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(g=graphs())
def test_random_graphs_keep_their_meaning(pipeline, g):
    g.verify()
    opt = g.copy()
    run_pipeline(opt, pipeline, evaluator=reference_evaluator())  # verify-each is on in tests
    assert [v.name for v in opt.outputs] == [v.name for v in g.outputs]
    assert_same_outputs(g, opt, rtol=1e-4, atol=1e-5)
    again = run_pipeline(opt, pipeline, evaluator=reference_evaluator())
    if pipeline == "default":
        assert not again.modified, [r.pass_text for r in again.records if r.modified]
