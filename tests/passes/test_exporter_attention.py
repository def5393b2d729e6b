"""An exporter's own ``Attention`` and ``RotaryEmbedding`` (torch's opset-23 export writes both
natively) get the same layout as ridgeline's fused ones: hypothesis draws batch, KV heads, the
GQA group (1 = MHA, Hkv = 1 = MQA), lengths, head size, partial rotation, how K/V are repeated
(Expand or Tile), the mask, and whether the RoPE carries ``num_heads``. The graph is

    q3, k3, v3 [B, S, H·D] → head split → RotaryEmbedding on Q and K (4-D, maybe only x[..., :r]
    with the rest concatenated back) → repeat_kv on K and V → Attention → head merge

and ``fuse-rotary,fuse-attention`` must leave one 3-D Attention reading q3/k3/v3 through 3-D
RoPEs, no repeat, no partial-rotation slices, with the outputs unchanged (``check_graph``).
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ridgeline.ir import Builder, Graph, tensor
from ridgeline.passes import run_pipeline
from ridgeline.testing import check_graph

PIPELINE = "fuse-rotary,fuse-attention,canonicalize,dce"


@st.composite
def exports(draw):
    d = draw(st.sampled_from([4, 6, 8, 10, 16]))
    return {"batch": draw(st.integers(1, 2)), "hkv": draw(st.sampled_from([1, 2])),
            "group": draw(st.sampled_from([1, 2, 3, 4])), "seq": draw(st.integers(1, 4)), "d": d,
            "rot": draw(st.sampled_from([d] + [r for r in range(2, d, 2)])),
            "repeat": draw(st.sampled_from(["expand", "tile"])), "mask": draw(st.sampled_from(["none", "bool", "add"])),
            "num_heads_attr": draw(st.booleans()), "seed": draw(st.integers(0, 2**16))}


def _i64(b: Builder, values):
    return b.constant(np.asarray(values, dtype=np.int64))


def build(p: dict) -> Graph:
    bsz, hkv, n, s, d, r = p["batch"], p["hkv"], p["group"], p["seq"], p["d"], p["rot"]
    hq = hkv * n
    g = Graph("exported")
    b = Builder(g)
    rng = np.random.default_rng(p["seed"])
    q3 = g.add_input("q3", tensor("f32", bsz, s, hq * d))
    k3 = g.add_input("k3", tensor("f32", bsz, s, hkv * d))
    v3 = g.add_input("v3", tensor("f32", bsz, s, hkv * d))
    cos = g.add_input("cos", tensor("f32", 1, s, r // 2))
    sin = g.add_input("sin", tensor("f32", 1, s, r // 2))

    def split(x, h):
        return b.Transpose(b.Reshape(x, _i64(b, [bsz, s, h, d])), perm=[0, 2, 1, 3])

    def rope(x, h):
        attrs = {"num_heads": h} if p["num_heads_attr"] else {}
        if r == d:
            return b.RotaryEmbedding(x, cos, sin, **attrs)
        last = _i64(b, [-1])
        head = b.RotaryEmbedding(b.Slice(x, _i64(b, [0]), _i64(b, [r]), last), cos, sin, **attrs)
        return b.Concat(head, b.Slice(x, _i64(b, [r]), _i64(b, [2**62]), last), axis=-1)

    def repeat(x):
        if n == 1:
            return x
        x5 = b.Unsqueeze(x, _i64(b, [2]))
        x5 = b.Tile(x5, _i64(b, [1, 1, n, 1, 1])) if p["repeat"] == "tile" else b.Expand(x5, _i64(b, [bsz, hkv, n, s, d]))
        return b.Reshape(x5, _i64(b, [bsz, hq, s, d]))

    q = rope(split(q3, hq), hq)
    k = repeat(rope(split(k3, hkv), hkv))
    v = repeat(split(v3, hkv))
    mask = None
    if p["mask"] == "bool":
        allowed = rng.random((bsz, 1, s, s)) < 0.7
        allowed[..., 0] = True  # every query sees a key: fully masked rows are arbitrary in the IR
        mask = b.constant(allowed)
    elif p["mask"] == "add":
        mask = b.constant(rng.normal(size=(1, 1, s, s)).astype(np.float32))
    y = b.Attention(q, k, v, mask, scale=float(np.float32(1 / np.sqrt(d))), _outputs=1)
    g.outputs = [b.Reshape(b.Transpose(y, perm=[0, 2, 1, 3]), _i64(b, [bsz, s, hq * d]))]
    return g


@settings(max_examples=40, deadline=None)
@given(exports())
def test_an_exporters_attention_drops_repeat_kv_and_takes_the_3d_form(p):
    g = build(p)
    check_graph(PIPELINE, g, seed=p["seed"])  # outputs unchanged (float64 oracle, numpy backend)
    run_pipeline(g, PIPELINE)
    hist = g.op_histogram()
    (att,) = [n for n in g if n.op == "Attention"]
    assert att.attr("q_num_heads") == p["hkv"] * p["group"] and att.attr("kv_num_heads") == p["hkv"], (p, hist)
    assert [v.name for v in att.inputs[2:3]] == ["v3"], (p, hist)
    assert not {"Expand", "Tile", "Slice", "Concat", "Transpose"} & set(hist), (p, hist)
    ropes = [n for n in g if n.op == "RotaryEmbedding"]
    assert len(ropes) == 2 and all(n.inputs[0].type.rank == 3 for n in ropes), (p, hist)
    assert all((n.attr("rotary_embedding_dim") or p["d"]) == p["rot"] for n in ropes), p


def test_a_rope_whose_num_heads_differs_from_the_head_split_stays_4d():
    p = {"batch": 1, "hkv": 2, "group": 1, "seq": 3, "d": 4, "rot": 4, "repeat": "expand", "mask": "none",
         "num_heads_attr": True, "seed": 0}
    g = build(p)
    for rope in [n for n in g if n.op == "RotaryEmbedding"]:
        rope.attrs = {**rope.attrs, "num_heads": 3}  # not the split's 2 heads: the rule must decline
    notes = " ".join(run_pipeline(g, "fuse-rotary", explain=True).records[0].notes)
    assert "num_heads=3" in notes, notes
    assert all(n.inputs[0].type.rank == 4 for n in g if n.op == "RotaryEmbedding")


def test_repeat_of_only_one_of_k_and_v_is_kept():
    # K repeated, V given with all query heads: dropping K's repeat alone would change nothing
    # Attention accepts (K and V must share their heads), so the rule declines
    p = {"batch": 1, "hkv": 1, "group": 2, "seq": 2, "d": 4, "rot": 4, "repeat": "expand", "mask": "none",
         "num_heads_attr": False, "seed": 1}
    g = build(p)
    att = next(n for n in g if n.op == "Attention")
    v_full = g.add_input("v_full", tensor("f32", 1, 2, 2, 4))
    att.set_input(2, v_full)
    check_graph("fuse-attention,dce", g)
    run_pipeline(g, "fuse-attention,dce")
    assert g.op_histogram().get("Expand") == 1
