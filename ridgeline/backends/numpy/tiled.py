"""Running a node by its tile schedule (``node.meta["tile"]``), block by block.

The reference interpreter calls ``run_tiled(node, args)`` for every node that carries a schedule
(``Interpreter.call_tiled``); the result must equal the untiled kernel's up to rounding, which is
what the tiling tests check on shapes that are not multiples of the tiles. One function per
kernel kind of the record:

- ``gemm``: the blocked loop nest over M, N, K in the recorded order (outer-level groups first,
  when the record has them), accumulating each output tile in the precision the reference
  accumulates in. A ``Fused`` node's body runs by the reference interpreter around its product.
- ``attention``: blocks of query positions, each the reference kernel with the keys before the
  block as its KV cache.
- ``rows``: blocks of rows (what a normalization, softmax or reduction keeps independent), each
  the reference kernel.
- ``elementwise``: 2-D blocks of the result, a fused body evaluated on the windows of its
  inputs (RoPE: blocks of tokens).

What runs inside a block is the reference kernel: this checks the record's row, query-block and
K decomposition. The rest of the record (attention's key/value blocks, ``passes = 2`` column
splits, the causal block skip, a tiled prologue and epilogue) is priced by the cost models and
executed by nothing; no backend reads it (llvm attention streams its own fixed key blocks).

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
from ..interpreter import NUMPY, call_kernel, evaluate_node
from ..interpreter import Interpreter as _Generic
from ..kernel_math.attention import heads_and_cache
from .kernels import TABLE

__all__ = ["block_ranges", "gemm_blocks", "run_tiled"]

log = logging.getLogger(__name__)

Window = tuple[tuple[int, int], ...]


# --------------------------------------------------------------------------- records
def _where(node: Node) -> str:
    return f"{node.op} %{node.outputs[0].name if node.outputs else '?'}"


def _shape(node: Node, rec: Mapping[str, Any], names: Sequence[str]) -> dict[str, int]:
    """The record's ``shape`` fields ``names``, each checked; fields nothing here runs are not required."""
    shape = rec.get("shape")
    if not isinstance(shape, Mapping):
        raise BackendError(f"{_where(node)}: tile schedule has no 'shape' table")
    return {n: _positive(node, f"shape.{n}", shape.get(n)) for n in names}


def _positive(node: Node, field: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise BackendError(f"{_where(node)}: tile {field} must be a positive integer, got {v!r}")
    return v


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
    """Evaluates values of an element-wise kernel (a fused body, or one node) over index windows.

    Leaves are the kernel's inputs and constants; element-wise ops are evaluated on the windows of
    their inputs, any other op (a view, a quantization) on its whole inputs once (cached)."""

    def __init__(self, leaves: Mapping[int, np.ndarray]):
        self.leaves = dict(leaves)
        self.full: dict[int, np.ndarray] = {}

    def shape(self, v: Value) -> tuple[int, ...]:
        if id(v) in self.leaves:
            return self.leaves[id(v)].shape
        if all(isinstance(d, int) for d in v.type.shape):
            return tuple(v.type.shape)
        return self.value(v).shape

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
        if p is None:
            raise BackendError(f"value %{v.name} has no producer and no data")
        args = [self.value(x) if x is not None else None for x in p.inputs]
        for o, a in zip(p.outputs, evaluate_node(p, args, TABLE, check=False)):
            self.full[id(o)] = a
        return self.full[key]

    def window(self, v: Value, win: Window) -> np.ndarray:
        """``v[win]`` (``win``: one (start, stop) per dim of v)."""
        p = v.producer
        if id(v) in self.leaves or id(v) in self.full or p is None or len(p.outputs) > 1 or not _windowable(p):
            return self.value(v)[tuple(slice(a, b) for a, b in win)]
        args = [self.window(x, _align(win, self.shape(x), self.shape(v))) if x is not None else None
                for x in p.inputs]
        return evaluate_node(p, args, TABLE, check=False)[0]


def _windowable(p: Node) -> bool:
    return p.spec.category == "elementwise" and p.op != "RotaryEmbedding"


def _align(win: Window, shape: tuple[int, ...], out_shape: tuple[int, ...]) -> Window:
    """The window of an input broadcast (numpy rules, right-aligned) to a result's ``win``."""
    off = len(out_shape) - len(shape)
    return tuple((0, 1) if d == 1 and out_shape[off + i] != 1 else win[off + i] for i, d in enumerate(shape))


# --------------------------------------------------------------------------- a principal node
def _principal(node: Node, ops: Sequence[str]) -> Node | None:
    if node.op != "Fused":
        return node if node.op in ops else None
    hits = [n for n in node.body if n.op in ops] if node.body is not None else []
    return hits[0] if len(hits) == 1 else None


class _AroundPrincipal(_Generic):
    """A fused body run by the reference interpreter, but for its principal node, which ``fn``
    runs by the schedule."""

    def __init__(self, body: Graph, principal: Node, fn: Callable[[Node, list], Any]):
        super().__init__(body, TABLE, NUMPY)
        self.principal, self.fn = principal, fn

    def call_kernel(self, node: Node, args: list) -> Any:
        return self.fn(node, args) if node is self.principal else super().call_kernel(node, args)


def _around(node: Node, principal: Node, args: list, fn: Callable[[Node, list], Any]) -> Any:
    """``fn`` on the principal node's arguments; a ``Fused`` node's body around it by the reference."""
    if node.op != "Fused":
        return fn(principal, args)
    return tuple(_AroundPrincipal(node.body, principal, fn).run_values(args))


# --------------------------------------------------------------------------- gemm
def _acc_dtype(dt: np.dtype) -> np.dtype:
    if dt == np.float16 or dt.name == "bfloat16":
        return np.dtype(np.float32)
    return dt


def _run_gemm(node: Node, args: list, rec: Mapping[str, Any]):
    mm = _principal(node, ("MatMul", "Gemm"))
    if mm is None:
        raise BackendError(f"{_where(node)}: a 'gemm' tile schedule needs a MatMul or Gemm")
    if mm.inputs[0].type.rank < 2 or mm.inputs[1].type.rank < 2:
        return None
    sizes = _shape(node, rec, ("m", "n", "k"))
    levels: list[tuple[Mapping[str, int | None], Sequence[str]]] = []
    groups = rec.get("groups")
    if isinstance(groups, Mapping):
        for g in groups.values():   # outermost level first, as recorded; K whole at those levels
            if isinstance(g, Mapping):
                levels.append(({"m": sizes["m"] * int(g.get("m", 1)), "n": sizes["n"] * int(g.get("n", 1)),
                                "k": None}, ["m", "n", "k"]))
    levels.append((sizes, _order(node, rec, ("m", "n", "k"))))
    return _around(node, mm, args, lambda n, a: _blocked_product(n, a, levels))


def _blocked_product(mm: Node, args: list, levels) -> np.ndarray:
    """MatMul or Gemm by the loop nest ``levels``, accumulating as the reference does."""
    a, b = args[0], args[1]
    gemm = mm.op == "Gemm"
    ta, tb = (bool(mm.attr("transA")), bool(mm.attr("transB"))) if gemm else (False, False)
    m, k = (a.shape[1], a.shape[0]) if ta else a.shape[-2:]
    n = b.shape[0] if tb else b.shape[-1]
    levels = [({d: k if size is None else size for d, size in sizes.items()}, order) for sizes, order in levels]
    acc_dt = _acc_dtype(np.result_type(a.dtype, b.dtype))
    acc = np.zeros(np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (m, n), dtype=acc_dt)
    for w in gemm_blocks({"m": m, "n": n, "k": k}, levels):
        (m0, m1), (n0, n1), (k0, k1) = w["m"], w["n"], w["k"]
        a_blk = a[k0:k1, m0:m1].T if ta else a[..., m0:m1, k0:k1]
        b_blk = b[n0:n1, k0:k1].T if tb else b[..., k0:k1, n0:n1]
        acc[..., m0:m1, n0:n1] += np.matmul(a_blk.astype(acc_dt, copy=False), b_blk.astype(acc_dt, copy=False))
    if not gemm:
        return acc.astype(np.result_type(a.dtype, b.dtype), copy=False)   # the reference's dtype
    y = mm.attr("alpha") * acc
    if len(args) > 2 and args[2] is not None:
        y = y + mm.attr("beta") * args[2]
    return y.astype(a.dtype, copy=False)


# --------------------------------------------------------------------------- attention
def _run_attention(node: Node, args: list, rec: Mapping[str, Any]):
    att = _principal(node, ("Attention",))
    if att is None:
        raise BackendError(f"{_where(node)}: an 'attention' tile schedule needs an Attention")
    if len(att.outputs) > 3:
        return None            # the score matrix is an output: nothing to tile
    if len(att.inputs) > 6 and att.inputs[6] is not None:
        return None
    # q counts packed rows: the ``pack`` query heads of a KV group at each position
    block_q = max(1, _shape(node, rec, ("q",))["q"] // _positive(node, "pack", rec.get("pack", 1)))
    return _around(node, att, args, lambda n, a: _attention_by_query_blocks(n, a, block_q))


def _attention_by_query_blocks(node: Node, inputs: list, block_q: int) -> tuple[np.ndarray, ...]:
    """ONNX ``Attention`` by blocks of ``block_q`` query positions, each the reference kernel:
    the keys before a block are its KV cache, so the kernel places its queries (causal frontier,
    sliding window) where they stand in the whole. The schedule's key/value blocks are not run."""
    q, k, v = inputs[:3]
    mask = inputs[3] if len(inputs) > 3 else None
    past = inputs[4].shape[2] if len(inputs) > 4 and inputs[4] is not None else 0
    q4, present_k, present_v = heads_and_cache(node, q, k, v, *inputs[4:6])
    sq = q4.shape[2]
    ys = []
    for r0, r1 in block_ranges(sq, block_q) or [(0, 0)]:   # an empty query is one empty block
        m = mask[..., r0:r1, :] if mask is not None and mask.ndim > 1 and mask.shape[-2] == sq else mask
        cut = past + r0
        ys.append(call_kernel(node, [q4[:, :, r0:r1], present_k[:, :, cut:], present_v[:, :, cut:], m,
                                     present_k[:, :, :cut], present_v[:, :, :cut]], TABLE)[0])
    y = np.concatenate(ys, axis=2)
    if q.ndim == 3:
        y = y.transpose(0, 2, 1, 3).reshape(q.shape[0], sq, -1)
    return (y, present_k, present_v)[:len(node.outputs)]


# --------------------------------------------------------------------------- row blocks
def _by_rows(node: Node, kept: tuple[int, ...], block: int,
             cut: Callable[[tuple[slice, ...]], tuple[list, tuple[slice, ...]]]):
    """``node``'s reference kernel on blocks of ``block`` rows, a row being one index of the
    ``kept`` dims (those the kernel keeps independent). ``cut(window)`` gives the kernel's
    arguments for a window of the kept dims and where its results go in the outputs; a block of
    flattened rows is split into rectangular windows. None when there is no row."""
    pieces = []
    for r0, r1 in block_ranges(math.prod(kept), block):
        for win, _, _ in _row_windows(kept, r0, r1):
            block_args, where = cut(tuple(slice(a, b) for a, b in win))
            pieces.append((where, call_kernel(node, block_args, TABLE)))
    if not pieces:
        return None
    many = isinstance(pieces[0][1], tuple)
    lead = pieces[0][0]
    outs = []
    for i, first in enumerate(pieces[0][1] if many else (pieces[0][1],)):
        # a windowed dim spans to the furthest window's end; the others are whole in every piece
        shape = [max(w[d].stop for w, _ in pieces) if d < len(lead) and lead[d].stop is not None else n
                 for d, n in enumerate(np.shape(first))]
        out = np.empty(shape, dtype=np.asarray(first).dtype)
        for where, res in pieces:
            out[where] = res[i] if many else res
        outs.append(out)
    return tuple(outs) if many else outs[0]


def _run_rows(node: Node, args: list, rec: Mapping[str, Any]):
    """A normalization, softmax or reduction by blocks of rows (the reduced extent whole)."""
    rows = _shape(node, rec, ("rows",))["rows"]
    x = args[0]
    if x is None or x.ndim == 0 or x.size == 0:
        return None
    op = node.op
    if op in ("LayerNormalization", "RMSNormalization"):
        axis = node.attr("axis") % x.ndim
        return _by_rows(node, x.shape[:axis], rows, lambda w: ([x[w], *args[1:]], w))
    if op in ("Softmax", "LogSoftmax"):
        axes = (node.attr("axis") % x.ndim,)
    elif op.startswith("Reduce"):
        axes_arr = args[1] if len(args) > 1 else None
        if axes_arr is None or axes_arr.size == 0:
            if node.attr("noop_with_empty_axes"):
                return None
            axes = tuple(range(x.ndim))
        else:
            axes = tuple(sorted({int(a) % x.ndim for a in axes_arr.reshape(-1)}))
    else:
        raise BackendError(f"{_where(node)}: no 'rows' schedule for {op}")
    kept = [d for d in range(x.ndim) if d not in axes]
    keep = op in ("Softmax", "LogSoftmax") or bool(node.attr("keepdims"))

    def cut(w: tuple[slice, ...]):
        index = [slice(None)] * x.ndim
        for d, s in zip(kept, w):
            index[d] = s
        return [x[tuple(index)], *args[1:]], tuple(index) if keep else w
    return _by_rows(node, tuple(x.shape[d] for d in kept), rows, cut)


# --------------------------------------------------------------------------- element-wise
def _run_elementwise(node: Node, args: list, rec: Mapping[str, Any]):
    if node.op == "RotaryEmbedding":
        return _rotary_rows(node, args, _shape(node, rec, ("rows",))["rows"])
    sizes = _shape(node, rec, ("rows", "cols"))
    inputs, outs = (node.body.inputs, node.body.outputs) if node.op == "Fused" else (node.inputs, node.outputs)
    if len(outs) != 1:
        return None
    out_v = outs[0]
    ev = _Windows({id(v): a for v, a in zip(inputs, args) if v is not None and a is not None})
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


def _rotary_rows(node: Node, args: list, rows: int):
    """RoPE by blocks of tokens (a token's heads rotate together; its position picks cos/sin)."""
    x, cos, sin = args[:3]
    pos = args[3] if len(args) > 3 else None
    four_d = x.ndim == 4

    def cut(w: tuple[slice, ...]):
        index = (w[0], slice(None), w[1]) if four_d else w

        def tokens(a: np.ndarray) -> np.ndarray:   # a batch-1 cache or position table serves every batch
            return a[(slice(None) if a.shape[0] == 1 else w[0], w[1])]
        if pos is not None:
            return [x[index], cos, sin, tokens(pos)], index
        return [x[index], tokens(cos), tokens(sin)], index
    return _by_rows(node, (x.shape[0], x.shape[2] if four_d else x.shape[1]), rows, cut)


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
