"""The same spec gives the same table on every engine, and the cache gives the rows that one
public estimate per point gives (compared with each other, never with today's numbers)."""

from __future__ import annotations

import importlib.util

import pytest

from ridgeline.sweep import sweep
from ridgeline.sweep.evaluate import evaluate_chunk, evaluate_naive
from ridgeline.sweep.grid import chunks, points
from ridgeline.sweep.spec import parse_spec


def _content(table):
    return table.to_pylist()


@pytest.mark.parametrize("axes", [
    {"model": ["gpt2", "llama-2-7b"], "target": ["h100", "tpu-v6e", "h100-fast"], "phase": ["prefill", "decode"],
     "batch": [1, 8], "context": [1024], "tp": [1, 2]},
    # dtypes: graphs built with dtype= and a companion's resolved weight/act dtypes share one cache entry
    # only when they are the same graph
    {"model": ["gpt2"], "target": ["h100", "tpu-v6e"], "phase": ["decode", "prefill"], "context": [256],
     "dtype": ["bf16", "fp8", "int4", "fp16"], "kv_dtype": ["fp8"], "act_dtype": ["bf16", "fp8"]},
])
def test_cached_rows_equal_one_public_estimate_per_point(small_spec, axes):
    spec = parse_spec({**small_spec, "axes": axes})
    pts = list(points(spec))
    sample = pts[::3]                                 # the naive path is slow: a third of the grid
    cached = {r["point"]: r for c in chunks(spec, pts, 16) for r in evaluate_chunk(spec.payload(), c)}
    naive = evaluate_naive(spec.payload(), sample)
    assert [cached[r["point"]] for r in naive] == naive
    assert any(r["error"] is None for r in naive)


@pytest.mark.parametrize("phases", [["decode", "prefill"], ["prefill", "decode"]])
def test_a_decode_step_whose_prefill_does_not_fit_is_a_row_on_both_paths(small_spec, phases):
    # a batch of 128 131k-token prompts in one prefill takes more than h100 joins; its decode step
    # fits. Either order: the cache prices the decode step first, or first as the prefill's companion
    axes = {"model": ["llama-3-8b"], "target": ["h100"], "phase": phases, "batch": [128], "context": [131072]}
    spec = parse_spec({**small_spec, "axes": axes})
    pts = list(points(spec))
    cached = [r for c in chunks(spec, pts, 16) for r in evaluate_chunk(spec.payload(), c)]
    assert cached == evaluate_naive(spec.payload(), pts)
    by_phase = {r["phase"]: r for r in cached}
    assert by_phase["prefill"]["error"] and by_phase["decode"]["error"] is None
    assert by_phase["decode"]["ttft_s"] is None and "no prefill estimate" in by_phase["decode"]["notes"]


@pytest.fixture(scope="module")
def reference():
    from tests.sweep.conftest import SMALL
    return sweep(SMALL, workers=1, chunk=5)


def test_table_has_a_row_per_point_with_axes_metrics_and_errors(reference, small_spec):
    spec = parse_spec(small_spec)
    rows = reference.to_pylist()
    assert [r["point"] for r in rows] == [i for i, _ in points(spec)]
    for col in (*spec.axes, "error", "time_s", "tokens_per_s", "ttft_s", "tpot_s", "memory.fits", "bound", "mfu"):
        assert col in reference.column_names
    ok = [r for r in rows if r["error"] is None]
    assert ok and all(r["time_s"] > 0 and r["ttft_s"] > 0 and r["tpot_s"] > 0 for r in ok)
    # a decode row's TTFT is the prefill row's time of the same configuration (the companion)
    key = lambda r: (r["model"], r["target"], r["batch"], r["tp"])
    prefill = {key(r): r for r in ok if r["phase"] == "prefill"}
    for r in ok:
        if r["phase"] == "decode" and key(r) in prefill:
            assert r["ttft_s"] == prefill[key(r)]["time_s"] and r["tpot_s"] == r["time_s"]


def test_local_pool_chunking_does_not_change_the_table(reference, small_spec):
    assert _content(sweep(small_spec, workers=2, chunk=11)) == _content(reference)


@pytest.mark.skipif(importlib.util.find_spec("distributed") is None, reason="dask[distributed] not installed")
def test_dask_local_cluster_gives_the_same_table(reference, small_spec):
    from ridgeline.sweep.engines.dask import DaskEngine
    eng = DaskEngine(workers=2, processes=False)
    assert _content(sweep(small_spec, engine=eng, chunk=6)) == _content(reference)


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray not installed")
def test_ray_local_instance_gives_the_same_table(reference, small_spec):
    assert _content(sweep(small_spec, engine="ray", workers=2, chunk=12)) == _content(reference)
