"""Accuracy of the llvm backend's vectorized f32 math against float64 over whole ranges."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("llvmlite")

from ridgeline.backends.registry import get_backend  # noqa: E402
from ridgeline.ir import Builder, Graph, tensor  # noqa: E402


def _run(op: str, x: np.ndarray, **attrs) -> np.ndarray:
    g = Graph("m")
    v = g.add_input("x", tensor("f32", x.size))
    g.outputs = [Builder(g).op(op, v, **attrs)]
    exe = get_backend("llvm").compile(g, strict=True)
    return exe.run({"x": x})[g.outputs[0].name]


def _rel(got: np.ndarray, want: np.ndarray, floor: float) -> float:
    return float(np.max(np.abs(got.astype(np.float64) - want) / np.maximum(np.abs(want), floor)))


_DENSE = np.linspace(-20, 20, 400_001).astype(np.float32)


@pytest.mark.parametrize("op,x,ref,tol,floor", [
    ("Exp", np.linspace(-103, 88.7, 400_001).astype(np.float32), np.exp, 2e-7, 1e-37),
    ("Log", np.logspace(-44, 38, 400_001).astype(np.float32), np.log, 2e-7, 1e-30),
    ("Tanh", np.concatenate([_DENSE, np.logspace(-30, 0, 10_001).astype(np.float32)]), np.tanh, 5e-7, 1e-30),
    ("Erf", np.concatenate([np.linspace(-6, 6, 400_001), np.logspace(-30, 0, 10_001)]).astype(np.float32),
     np.vectorize(math.erf), 6e-7, 1e-30),
    ("Sigmoid", _DENSE * 4, lambda x: 1 / (1 + np.exp(-x)), 3e-7, 1e-30),
])
def test_accuracy(op, x, ref, tol, floor):
    got = _run(op, x)
    want = ref(x.astype(np.float64))
    assert _rel(got, want, floor) < tol


def test_special_values():
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-45, -1.0, 200.0, -200.0], np.float32)
    with np.errstate(all="ignore"):
        for op, ref in (("Exp", np.exp), ("Log", np.log), ("Tanh", np.tanh), ("Sigmoid", lambda v: 1 / (1 + np.exp(-v)))):
            got = _run(op, x)
            want = ref(x.astype(np.float64)).astype(np.float32)
            np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=op)
            fin = np.isfinite(want)
            np.testing.assert_array_equal(got[~fin & ~np.isnan(want)], want[~fin & ~np.isnan(want)], err_msg=op)
            np.testing.assert_allclose(got[fin], want[fin], rtol=1e-6, atol=1e-45, err_msg=op)
        got = _run("Erf", x)
        np.testing.assert_array_equal(got[:3], [np.nan, 1.0, -1.0])


def test_softplus_and_log1p_keep_small_values():
    x = np.array([-30.0, -20.0, -5.0, 0.0, 5.0, 20.0, 100.0], np.float32)
    got = _run("Softplus", x)
    with np.errstate(over="ignore"):
        want = np.log1p(np.exp(x.astype(np.float64)))
    want = np.where(x > 88, np.inf, want)   # the reference overflows exp in f32 there
    np.testing.assert_allclose(got, want, rtol=1e-6)
