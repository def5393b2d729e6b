#!/usr/bin/env python
"""Export the model zoo: tiny transformers exported the way users export them.

    python tools/export_zoo.py                 # writes tests/models/zoo/*.onnx + manifest.json
    python tools/export_zoo.py --only llama    # just the files whose name contains "llama"

Unlike ``tools/export_models.py`` (eager attention, explicit ``position_ids``), every model here
is built from its transformers 5.x config with **default settings**: no ``attn_implementation``
override (SDPA, so its masking and fully-masked-row guard), no ``position_ids`` input
(transformers derives them from the cache position), dynamic ``batch``/``seq``/``past`` axes.
Each architecture is exported by the legacy exporter (``dynamo=False``, opset 17) and the dynamo
exporter at opset 18 and 23 (where ``aten.scaled_dot_product_attention`` becomes ``Attention``);
decoders also as a KV-cache decode step. Configs vary the way users' models do: head dims
8..128 incl. 24/40/80/96, GQA ratios 1..8 and MQA, hidden sizes not divisible by 16, odd vocabs.

Weights are random (fixed seed) and perturbed by ``INIT_STD`` so norms have non-trivial weights
and the softmax is peaked (a wrong scale or mask shows up far above the test tolerance). A file
that fails to export is recorded in the manifest under ``failed`` with the one-line reason.
The manifest records per file its ports, op counts, and ``expect``: the fused-op counts
``-p default`` must leave (one Attention per layer, and the norms/rotary/gelu the math has).
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
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "models" / "zoo"
sys.path.insert(0, str(ROOT / "tools"))
import export_models as em

log = logging.getLogger("export_zoo")
SEED, INIT_STD, LAYERS = 0, 0.2, 2
EX_BATCH, EX_SEQ, EX_PAST = 2, 5, 3
VARIANTS = [("legacy", 17), ("dynamo", 18), ("dynamo", 23)]
#: files onnxruntime runs only at batch 1 as exported (recorded in the manifest)
ORT_BATCH1_ONLY: set[str] = set()


def _configs():
    """name -> (kind, config factory, expected fusions per layer). kind: decoder | encoder | vision |
    speech (an audio encoder on log-mel frames) | seq2seq (the decoder of an encoder-decoder: causal
    self-attention plus cross-attention over the encoder's states, whose length ``enc`` differs)."""
    import transformers as tf
    common = {"num_hidden_layers": LAYERS, "max_position_embeddings": 64, "initializer_range": 0.02}
    dec = {"bos_token_id": 0, "eos_token_id": 0, "pad_token_id": 0, **common}
    return {
        # head dim 24, MHA, learned positions, tanh GELU, LayerNorm
        "gpt2": ("decoder", lambda: tf.GPT2Config(vocab_size=67, n_positions=64, n_embd=48, n_layer=LAYERS,
                                                  n_head=2, n_inner=64, bos_token_id=0, eos_token_id=0),
                 {"Attention": 1, "LayerNormalization": 2, "Gelu": 1}),
        # Pythia: head dim 40, partial rotary (25 %), parallel residual, erf GELU
        "gpt_neox": ("decoder", lambda: tf.GPTNeoXConfig(vocab_size=71, hidden_size=40, num_attention_heads=1,
                                                         intermediate_size=48, **dec),
                     {"Attention": 1, "LayerNormalization": 2, "Gelu": 1}),
        # head dim 8, GQA 3 (6 query / 2 KV heads), RMSNorm, SwiGLU, rotate-half RoPE
        "llama": ("decoder", lambda: tf.LlamaConfig(vocab_size=73, hidden_size=48, num_attention_heads=6,
                                                    num_key_value_heads=2, intermediate_size=40, **dec),
                  {"Attention": 1, "RMSNormalization": 2, "RotaryEmbedding": 2}),
        # head dim 16, MQA with 4 query heads
        "mistral": ("decoder", lambda: tf.MistralConfig(vocab_size=79, hidden_size=64, num_attention_heads=4,
                                                        num_key_value_heads=1, intermediate_size=40, **dec),
                    {"Attention": 1, "RMSNormalization": 2, "RotaryEmbedding": 2}),
        # head dim 10, GQA 8 (8 query / 1 KV head), q/k/v biases
        "qwen2": ("decoder", lambda: tf.Qwen2Config(vocab_size=61, hidden_size=80, num_attention_heads=8,
                                                    num_key_value_heads=1, intermediate_size=32, **dec),
                  {"Attention": 1, "RMSNormalization": 2, "RotaryEmbedding": 2}),
        # explicit head dim 128 > hidden/heads, GQA 2, per-head q/k RMSNorm
        "qwen3": ("decoder", lambda: tf.Qwen3Config(vocab_size=59, hidden_size=24, num_attention_heads=2,
                                                    num_key_value_heads=1, head_dim=128, intermediate_size=32,
                                                    **dec),
                  {"Attention": 1, "RMSNormalization": 4, "RotaryEmbedding": 2}),
        # head dim 80 (one head), fused qkv projection
        "phi3": ("decoder", lambda: tf.Phi3Config(vocab_size=53, hidden_size=80, num_attention_heads=1,
                                                  num_key_value_heads=1, intermediate_size=32, **dec),
                 {"Attention": 1, "RMSNormalization": 2, "RotaryEmbedding": 2}),
        # explicit head dim 96, GQA 2, hidden 30, sandwich norms, q/k norm, GELU-tanh gate
        "gemma3": ("decoder", lambda: tf.Gemma3TextConfig(vocab_size=67, hidden_size=30, num_attention_heads=2,
                                                          num_key_value_heads=1, head_dim=96,
                                                          intermediate_size=32, sliding_window=16, **dec),
                   {"Attention": 1, "RMSNormalization": 6, "RotaryEmbedding": 2}),
        # BERT: head dim 12, erf GELU, post-LN
        "bert": ("encoder", lambda: tf.BertConfig(vocab_size=67, hidden_size=36, num_attention_heads=3,
                                                  intermediate_size=48, type_vocab_size=2, **common),
                 {"Attention": 1, "LayerNormalization": 2, "Gelu": 1}),
        # RoBERTa: head dim 16 (3 heads), padding-offset positions
        "roberta": ("encoder", lambda: tf.RobertaConfig(vocab_size=71, hidden_size=48, num_attention_heads=3,
                                                        intermediate_size=48, pad_token_id=1, **common),
                    {"Attention": 1, "LayerNormalization": 2, "Gelu": 1}),
        # DistilBERT: head dim 32 (hidden 64, 2 heads)
        "distilbert": ("encoder", lambda: tf.DistilBertConfig(vocab_size=61, dim=64, n_heads=2, n_layers=LAYERS,
                                                              hidden_dim=48, max_position_embeddings=64),
                       {"Attention": 1, "LayerNormalization": 2, "Gelu": 1}),
        # ViT: head dim 12, 32x32 images in 8x8 patches (16 + cls tokens)
        "vit": ("vision", lambda: tf.ViTConfig(image_size=32, patch_size=8, hidden_size=48, num_attention_heads=4,
                                               intermediate_size=48, num_hidden_layers=LAYERS),
                {"Attention": 1, "LayerNormalization": 2, "Gelu": 1}),
        # T5 encoder: no attention scale, relative position bias added to the mask, RMS norms
        # (T5LayerNorm), ReLU FFN; head dim 20
        "t5": ("encoder", lambda: _t5(), {"Attention": 1, "RMSNormalization": 2}),
        # T5 decoder: causal self-attention with the bias, then cross-attention (no causal mask,
        # no position bias, key length enc != seq)
        "t5_decoder": ("seq2seq", lambda: _t5(), {"Attention": 2, "RMSNormalization": 3}),
        # Whisper encoder: 2 conv layers over 8 mel bins, sinusoidal positions, no key bias; head dim 12
        "whisper": ("speech", lambda: _whisper(), {"Attention": 1, "LayerNormalization": 2, "Gelu": 1}),
        # Whisper decoder: causal self-attention (no padding mask) and cross-attention
        "whisper_decoder": ("seq2seq", lambda: _whisper(), {"Attention": 2, "LayerNormalization": 3, "Gelu": 1}),
        # BART encoder: learned positions (offset 2), a LayerNorm on the embeddings, erf GELU; head dim 28
        "bart": ("encoder", lambda: _bart(), {"Attention": 1, "LayerNormalization": 2, "Gelu": 1}),
        # BART decoder: causal self-attention, then cross-attention over the encoder's states
        "bart_decoder": ("seq2seq", lambda: _bart(), {"Attention": 2, "LayerNormalization": 3, "Gelu": 1}),
    }


def _t5():
    import transformers as tf
    return tf.T5Config(vocab_size=57, d_model=40, d_kv=20, d_ff=48, num_layers=LAYERS, num_decoder_layers=LAYERS,
                       num_heads=2, relative_attention_num_buckets=8, relative_attention_max_distance=16,
                       decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)


def _whisper():
    import transformers as tf
    return tf.WhisperConfig(vocab_size=61, num_mel_bins=8, encoder_layers=LAYERS, decoder_layers=LAYERS,
                            encoder_attention_heads=2, decoder_attention_heads=2, d_model=24, encoder_ffn_dim=32,
                            decoder_ffn_dim=32, max_source_positions=WHISPER_FRAMES // 2, max_target_positions=32,
                            pad_token_id=0, bos_token_id=0, eos_token_id=0, decoder_start_token_id=0)


def _bart():
    import transformers as tf
    return tf.BartConfig(vocab_size=59, d_model=56, encoder_layers=LAYERS, decoder_layers=LAYERS,
                         encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=48,
                         decoder_ffn_dim=48, max_position_embeddings=64, pad_token_id=1, bos_token_id=0,
                         eos_token_id=2, decoder_start_token_id=2, forced_eos_token_id=2)


#: encoder-decoder parts: name -> (model class, which half)
_PARTS = {"t5": ("T5ForConditionalGeneration", "encoder"), "t5_decoder": ("T5ForConditionalGeneration", "decoder"),
          "whisper": ("WhisperForConditionalGeneration", "encoder"),
          "whisper_decoder": ("WhisperForConditionalGeneration", "decoder"),
          "bart": ("BartForConditionalGeneration", "encoder"), "bart_decoder": ("BartForConditionalGeneration", "decoder")}
#: Whisper's encoder takes exactly 2 x max_source_positions mel frames
WHISPER_FRAMES = 24
EX_ENC = 6


def build(name: str):
    import torch
    import transformers as tf
    kind, factory, _ = _configs()[name]
    torch.manual_seed(SEED)
    cfg = factory()
    if name in _PARTS:
        model = getattr(tf, _PARTS[name][0])(cfg)
    elif kind == "decoder":
        model = tf.AutoModelForCausalLM.from_config(cfg)
    else:
        model = tf.AutoModel.from_config(cfg, add_pooling_layer=False) if name in ("bert", "roberta", "vit") \
            else tf.AutoModel.from_config(cfg)
    model.eval()
    g = torch.Generator().manual_seed(SEED + 1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(INIT_STD * torch.randn(p.shape, generator=g))
    if name in _PARTS:  # the half, after perturbing the whole model (shared embeddings alike)
        model = model.get_encoder() if _PARTS[name][1] == "encoder" else model.get_decoder()
    return model


def signature(name: str, model, decode: bool) -> em.Signature:
    import torch
    kind = _configs()[name][0]
    cfg = model.config
    g = torch.Generator().manual_seed(SEED + 2)
    if kind == "vision":
        c, s = cfg.num_channels, cfg.image_size
        return em.Signature([em.Port("pixel_values", "f32", ["batch", c, s, s], "pixels")],
                            [em.Port("last_hidden_state", "f32", ["batch", (s // cfg.patch_size) ** 2 + 1,
                                                                  cfg.hidden_size], "output")],
                            (torch.randn(EX_BATCH, c, s, s, generator=g),))
    if kind == "speech":
        c, hidden = cfg.num_mel_bins, cfg.d_model
        return em.Signature([em.Port("input_features", "f32", ["batch", c, WHISPER_FRAMES], "pixels")],
                            [em.Port("last_hidden_state", "f32", ["batch", WHISPER_FRAMES // 2, hidden], "output")],
                            (torch.randn(EX_BATCH, c, WHISPER_FRAMES, generator=g),))
    if kind == "seq2seq":
        hidden = cfg.d_model
        ins = [em.Port("input_ids", "i64", ["batch", "seq"], "tokens"),
               em.Port("encoder_hidden_states", "f32", ["batch", "enc", hidden], "states")]
        ex = [torch.randint(2, cfg.vocab_size, (EX_BATCH, EX_SEQ), generator=g),
              torch.randn(EX_BATCH, EX_ENC, hidden, generator=g)]
        if name.startswith("t5"):  # Whisper's decoder takes no encoder mask
            ins.append(em.Port("encoder_attention_mask", "i64", ["batch", "enc"], "mask"))
            ex.append(torch.ones(EX_BATCH, EX_ENC, dtype=torch.int64))
        outs = [em.Port("last_hidden_state", "f32", ["batch", "seq", hidden], "output")]
        if decode:  # the self-attention cache; cross-attention K/V come from the encoder states
            _past_ports(ins, outs, ex, cfg.num_attention_heads, hidden // cfg.num_attention_heads
                        if not name.startswith("t5") else cfg.d_kv, g)
        return em.Signature(ins, outs, tuple(ex))
    total = "past + seq" if decode else "seq"
    past = EX_PAST if decode else 0
    vocab = cfg.vocab_size
    ins = [em.Port("input_ids", "i64", ["batch", "seq"], "tokens"),
           em.Port("attention_mask", "i64", ["batch", total], "mask")]
    ex = [torch.randint(2, vocab, (EX_BATCH, EX_SEQ), generator=g),
          torch.ones(EX_BATCH, past + EX_SEQ, dtype=torch.int64)]
    if kind == "encoder":
        hidden = getattr(cfg, "hidden_size", None) or cfg.dim
        return em.Signature(ins, [em.Port("last_hidden_state", "f32", ["batch", "seq", hidden], "output")],
                            tuple(ex))
    outs = [em.Port("logits", "f32", ["batch", "seq", vocab], "output")]
    if decode:
        kvh = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
        hd = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        _past_ports(ins, outs, ex, kvh, hd, g)
    return em.Signature(ins, outs, tuple(ex))


def _past_ports(ins: list, outs: list, ex: list, kvh: int, hd: int, g) -> None:
    """Each layer's past key/value inputs and present outputs, with example tensors."""
    import torch
    for i in range(LAYERS):
        for kind_ in ("key", "value"):
            ins.append(em.Port(f"past_{kind_}_{i}", "f32", ["batch", kvh, "past", hd], "past"))
            outs.append(em.Port(f"present_{kind_}_{i}", "f32", ["batch", kvh, "past + seq", hd], "present"))
            ex.append(torch.randn(EX_BATCH, kvh, EX_PAST, hd, generator=g))


def make_step(model, kind: str, decode: bool):
    """A module taking plain tensors (what both exporters need); no position_ids."""
    import torch

    class _Step(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, *args):
            if kind == "vision":
                return self.model(pixel_values=args[0]).last_hidden_state
            if kind == "speech":
                return self.model(input_features=args[0]).last_hidden_state
            if kind == "seq2seq":
                ids, states, *rest = args
                kw = {"encoder_attention_mask": rest[0]} if len(rest) % 2 else {}
                return _seq2seq_step(self.model, ids, states, kw, rest[len(rest) % 2:], decode)
            input_ids, attention_mask, *past = args
            if kind == "encoder":
                return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            kw = {"input_ids": input_ids, "attention_mask": attention_mask}
            return em.cached_step(self.model, kw, past, decode, LAYERS)

    return _Step().eval()


def _seq2seq_step(model, ids, states, kw: dict, past, decode: bool):
    """A decoder step over encoder states: the hidden states, and (decode) the self-attention
    cache grown from ``past`` (the cross-attention cache starts empty: K/V from ``states``)."""
    if not decode:
        return model(input_ids=ids, encoder_hidden_states=states, use_cache=False, **kw).last_hidden_state
    from transformers import DynamicCache, EncoderDecoderCache
    pairs = [(past[2 * i], past[2 * i + 1]) for i in range(LAYERS)]
    cache = EncoderDecoderCache(DynamicCache(ddp_cache_data=pairs, config=model.config), DynamicCache())
    out = model(input_ids=ids, encoder_hidden_states=states, past_key_values=cache, use_cache=True, **kw)
    present = []
    for layer in out.past_key_values.self_attention_cache.layers[:LAYERS]:
        present += [layer.keys, layer.values]
    return (out.last_hidden_state, *present)


def export(name: str, exporter: str, opset: int, phase: str, path: Path) -> None:
    import torch
    kind = _configs()[name][0]
    decode = phase == "decode"
    model = build(name)
    sig = signature(name, model, decode)
    names_in, names_out = [p.name for p in sig.inputs], [p.name for p in sig.outputs]
    step = make_step(model, kind, decode)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        if exporter == "legacy":
            import onnx
            m = onnx.load_from_string(em.legacy_export(step, sig, opset))
            data = em._normalize_dynamo(m, sig)
        else:
            shapes = [{i: d for i, d in enumerate(p.dims) if d in ("batch", "seq", "past", "enc")}
                      for p in sig.inputs]
            if kind in ("decoder", "encoder"):
                shapes[1] = {0: "batch", 1: torch.export.Dim.DYNAMIC}
            dyn = (tuple(shapes),)  # forward(*args): torch.export sees one varargs entry
            prog = torch.onnx.export(step, sig.examples, dynamo=True, opset_version=opset, input_names=names_in,
                                     output_names=names_out, dynamic_shapes=dyn, optimize=True, verbose=False)
            data = em._normalize_dynamo(prog.model_proto, sig)
    path.write_bytes(data)
    _check_against_torch(path, step, sig)


def _check_against_torch(path: Path, step, sig) -> None:
    """The exported file must compute what the model does (onnxruntime vs eager torch)."""
    import numpy as np
    import onnxruntime as ort
    import torch
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    examples = sig.examples
    try:
        got = sess.run(None, {p.name: x.numpy() for p, x in zip(sig.inputs, examples)})
    except Exception as exc:
        if "cos_cache" not in str(exc):
            raise
        # torch's opset-23 RotaryEmbedding passes cos/sin of batch 1, which onnxruntime rejects
        # for a batch of 2 or more: an exporter bug users meet; check the file at batch 1
        ORT_BATCH1_ONLY.add(path.name)
        examples = tuple(x[:1] for x in examples)
        got = sess.run(None, {p.name: x.numpy() for p, x in zip(sig.inputs, examples)})
    with torch.no_grad():
        ref = step(*examples)
    ref = ref if isinstance(ref, tuple) else (ref,)
    for a, b in zip(got, ref):
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-3, atol=1e-3)


def describe(path: Path, name: str, exporter: str, opset: int, phase: str) -> dict:
    import onnx
    m = onnx.load(path)
    kind, _, per_layer = _configs()[name]
    model = build(name)
    sig = signature(name, model, phase == "decode")
    ops: dict[str, int] = {}
    for n in m.graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    init = {t.name for t in m.graph.initializer}
    ins = [vi for vi in m.graph.input if vi.name not in init]

    def port(vi, p):
        return {"name": vi.name, "dtype": p.dtype, "role": p.role,
                "dims": [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]}

    cfg = model.config
    heads = getattr(cfg, "num_attention_heads", None) or cfg.n_heads
    return {
        "file": path.name, "family": name, "kind": kind, "exporter": exporter, "opset": opset, "phase": phase,
        "layers": LAYERS, "heads": heads, "kv_heads": getattr(cfg, "num_key_value_heads", None) or heads,
        "head_dim": getattr(cfg, "head_dim", None) or (getattr(cfg, "hidden_size", None) or cfg.dim) // heads,
        "inputs": [port(vi, p) for vi, p in zip(ins, sig.inputs)],
        "outputs": [port(vi, p) for vi, p in zip(m.graph.output, sig.outputs)],
        "masks": [p.name for p in sig.inputs if p.role == "mask"],
        "expect": {op: k * LAYERS for op, k in per_layer.items()},
        **_attention_facts(name, kind),
        "ort_batch1_only": path.name in ORT_BATCH1_ONLY,
        "ops": dict(sorted(ops.items())),
        "bytes": path.stat().st_size,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
    }


def _attention_facts(name: str, kind: str) -> dict:
    """What the fused Attention nodes of an encoder-decoder part must look like: ``cross_attention``
    per file (K/V of the encoder's length ``enc``, no causal mask), and T5's ``attention_scale`` 1
    (T5 folds the scale into its weights; its relative position bias arrives as the additive mask)."""
    facts = {}
    if kind == "seq2seq":
        facts["cross_attention"] = LAYERS
    if name.startswith("t5"):
        facts["attention_scale"] = 1.0
    return facts


def export_all(out: Path, only: str | None, resume: bool = False) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    mpath = out / "manifest.json"
    manifest = json.loads(mpath.read_text()) if mpath.is_file() else {"models": [], "failed": []}
    keep = {e["file"]: e for e in manifest["models"]}
    failed = {f["file"]: f for f in manifest.get("failed", [])}
    for name, (kind, _, _) in _configs().items():
        for exporter, opset in VARIANTS:
            for phase in ("prefill", "decode") if kind in ("decoder", "seq2seq") else ("prefill",):
                path = out / f"{name}-{exporter}{opset}-{phase}.onnx"
                if (only and only not in path.name) or (resume and path.name in keep and path.is_file()):
                    continue
                log.info("exporting %s", path.name)
                try:
                    export(name, exporter, opset, phase, path)
                    keep[path.name] = describe(path, name, exporter, opset, phase)
                    failed.pop(path.name, None)
                except Exception as exc:  # noqa: BLE001 - an exporter limitation is a zoo fact, recorded
                    while exc.__cause__ is not None:  # the exporter's own error, not its wrapper
                        exc = exc.__cause__
                    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
                    log.warning("  failed: %s", reason)
                    path.unlink(missing_ok=True)
                    keep.pop(path.name, None)
                    failed[path.name] = {"file": path.name, "reason": f"{type(exc).__name__}: {reason}"}
                mpath.write_text(json.dumps(_manifest(keep, failed), indent=1) + "\n")
    return _manifest(keep, failed)


def _manifest(keep: dict, failed: dict) -> dict:
    import torch
    import transformers
    return {"generated_by": "tools/export_zoo.py",
            "versions": {"torch": torch.__version__.split("+")[0], "transformers": transformers.__version__},
            "models": sorted(keep.values(), key=lambda e: e["file"]),
            "failed": sorted(failed.values(), key=lambda e: e["file"])}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT, help="output folder (default tests/models/zoo)")
    ap.add_argument("--only", help="export only the files whose name contains this")
    ap.add_argument("--resume", action="store_true", help="skip files the manifest already has")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    m = export_all(args.out, args.only, args.resume)
    total = sum(e["bytes"] for e in m["models"])
    print(f"{len(m['models'])} models ({total / 1e6:.1f} MB), {len(m['failed'])} failed, in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
