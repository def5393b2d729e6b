"""The llvm kernels over drawn shape spaces, small transformer models over drawn configs, the
bounds-checked JIT and the determinism check.

Every check here runs with ``RIDGELINE_LLVM_CHECKED=1`` (tests/backends/conftest.py): a load or
store outside a buffer is an error, and outputs start as NaN. Example counts are the CI profile;
``tools/soak_backends.py`` runs the same strategies long.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

pytest.importorskip("llvmlite")

from ridgeline.backends.registry import get_backend
from ridgeline.ir import Builder, Graph, tensor
from ridgeline.ir.errors import BackendError
from ridgeline.testing.differential import (
    BackendCheckError,
    Nondeterministic,
    check_backend,
    check_onnxruntime,
    run_twice,
)
from ridgeline.testing.kernel_spaces import KERNEL_SPACES
from ridgeline.testing.model_configs import ModelConfig, build_model, model_graphs

_CI = settings(max_examples=25, deadline=None, derandomize=True, database=None,
               suppress_health_check=list(HealthCheck))
#: families where a drawn case may legitimately have no kernel (softmax on a non-trailing axis,
#: a norm with a broadcast computed scale, reduced axes that are not one run): counted, not failed
_MAY_FALL_BACK = {"norm", "reduce"}


@pytest.mark.parametrize("family", sorted(KERNEL_SPACES))
def test_kernel_space_matches_numpy(family):
    """strict: the drawn graph runs on the family's kernel (never on numpy) and agrees."""
    report = check_backend("llvm", KERNEL_SPACES[family], options={"strict": True}, settings=_CI)
    assert report.compared >= 10, report
    if family not in _MAY_FALL_BACK:
        assert report.skipped == 0, report.reasons


@pytest.mark.parametrize("pipeline", ["default"])
@pytest.mark.parametrize("family", ["matmul", "elementwise", "attention", "rotary"])
def test_kernel_space_after_fusion(family, pipeline):
    """The same spaces after the default pipeline: matmul epilogues, fused elementwise bodies."""
    report = check_backend("llvm", KERNEL_SPACES[family], pipeline=pipeline, settings=_CI)
    assert report.compared >= 10, report


def _rotary_graph(batch_cache: int) -> Graph:
    g = Graph("rotary")
    x = g.add_input("x", tensor("f32", 2, 4, 16))
    c = g.add_input("c", tensor("f32", batch_cache, 4, 4))
    s = g.add_input("s", tensor("f32", batch_cache, 4, 4))
    g.outputs = [Builder(g).RotaryEmbedding(x, c, s, num_heads=2)]
    g.verify()
    return g


def test_rotary_cache_broadcast_over_batch():
    """The issue's repro: a [1, S, D/2] cache serves every batch entry (it read past its end)."""
    rng = np.random.default_rng(0)
    feeds = {"x": rng.standard_normal((2, 4, 16), np.float32), "c": rng.standard_normal((1, 4, 4), np.float32),
             "s": rng.standard_normal((1, 4, 4), np.float32)}
    g = _rotary_graph(1)
    want = get_backend("numpy").compile(g).run(feeds)
    got = get_backend("llvm").compile(g, strict=True).run(feeds)
    np.testing.assert_allclose(got[g.outputs[0].name], want[g.outputs[0].name], rtol=1e-5, atol=1e-6)


def test_checked_mode_names_kernel_node_and_index(monkeypatch):
    """A kernel whose layout is wrong (the rotary bug put back) is stopped at its first access
    outside a buffer, with the node and index, instead of reading past it."""
    from ridgeline.backends.llvm import attention
    real = attention.broadcast_strides
    monkeypatch.setattr(attention, "broadcast_strides",
                        lambda shape, target: (target[1], 1) if len(target) == 2 else real(shape, target))
    rng = np.random.default_rng(0)
    feeds = {"x": rng.standard_normal((2, 4, 16), np.float32), "c": rng.standard_normal((1, 4, 4), np.float32),
             "s": rng.standard_normal((1, 4, 4), np.float32)}
    with pytest.raises(BackendError, match=r"RIDGELINE_LLVM_CHECKED: llvm kernel k\w+ of RotaryEmbedding node "
                                           r"%\w+: load from buffer 1 at element 16, outside its 64 bytes"):
        get_backend("llvm").compile(_rotary_graph(1)).run(feeds)


def test_checked_mode_poisons_outputs(monkeypatch):
    """Buffers handed to kernels start as NaN: an element a kernel skips cannot look plausible.
    ``outputs`` follows the mode as a run reads it at its start (``checked_mode()``)."""
    from ridgeline.backends.llvm.irutil import checked_mode
    from ridgeline.backends.llvm.lowering import outputs
    checked_mode()
    a, i, b = outputs([None, None, None], [(3,), (2,), (2,)], [np.float32, np.int64, np.bool_])
    assert np.isnan(a).all() and (i == np.iinfo(np.int64).max).all() and (b.view(np.uint8) == 0x7F).all()
    monkeypatch.delenv("RIDGELINE_LLVM_CHECKED")
    checked_mode()
    (plain,) = outputs([np.zeros(2, np.float32)], [(2,)], [np.float32])
    assert not np.isnan(plain).any()


def test_run_twice_catches_nondeterminism_and_input_writes():
    calls = []

    def flaky(feeds):
        calls.append(1)
        return {"y": np.full(3, float(len(calls)), np.float32)}
    with pytest.raises(Nondeterministic, match=r"output y at \[0\]: 1.0 then 2.0"):
        run_twice(flaky, {}, "flaky")

    def writes(feeds):
        feeds["x"][0] += 1
        return {"y": np.zeros(1)}
    with pytest.raises(Nondeterministic, match="wrote into its inputs"):
        run_twice(writes, {"x": np.zeros(2)}, "writer")
    same = run_twice(lambda f: {"y": np.full(2, np.nan)}, {}, "nan")   # equal NaN bits are equal
    assert np.isnan(same["y"]).all()


def test_check_backend_reports_a_nondeterministic_backend(monkeypatch):
    from ridgeline.backends.llvm import LLVMExecutable
    real = LLVMExecutable.run
    count = iter(range(1000))

    def jitter(self, inputs=(), **kw):
        out = real(self, inputs, **kw)
        return {k: v + np.float32(next(count) * 1e-3) for k, v in out.items()}
    monkeypatch.setattr(LLVMExecutable, "run", jitter)
    with pytest.raises(BackendCheckError, match="not deterministic"):
        check_backend("llvm", _rotary_graph(2))


_MODEL_CI = settings(max_examples=4, deadline=None, derandomize=True, database=None,
                     suppress_health_check=list(HealthCheck))


@pytest.mark.parametrize("backend", ["llvm", "torch"])
def test_model_configs_match_numpy(backend):
    """Small Llama-style models over drawn configs (head dims, GQA/MQA, odd hidden sizes, batch,
    KV cache, rotary variants): llvm after the default pipeline, torch as exported, at 1e-4."""
    if backend == "torch":
        pytest.importorskip("torch")
    report = check_backend(backend, model_graphs(max_head_dim=48, max_seq=19, max_past=12),
                           pipeline="default" if backend == "llvm" else None, rtol=1e-4, settings=_MODEL_CI)
    assert report.compared >= 3, report


def test_model_configs_match_onnxruntime():
    pytest.importorskip("onnxruntime")
    report = check_onnxruntime(model_graphs(max_head_dim=48, max_seq=19, max_past=12), rtol=1e-4, settings=_MODEL_CI)
    assert report.compared >= 3, report


@pytest.mark.parametrize("cfg", [
    # the shapes: GQA 6/2, head dim 16, batch 2, transformers-style [1, S, D/2] caches, prefill and decode
    ModelConfig(96, 16, 2, 3, 160, 777, 1, 2, 7, 0, "full", "caches", True),
    ModelConfig(96, 16, 2, 3, 160, 777, 1, 2, 1, 9, "full", "caches", False),
    # MQA, head dim 80, partial rotary with position ids, batch 3 with a cache
    ModelConfig(83, 80, 1, 4, 100, 50, 1, 3, 5, 4, "partial", "ids", True),
], ids=["gqa-prefill", "gqa-decode", "mqa-partial"])
def test_named_configs_on_llvm_and_torch(cfg):
    g = build_model(cfg)
    for backend, pipeline in (("llvm", "default"), ("torch", None)):
        if backend == "torch":
            pytest.importorskip("torch")
        report = check_backend(backend, g, pipeline=pipeline, rtol=1e-4,
                               options={"strict": True} if backend == "llvm" else None)
        assert report.compared == 1, report


@pytest.mark.parametrize("family", sorted(KERNEL_SPACES))
def test_kernel_space_on_torch(family):
    """The same shape spaces on the torch backend (its broadcasts of caches, masks, indices)."""
    pytest.importorskip("torch")
    report = check_backend("torch", KERNEL_SPACES[family], settings=settings(_CI, max_examples=12))
    assert report.compared >= 6, report
