"""A Llama exported from transformers with DEFAULT settings — SDPA attention, no position ids, so
the rotary cos/sin are computed once as [1, seq, head_dim/2] and broadcast over the batch — by
both torch exporters, run on llvm (after the default pipeline, bounds-checked), torch and numpy
against onnxruntime at batch 1…3, each executable twice (bitwise equal).

The exports in tests/models pass position ids explicitly (the legacy exporter needs that for its
decode graphs), so their caches have the batch's shape: llvm read a [1, S, D/2] cache past its
end at batch >= 2 and no test saw it. Exports are cached under the temp dir (the dynamo exporter
takes tens of seconds), keyed by the torch/transformers versions and this config.
"""

from __future__ import annotations

import hashlib
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("llvmlite")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
ort = pytest.importorskip("onnxruntime")

from ridgeline import api
from ridgeline.backends.registry import get_backend
from ridgeline.testing.differential import run_twice

#: the issue's shape: GQA 6/2, head dim 16, hidden 96, intermediate 160, vocab 777 (one layer here)
CONFIG = {"hidden_size": 96, "num_attention_heads": 6, "num_key_value_heads": 2, "head_dim": 16,
          "intermediate_size": 160, "vocab_size": 777, "num_hidden_layers": 1, "max_position_embeddings": 256}
VARIANTS = [("legacy", 17), ("dynamo", 18)]
RTOL = 1e-4


def _export(exporter: str, opset: int) -> Path:
    key = hashlib.sha1(repr((sorted(CONFIG.items()), exporter, opset, torch.__version__,
                             transformers.__version__)).encode()).hexdigest()[:12]
    path = Path(tempfile.gettempdir()) / "ridgeline-default-exports" / f"llama-{exporter}{opset}-{key}.onnx"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**CONFIG)).eval()

    class Step(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = model

        def forward(self, input_ids, attention_mask):
            return self.m(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits

    ids = torch.randint(0, CONFIG["vocab_size"], (2, 5))
    mask = torch.ones(2, 5, dtype=torch.int64)
    names = {"input_names": ["input_ids", "attention_mask"], "output_names": ["logits"]}
    tmp = path.with_suffix(".part")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        if exporter == "legacy":
            axes = {n: {0: "batch", 1: "seq"} for n in ("input_ids", "attention_mask", "logits")}
            torch.onnx.export(Step(), (ids, mask), str(tmp), dynamo=False, opset_version=opset, dynamic_axes=axes,
                              **names)
        else:
            shapes = {n: {0: "batch", 1: "seq"} for n in ("input_ids", "attention_mask")}
            torch.onnx.export(Step(), (ids, mask), dynamo=True, opset_version=opset, dynamic_shapes=shapes,
                              verbose=False, **names).save(str(tmp))
    tmp.replace(path)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("exporter,opset", VARIANTS, ids=[f"{e}{o}" for e, o in VARIANTS])
def test_default_llama_export_on_every_backend(exporter, opset):
    path = _export(exporter, opset)
    graph = api.load(path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    exes = {"numpy": get_backend("numpy").compile(graph), "llvm": api.compile(graph, "llvm", strict=True),
            "torch": api.compile(graph, "torch")}
    for batch, seq in ((1, 5), (2, 7), (3, 4)):
        rng = np.random.default_rng(batch)
        feeds = {"input_ids": rng.integers(0, CONFIG["vocab_size"], (batch, seq)).astype(np.int64),
                 "attention_mask": np.ones((batch, seq), np.int64)}
        want = session.run(None, feeds)[0]
        for name, exe in exes.items():
            got = run_twice(exe.run, feeds, f"{name} at batch {batch}")["logits"]
            rel = float(np.abs(got - want).max() / np.abs(want).max())
            assert rel < RTOL, f"{name}, batch {batch}, seq {seq}: relative error {rel:.3g}"
    assert not exes["llvm"].plan.fallbacks
