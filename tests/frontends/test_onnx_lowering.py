"""Fused ops newer than the file's opset (Attention, RotaryEmbedding, RMSNormalization at 23, Gelu
at 20) saved at opset 17/18 as model-local functions: onnxruntime runs the file at that opset and
agrees with the numpy reference, and load_onnx reads the op back, over generated shapes, head
layouts and attributes."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from fused_op_cases import rotary_case
from hypothesis import given, settings
from hypothesis import strategies as st

from ridgeline.backends.numpy import Interpreter
from ridgeline.frontends.onnx import load_onnx, to_onnx
from ridgeline.frontends.onnx.lowering import STD_DOMAIN, standard_op
from ridgeline.ir import Builder, Graph, tensor

OPSETS = st.sampled_from([17, 18])


def _ort(model: onnx.ModelProto, feeds):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"]).run(None, feeds)


def _check(g: Graph, opset: int, feeds: dict, op: str) -> None:
    g.verify()
    m = to_onnx(g, opset=opset)
    assert {o.domain: o.version for o in m.opset_import}[""] == opset
    calls = [n for n in m.graph.node if n.domain == STD_DOMAIN]
    assert [standard_op(n) for n in calls] == [op]
    # and load_onnx reads the call back as the op itself, attributes and all
    (orig,) = [n for n in g if n.op == op]
    (back,) = [n for n in load_onnx(m) if n.op == op]
    def f32(attrs):  # ONNX stores float attributes as f32
        return {k: float(np.float32(v)) if isinstance(v, float) else v for k, v in attrs.items() if v is not None}
    assert f32(back.attrs) == f32(orig.attrs)
    want = Interpreter(g).run(feeds)
    for got, name in zip(_ort(m, feeds), want):
        np.testing.assert_allclose(got, want[name], rtol=1e-4, atol=1e-5, err_msg=f"{op} at opset {opset}")


@settings(max_examples=12, deadline=None)
@given(opset=OPSETS, b=st.integers(1, 2), s=st.integers(1, 5), past=st.integers(0, 3),
       hkv=st.integers(1, 3), group=st.sampled_from([1, 2, 3]), d=st.sampled_from([8, 12, 24]),
       masked=st.booleans(), causal=st.booleans(), seed=st.integers(0, 99))
def test_attention_below_23(opset, b, s, past, hkv, group, d, masked, causal, seed):
    hq, t = hkv * group, s + past
    rng = np.random.default_rng(seed)
    g = Graph("attn")
    q = g.add_input("q", tensor("f32", "batch", "seq", hq * d))
    k = g.add_input("k", tensor("f32", "batch", "total", hkv * d))
    v = g.add_input("v", tensor("f32", "batch", "total", hkv * d))
    feeds = {"q": rng.standard_normal((b, s, hq * d), np.float32),
             "k": rng.standard_normal((b, t, hkv * d), np.float32),
             "v": rng.standard_normal((b, t, hkv * d), np.float32)}
    ins = [q, k, v]
    if masked:  # an additive float mask that never hides a whole row
        ins.append(g.add_input("m", tensor("f32", "batch", 1, "seq", "total")))
        m = np.where(rng.random((b, 1, s, t)) < 0.3, -1e4, 0.0).astype(np.float32)
        m[..., 0] = 0.0
        feeds["m"] = m
    y = Builder(g).Attention(*ins, q_num_heads=hq, kv_num_heads=hkv, is_causal=int(causal and past == 0))
    g.outputs = [y[0] if isinstance(y, tuple) else y]
    _check(g, opset, feeds, "Attention")


@settings(max_examples=12, deadline=None)
@given(opset=OPSETS, b=st.integers(1, 2), s=st.integers(1, 4), h=st.integers(1, 3),
       d=st.sampled_from([4, 8, 12, 16]), partial=st.booleans(), interleaved=st.booleans(),
       four_d=st.booleans(), positions=st.booleans(), seed=st.integers(0, 99))
def test_rotary_below_23(opset, b, s, h, d, partial, interleaved, four_d, positions, seed):
    g, feeds = rotary_case(b, s, h, d, partial, interleaved, four_d, "positions" if positions else "per-batch", seed)
    _check(g, opset, feeds, "RotaryEmbedding")


@settings(max_examples=8, deadline=None)
@given(opset=OPSETS, shape=st.lists(st.integers(1, 5), min_size=1, max_size=3).map(lambda s: s + [24]),
       axis_back=st.integers(1, 2), eps=st.sampled_from([1e-6, 1e-5, 0.1]), seed=st.integers(0, 99))
def test_rmsnorm_below_23(opset, shape, axis_back, eps, seed):
    axis = -min(axis_back, len(shape))
    rng = np.random.default_rng(seed)
    g = Graph("rms")
    x = g.add_input("x", tensor("f32", *shape))
    w = g.add_input("w", tensor("f32", *shape[axis:]))
    g.outputs = [Builder(g).RMSNormalization(x, w, axis=axis, epsilon=eps)]
    feeds = {"x": rng.standard_normal(shape, np.float32), "w": rng.standard_normal(shape[axis:], np.float32)}
    _check(g, opset, feeds, "RMSNormalization")


@settings(max_examples=6, deadline=None)
@given(opset=OPSETS, approximate=st.sampled_from(["none", "tanh"]), n=st.integers(1, 40), seed=st.integers(0, 99))
def test_gelu_below_20(opset, approximate, n, seed):
    g = Graph("gelu")
    x = g.add_input("x", tensor("f32", 2, n))
    g.outputs = [Builder(g).Gelu(x, approximate=approximate)]
    _check(g, opset, {"x": np.random.default_rng(seed).uniform(-6, 6, (2, n)).astype(np.float32)}, "Gelu")


def test_a_ridgeline_std_call_of_an_unknown_op_is_a_one_line_error(tmp_path):
    from ridgeline.ir.errors import ModelError
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2])
    f = onnx.helper.make_function(STD_DOMAIN, "Softmax_0", ["X"], ["Y"], [onnx.helper.make_node("Identity", ["X"], ["Y"])],
                                  [onnx.helper.make_opsetid("", 17)])
    g = onnx.helper.make_graph([onnx.helper.make_node("Softmax_0", ["x"], ["y"], domain=STD_DOMAIN)], "g", [x],
                               [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2])])
    m = onnx.helper.make_model(g, opset_imports=[onnx.helper.make_opsetid("", 17), onnx.helper.make_opsetid(STD_DOMAIN, 1)],
                               functions=[f])
    with pytest.raises(ModelError, match="Softmax_0") as e:
        load_onnx(m)
    assert "\n" not in str(e.value)


@settings(max_examples=15, deadline=None)
@given(opset=OPSETS, b=st.integers(1, 2), s=st.integers(1, 4), past=st.integers(0, 3),
       hkv=st.integers(1, 2), group=st.sampled_from([1, 2, 4]), d=st.sampled_from([4, 10, 16]),
       four_d=st.booleans(), mask=st.sampled_from(["none", "bool", "float", "row"]), causal=st.booleans(),
       softcap=st.sampled_from([0.0, 0.0, 0.0, 5.0]), seed=st.integers(0, 99))
def test_attention_with_a_cache_below_23(opset, b, s, past, hkv, group, d, four_d, mask, causal, softcap, seed):
    """The KV cache as inputs (present K/V returned), 4-D or 3-D, GQA, boolean/additive/broadcast
    masks and is_causal bottom-right over the cache; a softcap takes ONNX's own body (the lean one
    does not write it)."""
    hq, t = hkv * group, s + past
    rng = np.random.default_rng(seed)
    g = Graph("attn")

    def shape(h, n):
        return ("batch", h, n, d) if four_d else ("batch", n, h * d)
    dims = {"batch": b, "seq": s, "past": past}
    ins = [g.add_input(x, tensor("f32", *shape(h, "seq"))) for x, h in (("q", hq), ("k", hkv), ("v", hkv))]
    feeds = {x.name: rng.standard_normal([dims.get(a, a) for a in x.type.shape]).astype(np.float32) for x in ins}
    mt = {"none": None, "bool": ("bool", ("batch", 1, "seq", t)), "float": ("f32", ("batch", hq, "seq", t)),
          "row": ("f32", (t,))}[mask]
    if mt is None:
        ins.append(None)
    else:
        m = g.add_input("m", tensor(mt[0], *[a if a != t else t for a in mt[1]]))
        keep = rng.random([dims.get(a, a) for a in mt[1]]) < 0.7
        keep[..., 0] = True  # no query sees nothing (such rows are arbitrary)
        feeds["m"] = keep if mt[0] == "bool" else np.where(keep, rng.standard_normal(keep.shape), -np.inf).astype(np.float32)
        ins.append(m)
    for x in ("pk", "pv"):
        p = g.add_input(x, tensor("f32", "batch", hkv, "past", d))
        feeds[x] = rng.standard_normal((b, hkv, past, d)).astype(np.float32)
        ins.append(p)
    attrs = {} if four_d else {"q_num_heads": hq, "kv_num_heads": hkv}
    y, pk, pv = Builder(g).Attention(*ins, is_causal=int(causal), softcap=softcap, _outputs=3, **attrs)
    g.outputs = [y, pk, pv]
    _check(g, opset, feeds, "Attention")
