"""Every exported model in ``tests/models`` runs on torch and llvm and matches the numpy reference
within 1e-4 relative (at the query positions that attend to something: see exported_models.py),
as exported and after the default fusion pipeline; llvm runs them with no numpy fallback."""

from __future__ import annotations

import pytest

from exported_models import MODELS, assert_outputs_close, dims_for, entries, feeds_for
from ridgeline import api
from ridgeline.backends.registry import get_backend

pytest.importorskip("llvmlite")
pytest.importorskip("torch")

ENTRIES = entries() if (MODELS / "manifest.json").exists() else []
IDS = [e["file"] for e in ENTRIES]


def _setup(e):
    g = api.load(MODELS / e["file"])
    dims = dims_for(e, 2, 5, 3)   # a left-padded batch of 2; a decode step attends to 3 + 1 tokens
    feeds = feeds_for(e, dims)
    ref = get_backend("numpy").compile(g).run(feeds)
    return g, dims, feeds, ref


@pytest.mark.slow
@pytest.mark.parametrize("e", ENTRIES, ids=IDS)
def test_llvm_and_torch_match_numpy(e):
    g, dims, feeds, ref = _setup(e)
    exe = get_backend("llvm").compile(g, strict=True)   # symbolic dims: compiled on the first run
    assert_outputs_close(e, exe.run(feeds), ref, feeds, dims, what="llvm")
    assert not exe.plan.fallbacks
    assert_outputs_close(e, get_backend("torch").compile(g).run(feeds), ref, feeds, dims, what="torch")


@pytest.mark.slow
@pytest.mark.parametrize("e", [e for e in ENTRIES if e["exporter"] in ("legacy", "dynamo") and e["opset"] in (17, 23)],
                         ids=lambda e: e["file"])
def test_after_the_default_pipeline(e):
    """The fused graph (attention, norms, gelu, matmul epilogues, elementwise chains), every
    kernel launch split across two threads (threshold 0: the runner's chunks on every kernel kind)."""
    g, dims, feeds, ref = _setup(e)
    exe = api.compile(g, "llvm", strict=True, threads=2, parallel_threshold=0)   # the default pipeline fuses first
    assert_outputs_close(e, exe.run(feeds), ref, feeds, dims, what="llvm after the default pipeline")
    kinds = set(exe.plan.kinds.values())
    assert "attention" in kinds and "elementwise" in kinds, kinds
    assert_outputs_close(e, api.compile(g, "torch", pipeline="default").run(feeds), ref, feeds, dims,
                         what="torch after the default pipeline")


def test_manifest_is_present():
    assert ENTRIES, "tests/models/manifest.json lists no models"
