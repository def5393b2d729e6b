"""Presents appended in place (attention.GrowingCache): a decode loop that feeds each step's
presents back as the next past gets them as views of one growing buffer — no copy of the cache
and no allocation per step — and a past reused for a second continuation is copied, so that no
view once returned ever changes. Checked mode (conftest) bounds-checks the strided reads."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("llvmlite")

from ridgeline import api
from ridgeline.backends.llvm.attention import AttentionLowering

MODEL = Path(__file__).resolve().parents[1] / "models" / "gpt2-legacy17-decode.onnx"


@cache
def _graph():
    return api.optimize(api.load(str(MODEL)), "default")


def _feeds(graph, rng, past: int, seq: int, cache_: dict | None = None) -> dict:
    env = {"batch": 1, "seq": seq, "past": past, "total": past + seq}
    feeds = {}
    for v in graph.inputs:
        shape = tuple(d if isinstance(d, int) else int(eval(d, {}, env)) for d in v.type.shape)
        if v.name == "input_ids":
            feeds[v.name] = rng.integers(0, 90, shape).astype(np.int64)
        elif v.name == "attention_mask":
            feeds[v.name] = np.ones(shape, np.int64)
        elif v.name == "position_ids":
            feeds[v.name] = np.arange(past, past + seq, dtype=np.int64).reshape(shape)
        elif cache_ is not None and v.name in cache_:
            feeds[v.name] = cache_[v.name]
        else:
            feeds[v.name] = rng.standard_normal(shape).astype(np.float32)
    return feeds


def _presents(graph, outs) -> dict:
    past = [v.name for v in graph.inputs if v.type.rank == 4]
    present = [v.name for v in graph.outputs if v.type.rank == 4]
    return {p: outs[q] for p, q in zip(past, present)}


def _copies(exe) -> int:
    return sum(c.copies for lw in exe.plan.lowerings.values() if isinstance(lw, AttentionLowering)
               for c in getattr(lw, "caches", ()))


def test_decode_loop_appends_in_place_and_matches_numpy():
    g = _graph()
    rng = np.random.default_rng(0)
    exe = api.compile(g, backend="llvm", pipeline="")
    ref = api.compile(g, backend="numpy", pipeline="")
    out = exe.run(_feeds(g, rng, 0, 3))
    copies = None
    for step in range(4):
        feeds = _feeds(g, rng, 3 + step, 1, _presents(g, out))
        out = exe.run(feeds)
        want = ref.run({k: np.ascontiguousarray(v) for k, v in feeds.items()})
        for k in want:
            np.testing.assert_allclose(out[k], want[k], rtol=1e-4, atol=1e-5)
        if step == 0:   # the prefill's presents are another plan's: copied once, here
            copies = _copies(exe)
        assert _copies(exe) == copies, f"step {step} copied the cache"
    pres = [v for v in out.values() if v.ndim == 4]
    assert pres and all(p.base is not None and p.base.shape[2] > p.shape[2] for p in pres)


def test_a_past_continued_twice_is_copied_and_earlier_presents_never_change():
    g = _graph()
    rng = np.random.default_rng(1)
    exe = api.compile(g, backend="llvm", pipeline="")
    out = exe.run(_feeds(g, rng, 0, 2))
    step1 = exe.run(_feeds(g, rng, 2, 1, _presents(g, out)))
    past = _presents(g, step1)
    a_feeds = _feeds(g, rng, 3, 1, past)
    a = exe.run(a_feeds)
    a_kept = {k: np.array(v, copy=True) for k, v in a.items()}
    b_feeds = dict(a_feeds, input_ids=(a_feeds["input_ids"] + 1) % 90)
    b = exe.run(b_feeds)    # the same past again: must not write where a's presents live
    for k in a:
        assert np.array_equal(a[k], a_kept[k]), f"{k} of the first continuation changed"
    fresh = api.compile(g, backend="llvm", pipeline="", polymorphic=False)
    want = fresh.run({k: np.ascontiguousarray(v) for k, v in b_feeds.items()})
    for k in want:
        assert np.array_equal(b[k], want[k]), f"{k} of the second continuation differs"
