"""Constant GEMM weights are packed once per process (gemm._packed): every plan of a graph — a
prefill at each new length is a new plan — reads the same panels, the results stay numpy's, the
packed copy goes when the weight does, and a weight mapped from the model's file leaves the
process's resident memory once packed (gemm._release)."""

from __future__ import annotations

import gc
import os

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("llvmlite")

from cases import assert_close

import ridgeline as rl
from ridgeline.backends.llvm import gemm
from ridgeline.backends.llvm.gemm import GemmLowering
from ridgeline.backends.registry import get_backend
from ridgeline.frontends.onnx.exporter import to_onnx
from ridgeline.ir import Builder, Graph, tensor


def _graph(k: int, n: int, trans: bool) -> tuple[Graph, np.ndarray]:
    rng = np.random.default_rng(k * n)
    w = rng.standard_normal((n, k) if trans else (k, n)).astype(np.float32)
    g = Graph("mm")
    x = g.add_input("x", tensor("f32", "m", k))
    c = g.add_constant("w", w)
    b = Builder(g)
    g.outputs = [b.Gemm(x, c, transB=1) if trans else b.MatMul(x, c)]
    return g, w


@pytest.mark.parametrize("trans", [False, True])
def test_plans_share_one_packed_weight(trans):
    k, n = 37, 150   # a column tail in the last panel
    g, w = _graph(k, n, trans)
    exe = get_backend("llvm").compile(g, gemm="jit")
    rng = np.random.default_rng(1)
    panels = {}
    for m in (9, 17, 1, 3):   # two prefill-sized plans (NR 64) and two skinny ones
        x = rng.standard_normal((m, k)).astype(np.float32)
        got = exe.run({"x": x})
        want = x.astype(np.float64) @ (w.T if trans else w).astype(np.float64)
        assert_close(want.astype(np.float32), next(iter(got.values())))
        (lw,) = [lw for lw in exe.plan.lowerings.values() if isinstance(lw, GemmLowering)]
        assert lw.packed and lw.b_known.shape == (-(-n // lw.nr), k, lw.nr)
        panels.setdefault(lw.nr, []).append(lw.b_known)
    for same in panels.values():   # one packed copy per panel width, whatever the plan
        assert all(p is same[0] for p in same)
    assert not panels[64][0].flags.writeable


def test_packed_copy_goes_with_the_weight():
    g, w = _graph(20, 70, False)
    exe = get_backend("llvm").compile(g, gemm="jit")
    exe.run({"x": np.ones((8, 20), np.float32)})
    key = (id(g.constants["w"].data), False, 64)
    assert key in gemm._PACKED
    del exe, g, w
    gc.collect()
    assert key not in gemm._PACKED


def _mapped_kib(path) -> int:
    """Resident KiB of this process's mappings of ``path`` (/proc/self/smaps)."""
    total, mine = 0, False
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split()
            if head and "-" in head[0] and len(head) >= 5:   # a mapping's first line
                mine = line.rstrip().endswith(str(path))
            elif mine and head[0] == "Rss:":
                total += int(head[1])
    return total


@pytest.mark.skipif(not os.path.exists("/proc/self/smaps"), reason="reads /proc/self/smaps")
@settings(max_examples=6, deadline=None)
@given(k=st.integers(64, 300), n=st.integers(200, 900), trans=st.booleans(), m=st.sampled_from([1, 3, 9]))
def test_packed_weights_leave_the_file_mapping(tmp_path_factory, k, n, trans, m):
    """A weight memory-mapped from the model's external data is dropped from the process once
    packed (only the packed copy stays resident); a later read faults it back in, unchanged."""
    g, w = _graph(k, n, trans)
    proto = to_onnx(g)
    path = tmp_path_factory.mktemp("ext") / "mm.onnx"
    onnx.save(proto, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
              location="mm.onnx.data", size_threshold=0)
    loaded = rl.load(str(path))
    x = np.random.default_rng(m).standard_normal((m, k)).astype(np.float32)
    got = get_backend("llvm").compile(loaded, gemm="jit").run({"x": x})
    assert _mapped_kib(path.with_name("mm.onnx.data")) * 1024 < w.nbytes // 4
    want = x @ (w.T if trans else w)
    assert_close(want, got[g.outputs[0].name], rtol=1e-4)
    (c,) = loaded.constants.values()
    np.testing.assert_array_equal(c.data, w)   # read again from the file


def test_an_array_in_memory_is_never_released():
    g, w = _graph(64, 300, False)
    get_backend("llvm").compile(g, gemm="jit").run({"x": np.ones((1, 64), np.float32)})
    np.testing.assert_array_equal(g.constants["w"].data, w)
