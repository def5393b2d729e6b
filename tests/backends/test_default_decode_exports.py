"""A Llama exported from transformers with DEFAULT settings as a *decode* graph (SDPA attention, no
position ids, GQA 6/2, dynamic batch/seq/past, one graph for past 0 and past > 0), by both torch
exporters: llvm (after the default pipeline, bounds-checked), torch and numpy against onnxruntime
at 1e-4 relative, batch 2-3 with left padding, past 0 and past > 0, each executable run twice and
required bitwise equal. The exports in tests/models pass position ids, so their rotary tables have
the batch's shape; this one broadcasts [1, seq, head_dim/2] tables over the batch and the cache.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("llvmlite")
pytest.importorskip("torch")
pytest.importorskip("transformers")
ort = pytest.importorskip("onnxruntime")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from decode_exports import LLAMA, export_decode, kv_shape

from ridgeline import api
from ridgeline.backends.registry import get_backend
from ridgeline.testing.differential import run_twice

VARIANTS = [("legacy", 17), ("dynamo", 18)]
RTOL = 1e-4
LAYERS = LLAMA["num_hidden_layers"]


def _feeds(batch: int, seq: int, past: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    mask = np.ones((batch, past + seq), np.int64)
    for r in range(1, batch):  # row r is left-padded by r tokens (inside the past when there is one)
        mask[r, :min(r, past + seq - 1)] = 0
    feeds = {"input_ids": rng.integers(0, LLAMA["vocab_size"], (batch, seq)).astype(np.int64),
             "attention_mask": mask}
    for i in range(LAYERS):
        for kv in ("key", "value"):
            feeds[f"past_key_values.{i}.{kv}"] = rng.standard_normal(kv_shape(LLAMA, batch, past)).astype(np.float32)
    return feeds


def _rel(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-30))


@pytest.mark.slow
@pytest.mark.parametrize("exporter,opset", VARIANTS, ids=[f"{e}{o}" for e, o in VARIANTS])
def test_default_llama_decode_export_on_every_backend(exporter, opset):
    path = export_decode(LLAMA, exporter, opset)
    graph = api.load(path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    exes = {"numpy": get_backend("numpy").compile(graph), "llvm": api.compile(graph, "llvm", strict=True),
            "torch": api.compile(graph, "torch")}
    names = [o.name for o in session.get_outputs()]
    assert len(names) == 1 + 2 * LAYERS
    for batch, seq, past in ((2, 4, 0), (3, 1, 6)):  # prefill at past 0; a cached step (llvm compiles each)
        feeds = _feeds(batch, seq, past, seed=batch * 100 + past)
        want = dict(zip(names, session.run(None, feeds)))
        assert want["present.0.key"].shape[2] == past + seq
        for name, exe in exes.items():
            got = run_twice(exe.run, feeds, f"{name} at batch {batch}, past {past}")
            for out in names:
                rel = _rel(got[out], want[out])
                assert rel < RTOL, f"{name} {out}, batch {batch} seq {seq} past {past}: relative error {rel:.3g}"
    assert not exes["llvm"].plan.fallbacks
