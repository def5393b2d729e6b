"""Hypothesis strategies of one-kernel graphs whose shapes reach every path of a backend kernel.

Each strategy draws a small graph around one op family — attention (GQA, MQA, causal, windows,
masks of every broadcast rank, a KV cache, ``nonpad_kv_seqlen``), rotary (3-D and 4-D, partial
and interleaved, caches or position ids broadcast over batch or sequence), matrix products (tile
edges and remainders of the JIT GEMM, broadcast batch dims, 1-D operands, Gemm's C of every
broadcast shape), elementwise broadcasting (size-1 axes anywhere, rank-deficient operands),
norms, reductions, movement and gathers (negative indices, scalar indices, batch dims). Shapes
are drawn, not listed: size-1 axes, sizes around the SIMD widths and the GEMM's micro-tile, and
both sides of every broadcast. ``KERNEL_SPACES`` maps a kernel family to its strategy; the tests
run them through ``check_backend`` and ``tools/soak_backends.py`` runs them long.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from ..ir import Builder, Graph, tensor

__all__ = [
    "KERNEL_SPACES",
    "attention_graphs",
    "elementwise_graphs",
    "gather_graphs",
    "gemm_graphs",
    "gemv_graphs",
    "matmul_graphs",
    "movement_graphs",
    "norm_graphs",
    "reduce_graphs",
    "rotary_graphs",
]

#: sizes around vector widths (4, 8, 16 lanes) and the GEMM micro-tile (6/8 rows, 2 vectors)
EDGE = st.sampled_from([1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 23, 31, 32, 33, 47, 65])
#: K past one 256-deep K slice of the JIT GEMM, N past one block of columns (and worth splitting
#: across cores)
EDGE_K = st.one_of(EDGE, st.sampled_from([255, 257, 513]))
EDGE_N = st.one_of(EDGE, st.sampled_from([257, 300]))


def _graph(name: str) -> tuple[Graph, Builder]:
    g = Graph(name)
    return g, Builder(g)


def _finish(g: Graph, outs, ranges=None, kinds=None) -> Graph:
    g.outputs = list(outs) if isinstance(outs, (tuple, list)) else [outs]
    g.verify()
    g.meta["testing"] = {"ranges": dict(ranges or {}), "kinds": dict(kinds or {})}
    return g


@st.composite
def _broadcast_pair(draw, max_rank: int = 4) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Two shapes that broadcast: a full shape, and one with axes set to 1 or dropped in front."""
    rank = draw(st.integers(0, max_rank))
    full = tuple(draw(st.lists(st.sampled_from([1, 2, 3, 4, 7, 17]), min_size=rank, max_size=rank)))
    keep = draw(st.integers(0, rank))
    other = tuple(1 if draw(st.booleans()) else d for d in full[rank - keep:])
    return (full, other) if draw(st.booleans()) else (other, full)


@st.composite
def elementwise_graphs(draw) -> Graph:
    """Binary and ternary elementwise ops whose operands broadcast every way (and a scalar)."""
    a, bshape = draw(_broadcast_pair())
    g, b = _graph("ew")
    x = g.add_input("x", tensor("f32", *a))
    y = g.add_input("y", tensor("f32", *bshape))
    op = draw(st.sampled_from(["Add", "Sub", "Mul", "Max", "Where", "Gelu-chain"]))
    if op == "Where":
        out_shape = np.broadcast_shapes(a, bshape)
        c_shape = tuple(1 if draw(st.booleans()) else d for d in out_shape)[draw(st.integers(0, len(out_shape))):]
        c = g.add_input("c", tensor("bool", *c_shape))
        out = b.Where(c, x, y)
    elif op == "Gelu-chain":
        out = b.Gelu(b.Add(b.Mul(x, y), x), approximate="tanh")
    else:
        out = b.op(op, x, y)
    return _finish(g, out)


@st.composite
def rotary_graphs(draw) -> Graph:
    """RotaryEmbedding: 3-D or 4-D X, partial and interleaved, caches or position ids whose batch
    and sequence axes are broadcast (size 1) or full."""
    bsz, seq, heads = draw(st.integers(1, 3)), draw(st.integers(1, 9)), draw(st.integers(1, 4))
    d = draw(st.sampled_from([2, 4, 6, 8, 16, 24, 40]))
    rot = draw(st.sampled_from(sorted({d} | {r for r in (2, d // 2 - d // 2 % 2, d - 2) if 2 <= r < d})))
    four = draw(st.booleans())
    use_pos = draw(st.booleans())
    g, b = _graph("rotary")
    x = g.add_input("x", tensor("f32", bsz, heads, seq, d) if four else tensor("f32", bsz, seq, heads * d))
    attrs = {"interleaved": int(draw(st.booleans()))}
    if rot != d:
        attrs["rotary_embedding_dim"] = rot
    if not four:
        attrs["num_heads"] = heads
    ranges = {}
    if use_pos:
        rows = draw(st.integers(seq, seq + 12))
        cos = g.add_input("cos", tensor("f32", rows, rot // 2))
        sin = g.add_input("sin", tensor("f32", rows, rot // 2))
        pshape = draw(st.sampled_from([(bsz, seq), (1, seq), (bsz, 1), (1, 1)]))
        pos = g.add_input("pos_ids", tensor("i64", *pshape))
        ranges["pos_ids"] = (0, rows - 1)
        out = b.RotaryEmbedding(x, cos, sin, pos, **attrs)
    else:
        cshape = (draw(st.sampled_from([1, bsz])), draw(st.sampled_from([1, seq])), rot // 2)
        cos = g.add_input("cos", tensor("f32", *cshape))
        sin = g.add_input("sin", tensor("f32", *cshape))
        out = b.RotaryEmbedding(x, cos, sin, **attrs)
    return _finish(g, out, ranges)


@st.composite
def attention_graphs(draw) -> Graph:
    """Attention: 3-D or 4-D, GQA ratios 1…4 and MQA, causal or not, windows, masks (bool or
    additive) of every broadcast rank and a kv length shorter than the keys, a KV cache."""
    bsz, sq = draw(st.integers(1, 3)), draw(st.sampled_from([1, 2, 5, 9, 17]))
    hkv = draw(st.integers(1, 3))
    hq = hkv * draw(st.sampled_from([1, 2, 3, 4]))
    d = draw(st.sampled_from([1, 4, 8, 12, 16, 24]))
    dv = draw(st.sampled_from([d, 8]))
    skv = draw(st.sampled_from([sq, 1, 3, 70]))
    past = draw(st.sampled_from([0, 0, 1, 6]))
    three = draw(st.booleans())
    g, b = _graph("attn")
    if three:
        q = g.add_input("q", tensor("f32", bsz, sq, hq * d))
        k = g.add_input("k", tensor("f32", bsz, skv, hkv * d))
        v = g.add_input("v", tensor("f32", bsz, skv, hkv * dv))
    else:
        q = g.add_input("q", tensor("f32", bsz, hq, sq, d))
        k = g.add_input("k", tensor("f32", bsz, hkv, skv, d))
        v = g.add_input("v", tensor("f32", bsz, hkv, skv, dv))
    t = past + skv
    mask = pk = pv = None
    kinds = {}
    if draw(st.booleans()):
        lead = [draw(st.sampled_from([1, bsz])), draw(st.sampled_from([1, hq])), draw(st.sampled_from([1, sq]))]
        rank = draw(st.integers(2, 4))
        mshape = tuple(lead[3 - (rank - 1):]) + (draw(st.sampled_from([t, max(1, t - 1)])),)
        if draw(st.booleans()):
            mask = g.add_input("attn_mask", tensor("bool", *mshape))
            kinds["attn_mask"] = "rowmask"
        else:
            mask = g.add_input("bias", tensor("f32", *mshape))
    if past:
        pk = g.add_input("past_k", tensor("f32", bsz, hkv, past, d))
        pv = g.add_input("past_v", tensor("f32", bsz, hkv, past, dv))
    attrs = {"is_causal": int(draw(st.booleans()))}
    if three:
        attrs.update(q_num_heads=hq, kv_num_heads=hkv)
    if draw(st.integers(0, 3)) == 0:
        attrs["left_window_size"] = draw(st.integers(0, 4))
    if draw(st.integers(0, 4)) == 0:
        attrs["softcap"] = 3.0
    n_out = 3 if past else draw(st.sampled_from([1, 3]))
    ranges = {}
    nonpad = None
    if not past and skv >= sq and draw(st.integers(0, 3)) == 0:
        # an external cache: each batch entry's valid keys, queries the last sq of them
        nonpad = g.add_input("nonpad_kv_seqlen", tensor("i64", bsz))
        ranges["nonpad_kv_seqlen"] = (sq, skv)
    outs = b.Attention(q, k, v, mask, pk, pv, nonpad, _outputs=n_out, **attrs)
    return _finish(g, outs, ranges, kinds)


@st.composite
def matmul_graphs(draw) -> Graph:
    """MatMul at sizes around the micro-tile, ranks 1…4, broadcast batch dims, constant or
    computed weights, and a bias/residual epilogue for the fusion to take."""
    m, k, n = draw(EDGE), draw(EDGE_K), draw(EDGE_N)
    batch_a, batch_b = draw(_broadcast_pair(2))
    ra, rb = draw(st.sampled_from(["1d", "nd"])), draw(st.sampled_from(["1d", "2d", "nd", "const"]))
    g, b = _graph("matmul")
    a_shape = (k,) if ra == "1d" else batch_a + (m, k)
    a = g.add_input("a", tensor("f32", *a_shape))
    if rb == "const":
        w = g.add_constant("w", np.random.default_rng(m * 1000 + n).standard_normal((k, n)).astype(np.float32))
    else:
        w = g.add_input("w", tensor("f32", *((k,) if rb == "1d" else (k, n) if rb == "2d" else batch_b + (k, n))))
    y = b.MatMul(a, w)
    epi = draw(st.sampled_from(["none", "bias", "residual", "gelu"]))
    yshape = tuple(y.type.shape)
    if epi != "none" and yshape:
        if epi == "bias":
            y = b.Add(y, g.add_input("bias", tensor("f32", yshape[-1])))
        elif epi == "residual":
            y = b.Add(y, g.add_input("res", tensor("f32", *yshape)))
        else:
            y = b.Gelu(y)
    return _finish(g, y)


@st.composite
def gemv_graphs(draw) -> Graph:
    """Decode-step products: 1…8 rows (as a batch of rows or rows of a [b, s, K] activation)
    against constant weights — the skinny GEMM's packed panels — with K and N off the vector
    width and the panel width (up to 16 vectors), and with or without a bias/residual/GELU tail.
    The weight is ``[K, N]`` (Conv1D, x·W) or ``[N, K]`` read transposed: a tied embedding's
    transposed view (GPT-2's LM head) or ``Gemm(transB=1)``."""
    rows = draw(st.integers(1, 8))
    k = draw(st.one_of(EDGE, st.sampled_from([64, 255, 257, 513])))
    n = draw(st.one_of(EDGE, st.sampled_from([63, 64, 129, 255, 257, 300, 513, 1000])))
    layout = draw(st.sampled_from(["kn", "nk-view", "transB"]))
    lead = (rows,) if layout == "transB" else \
        draw(st.sampled_from([(rows,), (1, rows), (rows, 1)] + ([(2, rows // 2)] if rows % 2 == 0 else [])))
    g, b = _graph("gemv")
    a = g.add_input("a", tensor("f32", *lead, k))
    nk = np.random.default_rng(k * 7919 + n).standard_normal((n, k)).astype(np.float32)
    nk.setflags(write=False)   # a read-only array: the constant keeps it (and nk.T a view of it)
    if layout == "transB":
        y = b.Gemm(a, g.add_constant("w", nk), transB=1)
    else:
        y = b.MatMul(a, g.add_constant("w", nk.T if layout == "nk-view" else np.ascontiguousarray(nk.T)))
    epi = draw(st.sampled_from(["none", "bias", "residual", "gelu"]))
    if epi == "bias":
        y = b.Add(y, g.add_constant("bias", np.random.default_rng(n).standard_normal(n).astype(np.float32)))
    elif epi == "residual":
        y = b.Add(y, g.add_input("res", tensor("f32", *tuple(y.type.shape))))
    elif epi == "gelu":
        y = b.Gelu(y)
    return _finish(g, y)


@st.composite
def gemm_graphs(draw) -> Graph:
    """Gemm with transposes (a constant or computed B), alpha/beta and C of every broadcast shape."""
    m, k, n = draw(EDGE), draw(EDGE_K), draw(EDGE_N)
    ta, tb = draw(st.booleans()), draw(st.booleans())
    g, b = _graph("gemm")
    a = g.add_input("a", tensor("f32", *((k, m) if ta else (m, k))))
    wshape = (n, k) if tb else (k, n)
    if draw(st.booleans()):
        w = g.add_constant("w", np.random.default_rng(k * 100 + n).standard_normal(wshape).astype(np.float32))
    else:
        w = g.add_input("w", tensor("f32", *wshape))
    cshape = draw(st.sampled_from([None, (), (n,), (1, n), (m, 1), (m, n), (1, 1)]))
    c = g.add_input("c", tensor("f32", *cshape)) if cshape is not None else None
    alpha, beta = draw(st.sampled_from([1.0, 0.5])), draw(st.sampled_from([1.0, 2.0]))
    return _finish(g, b.Gemm(a, w, c, transA=int(ta), transB=int(tb), alpha=alpha, beta=beta))


@st.composite
def norm_graphs(draw) -> Graph:
    """Softmax/LogSoftmax on any axis, LayerNorm/RMSNorm on any axis with scale/bias that are
    inputs or constants, full or broadcast."""
    rank = draw(st.integers(1, 4))
    shape = tuple(draw(st.lists(st.sampled_from([1, 2, 3, 5, 17, 33]), min_size=rank, max_size=rank)))
    axis = draw(st.integers(-rank, rank - 1))
    g, b = _graph("norm")
    x = g.add_input("x", tensor("f32", *shape))
    op = draw(st.sampled_from(["Softmax", "LogSoftmax", "LayerNormalization", "RMSNormalization"]))
    if op in ("Softmax", "LogSoftmax"):
        return _finish(g, b.op(op, x, axis=axis))
    trailing = shape[axis % rank:]
    sshape = tuple(1 if draw(st.booleans()) else d for d in trailing)[draw(st.integers(0, len(trailing))):]
    if draw(st.booleans()):
        scale = g.add_input("scale", tensor("f32", *sshape))
    else:
        scale = g.add_constant("scale", np.linspace(0.5, 1.5, int(np.prod(sshape))).astype(np.float32).reshape(sshape))
    if op == "RMSNormalization":
        return _finish(g, b.RMSNormalization(x, scale, axis=axis))
    bias = g.add_input("bias", tensor("f32", *sshape)) if draw(st.booleans()) else None
    n_out = draw(st.sampled_from([1, 3]))
    return _finish(g, b.LayerNormalization(x, scale, bias, axis=axis, _outputs=n_out))


@st.composite
def reduce_graphs(draw) -> Graph:
    """Reduce* over any set of axes (a contiguous run or not), keepdims on or off."""
    rank = draw(st.integers(1, 4))
    shape = tuple(draw(st.lists(st.sampled_from([1, 2, 3, 5, 17]), min_size=rank, max_size=rank)))
    picked = sorted(set(draw(st.lists(st.integers(0, rank - 1), min_size=0, max_size=rank))))
    axes = [a - rank if draw(st.booleans()) else a for a in picked]
    g, b = _graph("reduce")
    x = g.add_input("x", tensor("f32", *shape))
    op = draw(st.sampled_from(["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceL2", "ReduceSumSquare",
                               "ReduceLogSumExp"]))
    ax = g.add_constant("axes", np.array(axes, np.int64)) if axes else None
    return _finish(g, b.op(op, x, ax, keepdims=int(draw(st.booleans()))))


@st.composite
def movement_graphs(draw) -> Graph:
    """Transpose, Slice (negative and >1 steps, clamped bounds), Expand, Concat, Split."""
    rank = draw(st.integers(1, 4))
    shape = tuple(draw(st.lists(st.sampled_from([1, 2, 3, 5, 9]), min_size=rank, max_size=rank)))
    dt = draw(st.sampled_from(["f32", "i64", "u8"]))
    g, b = _graph("move")
    x = g.add_input("x", tensor(dt, *shape))
    op = draw(st.sampled_from(["Transpose", "Slice", "Expand", "Concat", "Split"]))
    if op == "Transpose":
        return _finish(g, b.Transpose(x, perm=draw(st.permutations(range(rank)))))
    if op == "Slice":
        axes = draw(st.lists(st.integers(0, rank - 1), min_size=1, max_size=rank, unique=True))
        starts = [draw(st.integers(-shape[a] - 2, shape[a] + 1)) for a in axes]
        ends = [draw(st.integers(-shape[a] - 2, shape[a] + 1)) for a in axes]
        steps = [draw(st.sampled_from([1, 2, 3, -1, -2])) for _ in axes]
        c = {n: g.add_constant(n, np.array(v, np.int64)) for n, v in
             (("starts", starts), ("ends", ends), ("axes", axes), ("steps", steps))}
        return _finish(g, b.Slice(x, c["starts"], c["ends"], c["axes"], c["steps"]))
    if op == "Expand":
        target = tuple(draw(st.sampled_from([d, 4])) if d == 1 else d for d in shape)
        target = (draw(st.integers(1, 3)),) * draw(st.integers(0, 1)) + target
        return _finish(g, b.Expand(x, g.add_constant("shape", np.array(target, np.int64))))
    axis = draw(st.integers(-rank, rank - 1))
    if op == "Concat":
        other = list(shape)
        other[axis] = draw(st.integers(1, 4))
        y = g.add_input("y", tensor(dt, *other))
        return _finish(g, b.Concat(x, y, x, axis=axis))
    n = shape[axis]
    cut = draw(st.integers(0, n))
    split = g.add_constant("split", np.array([cut, n - cut], np.int64))
    return _finish(g, b.Split(x, split, axis=axis, _outputs=2))


@st.composite
def gather_graphs(draw) -> Graph:
    """Gather on any axis with index tensors of rank 0…2 (negative indices too), and GatherND
    with batch dims."""
    rank = draw(st.integers(1, 4))
    shape = tuple(draw(st.lists(st.sampled_from([1, 2, 3, 5, 9]), min_size=rank, max_size=rank)))
    g, b = _graph("gather")
    x = g.add_input("x", tensor(draw(st.sampled_from(["f32", "i64"])), *shape))
    if draw(st.booleans()):
        axis = draw(st.integers(-rank, rank - 1))
        ishape = tuple(draw(st.lists(st.integers(1, 4), min_size=0, max_size=2)))
        idt = draw(st.sampled_from(["i64", "i32"]))
        idx = g.add_input("idx", tensor(idt, *ishape))
        dim = shape[axis % rank]
        return _finish(g, b.Gather(x, idx, axis=axis), {"idx": (-dim, dim - 1)})
    bd = draw(st.integers(0, rank - 1))
    kk = draw(st.integers(1, rank - bd))
    per = tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=2)))
    idx = g.add_input("idx", tensor("i64", *shape[:bd], *per, kk))
    lo = min(shape[bd:bd + kk])
    return _finish(g, b.GatherND(x, idx, batch_dims=bd), {"idx": (-lo, lo - 1)})


#: kernel family -> strategy of graphs that reach its paths
KERNEL_SPACES = {
    "attention": attention_graphs(), "rotary": rotary_graphs(), "matmul": matmul_graphs(),
    "gemm": gemm_graphs(), "gemv": gemv_graphs(), "elementwise": elementwise_graphs(), "norm": norm_graphs(),
    "reduce": reduce_graphs(), "movement": movement_graphs(), "gather": gather_graphs(),
}
