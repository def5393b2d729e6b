"""What a node asks of the hardware, independent of any target: ``NodeWork``.

This is where the cost models read what passes leave in the IR:

- **Contractions** (MatMul, Gemm, the two products inside ``Attention``, MatMuls inside a fused
  body) become ``Contraction`` records with their M, N, K, batch and the precision the multiply
  runs at, so a family can map them onto tensor cores, systolic arrays or SIMD lanes.
- **Fused nodes** (``Fused`` with a ``body``): FLOPs are the body's, bytes are only the node's
  inputs and outputs (intermediates stay on chip). Element-wise chains in the body that feed a
  MatMul operand (``Cast`` of int4 weights, ``Mul`` by scales) are that operand's *prologue*:
  work redone for every tile of the other operand, which is how a dequantizing GEMM behaves.
- **Quantized dtypes**: bytes follow the dtype's bits (``i4`` is half a byte). A MatMul operand
  whose narrowest dtype on its way from memory is 8-bit or less on *both* sides runs at that
  precision (W8A8, FP8); when only the weight is narrow it is dequantized and the multiply runs
  at the activation's precision (weight-only quantization).
- **Tile schedules**: ``node.meta["tile"]`` (contract in ``docs/cost_models.md`` and
  ``read_tile``) gives the bytes moved at each named memory level; untiled nodes move
  ``spec.bytes(node)`` at device memory (``DEVICE``), except that an ``Attention`` KV cache is
  updated in place (``present_*`` alias ``past_*``, so only the new rows are written), as every
  serving runtime does.
- **Free ops**: views and host-side shape arithmetic launch no kernel and move nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

from ..ir import Node, Value
from ..ir.dtypes import bits
from ..ir.errors import IRError
from ..ir.ops.attention import node_attention_dims

__all__ = ["DEVICE", "Contraction", "Prologue", "NodeWork", "node_work", "shared_work", "work_key", "read_tile", "with_tile",
           "node_label", "FREE_CATEGORIES", "compute_dtype"]

#: the traffic key of untiled bytes: the target's outermost memory level, whatever its name
DEVICE = "device"
FREE_CATEGORIES = frozenset({"view", "shape"})
_CONVERT_OPS = frozenset({"Cast", "CastLike", "QuantizeLinear", "DequantizeLinear"})
# ops that can sit between a tensor in memory and a MatMul operand and are done per tile
_PROLOGUE_OPS = _CONVERT_OPS | {"Mul", "Div", "Sub", "Add", "Round", "Clip", "Reshape", "Transpose",
                                "Unsqueeze", "Squeeze", "Flatten", "Identity", "Expand", "Neg"}


@dataclass(frozen=True)
class Prologue:
    """Element-wise work applied to a contraction operand each time a tile of it is loaded."""

    flops: float = 0.0      # per full pass over the operand
    converts: float = 0.0   # dtype conversions per full pass
    source_dtype: str = ""  # the operand's dtype in memory

    def __bool__(self) -> bool:
        return bool(self.flops or self.converts)


@dataclass(frozen=True)
class Contraction:
    """``batch`` independent products of an (m×k) and a (k×n) matrix."""

    role: str               # "matmul", "attention.qk", "attention.pv"
    batch: int
    m: int
    n: int
    k: int
    dtype: str              # precision of the multiply-accumulate
    a_dtype: str            # operand dtypes as stored in memory
    b_dtype: str
    b_weight: bool = False  # B is a constant (a weight): it can be sharded and stays resident
    a_prologue: Prologue = Prologue()
    b_prologue: Prologue = Prologue()

    @property
    def flops(self) -> float:
        return 2.0 * self.batch * self.m * self.n * self.k

    def split(self, dim: str, parts: int) -> "Contraction":
        """This contraction with ``dim`` (m, n, k or batch) divided into ``parts`` (tensor parallel)."""
        if parts <= 1:
            return self
        size = max(1, math.ceil(getattr(self, dim) / parts))
        scale = size / getattr(self, dim)
        pro_a = _scale_pro(self.a_prologue, scale if dim in ("k", "batch", "m") else 1.0)
        pro_b = _scale_pro(self.b_prologue, scale if dim in ("k", "batch", "n") else 1.0)
        return replace(self, **{dim: size}, a_prologue=pro_a, b_prologue=pro_b)


def _scale_pro(p: Prologue, f: float) -> Prologue:
    return p if f == 1.0 or not p else replace(p, flops=p.flops * f, converts=p.converts * f)


@dataclass
class NodeWork:
    """A node's work: contractions, vector arithmetic, conversions and bytes per memory level."""

    name: str
    op: str
    category: str
    kernels: int                           # kernel launches (0 for views and shape arithmetic)
    flops: float                           # the spec's FLOPs (nominal model FLOPs)
    contractions: tuple[Contraction, ...] = ()
    vector_flops: float = 0.0              # arithmetic outside contractions and prologues
    vector_dtype: str = "f32"
    converts: float = 0.0                  # dtype conversions outside prologues
    in_bytes: tuple[float, ...] = ()       # per input, as stored (0 for a missing optional input)
    out_bytes: tuple[float, ...] = ()      # per output, as written (KV cache: the new rows only)
    extra_bytes: float = 0.0               # device traffic beyond inputs and outputs (materialized scores)
    traffic: dict[str, float] | None = None  # from a tile schedule: level name -> bytes
    tile: dict[str, Any] | None = None
    weight_bytes: float = 0.0              # bytes of constant inputs
    cold_bytes: float = 0.0                # bytes of inputs no node of this step produced (weights, KV cache)
    causal_fraction: float = 1.0           # share of attention blocks a tiled causal kernel visits
    layer: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def device_bytes(self) -> float:
        """Bytes at device memory: the tile's record for it, else inputs + outputs + extra."""
        return sum(self.in_bytes) + sum(self.out_bytes) + self.extra_bytes

    @property
    def matrix_flops(self) -> float:
        return sum(c.flops for c in self.contractions)

    def bytes_at(self, device_level: str) -> dict[str, float]:
        """Bytes per level, with ``device_level`` naming the target's outermost memory."""
        if self.traffic is None:
            return {device_level: self.device_bytes}
        out = {device_level: self.device_bytes}
        out.update({(device_level if k == DEVICE else k): float(v) for k, v in self.traffic.items()})
        return out


# --------------------------------------------------------------------------- tile records
def read_tile(node: Node) -> dict[str, Any] | None:
    """The node's tile schedule, checked against the contract (see docs/cost_models.md)."""
    tile = node.meta.get("tile")
    if tile is None:
        return None
    if hasattr(tile, "to_meta"):
        tile = tile.to_meta()
    where = f"{node.op} node %{node.outputs[0].name if node.outputs else '?'}: meta tile"
    if not isinstance(tile, Mapping):
        raise IRError(f"{where}: expected a table, got {type(tile).__name__}")
    traffic = tile.get("traffic")
    if not isinstance(traffic, Mapping) or not traffic:
        raise IRError(f"{where}: 'traffic' must be a table of memory level = bytes moved")
    for level, b in traffic.items():
        if isinstance(b, bool) or not isinstance(b, (int, float)) or b < 0 or b != b:
            raise IRError(f"{where}: traffic.{level} must be a non-negative number of bytes, got {b!r}")
    for key in ("footprint",):
        fp = tile.get(key)
        if fp is not None and (not isinstance(fp, Mapping) or
                               not all(isinstance(v, (int, float)) and v >= 0 for v in fp.values())):
            raise IRError(f"{where}: '{key}' must be a table of memory level = bytes")
    if "flops" in tile and (not isinstance(tile["flops"], (int, float)) or tile["flops"] < 0):
        raise IRError(f"{where}: 'flops' must be a non-negative number")
    return dict(tile)


# --------------------------------------------------------------------------- extraction
def node_label(node: Node) -> str:
    return node.outputs[0].name if node.outputs else (node.name or node.op)


def _static(x: Any, node: Node) -> float:
    if isinstance(x, (int, float)):
        return float(x)
    raise IRError(f"{node.op} node %{node_label(node)} has symbolic sizes ({x}); bind the model's dims "
                  f"first (--dim NAME=SIZE or graph.bind(...))")


def _vbytes(v: Value | None) -> float:
    return 0.0 if v is None else float(v.type.dtype.nbytes(_numel(v)))


def _numel(v: Value) -> int:
    n = v.type.numel
    if not isinstance(n, int):
        raise IRError(f"value %{v.name}: {v.type} has unbound dims; bind them first (--dim NAME=SIZE)")
    return n


def node_work(node: Node) -> NodeWork:
    """The target-independent work of ``node`` (see the module docstring)."""
    spec = node.spec
    cat = spec.category
    name = node_label(node)
    layer = node.meta.get("layer")
    layer = layer if isinstance(layer, int) else None
    if cat in FREE_CATEGORIES:
        return NodeWork(name, node.op, cat, 0, 0.0, layer=layer)
    flops = _static(spec.flops(node), node)
    in_b = tuple(_vbytes(v) for v in node.inputs)
    out_b = [_vbytes(v) for v in node.outputs]
    spec_bytes = _static(spec.bytes(node), node)
    if node.op == "RotaryEmbedding" and len(node.inputs) > 3 and node.inputs[3] is not None:
        # with position_ids the kernel reads the cos/sin rows of those positions, not the whole
        # table (which has a row per position the model can reach: 8 MB at 32k for head dim 128)
        in_b = _gathered_rows(node, in_b)
    extra = spec_bytes - sum(in_b) - sum(out_b)
    weight = sum(b for v, b in zip(node.inputs, in_b) if v is not None and v.const)
    cold = sum(b for v, b in zip(node.inputs, in_b) if v is not None and v.producer is None)
    if extra < 0:
        # the op touches part of its inputs (a Gather reads the embedding rows it selects, not
        # the table): it cannot read more cold bytes than it touches
        cold = min(cold, max(spec_bytes - sum(out_b), 0.0))
    out_dtype = node.outputs[0].type.dtype.name if node.outputs else "f32"
    w = NodeWork(name, node.op, cat, 1, flops, vector_dtype=out_dtype, in_bytes=in_b, weight_bytes=weight,
                 cold_bytes=cold, layer=layer)

    if node.op == "Attention":
        _attention(node, w, out_b)
    elif node.op == "Fused" and node.body is not None:
        # a fused kernel moves its inputs and outputs only, plus what an untiled attention inside
        # it materializes (its score matrix)
        extra = _fused(node, w)
        _fused_kv_alias(node, out_b, in_b)
    elif cat == "matmul":
        ops = _operands(node)
        c = (_contraction(node, node.inputs[ops[0]], node.inputs[ops[1]]) if ops is not None
             else _generic_contraction(node, flops))
        w.contractions = (c,)
        w.vector_flops = max(0.0, flops - c.flops)  # bias / alpha / zero-point epilogues
    elif node.op in _CONVERT_OPS or cat == "quant":
        w.converts = float(_numel(node.outputs[0]))
        w.vector_flops = max(0.0, flops - w.converts)
    else:
        w.vector_flops = flops
    w.out_bytes = tuple(out_b)
    w.extra_bytes = extra
    tile = read_tile(node)
    if tile is not None:
        _set_tile(w, tile)
    return w


def _gathered_rows(node: Node, in_b: tuple[float, ...]) -> tuple[float, ...]:
    """``in_b`` with RotaryEmbedding's cos/sin caches (inputs 1, 2) counted as the rows
    ``position_ids`` (input 3) selects, at most the whole table. The op spec's bytes
    (``ir/ops/attention._rotary_bytes``) already count only those rows, so they stay."""
    rows = _numel(node.inputs[3])
    out = list(in_b)
    for i in (1, 2):
        t = node.inputs[i].type
        last = t.shape[-1] if t.shape and isinstance(t.shape[-1], int) and t.shape[-1] > 0 else 1
        table_rows = max(1, _numel(node.inputs[i]) // last)
        out[i] = min(in_b[i], in_b[i] / table_rows * rows)
    return tuple(out)


def _set_tile(w: NodeWork, tile: Mapping[str, Any]) -> None:
    w.tile = dict(tile)
    w.traffic = {str(k): float(v) for k, v in tile["traffic"].items()}
    if "flops" in tile and w.flops:
        # a schedule that skips work (causal blocks) states the FLOPs it executes
        w.causal_fraction = max(0.0, min(1.0, float(tile["flops"]) / w.flops))
    else:
        w.causal_fraction = 1.0


def with_tile(w: NodeWork, tile: Mapping[str, Any]) -> NodeWork:
    """A copy of ``w`` priced under the tile schedule ``tile`` (``w`` may be shared: it is not changed)."""
    out = replace(w, detail=dict(w.detail))
    _set_tile(out, tile)
    return out


#: which inputs are the two matrices of a matmul-category op (others: scales, zero points, bias)
_OPERANDS = {"MatMul": (0, 1), "Gemm": (0, 1), "MatMulInteger": (0, 1), "QLinearMatMul": (0, 3)}


def _operands(node: Node) -> tuple[int, int] | None:
    ops = _OPERANDS.get(node.op)
    if ops is None or max(ops) >= len(node.inputs) or any(node.inputs[i] is None for i in ops):
        return None
    return ops


def _generic_contraction(node: Node, flops: float) -> Contraction:
    """A contraction of an op whose operand layout is not known here (Einsum, a plugin's
    quantized matmul): N is the output's last dim, K follows from the spec's FLOPs."""
    out = node.outputs[0]
    numel = max(1, _numel(out))
    n = out.type.shape[-1] if out.type.shape and isinstance(out.type.shape[-1], int) else 1
    k = max(1, round(flops / (2 * numel)))
    dt = node.inputs[0].type.dtype.name if node.inputs and node.inputs[0] is not None else out.type.dtype.name
    return Contraction("matmul", 1, max(1, numel // max(1, n)), n, k, dt, dt, dt,
                       any(v is not None and v.const for v in node.inputs[1:]))


def _attention(node: Node, w: NodeWork, out_b: list[float]) -> None:
    dims = node_attention_dims(node)
    b, hq, sq, d, hkv, skv, dv, past = dims
    if not all(isinstance(x, int) for x in dims):
        raise IRError(f"Attention node %{w.name} has symbolic sizes; bind the model's dims first")
    t = skv + past
    dt = node.inputs[0].type.dtype.name
    kvdt = node.inputs[1].type.dtype.name
    # Grouped-query attention kernels fold the query heads sharing a KV head into M (FlashAttention
    # and FlashInfer "pack" GQA), so a decode step multiplies (group x d) blocks, not 1-row GEMVs.
    group = hq // hkv if hkv and hq % hkv == 0 else 1
    heads = hq // group
    w.contractions = (Contraction("attention.qk", b * heads, sq * group, t, d, dt, dt, kvdt),
                      Contraction("attention.pv", b * heads, sq * group, dv, t, dt, dt, node.inputs[2].type.dtype.name))
    w.vector_flops = max(0.0, w.flops - sum(c.flops for c in w.contractions))
    w.vector_dtype = dt
    # The KV cache is updated in place: present_* = past_* plus the new rows, which are all
    # that is written (the past rows are read, once, as inputs).
    for out_i, in_i in ((1, 4), (2, 5)):
        if out_i < len(out_b) and in_i < len(node.inputs) and node.inputs[in_i] is not None:
            out_b[out_i] = max(0.0, out_b[out_i] - _vbytes(node.inputs[in_i]))
    if node.attr("is_causal") and sq > 1:
        w.causal_fraction = (past + (sq + 1) / 2) / t if t else 1.0
        w.detail["causal"] = True


def _dtype_name(v: Value) -> str:
    return v.type.dtype.name


def _contraction(node: Node, a: Value, b: Value, *, role: str = "matmul", a_pro: Prologue = Prologue(),
                 b_pro: Prologue = Prologue(), a_narrow: str | None = None, b_narrow: str | None = None,
                 b_weight: bool | None = None) -> Contraction:
    sa, sb = a.type.shape, b.type.shape
    if node.op == "Gemm":
        m, k = (sa[1], sa[0]) if node.attr("transA") else (sa[0], sa[1])
        n = sb[0] if node.attr("transB") else sb[1]
        batch = 1
    else:
        m = 1 if len(sa) == 1 else sa[-2]
        k = sa[-1]
        n = 1 if len(sb) == 1 else sb[-1]
        out = node.outputs[0].type.numel
        if not all(isinstance(x, int) for x in (m, n, k)) or not isinstance(out, int):
            raise IRError(f"{node.op} node %{node_label(node)} has symbolic sizes; bind the model's dims first")
        batch = max(1, out // max(1, m * n))
        if len(sb) <= 2 and len(sa) > 2:
            # one matrix B shared by every leading index of A ([B,S,K] x [K,N]): matmul broadcasting
            # makes this one GEMM of B*S rows that reads B once, not B products re-reading it
            m, batch = m * batch, 1
    if not all(isinstance(x, int) for x in (m, n, k)):
        raise IRError(f"{node.op} node %{node_label(node)} has symbolic sizes; bind the model's dims first")
    adt, bdt = _dtype_name(a), _dtype_name(b)
    an, bn = a_narrow or adt, b_narrow or bdt
    dt = compute_dtype(adt, an, bn)
    # An operand the matrix unit consumes in its stored precision (an fp8 weight in an fp8 GEMM)
    # needs no conversion: the body's upcast only spells out the arithmetic; scales go to the epilogue.
    if an == dt and an != adt:
        a_pro = Prologue(source_dtype=a_pro.source_dtype)
    if bn == dt and bn != bdt:
        b_pro = Prologue(source_dtype=b_pro.source_dtype)
    return Contraction(role, batch, m, n, k, dt, a_pro.source_dtype or adt, b_pro.source_dtype or bdt,
                       b.const if b_weight is None else b_weight, a_pro, b_pro)


def compute_dtype(operand: str, a_narrow: str, b_narrow: str) -> str:
    """The precision a MatMul runs at, from the narrowest dtype each operand passes through."""
    if bits(a_narrow) <= 8 and bits(b_narrow) <= 8:
        # both sides quantized (W8A8, FP8, W4A8): the multiply runs at the wider of the two
        return a_narrow if bits(a_narrow) >= bits(b_narrow) else b_narrow
    return operand


# --------------------------------------------------------------------------- fused bodies
def _fused(node: Node, w: NodeWork) -> None:
    body = node.body
    is_input = {id(v): i for i, v in enumerate(body.inputs)}
    outer_const = {i for i, v in enumerate(node.inputs) if v is not None and v.const}
    prologue_nodes: set[int] = set()
    contractions = []
    vector = 0.0
    converts = 0.0
    extra = 0.0
    for n in body:
        if n.spec.category == "matmul" and _operands(n) is not None:
            ia, ib = _operands(n)
            chains = [_trace_operand(n.inputs[i], is_input) for i in (ia, ib)]
            (a_nodes, a_src, a_narrow), (b_nodes, b_src, b_narrow) = chains
            pros = []
            for nodes, src in ((a_nodes, a_src), (b_nodes, b_src)):
                prologue_nodes.update(id(x) for x in nodes)
                fl = sum(_static(x.spec.flops(x), x) for x in nodes if x.op not in _CONVERT_OPS)
                cv = sum(float(_numel(x.outputs[0])) for x in nodes if x.op in _CONVERT_OPS)
                pros.append(Prologue(fl, cv, src.type.dtype.name))
            b_weight = b_src.const or is_input.get(id(b_src), -1) in outer_const
            c = _contraction(n, n.inputs[ia], n.inputs[ib], a_pro=pros[0], b_pro=pros[1], a_narrow=a_narrow,
                             b_narrow=b_narrow, b_weight=b_weight)
            contractions.append(c)
            vector += max(0.0, _static(n.spec.flops(n), n) - c.flops)
        elif n.op == "Attention":
            inner = node_work(n)
            cons, handled, narrowing = _narrow_kv(n, inner.contractions)
            contractions.extend(cons)
            prologue_nodes.update(handled)
            converts += narrowing
            vector += inner.vector_flops
            extra += inner.extra_bytes
            if inner.detail.get("causal"):
                w.causal_fraction = inner.causal_fraction
    for n in body:
        if id(n) in prologue_nodes or (n.spec.category == "matmul" and _operands(n) is not None) \
                or n.op == "Attention":
            continue
        if n.op in _CONVERT_OPS:
            converts += float(_numel(n.outputs[0]))
        elif n.spec.category not in FREE_CATEGORIES:
            vector += _static(n.spec.flops(n), n)
    w.contractions = tuple(contractions)
    w.vector_flops = vector
    w.converts = converts
    w.weight_bytes = sum(_vbytes(v) for v in node.inputs if v is not None and v.const)
    w.detail["kind"] = node.attr("kind")
    if node.attr("label"):
        w.detail["label"] = node.attr("label")
    return extra


def _narrow_kv(att: Node, cons: tuple[Contraction, ...]) -> tuple[tuple[Contraction, ...], set[int], float]:
    """A narrow KV cache inside a fused attention kernel (fp8/int8 K/V): the cache is widened as
    its tiles stream into the two products — the B operands of QKᵀ (K) and PV (V) — once per
    element, as FlashInfer/XQA/TensorRT-LLM kernels do, not by a separate conversion pass over
    the whole cache; and only the step's new rows are narrowed on the way out (``present_*``
    alias ``past_*``). Returns the contractions with those prologues, the ids of the conversion
    nodes they account for, and the conversions of the new rows."""
    handled: set[int] = set()
    out = list(cons)
    for role_i, in_i in ((0, 4), (1, 5)):
        src = att.inputs[in_i] if in_i < len(att.inputs) else None
        chain = []
        while src is not None and src.producer is not None and src.producer.op in _CONVERT_OPS \
                and len(src.uses) <= 1 and src.producer.inputs[0] is not None:
            chain.append(src.producer)
            src = src.producer.inputs[0]
        if not chain or role_i >= len(out):
            continue
        handled.update(id(x) for x in chain)
        c = out[role_i]
        pro = Prologue(0.0, float(sum(_numel(x.outputs[0]) for x in chain)), src.type.dtype.name)
        out[role_i] = replace(c, b_dtype=src.type.dtype.name, b_prologue=pro)
    narrowing = 0.0
    for out_i, in_i in ((1, 4), (2, 5)):
        if out_i >= len(att.outputs):
            continue
        v = att.outputs[out_i]
        past = _numel(att.inputs[in_i]) if in_i < len(att.inputs) and att.inputs[in_i] is not None else 0
        while len(v.uses) == 1 and v.uses[0][0].op in _CONVERT_OPS:
            x = v.uses[0][0]
            handled.add(id(x))
            narrowing += max(0, _numel(x.outputs[0]) - past)    # the new rows only
            v = x.outputs[0]
    return tuple(out), handled, narrowing


def _fused_kv_alias(node: Node, out_b: list[float], in_b: tuple[float, ...]) -> None:
    """A fused attention updates its KV cache in place too: find the body ``Attention``'s
    ``past_*`` inputs and ``present_*`` outputs through conversions, and write only new rows."""
    body = node.body
    att = next((n for n in body if n.op == "Attention"), None)
    if att is None:
        return
    in_index = {id(v): i for i, v in enumerate(body.inputs)}
    out_index = {id(v): i for i, v in enumerate(body.outputs)}
    for out_i, in_i in ((1, 4), (2, 5)):
        if out_i >= len(att.outputs) or in_i >= len(att.inputs) or att.inputs[in_i] is None:
            continue
        src = att.inputs[in_i]
        while src.producer is not None and src.producer.op in _CONVERT_OPS and src.producer.inputs[0] is not None:
            src = src.producer.inputs[0]
        dst = att.outputs[out_i]
        while id(dst) not in out_index and len(dst.uses) == 1 and dst.uses[0][0].op in _CONVERT_OPS:
            dst = dst.uses[0][0].outputs[0]
        i, o = in_index.get(id(src)), out_index.get(id(dst))
        if i is not None and o is not None and o < len(out_b):
            out_b[o] = max(0.0, out_b[o] - in_b[i])


def _trace_operand(v: Value, is_input: Mapping[int, int]) -> tuple[list[Node], Value, str]:
    """Walk back from a MatMul operand through single-use element-wise conversion ops.

    Returns the prologue nodes, the value the chain starts from (a body input, a constant, or
    another computation's result) and the narrowest dtype seen on the way.
    """
    nodes: list[Node] = []
    narrow = v.type.dtype.name
    cur = v
    while cur.producer is not None and cur.producer.op in _PROLOGUE_OPS and len(cur.uses) <= 1:
        p = cur.producer
        if p.inputs[0] is None:
            break
        nodes.append(p)
        cur = p.inputs[0]
        if bits(cur.type.dtype.name) < bits(narrow):
            narrow = cur.type.dtype.name
    return nodes, cur, narrow


# --------------------------------------------------------------------------- caching
_CACHE: dict = {}
_CACHE_LIMIT = 8192


#: id(node) -> (node, its work key) while a ``known_keys`` block runs (an analysis of a graph
#: nobody edits meanwhile): the tensor-parallel analysis and the plans ask for the same keys again
_KNOWN: dict[int, tuple[Node, Any]] | None = None


@contextlib.contextmanager
def known_keys(nodes, keys):
    """Within the block, ``work_key(node)`` of these ``nodes`` is the given key (computed once;
    the graph must not be edited inside the block)."""
    global _KNOWN
    outer = _KNOWN
    _KNOWN = {id(n): (n, k) for n, k in zip(nodes, keys)}
    try:
        yield
    finally:
        _KNOWN = outer


def work_key(node: Node):
    """A hashable key of everything ``node_work`` reads but the node's name and layer (None when
    some attribute is not hashable). Nodes of the 126 identical layers of a 405B model share one."""
    if _KNOWN is not None:
        hit = _KNOWN.get(id(node))
        if hit is not None and hit[0] is node:
            return hit[1]
    try:
        ins = tuple((v.type, v.const) if v is not None else None for v in node.inputs)
        outs = tuple(v.type for v in node.outputs)
        attrs = _attrs_key(node, skip="label" if node.op == "Fused" else "")
        tile = repr(node.meta["tile"]) if "tile" in node.meta else None
        body = _body_key(node.body) if node.body is not None else None
        key = (node.op, ins, outs, attrs, tile, body)
        hash(key)
        return key
    except TypeError:
        return None


def _attrs_key(node: Node, skip: str = "") -> tuple:
    """The attributes by content: an array is keyed by its bytes (a digest when large), never by
    ``id()``, which a later array may reuse after this one is collected. ``skip``: an attribute
    the work does not depend on (a Fused kernel's ``label``, its layer's name: twin layers share
    one work, whose ``detail["label"]`` is then one of theirs, as its name is)."""
    def value(v):
        if not hasattr(v, "tobytes"):
            return v
        data = v.tobytes()
        return v.dtype.str, v.shape, data if len(data) <= 256 else hashlib.blake2b(data).digest()
    return tuple(sorted((k, value(v)) for k, v in node.attrs.items() if k != skip))


def _body_key(body):
    index = {id(v): i for i, v in enumerate(body.inputs)}
    items = []
    for n in body:
        ins = tuple((index.get(id(v)), v.type, v.const, None if v.data is None else v.data.tobytes())
                    if v is not None else None for v in n.inputs)
        for v in n.outputs:
            index[id(v)] = len(index)
        items.append((n.op, ins, tuple(v.type for v in n.outputs),
                      _attrs_key(n)))
    outs = tuple(index.get(id(v)) for v in body.outputs)
    return tuple(items), outs


def shared_work(node: Node, key=None) -> NodeWork:
    """``node_work(node)``, shared between nodes with the same ``work_key`` (read-only: its
    ``name`` and ``layer`` may be another such node's)."""
    key = work_key(node) if key is None else key
    if key is None:
        return node_work(node)
    hit = _CACHE.get(key)
    if hit is None:
        if len(_CACHE) >= _CACHE_LIMIT:
            _CACHE.clear()
        hit = _CACHE[key] = node_work(node)
    return hit


def microbatch_work(w: NodeWork, k: int, const: tuple[bool, ...] = (), *, rows: bool = False) -> NodeWork:
    """``w`` for one of ``k`` micro-batches of the step's sequences: rows of a shared weight (m)
    or per-sequence products (attention's batch), vector work and activation / KV-cache bytes
    divide by ``k``; weights (inputs flagged in ``const``, else ``weight_bytes``) do not, since
    every micro-batch reads them again. ``rows``: the micro-batches are chunks of the tokens (a
    prompt streamed in chunks), so attention splits its queries (m), every head in every chunk."""
    if k <= 1:
        return w
    cs = tuple(c.split("batch" if not rows and not c.b_weight and c.batch % k == 0 else "m", k)
               for c in w.contractions)
    if const and len(const) == len(w.in_bytes):
        ins = tuple(b if c else b / k for b, c in zip(w.in_bytes, const))
    else:
        act = max(0.0, sum(w.in_bytes) - w.weight_bytes)
        ins = (w.weight_bytes + act / k,) if w.in_bytes else ()
    traffic = {lv: v / k for lv, v in w.traffic.items()} if w.traffic is not None else None
    return replace(w, contractions=cs, vector_flops=w.vector_flops / k, converts=w.converts / k, in_bytes=ins,
                   out_bytes=tuple(b / k for b in w.out_bytes), extra_bytes=w.extra_bytes / k, traffic=traffic,
                   cold_bytes=w.weight_bytes + max(0.0, w.cold_bytes - w.weight_bytes) / k, flops=w.flops / k)
