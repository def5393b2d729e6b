"""``-p default`` on the model zoo: default-setting transformers exports (SDPA attention, no
position_ids, dynamic axes) of a dozen architectures, both exporters, prefill and decode.

Every file below opset 23 also saved with ``emit="ort-contrib"``: every Attention and RoPE a
com.microsoft contrib op, onnxruntime agreeing at batch 1 and 3 (and a KV cache for decode steps).

Every file (through `-p default`; with verify-each on one file per architecture and on the bound runs),
with its symbolic dims left unbound (the model users deploy): one Attention per layer
and the norms/rotary/GELU the manifest expects, outputs equal to onnxruntime on the original file
(numpy reference, 1e-5 relative), and the optimized file runs in onnxruntime (1e-4 relative) at the opset the file came in. A
subset again with the dims bound, where fold-constants turns the shape chains and RoPE tables into
constants first. Nothing here reads node names: counts and outputs only.
"""

from __future__ import annotations

import pytest
from exported_models import ort_run
from zoo_models import ZOO, assert_zoo_close, zoo_dims, zoo_entries, zoo_feeds

from ridgeline.api import reference_evaluator
from ridgeline.backends.numpy import Interpreter
from ridgeline.frontends.onnx import load_onnx, to_onnx
from ridgeline.frontends.onnx.lowering import STD_DOMAIN, standard_op
from ridgeline.frontends.onnx.ort_contrib import CONTRIB_DOMAIN
from ridgeline.passes import run_pipeline

ALL = zoo_entries()
if not ALL:  # pragma: no cover - the zoo ships with the repo
    pytest.skip("tests/models/zoo/manifest.json is missing", allow_module_level=True)
# bound: every architecture once (legacy prefill) and the dynamo decode steps of the rotary decoders
BOUND = [e for e in ALL if (e["exporter"], e["phase"]) == ("legacy", "prefill")
         or e["phase"] == "decode" and e["opset"] == 18 and e["family"] in ("llama", "gemma3")]


def _ids(es):
    return [e["file"].removesuffix(".onnx") for e in es]


def _histogram(g) -> dict[str, int]:
    """Op counts including the bodies of Fused nodes (a Gelu inside a matmul epilogue counts)."""
    hist: dict[str, int] = {}
    for n in g:
        hist[n.op] = hist.get(n.op, 0) + 1
        if n.body is not None:
            for k, v in _histogram(n.body).items():
                hist[k] = hist.get(k, 0) + v
    return hist


def _optimize_and_check(e, g, dims, verify_each: bool = True):
    opt = g.copy()
    # verifying after each of the 16 passes is 8x the pipeline's time: every architecture gets
    # it (legacy prefill, and the bound runs); the other files verify the result once
    run_pipeline(opt, "default", evaluator=reference_evaluator(), verify_each=verify_each)
    opt.verify()
    hist = _histogram(opt)
    assert hist.get("Attention", 0) == e["expect"]["Attention"], (e["file"], hist)
    for op, n in e["expect"].items():
        assert hist.get(op, 0) >= n, (e["file"], op, hist)
    assert len(opt) < len(g)
    _check_attention_facts(e, opt)
    feeds = zoo_feeds(e, dims, seed=1)
    ref = ort_run(ZOO / e["file"], feeds)
    assert_zoo_close(e, Interpreter(opt).run(feeds), ref, feeds, dims, rtol=1e-5, what="numpy after -p default")
    model = to_onnx(opt)
    # the file keeps the opset it came in: fused ops newer than that are model-local functions
    assert {o.domain: o.version for o in model.opset_import}[""] == e["opset"], e["file"]
    data = model.SerializeToString()
    assert_zoo_close(e, ort_run(data, feeds), ref, feeds, dims, rtol=1e-4, what="optimized in onnxruntime")
    return opt, data


def _check_attention_facts(e, opt):
    """Encoder-decoder parts: ``cross_attention`` Attention nodes read K/V of the encoder's length
    (not the query's) and mask no future; T5's are unscaled (``attention_scale``)."""
    attn = [n for n in opt if n.op == "Attention"]
    if "cross_attention" in e:
        states = next(v for v in opt.inputs if v.name == e["inputs"][1]["name"])  # (batch, enc, hidden)
        enc = states.type.shape[1]  # "enc", or its value when the dims are bound
        cross = [n for n in attn if n.inputs[1].type.shape[-2 if n.inputs[1].type.rank == 4 else 1] == enc]
        assert len(cross) == e["cross_attention"], (e["file"], [str(n.inputs[1].type) for n in attn])
        assert not any(n.attr("is_causal") for n in cross), e["file"]
    if "attention_scale" in e:
        assert all(n.attr("scale") is not None and abs(n.attr("scale") - e["attention_scale"]) < 1e-6 for n in attn), \
            (e["file"], [n.attr("scale") for n in attn])


def _check_ort_contrib(e, g, opt, runs=None):
    """--emit ort-contrib: every Attention/RotaryEmbedding a com.microsoft contrib op (none left a
    function), and onnxruntime agrees with the original at batch 1 and 3 (a KV cache for decode),
    or at the given ``runs`` (dims) for a bound graph."""
    notes: list[str] = []
    model = to_onnx(opt, emit="ort-contrib", notes=notes)
    std = [standard_op(n) for n in model.graph.node if n.domain == STD_DOMAIN]
    assert not notes and "Attention" not in std and "RotaryEmbedding" not in std, (e["file"], notes, std)
    contrib = [n.op_type for n in model.graph.node if n.domain == CONTRIB_DOMAIN]
    assert contrib.count("MultiHeadAttention") == e["expect"]["Attention"], (e["file"], contrib)
    data = model.SerializeToString()
    for dims in runs or [zoo_dims({**e, "ort_batch1_only": False}, batch=b, seq=4, past=2) for b in (1, 3)]:
        batch = dims.get("batch", 1)
        feeds = zoo_feeds(e, dims, seed=batch)
        # the original in onnxruntime; the numpy reference of it where onnxruntime rejects the
        # original at batch >= 2 (torch's opset-23 RoPE, ort_batch1_only)
        ref = Interpreter(g).run(feeds) if e.get("ort_batch1_only") and batch > 1 else ort_run(ZOO / e["file"], feeds)
        assert_zoo_close(e, ort_run(data, feeds), ref, feeds, dims, rtol=1e-4, what=f"ort-contrib at batch {batch}")


def _ort_graph_nodes(source, tmp_path, tag: str) -> int:
    """Nodes of the graph onnxruntime runs: after its own graph optimizations (all levels) and
    after inlining model-local functions."""
    import onnx
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.optimized_model_filepath = str(tmp_path / f"{tag}.ort.onnx")
    ort.InferenceSession(source, so, providers=["CPUExecutionProvider"])
    return len(onnx.load(so.optimized_model_filepath, load_external_data=False).graph.node)


def _check_no_more_work_in_onnxruntime(e, opt, tmp_path):
    """What ``ridgeline opt`` writes by default (``--emit ort-contrib`` below opset 23, native ops
    at 23) leaves onnxruntime fewer nodes to run than the file it came from, after onnxruntime has
    optimized both (onnxruntime's per-node cost dominates at these sizes: more nodes was slower)."""
    mine = _ort_graph_nodes(to_onnx(opt, emit="ort-contrib").SerializeToString(), tmp_path, "opt")
    theirs = _ort_graph_nodes(str(ZOO / e["file"]), tmp_path, "original")
    assert mine < theirs, (e["file"], mine, theirs)


@pytest.mark.parametrize("e", ALL, ids=_ids(ALL))
def test_default_with_dims_unbound(e, tmp_path):
    g = load_onnx(ZOO / e["file"])
    opt, data = _optimize_and_check(e, g, zoo_dims(e), verify_each=(e["exporter"], e["phase"]) == ("legacy", "prefill"))
    if e["opset"] < 23:
        _check_ort_contrib(e, g, opt)
    _check_no_more_work_in_onnxruntime(e, opt, tmp_path)
    named = {s for s in g.symbols() if not s.startswith("_")}  # "_u…" stand for dims nobody knows
    assert {s for s in opt.symbols() if not s.startswith("_")} == named
    if e.get("ort_batch1_only"):
        # as exported onnxruntime rejects batch >= 2 (cos/sin of batch 1); the optimized file runs
        dims = zoo_dims({**e, "ort_batch1_only": False})
        feeds = zoo_feeds(e, dims, seed=3)
        assert_zoo_close(e, ort_run(data, feeds), Interpreter(g).run(feeds), feeds, dims, rtol=1e-4,
                         what="optimized in onnxruntime at batch 2")


@pytest.mark.parametrize("e", BOUND, ids=_ids(BOUND))
def test_default_with_dims_bound(e):
    dims = zoo_dims(e)
    g = load_onnx(ZOO / e["file"])
    opt, _ = _optimize_and_check(e, g.bind({k: v for k, v in dims.items() if k in g.symbols()}), dims)
    if e["opset"] < 23:  # the contrib ops also where fold-constants made shapes and tables constant
        _check_ort_contrib(e, g, opt, runs=[dims])


def test_cli_opt_without_dims_leaves_one_attention_per_layer(run_cli, tmp_path):
    # what a user runs on a default-setting export with dynamic axes: no --dim at all
    import onnx
    e = next(e for e in ALL if (e["family"], e["exporter"], e["phase"]) == ("llama", "dynamo", "decode")
             and e["opset"] == 18)
    out = tmp_path / "opt.onnx"
    proc = run_cli("opt", ZOO / e["file"], "-p", "default", "-o", out)
    assert proc.returncode == 0, proc.stderr
    model = onnx.load(out)
    assert {o.domain: o.version for o in model.opset_import}[""] == e["opset"]
    # below opset 23 the fused ops are onnxruntime's contrib ops by default (--emit ort-contrib)
    ops = [standard_op(n) for n in model.graph.node]
    assert ops.count("MultiHeadAttention") == e["expect"]["Attention"] and ops.count("RotaryEmbedding") >= 1
    dims = zoo_dims(e)
    feeds = zoo_feeds(e, dims, seed=4)
    assert_zoo_close(e, ort_run(out, feeds), ort_run(ZOO / e["file"], feeds), feeds, dims, rtol=1e-4,
                     what="ridgeline opt output in onnxruntime")
