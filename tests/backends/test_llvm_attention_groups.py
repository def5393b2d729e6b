"""Grouped-query attention on the llvm kernel: one task serves every query head of a K/V head
(each key and value row is read once per group), and that gives the bits one task per query
head gives, and the numpy reference's values, over drawn shapes, masks, caches and group sizes."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("llvmlite")

from cases import biased_attention

from ridgeline.backends.llvm import attention
from ridgeline.backends.llvm.jit import host
from ridgeline.backends.registry import get_backend
from ridgeline.ir import Builder, Graph, tensor
from ridgeline.testing.differential import check_backend
from ridgeline.testing.inputs import random_inputs
from ridgeline.testing.kernel_spaces import attention_graphs

_CI = settings(max_examples=8, deadline=None, derandomize=True, database=None,
               suppress_health_check=list(HealthCheck))


def _lowerings(exe):
    return [lw for lw in exe.plan.lowerings.values() if isinstance(lw, attention.AttentionLowering)]


def _expected_group(lw) -> int:
    group = lw.hq // lw.hkv
    if lw.mask_shape is not None and lw.m_st[1] != 0:
        return 1   # a mask that differs per head: each head trims its own keys
    rows = lw.b * lw.hq * lw.s   # one head per task would give this many tasks
    cores = host().cores

    def even(tasks: int) -> bool:   # as many tasks per core, or >= 4 per core (chunks even out)
        return tasks >= cores and tasks % cores == 0 or tasks >= 4 * cores
    return max(x for x in range(1, min(group, attention.GMAX) + 1) if group % x == 0 and (x == 1 or even(rows // x)))


def test_decode_step_of_three_groups_splits_evenly():
    """SmolLM2's decode step (9 query heads over 3 KV heads, one position) on two cores: 3 grouped
    tasks would run 2:1, so it runs one head per task (9 tasks in the runner's chunks)."""
    for batch, expect in ((1, 1), (2, 3)):   # batch 2: 6 grouped tasks, 3 per core
        g = Graph("dec")
        q = g.add_input("q", tensor("f32", batch, 9, 1, 8))
        k, v = (g.add_input(n, tensor("f32", batch, 3, 5, 8)) for n in "kv")
        g.outputs = [Builder(g).Attention(q, k, v, _outputs=1)]
        shapes = [(batch, 9, 1, 8), (batch, 3, 5, 8), (batch, 3, 5, 8)]
        with mock.patch.object(attention, "host", lambda: mock.Mock(cores=2)):
            assert attention.AttentionLowering(g.nodes[0], shapes, {}).g == expect


@_CI
@given(g=attention_graphs(), seed=st.integers(0, 2 ** 16))
def test_grouped_heads_and_positions_give_the_bits_of_one_per_task(g, seed):
    """Query heads of a KV head and a block of positions in one task (aligned key blocks: each
    row sees the blocks and lanes it sees alone) give the bits of one (head, position) per task."""
    inputs = random_inputs(g, seed=seed)
    be = get_backend("llvm")
    grouped = be.compile(g, strict=True)
    got = grouped.run(inputs)
    for lw in _lowerings(grouped):
        assert lw.g == _expected_group(lw), (lw.hq, lw.hkv, lw.mask_shape, lw.g)
    saved = attention.GMAX, attention.QMAX
    attention.GMAX = attention.QMAX = 1
    try:
        single = be.compile(g, strict=True)
        want = single.run(inputs)
    finally:
        attention.GMAX, attention.QMAX = saved
    assert all(lw.g == 1 and lw.r == 1 for lw in _lowerings(single))
    for name in want:   # the same arithmetic in the same order per head: the same bits
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


@st.composite
def _wide_groups(draw) -> Graph:
    """Group sizes past the ones exporters' small models use (MQA over 24 heads, 7, 17 — a prime
    above the cap, so one task per head), causal or not, a KV cache, a mask shared by the heads."""
    group = draw(st.sampled_from([5, 7, 8, 17, 24]))
    hkv, bsz = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    sq, past = draw(st.sampled_from([1, 3])), draw(st.sampled_from([0, 5, 70]))
    d = draw(st.sampled_from([4, 16]))
    g = Graph("gqa")
    b = Builder(g)
    q = g.add_input("q", tensor("f32", bsz, hkv * group, sq, d))
    k = g.add_input("k", tensor("f32", bsz, hkv, sq, d))
    v = g.add_input("v", tensor("f32", bsz, hkv, sq, d))
    mask = g.add_input("bias", tensor("f32", bsz, 1, sq, past + sq)) if draw(st.booleans()) else None
    pk = g.add_input("pk", tensor("f32", bsz, hkv, past, d)) if past else None
    pv = g.add_input("pv", tensor("f32", bsz, hkv, past, d)) if past else None
    outs = b.Attention(q, k, v, mask, pk, pv, is_causal=int(draw(st.booleans())), _outputs=3 if past else 1)
    g.outputs = list(outs) if isinstance(outs, tuple) else [outs]
    g.verify()
    return g


def test_wide_groups_match_numpy():
    report = check_backend("llvm", _wide_groups(), options={"strict": True}, settings=_CI)
    assert report.compared >= 6 and report.skipped == 0, report


@pytest.mark.parametrize("group,expect", [(24, 12), (17, 1), (16, 16), (8, 8), (6, 6), (34, 2)])
def test_group_size_per_task(group, expect):
    """The largest divisor of the group up to GMAX query heads per task (8 positions: enough tasks
    for any core count up to 16 at every group size)."""
    g = Graph("gqa")
    b = Builder(g)
    q = g.add_input("q", tensor("f32", 1, 2 * group, 8, 4))
    k, v = (g.add_input(n, tensor("f32", 1, 2, 8, 4)) for n in "kv")
    g.outputs = [b.Attention(q, k, v, _outputs=1)]
    exe = get_backend("llvm").compile(g, strict=True)
    exe.run(random_inputs(g))
    (lw,) = _lowerings(exe)
    assert lw.g == expect


@pytest.mark.parametrize("fallback", [False, True])
@pytest.mark.parametrize("dtype,short", [("bool", 0), ("f32", 1)])
def test_mask_shared_by_layers_follows_each_step(dtype, short, fallback):
    """Layers reading one mask share the float rows the first of them builds (bool -> f32, padded
    to the key count) — rebuilt every step: a left-padded batch's mask array changed in place
    between decode steps must not leave the later layers on the last step's rows. Also when the
    first reader runs on numpy (its qk_matmul_output is asked for): no llvm layer builds for the
    others then."""
    bsz, hq, hkv, d, past = 2, 4, 2, 8, 37
    g = Graph("layers")
    b = Builder(g)
    mask = g.add_input("mask", tensor(dtype, bsz, 1, 1, past + 1 - short))
    outs = []
    for layer in range(3):
        q = g.add_input(f"q{layer}", tensor("f32", bsz, hq, 1, d))
        k, v, pk, pv = (g.add_input(f"{n}{layer}", tensor("f32", bsz, hkv, p, d))
                        for n, p in (("k", 1), ("v", 1), ("pk", past), ("pv", past)))
        if fallback and layer == 0:
            y, _, _, qk = b.Attention(q, k, v, mask, pk, pv, _outputs=4)
            outs += [y, qk]
        else:
            outs.append(b.Attention(q, k, v, mask, pk, pv, _outputs=1))
    g.outputs = outs
    g.verify()
    feeds = random_inputs(g, seed=3)
    exe, ref = get_backend("llvm").compile(g, strict=not fallback), get_backend("numpy").compile(g)
    m = feeds["mask"] = np.zeros(mask.type.shape, bool if dtype == "bool" else np.float32)
    built = []
    real = attention._bias
    for step, pad in enumerate((0, 5, 20)):   # row 1 left-padded by more keys each step
        keep = np.arange(m.shape[-1]) >= pad
        m[1, 0, 0] = keep if dtype == "bool" else np.where(keep, 0, -np.inf)
        with mock.patch.object(attention, "_bias", lambda *a: built.append(step) or real(*a)):
            got = exe.run(feeds)
        want = ref.run(feeds)
        for name in want:
            np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-6, err_msg=f"step {step} {name}")
    assert built == ([0, 0, 1, 1, 2, 2] if fallback else [0, 1, 2])   # once a step, not once a layer


@settings(_CI, max_examples=6)
@given(sq=st.integers(2, 150), past=st.sampled_from([0, 70]), group=st.sampled_from([1, 3]),
       n_odd=st.integers(1, 4), seed=st.integers(0, 2 ** 16))
def test_prefill_mask_sparse_values_over_key_blocks(sq, past, group, n_odd, seed):
    """A causal float32-minimum mask that adds 0 to every seen key but a few, drawn anywhere in
    the key blocks: a block is gathered from the mask exactly when one of its members' keys adds
    something else (skipping a block that does, or the check of only some members' rows, would
    drop those values)."""
    rng = np.random.default_rng(seed)
    t = past + sq
    g, feeds = biased_attention(rng, 1, 2 * group, 2, sq, 16, past)
    m = np.where(np.arange(t)[None, :] <= np.arange(sq)[:, None] + past, 0, np.finfo(np.float32).min)
    for _ in range(n_odd):   # a few seen keys add a large value
        i = int(rng.integers(0, sq))
        m[i, int(rng.integers(0, i + past + 1))] = 5.0
    feeds["bias"] = m.astype(np.float32)[None, None]
    want = get_backend("numpy").compile(g).run(feeds)
    got = get_backend("llvm").compile(g, strict=True).run(feeds)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-4, atol=1e-5, err_msg=name)
