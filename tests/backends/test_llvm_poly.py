"""One llvm executable serves a whole generation: the KV cache grows by one token per step and
nothing is planned or compiled after the first step, and every step gives the bits of an
executable specialized on that step's shapes (``polymorphic=False``) — checked over generated
batches, cache lengths and numbers of steps, on decode exports of both torch exporters and on a
Llama exported with transformers' default settings (SDPA, no position ids, a DynamicCache).
Bounds-checked (``RIDGELINE_LLVM_CHECKED=1``, conftest): the checks see each run's sizes.
"""

from __future__ import annotations

import hashlib
import tempfile
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("llvmlite")

from ridgeline import api
from ridgeline.backends.llvm.executor import STATS
from ridgeline.backends.numpy import NumpyBackend

MODELS = Path(__file__).resolve().parents[1] / "models"
EXPORTS = ["gpt2-legacy17-decode", "llama-dynamo18-decode", "llama-default-with-past"]

#: a default-settings Llama with a KV cache: GQA 4/2, head dim 8, two layers
CONFIG = {"hidden_size": 32, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8,
          "intermediate_size": 48, "vocab_size": 97, "num_hidden_layers": 2, "max_position_embeddings": 128}


def _export_default() -> Path:
    """transformers' default export (SDPA, no position ids) with ``past_key_values.{i}.key/value``
    inputs and ``present.{i}.*`` outputs; cached in the temp dir by versions and config."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    key = hashlib.sha1(repr((sorted(CONFIG.items()), torch.__version__, transformers.__version__)).encode()).hexdigest()[:12]
    path = Path(tempfile.gettempdir()) / "ridgeline-default-exports" / f"llama-with-past-{key}.onnx"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(**CONFIG)
    model = transformers.LlamaForCausalLM(cfg).eval()
    n = cfg.num_hidden_layers

    class Step(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = model

        def forward(self, input_ids, attention_mask, *past):
            cache = transformers.DynamicCache(ddp_cache_data=[(past[2 * i], past[2 * i + 1]) for i in range(n)],
                                              config=cfg)
            o = self.m(input_ids=input_ids, attention_mask=attention_mask, past_key_values=cache, use_cache=True)
            return (o.logits, *[t for layer in o.past_key_values.layers[:n] for t in (layer.keys, layer.values)])

    pn = [f"past_key_values.{i}.{kv}" for i in range(n) for kv in ("key", "value")]
    on = [f"present.{i}.{kv}" for i in range(n) for kv in ("key", "value")]
    axes = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "total"},
            "logits": {0: "batch", 1: "seq"}}
    axes.update({k: {0: "batch", 2: "past"} for k in pn})
    axes.update({k: {0: "batch", 2: "total"} for k in on})
    past = [torch.randn(2, 2, 3, 8) for _ in pn]
    tmp = path.with_suffix(".part")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(Step(), (torch.randint(0, 97, (2, 4)), torch.ones(2, 7, dtype=torch.int64), *past), str(tmp),
                          dynamo=False, opset_version=17, input_names=["input_ids", "attention_mask", *pn],
                          output_names=["logits", *on], dynamic_axes=axes)
    tmp.replace(path)
    return path


@cache
def _graph(name: str):
    path = _export_default() if name == "llama-default-with-past" else MODELS / f"{name}.onnx"
    return api.optimize(api.load(str(path)), "default")


def _size(d, env: dict[str, int]) -> int:
    return d if isinstance(d, int) else int(eval(d, {}, env))   # dims such as "past + seq"


def _feeds(graph, rng, batch: int, past: int, seq: int, cache: dict | None = None) -> dict[str, np.ndarray]:
    env = {"batch": batch, "seq": seq, "past": past, "total": past + seq}
    feeds = {}
    for v in graph.inputs:
        shape = tuple(_size(d, env) for d in v.type.shape)
        if v.name == "input_ids":
            feeds[v.name] = rng.integers(0, 90, shape).astype(np.int64)
        elif v.name == "attention_mask":
            m = np.ones(shape, np.int64)
            m[1:, :1] = 0   # the second row left-padded by one token
            feeds[v.name] = m
        elif v.name == "position_ids":
            feeds[v.name] = np.broadcast_to(np.arange(past, past + seq), shape).astype(np.int64).copy()
        elif cache is not None and v.name in cache:
            feeds[v.name] = cache[v.name]
        else:
            feeds[v.name] = rng.standard_normal(shape).astype(np.float32)
    return feeds


def _present_to_past(graph, outs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The step's present caches under the next step's past input names (both naming schemes)."""
    past = [v.name for v in graph.inputs if v.type.rank == 4]
    present = [v.name for v in graph.outputs if v.type.rank == 4]
    return {p: outs[q] for p, q in zip(past, present)}


@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))  # past + steps < 64 positions
@given(name=st.sampled_from(EXPORTS), batch=st.integers(1, 2), past=st.integers(0, 56), steps=st.integers(2, 3),
       seed=st.integers(0, 2**16))
def test_generation_compiles_once_and_matches_per_shape_bits(name, batch, past, steps, seed):
    graph = _graph(name)
    rng = np.random.default_rng(seed)
    poly = api.compile(graph, backend="llvm", pipeline="")
    assert {"past"} <= set(poly.runtime_dims) | ({"total"} if "total" in poly.runtime_dims else set())
    cache = None
    for step in range(steps):
        feeds = _feeds(graph, rng, batch, past + step, 1, cache)
        got = poly.run(feeds)
        if step == 0:
            counts = dict(poly.compile_count)
            assert counts["plans"] == 1
            built = dict(STATS)   # process-wide: nested plans (of fused bodies) count too
        assert poly.compile_count == counts, f"step {step} planned or compiled again"
        assert STATS == built, f"step {step} planned or compiled again"
        per_shape = api.compile(graph, backend="llvm", pipeline="", polymorphic=False)
        want = per_shape.run(feeds)
        built = dict(STATS)
        for k in want:
            assert got[k].shape == want[k].shape
            assert np.array_equal(got[k], want[k], equal_nan=True), f"{k} differs from the per-shape plan at step {step}"
        cache = _present_to_past(graph, got)
    ref = NumpyBackend().compile(graph).run(feeds)
    for k in ref:
        np.testing.assert_allclose(got[k], ref[k], rtol=1e-4, atol=1e-4 * float(np.abs(ref[k]).max() or 1))


def test_a_dim_reaching_other_kernels_is_specialized():
    """Unfused attention (MatMul over the keys) cannot read sizes at run time: past is left out
    of the runtime dims, and a new cache length builds (and counts) a new plan."""
    graph = api.load(str(MODELS / "gpt2-legacy17-decode.onnx"))
    exe = api.compile(graph, backend="llvm", pipeline="")
    assert "past" not in exe.runtime_dims
    rng = np.random.default_rng(0)
    exe.run(_feeds(graph, rng, 1, 3, 1))
    exe.run(_feeds(graph, rng, 1, 4, 1))
    assert exe.compile_count["plans"] == 2


def test_a_new_batch_or_seq_is_a_new_plan_and_old_plans_are_kept():
    graph = _graph("llama-dynamo18-decode")
    exe = api.compile(graph, backend="llvm", pipeline="")
    rng = np.random.default_rng(1)
    for b, s, p in [(1, 1, 5), (2, 1, 5), (1, 3, 0), (1, 1, 9), (2, 1, 2)]:
        exe.run(_feeds(graph, rng, b, p, s))
    assert exe.compile_count["plans"] == 3   # (1, 1), (2, 1) and (1, 3); past never counts
