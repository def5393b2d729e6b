"""Fused ops newer than the model's opset, written as model-local ONNX functions.

An opset-17/18 model that gains ``Attention``/``RotaryEmbedding``/``RMSNormalization`` (23) or
``Gelu`` (20) keeps its opset: each such node becomes a call of a function in
:data:`STD_DOMAIN` named after the op, whose body is the op's decomposition into standard ops
of the model's opset. Attention takes ONNX's own function body (``get_context_dependent_function``,
downgraded by onnx's version converter); the others are written here because their ONNX bodies use
forms the converter cannot downgrade (``Split`` with ``num_outputs``, computed ``ReduceMean`` axes).
Nodes with equal attributes and input types share one function.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import TensorProto, defs, helper, version_converter

from ...ir import Node
from ...ir.errors import ModelError

__all__ = ["LOWERABLE", "STD_DOMAIN", "FunctionLowering", "standard_op"]

#: the domain of functions standing for standard ops (not ridgeline's Fused bodies: the importer
#: inlines these, so a re-import sees the decomposition)
STD_DOMAIN = "ridgeline.std"
LOWERABLE = ("Attention", "RotaryEmbedding", "RMSNormalization", "Gelu")


def standard_op(node: onnx.NodeProto) -> str:
    """The standard op an exported node stands for (a call ``ridgeline.std.Attention_3`` → ``Attention``)."""
    return node.op_type.rsplit("_", 1)[0] if node.domain == STD_DOMAIN else node.op_type


def _type(v) -> onnx.TypeProto:
    shape = [d if isinstance(d, int) else str(d) for d in v.type.shape]
    return helper.make_tensor_type_proto(v.type.dtype.onnx_code, shape)


class _Body:
    """A tiny builder of function-body nodes with fresh names."""

    def __init__(self, opset: int):
        self.opset, self.nodes, self.k = opset, [], 0

    def __call__(self, op: str, *ins: str, **attrs) -> str:
        self.k += 1
        out = f"t{self.k}"
        self.nodes.append(helper.make_node(op, list(ins), [out], **attrs))
        return out

    def const(self, values, dtype=TensorProto.INT64) -> str:
        vals = list(values) if isinstance(values, (list, tuple)) else [values]
        dims = [len(vals)] if isinstance(values, (list, tuple)) else []
        return self("Constant", value=helper.make_tensor("c", dtype, dims, vals))

    def slice(self, x: str, start: int, end: int, step: int = 1) -> str:
        return self("Slice", x, self.const([start]), self.const([end]), self.const([-1]), self.const([step]))

    def unsqueeze(self, x: str, axis: int) -> str:
        return self("Unsqueeze", x, self.const([axis]))  # axes as an input since opset 13

    def reduce_mean(self, x: str, axes: list[int]) -> str:
        if self.opset >= 18:
            return self("ReduceMean", x, self.const(axes), keepdims=1)
        return self("ReduceMean", x, axes=axes, keepdims=1)


def _rms(n: Node, b: _Body) -> tuple[list[str], list[str]]:
    # x / sqrt(mean(x², axes) + eps) · scale, spelled Pow → ReduceMean → Add → Sqrt → Div → Mul (no
    # Cast when x is already the stash type): the form onnxruntime's SimplifiedLayerNormFusion turns
    # back into one kernel after inlining the function
    x, scale = n.inputs[0], n.inputs[1]
    rank = x.type.rank
    axes = list(range(n.attr("axis") % rank, rank))
    stash = n.attr("stash_type")
    stash = TensorProto.FLOAT if stash in (None, 1) else int(stash)
    xs = "X" if x.type.dtype.onnx_code == stash else b("Cast", "X", to=stash)
    two = b.const(2.0, TensorProto.FLOAT) if stash == TensorProto.FLOAT else b("Cast", b.const(2.0, TensorProto.FLOAT), to=stash)
    ms = b.reduce_mean(b("Pow", xs, two), axes)
    eps = b.const(float(n.attr("epsilon") if n.attr("epsilon") is not None else 1e-5), TensorProto.FLOAT)
    if stash != TensorProto.FLOAT:
        eps = b("Cast", eps, to=stash)
    y = b("Div", xs, b("Sqrt", b("Add", ms, eps)))
    if scale.type.dtype.onnx_code != stash:
        y = b("Cast", y, to=scale.type.dtype.onnx_code)
    b.nodes.append(helper.make_node("Mul", [y, "scale"], ["Y"]))
    return ["X", "scale"], ["Y"]


def _gelu(n: Node, b: _Body) -> tuple[list[str], list[str]]:
    def c(v: float) -> str:
        return b("CastLike", b.const(v, TensorProto.FLOAT), "X")
    if n.attr("approximate") == "tanh":  # 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
        inner = b("Mul", c(math.sqrt(2 / math.pi)), b("Add", "X", b("Mul", c(0.044715), b("Mul", "X", b("Mul", "X", "X")))))
        t = b("Tanh", inner)
    else:  # 0.5·x·(1 + erf(x/√2))
        t = b("Erf", b("Div", "X", c(math.sqrt(2.0))))
    half = b("Mul", c(0.5), "X")
    b.nodes.append(helper.make_node("Mul", [half, b("Add", c(1.0), t)], ["Y"]))
    return ["X"], ["Y"]


def _rotary(n: Node, b: _Body) -> tuple[list[str], list[str]]:
    x = n.inputs[0]
    four = x.type.rank == 4
    head = x.type.shape[3] if four else None
    pos = len(n.inputs) > 3 and n.inputs[3] is not None
    cos, sin = "cos_cache", "sin_cache"
    if pos:  # caches [max_pos, R/2] picked by position ids [B, S] -> [B, S, R/2]
        cos, sin = b("Gather", cos, "position_ids", axis=0), b("Gather", sin, "position_ids", axis=0)
    if four:  # [B, H, S, D]: cos/sin [B, S, R/2] -> [B, 1, S, R/2]
        xs, cos, sin = "X", b.unsqueeze(cos, 1), b.unsqueeze(sin, 1)
    else:  # [B, S, H·D] -> [B, S, H, D]; cos/sin -> [B, S, 1, R/2]
        xs = b("Reshape", "X", b.const([0, 0, int(n.attr("num_heads")), -1]))
        cos, sin = b.unsqueeze(cos, 2), b.unsqueeze(sin, 2)
    rot = n.attr("rotary_embedding_dim") or head
    if not four and not rot:  # 3-D input without a rotary dim: the head size from num_heads
        d = x.type.shape[2]
        rot = d // int(n.attr("num_heads")) if isinstance(d, int) else None
    if not isinstance(rot, int):  # the slices need the rotated width as a number
        raise ModelError(f"cannot export RotaryEmbedding below opset 23: the head size of {x.type} is symbolic")
    xr = b.slice(xs, 0, rot)
    if n.attr("interleaved"):
        x1, x2 = b.slice(xr, 0, rot, 2), b.slice(xr, 1, rot, 2)
    else:
        x1, x2 = b.slice(xr, 0, rot // 2), b.slice(xr, rot // 2, rot)
    real = b("Sub", b("Mul", cos, x1), b("Mul", sin, x2))
    imag = b("Add", b("Mul", sin, x1), b("Mul", cos, x2))
    if n.attr("interleaved"):  # [..., R/2, 2] -> [..., R]
        yr = b("Reshape", b("Concat", b.unsqueeze(real, -1), b.unsqueeze(imag, -1), axis=-1), b.const([0, 0, 0, -1]))
    else:
        yr = b("Concat", real, imag, axis=-1)
    y = b("Concat", yr, b.slice(xs, rot, 2**62), axis=-1)
    b.nodes.append(helper.make_node("Identity" if four else "Reshape", [y] if four else [y, b("Shape", "X")], ["Y"]))
    return ["X", "cos_cache", "sin_cache"] + (["position_ids"] if pos else []), ["Y"]


def _without_constant_of_shape(nodes) -> list[onnx.NodeProto]:
    """``ConstantOfShape(s, value=v)`` as ``Expand(v, s)``: the same tensor, and the version
    converter has no adapter for ConstantOfShape below opset 19 (its changes only added types)."""
    out = []
    for k, nd in enumerate(nodes):
        if nd.op_type != "ConstantOfShape" or nd.domain not in ("", "ai.onnx"):
            out.append(nd)
            continue
        value = next((a.t for a in nd.attribute if a.name == "value"), None)
        if value is None:
            value = helper.make_tensor("v", TensorProto.FLOAT, [1], [0.0])
        scalar = onnx.TensorProto()
        scalar.CopyFrom(value)
        del scalar.dims[:]  # a one-element tensor as a scalar: Expand then gives exactly the shape
        fill = f"__fill{k}"
        out += [helper.make_node("Constant", [], [fill], value=scalar),
                helper.make_node("Expand", [fill, nd.input[0]], list(nd.output))]
    return out


def _attention(n: Node, proto: onnx.NodeProto, opset: int) -> tuple[list[str], list[str], list[onnx.NodeProto]]:
    # ONNX's body of the opset a window needs (25); the version converter takes it down to ``opset``
    since = 25 if any(n.attr(w) not in (None, -1) for w in ("left_window_size", "right_window_size")) else 23
    schema = defs.get_schema("Attention", since)
    node = onnx.NodeProto()
    node.CopyFrom(proto)
    node.domain = ""
    types = [_type(v).SerializeToString() if v is not None else onnx.TypeProto().SerializeToString()
             for v in n.inputs]
    f = onnx.FunctionProto()
    f.ParseFromString(schema.get_context_dependent_function(node.SerializeToString(), types))
    present = list(f.input[:len(n.inputs)])  # by position: a call passes "" for a missing one
    produced = {o for x in f.node for o in x.output}
    outs = [o for o, v in zip(f.output, list(n.outputs) + [None] * 4) if v is not None]
    if not set(outs) <= produced:
        raise ModelError("cannot export Attention below opset 23: its ONNX body lacks an output it uses")
    # the version converter works on models: wrap the body as a graph, convert, unwrap
    ins = [helper.make_value_info(name, _type(v)) for name, v in zip(f.input, n.inputs) if v is not None]
    g = helper.make_graph(_without_constant_of_shape(f.node), "body", ins,
                          [helper.make_tensor_value_info(o, n.outputs[0].type.dtype.onnx_code, None) for o in outs])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", since)])
    try:
        m = version_converter.convert_version(m, opset)
    except Exception as e:  # noqa: BLE001 - the converter raises bare RuntimeErrors
        raise ModelError(f"cannot export Attention at opset {opset}: {str(e).splitlines()[-1]}") from None
    return present, outs, list(m.graph.node)


def attention_beyond_sdpa(n: Node) -> str | None:
    """What an Attention node computes beyond ``softmax(Q·Kᵀ·s + M)·V`` (with a KV cache, in
    float32 softmax) that the lean lowering and onnxruntime's MultiHeadAttention lack, or None."""
    for attr, neutral, what in (("softcap", 0.0, "softcap"), ("left_window_size", -1, "a window"),
                                ("right_window_size", -1, "a window"), ("qk_matmul_output_mode", 0, "qk output")):
        if n.attr(attr) not in (None, neutral):     # a window of 0 keys is a window
            return what
    if n.attr("softmax_precision") not in (None, TensorProto.FLOAT):
        return "softmax_precision other than float32"
    if len(n.inputs) > 6 and n.inputs[6] is not None:
        return "nonpad_kv_seqlen"
    return None


def _attention_lean(n: Node, b: _Body) -> tuple[list[str], list[str]] | None:
    """The common Attention (no softcap, windows or qk output; float32; heads and, with GQA, head
    sizes known) as the few ops it is: ``softmax(Q·s·Kᵀ + M)·V`` with the head split/merge, the
    KV-cache Concat, repeat_kv and the causal frontier written out. ONNX's own body (the fallback)
    computes the head counts, the scale and the masks from shapes at run time and guards fully
    masked rows: 79 nodes per layer that onnxruntime inlines and runs, slower than the exported
    decomposition it replaced. Masked scores take the lowest float, not -inf: a query that sees no
    key gets finite weights (the IR leaves such rows arbitrary; NaN would reach the next layer's
    unmasked rows through its K/V). None where the lean form does not apply."""
    q, k, v = n.inputs[:3]
    mask = n.inputs[3] if len(n.inputs) > 3 else None
    pk, pv = (n.inputs[i] if len(n.inputs) > i else None for i in (4, 5))
    if attention_beyond_sdpa(n) or len(n.inputs) > 6 or len(n.outputs) > 3 or (pk is None) != (pv is None):
        return None
    if any(x is not None and x.type.dtype.name != "f32" for x in (q, k, v, pk, pv)) \
            or mask is not None and mask.type.dtype.name not in ("f32", "bool"):
        return None
    four = q.type.rank == 4
    if four:
        hq, hkv, dk, dv = q.type.shape[1], k.type.shape[1], k.type.shape[3], v.type.shape[3]
    else:
        hq, hkv = n.attr("q_num_heads"), n.attr("kv_num_heads")
        dk = k.type.shape[2] // hkv if isinstance(k.type.shape[2], int) and hkv else None
        dv = v.type.shape[2] // hkv if isinstance(v.type.shape[2], int) and hkv else None
    if not (isinstance(hq, int) and isinstance(hkv, int)) or hq % hkv \
            or hq != hkv and not (isinstance(dk, int) and isinstance(dv, int)):
        return None
    scale = n.attr("scale")
    if scale is None:
        if not isinstance(dk, int):
            return None
        scale = 1.0 / math.sqrt(dk)
    t_len = k.type.shape[2 if four else 1]
    if pk is not None:
        t_len = pk.type.shape[2] + t_len if isinstance(pk.type.shape[2], int) and isinstance(t_len, int) else None
    if mask is not None and isinstance(mask.type.shape[-1], int) and mask.type.shape[-1] != 1 \
            and mask.type.shape[-1] != t_len:  # the IR pads a mask shorter than the keys
        return None

    def heads(x: str, h: int, perm: list[int]) -> str:  # (B, S, H·D) -> (B, H, S, D) (or Kᵀ)
        return b("Transpose", b("Reshape", x, b.const([0, 0, h, -1])), perm=perm)

    ins = ["Q", "K", "V", "attn_mask", "past_key", "past_value"][:len(n.inputs)]
    q4, k4, v4 = ("Q", "K", "V") if four else (heads("Q", hq, [0, 2, 1, 3]), heads("K", hkv, [0, 2, 1, 3]),
                                                heads("V", hkv, [0, 2, 1, 3]))
    outs = ["Y"]
    if pk is not None:
        k4, v4 = b("Concat", "past_key", k4, axis=2), b("Concat", "past_value", v4, axis=2)
    for i, (x, name) in enumerate(((k4, "present_key"), (v4, "present_value")), start=1):
        if len(n.outputs) > i and n.outputs[i] is not None:
            b.nodes.append(helper.make_node("Identity", [x], [name]))
            outs.append(name)
    if hq != hkv:  # each KV head repeated for its group of query heads
        def repeat(x: str, d: int) -> str:
            x5 = b("Expand", b.unsqueeze(x, 2), b.const([1, 1, hq // hkv, 1, 1]))
            return b("Reshape", x5, b.const([0, hq, -1, d]))
        k4, v4 = repeat(k4, dk), repeat(v4, dv)
    scores = b("MatMul", b("Mul", q4, b.const(float(scale), TensorProto.FLOAT)), b("Transpose", k4, perm=[0, 1, 3, 2]))
    lowest = b.const(float(np.finfo(np.float32).min), TensorProto.FLOAT)
    if mask is not None:
        scores = b("Where", "attn_mask", scores, lowest) if mask.type.dtype.name == "bool" else \
            b("Add", scores, b("Max", "attn_mask", lowest))
    if n.attr("is_causal"):  # key j visible to query i when j <= i + (T - S): bottom-right with a cache
        zero, one = b.const(0), b.const(1)
        s_len = b("Squeeze", b("Shape", q4, start=2, end=3), b.const([0]))
        t = b("Squeeze", b("Shape", k4, start=2, end=3), b.const([0]))
        rows = b.unsqueeze(b("Range", b("Sub", t, s_len), t, one), 1)
        cols = b.unsqueeze(b("Range", zero, t, one), 0)
        scores = b("Where", b("LessOrEqual", cols, rows), scores, lowest)
    y = b("MatMul", b("Softmax", scores, axis=-1), v4)
    if four:
        b.nodes.append(helper.make_node("Identity", [y], ["Y"]))
    else:
        b.nodes.append(helper.make_node("Reshape", [b("Transpose", y, perm=[0, 2, 1, 3]), b.const([0, 0, -1])], ["Y"]))
    return ins, outs


class FunctionLowering:
    """Builds (and shares) the functions of one exported model."""

    def __init__(self, opset: int):
        self.opset = opset
        self.functions: list[onnx.FunctionProto] = []
        self._seen: dict[tuple, str] = {}

    def call(self, n: Node, proto: onnx.NodeProto) -> onnx.NodeProto:
        """``proto`` (a standard op) turned into a call of its function at this opset."""
        key = (n.op, tuple(sorted((a.name, a.SerializeToString()) for a in proto.attribute)),
               tuple((v.type.dtype.onnx_code, v.type.rank) if v is not None else None for v in n.inputs),
               len(self._outs(n, proto)))
        if n.op == "Attention" or n.op == "RotaryEmbedding":  # bodies depend on the shapes too
            key += (tuple(tuple(map(str, v.type.shape)) if v is not None else None for v in n.inputs),)
        name = self._seen.get(key)
        if name is None:
            name = f"{n.op}_{len(self.functions)}"
            self.functions.append(self._function(n, proto, name))
            self._seen[key] = name
        # a missing optional input stays "" in its place (a KV cache without a mask keeps its position)
        ins = [i if v is not None else "" for i, v in zip(proto.input, n.inputs)]
        while ins and not ins[-1]:
            ins.pop()
        call = helper.make_node(name, ins, self._outs(n, proto), name=proto.name or None, domain=STD_DOMAIN)
        # the op's own attributes ride on the call (declared by the function, unused by its body),
        # so the importer can rebuild the op exactly
        call.attribute.extend(proto.attribute)
        return call

    @staticmethod
    def _outs(n: Node, proto: onnx.NodeProto) -> list[str]:
        return [o for o, v in zip(proto.output, n.outputs) if v is not None]

    def _function(self, n: Node, proto: onnx.NodeProto, name: str) -> onnx.FunctionProto:
        b = _Body(self.opset)
        lean = _attention_lean(n, b) if n.op == "Attention" else None
        if lean is not None:
            (ins, outs), nodes = lean, b.nodes
        elif n.op == "Attention":
            ins, outs, nodes = _attention(n, proto, self.opset)
        else:
            ins, outs = {"RMSNormalization": _rms, "Gelu": _gelu, "RotaryEmbedding": _rotary}[n.op](n, b)
            nodes = b.nodes
        f = helper.make_function(STD_DOMAIN, name, ins, outs, nodes, [helper.make_opsetid("", self.opset)],
                                 attributes=[a.name for a in proto.attribute])
        f.doc_string = f"ONNX {n.op} (opset {defs.get_schema(n.op).since_version}) at opset {self.opset}"
        return f
