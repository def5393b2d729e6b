"""Asymmetric (zero-point) and NF4/fp8-per-tensor weights, any group size (a short last group),
calibrated methods (AWQ, GPTQ, SmoothQuant), ``skip=`` patterns, and onnxruntime running the
saved files — on generated GEMMs and the tiny exported models."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import ridgeline as rl
from ridgeline.backends.numpy import Interpreter
from ridgeline.frontends.onnx import save_onnx
from ridgeline.ir import Graph, tensor
from ridgeline.ir.errors import PassError
from ridgeline.passes.transforms.quantize import quantize_graph
from ridgeline.passes.transforms.quantize_calibrated import apply_method
from ridgeline.passes.transforms.quantize_rewrite import find_candidates
from ridgeline.passes.transforms.quantize_schemes import (
    _INT_RANGE,
    NF4_CODEBOOK,
    UNSIGNED,
    _expand,
    fit_asym,
    fit_min,
    fit_scales,
    parse_scheme,
    quantize_array,
    step_bound,
)
from ridgeline.testing.text_accuracy import TextScore, lm_feeds, windows

EVAL = rl.api.reference_evaluator()
WEIGHT_SCHEMES = ["int4-asym", "int8-asym", "int4-zp", "int8-zp", "int4", "int8", "nf4", "fp8-tensor", "w4a8", "fp8"]


def _ort(graph: Graph, tmp_path, feeds) -> dict[str, np.ndarray]:
    path = tmp_path / "q.onnx"
    save_onnx(graph, path)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, {k: v for k, v in feeds.items()})))


def _gemm(rng, m: int, k: int, n: int, trans_b: bool) -> tuple[Graph, np.ndarray]:
    w = (rng.standard_normal((k, n)) * rng.lognormal(0, 1, (k, n)) + rng.normal(0, 0.5, (1, n))).astype(np.float32)
    g = Graph("gemm")
    x = g.add_input("x", tensor("f32", m, k))
    if trans_b:
        node = g.add_node("Gemm", [x, g.add_constant("w", np.ascontiguousarray(w.T))], {"transB": 1}, names=["y"])
    else:
        node = g.add_node("MatMul", [x, g.add_constant("w", w)], names=["y"])
    g.outputs = [node.outputs[0]]
    return g, w


def _weight_of(gq: Graph, k_axis: int) -> np.ndarray:
    """The weight the quantized kernel multiplies by (K × N), from its prologue run alone."""
    node = next(n for n in gq if n.op == "Fused" and n.attr("kind") in ("dequant-matmul", "quant-matmul"))
    mm = next(n for n in node.body if n.op in ("MatMul", "Gemm"))
    env = {id(b): o.data for b, o in zip(node.body.inputs, node.inputs) if o.const}
    for c in node.body.constants.values():
        env[id(c)] = c.data
    interp = Interpreter(node.body)
    for n in node.body:
        if n is mm:
            break
        if all(v is None or id(v) in env for v in n.inputs):
            outs = interp.call_kernel(n, [None if v is None else env[id(v)] for v in n.inputs])
            for v, a in zip(n.outputs, outs if isinstance(outs, (tuple, list)) else [outs]):
                env[id(v)] = np.asarray(a)
    w = env[id(mm.inputs[1])].astype(np.float64)
    return w if k_axis == 0 else w.T


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16), m=st.integers(1, 5), k=st.integers(1, 200), n=st.integers(1, 12),
       scheme=st.sampled_from(WEIGHT_SCHEMES), group=st.integers(0, 70), trans_b=st.booleans())
def test_any_group_size_runs_and_stays_on_its_grid(tmp_path_factory, seed, m, k, n, scheme, group, trans_b):
    """Every weight scheme at any group size (dividing K or not) quantizes, stays within its step
    bound, computes x·Ŵ on numpy, and onnxruntime runs the saved file to the same result."""
    if scheme == "fp8-tensor":
        group = 0
    rng = np.random.default_rng(seed)
    g, w = _gemm(rng, m, k, n, trans_b)
    name = scheme + (f"-g{group}" if group else "")
    gq = g.copy()
    rl.optimize(gq, f"quantize{{scheme={name}}}")
    gq.verify()
    w_hat = _weight_of(gq, 1 if trans_b else 0)
    s = parse_scheme(name)
    block = group if group and group < k else 0
    err = np.abs(w_hat - w)
    if s.weights == "nf4":
        amax = np.abs(w).max(axis=0) if not block else None
        if amax is not None:   # at most half the widest gap between codes, times the scale
            assert np.all(err <= amax * np.max(np.diff(NF4_CODEBOOK)) / 2 * (1 + 1e-5) + 1e-12)
    elif s.weights.startswith("f8"):
        assert np.all(err <= np.abs(w).max() * 2.0 ** -4 * (1 + 1e-5))     # e4m3: 3 mantissa bits
    else:
        rng_per_block = np.ptp(w, axis=0).max() if not block else np.ptp(w)
        top = {"i4": 15, "i8": 255}[s.weights]
        # asymmetric: one step is (range / codes); symmetric: 2·amax / (codes − 1); clipping ≤ 40% off
        assert np.all(err <= (2 * np.abs(w).max() + rng_per_block) / top * 1.0 + 1e-6)
    x = rng.standard_normal((m, k)).astype(np.float32)
    got = Interpreter(gq).run({"x": x})["y"]
    if s.activations == "none":
        np.testing.assert_allclose(got, x.astype(np.float64) @ w_hat, rtol=1e-4, atol=1e-4 * np.abs(x).sum())
    out = _ort(gq, tmp_path_factory.mktemp("ort"), {"x": x})["y"]
    np.testing.assert_allclose(out, got, rtol=1e-4, atol=1e-3 * (np.abs(got).max() + 1))


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**16), k=st.integers(2, 90), n=st.integers(1, 9), bits=st.sampled_from(["i4", "i8"]),
       group=st.integers(0, 40))
def test_zero_points_fit_each_block_within_half_a_step(seed, k, n, bits, group):
    """Asymmetric codes: unsigned, each element within its step bound; an unclipped block whose
    range is all one sign still uses the whole code range around it."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((k, n)) + rng.normal(0, 3, (1, n))
    block = group if group and group < k else 0
    s, z = fit_asym(w, bits, 0, block, np.dtype(np.float32))
    q = quantize_array(w, s, {"i4": "u4", "i8": "u8"}[bits], 0, block, z)
    assert q.dtype.name in ("uint4", "uint8")
    from ridgeline.passes.transforms.quantize_schemes import _expand
    w_hat = (q.astype(np.float64) - _expand(z, w.shape, 0, block)) * _expand(s, w.shape, 0, block)
    assert np.all(np.abs(w - w_hat) <= step_bound(w, s, bits, 0, block, z) * (1 + 1e-6))


def _grid_weight(rng, k: int, n: int, group: int, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """A K × N weight on a Q4_1-style grid (llama.cpp's Q4_1/Q8_1, as SmolLM2-135M's GGUF stores
    it): per block of ``group`` input channels ``q·d + m``, ``d`` and ``m`` fp16 as GGUF stores
    them, both ends of the codes used (Q4_1 maps a block's min and max onto 0 and 2^bits − 1).
    Returns (weight, step per row)."""
    top = (1 << bits) - 1
    nb = -(-k // group)
    d = rng.lognormal(-4, 1.5, (nb, n)).astype(np.float16).astype(np.float64)
    m = (rng.uniform(-1.2, 0.2, (nb, n)) * d * top).astype(np.float16).astype(np.float64)
    q = rng.integers(0, top + 1, (k, n))
    q[::group] = 0
    q[1::group] = top
    w = (q * np.repeat(d, group, axis=0)[:k] + np.repeat(m, group, axis=0)[:k]).astype(np.float32)
    return w, np.repeat(d, group, axis=0)[:k]


def _gemm_of(w: np.ndarray, rows: int, trans_b: bool) -> Graph:
    g = Graph("gemm")
    x = g.add_input("x", tensor("f32", rows, w.shape[0]))
    if trans_b:
        node = g.add_node("Gemm", [x, g.add_constant("w", np.ascontiguousarray(w.T))], {"transB": 1}, names=["y"])
    else:
        node = g.add_node("MatMul", [x, g.add_constant("w", w)], names=["y"])
    g.outputs = [node.outputs[0]]
    return g


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**16), k=st.integers(1, 300), n=st.integers(1, 12),
       group=st.sampled_from([8, 16, 32, 32, 64, 128]) | st.integers(2, 50), bits=st.sampled_from([4, 4, 8]),
       trans_b=st.booleans(), rows=st.integers(1, 3))
def test_weights_on_an_offset_grid_round_trip(tmp_path_factory, seed, k, n, group, bits, trans_b, rows):
    """The ``-asym`` schemes' float offset (``q·s + m``): weights already on such a grid come back
    to float rounding whatever K (a multiple of the group or not), N, the group and the layout
    (MatMul's K × N, Gemm's N × K), in the numpy reference and in onnxruntime from the saved file."""
    rng = np.random.default_rng(seed)
    w, _ = _grid_weight(rng, k, n, group, bits)
    g = _gemm_of(w, rows, trans_b)
    rl.optimize(g, f"quantize{{scheme=int{bits}-asym-g{group}}}")
    # float rounding only: q·s + m with s, m in float32 (a code step is ≥ 2^-10 relative to |w|)
    np.testing.assert_allclose(_weight_of(g, 1 if trans_b else 0), w, rtol=0, atol=4e-7 * np.abs(w).max())
    x = rng.standard_normal((rows, k)).astype(np.float32)
    ref = x.astype(np.float64) @ w.astype(np.float64)
    tol = 1e-5 * (np.abs(x) @ np.abs(w.astype(np.float64))) + 1e-30
    assert np.all(np.abs(Interpreter(g).run({"x": x})["y"] - ref) <= tol)
    assert np.all(np.abs(_ort(g, tmp_path_factory.mktemp("ort"), {"x": x})["y"] - ref) <= tol)


@settings(max_examples=4, deadline=None)
@given(seed=st.integers(0, 2**16), k=st.integers(33, 200), n=st.integers(1, 8))
def test_an_integer_zero_point_cannot_carry_the_grid(seed, k, n):
    """``int4-zp-g32`` on the same weights is off by far more than float rounding: its grid's
    origin is a whole step from zero, so it re-rounds every block whose minimum is not a
    multiple of its step (why ``-asym`` carries a float offset)."""
    rng = np.random.default_rng(seed)
    w, d = _grid_weight(rng, k, n, 32, 4)
    g = _gemm_of(w, 1, False)
    rl.optimize(g, "quantize{scheme=int4-zp-g32}")
    assert np.abs(_weight_of(g, 0) - w).max() > 0.05 * d.min()


def test_int4_g128_on_a_576_channel_layer():
    """The issue's refusal: 576 input channels, groups of 128 — four full groups and one of 64."""
    rng = np.random.default_rng(0)
    g, _ = _gemm(rng, 3, 576, 40, False)
    rl.optimize(g, "quantize{scheme=int4,group=128}")
    node = next(n for n in g if n.op == "Fused")
    scale = next(v for v in node.inputs if v.name.endswith(".scale"))
    assert scale.type.shape == (5, 40)
    dq = next(n for n in node.body if n.op == "DequantizeLinear")
    assert dq.attr("block_size") == 128


def _correlated(rng, rows: int, k: int) -> np.ndarray:
    return (rng.standard_normal((rows, k)) @ rng.standard_normal((k, k)) * rng.lognormal(0, 1, k)).astype(np.float32)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**16), k=st.sampled_from([24, 40, 72]), n=st.integers(4, 24),
       scheme=st.sampled_from(["int4", "int4-asym", "int4-asym-g16", "int8-g32", "int4-g20"]))
def test_gptq_beats_round_to_nearest_on_the_calibration_activations(seed, k, n, scheme):
    """GPTQ minimizes ‖X W − X Ŵ‖² for the calibration X: on correlated activations its output
    error is below plain rounding's."""
    rng = np.random.default_rng(seed)
    g, w = _gemm(rng, 64, k, n, False)
    x = _correlated(rng, 64, k)
    ref = x.astype(np.float64) @ w
    errs = {}
    for method in ("rtn", "gptq"):
        gq = g.copy()
        quantize_graph(gq, scheme, method=method, samples=[{"x": x}], evaluator=EVAL)
        errs[method] = float(np.square(Interpreter(gq).run({"x": x})["y"] - ref).sum())
    assert errs["gptq"] < errs["rtn"]


@pytest.mark.parametrize("method,scheme", [("awq", "int4-asym-g16"), ("smoothquant", "w8a8")])
def test_activation_scaling_preserves_the_unquantized_function(method, scheme):
    """AWQ/SmoothQuant divide the activation by s (folded into the RMSNorm scale, or a Mul) and
    multiply the weight by s: without rounding the model computes the same function."""
    rng = np.random.default_rng(3)
    k, n = 48, 16
    g = Graph("norm_gemm")
    x = g.add_input("x", tensor("f32", 8, k))
    gamma = g.add_constant("gamma", rng.uniform(0.5, 2, k).astype(np.float32))
    h = g.add_node("RMSNormalization", [x, gamma], {"axis": -1}).outputs[0]
    w1 = g.add_constant("w1", rng.standard_normal((k, n)).astype(np.float32))
    w2 = g.add_constant("w2", rng.standard_normal((k, n)).astype(np.float32))
    y1 = g.add_node("MatMul", [h, w1]).outputs[0]
    y2 = g.add_node("MatMul", [h, w2]).outputs[0]
    g.outputs = [g.add_node("Add", [y1, y2], names=["y"]).outputs[0]]
    feeds = {"x": (_correlated(rng, 8, k) * np.where(np.arange(k) % 7 == 0, 20, 1)).astype(np.float32)}
    ref = Interpreter(g).run(feeds)["y"]
    gs = g.copy()
    cands = find_candidates(gs)[0]
    adjusted, _ = apply_method(gs, gs, cands, parse_scheme(scheme), method, [feeds], EVAL, 0)
    assert len(adjusted) == 2 and not any(n.op == "Mul" for n in gs)   # folded into the norm
    for c in cands:
        c.w.data = adjusted[id(c)].astype(np.float32)
    np.testing.assert_allclose(Interpreter(gs).run(feeds)["y"], ref, rtol=1e-4, atol=1e-4)


LLAMA = "tests/models/llama-legacy17-prefill-init002.onnx"


@pytest.fixture(scope="module")
def llama():
    g = rl.load(LLAMA, dims={"batch": 1, "seq": 12})
    rl.optimize(g, "default")
    return g


def test_skip_patterns_keep_layers_and_the_head(llama):
    n_all = len(find_candidates(llama)[0])
    counts = {}
    for skip in ("lm_head", "first", "last", "layer:0-1", "lm_head,first", "down_proj", "*o_proj*,gate_proj"):
        g = llama.copy()
        s = quantize_graph(g, "int8", skip=skip)
        counts[skip] = n_all - s.gemms
        assert not any(n.op == "MatMul" and n.outputs[0] is not g.outputs[0] and False for n in g)
    # 2 layers of 7 GEMMs (q, k, v, o, gate, up, down) and one LM head
    # down_proj, o_proj and gate_proj are fused (residual Add, activation) and matched by their MatMul's name
    assert counts == {"lm_head": 1, "first": 7, "last": 7, "layer:0-1": 14, "lm_head,first": 8, "down_proj": 2,
                      "*o_proj*,gate_proj": 4}
    g = llama.copy()
    quantize_graph(g, "int8", skip="lm_head")
    assert g.outputs[0].producer.op in ("MatMul", "Gemm")


@pytest.mark.parametrize("scheme", ["int4-asym-g24", "int8-asym", "nf4-g20", "fp8-tensor", "w4a8-g16", "w4a16",
                                    "int4-g24:gptq", "int4-asym-g16:gptq", "int4-asym-g16:awq", "w8a8:smoothquant"])
def test_every_scheme_runs_in_onnxruntime_from_the_saved_file(llama, tmp_path, scheme):
    from ridgeline.testing.inputs import random_inputs
    name, _, method = scheme.partition(":")
    g = llama.copy()
    calib = [random_inputs(g, seed=s) for s in (5, 6)]
    quantize_graph(g, name, method=method or "rtn", samples=calib, evaluator=EVAL)
    feeds = random_inputs(g, seed=1)
    got = Interpreter(g).run(feeds)[g.outputs[0].name]
    out = _ort(g, tmp_path, feeds)[g.outputs[0].name]
    ref = Interpreter(llama).run(feeds)[llama.outputs[0].name]
    scale = np.abs(got).max()
    tol = 2e-2 if name.startswith(("w4a8", "w8a8")) else 1e-4    # run-time activation rounding may flip
    assert np.max(np.abs(out - got)) <= tol * scale
    cos = float((ref * got).sum() / np.linalg.norm(ref) / np.linalg.norm(got))
    assert cos > 0.95
    for backend in ("torch", "llvm"):     # the executing backends run it too (llvm: its numpy fallback)
        out = np.asarray(rl.compile(g, backend=backend).run(feeds)[g.outputs[0].name])
        assert np.max(np.abs(out - got)) <= tol * scale, backend


def test_text_scores_are_perplexity_and_agreement():
    v, length = 50, 9
    ids = np.arange(40) % v
    ws = windows(ids, length)
    assert len(ws) == 4 and all(len(w) == length for w in ws)
    s = TextScore()
    uniform = np.zeros((1, length, v))
    s.add(uniform, ws[0], uniform)
    assert s.perplexity == pytest.approx(v) and s.top1 == 1.0
    sharp = np.full((1, length, v), -30.0)
    sharp[0, np.arange(length - 1), ws[0][1:]] = 0.0
    s2 = TextScore()
    s2.add(sharp, ws[0])
    assert s2.perplexity == pytest.approx(1.0, abs=1e-6)
    f = lm_feeds(["input_ids", "attention_mask", "position_ids"], ws[1])
    assert f["input_ids"].shape == (1, length) and f["position_ids"][0, -1] == length - 1


@pytest.fixture(scope="module")
def word_tokenizer(tmp_path_factory):
    """A word-level tokenizer of the bundled passage with at most 256 ids (the tiny models' vocab)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from ridgeline.testing.text_accuracy import passage
    words = []
    for w in passage().split():
        if w not in words:
            words.append(w)
    vocab = {"[UNK]": 0, **{w: i + 1 for i, w in enumerate(words[:255])}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    out = tmp_path_factory.mktemp("tok")
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]").save_pretrained(out)
    return str(out)


def test_quantize_report_scores_real_text(capsys, word_tokenizer):
    """Perplexity and top-1 agreement on held-out text next to the seeded-input columns (in
    process: the CLI's subprocess tests cover its exit codes)."""
    import json

    from ridgeline.cli import main
    assert main(["quantize-report", LLAMA, "--schemes", "int8", "--targets", "h100", "--tokenizer", word_tokenizer,
                 "--positions", "32", "--samples", "1", "--json"]) == 0
    rows = {r["scheme"]: r["text"] for r in json.loads(capsys.readouterr().out)["rows"]}
    assert rows["baseline"]["top1"] == 1.0 and rows["baseline"]["positions"] == 32
    assert all(np.isfinite(r["perplexity"]) and r["perplexity"] > 1 for r in rows.values())
    assert rows["int8"]["top1"] >= 0.9


def test_bench_quant_accuracy_ci_profile(word_tokenizer, tmp_path, monkeypatch):
    """The benchmark's CI profile on a tiny export: saved files run in onnxruntime, rows written."""
    import importlib.util
    import json
    monkeypatch.setenv("RIDGELINE_BENCH_CACHE", str(tmp_path))
    spec = importlib.util.spec_from_file_location("bench_quant_accuracy", "tools/bench_quant_accuracy.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "rows.json"
    assert bench.main(["--model", LLAMA, "--tokenizer", word_tokenizer, "--profile", "ci", "--schemes", "int8",
                       "--window", "16", "--positions", "32", "--calib-windows", "1", "--targets", "h100",
                       "--ort-opt", "both", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [r["scheme"] for r in rows] == ["fp32", "int8"]
    assert rows[1]["top1"] > 0.9 and rows[1]["file_mb"] < rows[0]["file_mb"]
    # the row says which onnxruntime optimizations scored it; "both" adds onnxruntime's default
    assert rows[1]["ort_opt"] == "both" and rows[1]["ort_all_top1"] > 0.9


@pytest.mark.parametrize("option", ["--skip", "--rotate", "--then-skip"])
def test_bench_quant_accuracy_pattern_typo_is_a_usage_error(option, word_tokenizer, tmp_path, monkeypatch, capsys):
    """A --skip/--rotate/--then-skip pattern matching no GEMM: one line, exit 2, before the fp32 run."""
    import importlib.util
    monkeypatch.setenv("RIDGELINE_BENCH_CACHE", str(tmp_path))
    spec = importlib.util.spec_from_file_location("bench_quant_accuracy", "tools/bench_quant_accuracy.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    monkeypatch.setattr(bench, "ort_runner", lambda *a, **k: pytest.fail("the fp32 baseline ran"))
    extra = ["--skip", "lm_head", "--then", "int8"] if option == "--then-skip" else []
    with pytest.raises(SystemExit) as e:
        bench.main(["--model", LLAMA, "--tokenizer", word_tokenizer, "--profile", "ci", "--schemes", "int8",
                    "--window", "16", "--positions", "32", "--calib-windows", "1", "--targets", "h100",
                    *extra, option, "dwon_proj"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "'dwon_proj' matches none" in err.strip().splitlines()[-1] and "Traceback" not in err


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**16), k=st.integers(17, 90), half_n=st.integers(1, 9),
       scheme=st.sampled_from(["int4-asym-g16", "int4-asym-g32", "int4-g32", "int4-zp-g16", "int8", "int8-asym"]),
       trans_b=st.booleans())
def test_awq_then_gptq_beats_rounding_and_runs_in_onnxruntime(tmp_path, seed, k, half_n, scheme, trans_b):
    """AWQ's scales then GPTQ (``awq-gptq``; the activation divided by a ``Mul``, no norm to fold
    into), on any K (a short last group) and odd N: less output error than plain rounding on the
    calibration rows, and onnxruntime runs the saved file to the numpy result (MatMul or Gemm
    with transB)."""
    rng = np.random.default_rng(seed)
    n = 2 * half_n + 1
    g, w = _gemm(rng, 64, k, n, trans_b)
    x = _correlated(rng, 64, k)
    ref = x.astype(np.float64) @ w
    errs, outs = {}, {}
    for method in ("rtn", "awq-gptq"):
        gq = g.copy()
        quantize_graph(gq, scheme, method=method, samples=[{"x": x}], evaluator=EVAL, damp=0.01)
        outs[method] = Interpreter(gq).run({"x": x})["y"]
        errs[method] = float(np.square(outs[method] - ref).sum())
    assert errs["awq-gptq"] < errs["rtn"]
    np.testing.assert_allclose(_ort(gq, tmp_path, {"x": x})["y"], outs["awq-gptq"], rtol=1e-4,
                               atol=1e-4 * float(np.abs(outs["awq-gptq"]).max()))


# ---- clip=output (AWQ's auto_clip): each group's integer range searched on the output error
def _group_out_err(x: np.ndarray, w: np.ndarray, deq: np.ndarray, group: int) -> np.ndarray:
    """‖X_g (w_g − ŵ_g)‖² per group g and output channel, from the rows themselves (groups × N)."""
    k = w.shape[0]
    return np.stack([np.square(x[:, a:a + group] @ (w - deq)[a:a + group]).sum(0) for a in range(0, k, group)])


def _deq(w, s, z, kind, bits, block):
    s = _expand(s, w.shape, 0, block).astype(np.float64)
    if kind == "min":
        top = _INT_RANGE[UNSIGNED[bits]][1]
        m = _expand(z, w.shape, 0, block).astype(np.float64)
        return np.clip(np.rint((w - m) / s), 0, top) * s + m
    lo, hi = _INT_RANGE[UNSIGNED[bits] if kind == "zp" else bits]
    zz = 0.0 if z is None else _expand(z, w.shape, 0, block).astype(np.float64)
    return (np.clip(np.rint(w / s) + zz, lo, hi) - zz) * s


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**16), k=st.integers(5, 70), n=st.integers(1, 9), group=st.sampled_from([0, 8, 13, 32]),
       bits=st.sampled_from(["i4", "i8"]), kind=st.sampled_from(["sym", "zp", "min"]))
def test_output_search_never_loses_a_group(seed, k, n, group, bits, kind):
    """Per group and output channel, the output-error search's ``‖X_g (w_g − ŵ_g)‖²`` (computed
    here from the rows, not the Hessian it searched with) is at most the weight-error search's:
    its ratios include those; any K (a short last group), N."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((k, n)) * rng.lognormal(0, 1, (k, n)) + rng.normal(0, 0.5, (1, n))
    x = _correlated(rng, 48, k).astype(np.float64)
    block = group if group and group < k else 0
    fit = {"sym": lambda h: (fit_scales(w, bits, 0, block, np.float32, h), None),
           "zp": lambda h: fit_asym(w, bits, 0, block, np.float32, h),
           "min": lambda h: fit_min(w, bits, 0, block, np.float32, h)}[kind]
    errs = [_group_out_err(x, w, _deq(w, *fit(h), kind, bits, block), block or k) for h in (None, x.T @ x)]
    assert np.all(errs[1] <= errs[0] * (1 + 1e-9) + 1e-12)


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**16), k=st.integers(17, 90), half_n=st.integers(1, 9),
       scheme=st.sampled_from(["int4-asym-g16", "int4-zp-g32", "int4-g20", "int8", "int8-zp", "int8-asym"]),
       method=st.sampled_from(["rtn", "awq", "gptq", "awq-gptq"]), trans_b=st.booleans())
def test_output_clip_beats_rounding_and_runs_in_onnxruntime(tmp_path, seed, k, half_n, scheme, method, trans_b):
    """Every method with ``clip=output``, on any K (a short last group), odd N, MatMul or Gemm
    with transB: less output error on the calibration rows than plain rounding, and the saved
    file gives the numpy result in onnxruntime."""
    rng = np.random.default_rng(seed)
    g, w = _gemm(rng, 64, k, 2 * half_n + 1, trans_b)
    x = _correlated(rng, 64, k)
    ref = x.astype(np.float64) @ w
    errs = {}
    for m, clip in (("rtn", "weight"), (method, "output")):
        gq = g.copy()
        quantize_graph(gq, scheme, method=m, samples=[{"x": x}], evaluator=EVAL, clip=clip)
        out = Interpreter(gq).run({"x": x})["y"]
        errs[clip] = float(np.square(out - ref).sum())
    assert errs["output"] < errs["weight"]
    np.testing.assert_allclose(_ort(gq, tmp_path, {"x": x})["y"], out, rtol=1e-4, atol=1e-4 * float(np.abs(out).max()))


@settings(max_examples=6, deadline=None)
@given(scheme=st.sampled_from(["fp8", "fp8-tensor", "nf4-g32", "w8a8-fp8"]),
       opts=st.sampled_from([("rtn", "output"), ("gptq", "weight"), ("awq-gptq", "weight"), ("awq", "output")]))
def test_a_scheme_off_the_integer_grid_is_refused_before_calibration_runs(scheme, opts):
    """GPTQ and ``clip=output`` round onto an integer grid: a float8/NF4 scheme is refused before
    the calibration walk (minutes on a real model) evaluates a single node."""
    method, clip = opts
    g = Graph("relu-gemm")        # a node before the GEMM: the walk evaluates it before calibrating
    h = g.add_node("Relu", [g.add_input("x", tensor("f32", 8, 32))]).outputs[0]
    g.outputs = g.add_node("MatMul", [h, g.add_constant("w", np.eye(32, 4, dtype=np.float32))]).outputs
    calls = []

    def evaluator(node, args):
        calls.append(node.op)
        return EVAL(node, args)
    with pytest.raises(PassError, match=f"{scheme} is not int4/int8"):
        quantize_graph(g, scheme, method=method, clip=clip, samples=[{"x": np.ones((8, 32), np.float32)}],
                       evaluator=evaluator)
    assert calls == []


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 2**16), ns=st.lists(st.integers(1, 9), min_size=1, max_size=3),
       scheme=st.sampled_from(["int4-asym-g16", "int4-zp-g32", "int8", "w8a8-static"]),
       method=st.sampled_from(["rtn", "awq"]))
@example(seed=0, ns=[3, 5], scheme="w8a8-static", method="rtn")    # the only scheme that draws twice if it can
@example(seed=1, ns=[4], scheme="w8a8-static", method="awq")
def test_output_clip_searches_once_per_gemm_and_feeds_are_drawn_once(seed, ns, scheme, method):
    """``clip=output`` fits each GEMM's integer range on the output error once (the stored
    scales and the calibration walk's simulated weight share it), and the calibration feeds are
    drawn once when static activation scales and a calibrated method both need them."""
    from ridgeline.passes.transforms import quantize as qmod
    from ridgeline.passes.transforms import quantize_schemes as qs
    rng = np.random.default_rng(seed)
    g = Graph("gemms")
    x = g.add_input("x", tensor("f32", 16, 40))
    g.outputs = [g.add_node("MatMul", [x, g.add_constant(f"w{i}", rng.standard_normal((40, n)).astype(np.float32))],
                            names=[f"y{i}"]).outputs[0] for i, n in enumerate(ns)]
    searches, draws = [], []
    with pytest.MonkeyPatch.context() as mp:
        for name in ("fit_scales", "fit_asym", "fit_min"):
            real = getattr(qs, name)
            mp.setattr(qs, name, lambda *a, _real=real, **kw: (
                searches.append(a[5] if len(a) > 5 else kw.get("hessian")), _real(*a, **kw))[1])
        real_samples = qmod._samples
        mp.setattr(qmod, "_samples", lambda *a: (draws.append(1), real_samples(*a))[1])
        assert quantize_graph(g, scheme, method=method, clip="output", samples=2, evaluator=EVAL).gemms == len(ns)
    assert sum(h is not None for h in searches) == len(ns)
    assert len(draws) == 1


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**16), k=st.integers(4, 48), ns=st.lists(st.integers(1, 12), min_size=1, max_size=2),
       method=st.sampled_from(["smoothquant", "awq", "awq-gptq", "gptq", "rtn"]), norm=st.booleans())
def test_static_scales_are_the_range_of_the_smoothed_input(seed, k, ns, method, norm):
    """Every static scheme × scaling method: the graph runs, and each static activation scale is
    the range of what its QuantizeLinear reads on the calibration samples (``x / s`` when AWQ or
    SmoothQuant divided ``x`` — folded into a normalization or an explicit ``Mul``), by the numpy
    reference; the output stays near fp32."""
    from ridgeline.passes.transforms.quantize_calibrate import calibrate
    from ridgeline.passes.transforms.quantize_schemes import _W8A8
    rng = np.random.default_rng(seed)
    g = Graph("smoothed")
    x = g.add_input("x", tensor("f32", 16, k))
    if norm:
        x = g.add_node("LayerNormalization", [x, g.add_constant("ln.w", rng.uniform(0.5, 2, k).astype(np.float32)),
                                              g.add_constant("ln.b", rng.normal(0, 0.1, k).astype(np.float32))],
                       {"axis": -1}, names=["h"]).outputs[0]
    g.outputs = [g.add_node("MatMul", [x, g.add_constant(f"w{i}", rng.standard_normal((k, n)).astype(np.float32))],
                            names=[f"y{i}"]).outputs[0] for i, n in enumerate(ns)]
    feeds = [{"x": (rng.standard_normal((16, k)) * rng.lognormal(0, 1, k)).astype(np.float32)}]
    ref = Interpreter(g).run(feeds[0])
    for scheme in [n for n, (_, act, _) in _W8A8.items() if act == "static"]:
        q = g.copy()
        quantize_graph(q, scheme, method=method, samples=feeds, evaluator=EVAL)
        quants = [n for n in q if n.op == "QuantizeLinear"]
        assert quants
        seen = calibrate(q, {n.inputs[0].name: None for n in quants}, feeds, evaluator=EVAL)
        for n in quants:
            assert float(n.inputs[1].data) == pytest.approx(float(seen[n.inputs[0].name][0]) / 127, rel=1e-4)
        out = Interpreter(q).run(feeds[0])
        for name, want in ref.items():
            assert np.linalg.norm(out[name] - want) <= 0.1 * np.linalg.norm(want) + 1e-6


@pytest.mark.parametrize("scheme", ["fp8", "nf4", "fp8-tensor", "w8a8-fp8"])
@pytest.mark.parametrize("how", ["gptq", "apply_method:gptq", "apply_method:awq-gptq", "apply_method:clip"])
def test_public_gptq_and_apply_method_refuse_a_non_integer_scheme(scheme, how):
    """The public ``gptq()`` and ``apply_method()`` refuse fp8/nf4 weights with a ``PassError``, as
    ``quantize_graph`` does, instead of rounding them onto an integer grid."""
    from ridgeline.passes.transforms.quantize_methods import gptq
    rng = np.random.default_rng(0)
    sch = parse_scheme(scheme)
    with pytest.raises(PassError, match=f"{sch.name} is not int4/int8"):
        if how == "gptq":
            x = rng.standard_normal((32, 16))
            gptq(rng.standard_normal((16, 8)), x.T @ x, sch, np.dtype(np.float32))
        else:
            g, _ = _gemm(rng, 8, 16, 8, False)
            method = how.partition(":")[2]
            apply_method(g, g, find_candidates(g)[0], sch, "rtn" if method == "clip" else method,
                         [{"x": np.ones((8, 16), np.float32)}], EVAL, 0, clip="output" if method == "clip" else "weight")


def test_flip_probe_by_layer_adds_up(word_tokenizer, capsys):
    """``quant_flip_probe.py kinds --by layer``: one row per decoder layer, and rounding errors of
    different layers are independent, so their logit error variances add up to the whole model's
    (within a factor of 2: the layers' errors interact through the nonlinearities)."""
    import importlib.util
    import json
    spec = importlib.util.spec_from_file_location("quant_flip_probe", "tools/quant_flip_probe.py")
    probe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probe)
    assert probe.main(["kinds", "--by", "layer", "--scheme", "int4-g32", "--model", LLAMA,
                       "--tokenizer", word_tokenizer]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"label"')]
    layers = sorted({n.name.split("layers.")[1].split("/")[0] for n in rl.load(LLAMA) if "layers." in n.name}, key=int)
    assert [r["label"] for r in rows[1:]] == [f"int4-g32: only layer {i}" for i in layers]
    total, parts = rows[0]["logit_err_rms"] ** 2, sum(r["logit_err_rms"] ** 2 for r in rows[1:])
    assert 0.5 * total < parts < 2 * total and all(r["logit_err_rms"] > 0 for r in rows)


@pytest.mark.parametrize("tool", ["quant_flip_probe", "bench_quant_accuracy"])
@pytest.mark.parametrize("bad", ["missing/tokenizer", "empty-dir"])
def test_bad_tokenizer_is_a_usage_error(tool, bad, tmp_path, capsys, monkeypatch):
    """The quantization tools' ``--tokenizer`` naming no tokenizer (a missing path, or a folder
    without one): one line, exit 2, no traceback."""
    import importlib.util
    monkeypatch.setenv("RIDGELINE_BENCH_CACHE", str(tmp_path))
    spec = importlib.util.spec_from_file_location(tool, f"tools/{tool}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    tok = tmp_path / bad
    if bad == "empty-dir":
        tok.mkdir()
    with pytest.raises(SystemExit) as e:
        mod.main(["floor" if tool == "quant_flip_probe" else "--profile=ci", "--model", LLAMA, "--tokenizer", str(tok)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert str(tok) in err.strip().splitlines()[-1] and "Traceback" not in err
