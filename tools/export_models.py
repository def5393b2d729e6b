#!/usr/bin/env python
"""Export the small random-weight transformers that ridgeline's tests run on.

    python tools/export_models.py            # writes tests/models/*.onnx + manifest.json
    python tools/export_models.py --check    # exports to a temp dir, compares with the committed files

GPT-2, BERT and a Llama-style model (grouped-query attention, RoPE, SwiGLU, RMSNorm) are built
from tiny configs with fixed seeds (nothing is downloaded) and exported with torch's two ONNX
exporters, each as it is really used:

============  =======  ==================================================================
exporter      opset    what it emits
============  =======  ==================================================================
legacy        17, 18   TorchScript tracing (``dynamo=False``): long Shape/Gather/Concat chains
dynamo        18       torch.export + torchlib (``dynamo=True``); its opset-17 output is
                       invalid (onnxruntime rejects it), so 18 is the lowest we export
dynamo        23       the same exporter where the ONNX ``Attention``, ``RMSNormalization`` and
                       ``RotaryEmbedding`` ops exist (see "opset 23" below)
============  =======  ==================================================================

Every family has a prefill graph; GPT-2 and Llama also have a decode step with a KV cache
(``past_key_<i>``/``past_value_<i>`` in, ``present_key_<i>``/``present_value_<i>`` out).
Dims are named ``batch``, ``seq`` and ``past``; the decode step's attention mask and present
KV have length ``past + seq``, spelled that way in the ONNX file so the imported graph knows
the relation.

What it takes to export these with torch 2.13 and transformers 5.x (found by trying):

* The models are called through a wrapper that passes ``attention_mask`` **and**
  ``position_ids`` explicitly: left to itself transformers 5 derives positions with
  ``aten::diff``/``cumsum`` that the legacy exporter cannot translate.
* ``attn_implementation="eager"`` for every export below opset 23: the masking code that
  transformers uses for SDPA traces to data-dependent control flow in the legacy exporter.
* The KV cache goes in as plain tensors and is rebuilt inside the wrapper as a
  ``DynamicCache(ddp_cache_data=...)``; present keys/values come back out of
  ``cache.layers[i]``. Both exporters trace that fine.
* The dynamo exporter takes ``dynamic_shapes`` with string names; it derives the
  ``past + seq`` length of the mask itself (a separate name would be rejected as it is
  constrained to equal ``past + seq``), and its output names it ``past + seq``.
* opset 23: torchlib translates ``aten.scaled_dot_product_attention`` to ``Attention`` and
  ``aten.rms_norm`` to ``RMSNormalization`` only from opset 23 on, and only if the model calls
  them: so these exports use ``attn_implementation="sdpa"``, and for Llama the RMSNorm modules
  are switched to ``torch.nn.functional.rms_norm`` and ``apply_rotary_pos_emb`` to
  ``torch.onnx.ops.rotary_embedding`` (the ONNX op as a torch op). Transformers' own Llama
  computes RMSNorm and RoPE with elementwise ops, so without these swaps the exporter emits
  ``Attention`` (from SDPA) but neither ``RMSNormalization`` nor ``RotaryEmbedding``. Both
  swaps compute the same function as the originals (checked against eager torch at export).
  Transformers calls SDPA with ``enable_gqa`` only when there is no mask; with one it repeats
  the KV heads itself, so ``TRANSFORMERS_SDPA_FORCE_GQA=1`` is set for these exports to keep
  the GQA inside the ``Attention`` op (2 KV heads for 4 query heads).

The files are deterministic (fixed seeds, no timestamps in ONNX); rerunning rewrites the same
bytes. ``tests/models/manifest.json`` describes every file for the tests.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import logging
import os
import sys
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "models"
log = logging.getLogger("export_models")

# Tiny configs: 2 layers, hidden 32, 4 query heads of 8; Llama has 2 KV heads (GQA, groups of 2).
# At hidden 64 the 20 files weigh 10.7 MB; at 32 they are a few hundred KB each.
VOCAB, HIDDEN, LAYERS, HEADS, KV_HEADS, FFN, POSITIONS = 256, 32, 2, 4, 2, 64, 64
HEAD_DIM = HIDDEN // HEADS
SEED = 0
# Weights ten times the usual 0.02: attention scores of a few units make softmax peaked, so a
# wrong scale, mask or head grouping changes the outputs by far more than the 1e-4 tolerance.
INIT_STD = 0.2
# ... which also makes them far more sensitive to weight noise than trained networks: quantization
# accuracy is measured on a second, small set at transformers' default init (its
# `initializer_range`), the "random-weight export" a user would make. Listed separately in the
# manifest (`accuracy_models`) so the numerics suites keep using the sharp set.
ACCURACY_INIT_STD = 0.02
ACCURACY = [("gpt2", "prefill"), ("gpt2", "decode"), ("llama", "prefill"), ("llama", "decode")]

# Example shapes used while tracing (the exported graphs are symbolic in batch/seq/past).
EX_BATCH, EX_SEQ, EX_PAST = 2, 5, 3

# (exporter, opset) pairs; "dynamo" at 17 is deliberately missing (invalid output).
VARIANTS = [("legacy", 17), ("legacy", 18), ("dynamo", 18), ("dynamo", 23)]
FAMILIES = {"gpt2": ("prefill", "decode"), "bert": ("prefill",), "llama": ("prefill", "decode")}


# --------------------------------------------------------------------------- models
def build(family: str, attn: str, init_std: float = INIT_STD):
    import torch
    import transformers as tf
    torch.manual_seed(SEED)
    if family == "gpt2":
        cfg = tf.GPT2Config(vocab_size=VOCAB, n_positions=POSITIONS, n_embd=HIDDEN, n_layer=LAYERS,
                            n_head=HEADS, n_inner=FFN, initializer_range=init_std, bos_token_id=0, eos_token_id=0,
                            attn_implementation=attn)
        model = tf.GPT2LMHeadModel(cfg)
    elif family == "bert":
        cfg = tf.BertConfig(vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=LAYERS,
                            num_attention_heads=HEADS, intermediate_size=FFN, max_position_embeddings=POSITIONS,
                            initializer_range=init_std, attn_implementation=attn)
        model = tf.BertModel(cfg, add_pooling_layer=False)
    elif family == "llama":
        cfg = tf.LlamaConfig(vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=LAYERS,
                             num_attention_heads=HEADS, num_key_value_heads=KV_HEADS, intermediate_size=FFN,
                             max_position_embeddings=POSITIONS, tie_word_embeddings=True, initializer_range=init_std,
                             bos_token_id=0,
                             eos_token_id=0, pad_token_id=0,
                             attn_implementation=attn)
        model = tf.LlamaForCausalLM(cfg)
    else:
        raise ValueError(family)
    model.eval()
    # Random init leaves LayerNorm/RMSNorm weights at exactly 1 and biases at 0, which would hide
    # a kernel that ignores them: perturb every parameter a little, deterministically.
    g = torch.Generator().manual_seed(SEED + 1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(init_std * torch.randn(p.shape, generator=g))
    return model


def cached_step(model, kwargs: dict, past: tuple, decode: bool, layers: int):
    """One causal-LM step: logits alone (prefill), or logits and each layer's present key/value
    fed from ``past`` (a KV-cache decode step), as transformers' DynamicCache holds them."""
    from transformers import DynamicCache
    if decode:
        pairs = [(past[2 * i], past[2 * i + 1]) for i in range(layers)]
        kwargs["past_key_values"] = DynamicCache(ddp_cache_data=pairs, config=model.config)
    kwargs["use_cache"] = decode
    out = model(**kwargs)
    if not decode:
        return out.logits
    present = []
    for layer in out.past_key_values.layers[:layers]:
        present += [layer.keys, layer.values]
    return (out.logits, *present)


def make_step(model, family: str, decode: bool):
    """A module whose forward takes plain tensors only (what both exporters need)."""
    import torch

    class _Step(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, position_ids, *past):
            kwargs = dict(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids)
            if family == "bert":
                kwargs["token_type_ids"] = torch.zeros_like(input_ids)
                return self.model(**kwargs).last_hidden_state
            return cached_step(self.model, kwargs, past, decode, LAYERS)

    return _Step().eval()


@contextlib.contextmanager
def onnx_native_ops(family: str):
    """Route Llama's RMSNorm and RoPE through the torch ops that export as ONNX ops (opset 23)."""
    if family != "llama":
        yield
        return
    import torch
    from transformers.models.llama import modeling_llama as ml

    def rms_forward(self, hidden_states):
        return torch.nn.functional.rms_norm(hidden_states, (hidden_states.shape[-1],), self.weight,
                                            self.variance_epsilon)

    def rope(q, k, cos, sin, unsqueeze_dim=1):
        # HF passes cos/sin as (batch, seq, head_dim) with both halves equal; the ONNX op takes
        # (batch, seq, head_dim/2) when no position_ids are given. Non-interleaved = rotate_half.
        half = cos.shape[-1] // 2
        c, s = cos[..., :half], sin[..., :half]
        return (torch.onnx.ops.rotary_embedding(q, c, s), torch.onnx.ops.rotary_embedding(k, c, s))

    saved = ml.LlamaRMSNorm.forward, ml.apply_rotary_pos_emb
    ml.LlamaRMSNorm.forward, ml.apply_rotary_pos_emb = rms_forward, rope
    try:
        yield
    finally:
        ml.LlamaRMSNorm.forward, ml.apply_rotary_pos_emb = saved


@contextlib.contextmanager
def _sdpa_gqa(on: bool):
    """Make transformers call SDPA with ``enable_gqa`` even with a mask (it otherwise repeats the
    KV heads itself, and the exported ``Attention`` would not be a GQA one)."""
    old = os.environ.get("TRANSFORMERS_SDPA_FORCE_GQA")
    if on:
        os.environ["TRANSFORMERS_SDPA_FORCE_GQA"] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("TRANSFORMERS_SDPA_FORCE_GQA", None)
        else:
            os.environ["TRANSFORMERS_SDPA_FORCE_GQA"] = old


# --------------------------------------------------------------------------- signatures
@dataclass
class Port:
    name: str
    dtype: str
    dims: list
    role: str  # tokens | mask | positions | past | present | output


@dataclass
class Signature:
    inputs: list[Port]
    outputs: list[Port]
    examples: tuple = field(default_factory=tuple)


def signature(family: str, decode: bool) -> Signature:
    import torch
    total = "past + seq" if decode else "seq"
    ins = [Port("input_ids", "i64", ["batch", "seq"], "tokens"),
           Port("attention_mask", "i64", ["batch", total], "mask"),
           Port("position_ids", "i64", ["batch", "seq"], "positions")]
    kv_heads = KV_HEADS if family == "llama" else HEADS
    outs = [Port("last_hidden_state", "f32", ["batch", "seq", HIDDEN], "output")] if family == "bert" else \
        [Port("logits", "f32", ["batch", "seq", VOCAB], "output")]
    past = EX_PAST if decode else 0
    g = torch.Generator().manual_seed(SEED + 2)
    ex = [torch.randint(0, VOCAB, (EX_BATCH, EX_SEQ), generator=g),
          torch.ones(EX_BATCH, past + EX_SEQ, dtype=torch.int64),
          torch.arange(past, past + EX_SEQ).expand(EX_BATCH, EX_SEQ).contiguous()]
    if decode:
        for i in range(LAYERS):
            for kind in ("key", "value"):
                ins.append(Port(f"past_{kind}_{i}", "f32", ["batch", kv_heads, "past", HEAD_DIM], "past"))
                outs.append(Port(f"present_{kind}_{i}", "f32", ["batch", kv_heads, "past + seq", HEAD_DIM],
                                 "present"))
                ex.append(torch.randn(EX_BATCH, kv_heads, past, HEAD_DIM, generator=g))
    return Signature(ins, outs, tuple(ex))


# --------------------------------------------------------------------------- export
def legacy_export(step, sig: Signature, opset: int) -> bytes:
    """``step`` through torch's legacy (TorchScript) exporter with every named dim dynamic."""
    import torch
    axes = {p.name: {i: d for i, d in enumerate(p.dims) if isinstance(d, str)} for p in sig.inputs + sig.outputs}
    buf = io.BytesIO()
    torch.onnx.export(step, sig.examples, buf, dynamo=False, opset_version=opset,
                      input_names=[p.name for p in sig.inputs], output_names=[p.name for p in sig.outputs],
                      dynamic_axes=axes, do_constant_folding=True)
    return buf.getvalue()


def export(family: str, exporter: str, opset: int, phase: str, path: Path, init_std: float = INIT_STD) -> None:
    import torch
    decode = phase == "decode"
    attn = "sdpa" if opset >= 23 else "eager"
    model = build(family, attn, init_std)
    sig = signature(family, decode)
    names_in = [p.name for p in sig.inputs]
    names_out = [p.name for p in sig.outputs]
    with onnx_native_ops(family if opset >= 23 else ""), _sdpa_gqa(opset >= 23), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        step = make_step(model, family, decode)
        with torch.no_grad():
            reference = step(*sig.examples)
        if opset >= 23:
            _check_swaps_are_exact(family, decode, sig, reference)
        if exporter == "legacy":
            data = legacy_export(step, sig, opset)
        else:
            shapes = {p.name: {i: d for i, d in enumerate(p.dims) if d in ("batch", "seq", "past")}
                      for p in sig.inputs}
            # the mask's past + seq is derived by torch.export: leave it to the exporter
            shapes["attention_mask"] = {0: "batch", 1: torch.export.Dim.DYNAMIC}
            # torch.export groups the *past varargs into one entry (absent when there are none)
            dyn = tuple(shapes[n] for n in names_in[:3])
            if decode:
                dyn += (tuple(shapes[n] for n in names_in[3:]),)
            with contextlib.redirect_stdout(io.StringIO()):
                prog = torch.onnx.export(step, sig.examples, dynamo=True, opset_version=opset,
                                         input_names=names_in, output_names=names_out,
                                         dynamic_shapes=dyn,
                                         optimize=True, verbose=False)
            data = _normalize_dynamo(prog.model_proto, sig)
    path.write_bytes(data)


def _check_swaps_are_exact(family, decode, sig, reference) -> None:
    """The opset-23 swaps (F.rms_norm, the ONNX rotary op) must not change the model's function."""
    import torch
    model = build(family, "eager")
    with torch.no_grad():
        plain = make_step(model, family, decode)(*sig.examples)
    ref = reference if isinstance(reference, tuple) else (reference,)
    plain = plain if isinstance(plain, tuple) else (plain,)
    for a, b in zip(ref, plain):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def _normalize_dynamo(model, sig: Signature) -> bytes:
    """Name the dynamo export's dims as ours (it spells derived ones like ``s1 + s2``), and drop
    the per-node debug metadata (stack traces with absolute paths and line numbers of this
    script), which would make the bytes depend on where and from which revision it ran."""
    import onnx
    for node in model.graph.node:
        del node.metadata_props[:]
    for vi in list(model.graph.value_info) + list(model.graph.input) + list(model.graph.output):
        del vi.metadata_props[:]
    for t in model.graph.initializer:
        del t.metadata_props[:]
    for f in model.functions:
        for node in f.node:
            del node.metadata_props[:]
    # Map the exporter's symbols to our names from the inputs, where each dim is one symbol.
    rename: dict[str, str] = {}
    for vi, port in zip(model.graph.input, sig.inputs):
        for d, want in zip(vi.type.tensor_type.shape.dim, port.dims):
            if d.dim_param and isinstance(want, str):
                # an expression (the decode mask's ``past + seq``) arrives as a fresh symbol that
                # torch.export only guards to be equal to it: name the relation
                rename.setdefault(d.dim_param, want if " " not in want else f"({want})")

    def fix(dim):
        if not dim.dim_param:
            return
        dim.dim_param = _canonical(_rename_symbols(dim.dim_param, rename))

    for vi in list(model.graph.input) + list(model.graph.output) + list(model.graph.value_info):
        if vi.type.HasField("tensor_type"):
            for d in vi.type.tensor_type.shape.dim:
                fix(d)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _rename_symbols(text: str, rename: dict[str, str]) -> str:
    """Replace whole-word symbols in one pass (so a replacement is never renamed again)."""
    import re
    return re.sub(r"[A-Za-z_][A-Za-z0-9_]*", lambda m: rename.get(m.group(0), m.group(0)), text)


def _canonical(text: str) -> str:
    """The sympy spelling ridgeline uses for a dim expression (``past + seq``)."""
    import re
    import sympy
    names = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text))
    if not names or re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", text):
        return text
    try:
        return str(sympy.sympify(text, locals={n: sympy.Symbol(n, integer=True, positive=True) for n in names}))
    except (sympy.SympifyError, SyntaxError, TypeError):
        return text


# --------------------------------------------------------------------------- manifest
def describe(path: Path, family: str, exporter: str, opset: int, phase: str, init_std: float = INIT_STD) -> dict:
    import onnx
    m = onnx.load(path)
    sig = signature(family, phase == "decode")
    ops: dict[str, int] = {}
    for n in m.graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1

    def port(vi, p: Port):
        dims = [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]
        if vi.name != p.name:
            raise RuntimeError(f"{path.name}: port {vi.name!r} where {p.name!r} was expected")
        return {"name": vi.name, "dtype": p.dtype, "dims": dims, "role": p.role}

    init = {t.name for t in m.graph.initializer}
    ins = [vi for vi in m.graph.input if vi.name not in init]
    return {
        "file": path.name, "family": family, "exporter": exporter, "opset": opset, "phase": phase,
        "init_std": init_std,
        "inputs": [port(vi, p) for vi, p in zip(ins, sig.inputs)],
        "outputs": [port(vi, p) for vi, p in zip(m.graph.output, sig.outputs)],
        "masks": [p.name for p in sig.inputs if p.role == "mask"],
        "ops": dict(sorted(ops.items())),
        "bytes": path.stat().st_size,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
    }


def export_all(out: Path, only: str | None = None) -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for family, phases in FAMILIES.items():
        for exporter, opset in VARIANTS:
            for phase in phases:
                path = out / f"{family}-{exporter}{opset}-{phase}.onnx"
                if only and only not in path.name:
                    continue
                log.info("exporting %s", path.name)
                export(family, exporter, opset, phase, path)
                entries.append(describe(path, family, exporter, opset, phase))
    accuracy = []
    for family, phase in ACCURACY:
        path = out / f"{family}-legacy17-{phase}-init{str(ACCURACY_INIT_STD).replace('.', '')}.onnx"
        if only and only not in path.name:
            continue
        log.info("exporting %s", path.name)
        export(family, "legacy", 17, phase, path, ACCURACY_INIT_STD)
        accuracy.append(describe(path, family, "legacy", 17, phase, ACCURACY_INIT_STD))
    if only:
        return entries + accuracy
    # the `make demo` default: a small legacy opset-17 GPT-2 prefill
    demo = out / "gpt2.onnx"
    demo.write_bytes((out / "gpt2-legacy17-prefill.onnx").read_bytes())
    manifest = {
        "generated_by": "tools/export_models.py",
        "config": {"vocab": VOCAB, "hidden": HIDDEN, "layers": LAYERS, "heads": HEADS, "kv_heads_llama": KV_HEADS,
                   "ffn": FFN, "max_positions": POSITIONS, "seed": SEED},
        "demo": demo.name,
        "models": entries,
        "accuracy_models": accuracy,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return entries + accuracy


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT, help=f"output folder (default {OUT.relative_to(ROOT)})")
    ap.add_argument("--only", help="export only the files whose name contains this (no manifest)")
    ap.add_argument("--check", action="store_true", help="export to a temp dir and compare with --out")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            export_all(Path(tmp))
            bad = [p.name for p in sorted(Path(tmp).iterdir())
                   if not (args.out / p.name).is_file() or (args.out / p.name).read_bytes() != p.read_bytes()]
        if bad:
            print("differs from the committed files:", ", ".join(bad))
            return 1
        print("the committed models match a fresh export")
        return 0
    entries = export_all(args.out, args.only)
    total = sum(e["bytes"] for e in entries)
    print(f"wrote {len(entries)} models ({total / 1e6:.1f} MB) and manifest.json to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
