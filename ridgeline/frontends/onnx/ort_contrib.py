"""Fused ops as onnxruntime's ``com.microsoft`` contrib ops (``save_onnx(..., emit="ort-contrib")``).

Below opset 23 the standard ``Attention``/``RotaryEmbedding``/``Gelu`` do not exist; the default
export writes them as model-local functions, which onnxruntime inlines back into the slow
decomposition. For onnxruntime the exporter can instead write the contrib ops onnxruntime documents
(``docs/ContribOperators.md``), only where they compute exactly the same thing:

* ``Attention`` (no softcap/windows) → ``MultiHeadAttention``: Q ``(B, S, Hq·D)``, K/V
  ``(B, L, H·D)``, past/present ``(B, H, P(+L), D)`` (BNSH), the mask and a causal flag as
  ``attention_bias`` ``(B|1, H|1, S, P+L)`` (-inf, and false in boolean masks, as the lowest
  float; 4-D Q/K/V transposed to that layout and back). With fewer KV heads than query heads (GQA/MQA) the present K/V are concatenated in standard ops and each KV head repeated
  for its query group, then passed as 4-D BNSH key/value (MultiHeadAttention's cross-attention
  form). ``GroupQueryAttention`` is not used: it is causal by construction and masks through
  ``seqlens_k`` (right padding), which is not an arbitrary additive mask.
* ``RotaryEmbedding`` → com.microsoft ``RotaryEmbedding(input, position_ids, cos_cache, sin_cache)``,
  whose caches are ``(max_pos, R/2)`` tables indexed by ``position_ids (B, S)``. Tables already
  gathered per position (``(B|1, S, R/2)``, no position ids) are flattened to ``(B·S, R/2)`` and
  indexed by ``b·S + s``.
* ``Gelu`` → com.microsoft ``Gelu`` (erf) or ``FastGelu`` (tanh); the formulas are the same.
* ``RMSNormalization`` over the last axis of ``Add(a, b)`` (same shapes, 3-D) →
  ``SkipSimplifiedLayerNormalization(a, b, scale)``, whose fourth output is the sum (other readers
  of the ``Add`` read it). A lone RMSNormalization keeps its function, written in the spelling
  onnxruntime's own SimplifiedLayerNormFusion recognizes (see lowering.py).

Anything else keeps the standard-op function, and :attr:`ContribLowering.fallbacks` says why.
:func:`to_standard` maps the contrib ops back to standard ops for the importer, so a file written
this way (or by onnxruntime's optimizer, for these ops) loads again.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from ...ir import Node
from ...ir import dims as D
from .lowering import attention_beyond_sdpa

__all__ = ["CONTRIB_DOMAIN", "EMIT_CHOICES", "ContribImportError", "ContribLowering", "is_contrib", "to_standard"]

CONTRIB_DOMAIN = "com.microsoft"
#: what ``save_onnx(emit=...)`` / ``opt --emit`` accept: standard ops and ridgeline.std functions,
#: or onnxruntime's contrib ops where exact
EMIT_CHOICES = ("std", "ort-contrib")


class _Nodes:
    """Helper nodes with names derived from one node's output (unique per exported node)."""

    def __init__(self, base: str, tag: str = "ct"):
        self.base, self.tag, self.k, self.nodes = base, tag, 0, []

    def fresh(self) -> str:
        self.k += 1
        return f"{self.base}__{self.tag}{self.k}"

    def __call__(self, op: str, *ins: str, out: str | None = None, domain: str = "", **attrs) -> str:
        name = out or self.fresh()
        self.nodes.append(helper.make_node(op, list(ins), [name], domain=domain or None, **attrs))
        return name

    def const(self, values, dtype=TensorProto.INT64, scalar: bool = False) -> str:
        vals = list(values) if isinstance(values, (list, tuple)) else [values]
        return self("Constant", value=helper.make_tensor("c", dtype, [] if scalar else [len(vals)], vals))

    def shape(self, x: str, start: int, end: int) -> str:
        return self("Shape", x, start=start, end=end)


def _f32(v) -> bool:
    return v is not None and v.type.dtype.name == "f32"


def _live_beyond(v, reader) -> bool:
    """Read by something other than ``reader`` (or returned)."""
    return any(u is not reader for u in v.users)   # the return node reads graph outputs


def _live(v) -> bool:
    """Read by a node or returned by the graph."""
    return v is not None and bool(v.uses)   # graph outputs are uses


class ContribLowering:
    """Rewrites fused ops of one exported graph as contrib ops; records why any node was not."""

    def __init__(self):
        self.fallbacks: list[str] = []
        self.used = False
        self._shared: dict = {}
        self._absorbed: set[int] = set()  # ids of norms written with their Add as one Skip* node

    # -- the exporter's hooks ------------------------------------------------------------------
    def plan(self, nodes) -> dict[int, Node]:
        """Add nodes to write as the Skip form of the RMS norm reading them: ``{id(add): norm}``."""
        plan: dict[int, Node] = {}
        for n in nodes:
            add = self._skip_add(n)
            if add is not None and id(add) not in plan:  # two norms of one sum: the first takes it
                plan[id(add)] = n
                self._absorbed.add(id(n))
        return plan

    def absorbed(self, n: Node) -> bool:
        """True for a norm already written as part of a Skip*Normalization."""
        return id(n) in self._absorbed

    def lower(self, n: Node, proto: onnx.NodeProto) -> list[onnx.NodeProto] | None:
        """``n`` as contrib-op nodes, or None (and a reason in :attr:`fallbacks`)."""
        fn = {"Attention": self._attention, "RotaryEmbedding": self._rotary, "Gelu": self._gelu}.get(n.op)
        if fn is None:
            return None
        why = None if all(_f32(v) for v in n.inputs[:1]) else f"{n.inputs[0].type.dtype} (float32 only)"
        out = fn(n, proto) if why is None else why
        if isinstance(out, str):
            self.fallbacks.append(f"{n.op} {n.name or n.outputs[0].name}: {out}; kept as a ridgeline.std function")
            return None
        self.used = True
        return out

    def skip_norm(self, add: Node, norm: Node) -> list[onnx.NodeProto]:
        """``norm(add(a, b))`` as one SkipSimplifiedLayerNormalization (written at the Add's place)."""
        a, b = add.inputs
        eps = norm.attr("epsilon")
        outs = [norm.outputs[0].name, "", "", add.outputs[0].name if _live_beyond(add.outputs[0], norm) else ""]
        while not outs[-1]:
            outs.pop()
        self.used = True
        return [helper.make_node("SkipSimplifiedLayerNormalization", [a.name, b.name, norm.inputs[1].name], outs,
                                 domain=CONTRIB_DOMAIN, name=norm.name or None,
                                 epsilon=float(eps if eps is not None else 1e-5))]

    # -- the rules -----------------------------------------------------------------------------
    @staticmethod
    def _skip_add(n: Node) -> Node | None:
        if n.op != "RMSNormalization" or not _f32(n.inputs[0]) or len(n.outputs) > 1:
            return None
        x, scale = n.inputs[0], n.inputs[1]
        rank = x.type.rank
        if rank != 3 or n.attr("axis") % rank != rank - 1 or n.attr("stash_type") not in (None, 1):
            return None
        add = x.producer
        if add is None or add.op != "Add" or scale.producer is not None or scale.type.rank != 1 or not _f32(scale):
            return None
        a, b = add.inputs
        if a.type != b.type or a.type != x.type:  # no broadcasting: Skip* wants equal shapes
            return None
        return add

    def _attention(self, n: Node, proto: onnx.NodeProto) -> list[onnx.NodeProto] | str:
        q, k, v = n.inputs[:3]
        mask = n.inputs[3] if len(n.inputs) > 3 else None
        pk = n.inputs[4] if len(n.inputs) > 4 else None
        pv = n.inputs[5] if len(n.inputs) > 5 else None
        four = q.type.rank == 4
        beyond = attention_beyond_sdpa(n)
        if beyond:
            return f"{beyond} (MultiHeadAttention has no exact equivalent)"
        if len(n.outputs) > 3 and _live(n.outputs[3]):
            return "its qk output is read"
        if not all(_f32(x) for x in (q, k, v)) or (mask is not None and mask.type.dtype.name not in ("f32", "bool")):
            return "a dtype other than float32"
        if four:  # (B, H, S, D): heads from the shapes; MultiHeadAttention's query is (B, S, H·D)
            hq, hkv, dk, dv, sq, skv = q.type.shape[1], k.type.shape[1], k.type.shape[3], v.type.shape[3], \
                q.type.shape[2], k.type.shape[2]
            if not all(isinstance(x, int) for x in (hq, hkv, dv)):
                return "4-D Q/K/V with a symbolic head count or size"
        else:
            hq, hkv = int(n.attr("q_num_heads")), int(n.attr("kv_num_heads"))
            dk, dv = D.floordiv(k.type.shape[2], hkv), D.floordiv(v.type.shape[2], hkv)
            sq, skv = q.type.shape[1], k.type.shape[1]
        if hq % hkv:
            return f"{hq} query heads for {hkv} KV heads"
        b = _Nodes(n.outputs[0].name)
        scale = n.attr("scale")
        attrs = {"num_heads": hq}
        if scale is not None:
            attrs["scale"] = float(scale)
        q3 = b("Reshape", b("Transpose", q.name, perm=[0, 2, 1, 3]), b.const([0, 0, -1])) if four else q.name
        total = D.add(pk.type.shape[2], skv) if pk is not None else skv
        if mask is not None and isinstance(mask.type.shape[-1], int) and isinstance(total, int) \
                and mask.type.shape[-1] not in (1, total):  # the IR pads such a mask with "masked"
            return "a mask shorter than the keys"
        bias = ""
        if mask is not None or n.attr("is_causal"):
            bias = self._bias(b, mask, (q3, sq), (k.name, 2 if four else 1), pk, total, bool(n.attr("is_causal")))
        present = [o.name if _live(o) else "" for o in n.outputs[1:3]] + ["", ""]
        y = b.fresh() if four else n.outputs[0].name  # the (B, S, H·Dv) result
        if hq == hkv and not four:  # MultiHeadAttention's own KV cache (BNSH past and present)
            ins = [q3, k.name, v.name, "", "", bias, pk.name if pk is not None else "",
                   pv.name if pv is not None else ""]
            outs = [y] + present[:2]
        else:  # present K/V in standard ops; with GQA each KV head repeated for its query group
            if not (isinstance(dk, int) and isinstance(dv, int)):
                return "a symbolic head size with fewer KV heads than query heads"
            keys = []
            for x, past, d, out in ((k, pk, dk, present[0]), (v, pv, dv, present[1])):
                if four:
                    bnsh = x.name
                else:
                    bnsh = b("Transpose", b("Reshape", x.name, b.const([0, 0, hkv, d])), perm=[0, 2, 1, 3],
                             out=None if past is not None else (out or None))
                if past is not None:
                    full = b("Concat", past.name, bnsh, axis=2, out=out or None)
                else:
                    full = bnsh if bnsh != x.name or not out else b("Identity", bnsh, out=out)
                if hq != hkv:
                    rep = b("Expand", b("Unsqueeze", full, b.const([2])), b.const([1, 1, hq // hkv, 1, 1]))
                    full = b("Reshape", rep, b.const([0, hq, -1, d]))
                keys.append(full)
            ins = [q3, keys[0], keys[1], "", "", bias]
            outs = [y]
        while ins and not ins[-1]:
            ins.pop()
        while outs and not outs[-1]:
            outs.pop()
        b.nodes.append(helper.make_node("MultiHeadAttention", ins, outs, domain=CONTRIB_DOMAIN,
                                        name=proto.name or None, **attrs))
        if four:  # back to (B, H, S, Dv)
            b("Transpose", b("Reshape", y, b.const([0, 0, hq, dv])), perm=[0, 2, 1, 3], out=n.outputs[0].name)
        return b.nodes

    def _bias(self, b: _Nodes, mask, q: tuple, k: tuple, pk, total, causal: bool) -> str:
        """The mask (and the causal frontier) as MultiHeadAttention's ``attention_bias``: float, 4-D,
        (B|1, H|1, S, T) exactly (``q``: the 3-D query's name and its length S; ``k``: the key's name
        and its length axis)."""
        (qname, sq), (kname, kaxis) = q, k
        key = ("bias", mask.name if mask is not None else None, str(sq), str(total), causal,
               str(pk.type.shape[2]) if pk is not None else None)
        if key in self._shared:
            return self._shared[key]
        # -inf becomes the lowest float: a masked key still gets weight exp(lowest - max) = 0, and a
        # query that sees no key gets finite weights instead of NaN (whose NaN output would reach
        # the unmasked rows of the next layer through its K/V); the IR leaves such rows arbitrary
        lowest = b.const(float(np.finfo(np.float32).min), TensorProto.FLOAT, scalar=True)
        zero = b.const(0.0, TensorProto.FLOAT, scalar=True)
        t = b.shape(kname, kaxis, kaxis + 1)
        if pk is not None:
            t = b("Add", b.shape(pk.name, 2, 3), t)
        m = None
        if mask is not None:
            if mask.type.dtype.name == "bool":  # ONNX Attention: a false entry adds -inf
                m = b("Where", mask.name, zero, lowest)
            else:
                m = b("Max", mask.name, lowest)
            shape = mask.type.shape
            if len(shape) < 4:  # right-aligned broadcasting: prepend ones
                m = b("Unsqueeze", m, b.const(list(range(4 - len(shape)))))
                shape = (1,) * (4 - len(shape)) + tuple(shape)
            if shape[2] != sq or shape[3] != total:  # broadcast rows/columns written out
                m = b("Expand", m, b("Concat", b.const([1, 1]), b.shape(qname, 1, 2), t, axis=0))
        if causal:  # key j visible to query i when j <= i + past (bottom-right with a KV cache)
            def scalar(x):
                return b("Squeeze", x, b.const([0]))
            first = scalar(b.shape(pk.name, 2, 3)) if pk is not None else b.const(0, scalar=True)
            one = b.const(1, scalar=True)
            rows = b("Range", first, b("Add", first, scalar(b.shape(qname, 1, 2))), one)
            cols = b("Range", b.const(0, scalar=True), scalar(t), one)
            seen = b("LessOrEqual", b("Unsqueeze", cols, b.const([0])), b("Unsqueeze", rows, b.const([1])))
            seen = b("Unsqueeze", seen, b.const([0, 1]))
            m = b("Where", seen, m if m is not None else zero, lowest)
        self._shared[key] = m
        return m

    def _rotary(self, n: Node, proto: onnx.NodeProto) -> list[onnx.NodeProto] | str:
        x, cos, sin = n.inputs[:3]
        pos = n.inputs[3] if len(n.inputs) > 3 else None
        if not (_f32(cos) and _f32(sin)):
            return "a dtype other than float32"
        half = cos.type.shape[-1]
        if not isinstance(half, int):
            return "a symbolic rotary width"
        four = x.type.rank == 4
        heads = x.type.shape[1] if four else n.attr("num_heads")
        head = x.type.shape[3] if four else D.floordiv(x.type.shape[2], heads)
        attrs = {"interleaved": int(n.attr("interleaved") or 0)}
        if not four or 2 * half != head:
            if not isinstance(heads, int):
                return "a symbolic head count with partial rotation"
            attrs["num_heads"] = heads
        if 2 * half != head:
            attrs["rotary_embedding_dim"] = 2 * half
        b = _Nodes(n.outputs[0].name)
        if pos is not None:
            if cos.type.rank != 2:
                return "position ids with caches that are not 2-D"
            ins = [x.name, pos.name, cos.name, sin.name]
        else:
            if cos.type.rank != 3:
                return f"{cos.type.rank}-D cos/sin without position ids"
            ins = [x.name] + self._positions(b, x, cos, sin, half)
        b.nodes.append(helper.make_node("RotaryEmbedding", ins, [n.outputs[0].name], domain=CONTRIB_DOMAIN,
                                        name=proto.name or None, **attrs))
        return b.nodes

    def _positions(self, b: _Nodes, x, cos, sin, half: int) -> list[str]:
        """``[position_ids, cos, sin]`` for per-position tables ``(B|1, S, R/2)``: the tables as
        ``(B·S, R/2)`` rows and ids ``b·S + s`` (expanded to x's batch); shared by every RoPE node."""
        key = ("rope", cos.name, sin.name, str(x.type.shape[0]))
        if key in self._shared:
            return list(self._shared[key])
        flat = b.const([-1, half])
        rows = b.shape(cos.name, 0, 2)
        ids = b("Reshape", b("Range", b.const(0, scalar=True), b("ReduceProd", rows, keepdims=0),
                             b.const(1, scalar=True)), rows)
        if cos.type.shape[0] != x.type.shape[0]:  # tables shared by the batch: every row reads row s
            ids = b("Expand", ids, b("Concat", b.shape(x.name, 0, 1), b.shape(cos.name, 1, 2), axis=0))
        out = [ids, b("Reshape", cos.name, flat), b("Reshape", sin.name, flat)]
        self._shared[key] = tuple(out)
        return out

    @staticmethod
    def _gelu(n: Node, proto: onnx.NodeProto) -> list[onnx.NodeProto] | str:
        op = {None: "Gelu", "none": "Gelu", "tanh": "FastGelu"}.get(n.attr("approximate"))
        if op is None:
            return f"approximate={n.attr('approximate')!r}"
        return [helper.make_node(op, [n.inputs[0].name], [n.outputs[0].name], domain=CONTRIB_DOMAIN,
                                 name=proto.name or None)]


# -- import: contrib ops back to standard ops ------------------------------------------------------

#: the contrib ops :func:`to_standard` reads back (domain, op)
READABLE = {(CONTRIB_DOMAIN, op) for op in ("MultiHeadAttention", "RotaryEmbedding", "Gelu", "FastGelu", "BiasGelu",
                                            "SkipLayerNormalization", "SkipSimplifiedLayerNormalization")}
READABLE |= {("", "SimplifiedLayerNormalization")}


def is_contrib(n: onnx.NodeProto) -> bool:
    """True for a node :func:`to_standard` rewrites."""
    return ((n.domain or "") if n.domain != "ai.onnx" else "", n.op_type) in READABLE


class ContribImportError(ValueError):
    """A contrib op in a case ridgeline does not read (the message names it)."""


def to_standard(n: onnx.NodeProto, rank_of) -> list[onnx.NodeProto]:
    """Standard-op nodes (opset 23 ops) computing contrib node ``n``; ``rank_of(name)`` gives an
    input's rank. Raises :class:`ContribImportError` for a case without an exact translation."""
    attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
    ins = list(n.input) + [""] * 12
    outs = list(n.output)
    b = _Nodes(outs[0], "std")  # not the exporter's "ct": a file's value_info may name those
    op = n.op_type

    def unused(*idx):
        for i in idx:
            if i < len(outs) and outs[i]:
                raise ContribImportError(f"{op}: output {i} ({outs[i]!r}) is not supported")

    if op in ("Gelu", "FastGelu", "BiasGelu"):
        x = ins[0]
        if ins[1]:
            x = b("Add", x, ins[1])
        b("Gelu", x, out=outs[0], **({"approximate": "tanh"} if op == "FastGelu" else {}))
    elif op == "SimplifiedLayerNormalization":
        unused(1)
        b("RMSNormalization", ins[0], ins[1], out=outs[0], axis=int(attrs.get("axis", -1)),
          epsilon=float(attrs.get("epsilon", 1e-5)), stash_type=int(attrs.get("stash_type", 1)))
    elif op in ("SkipLayerNormalization", "SkipSimplifiedLayerNormalization"):
        unused(1, 2)
        simple = op == "SkipSimplifiedLayerNormalization"
        bias = ins[3] if simple else ins[4]
        s = b("Add", ins[0], ins[1], out=None if bias or len(outs) < 4 or not outs[3] else outs[3])
        if bias:
            s = b("Add", s, bias, out=outs[3] if len(outs) > 3 and outs[3] else None)
        eps = float(attrs.get("epsilon", 1e-12 if not simple else 1e-5))
        if simple:
            b("RMSNormalization", s, ins[2], out=outs[0], axis=-1, epsilon=eps)
        else:
            b("LayerNormalization", *([s, ins[2]] + ([ins[3]] if ins[3] else [])), out=outs[0], axis=-1, epsilon=eps)
    elif op == "RotaryEmbedding":
        if attrs.get("is_packed_batching", 0) or attrs.get("scale", 1.0) != 1.0:
            raise ContribImportError("RotaryEmbedding: is_packed_batching and scale are not supported")
        if rank_of(ins[1]) != 2:
            raise ContribImportError("RotaryEmbedding: position_ids must be (batch, seq)")
        keep = {k: int(v) for k, v in attrs.items() if k in ("interleaved", "num_heads", "rotary_embedding_dim")}
        if rank_of(ins[0]) == 3 and not keep.get("num_heads"):  # full rotation: heads from the cache width
            raise ContribImportError("RotaryEmbedding: 3-D input without num_heads is not supported")
        b("RotaryEmbedding", ins[0], ins[2], ins[3], ins[1], out=outs[0], **keep)
    elif op == "MultiHeadAttention":
        _mha(b, ins, outs, attrs, rank_of, unused)
    else:  # pragma: no cover - is_contrib guards the call
        raise ContribImportError(f"{n.domain}.{op} is not read")
    return b.nodes


def _mha(b: _Nodes, ins, outs, attrs, rank_of, unused) -> None:
    q, k, v, bias, kpm, ab, pk, pv = ins[:8]
    unused(3)
    if bias or kpm or ins[8] or ins[9] or attrs.get("unidirectional", 0):
        raise ContribImportError("MultiHeadAttention: bias, key_padding_mask, past_sequence_length, "
                                 "cache_indirection and unidirectional are not supported")
    if not k or rank_of(q) != 3:
        raise ContribImportError("MultiHeadAttention: packed QKV/KV inputs are not supported")
    h = int(attrs["num_heads"])
    if rank_of(k) == 4:  # BNSH key/value (cross-attention form) as (B, L, H·D)
        if pk:
            raise ContribImportError("MultiHeadAttention: 4-D key with past_key is not supported")
        k, v = (b("Reshape", b("Transpose", x, perm=[0, 2, 1, 3]), b.const([0, 0, -1])) for x in (k, v))
    extra = {"scale": float(attrs["scale"])} if attrs.get("scale") else {}
    names = [outs[0]] + [outs[i] if i < len(outs) and outs[i] else "" for i in (1, 2)]
    while names and not names[-1]:
        names.pop()
    b.nodes.append(helper.make_node("Attention", [q, k, v, ab, pk, pv][:6 if pk else (4 if ab else 3)], names,
                                    q_num_heads=h, kv_num_heads=h, **extra))

