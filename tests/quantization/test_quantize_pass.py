"""The ``quantize`` pass on the exported models and the presets.

Accuracy is checked against bounds derived from the quantization step: every quantized GEMM,
given the activation the fp32 model computes, stays within ``|x|·δW + δx·|W| + δx·δW`` of the fp32
product, where δ is each element's ``step_bound`` (half a step for integers, half an ulp for
float8, or the distance a clipped value was moved). Whole-model logits: int8 weight-only keeps
cosine ≥ 0.999; int4's cosine deficit is the int8 one scaled by the step ratio squared (127/7)².
"""

from __future__ import annotations

import functools
import os

import numpy as np
import onnxruntime as ort
import pytest
from exported_models import MODELS, accuracy_entries, assert_outputs_close, dims_for, entries, feeds_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ridgeline as rl
from ridgeline.backends.numpy import Interpreter
from ridgeline.backends.numpy.kernels import get_kernel
from ridgeline.frontends.onnx import save_onnx
from ridgeline.ir import Graph, parse_graph, print_graph, tensor
from ridgeline.ir.errors import PassError
from ridgeline.passes import run_pipeline
from ridgeline.passes.transforms.quantize import quantize_inputs
from ridgeline.passes.transforms.quantize_rewrite import find_candidates
from ridgeline.passes.transforms.quantize_schemes import step_bound

ALL = entries()
IDS = [e["file"] for e in ALL]
DIMS = (2, 5, 3)
EVAL = rl.api.reference_evaluator()


@functools.cache
def _fp32(file: str) -> Graph:
    e = next(x for x in ALL if x["file"] == file)
    g = rl.load(MODELS / file, dims=dims_for(e, *DIMS))
    rl.optimize(g, "default")
    return g


def fp32_graph(e) -> Graph:
    """The exported model, bound and fused (a fresh copy: tests may not edit the cached one)."""
    return _fp32(e["file"]).copy()


def pick(*files: str) -> list[dict]:
    return [next(x for x in ALL if x["file"] == f) for f in files]


# one model per family and exporter style, prefill and decode
BOUND_MODELS = pick("gpt2-legacy17-prefill.onnx", "bert-dynamo23-prefill.onnx", "llama-legacy18-decode.onnx",
                    "llama-dynamo23-prefill.onnx")
ORT_MODELS = pick("gpt2-legacy17-decode.onnx", "gpt2-dynamo23-prefill.onnx", "bert-legacy18-prefill.onnx",
                  "llama-dynamo18-decode.onnx", "llama-dynamo23-decode.onnx")


def quantized(g: Graph, scheme: str) -> Graph:
    q = g.copy()
    run_pipeline(q, f"quantize{{scheme={scheme},seed=100}}", evaluator=EVAL)
    q.verify()
    return q


def cosine(a, b) -> float:
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


class Recorder(Interpreter):
    """Keeps every node's input arrays."""

    def __init__(self, graph, **kw):
        super().__init__(graph, **kw)
        self.args: dict[str, list] = {}

    def run_node(self, node, args):
        self.args[node.outputs[0].name] = list(args)
        return super().run_node(node, args)


def _dq_of(body: Graph, operand):
    """The DequantizeLinear feeding a body MatMul operand (through nothing else)."""
    p = operand.producer
    return p if p is not None and p.op == "DequantizeLinear" else None


def _outer(node, body_value):
    """The outer value bound to a body input (or the body constant itself)."""
    for i, b in enumerate(node.body.inputs):
        if b is body_value:
            return node.inputs[i]
    return body_value


def check_gemm_bounds(g32: Graph, gq: Graph, feeds) -> int:
    """Every quantized GEMM of ``gq`` against the fp32 product on the fp32 model's activations."""
    rec = Recorder(g32)
    rec.run(feeds)
    originals = {c.node.outputs[0].name: c for c in find_candidates(g32)[0]}
    checked = 0
    for node in gq:
        if node.op != "Fused" or node.attr("kind") not in ("dequant-matmul", "quant-matmul"):
            continue
        c = originals[node.outputs[0].name]
        x = rec.args[node.outputs[0].name][c.x_index].astype(np.float64)
        W = c.w.data.astype(np.float64)
        mm = next(n for n in node.body if n.op in ("MatMul", "Gemm"))
        wdq = _dq_of(node.body, mm.inputs[1])
        q, s = _outer(node, wdq.inputs[0]), _outer(node, wdq.inputs[1])
        w_hat = get_kernel("DequantizeLinear")(wdq, q.data, s.data).astype(np.float64)
        axis, block = wdq.attr("axis"), wdq.attr("block_size")
        sc = s.data if block else np.expand_dims(s.data, 1 - axis)
        dW = step_bound(W, sc, q.type.dtype.name, axis, block)
        assert np.all(np.abs(W - w_hat) <= dW * (1 + 1e-6)), node.outputs[0].name
        if W.size >= 64:   # the bound is not vacuous: some weights fall well off the grid
            assert np.max(np.abs(W - w_hat) / dW) >= 0.1
        if c.k_axis == 1:     # Gemm with transB: the weight is N×K
            W, w_hat, dW = W.T, w_hat.T, dW.T
        x_hat, dx = x, np.zeros_like(x)
        adq = _dq_of(node.body, mm.inputs[0])
        if adq is not None:   # W8A8: quantize x as the graph does (its quantizer node's kernel)
            producer = _outer(node, adq.inputs[0]).producer
            outs = Interpreter(gq).call_kernel(producer, [x.astype(np.float32)] + [
                v.data if v is not None and v.const else None for v in producer.inputs[1:]])
            xq, xs = (outs if isinstance(outs, tuple) else (outs, _outer(node, adq.inputs[1]).data))[:2]
            if producer.op == "QuantizeLinear":
                xs = _outer(node, adq.inputs[1]).data
            x_hat = get_kernel("DequantizeLinear")(adq, xq, xs).astype(np.float64)
            dx = step_bound(x, xs.astype(np.float64), _ir(xq), -1, adq.attr("block_size"))
            assert np.all(np.abs(x - x_hat) <= dx * (1 + 1e-6))
        y32 = x @ W
        yq = x_hat @ w_hat
        bound = np.abs(x) @ dW + dx @ np.abs(W) + dx @ dW + 1e-9 * (np.abs(x) @ np.abs(W))
        assert np.all(np.abs(y32 - yq) <= bound * (1 + 1e-9)), node.outputs[0].name
        checked += 1
    return checked


def _ir(a: np.ndarray) -> str:
    from ridgeline.ir.dtypes import from_numpy
    return from_numpy(a.dtype).name


@pytest.mark.parametrize("scheme", ["int8", "int4-g16", "fp8", "fp8-e5m2", "w8a8", "w8a8-static", "w8a8-fp8"])
@pytest.mark.parametrize("e", BOUND_MODELS, ids=lambda e: e["file"])
def test_every_quantized_gemm_is_within_its_step_bound(e, scheme):
    g32 = fp32_graph(e)
    gq = quantized(g32, scheme)
    feeds = feeds_for(e, dims_for(e, *DIMS), seed=4)
    assert check_gemm_bounds(g32, gq, feeds) == len(find_candidates(g32)[0])


@pytest.mark.parametrize("e", ALL, ids=IDS)
def test_exported_models_quantized_run_and_keep_their_logits(e):
    """int8 weight-only: logits cosine ≥ 0.999. int4: the deficit grows with the step ratio
    squared (127/7)² — a quarter of that to twice it (int4 takes the MSE-best clipping)."""
    dims = dims_for(e, *DIMS)
    g32 = fp32_graph(e)
    feeds = feeds_for(e, dims, seed=9)
    out = e["outputs"][0]["name"]
    ref = Interpreter(g32).run(feeds)[out]
    cos = {}
    for scheme in ("int8", "int4-g128", "w8a8", "int8+kv-int8"):
        gq = quantized(g32, scheme)
        text = print_graph(gq)
        assert print_graph(parse_graph(text)) == text
        got = Interpreter(gq).run(quantize_inputs(gq, feeds))[out]
        assert np.isfinite(got).all()
        cos[scheme] = cosine(got, ref)
    assert cos["int8"] >= 0.999
    assert cos["w8a8"] >= 0.998
    assert cos["int8+kv-int8"] >= 0.999
    ratio = (1 - cos["int4-g128"]) / (1 - cos["int8"])
    assert 0.25 * (127 / 7) ** 2 <= ratio <= 2 * (127 / 7) ** 2, (cos, ratio)


@pytest.mark.parametrize("e", accuracy_entries(), ids=lambda e: e["file"])
def test_default_init_exports_meet_the_issue_bounds(e):
    """Issue 6's bounds on random-weight exports at transformers' default init: int8 weight-only
    logits cosine >= 0.999 and int4 g128 >= 0.99. (The sharp 10x-init set above is far more
    sensitive to weight noise; there the int4/int8 ratio is checked instead.)"""
    dims = dims_for(e, *DIMS)
    g = rl.load(MODELS / e["file"], dims=dims)
    rl.optimize(g, "default")
    feeds = feeds_for(e, dims, seed=9)
    out = e["outputs"][0]["name"]
    ref = Interpreter(g).run(feeds)[out]
    cos = {}
    for scheme in ("int8", "int4-g128"):
        gq = quantized(g, scheme)
        cos[scheme] = cosine(Interpreter(gq).run(quantize_inputs(gq, feeds))[out], ref)
    assert cos["int8"] >= 0.999, cos
    assert cos["int4-g128"] >= 0.99, cos
    assert cos["int4-g128"] < cos["int8"], cos   # int4 did quantize something


def _ort_basic(path: str, feeds):
    so = ort.SessionOptions()
    so.log_severity_level = 3
    # ORT's extended optimizations turn DequantizeLinear→MatMul into its own integer kernels, which
    # also quantize the activation: different arithmetic. Basic keeps the ONNX semantics.
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, dict(feeds))))


@pytest.mark.parametrize("scheme", ["int8", "int4-g16", "fp8", "fp8-e5m2", "int8+kv-int8", "w8a8", "w8a8-static"])
@pytest.mark.parametrize("e", ORT_MODELS, ids=lambda e: e["file"])
def test_quantized_onnx_export_matches_onnxruntime(e, scheme, tmp_path):
    """Weight-only and KV schemes within 1e-4. Schemes that quantize activations at run time turn
    the 1e-7 differences of two float implementations upstream into a flipped rounding now and
    then — one activation step, 1/127 of the row's largest value — so they are held to two steps
    end to end (and to 1e-5 kernel by kernel below, where both see the same inputs)."""
    dims = dims_for(e, *DIMS)
    gq = quantized(fp32_graph(e), scheme)
    feeds = quantize_inputs(gq, feeds_for(e, dims, seed=5))
    got = Interpreter(gq).run(feeds)
    path = str(tmp_path / "q.onnx")
    save_onnx(gq, path)
    ref = _ort_basic(path, feeds)
    rtol = 2 / 127 if scheme.startswith("w8a8") else 1e-4
    narrow = {k for k, v in got.items() if v.dtype != np.float32}
    for k in narrow:       # the quantized KV cache: the same integers
        np.testing.assert_array_equal(got[k].astype(np.float32), ref[k].astype(np.float32))
    wide = dict(e, outputs=[p for p in e["outputs"] if p["name"] not in narrow])
    assert_outputs_close(wide, {k: got[k] for k in got if k not in narrow}, ref, feeds, dims, rtol=rtol, what=scheme)


@pytest.mark.parametrize("scheme", ["w8a8", "w8a8-static", "w8a8-fp8", "int4-g32", "fp8-e5m2"])
def test_quantized_kernels_match_onnxruntime_on_the_same_inputs(scheme, tmp_path):
    """Three projections of one activation (quantized once) and an epilogue: numpy and
    onnxruntime agree to float rounding when the quantizers see the same values."""
    rng = np.random.default_rng(3)
    g = Graph("qkv")
    x = g.add_input("x", tensor("f32", 3, 7, 64))
    outs = []
    for name in "qkv":
        w = g.add_constant(f"{name}.weight", rng.standard_normal((64, 48)).astype(np.float32))
        outs.append(g.add_node("MatMul", [x, w], names=[name]).outputs[0])
    g.outputs = outs
    rl.optimize(g, f"quantize{{scheme={scheme}}}")
    assert sum(n.op == "Fused" and "matmul" in n.attr("kind") for n in g) == 3
    feeds = {"x": rng.standard_normal((3, 7, 64)).astype(np.float32)}
    got = Interpreter(g).run(feeds)
    save_onnx(g, str(tmp_path / "k.onnx"))
    ref = _ort_basic(str(tmp_path / "k.onnx"), feeds)
    for k in got:
        np.testing.assert_allclose(got[k], ref[k], rtol=1e-5, atol=1e-5 * np.abs(ref[k]).max())


@pytest.mark.parametrize("scheme", ["int4-g16", "w8a8", "int8+kv-int8"])
@pytest.mark.parametrize("e", ALL[::4], ids=IDS[::4])
def test_quantized_and_tiled_equals_quantized_untiled(e, scheme):
    dims = dims_for(e, *DIMS)
    gq = quantized(fp32_graph(e), scheme)
    toy = os.path.join(os.path.dirname(__file__), os.pardir, "tiling", "toy_gpu.toml")
    rl.optimize(gq, f"tile{{target={toy}}}")
    assert sum("tile" in n.meta for n in gq) >= 10
    feeds = quantize_inputs(gq, feeds_for(e, dims, seed=6))
    a, b = Interpreter(gq).run(feeds), Interpreter(gq, tiles=False).run(feeds)
    for k in a:
        x, y = a[k].astype(np.float64), b[k].astype(np.float64)
        assert np.max(np.abs(x - y)) <= 1e-5 * np.max(np.abs(y)), k


# --------------------------------------------------------------------------- presets (types only)
def test_weightless_presets_get_quantized_types():
    g = rl.load("llama-3-8b", phase="decode", batch=1, context=1024)
    before = sum(c.type.dtype.nbytes(c.type.numel) for c in g.constants.values())
    report = run_pipeline(g, "quantize{scheme=int4-g128}")
    assert report.records[0].stats["gemms"] == 32 * 7 + 1
    after = sum(c.type.dtype.nbytes(c.type.numel) for c in g.constants.values())
    embed = 128256 * 4096 * 2          # the embedding lookup stays 16-bit
    # 4 bits per weight plus one bf16 scale per 128 of them
    assert (after - embed) / (before - embed) == pytest.approx((0.5 + 2 / 128) / 2, rel=1e-3)
    kinds = {n.attr("kind") for n in g if n.op == "Fused"}
    assert "dequant-matmul" in kinds
    assert all(c.data is None for c in g.constants.values() if c.name.endswith((".q", ".scale")))


def test_w8a8_runs_the_multiply_at_int8_and_weight_only_at_bf16():
    from ridgeline.cost_models.work import node_work
    for scheme, dt in (("w8a8", "i8"), ("int4-g128", "bf16"), ("fp8", "bf16"), ("w8a8-fp8", "f8e4m3")):
        g = rl.load("llama-3-8b", phase="decode", batch=1, context=1024)
        rl.optimize(g, f"quantize{{scheme={scheme}}}")
        node = next(n for n in g if n.op == "Fused" and "matmul" in n.attr("kind"))
        assert {c.dtype for c in node_work(node).contractions} == {dt}, scheme


def test_kv_int8_halves_the_kv_cache():
    from ridgeline.cost_models import estimate
    from ridgeline.cost_models.llm import kv_cache_bytes_per_token
    base = rl.load("llama-3-70b", phase="decode", batch=1, context=8192)
    kv = base.copy()
    rl.optimize(kv, "quantize{scheme=kv-int8}")
    assert kv_cache_bytes_per_token(base) == 80 * 8 * 128 * 2 * 2
    assert kv_cache_bytes_per_token(kv) == kv_cache_bytes_per_token(base) / 2
    e0, e1 = estimate(base, "h100", tp=2), estimate(kv, "h100", tp=2)
    assert e1.memory.kv_cache_bytes == e0.memory.kv_cache_bytes / 2
    assert e1.llm.kv_cache_bytes_per_token == e0.llm.kv_cache_bytes_per_token / 2


def test_int4_decode_of_llama_70b_on_h100_is_3x_faster_per_token():
    """Decode streams the weights: 4-bit weights (plus a scale per 128) move 3.9× fewer bytes
    than 16-bit; per token on one H100 (CUDA graphs: launches do not shrink with the bytes)."""
    from ridgeline.cost_models import estimate
    from ridgeline.cost_models.families.gpu_simt import GpuSimtModel
    if "dequant" not in GpuSimtModel.option_fields:
        pytest.skip("needs the gpu_simt model's fast dequantization (cost models branch)")
    b16 = rl.load("llama-3-70b", phase="decode", batch=1, context=2048)
    q4 = b16.copy()
    rl.optimize(q4, "quantize{scheme=int4-g128}")
    t16 = estimate(b16, "h100", tp=1, cuda_graphs=True).time_s
    t4 = estimate(q4, "h100", tp=1, cuda_graphs=True).time_s
    assert t16 / t4 >= 3.0


def test_weight_only_quantization_gains_little_in_large_batch_prefill():
    """Prefill of 8 × 2048 tokens is compute-bound: fewer weight bytes barely matter."""
    from ridgeline.cost_models import estimate
    b16 = rl.load("llama-3-70b", phase="prefill", batch=8, context=2048)
    q4 = b16.copy()
    rl.optimize(q4, "quantize{scheme=int4-g128}")
    e16, e4 = estimate(b16, "h100", tp=4), estimate(q4, "h100", tp=4)
    assert e16.bound == "compute"
    assert e16.time_s / e4.time_s < 1.25


# --------------------------------------------------------------------------- calibration and options
def _tiny(seed=0) -> Graph:
    rng = np.random.default_rng(seed)
    g = Graph("tiny")
    x = g.add_input("x", tensor("f32", 4, 64))
    w = g.add_constant("w", rng.standard_normal((64, 32)).astype(np.float32))
    y = g.add_node("MatMul", [x, w], names=["y"]).outputs[0]
    w2 = g.add_constant("lm_head.weight", rng.standard_normal((32, 8)).astype(np.float32))
    g.outputs = [g.add_node("MatMul", [y, w2], names=["logits"]).outputs[0]]
    return g


def test_static_scales_are_calibrated_on_the_samples():
    from ridgeline.passes.transforms.quantize import quantize_graph
    rng = np.random.default_rng(1)
    samples = [{"x": (rng.standard_normal((4, 64)) * 3).astype(np.float32)} for _ in range(3)]
    amax = max(np.abs(s["x"]).max() for s in samples)
    g = _tiny()
    quantize_graph(g, "w8a8-static", samples=samples, evaluator=EVAL)
    q = next(n for n in g if n.op == "QuantizeLinear" and n.inputs[0].name == "x")
    assert float(q.inputs[1].data) == pytest.approx(amax / 127, rel=1e-6)
    g2 = _tiny()
    quantize_graph(g2, "w8a8-static", samples=samples, calibration="percentile", percentile=99.0, evaluator=EVAL)
    q2 = next(n for n in g2 if n.op == "QuantizeLinear" and n.inputs[0].name == "x")
    pct = np.percentile(np.abs(np.concatenate([s["x"].ravel() for s in samples])), 99.0)
    assert float(q2.inputs[1].data) == pytest.approx(pct / 127, rel=1e-6)
    assert float(q2.inputs[1].data) < float(q.inputs[1].data)


def test_exclude_keeps_named_gemms_in_full_precision():
    g = _tiny()
    rl.optimize(g, "quantize{scheme=int8,exclude=lm_head}")
    assert [n.op for n in g] == ["Fused", "MatMul"]


def test_tied_weights_are_left_with_a_note():
    g = rl.load("gpt2", phase="decode", batch=1, context=64)
    report = run_pipeline(g, "quantize{scheme=int8}")
    assert any("tied" in note for note in report.records[0].notes)
    assert any(n.op == "Gemm" for n in g)     # the LM head shares the embedding: kept


@pytest.mark.parametrize("pipeline,fragment", [
    ("quantize{scheme=int3}", "unknown quantization scheme 'int3'"),
    ("quantize{scheme=int4-g100,method=best}", "method expects one of rtn, awq, gptq, awq-gptq, smoothquant"),
    ("quantize{scheme=int8,skip=layer:x}", "write layer:N or layer:A-B"),
    ("quantize{scheme=int8,kv=int2}", "kv must be int8, fp8 or none"),
    ("quantize{calibration=median}", "calibration expects one of minmax, percentile"),
])
def test_bad_options_are_clear_errors(pipeline, fragment):
    g = rl.load("llama-3-8b", phase="decode", batch=1, context=64)
    with pytest.raises(Exception, match=fragment) as info:
        run_pipeline(g, pipeline)
    assert isinstance(info.value, (PassError,)) or "expects" in str(info.value)


def test_cli_group_that_does_not_divide_works(run_cli):
    """A short last group instead of a refusal: 4096 channels in groups of 100 are 41 groups."""
    proc = run_cli("opt", "llama-3-8b", "-p", "quantize{scheme=int4-g100}")
    assert proc.returncode == 0, proc.stderr
    assert "f16[41, " in proc.stdout or "[41, " in proc.stdout



# --------------------------------------------------------------------------- random GEMMs
@st.composite
def random_gemms(draw):
    """A graph of one GEMM (MatMul with batch dims, or Gemm with transB and a bias) on a
    heavy-tailed weight, a scheme, and inputs."""
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    m, k, n = draw(st.integers(1, 9)), draw(st.integers(1, 80)), draw(st.integers(1, 20))
    scheme = draw(st.sampled_from(["int8", "int4", "fp8", "fp8-e5m2", "w8a8", "w8a8-fp8", "w8a8-static", "group"]))
    if scheme == "group":
        scheme = f"int4-g{draw(st.integers(3, 40))}"       # dividing K or not: a short last group
    w = (rng.standard_normal((k, n)) * rng.lognormal(0, 1, (k, n))).astype(np.float32)
    g = Graph("gemm")
    if draw(st.booleans()):
        batch = draw(st.sampled_from([(), (2,), (2, 3)]))
        x = g.add_input("x", tensor("f32", *batch, m, k))
        node = g.add_node("MatMul", [x, g.add_constant("w", w)], names=["y"])
    else:
        x = g.add_input("x", tensor("f32", m, k))
        bias = g.add_constant("b", rng.standard_normal(n).astype(np.float32))
        node = g.add_node("Gemm", [x, g.add_constant("w", np.ascontiguousarray(w.T)), bias], {"transB": 1},
                          names=["y"])
    g.outputs = [node.outputs[0]]
    feeds = {"x": (rng.standard_normal(x.type.shape) * 2).astype(np.float32)}
    return g, scheme, feeds


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=random_gemms())
def test_random_gemms_stay_within_their_step_bounds(case):
    g32, scheme, feeds = case
    gq = g32.copy()
    run_pipeline(gq, f"quantize{{scheme={scheme}}}", evaluator=EVAL)
    gq.verify()
    assert check_gemm_bounds(g32, gq, feeds) == 1
    # the node itself (its epilogue included) computes what the bound was checked on
    got = Interpreter(gq).run(feeds)["y"]
    assert got.shape == Interpreter(g32).run(feeds)["y"].shape and np.isfinite(got).all()


def test_static_scales_of_a_constant_activation_are_calibrated():
    """A product of two constants (left unfolded): the activation is a constant, calibrated too
    (found by check_pass on random graphs)."""
    rng = np.random.default_rng(2)
    g = Graph("consts")
    x = g.add_input("x", tensor("f32", 3, 4))
    a = g.add_constant("a", rng.standard_normal((3, 4)).astype(np.float32))
    w = g.add_constant("w", rng.standard_normal((4, 5)).astype(np.float32))
    w2 = g.add_constant("w2", rng.standard_normal((4, 5)).astype(np.float32))
    y = g.add_node("MatMul", [a, w]).outputs[0]
    g.outputs = [g.add_node("Add", [y, g.add_node("MatMul", [x, w2]).outputs[0]]).outputs[0]]
    rl.optimize(g, "quantize{scheme=w8a8-static}")
    q = next(n for n in g if n.op == "QuantizeLinear" and n.inputs[0].name == "a")
    assert float(q.inputs[1].data) == pytest.approx(np.abs(a.data).max() / 127, rel=1e-6)


def test_group_scales_and_offsets_are_priced_as_bytes():
    """A group's scale and float offset are stored bytes: GPT-2 decode with int4-asym at g32
    moves exactly the extra groups' bf16 scale and offset more than at g128, and on a
    bandwidth-bound H100 step (CUDA graphs) the smaller group is the slower one. (Targets whose
    step is bound by launches, dequantization work or loading the systolic array price both
    group sizes the same: the bytes are not their limit.)"""
    kind, per_group = "int4-asym", 4.0
    from ridgeline.cost_models import estimate
    from ridgeline.passes.transforms.quantize_rewrite import find_candidates
    base = rl.load("gpt2", phase="decode", batch=1, context=1024)
    extra = sum(c.n * (-(-c.k // 32) - -(-c.k // 128)) for c in find_candidates(base)[0])   # groups per column
    est = {}
    for g in (32, 128):
        q = base.copy()
        rl.optimize(q, f"quantize{{scheme={kind}-g{g}}}")
        est[g] = estimate(q, "h100", tp=1, cuda_graphs=True)
    dev = next(iter(est[32].bytes))
    assert est[32].bytes[dev] - est[128].bytes[dev] == pytest.approx(extra * per_group, rel=1e-6)
    assert est[32].time_s > est[128].time_s
