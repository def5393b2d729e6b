"""The passes on every exported model in tests/models: outputs kept (numpy reference, 1e-5
relative), one Attention per layer for all families and both exporters, ≥5× fewer nodes for the
legacy GPT-2/Llama exports, and the optimized ONNX file runs in onnxruntime with the same outputs."""

from __future__ import annotations

import pytest

from exported_models import MODELS, assert_outputs_close, dims_for, entries, feeds_for, ort_run
from ridgeline.api import reference_evaluator
from ridgeline.backends.numpy import Interpreter
from ridgeline.frontends.onnx import load_onnx, to_onnx
from ridgeline.passes import run_pipeline

if not (MODELS / "manifest.json").is_file():  # pragma: no cover - the models ship with the repo
    pytest.skip("tests/models/manifest.json is missing", allow_module_level=True)

ALL = entries()
LAYERS = 2
RTOL = 1e-5


def _bound(e, batch=2, seq=5, past=3):
    dims = dims_for(e, batch, seq, past)
    g = load_onnx(MODELS / e["file"])
    return g.bind({k: v for k, v in dims.items() if k in g.symbols()}), dims


def _ids(es):
    return [e["file"].removesuffix(".onnx") for e in es]


@pytest.mark.parametrize("e", ALL, ids=_ids(ALL))
def test_default_keeps_outputs_fuses_attention_and_runs_in_onnxruntime(e):
    g, dims = _bound(e)
    feeds = feeds_for(e, dims, seed=1)
    ref = Interpreter(g).run(feeds)
    opt = g.copy()
    report = run_pipeline(opt, "default", evaluator=reference_evaluator())
    assert report.nodes_before == len(g) and report.nodes_after == len(opt)

    assert_outputs_close(e, Interpreter(opt).run(feeds), ref, feeds, dims, rtol=RTOL, what="after -p default")
    hist = opt.op_histogram()
    assert hist.get("Attention") == LAYERS, hist
    if e["exporter"] == "legacy" and e["family"] in ("gpt2", "llama"):
        assert len(g) >= 5 * len(opt), f"{len(g)} -> {len(opt)} nodes"
    else:
        assert len(opt) < len(g)
    if e["family"] == "llama":
        assert hist.get("RMSNormalization") == 2 * LAYERS + 1 and hist.get("RotaryEmbedding") == 2 * LAYERS
    if e["phase"] == "decode":  # the KV cache is the attention's own: present_* come out of it
        for n in opt:
            if n.op == "Attention":
                assert len(n.outputs) == 3 and n.outputs[1].name.startswith("present")
    assert all(n.attr("kind") in ("elementwise", "matmul-epilogue") for n in opt if n.op == "Fused")

    onnx_bytes = to_onnx(opt).SerializeToString()
    assert_outputs_close(e, ort_run(onnx_bytes, feeds), ref, feeds, dims, rtol=RTOL, what="in onnxruntime")


LEGACY = entries(exporter="legacy", opset=17)


@pytest.mark.parametrize("e", LEGACY, ids=_ids(LEGACY))
def test_default_on_symbolic_dims(e):
    # nothing bound: shape chains stay, but the fusions still fire and the meaning is the same
    g = load_onnx(MODELS / e["file"])
    opt = g.copy()
    run_pipeline(opt, "default", evaluator=reference_evaluator())
    assert opt.op_histogram().get("Attention") == LAYERS
    assert opt.symbols() == g.symbols()
    for batch, seq in ((1, 3), (2, 6)):
        dims = dims_for(e, batch, seq, 2)
        feeds = feeds_for(e, dims, seed=batch)
        assert_outputs_close(e, Interpreter(opt).run(feeds), Interpreter(g).run(feeds), feeds, dims, rtol=RTOL,
                             what="symbolic -p default")


PASSES = ["shape-inference", "fold-constants", "canonicalize", "cse", "dce", "fuse-attention", "fuse-rotary",
          "fuse-layernorm", "fuse-rmsnorm", "fuse-gelu", "fuse-matmul-epilogue", "fuse-elementwise"]
ONE_PER_KIND = [e for e in ALL if e["opset"] in (17, 18, 23) and (e["exporter"], e["opset"]) in
                (("legacy", 17), ("dynamo", 18), ("dynamo", 23))]


@pytest.mark.parametrize("e", ONE_PER_KIND, ids=_ids(ONE_PER_KIND))
def test_each_pass_alone_keeps_outputs(e):
    g, dims = _bound(e)
    feeds = feeds_for(e, dims, seed=2)
    ref = Interpreter(g).run(feeds)
    base = g.copy()
    run_pipeline(base, "cleanup", evaluator=reference_evaluator())
    fired = {}
    for name in PASSES:
        work = base.copy()
        report = run_pipeline(work, name, evaluator=reference_evaluator())
        fired[name] = report.modified
        assert_outputs_close(e, Interpreter(work).run(feeds), ref, feeds, dims, rtol=RTOL, what=f"after {name}")
    assert fired["fuse-matmul-epilogue"]
    if e["opset"] < 23:  # opset-23 dynamo exports already use Attention, RMSNormalization, RotaryEmbedding
        assert fired["fuse-attention"]
    if e["family"] == "llama" and e["opset"] < 23:
        assert fired["fuse-rmsnorm"] and fired["fuse-rotary"]
    if e["family"] in ("gpt2", "bert") and e["opset"] < 23:
        assert fired["fuse-gelu"]
