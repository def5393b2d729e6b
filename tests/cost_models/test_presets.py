"""LLM presets: structure, parameter counts, meta, dtypes — and that their graphs really compute a
transformer (a tiny config with random weights, run on the numpy reference)."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from ridgeline import models
from ridgeline.backends.numpy import NumpyBackend
from ridgeline.ir.errors import ModelError
from ridgeline.ir.stats import summarize
from ridgeline.models.builder import BuildOptions, build_graph
from ridgeline.models.config import TransformerConfig

# published parameter counts (model cards / config arithmetic)
PARAMS = {"gpt2": 124_439_808, "bert-base": 108_891_648, "llama-2-7b": 6_738_415_616,
          "llama-2-13b": 13_015_864_320, "llama-2-70b": 68_976_648_192, "llama-3-8b": 8_030_261_248,
          "llama-3-70b": 70_553_706_496, "llama-3.1-405b": 405_853_388_800}


@pytest.mark.parametrize("name", models.preset_names())
def test_presets_build_verify_and_count_parameters(name):
    phases = ("prefill",) if name == "bert-base" else ("prefill", "decode")
    for phase in phases:
        g = models.build(name, phase=phase, context=64)
        g.verify()
        weights = sum(c.type.numel for c in g.constants.values() if c.data is None and "rope" not in c.name)
        assert weights == PARAMS[name]
        assert all(c.data is None for c in g.constants.values() if c.type.numel > 64)   # weightless
        m = g.meta["llm"]
        assert m["phase"] == phase and m["context"] == 64 and m["preset"] == name
        if name != "bert-base":
            assert sum(1 for n in g if n.op == "Attention") == m["layers"]
            layers = {n.meta.get("layer") for n in g if "layer" in n.meta}
            assert layers == set(range(m["layers"]))
    assert summarize(g).parameters >= PARAMS[name]


def test_llama_ops_and_gqa_shapes():
    g = models.build("llama-3-70b", phase="decode", context=100)
    ops = g.op_histogram()
    assert ops["MatMul"] == 80 * 7 + 1 and ops["RMSNormalization"] == 2 * 80 + 1 and ops["RotaryEmbedding"] == 160
    att = next(n for n in g if n.op == "Attention")
    assert att.attr("q_num_heads") == 64 and att.attr("kv_num_heads") == 8 and att.attr("is_causal") == 1
    assert att.inputs[4].type.shape == (1, 8, 99, 128)                 # past KV: context - 1 tokens
    assert att.outputs[1].type.shape == (1, 8, 100, 128)
    assert g.outputs[0].type.shape == (1, 1, 128256)


def test_prefill_computes_only_the_last_logits_unless_asked():
    last = models.build("llama-3-8b", phase="prefill", context=32)
    assert last.outputs[0].type.shape == (1, 128256)
    full = models.build("llama-3-8b", phase="prefill", context=32, logits="all")
    assert full.outputs[0].type.shape == (1, 32, 128256)


def test_405b_graph_is_small():
    import pickle
    g = models.build("llama-3.1-405b", phase="decode", context=131072)
    assert len(pickle.dumps(g.meta)) < 10_000
    assert sum(c.data.nbytes for c in g.constants.values() if c.data is not None) < 100_000
    assert len(str(g)) < 3_000_000                          # the whole text form, weights elided by nature


@pytest.mark.parametrize("kw, fragment", [
    ({"phase": "training"}, "phase must be"), ({"batch": 0}, "batch must be a positive integer"),
    ({"context": -3}, "context must be"), ({"dtype": "int3"}, "unknown dtype"), ({"prompt": 99, "context": 10,
                                                                                  "phase": "prefill"}, "exceeds"),
    ({"kv_dtype": "int4"}, "not supported"),
])
def test_bad_options(kw, fragment):
    with pytest.raises(ModelError, match=fragment):
        models.build("llama-3-8b", **kw)


def test_unknown_preset_and_encoder_decode():
    with pytest.raises(ModelError, match="did you mean llama-3-8b"):
        models.build("llama-3-8c")
    with pytest.raises(ModelError, match="no decode phase"):
        models.build("bert-base", phase="decode")
    assert models.find_preset("LLAMA-3.1-405B") is models.find_preset("llama-3_1-405b")


def test_companion_is_the_other_phase():
    g = models.build("llama-3-8b", phase="decode", context=512, dtype="fp8", batch=4)
    c = models.companion(g)
    assert c.meta["llm"]["phase"] == "prefill" and c.meta["llm"]["prompt"] == 512
    assert c.meta["llm"]["act_dtype"] == "f8e4m3" and c.meta["llm"]["batch"] == 4


# --------------------------------------------------------------------------- numerics
TINY = TransformerConfig("tiny-llama", "llama", layers=2, hidden=64, heads=4, kv_heads=2, intermediate=96,
                         vocab=50, max_context=32, rope_theta=10000.0)


def _fill(g, rng_weights):
    """Give every weightless constant the seeded data of its name (RoPE caches: the real tables)."""
    for c in g.constants.values():
        if c.data is not None:
            continue
        if c.name.startswith("rope."):
            n, half = c.type.shape
            inv = 1.0 / (TINY.rope_theta ** (np.arange(half) * 2.0 / (2 * half)))
            ang = np.outer(np.arange(n), inv)
            arr = np.cos(ang) if "cos" in c.name else np.sin(ang)
        else:
            arr = rng_weights.setdefault(c.name, np.random.default_rng(zlib.crc32(c.name.encode()))
                                         .standard_normal(c.type.shape) * (0.3 if "norm" not in c.name else 0.1) +
                                         (1.0 if "norm" in c.name else 0.0))
        arr = np.asarray(arr, np.float32)
        arr.setflags(write=False)
        c.data = arr


def test_tiny_llama_graph_runs_and_its_kv_cache_is_consistent():
    weights: dict = {}
    n = 12
    pre = build_graph(TINY, BuildOptions("prefill", 1, n, n, "f32", "f32", "f32", "f32", 0, "all"))
    _fill(pre, weights)
    pre.verify()
    ids = np.random.default_rng(0).integers(0, TINY.vocab, size=(1, n)).astype(np.int64)
    pos = np.arange(n, dtype=np.int64)[None]
    full = NumpyBackend().compile(pre).run({"input_ids": ids, "position_ids": pos})
    logits_all = full[pre.outputs[0].name]
    assert logits_all.shape == (1, n, TINY.vocab) and np.isfinite(logits_all).all()
    # prefill n-1 tokens, then decode the last one from the cache: same logits as the full prefill
    p1 = build_graph(TINY, BuildOptions("prefill", 1, n - 1, n - 1, "f32", "f32", "f32", "f32", 0, "last"))
    _fill(p1, weights)
    out1 = NumpyBackend().compile(p1).run({"input_ids": ids[:, :-1], "position_ids": pos[:, :-1]})
    dec = build_graph(TINY, BuildOptions("decode", 1, n, 1, "f32", "f32", "f32", "f32", 0, "last"))
    _fill(dec, weights)
    feeds = {"input_ids": ids[:, -1:], "position_ids": pos[:, -1:]}
    for i in range(TINY.layers):
        feeds[f"past_key.{i}"] = out1[f"present_key.{i}"]
        feeds[f"past_value.{i}"] = out1[f"present_value.{i}"]
    out2 = NumpyBackend().compile(dec).run(feeds)
    np.testing.assert_allclose(out2["lm_head"][0, 0], logits_all[0, -1], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out1["lm_head"][0], logits_all[0, -2], rtol=1e-4, atol=1e-4)
    # causality: changing the last token does not change earlier logits
    ids2 = ids.copy()
    ids2[0, -1] = (ids2[0, -1] + 1) % TINY.vocab
    other = NumpyBackend().compile(pre).run({"input_ids": ids2, "position_ids": pos})[pre.outputs[0].name]
    np.testing.assert_allclose(other[0, :-1], logits_all[0, :-1], rtol=1e-5, atol=1e-5)
    assert not np.allclose(other[0, -1], logits_all[0, -1])


def test_tiny_llama_int8_weights_dequantize():
    weights: dict = {}
    n = 6
    g = build_graph(TINY, BuildOptions("prefill", 1, n, n, "i8", "f32", "f32", "f32", 0, "last"))
    for c in g.constants.values():
        if c.data is None:
            rng = np.random.default_rng(zlib.crc32(c.name.encode()))
            if c.type.dtype.name == "i8":
                arr = rng.integers(-127, 128, size=c.type.shape).astype(np.int8)
            elif "scales" in c.name:
                arr = np.full(c.type.shape, 0.01, np.float32)
            else:
                arr = rng.standard_normal(c.type.shape).astype(np.float32) * 0.3 + ("norm" in c.name)
            arr.setflags(write=False)
            c.data = arr
    g.verify()
    out = NumpyBackend().compile(g).run({"input_ids": np.arange(n, dtype=np.int64)[None] % TINY.vocab,
                                         "position_ids": np.arange(n, dtype=np.int64)[None]})
    assert np.isfinite(out["lm_head"]).all()
    _ = weights
