"""``save_onnx(emit="ort-contrib")``: fused ops below their opset written as onnxruntime's
com.microsoft contrib ops. Over generated shapes, layouts, head groupings, KV caches and mask kinds:
the file holds the contrib op (no ridgeline.std function), onnxruntime runs it and agrees with the
numpy reference, and load_onnx reads it back to the same op with the same outputs. Cases the contrib
op does not cover exactly stay functions, with a note saying why."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from fused_op_cases import TABLES, rotary_case
from hypothesis import given, settings
from hypothesis import strategies as st

from ridgeline.backends.numpy import Interpreter
from ridgeline.frontends.onnx import load_onnx, to_onnx
from ridgeline.frontends.onnx.lowering import STD_DOMAIN
from ridgeline.frontends.onnx.ort_contrib import CONTRIB_DOMAIN
from ridgeline.ir import Builder, Graph, tensor
from ridgeline.ir.errors import ModelError

OPSETS = st.sampled_from([17, 18])


def _ort(model: onnx.ModelProto, feeds):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"]).run(None, feeds)


def _check(g: Graph, opset: int, feeds: dict, op: str, contrib: str, rtol: float = 1e-4) -> None:
    g.verify()
    notes: list[str] = []
    m = to_onnx(g, opset=opset, emit="ort-contrib", notes=notes)
    assert {o.domain: o.version for o in m.opset_import}[""] == opset
    assert not notes and not [n for n in m.graph.node if n.domain == STD_DOMAIN], notes
    assert [n.op_type for n in m.graph.node if n.domain == CONTRIB_DOMAIN] == [contrib]
    want = Interpreter(g).run(feeds)
    back = load_onnx(m)
    assert [n.op for n in back].count(op) == 1  # read back as the standard op
    again = Interpreter(back).run(feeds)
    for got, name in zip(_ort(m, feeds), want):
        scale = max(float(np.max(np.abs(want[name]))), 1e-6)
        assert np.max(np.abs(got - want[name])) <= rtol * scale, f"{op} -> {contrib} at opset {opset}: {name}"
        np.testing.assert_allclose(again[name], want[name], rtol=1e-5, atol=1e-6 * scale)


@settings(max_examples=25, deadline=None)
@given(opset=OPSETS, b=st.integers(1, 3), s=st.integers(1, 5), past=st.integers(0, 3),
       hkv=st.integers(1, 3), group=st.sampled_from([1, 2, 4]), d=st.sampled_from([4, 8, 12, 24]),
       four_d=st.booleans(), mask=st.sampled_from(["none", "float", "bool", "inf", "keys"]),
       scale=st.sampled_from([None, 1.0, 0.3]), present=st.booleans(), causal=st.booleans(),
       seed=st.integers(0, 99))
def test_attention_as_multi_head_attention(opset, b, s, past, hkv, group, d, four_d, mask, scale, present, causal,
                                           seed):
    hq, t = hkv * group, s + past
    rng = np.random.default_rng(seed)
    g = Graph("attn")
    if four_d:
        shapes = {"q": (b, hq, s, d), "k": (b, hkv, s, d), "v": (b, hkv, s, d)}
    else:
        shapes = {"q": (b, s, hq * d), "k": (b, s, hkv * d), "v": (b, s, hkv * d)}
    ins = [g.add_input(n, tensor("f32", *sh)) for n, sh in shapes.items()]
    feeds = {n: rng.standard_normal(sh).astype(np.float32) for n, sh in shapes.items()}
    hidden = rng.random((b, 1, s, t)) < 0.4
    hidden[..., 0] = False  # every query sees a key: rows that see none are arbitrary in the IR
    m = None
    if mask == "bool":  # true = attend
        m = g.add_input("m", tensor("bool", b, 1, s, t))
        feeds["m"] = ~hidden
    elif mask in ("float", "inf"):
        m = g.add_input("m", tensor("f32", b, 1, s, t))
        feeds["m"] = np.where(hidden, -np.inf if mask == "inf" else -1e4, 0.0).astype(np.float32)
    elif mask == "keys":  # a padding mask broadcast over the queries: (B, 1, 1, T)
        m = g.add_input("m", tensor("f32", b, 1, 1, t))
        feeds["m"] = np.where(hidden[:, :, :1], -np.inf, 0.0).astype(np.float32)
    extra: list = [m]
    if past:
        pk = g.add_input("pk", tensor("f32", b, hkv, past, d))
        pv = g.add_input("pv", tensor("f32", b, hkv, past, d))
        feeds["pk"] = rng.standard_normal((b, hkv, past, d)).astype(np.float32)
        feeds["pv"] = rng.standard_normal((b, hkv, past, d)).astype(np.float32)
        extra += [pk, pv]
    while extra and extra[-1] is None:
        extra.pop()
    attrs = {} if four_d else {"q_num_heads": hq, "kv_num_heads": hkv}
    if causal:  # key 0 stays visible to every query under the causal frontier too
        attrs["is_causal"] = 1
    if scale is not None:
        attrs["scale"] = scale
    y = Builder(g).Attention(*ins, *extra, **attrs)
    g.outputs = list(y[:3]) if past or present else [y[0]]  # present K/V even without a past
    _check(g, opset, feeds, "Attention", "MultiHeadAttention")


@settings(max_examples=20, deadline=None)
@given(opset=OPSETS, b=st.integers(1, 3), s=st.integers(1, 4), h=st.integers(1, 3),
       d=st.sampled_from([4, 8, 12, 16]), partial=st.booleans(), interleaved=st.booleans(),
       four_d=st.booleans(), tables=st.sampled_from(TABLES), seed=st.integers(0, 99))
def test_rotary_as_contrib_rotary(opset, b, s, h, d, partial, interleaved, four_d, tables, seed):
    g, feeds = rotary_case(b, s, h, d, partial, interleaved, four_d, tables, seed)
    _check(g, opset, feeds, "RotaryEmbedding", "RotaryEmbedding")


@settings(max_examples=6, deadline=None)
@given(opset=OPSETS, approximate=st.sampled_from(["none", "tanh"]), n=st.integers(1, 40), seed=st.integers(0, 99))
def test_gelu_as_contrib_gelu(opset, approximate, n, seed):
    g = Graph("gelu")
    x = g.add_input("x", tensor("f32", 2, n))
    g.outputs = [Builder(g).Gelu(x, approximate=approximate)]
    _check(g, opset, {"x": np.random.default_rng(seed).uniform(-6, 6, (2, n)).astype(np.float32)}, "Gelu",
           "FastGelu" if approximate == "tanh" else "Gelu")


@settings(max_examples=8, deadline=None)
@given(opset=OPSETS, b=st.integers(1, 3), s=st.integers(1, 5), h=st.sampled_from([8, 30, 48]),
       eps=st.sampled_from([1e-6, 1e-5]), sum_read=st.booleans(), seed=st.integers(0, 99))
def test_rmsnorm_of_a_sum_as_skip_simplified_layer_norm(opset, b, s, h, eps, sum_read, seed):
    rng = np.random.default_rng(seed)
    g = Graph("skip")
    a, r = g.add_input("a", tensor("f32", b, s, h)), g.add_input("r", tensor("f32", b, s, h))
    w = g.add_constant("w", rng.standard_normal(h).astype(np.float32))
    bld = Builder(g)
    total = bld.Add(a, r)
    y = bld.RMSNormalization(total, w, axis=-1, epsilon=eps)
    g.outputs = [y, bld.Mul(total, total)] if sum_read else [y]  # the residual sum read again, or not
    feeds = {"a": rng.standard_normal((b, s, h)).astype(np.float32), "r": rng.standard_normal((b, s, h)).astype(np.float32)}
    _check(g, opset, feeds, "RMSNormalization", "SkipSimplifiedLayerNormalization")


@pytest.mark.parametrize("attrs, why", [({"softcap": 5.0}, "softcap"),
                                        # a window of 0 keys is a window (it once passed as none)
                                        ({"left_window_size": 0}, "window"), ({"right_window_size": 0}, "window")])
def test_cases_without_an_exact_contrib_op_stay_functions_with_a_note(attrs, why):
    # MultiHeadAttention has no softcap and no sliding window
    g = Graph("fallback")
    q = g.add_input("q", tensor("f32", 1, 3, 8))
    g.outputs = [Builder(g).Attention(q, q, q, q_num_heads=2, kv_num_heads=2, **attrs)[0]]
    notes: list[str] = []
    m = to_onnx(g, opset=17, emit="ort-contrib", notes=notes)
    assert [n.domain for n in m.graph.node] == [STD_DOMAIN]
    assert len(notes) == 1 and why in notes[0]
    feeds = {"q": np.random.default_rng(0).standard_normal((1, 3, 8)).astype(np.float32)}
    want = Interpreter(g).run(feeds)[g.outputs[0].name]
    np.testing.assert_allclose(_ort(m, feeds)[0], want, rtol=1e-4, atol=1e-5)
    # the standard export too: below opset 25 a window needs ONNX's opset-25 body (23's has none)
    np.testing.assert_allclose(_ort(to_onnx(g, opset=17), feeds)[0], want, rtol=1e-4, atol=1e-5)


def test_an_unknown_emit_is_a_one_line_error():
    g = Graph("e")
    x = g.add_input("x", tensor("f32", 2))
    g.outputs = [Builder(g).Relu(x)]
    with pytest.raises(ModelError, match="emit") as e:
        to_onnx(g, emit="tensorrt")
    assert "\n" not in str(e.value)


def _mha_model(**inputs) -> onnx.ModelProto:
    h = onnx.helper
    names = ["query", "key", "value", "bias", "key_padding_mask"]
    vis = [h.make_tensor_value_info(n, onnx.TensorProto.FLOAT if n != "key_padding_mask" else onnx.TensorProto.INT32,
                                    shape) for n, shape in inputs.items()]
    node = h.make_node("MultiHeadAttention", [n if n in inputs else "" for n in names], ["y"],
                       domain=CONTRIB_DOMAIN, num_heads=2)
    g = h.make_graph([node], "g", vis, [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)])
    return h.make_model(g, opset_imports=[h.make_opsetid("", 17), h.make_opsetid(CONTRIB_DOMAIN, 1)])


def test_a_contrib_case_ridgeline_does_not_read_is_a_one_line_error(tmp_path, capsys):
    from ridgeline.cli import main
    m = _mha_model(query=[1, 3, 8], key=[1, 3, 8], value=[1, 3, 8], key_padding_mask=[1, 3])
    with pytest.raises(ModelError, match="key_padding_mask") as e:
        load_onnx(m)
    assert "\n" not in str(e.value)
    path = tmp_path / "m.onnx"
    onnx.save(m, path)
    before = path.read_bytes()
    assert main(["show", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and "key_padding_mask" in err
    assert path.read_bytes() == before


def test_cli_opt_emit_ort_contrib(tmp_path, capsys):
    from ridgeline.cli import main
    from ridgeline.ir.rir_file import save_rir
    g = Graph("cli")
    x = g.add_input("x", tensor("f32", 2, 6))
    g.outputs = [Builder(g).Gelu(x)]
    src, out = tmp_path / "g.rir", tmp_path / "o.onnx"
    save_rir(g, src)
    assert main(["opt", str(src), "-p", "dce", "-o", str(out), "--opset", "17", "--emit", "ort-contrib"]) == 0
    assert [(n.domain, n.op_type) for n in onnx.load(out).graph.node] == [(CONTRIB_DOMAIN, "Gelu")]
    capsys.readouterr()
    assert main(["opt", str(src), "-p", "dce", "-o", str(tmp_path / "o.rir"), "--emit", "ort-contrib"]) == 2
    assert "--emit" in capsys.readouterr().err


def test_a_lone_rms_norm_function_is_refused_by_onnxruntime(tmp_path):
    # no contrib op for it (SimplifiedLayerNormalization sits in the default domain): its function
    # is spelled the way onnxruntime's SimplifiedLayerNormFusion matches after inlining
    import onnxruntime as ort
    g = Graph("rms")
    x = g.add_input("x", tensor("f32", "batch", 5, 24))
    w = g.add_constant("w", np.linspace(0.5, 2, 24, dtype=np.float32))
    g.outputs = [Builder(g).RMSNormalization(x, w, axis=-1, epsilon=1e-6)]
    m = to_onnx(g, opset=17, emit="ort-contrib")
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.optimized_model_filepath = str(tmp_path / "ort.onnx")
    ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    assert [n.op_type for n in onnx.load(tmp_path / "ort.onnx").graph.node] == ["SimplifiedLayerNormalization"]


def test_two_rms_norms_of_one_sum():
    # the first takes the Add into its Skip* node (the sum as its 4th output), the second reads that
    rng = np.random.default_rng(3)
    g = Graph("two")
    a, r = g.add_input("a", tensor("f32", 2, 3, 16)), g.add_input("r", tensor("f32", 2, 3, 16))
    bld = Builder(g)
    total = bld.Add(a, r)
    g.outputs = [bld.RMSNormalization(total, g.add_constant(f"w{i}", rng.standard_normal(16).astype(np.float32)),
                                      axis=-1, epsilon=1e-6) for i in range(2)]
    m = to_onnx(g, opset=17, emit="ort-contrib")
    assert [n.op_type for n in m.graph.node if n.domain == CONTRIB_DOMAIN] == ["SkipSimplifiedLayerNormalization"]
    feeds = {"a": rng.standard_normal((2, 3, 16)).astype(np.float32), "r": rng.standard_normal((2, 3, 16)).astype(np.float32)}
    want = Interpreter(g).run(feeds)
    for got, name in zip(_ort(m, feeds), want):
        np.testing.assert_allclose(got, want[name], rtol=1e-4, atol=1e-5)
