"""The llvm run loop replays a kernel's launches when it runs again on the same arrays (replay.py):
over generated decode steps of three exports (new token, position and cache values every step),
every step of one executable — whose kernels replay from its second run — gives the bits of a
fresh executable's first run, where every kernel is called through its wrapper. Checked mode is
off here (it never replays); out-of-range position ids still fail on a replayed rotary."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("llvmlite")

from test_llvm_poly import EXPORTS, _feeds, _graph, _present_to_past

from ridgeline import api
from ridgeline.backends.numpy import NumpyBackend
from ridgeline.ir import Builder, Graph, tensor
from ridgeline.ir.errors import BackendError


@pytest.fixture(autouse=True)
def _unchecked(monkeypatch):
    monkeypatch.setenv("RIDGELINE_LLVM_CHECKED", "0")


@settings(max_examples=2, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(name=st.sampled_from(EXPORTS), batch=st.integers(1, 2), past=st.integers(0, 40), threads=st.sampled_from([1, 2]),
       seed=st.integers(0, 2**16))
def test_replayed_steps_give_the_bits_of_first_runs(name, batch, past, threads, seed):
    graph = _graph(name)
    rng = np.random.default_rng(seed)
    exe = api.compile(graph, backend="llvm", pipeline="", threads=threads, parallel_threshold=0)
    cache = None
    for step in range(2):   # the second replays
        feeds = _feeds(graph, rng, batch, past + step, 1, cache)
        got = exe.run(feeds)
        fresh = api.compile(graph, backend="llvm", pipeline="", threads=threads, parallel_threshold=0)
        want = fresh.run({k: v.copy() for k, v in feeds.items()})
        for k in want:
            assert np.array_equal(got[k], want[k], equal_nan=True), f"{k} differs from a first run at step {step}"
        cache = _present_to_past(graph, got)
    memos = exe.interpreter.plan.memos
    assert sum(m is not None for m in memos) >= len(memos) // 2, "most kernels of a decode step should replay"
    assert exe.interpreter.plan.segments, "runs of replayable steps should replay as segments"


def _rotary():
    """A graph with inputs x [1, 2, 8] and pos [1, 2], and a rotary of x by pos (no outputs yet)."""
    g = Graph("rot")
    bld = Builder(g)
    x = g.add_input("x", tensor("f32", 1, 2, 8))
    pos = g.add_input("pos", tensor("i64", 1, 2))
    rng = np.random.default_rng(0)
    cos, sin = (g.add_constant(n, rng.standard_normal((16, 2)).astype(np.float32)) for n in ("cos", "sin"))
    return g, bld, x, bld.RotaryEmbedding(x, cos, sin, pos, num_heads=2), rng


def test_replayed_kernels_still_check_index_values():
    """Indices are data: a rotary kernel reading position ids checks them at every run, replayed
    or not (and so does GPT-2's position-embedding Gather)."""
    g, bld, x, rot, rng = _rotary()
    g.outputs = [bld.Add(rot, x)]   # the rotary stays inside
    exe = api.compile(g, backend="llvm", pipeline="", strict=True)
    feeds = {"x": rng.standard_normal((1, 2, 8)).astype(np.float32), "pos": np.array([[3, 4]])}
    ref = NumpyBackend().compile(g).run(feeds)
    for _ in range(2):   # the second run replays
        np.testing.assert_allclose(exe.run(feeds)[g.outputs[0].name], ref[g.outputs[0].name], rtol=1e-6, atol=1e-6)
    assert any(m is not None for m in exe.interpreter.plan.memos)
    with pytest.raises(BackendError, match="position ids"):
        exe.run({"x": feeds["x"], "pos": np.array([[3, 16]])})
    gpt2 = _graph("gpt2-legacy17-decode")
    exe = api.compile(gpt2, backend="llvm", pipeline="")
    feeds = _feeds(gpt2, rng, 1, 3, 1)
    exe.run(feeds)
    exe.run(feeds)
    feeds["position_ids"] = np.full_like(feeds["position_ids"], 10 ** 6)
    with pytest.raises(BackendError, match="out of range"):
        exe.run(feeds)


def test_segments_replay_new_values_and_still_check_positions():
    """A run of replayable steps replays as one segment (replay.Segment) — on new values copied
    into the same pinned buffers each run it gives numpy's results, and the rotary's check of its
    position ids inside the segment still fires."""
    g, bld, _, rot, rng = _rotary()
    w1, w2 = (g.add_constant(n, rng.standard_normal((8, 8)).astype(np.float32)) for n in ("w1", "w2"))
    g.outputs = [bld.MatMul(bld.MatMul(rot, w1), w2)]
    exe = api.compile(g, backend="llvm", pipeline="", strict=True)
    ref = NumpyBackend().compile(g)
    for step in range(3):
        feeds = {"x": rng.standard_normal((1, 2, 8)).astype(np.float32), "pos": np.array([[step, step + 1]])}
        np.testing.assert_allclose(exe.run(feeds)[g.outputs[0].name], ref.run(feeds)[g.outputs[0].name],
                                   rtol=1e-5, atol=1e-5)
    segs = exe.interpreter.plan.segments
    assert any(f is not None for seg in segs.values() for f, _ in seg.calls), "the rotary should be in a segment"
    with pytest.raises(BackendError, match="position ids"):
        exe.run({"x": feeds["x"], "pos": np.array([[3, 16]])})
