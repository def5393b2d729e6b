"""Grouped-query attention on the llvm kernel over drawn heads, groups, positions, caches, causal
flags, head sizes and core counts (the task's group and block size follow the cores), with 3-D
Q/K/V (a fused QKV product's Split) and 4-D (ONNX export) inputs: the numpy reference's values,
and no crash. The kernel once zeroed its i64 stack arrays with 64-byte vector stores that stated
no alignment: LLVM emitted aligned moves, which faulted where the stack placed the array at 8
(hq 4, hkv 2, 6 causal positions on two cores) — checked mode now refuses such a store."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("llvmlite")

from ridgeline.backends.llvm import attention
from ridgeline.backends.llvm.jit import host
from ridgeline.backends.registry import get_backend
from ridgeline.ir import Builder, Graph, tensor
from ridgeline.testing.inputs import random_inputs

_CI = settings(max_examples=16, deadline=None, derandomize=True, database=None,
               suppress_health_check=list(HealthCheck))


def _graph(hkv, group, d, dv, bsz, sq, past, causal, four_d):
    hq = hkv * group
    g = Graph("gqa")
    b = Builder(g)
    if four_d:
        q, k, v = (g.add_input(n, tensor("f32", bsz, h, sq, dd)) for n, h, dd in (("q", hq, d), ("k", hkv, d), ("v", hkv, dv)))
    else:   # a fused product's Split, as GPT-2 and SmolLM2 exports have it
        x = g.add_input("x", tensor("f32", bsz, sq, 16))
        w = b.constant(np.random.default_rng(0).standard_normal((16, (hq + hkv) * d + hkv * dv), np.float32))
        q, k, v = b.Split(b.MatMul(x, w), b.constant(np.array([hq * d, hkv * d, hkv * dv], np.int64)), axis=2,
                          _outputs=3)
    cache = [g.add_input(n, tensor("f32", bsz, hkv, past, dd)) for n, dd in (("pk", d), ("pv", dv))] \
        if past is not None else []
    heads = {} if four_d else {"q_num_heads": hq, "kv_num_heads": hkv}
    res = b.Attention(q, k, v, None, *cache, **heads, is_causal=int(causal), _outputs=3 if cache else 1)
    g.outputs = list(res) if isinstance(res, tuple) else [res]
    return g


_SHAPE = (2, 2, 8, 8, 1, 6, None, True)   # hkv, group, d, dv, batch, seq, past, causal


@_CI
@given(hkv=st.integers(1, 3), group=st.sampled_from([1, 2, 3, 4]), d=st.sampled_from([3, 8, 16, 20]),
       dv=st.sampled_from([4, 8, 16]), bsz=st.integers(1, 2), sq=st.integers(1, 12),
       past=st.sampled_from([None, 0, 6]), causal=st.booleans(), four_d=st.booleans(),
       cores=st.sampled_from([1, 2, 3, 4, 8]), seed=st.integers(0, 2 ** 16))
def test_grouped_attention_over_shapes_and_cores(hkv, group, d, dv, bsz, sq, past, causal, four_d, cores, seed):
    g = _graph(hkv, group, d, dv, bsz, sq, past, causal, four_d)
    feeds = random_inputs(g, seed=seed)
    fake = dataclasses.replace(host(), cores=cores)
    with mock.patch.object(attention, "host", lambda: fake):
        got = get_backend("llvm").compile(g, strict=True).run(feeds)
    want = get_backend("numpy").compile(g).run(feeds)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-4, atol=1e-5, err_msg=name)


def test_crashing_shape_runs_unchecked():
    """The shape that crashed (3-D and 4-D), unchecked (a fault kills the process: run it in a child)."""
    code = ("from test_llvm_attention_shapes import _graph, _SHAPE\n"
            "from ridgeline.backends.registry import get_backend\n"
            "from ridgeline.testing.inputs import random_inputs\n"
            "for four_d in (False, True):\n"
            "    g = _graph(*_SHAPE, four_d)\n"
            "    get_backend('llvm').compile(g, strict=True).run(random_inputs(g, seed=31))\n")
    env = dict(os.environ, RIDGELINE_LLVM_CHECKED="0")
    env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(__file__), os.getcwd(), env.get("PYTHONPATH", "")])
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]


def test_checked_mode_refuses_a_vector_store_of_unstated_alignment():
    from ridgeline.backends.llvm import jit
    text = ('define void @f(i64* %"p") {\n  %".2" = bitcast i64* %"p" to <16 x i64>*\n'
            '  store <16 x i64> zeroinitializer, <16 x i64>* %".2"\n  ret void\n}\n')
    assert jit._unaligned(text) is not None
    assert jit._unaligned(text.replace('%".2"\n', '%".2", align 8\n')) is None
