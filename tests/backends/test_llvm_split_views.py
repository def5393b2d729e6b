"""A fused QKV product's ``Split`` feeding 3-D attention costs no copy on the llvm backend: its
parts are views of the product the kernel reads through their strides. Over drawn split orders
and sizes (extra parts, read by another kernel or by none), batch, positions, heads and caches,
it gives the numpy reference's values and the bits of the copying plan."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("llvmlite")

from ridgeline.backends.llvm import executor
from ridgeline.backends.registry import get_backend
from ridgeline.ir import Builder, Graph, tensor
from ridgeline.testing.inputs import random_inputs

_CI = settings(max_examples=12, deadline=None, derandomize=True, database=None,
               suppress_health_check=list(HealthCheck))


@st.composite
def _qkv_graphs(draw):
    """x @ W split along the last axis into Q, K, V (in a drawn order) and extra parts; returns
    the graph and whether the Split may be views (no extra part read by a contiguous-only kernel)."""
    hkv, group = draw(st.integers(1, 3)), draw(st.sampled_from([1, 2, 3]))
    hq, d, dv = hkv * group, draw(st.sampled_from([3, 8, 16, 20])), draw(st.sampled_from([4, 16]))
    bsz, sq, e = draw(st.integers(1, 3)), draw(st.integers(1, 9)), draw(st.sampled_from([5, 16]))
    past = draw(st.sampled_from([None, 0, 6]))
    extras = draw(st.lists(st.tuples(st.integers(1, 9), st.sampled_from(["none", "relu"])), max_size=2))
    parts = [("q", hq * d), ("k", hkv * d), ("v", hkv * dv)] + [(f"x{i}", n) for i, (n, _) in enumerate(extras)]
    order = draw(st.permutations(range(len(parts))))
    g = Graph("qkv")
    b = Builder(g)
    x = g.add_input("x", tensor("f32", bsz, sq, e))
    w = b.constant(np.random.default_rng(len(parts)).standard_normal((e, sum(n for _, n in parts)), np.float32))
    outs = b.Split(b.MatMul(x, w), b.constant(np.array([parts[i][1] for i in order], np.int64)), axis=2,
                   _outputs=len(parts))
    got = {parts[i][0]: o for i, o in zip(order, outs)}
    cache = []
    if past is not None:
        cache = [g.add_input(n, tensor("f32", bsz, hkv, past, dd)) for n, dd in (("pk", d), ("pv", dv))]
    res = b.Attention(got["q"], got["k"], got["v"], None, *cache, q_num_heads=hq, kv_num_heads=hkv,
                      is_causal=int(draw(st.booleans())), _outputs=3 if cache else 1)
    g.outputs = list(res) if isinstance(res, tuple) else [res]
    for i, (_, use) in enumerate(extras):
        if use == "relu":
            g.outputs.append(b.Relu(got[f"x{i}"]))
    g.verify()
    return g, all(use == "none" for _, use in extras)


@_CI
@given(case=_qkv_graphs(), seed=st.integers(0, 2 ** 16))
def test_split_parts_read_in_place(case, seed):
    g, views = case
    feeds = random_inputs(g, seed=seed)
    exe = get_backend("llvm").compile(g, strict=True)
    for _ in range(2):   # the second run replays the memoized views
        got = exe.run(feeds)
    split = next(n for n in g if n.op == "Split")
    assert (split in exe.plan.views) == views and (split in exe.plan.kernels) != views
    want = get_backend("numpy").compile(g).run(feeds)
    with mock.patch.object(executor, "_split_views", lambda graph, plan, lowered: lowered):
        copied = get_backend("llvm").compile(g, strict=True).run(feeds)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-4, atol=1e-5, err_msg=name)
        np.testing.assert_array_equal(got[name], copied[name], err_msg=name)   # the same arithmetic


@pytest.mark.parametrize("past", [None, 0, 3])
def test_checked_mode_bounds_a_view_by_its_reach(past):
    """Checked mode (tests/backends/conftest.py) bounds a strided view's reads by the memory it
    reaches, not by its element count: GPT-2's prefill reads Q rows 2304 floats apart."""
    g = Graph("gpt2-like")
    b = Builder(g)
    x = g.add_input("x", tensor("f32", 1, 64, 5))
    w = b.constant(np.random.default_rng(0).standard_normal((5, 3 * 768), np.float32))
    q, k, v = b.Split(b.MatMul(x, w), b.constant(np.array([768] * 3, np.int64)), axis=2, _outputs=3)
    cache = [g.add_input(n, tensor("f32", 1, 12, past, 64)) for n in ("pk", "pv")] if past is not None else []
    res = b.Attention(q, k, v, None, *cache, q_num_heads=12, kv_num_heads=12, _outputs=3 if cache else 1)
    g.outputs = list(res) if isinstance(res, tuple) else [res]
    feeds = random_inputs(g, seed=0)
    exe = get_backend("llvm").compile(g, strict=True)
    got = exe.run(feeds)
    assert any(n.op == "Split" for n in exe.plan.views)
    want = get_backend("numpy").compile(g).run(feeds)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-4, atol=1e-5, err_msg=name)
