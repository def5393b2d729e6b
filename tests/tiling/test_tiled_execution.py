"""Tiles are executable: the numpy backend runs a node block by block by its schedule, and the
result equals the untiled reference kernel's — on shapes that are NOT multiples of the tiles.

Schedules here are written by hand (random tile sizes, loop orders, outer-level groups) so every
edge case of the loop nests is reached; the pass's own schedules are checked on the exported
models and on random graphs in test_tile_pass.py.
"""

from __future__ import annotations

import itertools
import math
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ridgeline.backends.numpy import Interpreter, tiled
from ridgeline.backends.numpy.interpreter import call_reference
from ridgeline.ir import Graph, tensor

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
RTOL = 1e-5


class Spy(Interpreter):
    """Counts the nodes that really ran tiled (a schedule that fell back would not count) and the
    reference kernel calls the tiled runs made (one per block)."""

    def __init__(self, graph, **kw):
        super().__init__(graph, **kw)
        self.tiled = self.blocks = 0

    def call_tiled(self, node, args):
        with mock.patch.object(tiled, "call_kernel", wraps=tiled.call_kernel) as kernel:
            out = super().call_tiled(node, args)
        self.tiled += out is not None
        self.blocks += kernel.call_count
        return out


def run_both(g: Graph, feeds: dict, blocks: int | None = None) -> tuple[dict, dict, int]:
    """Tiled and untiled results, and how many nodes ran tiled; ``blocks``: the kernel calls the
    schedule implies (checked)."""
    spy = Spy(g)
    got = spy.run(feeds)
    ref = Interpreter(g, tiles=False).run(feeds)
    if blocks is not None:
        assert spy.blocks == blocks, f"{spy.blocks} kernel calls, the schedule implies {blocks}"
    return got, ref, spy.tiled


def row_blocks(kept: tuple[int, ...], block: int) -> int:
    """Kernel calls for blocks of ``block`` flattened rows over ``kept`` dims: a block that crosses
    a boundary of the last kept dim is one rectangular window per side."""
    rows = math.prod(kept)
    if not kept:
        return 1
    inner = kept[-1]
    return sum((min(rows, r + block) - 1) // inner - r // inner + 1 for r in range(0, rows, block))


def assert_close(got: dict, ref: dict, rtol: float = RTOL) -> None:
    assert got.keys() == ref.keys()
    for k, r in ref.items():
        g, r = np.asarray(got[k]), np.asarray(r)
        assert g.shape == r.shape and g.dtype == r.dtype, (k, g.shape, r.shape, g.dtype, r.dtype)
        r64 = r.astype(np.float64)
        scale = float(np.max(np.abs(r64))) if r.size else 0.0
        err = float(np.max(np.abs(g.astype(np.float64) - r64))) if r.size else 0.0
        assert err <= rtol * max(scale, 1e-30), f"{k}: max error {err:.3g} vs max |ref| {scale:.3g}"


def rng_for(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


orders = st.permutations(["m", "n", "k"])
tile = st.integers(1, 17)


# --------------------------------------------------------------------------- GEMM
@SETTINGS
@given(m=st.integers(1, 40), n=st.integers(1, 40), k=st.integers(1, 40), batch=st.sampled_from([(), (2,), (3, 2)]),
       tm=tile, tn=tile, tk=tile, order=orders, groups=st.none() | st.tuples(st.integers(1, 3), st.integers(1, 3)),
       shared_b=st.booleans(), seed=st.integers(0, 2**16))
def test_matmul_by_tiles(m, n, k, batch, tm, tn, tk, order, groups, shared_b, seed):
    rng = rng_for(seed)
    g = Graph("mm")
    a = g.add_input("a", tensor("f32", *batch, m, k))
    bshape = (k, n) if shared_b or not batch else (*batch, k, n)
    b = g.add_constant("b", rng.standard_normal(bshape).astype(np.float32))
    node = g.add_node("MatMul", [a, b])
    g.outputs = [node.outputs[0]]
    rec = {"kernel": "gemm", "shape": {"m": tm, "n": tn, "k": tk}, "order": list(order), "traffic": {"hbm": 1.0}}
    if groups:
        rec["groups"] = {"l2": {"m": groups[0], "n": groups[1]}}
    node.meta["tile"] = rec
    got, ref, tiled = run_both(g, {"a": rng.standard_normal((*batch, m, k)).astype(np.float32)})
    assert tiled == 1
    assert_close(got, ref)


@SETTINGS
@given(m=st.integers(1, 30), n=st.integers(1, 30), k=st.integers(1, 30), ta=st.booleans(), tb=st.booleans(),
       bias=st.sampled_from([None, "n", "mn", "1n"]), alpha=st.sampled_from([1.0, 0.5]), tm=tile, tn=tile, tk=tile,
       order=orders, seed=st.integers(0, 2**16))
def test_gemm_by_tiles(m, n, k, ta, tb, bias, alpha, tm, tn, tk, order, seed):
    rng = rng_for(seed)
    g = Graph("gemm")
    a = g.add_input("a", tensor("f32", *((k, m) if ta else (m, k))))
    b = g.add_constant("b", rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32))
    ins = [a, b]
    if bias:
        shape = {"n": (n,), "mn": (m, n), "1n": (1, n)}[bias]
        ins.append(g.add_constant("c", rng.standard_normal(shape).astype(np.float32)))
    node = g.add_node("Gemm", ins, {"transA": int(ta), "transB": int(tb), "alpha": alpha, "beta": 0.75})
    g.outputs = [node.outputs[0]]
    node.meta["tile"] = {"kernel": "gemm", "shape": {"m": tm, "n": tn, "k": tk}, "order": list(order),
                         "traffic": {"hbm": 1.0}}
    got, ref, tiled = run_both(g, {"a": rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)})
    assert tiled == 1
    assert_close(got, ref)


@pytest.mark.parametrize("dtype,ulp", [("f16", 2e-3), ("bf16", 1.6e-2)])
def test_half_precision_gemm_accumulates_in_f32_like_the_reference(dtype, ulp):
    rng = rng_for(0)
    g = Graph("h")
    a = g.add_input("a", tensor(dtype, 37, 70))
    np_dt = a.type.dtype.np_dtype
    b = g.add_constant("b", rng.standard_normal((70, 23)).astype(np_dt))
    node = g.add_node("MatMul", [a, b])
    g.outputs = [node.outputs[0]]
    node.meta["tile"] = {"kernel": "gemm", "shape": {"m": 8, "n": 5, "k": 9}, "order": ["k", "m", "n"],
                         "traffic": {"hbm": 1.0}}
    av = rng.standard_normal((37, 70)).astype(np_dt)
    got, ref, tiled = run_both(g, {"a": av})
    assert tiled == 1
    # both round the f32 accumulator to the input type once: at most one ulp apart
    assert_close(got, ref, rtol=ulp)
    # the tiled kernel itself returns the input type, as the plain kernel does
    assert call_reference(node, [av, b.data]).dtype == np_dt


def _dequant_matmul(rng, m, k, n, block, axis_scale):
    """x @ DequantizeLinear(qw) + bias, ReLU — a weight-only quantized GEMM as one Fused node."""
    g = Graph("dq")
    x = g.add_input("x", tensor("f32", 2, m, k))
    qw = g.add_constant("qw", rng.integers(-8, 8, (k, n)).astype(np.int8))
    if block:
        scale = g.add_constant("s", (rng.random((-(-k // block), n)) + 0.5).astype(np.float32))
    elif axis_scale:
        scale = g.add_constant("s", (rng.random(n) + 0.5).astype(np.float32))
    else:
        scale = g.add_constant("s", np.array(0.25, np.float32))
    bias = g.add_constant("bias", rng.standard_normal(n).astype(np.float32))
    body = Graph("body")
    bx, bq, bs, bb = (body.add_input(nm, v.type) for nm, v in (("x", x), ("qw", qw), ("s", scale), ("b", bias)))
    attrs = {"axis": 0, "block_size": block} if block else {"axis": 1}
    w = body.add_node("DequantizeLinear", [bq, bs], attrs).outputs[0]
    y = body.add_node("MatMul", [bx, w]).outputs[0]
    y = body.add_node("Add", [y, bb]).outputs[0]
    body.outputs = [body.add_node("Relu", [y]).outputs[0]]
    node = g.add_node("Fused", [x, qw, scale, bias], {"kind": "dequant-matmul"}, body=body)
    g.outputs = [node.outputs[0]]
    return g, node


@SETTINGS
@given(m=st.integers(1, 20), k=st.integers(4, 40), n=st.integers(1, 20), block=st.sampled_from([0, 4, 8, 16]),
       axis_scale=st.booleans(), tm=tile, tn=tile, tk=tile, order=orders, seed=st.integers(0, 2**16))
def test_fused_dequant_matmul_by_tiles(m, k, n, block, axis_scale, tm, tn, tk, order, seed):
    """The product by tiles inside a fused body whose prologue dequantizes (per tensor, per axis,
    blocked) and whose epilogue adds a bias and applies ReLU."""
    rng = rng_for(seed)
    g, node = _dequant_matmul(rng, m, k, n, block if block < k else 0, axis_scale)
    node.meta["tile"] = {"kernel": "gemm", "shape": {"m": tm, "n": tn, "k": tk}, "order": list(order),
                         "traffic": {"hbm": 1.0}}
    got, ref, tiled = run_both(g, {"x": rng.standard_normal((2, m, k)).astype(np.float32)})
    assert tiled == 1
    assert_close(got, ref)


# --------------------------------------------------------------------------- attention
@st.composite
def attention_cases(draw):
    b = draw(st.integers(1, 2))
    hkv = draw(st.integers(1, 2))
    group = draw(st.integers(1, 3))
    past = draw(st.integers(0, 7))
    # an empty query needs keys in the cache and 4-D heads: the reference kernel fails without
    sq = draw(st.integers(0 if past else 1, 9))
    d = draw(st.sampled_from([4, 8]))
    dv = draw(st.sampled_from([4, 8]))
    return {"b": b, "hkv": hkv, "hq": hkv * group, "sq": sq, "past": past, "d": d, "dv": dv,
            "three_d": draw(st.booleans()) if sq else False, "causal": draw(st.booleans()),
            "left": draw(st.sampled_from([-1, 0, 2, 5])), "right": draw(st.sampled_from([-1, 0, 3])),
            "softcap": draw(st.sampled_from([0.0, 5.0])), "mask": draw(st.sampled_from([None, "bool", "float"])),
            "bq": draw(st.integers(1, 12)), "seed": draw(st.integers(0, 2**16))}


@SETTINGS
@given(c=attention_cases())
def test_attention_by_query_blocks_matches_the_reference(c):
    """Query blocks, each placed after the keys before it: causal and sliding windows, KV cache,
    GQA, masks (per query row or broadcast), softcap, 3-D and 4-D, an empty query."""
    rng = rng_for(c["seed"])
    b, hq, hkv, sq, past, d, dv = (c[k] for k in ("b", "hq", "hkv", "sq", "past", "d", "dv"))
    t = past + sq
    g = Graph("att")
    feeds = {}

    def inp(name, shape):
        feeds[name] = rng.standard_normal(shape).astype(np.float32)
        return g.add_input(name, tensor("f32", *shape))

    if c["three_d"]:
        q, k, v = inp("q", (b, sq, hq * d)), inp("k", (b, sq, hkv * d)), inp("v", (b, sq, hkv * dv))
        attrs = {"q_num_heads": hq, "kv_num_heads": hkv}
    else:
        q, k, v = inp("q", (b, hq, sq, d)), inp("k", (b, hkv, sq, d)), inp("v", (b, hkv, sq, dv))
        attrs = {}
    attrs.update(is_causal=int(c["causal"]), left_window_size=c["left"], right_window_size=c["right"],
                 softcap=c["softcap"])
    ins = [q, k, v]
    if c["mask"] == "bool":
        m = rng.random((b, 1, sq, t)) < 0.8
        feeds["mask"] = m
        ins.append(g.add_input("mask", tensor("bool", b, 1, sq, t)))
    elif c["mask"] == "float":
        feeds["mask"] = rng.standard_normal((sq, t)).astype(np.float32)
        ins.append(g.add_input("mask", tensor("f32", sq, t)))
    else:
        ins.append(None)
    n_out = 1
    if past:
        ins += [inp("pk", (b, hkv, past, d)), inp("pv", (b, hkv, past, dv))]
        n_out = 3
    while ins and ins[-1] is None:
        ins.pop()
    node = g.add_node("Attention", ins, attrs, outputs=n_out)
    g.outputs = list(node.outputs)
    # key/value blocks are not run here (see tiled.py), so a record without them runs
    node.meta["tile"] = {"kernel": "attention", "shape": {"q": c["bq"]}, "traffic": {"hbm": 1.0}}
    got, ref, tiled = run_both(g, feeds, blocks=max(1, math.ceil(sq / c["bq"])))
    assert tiled == 1
    assert_close(got, ref)


def test_attention_with_score_output_falls_back_to_the_plain_kernel():
    rng = rng_for(1)
    g = Graph("att")
    q = g.add_input("q", tensor("f32", 1, 2, 5, 4))
    node = g.add_node("Attention", [q, q, q], outputs=4)
    g.outputs = list(node.outputs)
    node.meta["tile"] = {"kernel": "attention", "shape": {"q": 2, "kv": 2}, "traffic": {"hbm": 1.0}}
    got, ref, tiled = run_both(g, {"q": rng.standard_normal((1, 2, 5, 4)).astype(np.float32)})
    assert tiled == 0      # the score matrix is an output: the schedule does not apply
    assert_close(got, ref)


# --------------------------------------------------------------------------- rows
@SETTINGS
@given(shape=st.lists(st.integers(1, 9), min_size=2, max_size=4), data=st.data(),
       op=st.sampled_from(["LayerNormalization", "RMSNormalization"]), bias=st.booleans(),
       stats=st.booleans(), seed=st.integers(0, 2**16))
def test_normalization_by_row_blocks(shape, data, op, bias, stats, seed):
    rng = rng_for(seed)
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    ax = axis % len(shape)
    rows = int(np.prod(shape[:ax])) if ax else 1
    g = Graph("norm")
    x = g.add_input("x", tensor("f32", *shape))
    scale = g.add_constant("s", rng.standard_normal(shape[ax:]).astype(np.float32))
    ins = [x, scale]
    if op == "LayerNormalization" and bias:
        ins.append(g.add_constant("b", rng.standard_normal(shape[-1]).astype(np.float32)))
    n_out = 3 if op == "LayerNormalization" and stats else 1
    node = g.add_node(op, ins, {"axis": axis, "epsilon": 1e-3}, outputs=n_out)
    g.outputs = list(node.outputs)
    block = data.draw(st.integers(1, rows + 2))
    # column splits are not run here (see tiled.py): any cols will do
    node.meta["tile"] = {"kernel": "rows", "shape": {"rows": block}, "traffic": {"hbm": 1.0}}   # cols: unread
    got, ref, tiled = run_both(g, {"x": (rng.standard_normal(shape) * 3 + 1).astype(np.float32)},
                               blocks=row_blocks(tuple(shape[:ax]), block))
    assert tiled == 1
    assert_close(got, ref)


REDUCTIONS = ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
              "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp"]


@SETTINGS
@given(shape=st.lists(st.integers(1, 7), min_size=1, max_size=4), data=st.data(),
       op=st.sampled_from(REDUCTIONS + ["Softmax", "LogSoftmax"]), keep=st.booleans(), seed=st.integers(0, 2**16))
def test_reductions_and_softmax_by_blocks(shape, data, op, keep, seed):
    """Row blocks over any set of reduced axes, kept or dropped."""
    rng = rng_for(seed)
    rank = len(shape)
    g = Graph("red")
    x = g.add_input("x", tensor("f32", *shape))
    if op in ("Softmax", "LogSoftmax"):
        axis = data.draw(st.integers(-rank, rank - 1))
        node = g.add_node(op, [x], {"axis": axis})
        axes = [axis % rank]
    else:
        axes = sorted(data.draw(st.sets(st.integers(0, rank - 1), min_size=1)))
        a = g.add_constant("axes", np.array(axes, np.int64))
        node = g.add_node(op, [x, a], {"keepdims": int(keep)})
    kept = tuple(n for i, n in enumerate(shape) if i not in axes)
    block = data.draw(st.integers(1, math.prod(kept) + 1))
    g.outputs = [node.outputs[0]]
    node.meta["tile"] = {"kernel": "rows", "shape": {"rows": block}, "traffic": {"hbm": 1.0}}   # cols: unread
    xv = rng.standard_normal(shape).astype(np.float32)
    if op == "ReduceLogSum":
        xv = (np.abs(xv) + 0.5).astype(np.float32)
    elif op == "ReduceProd":
        # factors near 1 keep a product over up to 7^4 elements finite (|x|+0.5 overflowed to inf)
        xv = np.exp(0.1 * xv).astype(np.float32)
    got, ref, tiled = run_both(g, {"x": xv}, blocks=row_blocks(kept, block))
    assert tiled == 1
    assert_close(got, ref, rtol=1e-5 if op != "ReduceProd" else 1e-4)


# --------------------------------------------------------------------------- element-wise
@SETTINGS
@given(shape=st.lists(st.integers(1, 8), min_size=1, max_size=4), data=st.data(), seed=st.integers(0, 2**16))
def test_elementwise_and_fused_elementwise_by_blocks(shape, data, seed):
    """Broadcast operands cut to each block of the result (flattened row blocks split into
    rectangular windows); a fused body evaluated per block."""
    rng = rng_for(seed)
    rank = len(shape)
    bshape = [d if data.draw(st.booleans()) else 1 for d in shape][data.draw(st.integers(0, rank - 1)):]
    g = Graph("ew")
    x = g.add_input("x", tensor("f32", *shape))
    y = g.add_input("y", tensor("f32", *bshape))
    body = Graph("body")
    bx, by = body.add_input("x", x.type), body.add_input("y", y.type)
    s = body.add_node("Sigmoid", [bx]).outputs[0]
    p = body.add_node("Mul", [s, by]).outputs[0]
    body.outputs = [body.add_node("Add", [p, bx]).outputs[0]]
    fused = g.add_node("Fused", [x, y], {"kind": "elementwise"}, body=body)
    plain = g.add_node("Sub", [fused.outputs[0], y])
    g.outputs = [plain.outputs[0]]
    rows = int(np.prod(shape[:-1]))
    for n in (fused, plain):
        n.meta["tile"] = {"kernel": "elementwise", "shape": {"rows": data.draw(st.integers(1, rows + 1)),
                                                             "cols": data.draw(st.integers(1, shape[-1]))},
                          "traffic": {"hbm": 1.0}}
    got, ref, tiled = run_both(g, {"x": rng.standard_normal(shape).astype(np.float32),
                                   "y": rng.standard_normal(bshape).astype(np.float32)})
    assert tiled == 2
    assert_close(got, ref)


@pytest.mark.parametrize("four_d,pos,one", list(itertools.product([False, True], [True, False], [False, True])))
def test_rotary_by_token_blocks(four_d, pos, one):
    """Blocks of tokens; ``one``: the cos/sin cache (or the position ids) has batch 1 and serves
    every batch, as exported models give it."""
    rng = rng_for(3)
    b, s, h, d = 2, 7, 3, 8
    cb = 1 if one else b
    g = Graph("rope")
    x = g.add_input("x", tensor("f32", *((b, h, s, d) if four_d else (b, s, h * d))))
    feeds = {"x": rng.standard_normal(x.type.shape).astype(np.float32)}
    if pos:
        cos = g.add_constant("cos", rng.standard_normal((16, d // 2)).astype(np.float32))
        sin = g.add_constant("sin", rng.standard_normal((16, d // 2)).astype(np.float32))
        p = g.add_input("pos", tensor("i64", cb, s))
        feeds["pos"] = rng.integers(0, 16, (cb, s))
        ins = [x, cos, sin, p]
    else:
        cos = g.add_constant("cos", rng.standard_normal((cb, s, d // 2)).astype(np.float32))
        sin = g.add_constant("sin", rng.standard_normal((cb, s, d // 2)).astype(np.float32))
        ins = [x, cos, sin]
    node = g.add_node("RotaryEmbedding", ins, {} if four_d else {"num_heads": h})
    g.outputs = [node.outputs[0]]
    node.meta["tile"] = {"kernel": "elementwise", "shape": {"rows": 3}, "traffic": {"hbm": 1.0}}   # tokens: no cols
    got, ref, tiled = run_both(g, feeds, blocks=row_blocks((b, s), 3))
    assert tiled == 1
    assert_close(got, ref, rtol=1e-6)


# --------------------------------------------------------------------------- bad records
@pytest.mark.parametrize("rec,fragment", [
    ({"kernel": "gemm", "traffic": {"hbm": 1.0}}, "no 'shape'"),
    ({"kernel": "gemm", "shape": {"m": 0, "n": 2, "k": 2}}, "shape.m must be a positive integer"),
    ({"kernel": "gemm", "shape": {"m": 2, "n": 2, "k": 2}, "order": ["m", "m", "k"]}, "order"),
    ({"kernel": "convolution", "shape": {}}, "kernel 'convolution'"),
    ({"kernel": "attention", "shape": {"q": 2, "kv": 2}}, "needs an Attention"),
    ("tiles please", "must be a table"),
])
def test_malformed_schedules_are_clear_errors(rec, fragment):
    from ridgeline.ir.errors import BackendError
    g = Graph("bad")
    a = g.add_input("a", tensor("f32", 3, 4))
    node = g.add_node("MatMul", [a, g.add_constant("b", np.ones((4, 2), np.float32))])
    g.outputs = [node.outputs[0]]
    node.meta["tile"] = rec
    with pytest.raises(BackendError, match=fragment):
        Interpreter(g).run({"a": np.ones((3, 4), np.float32)})


@pytest.mark.parametrize("pack", [0, -1, 2.5, "2", True])
def test_attention_pack_must_be_a_positive_integer(pack):
    from ridgeline.ir.errors import BackendError
    g = Graph("bad")
    q = g.add_input("q", tensor("f32", 1, 2, 5, 4))
    node = g.add_node("Attention", [q, q, q], outputs=1)
    g.outputs = [node.outputs[0]]
    node.meta["tile"] = {"kernel": "attention", "shape": {"q": 2, "kv": 2}, "pack": pack}
    with pytest.raises(BackendError, match="Attention %.*: tile pack must be a positive integer"):
        Interpreter(g).run({"q": np.ones((1, 2, 5, 4), np.float32)})
