"""What ``tile`` can tile: a node's loop nest as a *problem* the schedule search understands.

Four kinds of kernels, each a small frozen record of sizes and bytes per element (hashable, so the
126 identical layers of a 405B model share one search):

- ``GemmProblem`` — ``MatMul``/``Gemm`` and ``Fused`` nodes whose body is one matrix product with
  element-wise prologues (dequantization) and epilogues (bias, activation, residual). Operand bytes
  are what the kernel reads from memory: every outer input feeding the operand's prologue (an int4
  weight *and* its group scales), per element of the operand.
- ``AttentionProblem`` — ``Attention`` (and ``Fused`` nodes around one, e.g. a quantized KV cache),
  run FlashAttention-style: query blocks (the query heads of a KV group packed together), key/value
  blocks streamed through with an online softmax.
- ``RowsProblem`` — normalizations, softmax and reductions: independent rows, each reduced over
  ``cols`` elements, in one pass (a row block holds whole rows) or two (statistics, then output).
- ``ElementwiseProblem`` — element-wise ops and element-wise ``Fused`` bodies.

``problem_of(node)`` returns the problem or a reason (a string) why the node is not tiled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Union

from ...cost_models.work import compute_dtype
from ...ir import Node, Value
from ...ir.dtypes import bits
from ...ir.ops.attention import node_attention_dims

__all__ = [
    "ELEMENTWISE_QUANT",
    "ROW_REDUCTIONS",
    "SPLITTABLE_REDUCTIONS",
    "AttentionProblem",
    "ElementwiseProblem",
    "GemmProblem",
    "Problem",
    "RowsProblem",
    "principal_node",
    "problem_of",
]

#: row-wise ops the numpy executor can also run with the reduced extent split in column blocks
SPLITTABLE_REDUCTIONS = frozenset({"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
                                   "ReduceL2", "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp"})
ROW_REDUCTIONS = SPLITTABLE_REDUCTIONS | {"Softmax", "LogSoftmax"}
_ROW_NORMS = frozenset({"LayerNormalization", "RMSNormalization"})
#: ops allowed around the matrix product of a fused GEMM body (prologue and epilogue)
_AROUND_OPS = frozenset({"Cast", "CastLike", "QuantizeLinear", "DequantizeLinear"})
#: quantization ops that are element-wise when their scale and zero point are per tensor
ELEMENTWISE_QUANT = frozenset({"QuantizeLinear", "DequantizeLinear"})


@dataclass(frozen=True)
class GemmProblem:
    """``batch`` products (m×k)·(k×n); bytes per element as stored; ``k_align``: K tiles must be
    multiples of it (the block size of blocked-quantized operands)."""

    batch: int
    m: int
    n: int
    k: int
    a_bytes: float
    b_bytes: float
    c_bytes: float           # the result as written (plus full-size epilogue operands, per element)
    dtype: str               # the precision the multiply runs at
    flops: float
    k_align: int = 1
    b_weight: bool = False


@dataclass(frozen=True)
class AttentionProblem:
    """One attention: ``batch`` × ``kv_heads`` independent (query group, keys) problems."""

    batch: int
    q_heads: int
    kv_heads: int
    sq: int
    skv: int
    past: int
    d: int
    dv: int
    q_bytes: float
    kv_bytes: float          # K and V as stored (a quantized cache: its narrow type and scales)
    o_bytes: float
    causal: bool
    left: int                # sliding window (-1: unbounded)
    right: int
    mask_bytes: float        # the additive/boolean mask, read once
    writes_cache: bool       # present_* outputs: the new rows are written
    dtype: str
    scores_out: bool = False  # qk_matmul_output requested: needs the whole score matrix

    @property
    def group(self) -> int:
        return self.q_heads // self.kv_heads

    @property
    def total(self) -> int:
        return self.past + self.skv


@dataclass(frozen=True)
class RowsProblem:
    """``rows`` independent rows of ``cols`` elements: per-element bytes of row-wise inputs and
    outputs, bytes of per-row results, bytes of operands shared by all rows (scale, bias)."""

    op: str
    rows: int
    cols: int
    in_bytes: float          # per element, all row-wise inputs
    out_bytes: float         # per element, all row-wise outputs
    row_bytes: float         # per row: reduced results, statistics
    shared_bytes: float      # total: scale/bias over the normalized dims
    splittable: bool         # can run in two passes over column blocks
    flops: float
    dtype: str


@dataclass(frozen=True)
class ElementwiseProblem:
    """An element-wise kernel over an output of ``rows`` × ``cols`` (cols: the last dim)."""

    rows: int
    cols: int
    full_bytes: float        # per output element: inputs of the output's size, and the output
    row_shared: float        # total bytes of inputs broadcast along rows (e.g. a bias over cols)
    col_shared: float        # total bytes of inputs broadcast along cols (per-row scalars)
    flops: float
    dtype: str


Problem = Union[GemmProblem, AttentionProblem, RowsProblem, ElementwiseProblem]  # noqa: UP007 (a runtime alias)


# --------------------------------------------------------------------------- helpers
def _static_shape(v: Value | None) -> tuple[int, ...] | None:
    if v is None:
        return None
    s = v.type.shape
    return tuple(s) if all(isinstance(d, int) for d in s) else None


def _nbytes(v: Value | None) -> float:
    if v is None:
        return 0.0
    n = v.type.numel
    return float(v.type.dtype.nbytes(n)) if isinstance(n, int) else 0.0


def _is_static_node(node: Node) -> bool:
    vals = [v for v in node.inputs if v is not None] + list(node.outputs)
    return all(_static_shape(v) is not None for v in vals)


def _broadcasts_to(a: tuple[int, ...], out: tuple[int, ...]) -> bool:
    if len(a) > len(out):
        return False
    return all(x in (1, y) for x, y in zip(a[::-1], out[::-1]))


def _flops(node: Node) -> float:
    f = node.spec.flops(node)
    return float(f) if isinstance(f, (int, float)) else 0.0


def _dtype(v: Value) -> str:
    return v.type.dtype.name


def principal_node(node: Node) -> Node | str:
    """For a ``Fused`` node: the one MatMul/Gemm or Attention of its body, around which every
    other body op is element-wise or a conversion; else the reason it has none."""
    body = node.body
    if body is None:
        return "a Fused node without a body"
    heavy = [n for n in body if n.spec.category in ("matmul", "attention")]
    if len(heavy) != 1 or heavy[0].op not in ("MatMul", "Gemm", "Attention"):
        return f"its body has {len(heavy)} matrix products / attentions (one MatMul, Gemm or Attention is tiled)"
    for n in body:
        if n is heavy[0]:
            continue
        cat = n.spec.category
        if not (cat in ("elementwise", "view") or n.op in _AROUND_OPS):
            return f"its body has a {n.op} besides the {heavy[0].op}"
    return heavy[0]


def _chain_sources(v: Value, body_inputs: dict[int, int]) -> list[int] | None:
    """Outer input indices feeding ``v`` through body ops (None when a body op's result that is
    not element-wise feeds it: then the operand is not read straight from memory)."""
    out: set[int] = set()
    stack, seen = [v], set()
    while stack:
        x = stack.pop()
        if id(x) in seen:
            continue
        seen.add(id(x))
        if id(x) in body_inputs:
            out.add(body_inputs[id(x)])
            continue
        if x.const or x.producer is None:
            continue
        p = x.producer
        if p.spec.category not in ("elementwise", "view") and p.op not in _AROUND_OPS:
            return None
        stack.extend(i for i in p.inputs if i is not None)
    return sorted(out)


def _k_align(v: Value) -> int:
    """The block size of a blocked DequantizeLinear on the K axis feeding operand ``v``."""
    stack, seen = [v], set()
    align = 1
    while stack:
        x = stack.pop()
        if id(x) in seen or x.producer is None:
            continue
        seen.add(id(x))
        p = x.producer
        if p.op in ("DequantizeLinear", "QuantizeLinear") and p.attr("block_size"):
            align = math.lcm(align, int(p.attr("block_size")))
        stack.extend(i for i in p.inputs if i is not None)
    return align


# --------------------------------------------------------------------------- kinds
def _gemm(node: Node, mm: Node, outer: Node) -> GemmProblem | str:
    a, b = mm.inputs[0], mm.inputs[1]
    sa, sb = _static_shape(a), _static_shape(b)
    so = _static_shape(mm.outputs[0])
    if sa is None or sb is None or so is None:
        return "symbolic sizes (bind the model's dims first)"
    if mm.op == "Gemm":
        m, k = (sa[1], sa[0]) if mm.attr("transA") else sa
        n = sb[0] if mm.attr("transB") else sb[1]
        batch = 1
    else:
        if len(sa) < 2 or len(sb) < 2:
            return "a matrix-vector product of a 1-D operand"
        m, k, n = sa[-2], sa[-1], sb[-1]
        if len(sb) == 2:   # one weight for every row: fold A's batch dims into M
            m, batch = math.prod(sa[:-1]), 1
        else:
            batch = math.prod(so[:-2])
    if not (m and n and k):
        return "an empty product"
    if outer is mm:
        a_bytes = _nbytes(a) / math.prod(sa)
        b_bytes = _nbytes(b) / math.prod(sb)
        out_b = sum(_nbytes(v) for v in node.outputs)
        extra = _nbytes(node.inputs[2]) if node.op == "Gemm" and len(node.inputs) > 2 else 0.0
        a_dt, b_dt, weight = _dtype(a), _dtype(b), b.const
        align = 1
    else:
        index = {id(v): i for i, v in enumerate(outer.body.inputs)}
        srcs = [_chain_sources(x, index) for x in (a, b)]
        if srcs[0] is None or srcs[1] is None:
            return "a matrix operand computed by something other than element-wise ops"
        a_bytes = sum(_nbytes(outer.inputs[i]) for i in srcs[0]) / math.prod(sa)
        b_bytes = sum(_nbytes(outer.inputs[i]) for i in srcs[1]) / math.prod(sb)
        used = set(srcs[0]) | set(srcs[1])
        out_b = sum(_nbytes(v) for v in outer.outputs)
        extra = sum(_nbytes(v) for i, v in enumerate(outer.inputs) if i not in used)
        a_dt, b_dt = _narrowest(a, srcs[0], outer), _narrowest(b, srcs[1], outer)
        weight = bool(srcs[1]) and all(outer.inputs[i] is not None and outer.inputs[i].const for i in srcs[1])
        align = _k_align(b) if mm.op == "MatMul" else 1
        align = math.lcm(align, _k_align(a))
    c_bytes = (out_b + extra) / (batch * m * n)
    dt = compute_dtype(_dtype(a), a_dt, b_dt)  # as the cost models read it
    return GemmProblem(batch, m, n, k, a_bytes, b_bytes, c_bytes, dt, _flops(outer), align if align < k else 1, weight)


def _narrowest(v: Value, srcs: list[int], outer: Node) -> str:
    """The narrowest dtype among the operand and the outer inputs it is computed from."""
    best = _dtype(v)
    for i in srcs:
        x = outer.inputs[i]
        if x is not None and x.type.dtype.bits < bits(best):
            best = _dtype(x)
    return best


def _attention(att: Node, outer: Node) -> AttentionProblem | str:
    shapes = [_static_shape(v) for v in att.inputs]
    if any(s is None for v, s in zip(att.inputs, shapes) if v is not None):
        return "symbolic sizes (bind the model's dims first)"
    b, hq, sq, d, hkv, skv, dv, past = node_attention_dims(att)
    if not all(isinstance(x, int) and x > 0 for x in (b, hq, sq, d, hkv, skv, dv)):
        return "empty or symbolic attention sizes"
    if att.inputs[6:7] and att.inputs[6] is not None:
        return "an external KV cache (nonpad_kv_seqlen) is not tiled"
    if outer is att:
        q_b = _nbytes(att.inputs[0]) / (b * hq * sq * d)
        kv_total = sum(_nbytes(v) for v in att.inputs[1:3]) + sum(_nbytes(v) for v in att.inputs[4:6])
        o_b = _nbytes(att.outputs[0]) / (b * hq * sq * dv)
        mask_b = _nbytes(att.inputs[3]) if len(att.inputs) > 3 else 0.0
    else:
        # a fused attention reads its inputs as stored outside (a narrow cache and its scales)
        index = {id(v): i for i, v in enumerate(outer.body.inputs)}
        srcs = [_chain_sources(x, index) if x is not None else [] for x in att.inputs]
        if any(s is None for s in srcs):
            return "an attention input computed inside the fused body by something other than element-wise ops"
        q_b = sum(_nbytes(outer.inputs[i]) for i in srcs[0]) / (b * hq * sq * d)
        kv_idx = set()
        for s in srcs[1:3] + srcs[4:6]:
            kv_idx.update(s)
        kv_total = sum(_nbytes(outer.inputs[i]) for i in kv_idx)
        o_b = _nbytes(outer.outputs[0]) / (b * hq * sq * dv)
        mask_b = sum(_nbytes(outer.inputs[i]) for i in (srcs[3] if len(srcs) > 3 else []))
    kv_b = kv_total / (b * hkv * (past + skv) * (d + dv))
    return AttentionProblem(b, hq, hkv, sq, skv, past, d, dv, q_b, kv_b, o_b, bool(att.attr("is_causal")),
                            int(att.attr("left_window_size")), int(att.attr("right_window_size")), mask_b,
                            len(att.outputs) > 1, _dtype(att.inputs[0]), len(att.outputs) > 3)


def _reduce_axes(node: Node, rank: int) -> tuple[int, ...] | str:
    if node.op in ("Softmax", "LogSoftmax"):
        return (node.attr("axis") % rank,)
    axes_v = node.inputs[1] if len(node.inputs) > 1 else None
    if axes_v is None:
        if node.attr("noop_with_empty_axes"):
            return "a reduction over no axes is a copy"
        return tuple(range(rank))
    if axes_v.data is None:
        return "reduction axes computed at run time"
    axes = tuple(sorted({int(a) % rank for a in axes_v.data.reshape(-1)}))
    if not axes:
        return "a reduction over no axes is a copy" if node.attr("noop_with_empty_axes") else tuple(range(rank))
    return axes


def _rows(node: Node) -> RowsProblem | str:
    x = node.inputs[0]
    sx = _static_shape(x)
    if sx is None or any(_static_shape(v) is None for v in node.outputs):
        return "symbolic sizes (bind the model's dims first)"
    rank = len(sx)
    if rank == 0:
        return "a scalar"
    if node.op in _ROW_NORMS:
        axis = node.attr("axis") % rank
        red = tuple(range(axis, rank))
    else:
        red = _reduce_axes(node, rank)
        if isinstance(red, str):
            return red
    cols = math.prod(tuple(sx[a] for a in red))
    rows = math.prod(sx) // max(cols, 1)
    if not rows or not cols:
        return "an empty tensor"
    elem = x.type.dtype.nbytes(1) if x.type.dtype.bits >= 8 else x.type.dtype.bits / 8
    shared = sum(_nbytes(v) for v in node.inputs[1:] if v is not None) if node.op in _ROW_NORMS else 0.0
    out0 = node.outputs[0]
    if node.op in _ROW_NORMS or node.op in ("Softmax", "LogSoftmax"):
        out_b = _nbytes(out0) / (rows * cols)
        row_b = sum(_nbytes(v) for v in node.outputs[1:]) / rows
    else:
        out_b = 0.0
        row_b = _nbytes(out0) / rows
    split = node.op in _ROW_NORMS or node.op in ROW_REDUCTIONS
    return RowsProblem(node.op, rows, cols, float(elem), out_b, row_b, shared, split, _flops(node), _dtype(x))


def _elementwise(node: Node) -> ElementwiseProblem | str:
    if not _is_static_node(node):
        return "symbolic sizes (bind the model's dims first)"
    if len(node.outputs) != 1:
        return "several outputs"
    out = _static_shape(node.outputs[0])
    if not out:
        return "a scalar result"
    if node.op == "Fused":
        bad = _elementwise_body(node)
        if bad:
            return bad
    rows, cols = math.prod(out[:-1]), out[-1]
    if not rows or not cols:
        return "an empty tensor"
    total = rows * cols
    full = _nbytes(node.outputs[0]) / total
    row_shared = col_shared = 0.0
    for v in node.inputs:
        s = _static_shape(v)
        if s is None:
            continue
        if not _broadcasts_to(s, out):
            return f"input %{v.name} {v.type} does not broadcast to the result {node.outputs[0].type}"
        n = math.prod(s)
        if n == total:
            full += _nbytes(v) / total
        elif s and s[-1] == out[-1]:
            row_shared += _nbytes(v)     # varies along cols only: every row block reads it
        else:
            col_shared += _nbytes(v)     # per-row values or a scalar
    return ElementwiseProblem(rows, cols, full, row_shared, col_shared, _flops(node), _dtype(node.outputs[0]))


def _elementwise_body(node: Node) -> str | None:
    body = node.body
    if body is None:
        return "a Fused node without a body"
    for n in body:
        cat = n.spec.category
        if cat == "elementwise" and n.op != "RotaryEmbedding":
            continue
        if n.op in ELEMENTWISE_QUANT and all(v is None or math.prod(_static_shape(v) or (2,)) == 1 for v in n.inputs[1:]):
            continue
        return f"its body has a {n.op}, which is not element-wise"
    return None


def _rotary(node: Node) -> ElementwiseProblem | str:
    """RoPE: independent per token (its position picks the cos/sin rows); a row is a token's heads."""
    if not _is_static_node(node):
        return "symbolic sizes (bind the model's dims first)"
    x = _static_shape(node.inputs[0])
    rows, cols = (x[0] * x[1], x[2]) if len(x) == 3 else (x[0] * x[2], x[1] * x[3])
    cos = _static_shape(node.inputs[1])
    elem = node.inputs[1].type.dtype.nbytes(1)
    gathered = 2.0 * rows * cos[-1] * elem + _nbytes(node.inputs[3] if len(node.inputs) > 3 else None)
    full = (_nbytes(node.inputs[0]) + _nbytes(node.outputs[0])) / (rows * cols)
    return ElementwiseProblem(rows, cols, full, 0.0, gathered, _flops(node), _dtype(node.outputs[0]))


def problem_of(node: Node) -> Problem | str:
    """The tiling problem of ``node``, or why it is not tiled."""
    op = node.op
    spec = node.spec
    cat = spec.category
    if op in ("MatMul", "Gemm"):
        return _gemm(node, node, node)
    if op == "Attention":
        return _attention(node, node)
    if op in _ROW_NORMS or op in ROW_REDUCTIONS:
        return _rows(node)
    if op == "RotaryEmbedding":
        return _rotary(node)
    if op == "Fused":
        if node.body is None:
            return "a Fused node without a body"
        if all(n.spec.category in ("elementwise", "quant", "view") for n in node.body):
            return _elementwise(node)
        p = principal_node(node)
        if isinstance(p, str):
            return p
        if not _is_static_node(node) or not all(_static_shape(v) is not None for n in node.body for v in n.outputs):
            return "symbolic sizes (bind the model's dims first)"
        return _gemm(node, p, node) if p.op in ("MatMul", "Gemm") else _attention(p, node)
    if cat == "elementwise" and op != "RotaryEmbedding":
        return _elementwise(node)
    return f"no tile schedule for {op} ({cat})"
