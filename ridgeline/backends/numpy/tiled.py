"""Running a node by its tile schedule (``node.meta["tile"]``), block by block.

The reference interpreter calls ``run_tiled(node, args)`` for every node that carries a schedule
(``Interpreter.call_tiled``); the result must equal the untiled kernel's up to rounding, which is
what the tiling tests check on shapes that are not multiples of the tiles. One function per
kernel kind of the record:

- ``gemm``: the blocked loop nest over M, N, K in the recorded order (outer-level groups first,
  when the record has them), accumulating each output tile in the precision the reference
  accumulates in. For a ``Fused`` node the body's prologue (dequantizing a weight tile) is
  evaluated per tile on the windows of its inputs, and the epilogue per output tile.
- ``attention``: FlashAttention — query blocks of packed rows (the query heads of a KV group),
  key/value blocks streamed with an online softmax (running max and sum, rescaled accumulator);
  key blocks that the causal frontier or the sliding window hides from a whole query block are
  skipped, as the schedule's FLOPs say.
- ``rows``: row blocks; with ``passes = 2`` the reduced extent is split into column blocks
  (statistics first, then the output; partial reductions combined; softmax online).
- ``elementwise``: 2-D blocks of the result.

Batch dims of a matrix product run vectorized (a tile covers M×N×K of every batch element).
``run_tiled`` returns None when the schedule does not apply to what the node is given at run time
(the interpreter then runs the plain kernel); a malformed record is a ``BackendError``.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from ...ir import Graph, Node, Value
from ...ir.errors import BackendError
from ..interpreter import NUMPY, call_kernel
from ..kernel_math.attention import heads_and_cache, mask_bias, visible
from ..kernel_math.namespace import namespace
from ..kernel_math.reduction import reduce_by
from .kernels import TABLE

__all__ = ["block_ranges", "gemm_blocks", "run_tiled"]

log = logging.getLogger(__name__)

Window = tuple[tuple[int, int], ...]


# --------------------------------------------------------------------------- records
def _where(node: Node) -> str:
    return f"{node.op} %{node.outputs[0].name if node.outputs else '?'}"


def _shape(node: Node, rec: Mapping[str, Any], names: Sequence[str]) -> dict[str, int]:
    shape = rec.get("shape")
    if not isinstance(shape, Mapping):
        raise BackendError(f"{_where(node)}: tile schedule has no 'shape' table")
    out = {}
    for n in names:
        v = shape.get(n)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise BackendError(f"{_where(node)}: tile shape.{n} must be a positive integer, got {v!r}")
        out[n] = v
    return out


def _order(node: Node, rec: Mapping[str, Any], dims: Sequence[str]) -> list[str]:
    order = rec.get("order") or list(dims)
    order = [d for d in order if d in dims]
    if sorted(order) != sorted(dims):
        raise BackendError(f"{_where(node)}: tile order {rec.get('order')!r} must list each of {', '.join(dims)} once")
    return order


def block_ranges(extent: int, size: int) -> list[tuple[int, int]]:
    """[start, stop) blocks of ``size`` covering ``extent`` (the last one may be short)."""
    return [(s, min(extent, s + size)) for s in range(0, extent, size)]


def gemm_blocks(extents: Mapping[str, int], levels: Sequence[tuple[Mapping[str, int], Sequence[str]]]
                ) -> Iterator[dict[str, tuple[int, int]]]:
    """Innermost tile windows of a nest of tiling levels, in execution order. Each level is
    (tile sizes, loop order); a level's tiles cover the enclosing level's window."""
    def rec(level: int, window: dict[str, tuple[int, int]]):
        if level == len(levels):
            yield window
            return
        sizes, order = levels[level]
        per_dim = {d: [(a + s, min(b, a + s + sizes[d])) for s in range(0, b - a, sizes[d])]
                   for d, (a, b) in window.items()}
        for combo in itertools.product(*(per_dim[d] for d in order)):
            yield from rec(level + 1, {**window, **dict(zip(order, combo))})
    yield from rec(0, {d: (0, e) for d, e in extents.items()})


# --------------------------------------------------------------------------- lazy windows
class _Windows:
    """Evaluates values of a kernel (a fused body, or one node) over index windows.

    Leaves are the kernel's inputs and constants; element-wise ops (and per-tensor / per-axis /
    blocked quantization) are evaluated on the windows of their inputs — so a dequantizing
    prologue runs per tile —, any other op on its whole inputs once (cached)."""

    def __init__(self, leaves: Mapping[int, np.ndarray], call: Callable[[Node, list], Any]):
        self.leaves = dict(leaves)
        self.full: dict[int, np.ndarray] = {}
        self.call = call
        self._shapes: dict[int, tuple[int, ...]] = {}

    def shape(self, v: Value) -> tuple[int, ...]:
        key = id(v)
        if key in self._shapes:
            return self._shapes[key]
        if key in self.leaves:
            s = self.leaves[key].shape
        elif key in self.full:
            s = self.full[key].shape
        elif v.const and v.data is not None:
            s = v.data.shape
        elif all(isinstance(d, int) for d in v.type.shape):
            s = tuple(v.type.shape)
        else:
            s = self.value(v).shape
        self._shapes[key] = tuple(s)
        return tuple(s)

    def value(self, v: Value) -> np.ndarray:
        """The whole value (computed once)."""
        key = id(v)
        if key in self.leaves:
            return self.leaves[key]
        if key in self.full:
            return self.full[key]
        if v.const:
            return NUMPY.constant(v)
        p = v.producer
        args = [self.value(x) if x is not None else None for x in p.inputs]
        outs = self.call(p, args)
        outs = list(outs) if isinstance(outs, (tuple, list)) else [outs]
        for o, a in zip(p.outputs, outs):
            self.full[id(o)] = np.asarray(a).astype(o.type.dtype.np_dtype, copy=False)
        return self.full[key]

    def window(self, v: Value, win: Window) -> np.ndarray:
        """``v[win]`` (``win``: one (start, stop) per dim of v)."""
        key = id(v)
        if key in self.leaves or key in self.full or v.const:
            return self.value(v)[tuple(slice(a, b) for a, b in win)]
        p = v.producer
        if p is None:
            raise BackendError(f"value %{v.name} has no producer and no data")
        if len(p.outputs) == 1 and _windowable(p):
            return self._eval(p, win)
        return self.value(v)[tuple(slice(a, b) for a, b in win)]

    def _eval(self, p: Node, win: Window) -> np.ndarray:
        out_shape = self.shape(p.outputs[0])
        if p.op in ("QuantizeLinear", "DequantizeLinear"):
            return self._quant(p, win, out_shape)
        args = []
        for x in p.inputs:
            if x is None:
                args.append(None)
                continue
            args.append(self.window(x, _align(win, self.shape(x), out_shape)))
        res = call_kernel(p, args, TABLE)
        return np.asarray(res).astype(p.outputs[0].type.dtype.np_dtype, copy=False)

    def _quant(self, p: Node, win: Window, out_shape: tuple[int, ...]) -> np.ndarray:
        """A quantization op on a window: its scale and zero point cut to the same elements
        (per tensor: whole; per axis: the axis' range; blocked: the blocks covering it — widened
        to a block boundary and cut back, so the kernel's block expansion lines up)."""
        rank = len(out_shape)
        scale = p.inputs[1]
        sshape = self.shape(scale)
        axis = p.attr("axis") % rank if rank else 0
        block = p.attr("block_size")
        win = list(win)
        lead = 0
        if block and math.prod(sshape) > 1:
            a, b = win[axis]
            lead = a % block
            win[axis] = (a - lead, b)
        x = self.window(p.inputs[0], tuple(win))
        params = []
        for q in p.inputs[1:]:
            if q is None:
                params.append(None)
                continue
            qs = self.shape(q)
            if math.prod(qs) == 1:
                params.append(self.value(q))
            elif not block:
                a, b = win[axis]
                params.append(self.value(q)[a:b])
            else:
                cut = [(a, b) if k != axis else (a // block, -(-b // block)) for k, (a, b) in enumerate(win)]
                params.append(self.value(q)[tuple(slice(a, b) for a, b in cut)])
        res = np.asarray(call_kernel(p, [x, *params], TABLE))
        if lead:
            res = res[(slice(None),) * axis + (slice(lead, None),)]
        return res.astype(p.outputs[0].type.dtype.np_dtype, copy=False)


def _windowable(p: Node) -> bool:
    cat = p.spec.category
    return (cat == "elementwise" and p.op != "RotaryEmbedding") or p.op in ("QuantizeLinear", "DequantizeLinear")


def _align(win: Window, shape: tuple[int, ...], out_shape: tuple[int, ...]) -> Window:
    """The window of an input broadcast (numpy rules, right-aligned) to a result's ``win``."""
    off = len(out_shape) - len(shape)
    return tuple((0, 1) if d == 1 and out_shape[off + i] != 1 else win[off + i] for i, d in enumerate(shape))


def _full(shape: tuple[int, ...]) -> Window:
    return tuple((0, d) for d in shape)


# --------------------------------------------------------------------------- kernels: setup
def _body_of(node: Node, args: list) -> tuple[_Windows, Graph | None]:
    """The lazy evaluator over a fused body (leaves: its inputs bound to ``args``) or one node."""
    from .interpreter import call_reference  # it calls run_tiled: imported when first run
    if node.op == "Fused" and node.body is not None:
        body = node.body
        leaves = {id(p): a for p, a in zip(body.inputs, args) if a is not None}
    else:
        body = None
        leaves = {id(v): a for v, a in zip(node.inputs, args) if v is not None and a is not None}
    return _Windows(leaves, lambda n, a: call_reference(n, a, check=False)), body


def _principal(node: Node, ops: Sequence[str]) -> Node | None:
    if node.op != "Fused":
        return node if node.op in ops else None
    hits = [n for n in node.body if n.op in ops] if node.body is not None else []
    return hits[0] if len(hits) == 1 else None


def _outputs(node: Node, body: Graph | None) -> list[Value]:
    return list(body.outputs) if body is not None else list(node.outputs)


# --------------------------------------------------------------------------- gemm
def _acc_dtype(dt: np.dtype) -> np.dtype:
    if dt == np.float16 or dt.name == "bfloat16":
        return np.dtype(np.float32)
    return dt


def _run_gemm(node: Node, args: list, rec: Mapping[str, Any]):
    mm = _principal(node, ("MatMul", "Gemm"))
    if mm is None:
        raise BackendError(f"{_where(node)}: a 'gemm' tile schedule needs a MatMul or Gemm")
    ev, body = _body_of(node, args)
    a_v, b_v = mm.inputs[0], mm.inputs[1]
    sa, sb = ev.shape(a_v), ev.shape(b_v)
    if len(sa) < 2 or len(sb) < 2:
        return None
    gemm = mm.op == "Gemm"
    ta, tb = (bool(mm.attr("transA")), bool(mm.attr("transB"))) if gemm else (False, False)
    m, k = (sa[1], sa[0]) if ta else (sa[-2], sa[-1])
    n = sb[0] if tb else sb[-1]
    ba, bb = sa[:-2], sb[:-2]
    batch = np.broadcast_shapes(ba, bb)
    sizes = _shape(node, rec, ("m", "n", "k"))
    order = _order(node, rec, ("m", "n", "k"))
    levels: list[tuple[Mapping[str, int], Sequence[str]]] = []
    groups = rec.get("groups")
    if isinstance(groups, Mapping):
        for g in groups.values():   # outermost level first, as recorded
            if isinstance(g, Mapping):
                levels.append(({"m": sizes["m"] * int(g.get("m", 1)), "n": sizes["n"] * int(g.get("n", 1)),
                                "k": k}, ["m", "n", "k"]))
    levels.append((sizes, order))
    dt_a = np.dtype(a_v.type.dtype.np_dtype)
    acc_dt = _acc_dtype(np.result_type(dt_a, np.dtype(b_v.type.dtype.np_dtype)))
    acc = np.zeros(batch + (m, n), dtype=acc_dt)
    for w in gemm_blocks({"m": m, "n": n, "k": k}, levels):
        (m0, m1), (n0, n1), (k0, k1) = w["m"], w["n"], w["k"]
        if ta:
            a_blk = ev.window(a_v, ((k0, k1), (m0, m1))).T
        else:
            a_blk = ev.window(a_v, _full(ba) + ((m0, m1), (k0, k1)))
        if tb:
            b_blk = ev.window(b_v, ((n0, n1), (k0, k1))).T
        else:
            b_blk = ev.window(b_v, _full(bb) + ((k0, k1), (n0, n1)))
        acc[..., m0:m1, n0:n1] += np.matmul(a_blk.astype(acc_dt, copy=False), b_blk.astype(acc_dt, copy=False))
    if gemm:
        y = mm.attr("alpha") * acc
        if len(mm.inputs) > 2 and mm.inputs[2] is not None:
            y = y + mm.attr("beta") * ev.value(mm.inputs[2])
        result = np.asarray(y).astype(dt_a, copy=False)
    else:
        result = acc.astype(mm.outputs[0].type.dtype.np_dtype, copy=False)
    ev.full[id(mm.outputs[0])] = result
    outs = _outputs(node, body)
    return tuple(_epilogue(ev, o, mm.outputs[0], levels) for o in outs)


def _epilogue(ev: _Windows, out: Value, acc: Value, levels) -> np.ndarray:
    """A body output, evaluated per output tile when it is element-wise over the product."""
    shape = ev.shape(out)
    if id(out) in ev.full or shape != ev.shape(acc) or out.producer is None or not _windowable(out.producer):
        return ev.value(out)
    m, n = shape[-2], shape[-1]
    sizes = levels[-1][0]
    res = np.empty(shape, dtype=out.type.dtype.np_dtype)
    lead = _full(shape[:-2])
    for (m0, m1), (n0, n1) in itertools.product(block_ranges(m, sizes["m"]), block_ranges(n, sizes["n"])):
        res[..., m0:m1, n0:n1] = ev.window(out, lead + ((m0, m1), (n0, n1)))
    return res


# --------------------------------------------------------------------------- attention
def _run_attention(node: Node, args: list, rec: Mapping[str, Any]):
    att = _principal(node, ("Attention",))
    if att is None:
        raise BackendError(f"{_where(node)}: an 'attention' tile schedule needs an Attention")
    if len(att.outputs) > 3:
        return None            # the score matrix is an output: nothing to tile
    if len(att.inputs) > 6 and att.inputs[6] is not None:
        return None
    sizes = _shape(node, rec, ("q", "kv"))
    ev, body = _body_of(node, args)
    ins = [ev.value(v) if v is not None else None for v in att.inputs]
    outs = flash_attention(att, ins, sizes["q"], sizes["kv"])
    for v, a in zip(att.outputs, outs):
        ev.full[id(v)] = a
    return tuple(ev.value(o) for o in _outputs(node, body))


def flash_attention(node: Node, inputs: list, block_q: int, block_kv: int) -> tuple[np.ndarray, ...]:
    """ONNX ``Attention`` (see the reference kernel) by FlashAttention-2 blocks."""
    q, k, v = inputs[:3]
    mask = inputs[3] if len(inputs) > 3 else None
    past_k = inputs[4] if len(inputs) > 4 else None
    past_v = inputs[5] if len(inputs) > 5 else None
    three_d = q.ndim == 3
    q, present_k, present_v = heads_and_cache(node, q, k, v, past_k, past_v)
    dt = q.dtype
    batch, hq, sq, d = q.shape
    hkv, t, dv = present_k.shape[1], present_k.shape[2], present_v.shape[3]
    g = hq // hkv
    past = past_k.shape[2] if past_k is not None else 0
    scale = node.attr("scale")
    scale = 1.0 / np.sqrt(d) if scale is None else scale
    cap = node.attr("softcap")
    causal = bool(node.attr("is_causal"))
    left, right = node.attr("left_window_size"), node.attr("right_window_size")
    # packed rows: for each KV head, row r is query position r // g of query head (head·g + r % g)
    rows = sq * g
    qp = q.reshape(batch, hkv, g, sq, d).transpose(0, 1, 3, 2, 4).reshape(batch, hkv, rows, d).astype(np.float64)
    kk = present_k.astype(np.float64)
    vv = present_v.astype(np.float64)
    pos = np.arange(rows) // g + past
    bias_full = None
    if mask is not None:
        m = np.broadcast_to(mask_bias(mask, t, np.float64), (batch, hq, sq, t))
        bias_full = m.reshape(batch, hkv, g, sq, t).transpose(0, 1, 3, 2, 4).reshape(batch, hkv, rows, t)
    out = np.zeros((batch, hkv, rows, dv))
    for r0, r1 in block_ranges(rows, block_q):
        p_lo, p_hi = pos[r0], pos[r1 - 1]
        hi_key = t - 1
        if causal:
            hi_key = min(hi_key, p_hi)
        if right >= 0:
            hi_key = min(hi_key, p_hi + right)
        lo_key = max(0, p_lo - left) if left >= 0 else 0
        m_run = np.full((batch, hkv, r1 - r0, 1), -np.inf)
        l_run = np.zeros((batch, hkv, r1 - r0, 1))
        acc = np.zeros((batch, hkv, r1 - r0, dv))
        qb = qp[:, :, r0:r1]
        rp = pos[r0:r1, None]
        for j0, j1 in block_ranges(t, block_kv):
            if j0 > hi_key or j1 - 1 < lo_key:
                continue           # no row of this query block may see this key block
            s = np.matmul(qb, np.swapaxes(kk[:, :, j0:j1], -1, -2)) * scale
            if cap:
                s = cap * np.tanh(s / cap)
            allowed = visible(node, rp, np.arange(j0, j1)[None, :], np.ones((r1 - r0, j1 - j0), dtype=bool))
            s = s + np.where(allowed, 0.0, -np.inf)
            if bias_full is not None:
                s = s + bias_full[:, :, r0:r1, j0:j1]
            m_run, p, alpha = _online_max(m_run, s)
            l_run = l_run * alpha + np.sum(p, axis=-1, keepdims=True)
            acc = acc * alpha + np.matmul(p, vv[:, :, j0:j1])
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, :, r0:r1] = np.where(l_run > 0, acc / np.where(l_run > 0, l_run, 1.0), 0.0)
    y = out.reshape(batch, hkv, sq, g, dv).transpose(0, 1, 3, 2, 4).reshape(batch, hq, sq, dv).astype(dt)
    if three_d:
        y = y.transpose(0, 2, 1, 3).reshape(batch, sq, -1)
    return (y, present_k, present_v)[:len(node.outputs)]


def _online_max(m: np.ndarray, block: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One block of an online softmax: the running max ``m`` updated by ``block`` (rows on the
    last axis), ``exp(block - max)``, and the factor rescaling what was summed under the old max
    (0 where nothing was)."""
    m_new = np.maximum(m, np.max(block, axis=-1, keepdims=True))
    safe = np.where(np.isneginf(m_new), 0.0, m_new)
    with np.errstate(invalid="ignore"):
        return m_new, np.exp(block - safe), np.where(np.isneginf(m), 0.0, np.exp(m - safe))


# --------------------------------------------------------------------------- rows
class _Attrs:
    """A node seen with some attributes overridden (to run a kernel on a reshaped block)."""

    def __init__(self, node: Node, **overrides: Any):
        self._node, self._over = node, overrides

    def attr(self, name: str, default: Any = None) -> Any:
        return self._over[name] if name in self._over else self._node.attr(name, default)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._node, name)


def _run_rows(node: Node, args: list, rec: Mapping[str, Any]):
    sizes = _shape(node, rec, ("rows", "cols"))
    x = args[0]
    if x is None or x.ndim == 0:
        return None
    op = node.op
    if op in ("LayerNormalization", "RMSNormalization"):
        return _norm_rows(node, args, sizes, int(rec.get("passes", 1)))
    if op in ("Softmax", "LogSoftmax"):
        return _softmax_rows(node, x, sizes)
    if op.startswith("Reduce"):
        return _reduce_rows(node, args, sizes)
    raise BackendError(f"{_where(node)}: no 'rows' schedule for {op}")


def _norm_rows(node: Node, args: list, sizes, passes: int):
    x = args[0]
    axis = node.attr("axis") % x.ndim
    lead, norm = x.shape[:axis], x.shape[axis:]
    rows, cols = math.prod(lead), math.prod(norm)
    x2 = x.reshape((rows,) + norm)
    proxy = _Attrs(node, axis=1)
    outs: list[list[np.ndarray]] = []
    if passes <= 1 or sizes["cols"] >= cols:
        for r0, r1 in block_ranges(rows, sizes["rows"]):
            res = call_kernel(proxy, [x2[r0:r1], *args[1:]], TABLE)
            outs.append(list(res) if isinstance(res, tuple) else [res])
    else:
        for r0, r1 in block_ranges(rows, sizes["rows"]):
            outs.append(_norm_two_pass(node, x2[r0:r1].reshape(r1 - r0, cols), args[1:], norm, sizes["cols"]))
    parts = [np.concatenate([o[i] for o in outs], axis=0) for i in range(len(outs[0]))]
    return tuple(a.reshape(x.shape if i == 0 else lead + (1,) * len(norm)) for i, a in enumerate(parts))


def _norm_two_pass(node: Node, x: np.ndarray, params: list, norm: tuple, block: int) -> list[np.ndarray]:
    """Layer/RMS normalization of a row block whose rows are split into column blocks: the
    statistics accumulate over the blocks, then each block is normalized (as the reference:
    statistics in the stash type, scale and bias in x's type)."""
    eps = node.attr("epsilon")
    stash = np.float32 if node.attr("stash_type") == 1 else x.dtype
    work = np.float64 if x.dtype == np.float64 else stash
    rows, cols = x.shape
    total = np.zeros((rows, 1), dtype=np.float64)
    sq = np.zeros((rows, 1), dtype=np.float64)
    for c0, c1 in block_ranges(cols, block):
        blk = x[:, c0:c1].astype(work).astype(np.float64)
        total += blk.sum(axis=1, keepdims=True)
        sq += np.square(blk).sum(axis=1, keepdims=True)
    scale = np.broadcast_to(params[0], norm).reshape(cols)
    bias = np.broadcast_to(params[1], norm).reshape(cols) if len(params) > 1 and params[1] is not None else None
    rms = node.op == "RMSNormalization"
    mean = total / cols
    if rms:
        inv = 1.0 / np.sqrt(sq / cols + eps)
    else:
        var = np.maximum(sq / cols - mean * mean, 0.0)
        inv = 1.0 / np.sqrt(var + eps)
    y = np.empty((rows, cols), dtype=(params[0].dtype if rms else x.dtype))
    for c0, c1 in block_ranges(cols, block):
        blk = x[:, c0:c1].astype(np.float64)
        if rms:
            y[:, c0:c1] = (blk * inv).astype(work) * scale[c0:c1]
        else:
            z = ((blk - mean) * inv).astype(work).astype(x.dtype) * scale[c0:c1]
            if bias is not None:
                z = z + bias[c0:c1]
            y[:, c0:c1] = z
    out = [y.reshape((rows,) + norm)]
    if not rms:
        stat_dt = np.dtype(stash) if node.attr("stash_type") == 1 else x.dtype
        out += [mean.astype(stat_dt).reshape((rows,) + (1,) * len(norm)),
                inv.astype(stat_dt).reshape((rows,) + (1,) * len(norm))]
    return out[:len(node.outputs)]


def _softmax_rows(node: Node, x: np.ndarray, sizes):
    axis = node.attr("axis") % x.ndim
    xm = np.moveaxis(x, axis, -1)
    lead, cols = xm.shape[:-1], xm.shape[-1]
    rows = math.prod(lead)
    x2 = xm.reshape(rows, cols)
    y = np.empty_like(x2)
    log = node.op == "LogSoftmax"
    proxy = _Attrs(node, axis=1)
    for r0, r1 in block_ranges(rows, sizes["rows"]):
        blk = x2[r0:r1]
        if sizes["cols"] >= cols:
            y[r0:r1] = call_kernel(proxy, [blk], TABLE)
            continue
        # online: running max and sum over column blocks, then the output block by block
        m = np.full((r1 - r0, 1), -np.inf)
        s = np.zeros((r1 - r0, 1))
        for c0, c1 in block_ranges(cols, sizes["cols"]):
            m, e, alpha = _online_max(m, blk[:, c0:c1].astype(np.float64))
            s = s * alpha + e.sum(axis=1, keepdims=True)
        safe = np.where(np.isneginf(m), 0.0, m)
        for c0, c1 in block_ranges(cols, sizes["cols"]):
            b = blk[:, c0:c1].astype(np.float64)
            with np.errstate(divide="ignore", invalid="ignore"):
                if log:
                    y[r0:r1, c0:c1] = b - safe - np.log(s)
                else:
                    y[r0:r1, c0:c1] = np.exp(b - safe) / np.where(s == 0, 1.0, s)
    return np.moveaxis(y.reshape(xm.shape), -1, axis)


_COMBINE = {"ReduceSum": np.sum, "ReduceMean": np.sum, "ReduceMax": np.max, "ReduceMin": np.min,
            "ReduceProd": np.prod, "ReduceL1": np.sum, "ReduceL2": np.sum, "ReduceSumSquare": np.sum,
            "ReduceLogSum": np.sum, "ReduceLogSumExp": None}
# the partial result each column block contributes, before combining
_PARTIAL = {"ReduceMean": "ReduceSum", "ReduceL2": "ReduceSumSquare", "ReduceLogSum": "ReduceSum"}


def _reduce_rows(node: Node, args: list, sizes):
    x = args[0]
    axes_arr = args[1] if len(args) > 1 else None
    if axes_arr is None or axes_arr.size == 0:
        if node.attr("noop_with_empty_axes"):
            return None
        axes = tuple(range(x.ndim))
    else:
        axes = tuple(sorted({int(a) % x.ndim for a in axes_arr.reshape(-1)}))
    kept = tuple(i for i in range(x.ndim) if i not in axes)
    xt = np.transpose(x, kept + axes)
    rows = math.prod(x.shape[i] for i in kept)
    cols = math.prod(x.shape[i] for i in axes)
    if rows * cols == 0:
        return None
    x2 = xt.reshape(rows, cols)
    keep = bool(node.attr("keepdims"))
    out_shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape)) if keep else \
        tuple(x.shape[i] for i in kept)
    one = np.array([1], dtype=np.int64)
    res = np.empty((rows,), dtype=x.dtype)
    op = node.op
    for r0, r1 in block_ranges(rows, sizes["rows"]):
        blk = x2[r0:r1]
        if sizes["cols"] >= cols:
            res[r0:r1] = np.asarray(call_kernel(_Attrs(node, keepdims=0, noop_with_empty_axes=0), [blk, one], TABLE))
            continue
        with np.errstate(all="ignore"):
            if op == "ReduceLogSumExp":
                m = blk.max(axis=1, keepdims=True).astype(np.float64)
                safe = np.where(np.isinf(m), 0.0, m)
                s = sum(np.exp(blk[:, c0:c1].astype(np.float64) - safe).sum(axis=1, keepdims=True)
                        for c0, c1 in block_ranges(cols, sizes["cols"]))
                val = (np.log(s) + safe)[:, 0]
            else:
                part = _PARTIAL.get(op, op)
                partials = [_partial(part, blk[:, c0:c1]) for c0, c1 in block_ranges(cols, sizes["cols"])]
                val = _COMBINE[op](np.concatenate(partials, axis=1), axis=1)
                if op == "ReduceMean":
                    val = val / cols
                elif op == "ReduceL2":
                    val = np.sqrt(val)
                elif op == "ReduceLogSum":
                    val = np.log(val)
        res[r0:r1] = np.asarray(val).astype(x.dtype, copy=False)
    return res.reshape(out_shape)


def _partial(op: str, block: np.ndarray) -> np.ndarray:
    """One column block's partial reduction (kept as a column), by the reference's formula."""
    return np.asarray(reduce_by(namespace(block), op, block, (1,), True)).astype(block.dtype, copy=False)


# --------------------------------------------------------------------------- element-wise
def _run_elementwise(node: Node, args: list, rec: Mapping[str, Any]):
    sizes = _shape(node, rec, ("rows", "cols"))
    if node.op == "RotaryEmbedding":
        return _rotary_rows(node, args, sizes)
    if node.op == "Fused":
        ev, body = _body_of(node, args)
        outs = _outputs(node, body)
        if len(outs) != 1:
            return None
        out_v = outs[0]
    else:
        ev, out_v = _body_of(node, args)[0], node.outputs[0]
    shape = ev.shape(out_v)
    if not shape:
        return None
    rows, cols = math.prod(shape[:-1]), shape[-1]
    res = np.empty(shape, dtype=out_v.type.dtype.np_dtype)
    flat = res.reshape(rows, cols)
    lead_shape = shape[:-1]
    for r0, r1 in block_ranges(rows, sizes["rows"]):
        # a block of flattened rows is a union of rectangular windows: split it along the
        # leading dims so every piece is a window of the result
        for win, f0, f1 in _row_windows(lead_shape, r0, r1):
            for c0, c1 in block_ranges(cols, sizes["cols"]):
                blk = ev.window(out_v, win + ((c0, c1),))
                flat[f0:f1, c0:c1] = blk.reshape(f1 - f0, c1 - c0)
    return res


def _rotary_rows(node: Node, args: list, sizes):
    """RoPE by blocks of tokens (a token's heads rotate together; its position picks cos/sin):
    the tokens of every batch row are laid end to end as one sequence of batch 1."""
    x, cos, sin = args[:3]
    pos = args[3] if len(args) > 3 else None
    four_d = x.ndim == 4
    if four_d:
        b, h, s, d = x.shape
        xf = x.transpose(0, 2, 1, 3).reshape(1, b * s, h, d).transpose(0, 2, 1, 3)   # (1, H, B·S, D)
    else:
        b, s = x.shape[:2]
        xf = x.reshape((1, b * s) + x.shape[2:])
    rows = b * s
    if pos is not None:
        pf, cf, sf = pos.reshape(1, rows), cos, sin
    else:
        pf, cf, sf = None, cos.reshape((1, rows) + cos.shape[2:]), sin.reshape((1, rows) + sin.shape[2:])
    out = np.empty_like(xf)
    seq = 2 if four_d else 1
    for r0, r1 in block_ranges(rows, sizes["rows"]):
        cut = (slice(None),) * seq + (slice(r0, r1),)
        if pf is not None:
            out[cut] = call_kernel(node, [xf[cut], cf, sf, pf[:, r0:r1]], TABLE)
        else:
            out[cut] = call_kernel(node, [xf[cut], cf[:, r0:r1], sf[:, r0:r1]], TABLE)
    if four_d:
        return out.transpose(0, 2, 1, 3).reshape(b, s, h, d).transpose(0, 2, 1, 3)
    return out.reshape(x.shape)


def _row_windows(lead: tuple[int, ...], r0: int, r1: int) -> Iterator[tuple[Window, int, int]]:
    """Rectangular windows over ``lead`` covering flattened rows [r0, r1), in order, with the
    flat range each covers."""
    if not lead:
        yield (), 0, 1
        return
    inner = lead[-1]
    r = r0
    while r < r1:
        row_of, col = divmod(r, inner)
        stop = min(r1, (row_of + 1) * inner)
        idx = np.unravel_index(row_of, lead[:-1]) if len(lead) > 1 else ()
        win = tuple((int(i), int(i) + 1) for i in idx) + ((col, col + stop - r),)
        yield win, r, stop
        r = stop


# --------------------------------------------------------------------------- entry point
_RUNNERS = {"gemm": _run_gemm, "attention": _run_attention, "rows": _run_rows, "elementwise": _run_elementwise}


def run_tiled(node: Node, args: list) -> Any:
    """Run ``node`` by ``node.meta["tile"]``; None when the schedule does not apply at run time."""
    rec = node.meta.get("tile")
    if hasattr(rec, "to_meta"):
        rec = rec.to_meta()
    if not isinstance(rec, Mapping):
        raise BackendError(f"{_where(node)}: meta tile must be a table, got {type(rec).__name__}")
    kind = rec.get("kernel")
    runner = _RUNNERS.get(kind)
    if runner is None:
        raise BackendError(f"{_where(node)}: tile schedule kernel {kind!r} is not one of {', '.join(_RUNNERS)}")
    out = runner(node, list(args), rec)
    if out is None:
        log.debug("%s: tile schedule does not apply at run time; running the plain kernel", _where(node))
    return out
