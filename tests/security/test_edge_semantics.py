"""Edge values give the numpy reference's answer on every executing backend: integer division by
the ONNX definition without trapping (INT_MIN / -1, x / 0), NaN and inf through Sign, Gelu, Mod."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ridgeline as rl
from ridgeline.ir import Graph, TensorType
from ridgeline.ir.dtypes import DTYPES

BACKENDS = ["torch", "llvm"]
_cache: dict = {}


def _exe(op: str, dt: str, n: int, backend: str, binary: bool, **attrs):
    key = (op, dt, n, backend, binary, tuple(sorted(attrs.items())))
    if key not in _cache:
        g = Graph("g")
        ins = [g.add_input("a", TensorType(DTYPES[dt], (n,)))]
        if binary:
            ins.append(g.add_input("b", TensorType(DTYPES[dt], (n,))))
        node = g.add_node(op, ins, attrs)
        g.outputs = [node.outputs[0]]
        _cache[key] = rl.compile(g, backend=backend)
    return _cache[key]


def _run(op, dt, feeds, backend, **attrs):
    a = feeds["a"]
    return next(iter(_exe(op, dt, a.size, backend, "b" in feeds, **attrs).run(feeds).values()))


_INT_EDGES = {"i64": [-2 ** 63, 2 ** 63 - 1, -1, 0, 1, 7, -7], "i32": [-2 ** 31, 2 ** 31 - 1, -1, 0, 1, 7, -7],
              "i8": [-128, 127, -1, 0, 1, 7, -7]}


@settings(max_examples=40, deadline=None)
@given(dt=st.sampled_from(sorted(_INT_EDGES)), data=st.data())
@pytest.mark.parametrize("op, attrs", [("Div", {}), ("Mod", {}), ("Mod", {"fmod": 1})])
def test_integer_division_never_traps_and_matches_the_reference(op, attrs, dt, data):
    edges = _INT_EDGES[dt]
    info = np.iinfo(DTYPES[dt].np_dtype)
    elem = st.one_of(st.sampled_from(edges), st.integers(int(info.min), int(info.max)))
    a = np.array(data.draw(st.lists(elem, min_size=8, max_size=8)), DTYPES[dt].np_dtype)
    b = np.array(data.draw(st.lists(elem, min_size=8, max_size=8)), DTYPES[dt].np_dtype)
    a[:2], b[:2] = info.min, [-1, 0]  # the two trapping cases, always
    ref = _run(op, dt, {"a": a, "b": b}, "numpy", **attrs)
    for backend in BACKENDS:
        np.testing.assert_array_equal(_run(op, dt, {"a": a, "b": b}, backend, **attrs), ref, err_msg=backend)


_SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-45, -1e-45, 1e-40, 3.4e38, -3.4e38, 1.0, -2.5]


def _floats(n: int):
    return st.lists(st.one_of(st.sampled_from(_SPECIAL), st.floats(width=32, allow_nan=True, allow_infinity=True)),
                    min_size=n, max_size=n).map(lambda v: np.array(v, np.float32))


@settings(max_examples=30, deadline=None)
@given(a=_floats(20))
@pytest.mark.parametrize("op, attrs", [("Sign", {}), ("Gelu", {}), ("Gelu", {"approximate": "tanh"})])
def test_nan_and_inf_through_unary_ops_match_the_reference(op, attrs, a):
    ref = _run(op, "f32", {"a": a}, "numpy", **attrs)
    for backend in BACKENDS:
        out = _run(op, "f32", {"a": a}, backend, **attrs)
        assert np.array_equal(np.isnan(out), np.isnan(ref)), backend
        assert np.array_equal(out[np.isinf(ref)], ref[np.isinf(ref)]), backend
        np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5, equal_nan=True, err_msg=backend)  # f32 1+tanh


@settings(max_examples=30, deadline=None)
@given(a=_floats(20), b=_floats(20))
@pytest.mark.parametrize("fmod", [0, 1])
def test_float_mod_by_subnormals_and_infs_matches_the_reference(fmod, a, b):
    b[:4] = [1e-45, -1e-45, 1e-40, 3e-39]  # subnormal divisors, always
    ref = _run("Mod", "f32", {"a": a, "b": b}, "numpy", fmod=fmod)
    for backend in ["torch"]:  # llvm's Mod is i11's; it is checked by its own kernel tests
        out = _run("Mod", "f32", {"a": a, "b": b}, backend, fmod=fmod)
        np.testing.assert_allclose(out, ref, rtol=1e-6, atol=0, equal_nan=True, err_msg=backend)
