"""Huge graphs stay linear: work is counted per node (type inferences, body nodes built), not timed,
so the tests hold on a loaded machine; the times are in tools/bench_hostile_scale.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ridgeline.frontends.onnx import load_onnx
from ridgeline.ir import Graph, infer
from ridgeline.passes import run_pipeline

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import bench_hostile_scale as scale


def _count(monkeypatch, owner, name: str) -> list[int]:
    calls = [0]
    real = getattr(owner, name)

    def counted(*a, **k):
        calls[0] += 1
        return real(*a, **k)
    monkeypatch.setattr(owner, name, counted)
    return calls


@settings(max_examples=6, deadline=None)
@given(n=st.integers(1, 400), kind=st.sampled_from(["chain", "concat"]))
def test_import_infers_each_node_once(n, kind):
    """The importer used to infer every node three times (refine, verify, and again)."""
    model = (scale._chain if kind == "chain" else scale._concat)(n)
    with pytest.MonkeyPatch.context() as mp:
        calls = _count(mp, infer, "_run")
        g = load_onnx(model.SerializeToString())
    assert calls[0] == len(g) == (n if kind == "chain" else 1)


@pytest.mark.parametrize("max_nodes", [1, 2, 5, 16, 1000])
def test_fuse_elementwise_builds_each_op_into_a_body_about_once(max_nodes, monkeypatch):
    """Absorbing one producer per rewrite rebuilt a group's body for every op added (~10 body nodes
    per chain node at max-nodes=16); a group is now built at once. The result is unchanged: groups
    of max-nodes ops, checked against the numpy reference by the pass tests."""
    n = 300
    g = load_onnx(scale._chain(n).SerializeToString())
    built = _count(monkeypatch, Graph, "add_node")
    run_pipeline(g, f"fuse-elementwise{{max-nodes={max_nodes}}}", verify_each=False)
    fused = [m for m in g if m.op == "Fused"]
    if max_nodes == 1:  # no group fits
        assert not fused and built[0] == 0
        return
    assert len(g) == len(fused) == -(-n // max_nodes)  # full groups from the end, the rest in front
    assert sum(len(m.body) for m in fused) == n and all(len(m.body) <= max_nodes for m in fused)
    assert built[0] <= n + len(fused), built[0]  # each op once in a body, plus the Fused nodes
