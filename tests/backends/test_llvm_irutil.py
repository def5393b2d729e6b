"""irutil's cached constant vectors tell apart values that compare equal."""

from __future__ import annotations

import pytest

ir = pytest.importorskip("llvmlite.ir")

from ridgeline.backends.llvm.irutil import F32, I1, lanes


def test_lanes_cache_keys_on_type_and_sign():
    assert str(lanes(F32, (0.0, -0.0))) == str(ir.Constant(ir.VectorType(F32, 2), [0.0, -0.0]))
    assert str(lanes(F32, (-0.0, -0.0))) == str(ir.Constant(ir.VectorType(F32, 2), [-0.0, -0.0]))
    assert str(lanes(I1, (True,))) == "<1 x i1> <i1 true>" and str(lanes(I1, (1,))) == "<1 x i1> <i1 1>"
