"""Scheme names and the arithmetic of symmetric quantization: every element's error stays within
the bound its quantization step implies (``step_bound``), on random data of every kind."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ridgeline.ir.errors import PassError
from ridgeline.passes.transforms.quantize_schemes import (
    QMAX,
    block_amax,
    fit_scales,
    parse_scheme,
    quantize_array,
    scale_for,
    step_bound,
)

DTYPES = ["i8", "i4", "f8e4m3", "f8e5m2"]


@pytest.mark.parametrize("text,weights,group,acts,kv,canon", [
    ("int8", "i8", 0, "none", None, "int8"),
    ("int4-g128", "i4", 128, "none", None, "int4-g128"),
    ("fp8", "f8e4m3", 0, "none", None, "fp8"),
    ("fp8-e4m3", "f8e4m3", 0, "none", None, "fp8"),
    ("fp8-e5m2-g64", "f8e5m2", 64, "none", None, "fp8-e5m2-g64"),
    ("w8a8", "i8", 0, "dynamic", None, "w8a8"),
    ("w8a8-static", "i8", 0, "static", None, "w8a8-static"),
    ("w8a8-fp8", "f8e4m3", 0, "dynamic", None, "w8a8-fp8"),
    ("int4-g32+kv-int8", "i4", 32, "none", "i8", "int4-g32+kv-int8"),
    ("kv-fp8", None, 0, "none", "f8e4m3", "kv-fp8"),
    ("NONE", None, 0, "none", None, "none"),
])
def test_scheme_spellings(text, weights, group, acts, kv, canon):
    s = parse_scheme(text)
    assert (s.weights, s.group, s.activations, s.kv, s.name) == (weights, group, acts, kv, canon)
    assert parse_scheme(s.name) == s


@pytest.mark.parametrize("text,fragment", [
    ("int3", "unknown quantization scheme 'int3'"),
    ("int8+int4", "two weight schemes"),
    ("w8a8-g128", "W8A8 uses one scale per output channel"),
    ("int4-g0", "positive number of input channels"),
    ("kv-int8+kv-fp8", "KV cache twice"),
    ("", "empty"),
])
def test_bad_schemes_are_clear_errors(text, fragment):
    with pytest.raises(PassError, match=fragment):
        parse_scheme(text)


def test_group_and_kv_options_combine_with_the_scheme():
    assert parse_scheme("int4", group=64).name == "int4-g64"
    assert parse_scheme("int8", kv="fp8").name == "int8+kv-fp8"
    with pytest.raises(PassError, match="says group 128 but the group option says 64"):
        parse_scheme("int4-g128", group=64)
    with pytest.raises(PassError, match="quantizes no weights"):
        parse_scheme("kv-int8", group=64)


@settings(max_examples=60, deadline=None)
@given(dtype=st.sampled_from(DTYPES), k=st.integers(1, 70), n=st.integers(1, 9), block=st.sampled_from([0, 4, 16, 32]),
       scale_dt=st.sampled_from([np.float32, np.float16]), seed=st.integers(0, 2**16), heavy=st.booleans())
def test_every_element_stays_within_its_step_bound(dtype, k, n, block, scale_dt, seed, heavy):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((k, n)) * (rng.lognormal(0, 2, (k, n)) if heavy else 1.0)
    scale = fit_scales(x, dtype, 0, block, np.dtype(scale_dt))
    q = quantize_array(x, scale, dtype, 0, block)
    s = np.repeat(scale, block, axis=0)[:k] if block and scale.shape[0] > 1 else scale
    err = np.abs(x - q.astype(np.float64) * s.astype(np.float64))
    bound = step_bound(x, scale, dtype, 0, block)
    # the last term: x / scale is formed in float64, the float8 cast goes through float32
    assert np.all(err <= bound * (1 + 1e-6) + 1e-300), float(np.max(err - bound))
    if dtype in ("i8", "i4") and not block:
        # with a scale from max |x| (no clipping), the bound is exactly half a step
        s_max = scale_for(block_amax(x, 0, 0), dtype, np.dtype(scale_dt))
        assert np.allclose(step_bound(x, s_max, dtype, 0, 0), s_max.astype(np.float64) / 2)


@pytest.mark.parametrize("dtype", ["i8", "i4"])
def test_clip_search_never_loses_to_the_max_scale(dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 64)) * rng.lognormal(0, 1, (256, 64))
    fitted = fit_scales(x, dtype, 0, 32, np.dtype(np.float32))
    plain = scale_for(block_amax(x, 0, 32), dtype, np.dtype(np.float32))

    def sse(scale):
        q = quantize_array(x, scale, dtype, 0, 32).astype(np.float64)
        return float(np.sum((x - q * np.repeat(scale, 32, axis=0)) ** 2))
    assert sse(fitted) <= sse(plain)
    if dtype == "i4":   # 16 levels and heavy tails: clipping a few outliers pays
        assert sse(fitted) < 0.95 * sse(plain)


def test_qmax_and_integer_ranges():
    assert QMAX == {"i8": 127.0, "i4": 7.0, "f8e4m3": 448.0, "f8e5m2": 57344.0}
    x = np.array([[-1000.0, -1.0, 0.0, 1.0, 1000.0]])
    q = quantize_array(x, np.array([[1.0]]), "i4", 0, 0)
    assert q.astype(int).tolist() == [[-8, -1, 0, 1, 7]]
    # a clipped element's bound is its distance to the range
    assert step_bound(x, np.array([[1.0]]), "i4", 0, 0)[0, -1] == pytest.approx(993.0)
