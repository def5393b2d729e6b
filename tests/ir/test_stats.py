"""``summarize``: parameters count the weights, not the shapes, indices and masks folding makes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import ridgeline as rl
from ridgeline.ir import Builder, Graph, tensor
from ridgeline.ir.stats import STRUCTURE_DTYPES, summarize

MODELS = Path(__file__).resolve().parents[1] / "models"


@given(k=st.integers(1, 64), n=st.integers(1, 64), seq=st.integers(1, 32))
def test_parameters_are_the_weights(k, n, seq):
    g = Graph("g")
    x = g.add_input("x", tensor("f32", seq, k))
    w = g.add_constant("w", np.ones((k, n), np.float32))
    shape = g.add_constant("shape", np.array([seq, n], np.int64))
    mask = g.add_constant("mask", np.tril(np.ones((seq, n), bool)))
    b = Builder(g)
    y = b.Reshape(b.MatMul(x, w), shape)
    g.outputs = [b.Where(mask, y, y)]
    s = summarize(g)
    assert s.parameters == k * n and s.parameter_bytes == 4 * k * n
    assert {str(c.type.dtype) for c in g.constants.values()} - {"f32"} <= STRUCTURE_DTYPES


# a legacy and a dynamo causal export: folding their shape arithmetic once seq is bound makes
# masks and index tensors, which used to show as *more* parameters after -p default
@pytest.mark.parametrize("path", ["gpt2.onnx", "llama-dynamo23-decode.onnx"])
def test_the_default_pipeline_adds_no_parameters(path):
    g = rl.load(MODELS / path)
    g = g.bind({s: 1 if "batch" in s else 16 for s in g.symbols()})
    before = summarize(g).parameters
    after = summarize(rl.optimize(g.copy(), "default")).parameters
    # scalar constants fold into fused nodes' attributes: a few elements fewer, never more
    assert before - 64 <= after <= before
