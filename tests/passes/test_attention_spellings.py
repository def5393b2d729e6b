"""fuse-attention follows the math, not one exporter's spelling: hypothesis draws shapes (heads,
GQA groups, query/key lengths, head size, a KV cache) and a spelling for every part of
``softmax(Q·Kᵀ·s + M)·V`` — where the scale sits (scores, Q, Kᵀ, both as √s·√s, as a Div), how Kᵀ
is written (Transpose of [B,H,T,D] or of [B,T,H,D], the reshape-transpose-reshape of the dynamo
exporter), the mask (none, additive, a boolean through Where with −inf or finfo.min, a causal mask
from Range and a comparison, an additive mask built from a boolean), the isnan guard after
Softmax, repeat-kv for GQA/MQA (Expand or Tile), Concat with a past cache. The fusion must leave exactly one
Attention and ``ridgeline.testing.check_graph`` must find the outputs unchanged.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ridgeline.ir import Builder, Graph, tensor
from ridgeline.testing import check_graph

F32_MIN = float(np.finfo(np.float32).min)


def _i64(b: Builder, values) -> object:
    return b.constant(np.asarray(values, dtype=np.int64))


def _f32(b: Builder, value: float) -> object:
    return b.constant(np.asarray(value, dtype=np.float32))


@st.composite
def spellings(draw):
    hkv = draw(st.sampled_from([1, 2]))
    return {
        "batch": draw(st.integers(1, 2)), "hkv": hkv, "group": draw(st.sampled_from([1, 2, 3])),
        "seq": draw(st.integers(1, 4)), "past": draw(st.sampled_from([0, 0, 2])),
        "d": draw(st.sampled_from([2, 3, 4, 8])),
        "scale_at": draw(st.sampled_from(["scores", "scores-div", "q", "k", "both", "q-div"])),
        "kt_form": draw(st.sampled_from(["transpose", "bthd", "flat"])),
        "mask": draw(st.sampled_from(["none", "add", "where-inf", "where-min", "causal-range", "bool-to-add"])),
        "guard": draw(st.booleans()), "tile": draw(st.booleans()), "seed": draw(st.integers(0, 2**16))}


def build(p: dict) -> Graph:
    """One attention sub-graph in the drawn spelling (inputs: q, k, v and maybe past_k/past_v)."""
    bsz, hkv, n, s, past, d = p["batch"], p["hkv"], p["group"], p["seq"], p["past"], p["d"]
    hq, t = hkv * n, p["past"] + p["seq"]
    g = Graph("attention")
    b = Builder(g)
    rng = np.random.default_rng(p["seed"])
    q = g.add_input("q", tensor("f32", *(bsz, hq, s, d)))
    k_layout = (bsz, s, hkv, d) if p["kt_form"] == "bthd" else (bsz, hkv, s, d)
    k = g.add_input("k", tensor("f32", *k_layout))
    v = g.add_input("v", tensor("f32", *(bsz, hkv, s, d)))
    if p["kt_form"] == "bthd":  # [B, T, H, D]: the cache and repeat-kv need [B, H, T, D]
        k = b.Transpose(k, perm=[0, 2, 1, 3])
    if past:
        k = b.Concat(g.add_input("past_k", tensor("f32", *(bsz, hkv, past, d))), k, axis=2)
        v = b.Concat(g.add_input("past_v", tensor("f32", *(bsz, hkv, past, d))), v, axis=2)
    if n > 1:  # repeat_kv: [B, Hkv, T, D] -> [B, Hkv, n, T, D] (Expand or Tile) -> [B, Hkv·n, T, D]
        def rep(x):
            x5 = b.Unsqueeze(x, _i64(b, [2]))
            x5 = b.Tile(x5, _i64(b, [1, 1, n, 1, 1])) if p["tile"] else b.Expand(x5, _i64(b, [bsz, hkv, n, t, d]))
            return b.Reshape(x5, _i64(b, [bsz, hq, t, d]))
        k, v = rep(k), rep(v)
    if p["kt_form"] == "flat":
        kt = b.Reshape(b.Transpose(b.Reshape(k, _i64(b, [bsz * hq, t, d])), perm=[0, 2, 1]), _i64(b, [bsz, hq, d, t]))
    else:
        kt = b.Transpose(k, perm=[0, 1, 3, 2])
    scale = 1.0 / math.sqrt(d)
    at = p["scale_at"]
    if at in ("q", "both"):
        q = b.Mul(q, _f32(b, scale if at == "q" else math.sqrt(scale)))
    if at == "q-div":
        q = b.Div(q, _f32(b, 1.0 / scale))
    if at in ("k", "both"):
        kt = b.Mul(kt, _f32(b, scale if at == "k" else math.sqrt(scale)))
    scores = b.MatMul(q, kt)
    if at == "scores":
        scores = b.Mul(scores, _f32(b, scale))
    elif at == "scores-div":
        scores = b.Div(scores, _f32(b, 1.0 / scale))
    # every query sees at least one key, except where the guard makes fully masked rows exact
    allowed = rng.random((bsz, 1, s, t)) < 0.7
    if not p["guard"]:
        allowed[..., 0] = True
    m = p["mask"]
    if m == "add":
        scores = b.Add(scores, b.constant(np.where(allowed, rng.normal(size=allowed.shape), -1e9).astype(np.float32)))
    elif m in ("where-inf", "where-min"):
        fill = -np.inf if m == "where-inf" else F32_MIN
        if m == "where-min" or not p["guard"]:
            allowed[..., 0] = True  # finfo.min gives a uniform row where Attention gives zeros
        scores = b.Where(b.constant(allowed), scores, _f32(b, fill))
    elif m == "causal-range":  # key j visible to query i when j <= i + past
        rows = b.Unsqueeze(b.Range(_i64(b, past), _i64(b, t), _i64(b, 1)), _i64(b, [1]))
        cols = b.Unsqueeze(b.Range(_i64(b, 0), _i64(b, t), _i64(b, 1)), _i64(b, [0]))
        scores = b.Where(b.LessOrEqual(cols, rows), scores, _f32(b, -np.inf))
    elif m == "bool-to-add":
        scores = b.Add(scores, b.Where(b.constant(allowed), _f32(b, 0.0), _f32(b, -np.inf)))
    probs = b.Softmax(scores, axis=-1)
    if p["guard"]:
        probs = b.Where(b.IsNaN(probs), _f32(b, 0.0), probs)
    y = b.MatMul(probs, v)
    g.outputs = [y]
    return g


@settings(max_examples=60, deadline=None)
@given(spellings())
def test_every_spelling_fuses_to_one_attention_and_keeps_outputs(p):
    g = build(p)
    outcome = check_graph("fuse-attention,dce", g, seed=p["seed"])
    fused = g.copy()
    from ridgeline.passes import run_pipeline
    run_pipeline(fused, "fuse-attention,dce")
    hist = fused.op_histogram()
    assert hist.get("Attention") == 1 and "Softmax" not in hist, (p, hist)
    assert outcome.nodes_after < outcome.nodes_before


def test_explain_names_the_attention_that_almost_matched():
    # a softcap (tanh) between the scores and the mask is not SDPA: --explain must point at the
    # attention's MatMul and the failed step, not at some other MatMul of the graph
    from ridgeline.passes import run_pipeline
    g = build({"batch": 1, "hkv": 1, "group": 1, "seq": 3, "past": 0, "d": 4, "scale_at": "both",
               "kt_form": "flat", "mask": "add", "guard": True, "tile": False, "seed": 1})
    add = next(n for n in g if n.op == "Softmax").inputs[0].producer
    add.set_input(0, Builder(g, before=add).Tanh(add.inputs[0]))
    w = g.add_constant("w", np.ones((4, 4), np.float32))
    out = Builder(g).MatMul(g.outputs[0], w)  # an unrelated MatMul after the attention
    g.outputs = [out]
    notes = " ".join(run_pipeline(g, "fuse-attention", explain=True).records[0].notes)
    assert "Attention" not in g.op_histogram()
    assert "Tanh" in notes and "expected Add" in notes, notes
