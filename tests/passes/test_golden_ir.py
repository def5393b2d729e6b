"""The printed IR of every test model after the standard pipelines stays byte-identical.

A guard for refactors of the IR and pass machinery (issue 16): a change that is meant to keep
behaviour must keep these hashes. The hashes live in ``golden_ir.json`` beside this file; they
were generated on main at afe5910. Constants above 16 elements print as ``<elided N bytes>`` so
that a folded table computed with a CPU's own SIMD ``sin`` cannot make the hash machine-specific;
the structure, types, names, attributes and every small constant are covered. Unknown dims
(``_ui<N>``) are numbered per graph, so the hashes do not depend on what ran before.

When a change is *meant* to alter the IR, regenerate with
``RIDGELINE_UPDATE_GOLDEN=1 python -m pytest tests/passes/test_golden_ir.py`` and say why in the
commit (``git diff`` of the JSON shows which models moved).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import pytest

from ridgeline.api import load, optimize
from ridgeline.ir.printer import print_graph

HERE = Path(__file__).resolve().parent
MODELS = HERE.parent / "models"
GOLDEN = HERE / "golden_ir.json"

#: every exported test model, and zoo files whose architectures the top level lacks
#: (encoder-decoder, cross-attention decode, GQA with qk-norm, sliding window, fused qkv)
ZOO = ["t5-legacy17-prefill", "whisper_decoder-dynamo23-decode", "qwen3-dynamo23-decode",
       "gemma3-legacy17-decode", "bert-dynamo23-prefill", "phi3-dynamo18-prefill"]
#: quantization rewrites (weights, static activations, the KV cache) on one model of each family
QUANT = {"default,quantize{scheme=int8,kv=int8}": ["llama-dynamo23-decode", "gpt2-legacy17-decode"],
         "default,quantize{scheme=w8a8-static,samples=1}": ["llama-legacy17-prefill"]}


def _cases() -> list[tuple[str, str]]:
    cases = [(p.relative_to(MODELS).as_posix(), "default") for p in sorted(MODELS.glob("*.onnx"))]
    cases += [(f"zoo/{z}.onnx", "default") for z in ZOO]
    cases += [(f"{m}.onnx", pipe) for pipe, ms in QUANT.items() for m in ms]
    return cases


#: a float literal of the printed IR (small constants are printed in full)
FLOAT = re.compile(r"-?\d+\.\d+(?:e[+-]?\d+)?")


def _digest(model: str, pipeline: str) -> str:
    """Calibrated scales (kv=int8, w8a8-static) come from float32 runs whose last bits depend on
    the CPU's BLAS kernel (AVX2 vs AVX-512), so float literals are hashed to 6 significant digits."""
    g = optimize(load(MODELS / model), pipeline)
    text = FLOAT.sub(lambda m: f"{float(m.group()):.6g}", print_graph(g, constants="elide"))
    return hashlib.sha256(text.encode()).hexdigest()


def _key(model: str, pipeline: str) -> str:
    return f"{model} | {pipeline}"


@pytest.fixture(scope="module")
def golden():
    data = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
    updated: dict[str, str] = {}
    yield data, updated
    if os.environ.get("RIDGELINE_UPDATE_GOLDEN") == "1":  # xdist workers each merge only their share
        merged = {**(json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}), **updated}
        GOLDEN.write_text(json.dumps(dict(sorted(merged.items())), indent=1) + "\n")


@pytest.mark.no_verify_each  # the hash is the check; verifying each pass doubles the time
@pytest.mark.parametrize("model,pipeline", _cases())
def test_printed_ir_unchanged(golden, model, pipeline):
    golden, updated = golden
    got = _digest(model, pipeline)
    key = _key(model, pipeline)
    if os.environ.get("RIDGELINE_UPDATE_GOLDEN") == "1":
        updated[key] = got
        return
    assert key in golden, f"no golden hash for {key}: run with RIDGELINE_UPDATE_GOLDEN=1"
    assert got == golden[key], (f"{key}: the printed IR changed; if that is intended, regenerate "
                                f"(RIDGELINE_UPDATE_GOLDEN=1) and say why in the commit")
