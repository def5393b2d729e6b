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


def test_cached_rows_equal_one_public_estimate_per_point(small_spec):
    spec = parse_spec(small_spec)
    pts = list(points(spec))[::3]                    # the naive path is slow: a third of the grid
    cached = [r for c in chunks(spec, pts, 7) for r in evaluate_chunk(spec.payload(), c)]
    naive = evaluate_naive(spec.payload(), pts)
    assert sorted(cached, key=lambda r: r["point"]) == naive
    assert any(r["error"] for r in naive) and any(r["error"] is None for r in naive)


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
    key = lambda r: (r["model"], r["target"], r["batch"], r["tp"])      # noqa: E731
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
