"""The ``-asym`` schemes' float offset (``x = q·s + m``): weights already on such a grid — a
model dequantized from llama.cpp's Q4_1/Q8_1, as SmolLM2-135M's GGUF is — round-trip through
the scheme to float rounding, whatever K (a multiple of the group or not), N, the group size and
the weight layout (MatMul's K × N or Gemm's transposed N × K), in the numpy reference and in
onnxruntime from the saved file. An integer zero point (``-zp``) cannot place the grid's origin
at ``m``."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
from hypothesis import given, settings
from hypothesis import strategies as st

import ridgeline as rl
from ridgeline.backends.numpy import Interpreter
from ridgeline.frontends.onnx import save_onnx
from ridgeline.ir import Graph, tensor


def _grid_weight(rng, k: int, n: int, group: int, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """A K × N weight on a Q4_1-style grid: per block of ``group`` input channels, ``q·d + m``
    with ``d``, ``m`` fp16 (as GGUF stores them) and both ends of the codes used (Q4_1 maps the
    block's min and max onto 0 and 2^bits − 1). Returns (weight, step per block)."""
    top = (1 << bits) - 1
    nb = -(-k // group)
    d = rng.lognormal(-4, 1.5, (nb, n)).astype(np.float16).astype(np.float64)
    m = (rng.uniform(-1.2, 0.2, (nb, n)) * d * top).astype(np.float16).astype(np.float64)
    q = rng.integers(0, top + 1, (k, n))
    q[::group] = 0
    q[1::group] = top
    w = (q * np.repeat(d, group, axis=0)[:k] + np.repeat(m, group, axis=0)[:k]).astype(np.float32)
    return w, np.repeat(d, group, axis=0)[:k]


def _gemm(w: np.ndarray, rows: int, trans_b: bool) -> Graph:
    k, _ = w.shape
    g = Graph("gemm")
    x = g.add_input("x", tensor("f32", rows, k))
    if trans_b:
        node = g.add_node("Gemm", [x, g.add_constant("w", np.ascontiguousarray(w.T))], {"transB": 1}, names=["y"])
    else:
        node = g.add_node("MatMul", [x, g.add_constant("w", w)], names=["y"])
    g.outputs = [node.outputs[0]]
    return g


def _prologue_weight(gq: Graph) -> np.ndarray:
    """The weight the quantized kernel multiplies by, in the graph's layout (its prologue run alone)."""
    node = next(n for n in gq if n.op == "Fused" and n.attr("kind") == "dequant-matmul")
    mm = next(n for n in node.body if n.op in ("MatMul", "Gemm"))
    env = {id(b): o.data for b, o in zip(node.body.inputs, node.inputs) if o.const}
    for c in node.body.constants.values():
        env[id(c)] = c.data
    interp = Interpreter(node.body)
    for n in node.body:
        if n is mm:
            break
        outs = interp.call_kernel(n, [None if v is None else env[id(v)] for v in n.inputs])
        for v, a in zip(n.outputs, outs if isinstance(outs, (tuple, list)) else [outs]):
            env[id(v)] = np.asarray(a)
    return np.asarray(env[id(mm.inputs[1])], np.float64)


def _ort(g: Graph, path, feeds) -> np.ndarray:
    save_onnx(g, path)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC   # ONNX semantics
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]).run(None, feeds)[0]


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**16), k=st.integers(1, 300), n=st.integers(1, 12),
       group=st.sampled_from([8, 16, 32, 32, 64, 128]) | st.integers(2, 50), bits=st.sampled_from([4, 4, 8]),
       trans_b=st.booleans(), rows=st.integers(1, 3))
def test_weights_on_an_offset_grid_round_trip(tmp_path_factory, seed, k, n, group, bits, trans_b, rows):
    rng = np.random.default_rng(seed)
    w, _ = _grid_weight(rng, k, n, group, bits)
    g = _gemm(w, rows, trans_b)
    rl.optimize(g, f"quantize{{scheme=int{bits}-asym-g{group}}}")
    got_w = _prologue_weight(g)
    got_w = got_w.T if trans_b else got_w
    # float rounding only: q·s + m with s, m in float32 (a code step is ≥ 2^-10 relative to |w|)
    np.testing.assert_allclose(got_w, w, rtol=0, atol=4e-7 * np.abs(w).max())
    x = rng.standard_normal((rows, k)).astype(np.float32)
    ref = x.astype(np.float64) @ w.astype(np.float64)
    tol = 1e-5 * (np.abs(x) @ np.abs(w.astype(np.float64))) + 1e-30
    got = Interpreter(g).run({"x": x})["y"]
    assert np.all(np.abs(got - ref) <= tol)
    out = _ort(g, tmp_path_factory.mktemp("ort") / "q.onnx", {"x": x})
    assert np.all(np.abs(out - ref) <= tol)


@settings(max_examples=4, deadline=None)
@given(seed=st.integers(0, 2**16), k=st.integers(33, 200), n=st.integers(1, 8))
def test_an_integer_zero_point_cannot_carry_the_grid(seed, k, n):
    """``int4-zp-g32`` on the same weights is off by far more than float rounding: its grid's
    origin is a whole step from zero, so it re-rounds every block whose minimum is not a
    multiple of its step (why ``-asym`` carries a float offset; ``-zp``'s half-step bound is
    tested with the other schemes)."""
    rng = np.random.default_rng(seed)
    w, d = _grid_weight(rng, k, n, 32, 4)
    g = _gemm(w, 1, False)
    rl.optimize(g, "quantize{scheme=int4-zp-g32}")
    assert np.abs(_prologue_weight(g) - w).max() > 0.05 * d.min()
