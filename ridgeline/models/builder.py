"""Weightless transformer graphs built from a ``TransformerConfig``.

The graphs use the ops an ONNX import leaves after fusion, so every pass and cost model applies:
``Gather`` embeddings, ``RMSNormalization`` / ``LayerNormalization``, ``MatMul`` projections,
``RotaryEmbedding`` on Q and K, one ``Attention`` per layer (causal, grouped-query, with the KV
cache as ``past_*`` inputs and ``present_*`` outputs), the SwiGLU gate as a ``Fused``
element-wise kernel, residual ``Add``s. Weights are constants with a type and no data, so a
405B-parameter graph costs kilobytes.

Precision (see ``resolve_dtypes``): weights, matmul activations and the KV cache each have a
dtype. Narrow weights with 16-bit activations become a ``Fused`` *dequant-matmul* (the int4
weight, its group scales, ``Cast`` → scale → ``MatMul`` in the body); narrow activations (W8A8,
FP8) are quantized once where they are produced and multiplied by a ``Fused`` *quant-matmul*
whose operands stay narrow; a narrow KV cache is stored narrow and widened inside the attention
kernel. The quantization issue's passes produce the same shapes of graph from a 16-bit one.

Every node of layer ``i`` carries ``meta["layer"] = i``; ``graph.meta["llm"]`` describes the model
for the cost models (layers, heads, KV heads, head dim, phase, batch, context, dtypes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..ir import Graph, Value
from ..ir.dtypes import bits
from ..ir.dtypes import dtype as to_dtype
from ..ir.errors import IRError, ModelError
from ..ir.types import TensorType
from .config import TransformerConfig

__all__ = ["BuildOptions", "resolve_dtypes", "build_graph"]

_WEIGHT_DTYPES = ("f32", "f16", "bf16", "f8e4m3", "f8e5m2", "i8", "i4")
_ACT_DTYPES = ("f32", "f16", "bf16", "f8e4m3", "f8e5m2", "i8")
_KV_DTYPES = ("f32", "f16", "bf16", "f8e4m3", "f8e5m2", "i8")


@dataclass(frozen=True)
class BuildOptions:
    """What to build: one phase of one batch at one context length, in given dtypes."""

    phase: str
    batch: int
    context: int        # tokens in the KV cache after this step
    prompt: int         # tokens this step processes (prefill: the prompt; decode: 1)
    weight_dtype: str
    act_dtype: str      # the precision matmul activations are multiplied in
    base_dtype: str     # everything else (norms, softmax, residuals)
    kv_dtype: str
    weight_group: int   # quantization group along K (0: one scale per output channel)
    logits: str         # "last": only the last position (what serving computes); "all"

    @property
    def past(self) -> int:
        return self.context - self.prompt


def _dt(name: Any, what: str, allowed: tuple[str, ...]) -> str:
    try:
        d = to_dtype(str(name))
    except IRError:
        raise ModelError(f"{what}: unknown dtype {name!r}; use one of bf16, fp16, fp32, fp8, int8, int4") from None
    if d.name not in allowed:
        raise ModelError(f"{what}: {d.name} is not supported here (allowed: {', '.join(allowed)})")
    return d.name


def resolve_dtypes(dtype: Any = None, weight_dtype: Any = None, act_dtype: Any = None,
                   kv_dtype: Any = None) -> tuple[str, str, str, str]:
    """(weight, activation, base, kv) dtypes from the user's choices.

    ``dtype`` sets weights and activations; below 8 bits it applies to weights only (int4
    weights, 16-bit activations). ``weight_dtype``/``act_dtype``/``kv_dtype`` override one side.
    The base dtype (norms, softmax, residuals) is the activation dtype when it is a 16/32-bit
    float, else bf16; the KV cache defaults to the base dtype.
    """
    d = _dt(dtype, "--dtype", _WEIGHT_DTYPES) if dtype is not None else "bf16"
    wd = _dt(weight_dtype, "--weight-dtype", _WEIGHT_DTYPES) if weight_dtype is not None else d
    if act_dtype is not None:
        ad = _dt(act_dtype, "--act-dtype", _ACT_DTYPES)
    else:
        ad = d if d in _ACT_DTYPES else "bf16"
    base = ad if ad in ("f32", "f16", "bf16") else ("f16" if d == "f16" else "bf16")
    kv = _dt(kv_dtype, "--kv-dtype", _KV_DTYPES) if kv_dtype is not None else base
    return wd, ad, base, kv


class _Emitter:
    """Adds nodes to a graph, tagging each with the current layer."""

    def __init__(self, graph: Graph, cfg: TransformerConfig, opt: BuildOptions):
        self.g, self.cfg, self.opt = graph, cfg, opt
        self.layer: int | None = None
        self._quantized: dict[int, Value] = {}
        self._type_cache: dict = {}
        self._pending = None

    def op(self, op: str, *inputs: Value | None, _outputs=None, _body: Graph | None = None, _name: str | None = None,
           _names: list[str] | None = None, **attrs):
        meta = {"layer": self.layer} if self.layer is not None else None
        names = [self.g.fresh_name(n) for n in (_names or ([_name] if _name else []))] or None
        self._pending = None
        node = self.g.add_node(op, list(inputs), attrs, outputs=self._types(op, inputs, attrs, _outputs, _body),
                               body=_body, meta=meta, names=names)
        if self._pending is not None:
            self._type_cache[self._pending] = tuple(v.type for v in node.outputs)
        return node.outputs[0] if len(node.outputs) == 1 else tuple(node.outputs)

    def _types(self, op: str, inputs, attrs: dict, n_out, body: Graph | None):
        """Output types known without running inference: a fused node's are its body's, and every
        layer repeats the first one's (inference ran there). None lets ``add_node`` infer."""
        if body is not None:
            return [v.type for v in body.outputs]
        if any(v is not None and v.data is not None for v in inputs):
            return n_out  # types that depend on constant values are always inferred
        key = (op, tuple(v.type if v is not None else None for v in inputs), tuple(sorted(attrs.items())), n_out)
        hit = self._type_cache.get(key)
        if hit is not None:
            return list(hit)
        self._pending = key
        return n_out

    def _attention_names(self) -> list[str]:
        return [self._prefix("self_attn"), f"present_key.{self.layer}", f"present_value.{self.layer}"]

    def _prefix(self, what: str) -> str:
        return f"layers.{self.layer}.{what}" if self.layer is not None else what

    def norm(self, x: Value, prefix: str, *, rms: bool = False, named: bool = True) -> Value:
        """Layer normalization (``rms``: RMS) of ``x`` by ``{prefix}.weight`` and, for layer
        normalization, ``{prefix}.bias``; named ``prefix``."""
        base, H = self.opt.base_dtype, self.cfg.hidden
        params = [self.weight(f"{prefix}.{p}", base, H) for p in (("weight",) if rms else ("weight", "bias"))]
        return self.op("RMSNormalization" if rms else "LayerNormalization", x, *params, epsilon=self.cfg.norm_eps,
                       _outputs=1, _name=prefix if named else None)

    def weight(self, name: str, dt: str, *shape: int) -> Value:
        return self.g.add_constant(name, type=TensorType(to_dtype(dt), tuple(shape)))

    # ------------------------------------------------------------------ linear layers
    def linear(self, x: Value, k: int, n: int, name: str, *, bias: bool = False, gelu: str | None = None) -> Value:
        """x @ W (+ b) (+ GELU) in the configured precision."""
        o = self.opt
        wd, ad, base = o.weight_dtype, o.act_dtype, o.base_dtype
        if wd == base and ad == base:
            w = self.weight(f"{name}.weight", wd, k, n)
            if not bias and gelu is None:
                return self.op("MatMul", x, w, _name=name)
            return self._fused_matmul("matmul-epilogue", name, {"x": x, "w": w}, n, bias, gelu,
                                      lambda body, bx, bw: body.add_node("MatMul", [bx, bw]).outputs[0])
        if bits(ad) <= 8:
            return self._quant_matmul(x, k, n, name, bias, gelu)
        return self._dequant_matmul(x, k, n, name, bias, gelu)

    def _dequant_matmul(self, x: Value, k: int, n: int, name: str, bias: bool, gelu: str | None) -> Value:
        # weight-only quantization: narrow weights and their scales are read; the kernel widens
        # each weight tile to the activation precision before the multiply
        o = self.opt
        base = o.base_dtype
        group = o.weight_group if (o.weight_group and k % o.weight_group == 0) else 0
        wq = self.weight(f"{name}.qweight", o.weight_dtype, k, n)
        scales = self.weight(f"{name}.scales", base, *((k // group, 1, n) if group else (1, n)))

        def product(body: Graph, bx: Value, bw: Value, bs: Value) -> Value:
            w = body.add_node("Cast", [bw], {"to": base}).outputs[0]
            if group:
                s1 = body.add_constant("grouped", np.array([k // group, group, n], np.int64))
                s2 = body.add_constant("ungrouped", np.array([k, n], np.int64))
                w = body.add_node("Reshape", [w, s1]).outputs[0]
                w = body.add_node("Mul", [w, bs]).outputs[0]
                w = body.add_node("Reshape", [w, s2]).outputs[0]
            else:
                w = body.add_node("Mul", [w, bs]).outputs[0]
            return body.add_node("MatMul", [bx, w]).outputs[0]
        return self._fused_matmul("dequant-matmul", name, {"x": x, "qweight": wq, "scales": scales}, n, bias, gelu,
                                  product)

    def _quant_matmul(self, x: Value, k: int, n: int, name: str, bias: bool, gelu: str | None) -> Value:
        # W8A8 / FP8: the activation is quantized once where it is produced, both operands stay
        # narrow into the matrix unit, the scales are applied to the accumulator
        o = self.opt
        base = o.base_dtype
        xq = self.quantize(x)
        wq = self.weight(f"{name}.qweight", o.weight_dtype, k, n)
        ws = self.weight(f"{name}.scales", base, 1, n)

        def product(body: Graph, bx: Value, bw: Value, bs: Value) -> Value:
            a = body.add_node("Cast", [bx], {"to": base}).outputs[0]
            w = body.add_node("Cast", [bw], {"to": base}).outputs[0]
            y = body.add_node("MatMul", [a, w]).outputs[0]
            return body.add_node("Mul", [y, bs]).outputs[0]
        return self._fused_matmul("quant-matmul", name, {"xq": xq, "qweight": wq, "scales": ws}, n, bias, gelu,
                                  product)

    def _fused_matmul(self, kind: str, name: str, ins: dict[str, Value], n: int, bias: bool, gelu: str | None,
                      product) -> Value:
        """A ``Fused`` node of ``kind`` over ``ins`` (its body's inputs, by name): ``product(body, *inputs)``
        adds the matrix product to the body; then the bias and GELU epilogue."""
        body = Graph(f"{name}_{kind.removeprefix('matmul-').replace('-', '_')}")
        y = product(body, *(body.add_input(k, v.type) for k, v in ins.items()))
        args = list(ins.values())
        if bias:
            b = self.weight(f"{name}.bias", self.opt.base_dtype, n)
            y = body.add_node("Add", [y, body.add_input("bias", b.type)]).outputs[0]
            args.append(b)
        if gelu is not None:
            y = body.add_node("Gelu", [y], {"approximate": gelu}).outputs[0]
        body.outputs = [y]
        return self.op("Fused", *args, _body=body, kind=kind, label=name, _name=name)

    def quantize(self, x: Value) -> Value:
        """``x`` in the activation dtype (static per-tensor scale), computed once per value."""
        hit = self._quantized.get(id(x))
        if hit is not None:
            return hit
        ad, base = self.opt.act_dtype, self.opt.base_dtype
        body = Graph("quantize")
        bx = body.add_input("x", x.type)
        np_base = to_dtype(base).np_dtype
        scale = body.add_constant("scale", np.array(1.0, dtype=np_base))
        y = body.add_node("Div", [bx, scale]).outputs[0]
        if to_dtype(ad).is_integer:
            lo = body.add_constant("lo", np.array(-128.0, dtype=np_base))
            hi = body.add_constant("hi", np.array(127.0, dtype=np_base))
            y = body.add_node("Round", [y]).outputs[0]
            y = body.add_node("Clip", [y, lo, hi]).outputs[0]
        y = body.add_node("Cast", [y], {"to": ad}).outputs[0]
        body.outputs = [y]
        out = self.op("Fused", x, _body=body, kind="elementwise", label="quantize", _name=f"{x.name}.quantized")
        self._quantized[id(x)] = out
        return out

    # ------------------------------------------------------------------ attention
    def attention(self, q: Value, k: Value, v: Value, past: tuple[Value, Value] | None) -> tuple[Value, Value, Value]:
        cfg, o = self.cfg, self.opt
        attrs = {"q_num_heads": cfg.heads, "kv_num_heads": cfg.kv_heads, "is_causal": int(cfg.causal)}
        if o.kv_dtype == o.base_dtype:
            ins = [q, k, v] + ([None, past[0], past[1]] if past else [])
            return self.op("Attention", *ins, _outputs=3, _names=self._attention_names(), **attrs)
        # a narrow KV cache: stored narrow, widened in the attention kernel, new rows narrowed
        body = Graph("attention_kv_cache")
        bq, bk, bv = (body.add_input(n, t.type) for n, t in (("q", q), ("k", k), ("v", v)))
        ins = [q, k, v]
        b_ins = [bq, bk, bv]
        if past:
            pk, pv = (body.add_input(n, t.type) for n, t in (("past_key", past[0]), ("past_value", past[1])))
            wk = body.add_node("Cast", [pk], {"to": o.base_dtype}).outputs[0]
            wv = body.add_node("Cast", [pv], {"to": o.base_dtype}).outputs[0]
            b_ins += [None, wk, wv]
            ins += list(past)
        att = body.add_node("Attention", b_ins, attrs, outputs=3)
        y, pk_out, pv_out = att.outputs
        nk = body.add_node("Cast", [pk_out], {"to": o.kv_dtype}).outputs[0]
        nv = body.add_node("Cast", [pv_out], {"to": o.kv_dtype}).outputs[0]
        body.outputs = [y, nk, nv]
        return self.op("Fused", *ins, _body=body, kind="attention", label="attention", _names=self._attention_names())


def build_graph(cfg: TransformerConfig, opt: BuildOptions) -> Graph:
    """The graph of one forward step of ``cfg`` (see the module docstring)."""
    g = Graph(cfg.name.replace(".", "_").replace("-", "_") + f"_{opt.phase}")
    e = _Emitter(g, cfg, opt)
    B, S = opt.batch, opt.prompt
    base = opt.base_dtype
    ids = g.add_input("input_ids", TensorType(to_dtype("i64"), (B, S)))
    pos = g.add_input("position_ids", TensorType(to_dtype("i64"), (B, S)))
    past_inputs: list[tuple[Value, Value]] = []
    if cfg.causal and opt.past > 0:
        shape = (B, cfg.kv_heads, opt.past, cfg.head_dim)
        for i in range(cfg.layers):
            past_inputs.append((g.add_input(f"past_key.{i}", TensorType(to_dtype(opt.kv_dtype), shape)),
                                g.add_input(f"past_value.{i}", TensorType(to_dtype(opt.kv_dtype), shape))))
    if cfg.arch == "llama":
        h, presents = _llama(e, ids, pos, past_inputs)
    elif cfg.arch == "gpt2":
        h, presents = _gpt2(e, ids, pos, past_inputs)
    elif cfg.arch == "bert":
        h, presents = _bert(e, ids, pos)
    else:  # pragma: no cover - configs are ours
        raise ModelError(f"unknown architecture {cfg.arch!r}")
    g.outputs = [h] + [v for pair in presents for v in pair]
    g.meta["llm"] = {
        "preset": cfg.name, "arch": cfg.arch, "layers": cfg.layers, "hidden": cfg.hidden, "heads": cfg.heads,
        "kv_heads": cfg.kv_heads, "head_dim": cfg.head_dim, "intermediate": cfg.intermediate, "vocab": cfg.vocab,
        "phase": opt.phase, "batch": B, "context": opt.context, "prompt": opt.prompt, "past": opt.past,
        "weight_dtype": opt.weight_dtype, "act_dtype": opt.act_dtype, "base_dtype": base, "kv_dtype": opt.kv_dtype,
        "weight_group": opt.weight_group, "logits": opt.logits, "parameters": cfg.parameters(),
        "max_context": cfg.max_context,     # the window a deployment is sized for (spatial cost models)
    }
    return g


def _last_position(e: _Emitter, h: Value) -> Value:
    if e.opt.logits == "all" or e.opt.prompt == 1:
        return h
    idx = e.g.add_constant("last_position", np.array(e.opt.prompt - 1, dtype=np.int64))
    return e.op("Gather", h, idx, axis=1, _name="last_hidden")


def _llama(e: _Emitter, ids: Value, pos: Value, past: list) -> tuple[Value, list]:
    cfg, o = e.cfg, e.opt
    base, H, D = o.base_dtype, cfg.hidden, cfg.head_dim
    # embeddings stay in the base dtype: a lookup reads one row per token, quantizing it saves nothing
    emb = e.weight("embed_tokens.weight", base, cfg.vocab, H)
    h = e.op("Gather", emb, ids, axis=0, _name="embed_tokens")
    positions = max(o.context, 1)
    cos = e.weight("rope.cos_cache", base, positions, D // 2)
    sin = e.weight("rope.sin_cache", base, positions, D // 2)
    presents = []
    for i in range(cfg.layers):
        e.layer = i
        p = f"layers.{i}"
        x = e.norm(h, f"{p}.input_layernorm", rms=True)
        q = e.linear(x, H, cfg.heads * D, f"{p}.self_attn.q_proj")
        k = e.linear(x, H, cfg.kv_heads * D, f"{p}.self_attn.k_proj")
        v = e.linear(x, H, cfg.kv_heads * D, f"{p}.self_attn.v_proj")
        q = e.op("RotaryEmbedding", q, cos, sin, pos, num_heads=cfg.heads, _name=f"{p}.q_rope")
        k = e.op("RotaryEmbedding", k, cos, sin, pos, num_heads=cfg.kv_heads, _name=f"{p}.k_rope")
        y, pk, pv = e.attention(q, k, v, past[i] if past else None)
        presents.append((pk, pv))
        h = e.op("Add", h, e.linear(y, cfg.heads * D, H, f"{p}.self_attn.o_proj"), _name=f"{p}.attn_residual")
        x = e.norm(h, f"{p}.post_attention_layernorm", rms=True)
        gate = e.linear(x, H, cfg.intermediate, f"{p}.mlp.gate_proj")
        up = e.linear(x, H, cfg.intermediate, f"{p}.mlp.up_proj")
        act = e.op("Fused", gate, up, _body=_swiglu_body(gate.type), kind="elementwise", label="swiglu",
                   _name=f"{p}.mlp.swiglu")
        h = e.op("Add", h, e.linear(act, cfg.intermediate, H, f"{p}.mlp.down_proj"), _name=f"{p}.mlp_residual")
    e.layer = None
    h = e.norm(h, "norm", rms=True)
    h = _last_position(e, h)
    logits = e.linear(h, H, cfg.vocab, "lm_head")
    return logits, presents


def _swiglu_body(t: TensorType) -> Graph:
    """silu(gate) * up = gate * sigmoid(gate) * up."""
    body = Graph("swiglu")
    g = body.add_input("gate", t)
    u = body.add_input("up", t)
    s = body.add_node("Sigmoid", [g]).outputs[0]
    y = body.add_node("Mul", [g, s]).outputs[0]
    body.outputs = [body.add_node("Mul", [y, u]).outputs[0]]
    return body


def _gpt2(e: _Emitter, ids: Value, pos: Value, past: list) -> tuple[Value, list]:
    cfg, o = e.cfg, e.opt
    base, H = o.base_dtype, cfg.hidden
    wte = e.weight("wte.weight", base, cfg.vocab, H)
    wpe = e.weight("wpe.weight", base, cfg.max_context, H)
    h = e.op("Add", e.op("Gather", wte, ids, axis=0, _name="wte"), e.op("Gather", wpe, pos, axis=0, _name="wpe"),
             _name="embeddings")
    presents = []
    for i in range(cfg.layers):
        e.layer = i
        p = f"h.{i}"
        x = e.norm(h, f"{p}.ln_1")
        q = e.linear(x, H, H, f"{p}.attn.q", bias=True)
        k = e.linear(x, H, H, f"{p}.attn.k", bias=True)
        v = e.linear(x, H, H, f"{p}.attn.v", bias=True)
        y, pk, pv = e.attention(q, k, v, past[i] if past else None)
        presents.append((pk, pv))
        h = e.op("Add", h, e.linear(y, H, H, f"{p}.attn.c_proj", bias=True), _name=f"{p}.attn_residual")
        x = e.norm(h, f"{p}.ln_2")
        x = e.linear(x, H, cfg.intermediate, f"{p}.mlp.c_fc", bias=True, gelu="tanh")
        h = e.op("Add", h, e.linear(x, cfg.intermediate, H, f"{p}.mlp.c_proj", bias=True), _name=f"{p}.mlp_residual")
    e.layer = None
    h = e.norm(h, "ln_f")
    h = _last_position(e, h)
    # the LM head is tied to the token embedding: logits = h · wteᵀ
    if h.type.rank == 3:
        flat = e.g.add_constant("flatten_shape", np.array([-1, H], np.int64))
        h2 = e.op("Reshape", h, flat)
    else:
        h2 = h
    logits = e.op("Gemm", h2, wte, transB=1, _name="lm_head")
    return logits, presents


def _bert(e: _Emitter, ids: Value, pos: Value) -> tuple[Value, list]:
    cfg, o = e.cfg, e.opt
    base, H = o.base_dtype, cfg.hidden
    word = e.weight("embeddings.word_embeddings.weight", base, cfg.vocab, H)
    posw = e.weight("embeddings.position_embeddings.weight", base, cfg.max_context, H)
    typ = e.weight("embeddings.token_type_embeddings.weight", base, cfg.type_vocab, H)
    zeros = e.g.add_constant("token_type_ids", np.zeros((o.batch, o.prompt), np.int64))
    h = e.op("Add", e.op("Gather", word, ids, axis=0), e.op("Gather", posw, pos, axis=0))
    h = e.op("Add", h, e.op("Gather", typ, zeros, axis=0))
    h = e.norm(h, "embeddings.LayerNorm", named=False)
    for i in range(cfg.layers):
        e.layer = i
        p = f"encoder.layer.{i}"
        q = e.linear(h, H, H, f"{p}.attention.self.query", bias=True)
        k = e.linear(h, H, H, f"{p}.attention.self.key", bias=True)
        v = e.linear(h, H, H, f"{p}.attention.self.value", bias=True)
        y = e.op("Attention", q, k, v, q_num_heads=cfg.heads, kv_num_heads=cfg.kv_heads, _outputs=1,
                 _name=f"{p}.attention.self")
        h = e.op("Add", h, e.linear(y, H, H, f"{p}.attention.output.dense", bias=True),
                 _name=f"{p}.attention.residual")
        h = e.norm(h, f"{p}.attention.output.LayerNorm")
        x = e.linear(h, H, cfg.intermediate, f"{p}.intermediate.dense", bias=True, gelu="none")
        h = e.op("Add", h, e.linear(x, cfg.intermediate, H, f"{p}.output.dense", bias=True), _name=f"{p}.output.residual")
        h = e.norm(h, f"{p}.output.LayerNorm")
    e.layer = None
    return h, []

