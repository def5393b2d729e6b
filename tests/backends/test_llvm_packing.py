"""Constant GEMM weights are packed once per process (gemm._packed): every plan of a graph — a
prefill at each new length is a new plan — reads the same panels, the results stay numpy's, and
the packed copy goes when the weight does."""

from __future__ import annotations

import gc

import numpy as np
import pytest

pytest.importorskip("llvmlite")

from cases import assert_close

from ridgeline.backends.llvm import gemm
from ridgeline.backends.llvm.gemm import GemmLowering
from ridgeline.backends.registry import get_backend
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
