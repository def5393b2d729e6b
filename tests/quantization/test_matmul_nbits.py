"""``com.microsoft.MatMulNBits``: ridgeline writes int4/int8 blocked GEMMs as the op onnxruntime
runs, reads it back (its own files and onnxruntime's quantizer's), and both compute what the
numpy reference computes."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

import ridgeline as rl
from ridgeline.backends.numpy import Interpreter
from ridgeline.frontends.onnx import load_onnx, save_onnx
from ridgeline.frontends.onnx.matmul_nbits import (
    MS_DOMAIN,
    matmul_nbits_reference,
    pack_codes,
    save_matmul_nbits,
    unpack_codes,
)
from ridgeline.ir import Graph, tensor
from ridgeline.ir.errors import ModelError


def _ort(path, feeds):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]).run(None, feeds)[0]


def _gemm(m: int, k: int, n: int, seed: int) -> Graph:
    rng = np.random.default_rng(seed)
    g = Graph("gemm")
    x = g.add_input("x", tensor("f32", m, k))
    w = g.add_constant("w", (rng.standard_normal((k, n)) * rng.uniform(0.2, 3, n)).astype(np.float32))
    g.outputs = list(g.add_node("MatMul", [x, w], names=["y"]).outputs)
    return g


@settings(max_examples=16, deadline=None)
@given(m=st.integers(1, 4), k=st.integers(16, 300), n=st.integers(1, 40),
       block=st.sampled_from([16, 32, 64, 128]), scheme=st.sampled_from(["int4", "int4-zp", "int4-asym", "int8", "int8-zp", "int8-asym"]),
       seed=st.integers(0, 2**16))
def test_saved_file_runs_in_onnxruntime_and_matches_the_reference(tmp_path_factory, m, k, n, block, scheme, seed):
    """K not a multiple of the block (a short last block, padded in B), batch rows 1-4."""
    g = _gemm(m, k, n, seed)
    rl.optimize(g, f"quantize{{scheme={scheme}-g{block}}}")
    x = np.random.default_rng(seed + 1).standard_normal((m, k)).astype(np.float32)
    ref = Interpreter(g).run({"x": x})["y"]
    path = tmp_path_factory.mktemp("nbits") / "q.onnx"
    notes = save_matmul_nbits(g, path)
    model = onnx.load(str(path))
    ops = [nd.op_type for nd in model.graph.node]
    if block >= k or scheme == "int8-asym":   # per channel, or 8-bit float zero points: kept, with a note
        assert "MatMulNBits" not in ops and notes
        return
    assert ops == ["MatMulNBits"], ops
    scale = max(1e-6, float(np.abs(ref).max()))
    np.testing.assert_allclose(_ort(path, {"x": x}), ref, atol=2e-5 * scale, rtol=0)
    back = rl.load(path)
    np.testing.assert_allclose(Interpreter(back).run({"x": x})["y"], ref, atol=1e-6 * scale, rtol=0)


def test_file_size_is_half_a_byte_per_int4_weight(tmp_path):
    k, n = 1024, 512
    g = _gemm(1, k, n, 0)
    rl.optimize(g, "quantize{scheme=int4-zp-g128}")
    save_matmul_nbits(g, tmp_path / "q.onnx")
    inits = onnx.load(str(tmp_path / "q.onnx")).graph.initializer
    b = next(i for i in inits if i.name.endswith("nbits_B"))
    assert len(b.raw_data) == k * n // 2
    total = sum(len(i.raw_data) for i in inits)
    # codes 0.5 byte, plus per 128 weights a 4-byte scale and half a byte of zero point
    assert total / (k * n) == pytest.approx(0.5 + 4.5 / 128, rel=0.01)


@settings(max_examples=20, deadline=None)
@given(bits=st.sampled_from([4, 8]), shape=st.tuples(st.integers(1, 5), st.integers(1, 9)), seed=st.integers(0, 99))
def test_pack_unpack_round_trip(bits, shape, seed):
    codes = np.random.default_rng(seed).integers(0, 1 << bits, shape).astype(np.uint8)
    packed = pack_codes(codes, bits)
    assert packed.shape[-1] == (shape[-1] if bits == 8 else -(-shape[-1] // 2))
    np.testing.assert_array_equal(unpack_codes(packed, bits)[..., :shape[-1]], codes)
    if bits == 4 and shape[-1] >= 2:      # the first code sits in the low nibble
        assert packed[0, 0] == codes[0, 0] | (codes[0, 1] << 4)


@pytest.mark.parametrize("symmetric", [True, False])
def test_reads_onnxruntime_quantizer_output(tmp_path, symmetric):
    """A file from onnxruntime's own MatMulNBits quantizer imports and matches onnxruntime."""
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer
    k, n = 80, 24      # 80 = 2 blocks of 32 and a short one
    rng = np.random.default_rng(5)
    w = rng.standard_normal((k, n)).astype(np.float32)
    gp = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                           [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, k])],
                           [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, n])],
                           initializer=[numpy_helper.from_array(w, "w")])
    model = helper.make_model(gp, opset_imports=[helper.make_opsetid("", 21)])
    q = MatMulNBitsQuantizer(model, algo_config=DefaultWeightOnlyQuantConfig(block_size=32, is_symmetric=symmetric))
    q.process()
    path = tmp_path / "ort.onnx"
    onnx.save(q.model.model, str(path))
    assert [nd.op_type for nd in onnx.load(str(path)).graph.node] == ["MatMulNBits"]
    x = rng.standard_normal((3, k)).astype(np.float32)
    want = _ort(path, {"x": x})
    g = rl.load(path)
    got = Interpreter(g).run({"x": x})["y"]
    np.testing.assert_allclose(got, want, atol=1e-5 * float(np.abs(want).max()), rtol=0)
    nb = onnx.load(str(path)).graph
    arr = {i.name: numpy_helper.to_array(i) for i in nb.initializer}
    node = nb.node[0]
    zp = arr[node.input[3]] if len(node.input) > 3 and node.input[3] else None
    ref = matmul_nbits_reference(x, arr[node.input[1]], arr[node.input[2]], zp, K=k, N=n, bits=4, block_size=32)
    np.testing.assert_allclose(ref, want, atol=1e-5 * float(np.abs(want).max()), rtol=0)


def test_unreadable_forms_are_one_line_errors(tmp_path):
    k, n = 32, 8
    b = np.zeros((n, 1, 16), np.uint8)
    s = np.ones((n, 1), np.float32)
    for extra, attrs, msg in [(["", "g"], {"K": k, "N": n, "bits": 4, "block_size": 32}, "g_idx"),
                              ([], {"K": k, "N": n, "bits": 3, "block_size": 32}, "bits=3"),
                              ([], {"K": k, "N": n + 1, "bits": 4, "block_size": 32}, "do not fit")]:
        node = helper.make_node("MatMulNBits", ["x", "b", "s"] + extra, ["y"], domain=MS_DOMAIN, **attrs)
        inits = [numpy_helper.from_array(b, "b"), numpy_helper.from_array(s, "s"),
                 numpy_helper.from_array(np.zeros(k, np.int32), "g")]
        gp = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, k])],
                               [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n])], initializer=inits)
        m = helper.make_model(gp, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid(MS_DOMAIN, 1)])
        with pytest.raises(ModelError, match=msg) as e:
            load_onnx(m)
        assert "\n" not in str(e.value)


def test_opt_writes_matmul_nbits(tmp_path, capsys):
    from ridgeline.cli import main
    src = tmp_path / "g.onnx"
    save_onnx(_gemm(2, 96, 40, 3), src)
    out = tmp_path / "q.onnx"
    assert main(["opt", str(src), "-p", "quantize{scheme=int4-zp-g32}", "-o", str(out), "--matmul-nbits"]) == 0
    assert [nd.op_type for nd in onnx.load(str(out)).graph.node] == ["MatMulNBits"]
    capsys.readouterr()
    rir = tmp_path / "q.rir"
    assert main(["opt", str(src), "-p", "quantize{scheme=int4-zp-g32}", "-o", str(rir), "--matmul-nbits"]) == 2
    err = capsys.readouterr().err
    assert "--matmul-nbits" in err and len(err.strip().splitlines()) == 1 and not rir.exists()
