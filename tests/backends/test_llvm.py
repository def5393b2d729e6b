"""The llvm backend against the numpy reference: every op family, odd sizes, fused bodies,
GEMM modes, strict mode, profiling and the reuse of planned buffers between runs."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("llvmlite")

from cases import CASES, Case, assert_close, compare, fused  # noqa: E402
from ridgeline.backends.registry import get_backend  # noqa: E402
from ridgeline.ir import Builder, Graph, tensor  # noqa: E402
from ridgeline.ir.errors import BackendError  # noqa: E402

# cases with an op the llvm backend leaves to numpy (and why); every other case must run natively
FALLS_BACK = {
    "cast": "Cast to f16", "argmax": "ArgMax/ArgMin", "softmax": "Softmax along a non-trailing axis",
    "cumsum": "CumSum", "gather-elements": "GatherElements",
    "tile": "Tile", "pad": "Pad", "trilu": "Trilu",
    "shape-runtime": "Range whose length is a run-time value", "cumprod": "CumProd", "topk-hardmax": "TopK, Hardmax",
    "det": "Det", "norms-nchw": "Instance/Group/Batch/Lp/MeanVariance normalizations", "space-depth": "Depth/SpaceToDepth",
    "scatter": "Scatter*", "tensor-scatter": "TensorScatter", "onehot-nonzero-compress": "OneHot, and shapes known at run time",
    "reverse-crop": "ReverseSequence, CenterCropPad", "eye-bitcast-dropout": "BitCast", "einsum": "Einsum",
    "quant-matmul": "MatMulInteger, QLinearMatMul", "quantize": "Quantize/DequantizeLinear",
    "linear-attention": "LinearAttention", "causal-conv": "CausalConvWithState", "conv": "Conv",
    "conv-1d-integer": "ConvInteger", "conv-transpose": "ConvTranspose", "pools": "pools", "losses": "losses",
    "unique": "Unique (shape known at run time)",
}
_rng = np.random.default_rng(7)


def llvm(graph, **options):
    return get_backend("llvm").compile(graph, **options)


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_numpy(name):
    case = CASES[name]
    exe = llvm(case.graph)
    compare(case, exe)
    fallbacks = {n.op: why for n, why in exe.plan.fallbacks.items()}
    assert bool(fallbacks) == (name in FALLS_BACK), fallbacks


def _case(name, inputs, build, consts=None):
    g = Graph(name)
    vals = {k: g.add_input(k, tensor(str(a.dtype).replace("float32", "f32").replace("int64", "i64"), *a.shape))
            for k, a in inputs.items()}
    for k, a in (consts or {}).items():
        vals[k] = g.add_constant(k, a)
    out = build(Builder(g), vals)
    g.outputs = list(out) if isinstance(out, tuple) else [out]
    g.verify()
    return Case(name, g, inputs)


def _f(*shape):
    return _rng.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("n", [1, 2, 7, 15, 16, 17, 31, 33, 63, 65, 127, 129, 1000, 4097])
def test_fused_chain_odd_lengths(n):
    """Lengths around every vector width and unroll factor: remainders handled, no garbage."""
    case = _case("chain", {"x": _f(3, n), "a": _f(n)},
                 lambda b, v: fused(b.graph, [v["x"], v["a"]],
                                    lambda bb, p: bb.Gelu(bb.Add(bb.Mul(p[0], p[1]), p[0]), approximate="tanh")))
    compare(case, llvm(case.graph))


@pytest.mark.parametrize("rows,n", [(1, 1), (3, 1), (1, 17), (5, 33), (2, 1000), (64, 65)])
def test_row_kernels_odd_sizes(rows, n):
    case = _case("rows", {"x": _f(rows, n) * 3, "s": _f(n), "c": _f(n)},
                 lambda b, v: (b.Softmax(v["x"]), b.LogSoftmax(v["x"]), b.LayerNormalization(v["x"], v["s"], v["c"], _outputs=1),
                               b.RMSNormalization(v["x"], v["s"]), b.ReduceMean(v["x"], v["ax"]),
                               b.ReduceMax(v["x"], v["ax0"])),
                 consts={"ax": np.array([-1], np.int64), "ax0": np.array([0], np.int64)})
    exe = llvm(case.graph)
    compare(case, exe)
    assert not exe.plan.fallbacks


@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (1, 37, 1), (1, 64, 300), (2, 5, 33), (7, 9, 17), (8, 16, 32),
                                   (9, 300, 31), (17, 257, 65), (64, 64, 64), (65, 129, 47), (151, 1030, 70)])
@pytest.mark.parametrize("mode", ["jit", "jit-packed", "blas"])
def test_gemm_tails(m, k, n, mode):
    """Every tail of the micro-kernel (rows < MR, columns < NR, K not a multiple of KC, M past one
    MC block), with B
    read in place or packed at compile time (a constant B: the weights)."""
    if mode == "jit-packed":
        case = _case("mm", {"a": _f(m, k)}, lambda b, v: b.MatMul(v["a"], v["w"]), consts={"w": _f(k, n)})
    else:
        case = _case("mm", {"a": _f(m, k), "b": _f(k, n)}, lambda b, v: b.MatMul(v["a"], v["b"]))
    exe = llvm(case.graph, gemm=mode.split("-")[0])
    compare(case, exe)
    assert exe.plan.kinds[case.graph.nodes[0]] == ("blas" if mode == "blas" else "gemm")


def test_gemm_with_transposed_constant_and_bias():
    for bias_shape in [(11,), (5, 11), (5, 1), (1,)]:
        case = _case("gemm", {"a": _f(5, 37), "c": _f(*bias_shape)},
                     lambda b, v: b.Gemm(v["a"], v["w"], v["c"], transB=1, alpha=0.5, beta=2.0), consts={"w": _f(11, 37)})
        exe = llvm(case.graph, gemm="jit")
        compare(case, exe)
        assert exe.plan.kinds[case.graph.nodes[0]] == "gemm"


def test_batched_broadcast_matmul():
    case = _case("bmm", {"a": _f(2, 1, 5, 19), "b": _f(3, 19, 33)}, lambda b, v: b.MatMul(v["a"], v["b"]))
    exe = llvm(case.graph, gemm="jit")
    compare(case, exe)
    assert exe.plan.kinds[case.graph.nodes[0]] == "gemm"


@pytest.mark.parametrize("sq,t,causal", [(1, 1, 1), (3, 70, 1), (70, 70, 1), (5, 130, 0), (1, 200, 1)])
def test_attention_blocks(sq, t, causal):
    """Key counts across several blocks, with a KV cache and a causal mask aligned bottom-right."""
    past = t - sq
    inputs = {"q": _f(1, 4, sq, 16), "k": _f(1, 2, sq, 16), "v": _f(1, 2, sq, 16)}
    if past:
        inputs.update(pk=_f(1, 2, past, 16), pv=_f(1, 2, past, 16))
        build = lambda b, v: b.Attention(v["q"], v["k"], v["v"], None, v["pk"], v["pv"], is_causal=causal, _outputs=3)  # noqa
    else:
        build = lambda b, v: b.Attention(v["q"], v["k"], v["v"], is_causal=causal, _outputs=1)  # noqa
    case = _case("attn", inputs, build)
    exe = llvm(case.graph)
    compare(case, exe)
    assert exe.plan.kinds[case.graph.nodes[0]] == "attention"


def test_attention_fully_masked_rows_and_nonpad():
    mask = np.ones((1, 1, 4, 9), bool)
    mask[0, 0, 1, :] = False  # a query that sees nothing gives zeros
    case = _case("attn", {"q": _f(2, 2, 4, 8), "k": _f(2, 2, 9, 8), "v": _f(2, 2, 9, 8), "m": mask,
                          "n": np.array([9, 5], np.int64)},
                 lambda b, v: b.Attention(v["q"], v["k"], v["v"], v["m"], None, None, v["n"], _outputs=1))
    exe = llvm(case.graph)
    compare(case, exe)
    assert exe.plan.kinds[case.graph.nodes[0]] == "attention"


def test_qk_output_falls_back():
    case = _case("attn", {"q": _f(1, 2, 3, 8), "k": _f(1, 2, 3, 8), "v": _f(1, 2, 3, 8)},
                 lambda b, v: b.Attention(v["q"], v["k"], v["v"], _outputs=4))
    exe = llvm(case.graph)
    compare(case, exe)
    assert "qk_matmul_output" in next(iter(exe.plan.fallbacks.values()))
    with pytest.raises(BackendError, match="strict.*Attention.*qk_matmul_output"):
        llvm(case.graph, strict=True)


def test_strict_names_the_ops_without_kernels():
    case = CASES["tile"]
    with pytest.raises(BackendError) as e:
        llvm(case.graph, strict=True)
    msg = str(e.value)
    assert "strict" in msg and "Tile (x1)" in msg and "drop --strict" in msg and "\n" not in msg
    compare(case, llvm(case.graph))  # without strict the op runs on numpy


def test_strict_accepts_a_fully_native_graph():
    case = CASES["fused-gelu-chain"]
    compare(case, llvm(case.graph, strict=True))


def test_fused_body_with_an_unsupported_op_runs_node_by_node():
    case = _case("fb", {"x": _f(3, 5)},
                 lambda b, v: fused(b.graph, [v["x"]], lambda bb, p: bb.Exp(bb.CumSum(p[0], bb.constant(np.array(1, np.int64)))),
                                    kind="other"))
    exe = llvm(case.graph)
    compare(case, exe)
    assert exe.plan.kinds[case.graph.nodes[0]] == "fused-body"
    with pytest.raises(BackendError, match="strict.*CumSum.*in the body of Fused"):
        llvm(case.graph, strict=True)


def test_symbolic_dims_compile_once_per_shape():
    g = Graph("sym")
    x = g.add_input("x", tensor("f32", "batch", 37))
    g.outputs = [Builder(g).Softmax(Builder(g).Tanh(x))]
    exe = llvm(g)
    assert exe.plan is None  # nothing to compile before the shapes are known
    for n in (1, 5, 1):
        case = Case("sym", g, {"x": _f(n, 37)})
        compare(case, exe)
    assert len(exe.interpreter._plans) == 2


def test_profile_times_every_node():
    case = CASES["layernorm"]
    exe = llvm(case.graph)
    exe.run(case.inputs, profile=True)
    assert set(exe.timings) == set(case.graph.nodes) and all(t >= 0 for t in exe.timings.values())


def test_planned_buffers_do_not_leak_between_runs():
    """Intermediates reuse buffers; outputs the caller still holds are never overwritten."""
    case = _case("chain", {"x": _f(64, 65)},
                 lambda b, v: b.Add(b.Tanh(b.Exp(b.Neg(v["x"]))), b.Sigmoid(v["x"])))
    exe = llvm(case.graph)
    name = case.graph.outputs[0].name
    first = exe.run(case.inputs)[name]
    kept = first.copy()
    other = {"x": _f(64, 65)}
    second = exe.run(other)[name]
    np.testing.assert_array_equal(first, kept)  # still held: a fresh buffer was used
    assert second is not first
    ref = get_backend("numpy").compile(case.graph).run(other)[name]
    assert_close(ref, second)
    del first, second
    third = exe.run(case.inputs)[name]
    assert_close(kept, third)


def test_threads_option_and_parallel_split_agree():
    x = _f(512, 1024)
    case = _case("big", {"x": x}, lambda b, v: b.Gelu(b.Mul(v["x"], v["x"])))
    for threads in (1, 2):
        exe = llvm(case.graph, threads=threads, parallel_threshold=0)
        compare(case, exe)


def test_vectorized_for_the_host(monkeypatch):
    """The fused chain's optimized IR uses the host's full SIMD width (AVX-512: 16 floats);
    bounds checks (checked mode) would keep loops scalar, so this one is compiled without."""
    from ridgeline.backends.llvm import host
    monkeypatch.delenv("RIDGELINE_LLVM_CHECKED", raising=False)
    exe = llvm(CASES["fused-gelu-chain"].graph)
    exe.run(CASES["fused-gelu-chain"].inputs)
    width = host().vector_width_f32
    ir = exe.plan.modules[0].ir
    assert f"<{width} x float>" in ir
    assert f'"prefer-vector-width"="{host().vector_bits}"' in ir


@pytest.mark.parametrize("opt,value,msg", [("gemm", "fast", "gemm must be"), ("threads", 0, "threads must be"),
                                          ("device", "cpu", "unknown option")])
def test_bad_options(opt, value, msg):
    with pytest.raises(BackendError, match=msg):
        llvm(CASES["unary-Exp"].graph, **{opt: value})


def test_gather_index_out_of_range_is_an_error():
    case = _case("g", {"x": _f(5, 3), "i": np.array([0, 5], np.int64)}, lambda b, v: b.Gather(v["x"], v["i"]))
    exe = llvm(case.graph)
    with pytest.raises(BackendError, match="index out of range"):
        exe.run(case.inputs)


def test_concurrent_runs_of_one_executable_are_serialized():
    """Runs share planned buffers, so threads calling one executable must not interleave."""
    import threading
    case = _case("chain", {"x": _f(256, 257)}, lambda b, v: b.Tanh(b.Mul(b.Exp(b.Neg(v["x"])), v["x"])))
    exe = llvm(case.graph, threads=1)
    ref = get_backend("numpy").compile(case.graph)
    name = case.graph.outputs[0].name
    inputs = [{"x": _f(256, 257)} for _ in range(4)]
    wants = [ref.run(i)[name] for i in inputs]
    errors = []

    def work(k):
        for _ in range(5):
            got = exe.run(inputs[k])[name]
            try:
                assert_close(wants[k], got)
            except AssertionError as e:
                errors.append(e)
    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_values_folded_at_compile_time_cannot_be_changed_by_the_caller():
    g = Graph("f")
    x = g.add_input("x", tensor("f32", 2, 3))
    b = Builder(g)
    g.outputs = [b.Shape(x), b.Add(x, x)]
    exe = llvm(g)
    out = exe.run({"x": _f(2, 3)})
    shape = out[g.outputs[0].name]
    assert shape.tolist() == [2, 3]
    with pytest.raises(ValueError):
        shape[0] = 7   # read-only: the next run returns the same folded array
    assert exe.run({"x": _f(2, 3)})[g.outputs[0].name].tolist() == [2, 3]


def test_gemm_follows_a_cpu_tile_schedule():
    """``tile{target=host-cpu}`` records blocks in node.meta["tile"]; the JIT GEMM uses them (and
    ignores schedules made for other kinds of chip)."""
    for target, expect in (("host-cpu", (16, 64, 32)), ("h100", None)):
        case = _case("mm", {"a": _f(50, 70)}, lambda b, v: b.MatMul(v["a"], v["w"]), consts={"w": _f(70, 130)})
        node = case.graph.nodes[0]
        node.meta["tile"] = {"kernel": "gemm", "target": target, "shape": {"m": 16, "n": 64, "k": 32},
                             "traffic": {"dram": 1.0}}
        exe = llvm(case.graph, gemm="jit")
        compare(case, exe)
        lw = exe.plan.lowerings[node]
        assert lw.tile == expect
        if expect:
            # the schedule's blocks, rounded down to whole micro-tiles (at least one)
            assert (lw.mc, lw.nc, lw.kc) == (max(lw.mr, 16 // lw.mr * lw.mr), max(lw.nr, 64 // lw.nr * lw.nr), 32)
