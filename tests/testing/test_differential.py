"""Differential testing on random graphs: every executing backend agrees with the numpy
reference, and so does onnxruntime on the ONNX export (skipping cleanly when an extra is missing)."""

from __future__ import annotations

import pytest
from hypothesis import settings

from ridgeline.ir import Graph, tensor
from ridgeline.testing import strategies as rs
from ridgeline.testing.differential import BackendCheckError, onnxruntime_gap, supported_ops


def test_torch_agrees_with_numpy(check_backend):
    pytest.importorskip("torch")
    report = check_backend("torch")
    assert report.compared >= settings.default.max_examples // 2, report.reasons


def test_torch_runs_fused_graphs_like_numpy(check_backend):
    pytest.importorskip("torch")
    report = check_backend("torch", graphs=rs.unfused(dtypes=["f32"]), pipeline="default")
    assert report.compared > 0, report.reasons


def test_llvm_agrees_with_numpy(check_backend):
    pytest.importorskip("llvmlite")
    report = check_backend("llvm", graphs=rs.graphs(dtypes=["f32", "i64", "bool", "f16"]))
    assert report.compared > 0


def test_llvm_fused_kernels_agree_with_numpy(check_backend):
    """The default pipeline first, so the JIT's fused elementwise, epilogue, norm and attention
    kernels are what gets compared."""
    pytest.importorskip("llvmlite")
    report = check_backend("llvm", graphs=rs.unfused(dtypes=["f32"]), pipeline="default", max_examples=15)
    assert report.compared > 0


def test_onnx_export_runs_in_onnxruntime_like_numpy(check_onnxruntime):
    report = check_onnxruntime()
    assert report.compared >= settings.default.max_examples // 2, report.reasons


def test_onnx_export_of_idioms_runs_in_onnxruntime_like_numpy(check_onnxruntime):
    check_onnxruntime(graphs=rs.unfused(dtypes=["f32"]))


def test_a_disagreeing_backend_is_reported_with_the_graph(tmp_path):
    """A backend whose Relu is off by one ulp of 1: caught, shrunk, saved."""
    from ridgeline.backends.numpy import NumpyBackend
    from ridgeline.backends.registry import BACKENDS, register_backend
    from ridgeline.testing import check_backend

    class OffByOne(NumpyBackend):
        name = "off-by-one"

        def compile(self, graph, **options):
            exe = super().compile(graph)
            run = exe.run

            def shifted(inputs, **kw):
                return {k: v + 1 if v.dtype.kind == "f" else v for k, v in run(inputs, **kw).items()}
            exe.run = shifted
            return exe
    register_backend("off-by-one", OffByOne)
    try:
        with pytest.raises(BackendCheckError) as e:
            check_backend("off-by-one", graphs=rs.graphs(ops=["Relu", "Add", "MatMul"]), repro_dir=tmp_path)
        f = e.value.failure
        assert f.check == "backend" and len(f.graph) <= 1 and f.repro.rir.exists()
        assert "-b off-by-one" in str(e.value)
    finally:
        BACKENDS.remove("off-by-one")


def test_onnxruntime_gaps_name_the_runtime_limitation():
    g = Graph("g")
    x = g.add_input("x", tensor("f32", 1))
    n = g.add_node("MeanVarianceNormalization", [x], {"axes": [0]})
    assert "NaN" in onnxruntime_gap(n)
    y = g.add_input("y", tensor("f32", 2, 3))
    assert onnxruntime_gap(g.add_node("Relu", [y])) is None


def test_supported_ops_of_torch_are_those_with_kernels():
    pytest.importorskip("torch")
    from ridgeline.backends.torch.kernels import get_kernel
    ops = supported_ops("torch")
    assert "MatMul" in ops and all(get_kernel(op) is not None or op == "Fused" for op in ops)


def test_check_pass_runs_before_and_after_on_another_backend(check_pass):
    pytest.importorskip("torch")
    report = check_pass("fuse-gelu", graphs=rs.gelu_idioms(dtypes=["f32"], context=False), backend="torch",
                        max_examples=10)
    assert report.examples == 10 and report.modified > 0
