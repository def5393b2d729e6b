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
    # on a cache line: numpy's own large arrays start 16 bytes past one (each vector load split in two)
    assert low.b_known.ctypes.data % 64 == 0


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
