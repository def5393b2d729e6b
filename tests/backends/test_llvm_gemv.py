"""The skinny GEMM of decode steps (M = batch ≤ 8 rows against packed constant weights) over
drawn shapes, at 1 and 2 threads with every product split across them, against numpy at 1e-4
relative and bitwise equal on repeated runs (``check_backend`` runs each case twice). Checked mode
(tests/backends/conftest.py) stops any access outside a buffer."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

pytest.importorskip("llvmlite")

from ridgeline.backends.registry import get_backend
from ridgeline.ir import Builder, Graph, tensor
from ridgeline.testing.differential import check_backend
from ridgeline.testing.kernel_spaces import gemv_graphs

_CI = settings(max_examples=12, deadline=None, derandomize=True, database=None,
               suppress_health_check=list(HealthCheck))


@pytest.mark.parametrize("threads", [1, 2])
def test_gemv_space_matches_numpy(threads):
    """strict (never numpy), after the default pipeline (the tails fused as epilogues), every
    launch split across the threads (threshold 0)."""
    report = check_backend("llvm", gemv_graphs(), pipeline="default", rtol=1e-4, atol=1e-5, settings=_CI,
                           options={"strict": True, "threads": threads, "parallel_threshold": 0})
    assert report.compared >= 10, report
    assert report.skipped == 0, report.reasons


def _product(rows: int, k: int, n: int) -> Graph:
    g = Graph("gemv")
    x = g.add_input("x", tensor("f32", rows, k))
    w = g.add_constant("w", np.random.default_rng(0).standard_normal((k, n)).astype(np.float32))
    g.outputs = [Builder(g).MatMul(x, w)]
    g.verify()
    return g


def test_gemv_same_bits_at_any_thread_count():
    """Each output element is reduced by one thread in a fixed order, and the packing does not
    depend on the runner: 1 and 2 threads give the same bits."""
    g = _product(3, 257, 1000)
    x = {"x": np.random.default_rng(1).standard_normal((3, 257)).astype(np.float32)}
    outs = [get_backend("llvm").compile(g, threads=th, parallel_threshold=0).run(x)[g.outputs[0].name]
            for th in (1, 2)]
    assert outs[0].tobytes() == outs[1].tobytes()


def test_gemv_packs_weights_once():
    """The weights are packed into panels at plan time: the kernel reads the plan's copy, and a
    run allocates nothing for them."""
    g = _product(1, 64, 300)
    exe = get_backend("llvm").compile(g, threads=1)
    low = next(iter(exe.plan.lowerings.values()))
    assert low.packed and low.mr == 1
    assert low.b_known.shape[0] * low.b_known.shape[2] >= 300 and low.b_known.flags.c_contiguous


@pytest.mark.parametrize("nr", [16, 32, 64, 128])   # NR = 2-16 vectors of 8 or 16 floats (AVX2, AVX-512)
def test_packed_panels_start_on_a_cache_line(nr):
    """Every K x NR panel of a packed weight starts on a 64-byte line, whatever the size: numpy's
    arrays are only 16-byte aligned (measured 16 or 48 mod 64 here), so an unaligned pack splits
    each 64-byte panel load across two lines. The panels hold the weight, zero-padded past N."""
    from ridgeline.backends.llvm.gemm import _packed
    rng = np.random.default_rng(2)
    # 3 x 5 and 33 x 17: small, odd; 257 x 1000, 1001 x 129, 768 x 300 (transposed): > 128 KiB (mmap'd)
    for k, n, trans in [(3, 5, False), (33, 17, False), (257, 1000, False), (1001, 129, False), (768, 300, True)]:
        b = rng.standard_normal((n, k) if trans else (k, n)).astype(np.float32)
        out = _packed(b, trans, nr)
        tiles = -(-n // nr)
        assert out.shape == (tiles, k, nr) and out.flags.c_contiguous
        assert [(out.ctypes.data + t * out.strides[0]) % 64 for t in range(tiles)] == [0] * tiles, (k, n, nr)
        want = np.zeros((k, tiles * nr), np.float32)
        want[:, :n] = b.T if trans else b
        assert np.array_equal(out.transpose(1, 0, 2).reshape(k, tiles * nr), want)


def test_bench_gemv_ci_profile_agrees_with_onnxruntime():
    """The CI profile of tools/bench_gemv.py: the same products on onnxruntime's MatMul give the
    llvm results within 1e-4 (the figures themselves are the soak profile's, not asserted)."""
    import importlib.util
    from pathlib import Path
    pytest.importorskip("onnxruntime")
    path = Path(__file__).resolve().parents[2] / "tools" / "bench_gemv.py"
    spec = importlib.util.spec_from_file_location("bench_gemv", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    r = bench.bench_shape(3, 256, 300, 2, 1 << 20, 2, np.random.default_rng(0))
    assert r["copies"] >= 4 and r["max_rel_err"] < 1e-4
    assert all(v > 0 for v in r["GBps"].values())


def test_bench_backends_profile_names_each_runtimes_nodes(tmp_path, capsys):
    """tools/bench_backends.py --profile's two sides on one small export: every llvm plan node and
    every onnxruntime kernel gets a positive minimum time, and the printout sums them per op."""
    import importlib.util
    from pathlib import Path

    import onnx
    from onnx import TensorProto, helper, numpy_helper
    pytest.importorskip("onnxruntime")
    path = Path(__file__).resolve().parents[2] / "tools" / "bench_backends.py"
    spec = importlib.util.spec_from_file_location("bench_backends", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((64, 96)).astype(np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"]), helper.make_node("Relu", ["y"], ["z"])],
                              "p", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 64])],
                              [helper.make_tensor_value_info("z", TensorProto.FLOAT, [4, 96])], [w])
    model = tmp_path / "p.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(model))
    feeds = {"x": np.ones((4, 64), np.float32)}
    exe = get_backend("llvm").compile(bench.api.load(str(model)), threads=1)
    ours, theirs = bench._profile_llvm(exe, feeds, 2), bench._profile_ort(str(model), 1, feeds, 2)
    assert ours and all(t > 0 for _, _, t in ours) and {op for op, _, _ in theirs} >= {"MatMul", "Relu"}
    bench.print_profile({"phase": "prefill", "past": 0, "seq": 4, "median_s": {"llvm1": 1e-3},
                         "profile": {"llvm1": {n: (lab, t) for lab, n, t in ours},
                                     "ort1": {n: (op, t) for op, n, t in theirs}}})
    out = capsys.readouterr().out
    assert "profile llvm1" in out and "profile ort1" in out and "MatMul" in out
