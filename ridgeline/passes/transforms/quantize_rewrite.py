"""The graph edits of ``quantize``: quantized GEMMs, activation quantizers, a narrow KV cache.

Every quantized kernel is a ``Fused`` node whose body is standard ONNX (``save_onnx`` writes it as
a model-local function that onnxruntime runs, and fuses, as it does QDQ models):

* ``dequant-matmul`` (weight-only)::

      w = DequantizeLinear(qweight, scales, axis, block_size)   # per channel, or blocked over K
      y = MatMul(x, w)  [+ the node's epilogue: bias, activation, residual]

* ``quant-matmul`` (W8A8)::

      a = DequantizeLinear(xq, x_scale, axis=-1, block_size=K)  # one scale per token (dynamic)
      w = DequantizeLinear(qweight, scales, axis)               # one scale per output channel
      y = MatMul(a, w)

  fed by a ``dynamic-quantize`` node per activation (``|x|`` → ReduceMax over the row → ÷ qmax →
  blocked QuantizeLinear), or by one ``QuantizeLinear`` with a calibrated per-tensor scale.

* ``attention`` with a narrow KV cache: ``DequantizeLinear`` of the cached keys/values (one
  scale per KV head), ``Attention``, ``QuantizeLinear`` of the updated cache.

The cost models read these bodies as they read the presets': narrow operands are what memory
serves, the dequantization is a per-tile prologue, and both operands narrow run the multiply narrow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...ir import Graph, Node, Value
from ...ir.dtypes import DTYPES
from ...ir.types import TensorType
from .quantize_schemes import (
    NF4_CODEBOOK,
    QMAX,
    block_amax,
    fit_scales,
    fit_weight,
    quantize_array,
    quantize_min,
    quantize_nf4,
    scale_for,
    stored_layout,
)

__all__ = [
    "Candidate",
    "QuantizedWeight",
    "add_dynamic_quantizer",
    "add_static_quantizer",
    "find_candidates",
    "quantize_weight",
    "rewrite_attention_kv",
    "rewrite_matmul",
]

_CONSUMER_OPS = ("MatMul", "Gemm")
#: readers of a value that only look at its shape (its dtype may change under them)
_SHAPE_ONLY = frozenset({"Shape", "Size"})


@dataclass
class Candidate:
    """A GEMM whose B operand is a 2-D constant weight: the node, the MatMul/Gemm computing it
    (the node itself, or the one in its fused body), the outer activation and weight values."""

    node: Node
    mm: Node
    x_index: int             # the node's input feeding A (read live: earlier rewrites replace values)
    w: Value                 # the outer constant weight
    k_axis: int              # the weight's input-channel axis

    @property
    def x(self) -> Value:
        return self.node.inputs[self.x_index]

    @property
    def k(self) -> int:
        return int(self.w.type.shape[self.k_axis])

    @property
    def n(self) -> int:
        return int(self.w.type.shape[1 - self.k_axis])

    @property
    def label(self) -> str:
        return self.node.outputs[0].name


def _weight_axis(mm: Node) -> int:
    return 1 if mm.op == "Gemm" and mm.attr("transB") else 0


def find_candidates(graph: Graph) -> tuple[list[Candidate], list[str]]:
    """The GEMMs with a constant 2-D weight, and why others were left alone."""
    out: list[Candidate] = []
    skipped: list[str] = []
    for node in graph:
        if node.meta.get("quantize") == "rotation":     # x·R of quantize{rotate}: full precision
            continue
        if node.op in _CONSUMER_OPS:
            mm, ia, x, w = node, 0, node.inputs[0], node.inputs[1]
        elif node.op == "Fused" and node.body is not None and node.attr("kind") == "matmul-epilogue":
            mms = [n for n in node.body if n.op in _CONSUMER_OPS]
            if len(mms) != 1:
                continue
            mm = mms[0]
            index = {id(v): i for i, v in enumerate(node.body.inputs)}
            ia, ib = index.get(id(mm.inputs[0])), index.get(id(mm.inputs[1]))
            if ia is None or ib is None:
                continue
            bx, bw = mm.inputs[0], mm.inputs[1]
            x, w = node.inputs[ia], node.inputs[ib]
            if len(bw.uses) != 1 or len(bx.uses) != 1:
                skipped.append(f"%{node.outputs[0].name}: its operands are used by the epilogue too")
                continue
        else:
            continue
        if mm.op == "Gemm" and mm.attr("transA"):
            skipped.append(f"%{node.outputs[0].name}: Gemm with transA")
            continue
        if w is not None and not w.const and x is not None and _computed_from_constants(w):
            skipped.append(f"%{node.outputs[0].name}: its weight %{w.name} is computed from constants by "
                           f"{w.producer.op}, not stored; fold it first: -p 'default,quantize{{...}}'")
            continue
        if w is None or not w.const or w.type.rank != 2 or x is None:
            continue
        if not all(isinstance(d, int) for d in w.type.shape):
            continue
        if w.type.dtype.name not in ("f32", "f16", "bf16"):
            continue
        others = [u for u, _ in w.uses if u is not node and not u.is_return]
        if others:
            skipped.append(f"%{node.outputs[0].name}: weight %{w.name} is also read by {others[0].op} (tied); "
                           f"kept in {w.type.dtype.name}")
            continue
        out.append(Candidate(node, mm, ia, w, _weight_axis(mm)))
    return out, skipped


def _computed_from_constants(v: Value, depth: int = 8) -> bool:
    """Whether ``v`` is a node output computed from constants only (a raw export's
    ``Transpose(weight)`` or ``Cast(weight)``, which ``fold-constants`` turns into a constant)."""
    p = v.producer
    if p is None or depth == 0 or p.op == "Fused" or not p.inputs:
        return False
    return all(i is None or i.const or _computed_from_constants(i, depth - 1) for i in p.inputs)


# --------------------------------------------------------------------------- weights
@dataclass
class QuantizedWeight:
    """The constants standing for a float weight and how the kernel turns them back into it:
    ``DequantizeLinear(q, scale[, zero_point], **attrs)``, or for NF4 (``codebook``) a lookup
    ``codebook[q] · scale`` with the blocked scale gathered along K (``group_index``)."""

    q: Value
    scale: Value
    attrs: dict
    zero_point: Value | None = None
    codebook: np.ndarray | None = None
    group_index: np.ndarray | None = None
    minimum: Value | None = None


def quantize_weight(graph: Graph, c: Candidate, scheme, data: np.ndarray | None = None,
                    params: tuple | None = None) -> QuantizedWeight:
    """New constants for ``c.w`` under ``scheme`` (a ``Scheme``): codes, scales, zero points.
    ``data``: the float weight to quantize instead of ``c.w``'s (calibrated methods scale or
    correct it first). Any group size works: a last group shorter than the others covers the
    remaining input channels (ONNX blocked quantization's ``ceil(K / block_size)`` scales).
    ``params``: fixed (scales, zero points) in the stored layout (GPTQ or ``clip=output`` chose them)."""
    w = c.w
    k_axis = c.k_axis
    n_axis = 1 - k_axis
    scale_dt = w.type.dtype
    dtype, group = scheme.weights, scheme.group
    blocked = bool(group) and group < c.k
    nf4 = dtype == "nf4"
    if scheme.per_tensor:
        attrs: dict = {}
        sshape: list = []
    elif blocked:
        attrs = {"axis": k_axis, "block_size": group}
        sshape = list(w.type.shape)
        sshape[k_axis] = -(-c.k // group)
    else:
        attrs = {"axis": n_axis}
        sshape = [c.n]
    if nf4:    # the lookup multiplies by a scale of the weight's rank (gathered along K when blocked)
        sshape = list(w.type.shape)
        sshape[k_axis] = -(-c.k // group) if blocked else 1
    block = group if blocked else 0
    axis = k_axis if blocked or nf4 else n_axis
    qdata = sdata = zdata = mdata = None
    src = w.data if data is None else data
    if src is not None:
        x = np.asarray(src, dtype=np.float64)
        if scheme.per_tensor:
            sdata = fit_scales(x.reshape(1, -1), dtype, 1, 0, scale_dt.np_dtype).reshape(())
            qdata = quantize_array(x, sdata, dtype, 0, 0)
        elif nf4:
            amax = block_amax(x, k_axis, block)                # codes span [-1, 1]: scale = max |x|
            sdata = np.where(amax > 0, amax, 1.0).astype(scale_dt.np_dtype)
            qdata = quantize_nf4(x, sdata, k_axis, block)
        else:
            if params is None:      # the scheme's own fit (its clip search on the rounding error)
                sc, zp = fit_weight(x, scheme, k_axis, block, scale_dt.np_dtype)          # keeps dims
                params = stored_layout(sc, zp, blocked)
            sdata, zdata = params
            sdata = np.asarray(sdata).astype(scale_dt.np_dtype)
            keep = sdata if blocked else np.expand_dims(sdata, k_axis)
            zk = None if zdata is None else (zdata if blocked else np.expand_dims(zdata, k_axis))
            if scheme.asym == "min":      # float offsets, added after DequantizeLinear
                mdata = np.asarray(zdata).astype(scale_dt.np_dtype)
                qdata = quantize_min(x, keep, np.asarray(zk).astype(scale_dt.np_dtype), dtype, k_axis, block)
                zdata = None
            else:
                qdata = quantize_array(x, keep, scheme.stored, k_axis, block, zk)
            if zdata is not None:
                zdata = np.asarray(zdata).astype(DTYPES[scheme.stored].np_dtype)
    qtype = TensorType(DTYPES[scheme.stored], tuple(w.type.shape))
    stype = TensorType(scale_dt, tuple(sshape))
    q = graph.add_constant(f"{w.name}.q", qdata, type=None if qdata is not None else qtype)
    sv = graph.add_constant(f"{w.name}.scale", sdata, type=None if sdata is not None else stype)
    if qdata is not None and q.type != qtype:     # ml_dtypes arrays infer their IR dtype; keep it exact
        q.type = qtype
    zv = None
    if scheme.asym == "min":    # a float minimum per group, added after DequantizeLinear
        mv = graph.add_constant(f"{w.name}.minimum", mdata, type=None if mdata is not None else stype)
        out = QuantizedWeight(q, sv, attrs, minimum=mv)
        out.group_index = (np.arange(c.k, dtype=np.int64) // group) if blocked else None
        return out
    if scheme.asym:
        ztype = TensorType(DTYPES[scheme.stored], tuple(sshape))
        zv = graph.add_constant(f"{w.name}.zero_point", zdata, type=None if zdata is not None else ztype)
        if zdata is not None and zv.type != ztype:
            zv.type = ztype
    out = QuantizedWeight(q, sv, attrs, zv)
    if nf4:
        out.attrs = {"axis": axis}
        out.codebook = NF4_CODEBOOK
        out.group_index = (np.arange(c.k, dtype=np.int64) // group) if blocked else None
    return out


def _new_body(c: Candidate, kind: str) -> tuple[Graph, Node]:
    """A copy of the node's body (or a one-node body for a plain MatMul/Gemm) and its product,
    body inputs in the order of the node's inputs."""
    if c.node.op == "Fused":
        body = c.node.body.copy()
        idx = next(i for i, n in enumerate(c.node.body) if n is c.mm)
        return body, body.nodes[idx]
    body = Graph(f"{kind.replace('-', '_')}_{c.label}")
    ins = [body.add_input(v.name, v.type) if v is not None else None for v in c.node.inputs]
    mm = body.add_node(c.mm.op, ins, c.mm.attrs, outputs=[v.type for v in c.mm.outputs])
    body.outputs = list(mm.outputs)
    return body, mm


def _dequantize_weight(graph: Graph, body: Graph, c: Candidate, qw: QuantizedWeight, before: Node
                       ) -> tuple[Node, Value, list[Value], list[Value]]:
    """The kernel's prologue turning ``qw`` back into the float weight; returns its first node,
    the weight, the new body inputs and the outer values bound to them."""
    wtype = TensorType(c.w.type.dtype, c.w.type.shape)
    outer = [qw.q, qw.scale] + ([qw.zero_point] if qw.zero_point is not None else [])
    extra = [qw.minimum] if qw.minimum is not None else []
    ins = [body.add_input(graph.fresh_name(v.name), v.type) for v in outer + extra]
    if qw.codebook is None:
        dq = body.add_node("DequantizeLinear", ins[:len(outer)], qw.attrs, before=before, outputs=[wtype])
        if qw.minimum is None:
            return dq, dq.outputs[0], ins, outer
        # scale and minimum: q · s + m, the minimum gathered along K when blocked
        m = ins[-1]
        if qw.group_index is not None:
            gidx = body.add_constant(graph.fresh_name("group_index"), qw.group_index)
            m = body.add_node("Gather", [m, gidx], {"axis": c.k_axis}, before=before).outputs[0]
        elif c.k_axis == 1:     # per output channel, the weight N × K: the minimum is a column
            m = body.add_node("Unsqueeze", [m, body.add_constant(graph.fresh_name("axes"), np.array([1]))],
                              before=before).outputs[0]
        w = body.add_node("Add", [dq.outputs[0], m], before=before, outputs=[wtype]).outputs[0]
        return dq, w, ins, outer + extra
    # NF4: codebook[q] · scale, the scale gathered along K when blocked (a short last group too)
    book = body.add_constant(graph.fresh_name("nf4_codebook"), qw.codebook.astype(c.w.type.dtype.np_dtype))
    idx = body.add_node("Cast", [ins[0]], {"to": "i32"}, before=before).outputs[0]
    first = idx.producer
    vals = body.add_node("Gather", [book, idx], {"axis": 0}, before=before).outputs[0]
    scale = ins[1]
    if qw.group_index is not None:
        gidx = body.add_constant(graph.fresh_name("group_index"), qw.group_index)
        scale = body.add_node("Gather", [scale, gidx], {"axis": c.k_axis}, before=before).outputs[0]
    w = body.add_node("Mul", [vals, scale], before=before, outputs=[wtype]).outputs[0]
    return first, w, ins, outer


def rewrite_matmul(graph: Graph, c: Candidate, qw: QuantizedWeight, *,
                   act: tuple[Value, Value, dict] | None = None) -> Node:
    """Replace ``c.node`` by a Fused quantized GEMM: the weight becomes DequantizeLinear(q, s[, z])
    (or NF4's lookup); with ``act`` = (xq, x_scale, attrs) the activation becomes
    DequantizeLinear(xq, x_scale) too."""
    kind = "quant-matmul" if act is not None else "dequant-matmul"
    body, mm = _new_body(c, kind)
    outer = list(c.node.inputs)
    # the weight: body input bound to c.w -> DequantizeLinear(qweight, scales[, zero points])
    wpos = next(i for i, v in enumerate(outer) if v is c.w)
    bw = body.inputs[wpos]
    dq, wv, w_ins, w_outer = _dequantize_weight(graph, body, c, qw, mm)
    mm.set_input(1, wv)
    new_inputs: list = []
    keep = []
    for i, (bv, ov) in enumerate(zip(body.inputs[:len(outer)], outer)):
        if i == wpos:
            continue
        keep.append(bv)
        new_inputs.append(ov)
    if act is not None:
        xq, xs, attrs = act
        xpos = c.x_index
        bx = body.inputs[xpos]
        bxq = body.add_input(graph.fresh_name(f"{c.x.name}.q"), xq.type)
        bxs = body.add_input(graph.fresh_name(f"{c.x.name}.scale"), xs.type)
        da = body.add_node("DequantizeLinear", [bxq, bxs], attrs, before=dq,
                           outputs=[TensorType(c.x.type.dtype, c.x.type.shape)])
        mm.set_input(0, da.outputs[0])
        if not bx.uses:
            k = keep.index(bx)
            keep.pop(k)
            new_inputs.pop(k)
        keep += [bxq, bxs]
        new_inputs += [xq, xs]
    keep += w_ins
    new_inputs += w_outer
    if bw.uses:   # pragma: no cover - find_candidates ensures the weight feeds only the product
        raise AssertionError("the weight is still used in the body")
    body.inputs = keep
    body._unregister(bw)      # the float weight is no longer an input of the kernel
    return _replace_node(graph, c.node, new_inputs, body, kind)


def _replace_node(graph: Graph, old: Node, inputs: list, body: Graph, kind: str) -> Node:
    names = [v.name for v in old.outputs]
    for v in old.outputs:
        v.name = graph.fresh_name(v.name + ".unquantized")
    meta = {k: v for k, v in old.meta.items() if k != "tile"}
    label = old.attr("label") if old.op == "Fused" and old.attr("label") else names[0]
    new = graph.add_node("Fused", inputs, {"kind": kind, "label": label}, outputs=[v.type for v in body.outputs],
                         names=names, body=body, meta=meta, before=old)
    for a, b in zip(old.outputs, new.outputs):
        a.replace_all_uses_with(b)
    graph.erase_node(old)
    return new


# --------------------------------------------------------------------------- activations
def add_dynamic_quantizer(graph: Graph, x: Value, dtype: str, before: Node) -> tuple[Value, Value, dict]:
    """A ``dynamic-quantize`` node: ``x`` quantized with one scale per row of its last axis
    (per token), computed at run time; returns (xq, scale, DequantizeLinear attributes)."""
    k = x.type.shape[-1]
    dt = x.type.dtype
    body = Graph(f"dynamic_quantize_{x.name}")
    bx = body.add_input("x", x.type)
    axes = body.add_constant("axes", np.array([-1], np.int64))
    qmax = body.add_constant("qmax", np.array(QMAX[dtype], dt.np_dtype))
    tiny = body.add_constant("tiny", np.array(_tiny(dt.np_dtype), dt.np_dtype))
    a = body.add_node("Abs", [bx]).outputs[0]
    m = body.add_node("ReduceMax", [a, axes], {"keepdims": 1}).outputs[0]
    s = body.add_node("Div", [m, qmax]).outputs[0]
    s = body.add_node("Max", [s, tiny]).outputs[0]
    attrs = {"axis": -1, "block_size": int(k)}
    q = body.add_node("QuantizeLinear", [bx, s], {**attrs, "output_dtype": dtype}).outputs[0]
    body.outputs = [q, s]
    meta = {"layer": before.meta["layer"]} if isinstance(before.meta.get("layer"), int) else None
    node = graph.add_node("Fused", [x], {"kind": "dynamic-quantize", "label": "quantize"},
                          outputs=[q.type, s.type], names=[f"{x.name}.q", f"{x.name}.scale"], body=body,
                          meta=meta, before=before)
    return node.outputs[0], node.outputs[1], attrs


def _tiny(dt: np.dtype) -> float:
    import ml_dtypes
    try:
        return float(ml_dtypes.finfo(dt).tiny)
    except ValueError:   # pragma: no cover - float types only
        return float(np.finfo(np.float32).tiny)


def add_static_quantizer(graph: Graph, x: Value, dtype: str, amax: float | None, before: Node
                         ) -> tuple[Value, Value, dict]:
    """One ``QuantizeLinear`` of ``x`` with a calibrated per-tensor scale (typed only without data)."""
    dt = x.type.dtype
    if amax is None:
        scale = graph.add_constant(f"{x.name}.scale", type=TensorType(dt, ()))
    else:
        scale = graph.add_constant(f"{x.name}.scale", scale_for(np.asarray(float(amax)), dtype, dt.np_dtype))
    meta = {"layer": before.meta["layer"]} if isinstance(before.meta.get("layer"), int) else None
    node = graph.add_node("QuantizeLinear", [x, scale], {"output_dtype": dtype}, names=[f"{x.name}.q"],
                          meta=meta, before=before)
    return node.outputs[0], scale, {}


# --------------------------------------------------------------------------- KV cache
def rewrite_attention_kv(graph: Graph, att: Node, dtype: str, amax: dict[int, np.ndarray | None]) -> Node | str:
    """Store ``att``'s KV cache in ``dtype``: the past inputs (graph inputs) become narrow and are
    dequantized in the kernel, the present outputs are quantized; one scale per KV head
    (``amax[1]``/``amax[2]``: calibrated ranges of present keys/values, or None: typed only)."""
    if len(att.outputs) < 3:
        return "it writes no KV cache (no present_key/present_value outputs)"
    if len(att.outputs) > 3:
        return "it also returns its score matrix"
    pk = att.inputs[4] if len(att.inputs) > 4 else None
    pv = att.inputs[5] if len(att.inputs) > 5 else None
    for v in (pk, pv):
        if v is not None and (not v.is_input or any(u is not att and u.op not in _SHAPE_ONLY for u, _ in v.uses)):
            return f"its past %{v.name} is not a graph input read only by this Attention"
    for v in att.outputs[1:3]:
        if not v.uses or not all(u.is_return for u, _ in v.uses):
            return f"its present %{v.name} is not only a graph output"
    heads = att.outputs[1].type.shape[1]
    if not isinstance(heads, int):
        return "the number of KV heads is symbolic"
    base = att.inputs[0].type.dtype
    scales = []
    for which in (1, 2):
        a = amax.get(which)
        name = f"{att.outputs[which].name}.scale"
        if a is None:
            scales.append(graph.add_constant(name, type=TensorType(base, (heads,))))
        else:
            scales.append(graph.add_constant(name, scale_for(np.asarray(a, np.float64).reshape(heads), dtype,
                                                             base.np_dtype)))
    narrow = DTYPES[dtype]
    body = Graph(f"attention_kv_{att.outputs[0].name}")
    q, k, v = (body.add_input(n, x.type) for n, x in zip("qkv", att.inputs[:3]))
    outer = list(att.inputs[:3])
    b_past = [None, None]
    if pk is not None:
        pk.type = TensorType(narrow, pk.type.shape)
        pv.type = TensorType(narrow, pv.type.shape)
        b_past = [body.add_input("past_key", pk.type), body.add_input("past_value", pv.type)]
        outer += [pk, pv]
    extra = [(i, x) for i, x in enumerate(att.inputs) if i == 3 or i >= 6]
    b_extra = {}
    for i, x in extra:
        if x is not None:
            b_extra[i] = body.add_input(f"in{i}", x.type)
            outer.append(x)
    bs = [body.add_input("key_scale", scales[0].type), body.add_input("value_scale", scales[1].type)]
    outer += scales
    wide = [None, None]
    if pk is not None:
        for j in (0, 1):
            wide[j] = body.add_node("DequantizeLinear", [b_past[j], bs[j]], {"axis": 1},
                                    outputs=[TensorType(base, b_past[j].type.shape)]).outputs[0]
    ins = [q, k, v, b_extra.get(3), wide[0], wide[1]] + [b_extra.get(i) for i in range(6, len(att.inputs))]
    while ins and ins[-1] is None:
        ins.pop()
    a2 = body.add_node("Attention", ins, att.attrs, outputs=[x.type for x in att.outputs])
    nk = body.add_node("QuantizeLinear", [a2.outputs[1], bs[0]], {"axis": 1, "output_dtype": dtype}).outputs[0]
    nv = body.add_node("QuantizeLinear", [a2.outputs[2], bs[1]], {"axis": 1, "output_dtype": dtype}).outputs[0]
    body.outputs = [a2.outputs[0], nk, nv]
    return _replace_node(graph, att, outer, body, "attention")


def kv_sites(graph: Graph) -> tuple[list[tuple[str, Node, list[Value]]], list[str]]:
    """Where a KV cache can be stored narrow: an ``Attention`` with ``past_*`` inputs and
    ``present_*`` outputs (the presets' form: rewritten into one fused kernel), or the exported
    form ``present = Concat(past, new)`` feeding an Attention (past input and present output
    quantized around the Concat). Returns (kind, node, values to calibrate) and notes."""
    sites, notes = [], []
    for att in graph:
        if att.op != "Attention":
            continue
        if len(att.inputs) > 4 and att.inputs[4] is not None or len(att.outputs) >= 3:
            sites.append(("attention", att, list(att.outputs[1:3])))
            continue
        found = []
        for kv in att.inputs[1:3]:
            cat = kv.producer if kv is not None else None
            past = cat.inputs[0] if cat is not None and cat.op == "Concat" else None
            if (past is not None and cat.attr("axis") in (2, -2) and past.is_input and kv.is_output
                    and kv.type.rank == 4 and all(u is cat or u.op in _SHAPE_ONLY for u, _ in past.uses)):
                found.append(cat)
        if len(found) == 2:
            sites += [("concat", cat, [cat.outputs[0]]) for cat in found]
        else:
            notes.append(f"KV cache of %{att.outputs[0].name} kept: no past/present cache this pass recognizes")
    return sites, notes


def rewrite_concat_kv(graph: Graph, cat: Node, dtype: str, amax: np.ndarray | None) -> None:
    """``present = Concat(past, new)``: the past input becomes narrow (dequantized before the
    Concat), the present output is quantized (one scale per head, axis 1)."""
    past, present = cat.inputs[0], cat.outputs[0]
    heads = present.type.shape[1]
    base = present.type.dtype
    name = f"{present.name}.scale"
    if amax is None:
        scale = graph.add_constant(name, type=TensorType(base, (heads,)))
    else:
        scale = graph.add_constant(name, scale_for(np.asarray(amax, np.float64).reshape(heads), dtype, base.np_dtype))
    wide_type = past.type
    past.type = TensorType(DTYPES[dtype], past.type.shape)
    meta = {"layer": cat.meta["layer"]} if isinstance(cat.meta.get("layer"), int) else None
    dq = graph.add_node("DequantizeLinear", [past, scale], {"axis": 1}, outputs=[wide_type],
                        names=[f"{past.name}.dequantized"], meta=meta, before=cat)
    cat.set_input(0, dq.outputs[0])
    out_name = present.name
    present.name = graph.fresh_name(out_name + ".unquantized")
    q = graph.add_node("QuantizeLinear", [present, scale], {"axis": 1, "output_dtype": dtype}, names=[out_name],
                       meta=meta, after=cat)
    graph.outputs = [q.outputs[0] if v is present else v for v in graph.outputs]
