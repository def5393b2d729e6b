"""Attention, rotary embeddings, normalizations and linear attention against onnx.reference on
random configurations: 3-D/4-D layouts, GQA, KV cache, external cache (nonpad_kv_seqlen), causal
and sliding-window masks, boolean/float masks of every rank, softcap, qk_matmul_output modes."""

from __future__ import annotations

import numpy as np
import pytest

from op_harness import check_op

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def _attention_case(seed: int):
    rng = np.random.default_rng(seed)
    dt = np.float16 if seed % 5 == 4 else np.float32
    b = int(rng.integers(1, 3))
    hkv = int(rng.choice([1, 2]))
    hq = hkv * int(rng.choice([1, 2, 3]))
    sq, skv = int(rng.integers(1, 5)), int(rng.integers(1, 6))
    d, dv = int(rng.choice([4, 8])), int(rng.choice([4, 6]))
    three_d = rng.random() < 0.35
    cache = rng.choice(["none", "past", "nonpad"])
    past = int(rng.integers(0, 4)) if cache == "past" else 0
    total = past + skv
    attrs = {"is_causal": int(rng.integers(0, 2))}
    if rng.random() < 0.3:
        attrs["scale"] = float(rng.uniform(0.1, 0.6))
    if rng.random() < 0.3:
        attrs["softcap"] = float(rng.uniform(1.0, 5.0))
    if rng.random() < 0.3:
        attrs["left_window_size"] = int(rng.integers(0, 4))
    if rng.random() < 0.2:
        attrs["right_window_size"] = int(rng.integers(0, 3))
    if three_d:
        attrs["q_num_heads"], attrs["kv_num_heads"] = hq, hkv
        q = rng.standard_normal((b, sq, hq * d))
        k, v = rng.standard_normal((b, skv, hkv * d)), rng.standard_normal((b, skv, hkv * dv))
    else:
        q = rng.standard_normal((b, hq, sq, d))
        k, v = rng.standard_normal((b, hkv, skv, d)), rng.standard_normal((b, hkv, skv, dv))
    inputs = [q.astype(dt), k.astype(dt), v.astype(dt)]
    mask = None
    kind = rng.choice(["none", "bool", "float"])
    if kind != "none":
        full = [b, hq, sq, total]
        # onnx.reference builds the causal frontier from the mask's own (q, kv) dims, which is
        # wrong when the mask broadcasts over queries; those cases are checked by definition below
        rank = int(rng.integers(2 if attrs["is_causal"] else 1, 5))
        shape = [1 if rng.random() < 0.4 else full[4 - rank + j] for j in range(rank)]
        if attrs["is_causal"]:
            shape[-2] = sq
        if rng.random() < 0.3:
            shape[-1] = max(1, total - int(rng.integers(0, 2)))  # shorter than the keys: padded
        if kind == "bool":
            mask = rng.random(shape) < 0.8
        else:
            mask = np.where(rng.random(shape) < 0.85, rng.standard_normal(shape), -np.inf).astype(dt)
    inputs.append(mask)
    if cache == "past":
        inputs += [rng.standard_normal((b, hkv, past, d)).astype(dt), rng.standard_normal((b, hkv, past, dv)).astype(dt)]
    elif cache == "nonpad":
        inputs += [None, None, rng.integers(0, skv + 1, size=b).astype(np.int64)]
    outputs = 4 if rng.random() < 0.5 and cache != "nonpad" else 1
    if outputs == 4:
        # mode 0 is the raw QK product by the schema; onnx.reference returns it softcapped, so
        # with a softcap modes 1-3 are compared here and mode 0 by definition below
        attrs["qk_matmul_output_mode"] = int(rng.integers(1 if "softcap" in attrs else 0, 4))
    while inputs and inputs[-1] is None:
        inputs.pop()
    return inputs, attrs, outputs, dt


@pytest.mark.parametrize("seed", range(60))
def test_attention_random_configurations(seed):
    inputs, attrs, outputs, dt = _attention_case(seed)
    tol = 2e-2 if dt == np.float16 else 2e-5
    check_op("Attention", inputs, attrs, outputs=outputs, rtol=tol, atol=tol)


def _attention_by_definition(q, k, v, mask, past_len, causal, softcap, scale):
    """Scores, probabilities and output of 4-D attention written out per (batch, head, query)."""
    b, hq, sq, d = q.shape
    hkv, t = k.shape[1], k.shape[2]
    raw = np.zeros((b, hq, sq, t))
    probs = np.zeros((b, hq, sq, t))
    for bi in range(b):
        for h in range(hq):
            kh = h // (hq // hkv)
            for i in range(sq):
                s = np.array([q[bi, h, i].astype(np.float64) @ k[bi, kh, j].astype(np.float64) for j in range(t)])
                s = s * scale
                raw[bi, h, i] = s
                if softcap:
                    s = softcap * np.tanh(s / softcap)
                allowed = np.ones(t, bool)
                if causal:
                    allowed &= np.arange(t) <= i + past_len
                if mask is not None:
                    m = np.broadcast_to(mask, (b, hq, sq, t))[bi, h, i]
                    allowed &= m
                e = np.where(allowed, np.exp(s - s[allowed].max()), 0.0) if allowed.any() else np.zeros(t)
                probs[bi, h, i] = e / e.sum() if allowed.any() else e
    kk = np.repeat(k, hq // hkv, axis=1).astype(np.float64)
    vv = np.repeat(v, hq // hkv, axis=1).astype(np.float64)
    assert kk.shape[2] == t
    return raw, probs, probs @ vv


def test_attention_causal_with_a_query_broadcast_mask_by_definition():
    """A (1, T) boolean mask with is_causal: every query row keeps its own causal frontier."""
    from op_harness import one_node_model
    from ridgeline.frontends.onnx import load_onnx
    from ridgeline.testing.onnx_backend import StrictInterpreter
    rng = np.random.default_rng(11)
    q = rng.standard_normal((1, 2, 3, 4)).astype(np.float32)
    k, v = rng.standard_normal((1, 1, 3, 4)).astype(np.float32), rng.standard_normal((1, 1, 3, 4)).astype(np.float32)
    mask = np.array([[True, False, True]])
    m = one_node_model("Attention", [q, k, v, mask], {"is_causal": 1, "softcap": 3.0, "qk_matmul_output_mode": 0},
                       outputs=4)
    got = StrictInterpreter(load_onnx(m)).run({"in0": q, "in1": k, "in2": v, "in3": mask})
    raw, probs, y = _attention_by_definition(q, k, v, mask, 0, True, 3.0, 0.5)
    np.testing.assert_allclose(got["out0"], y, rtol=1e-5, atol=1e-6)
    # mode 0 is the raw scaled product (before softcap), as the schema defines it
    np.testing.assert_allclose(got["out3"], raw, rtol=1e-5, atol=1e-6)
    assert got["out0"][0, 0, 2].tolist() != got["out0"][0, 0, 0].tolist()


def test_attention_gqa_with_symbolic_sequence_binds():
    rng = np.random.default_rng(0)
    q = rng.standard_normal((1, 4, 3, 8)).astype(np.float32)
    k, v = rng.standard_normal((1, 2, 3, 8)).astype(np.float32), rng.standard_normal((1, 2, 3, 8)).astype(np.float32)
    pk, pv = rng.standard_normal((1, 2, 5, 8)).astype(np.float32), rng.standard_normal((1, 2, 5, 8)).astype(np.float32)
    check_op("Attention", [q, k, v, None, pk, pv], {"is_causal": 1}, outputs=3,
             symbolic={0: {2: "seq"}, 1: {2: "seq"}, 2: {2: "seq"}, 4: {2: "past"}, 5: {2: "past"}})


def _rotary_case(seed: int):
    rng = np.random.default_rng(seed)
    b, s, h, d = int(rng.integers(1, 3)), int(rng.integers(1, 5)), int(rng.integers(1, 4)), int(rng.choice([4, 8]))
    rot = d if rng.random() < 0.6 else d // 2
    attrs = {"interleaved": int(rng.integers(0, 2))}
    if rot != d:
        attrs["rotary_embedding_dim"] = rot
    three_d = rng.random() < 0.4
    x = rng.standard_normal((b, s, h * d) if three_d else (b, h, s, d)).astype(np.float32)
    if three_d:
        attrs["num_heads"] = h
    if rng.random() < 0.5:
        max_pos = s + 3
        cos = rng.standard_normal((max_pos, rot // 2)).astype(np.float32)
        sin = rng.standard_normal((max_pos, rot // 2)).astype(np.float32)
        pos = rng.integers(0, max_pos, size=(b, s)).astype(np.int64)
        return [x, cos, sin, pos], attrs
    cos = rng.standard_normal((b, s, rot // 2)).astype(np.float32)
    sin = rng.standard_normal((b, s, rot // 2)).astype(np.float32)
    return [x, cos, sin], attrs


@pytest.mark.parametrize("seed", range(24))
def test_rotary_embedding_random_configurations(seed):
    inputs, attrs = _rotary_case(seed)
    check_op("RotaryEmbedding", inputs, attrs)


@pytest.mark.parametrize("axis", [0, 1, -1, -2])
@pytest.mark.parametrize("dt", [np.float32, np.float16])
def test_layer_norm_axes(axis, dt):
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((2, 3, 4)) * 3 + 1).astype(dt)
    norm_shape = x.shape[axis % 3:]
    scale, bias = rng.standard_normal(norm_shape).astype(dt), rng.standard_normal(norm_shape[-1:]).astype(dt)
    tol = 1e-2 if dt == np.float16 else 1e-5
    # the mean/inv-std outputs are compared for f32 only: onnx.reference returns them in X's
    # type, the schema in stash_type's (U is float or bfloat16), checked below
    check_op("LayerNormalization", [x, scale, bias], {"axis": axis, "epsilon": 1e-3},
             outputs=3 if dt == np.float32 else 1, rtol=tol, atol=tol)
    check_op("LayerNormalization", [x, scale], {"axis": axis}, rtol=tol, atol=tol)


@pytest.mark.parametrize("stash,stat_dt", [(1, np.float32), (11, np.float64)])
def test_layer_norm_statistics_follow_stash_type(stash, stat_dt):
    from op_harness import one_node_model
    from ridgeline.frontends.onnx import load_onnx
    from ridgeline.testing.onnx_backend import StrictInterpreter
    rng = np.random.default_rng(6)
    x = (rng.standard_normal((3, 8)) * 10 + 100).astype(np.float16)
    scale = np.ones(8, np.float16)
    g = load_onnx(one_node_model("LayerNormalization", [x, scale], {"stash_type": stash}, outputs=3))
    y, mean, inv = (StrictInterpreter(g).run({"in0": x, "in1": scale})[f"out{j}"] for j in range(3))
    assert mean.dtype == inv.dtype == stat_dt and y.dtype == np.float16
    xd = x.astype(np.float64)
    np.testing.assert_allclose(mean[:, 0], xd.mean(-1), rtol=1e-6)
    np.testing.assert_allclose(inv[:, 0], 1 / np.sqrt(xd.var(-1) + 1e-5), rtol=1e-5)
    np.testing.assert_allclose(y.astype(np.float64), (xd - xd.mean(-1, keepdims=True)) * inv, atol=4e-3)


@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("dt", [np.float32, np.float16])
def test_rms_norm(axis, dt):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3, 4)).astype(dt)
    scale = rng.standard_normal(x.shape[axis % 3:]).astype(dt)
    tol = 1e-2 if dt == np.float16 else 1e-5
    check_op("RMSNormalization", [x, scale], {"axis": axis, "epsilon": 1e-4}, rtol=tol, atol=tol,
             symbolic={0: {0: "batch"}} if axis % 3 else None)


def test_other_normalizations():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 6, 3, 4)).astype(np.float32)
    c = lambda: rng.standard_normal(6).astype(np.float32)  # noqa: E731
    check_op("GroupNormalization", [x, c(), c()], {"num_groups": 3, "epsilon": 1e-3}, rtol=1e-4, atol=1e-5)
    check_op("InstanceNormalization", [x, c(), c()], rtol=1e-4, atol=1e-5)
    check_op("BatchNormalization", [x, c(), c(), c(), np.abs(c()) + 0.5], rtol=1e-5, atol=1e-5)
    check_op("LpNormalization", [x], {"axis": -1, "p": 2})
    check_op("LpNormalization", [x], {"axis": 1, "p": 2})
    check_op("MeanVarianceNormalization", [x], rtol=1e-4, atol=1e-5)
    check_op("MeanVarianceNormalization", [x], {"axes": [1, 3]}, rtol=1e-4, atol=1e-5)


def test_l1_normalization_by_definition():
    """p=1 divides by the sum of absolute values (onnx.reference sums the raw values)."""
    from op_harness import one_node_model
    from ridgeline.frontends.onnx import load_onnx
    from ridgeline.testing.onnx_backend import StrictInterpreter
    x = np.array([[1.0, -3.0, 0.0], [0.0, 0.0, 0.0]], np.float32)
    g = load_onnx(one_node_model("LpNormalization", [x], {"axis": -1, "p": 1}))
    got = StrictInterpreter(g).run({"in0": x})["out0"]
    np.testing.assert_allclose(got, [[0.25, -0.75, 0.0], [0.0, 0.0, 0.0]])


@pytest.mark.parametrize("rule", ["linear", "gated", "delta", "gated_delta"])
@pytest.mark.parametrize("gqa,per_dim,state", [(1, False, False), (2, True, True), (2, False, True)])
def test_linear_attention_rules(rule, gqa, per_dim, state):
    rng = np.random.default_rng(8)
    b, t, hkv, dk, dv = 2, 5, 2, 4, 3
    hq = hkv * gqa
    q = rng.standard_normal((b, t, hq * dk)).astype(np.float32)
    k = rng.standard_normal((b, t, hkv * dk)).astype(np.float32)
    k = (k.reshape(b, t, hkv, dk) / np.linalg.norm(k.reshape(b, t, hkv, dk), axis=-1, keepdims=True)).reshape(b, t, -1)
    v = rng.standard_normal((b, t, hkv * dv)).astype(np.float32)
    past = rng.standard_normal((b, hkv, dk, dv)).astype(np.float32) if state else None
    decay = -np.abs(rng.standard_normal((b, t, hkv * dk if per_dim else hkv))).astype(np.float32) \
        if rule in ("gated", "gated_delta") else None
    beta = (1 / (1 + np.exp(-rng.standard_normal((b, t, hkv))))).astype(np.float32) \
        if rule in ("delta", "gated_delta") else None
    inputs = [q, k.astype(np.float32), v, past, decay, beta]
    while inputs[-1] is None:
        inputs.pop()
    check_op("LinearAttention", inputs, {"q_num_heads": hq, "kv_num_heads": hkv, "update_rule": rule},
             outputs=2, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("activation", ["none", "silu"])
@pytest.mark.parametrize("with_state,with_bias", [(False, False), (True, True), (True, False)])
def test_causal_conv_with_state(activation, with_state, with_bias):
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 3, 5)).astype(np.float32)
    w = rng.standard_normal((3, 1, 4)).astype(np.float32)
    inputs = [x, w, rng.standard_normal(3).astype(np.float32) if with_bias else None,
              rng.standard_normal((2, 3, 3)).astype(np.float32) if with_state else None]
    while inputs[-1] is None:
        inputs.pop()
    check_op("CausalConvWithState", inputs, {"activation": activation}, outputs=2, rtol=1e-5, atol=1e-5)
