#!/usr/bin/env python
"""Export decode-sized random-weight LLMs of architectures other than GPT-2/SmolLM2, the way a
user exports them (transformers defaults: SDPA, no position_ids; legacy exporter, opset 17;
dynamic batch/seq/past), to benchmark llvm against onnxruntime on models not tuned for.

    python tools/export_heldout.py /tmp/heldout            # all three
    python tools/export_heldout.py /tmp/heldout --only qwen2 --dynamo --greedy 8   # torch.export, checked on llvm

Writes DIR/<name>/with_past.onnx (external data beside it): input_ids, attention_mask,
past_key_values.{i}.key/value -> logits, present.{i}.key/value. Sizes are 150-250M parameters so
a decode step streams 0.6-1 GB of weights (memory-bound, like the real thing). Each export is
checked against eager torch on one decode step; ``--greedy N`` then generates N tokens with
``rl.generate`` on llvm (1 and 2 threads) and checks they are torch's greedy tokens
(``--skip-export`` checks files already written).
"""
from __future__ import annotations

import argparse
import io
import sys
import warnings
from pathlib import Path


def configs():
    """name -> config factory. Shapes follow published small models, vocab cut to 32000."""
    import transformers as tf
    common = {"vocab_size": 32000, "max_position_embeddings": 4096, "bos_token_id": 0, "eos_token_id": 0}
    return {
        # Qwen2-0.5B-like: q/k/v biases, GQA 7:1, head dim 64, SiLU gate, tied head
        "qwen2": lambda: tf.Qwen2Config(hidden_size=896, num_hidden_layers=12, num_attention_heads=14,
                                        num_key_value_heads=2, intermediate_size=4864, tie_word_embeddings=True,
                                        **common),
        # Phi-2-like: parallel attention + MLP, partial rotary (half of head dim 64), GELU, biases, untied
        "phi": lambda: tf.PhiConfig(hidden_size=1024, num_hidden_layers=8, num_attention_heads=16,
                                    intermediate_size=4096, partial_rotary_factor=0.5, **common),
        # Llama with head dim 128, GQA 4:1, untied head
        "llama128": lambda: tf.LlamaConfig(hidden_size=1024, num_hidden_layers=8, num_attention_heads=8,
                                           num_key_value_heads=2, intermediate_size=2816,
                                           tie_word_embeddings=False, **common),
    }


def build(factory):
    """The random-weight model of a config (seed 0: the same weights on every call)."""
    import torch
    from transformers import AutoModelForCausalLM
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(factory()).eval()
    with torch.no_grad():   # transformers zeroes biases at init; a trained model's are not (a zero Add folds away)
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.normal_(0.0, 0.02)
    return model


def greedy(name: str, model, path: Path, tokens: int) -> None:
    """``tokens`` greedy tokens of ``rl.generate`` on llvm against transformers' ``generate``."""
    import numpy as np
    import torch

    import ridgeline as rl
    prompt = np.random.default_rng(1).integers(1, model.config.vocab_size, (1, 12))
    with torch.no_grad():
        ref = model.generate(torch.from_numpy(prompt), max_new_tokens=tokens, do_sample=False,
                             min_new_tokens=tokens)[0, 12:].tolist()
    for threads in (1, 2):
        got = rl.generate(str(path), input_ids=prompt, max_new_tokens=tokens, backend="llvm", threads=threads)
        got = got.new_tokens[0].tolist()
        print(f"{name}: llvm {threads} thread(s) greedy {'==' if got == ref else '!='} torch: {got} vs {ref}")
        if got != ref:
            sys.exit(f"export_heldout: {name}: llvm's greedy tokens differ from torch's")


def name_mask_dim(proto) -> None:
    """torch.export names the mask's length with a fresh symbol (``s53``), only guarded to equal
    past + seq: spell it that way, as the legacy export does, so the relation is in the file."""
    g = proto.graph
    sym = g.input[1].type.tensor_type.shape.dim[1].dim_param
    for vi in [*g.input, *g.output, *g.value_info]:
        for d in vi.type.tensor_type.shape.dim:
            if sym and d.dim_param == sym:
                d.dim_param = "past + seq"


def export(name: str, model, out: Path, dynamo: bool = False) -> Path:
    import numpy as np
    import onnx
    import onnxruntime as ort
    import torch
    from transformers import DynamicCache

    cfg = model.config
    L = cfg.num_hidden_layers
    kv = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
    d = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads

    class WithPast(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = model

        def forward(self, input_ids, attention_mask, *past):
            pairs = [(past[2 * i], past[2 * i + 1]) for i in range(L)]
            o = self.m(input_ids=input_ids, attention_mask=attention_mask,
                       past_key_values=DynamicCache(ddp_cache_data=pairs, config=cfg), use_cache=True)
            return (o.logits, *[t for layer in o.past_key_values.layers[:L] for t in (layer.keys, layer.values)])

    b, s, p = 2, 5, 3
    ids = torch.randint(0, cfg.vocab_size, (b, s))
    past = [torch.randn(b, kv, p, d) for _ in range(2 * L)]
    mask = torch.ones(b, p + s, dtype=torch.int64)
    pn = [f"past_key_values.{i}.{k}" for i in range(L) for k in ("key", "value")]
    on = [f"present.{i}.{k}" for i in range(L) for k in ("key", "value")]
    axes = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "total"},
            "logits": {0: "batch", 1: "seq"}, **{n: {0: "batch", 2: "past"} for n in pn},
            **{n: {0: "batch", 2: "total"} for n in on}}
    (out / name).mkdir(parents=True, exist_ok=True)
    path = out / name / ("with_past_dynamo.onnx" if dynamo else "with_past.onnx")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        names = {"input_names": ["input_ids", "attention_mask", *pn], "output_names": ["logits", *on]}
        if dynamo:   # torch.export derives the mask's past + seq itself (see export_models.py)
            dyn = ({0: "batch", 1: "seq"}, {0: "batch", 1: torch.export.Dim.DYNAMIC},
                   tuple({0: "batch", 2: "past"} for _ in pn))
            proto = torch.onnx.export(WithPast().eval(), (ids, mask, *past), dynamo=True, opset_version=18,
                                      dynamic_shapes=dyn, optimize=True, verbose=False, **names).model_proto
            name_mask_dim(proto)
        else:
            buf = io.BytesIO()
            torch.onnx.export(WithPast().eval(), (ids, mask, *past), buf, dynamo=False, opset_version=17,
                              dynamic_axes=axes, do_constant_folding=True, **names)
            proto = onnx.load_from_string(buf.getvalue())
        onnx.save(proto, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                  location=path.name + ".data", size_threshold=1024)
        # one decode step (batch 1, past 7) against eager torch
        ids1, past1 = torch.randint(0, cfg.vocab_size, (1, 1)), [torch.randn(1, kv, 7, d) for _ in range(2 * L)]
        ref = WithPast()(ids1, torch.ones(1, 8, dtype=torch.int64), *past1)[0].numpy()
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(["logits"], {"input_ids": ids1.numpy(), "attention_mask": np.ones((1, 8), np.int64),
                                **{n: t.numpy() for n, t in zip(pn, past1)}})[0]
    err = float(np.abs(got - ref).max())
    n_params = sum(t.numel() for t in model.parameters())
    print(f"{name}: {n_params / 1e6:.0f}M params, layers {L}, kv heads {kv}, head dim {d}; "
          f"onnxruntime vs torch max |diff| {err:.2e} -> {path}")
    if err > 1e-3:
        sys.exit(f"export_heldout: {name}: onnxruntime differs from torch by {err:.2e}")
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--only", action="append", help="export only this config (repeatable)")
    ap.add_argument("--greedy", type=int, default=0, help="check N greedy tokens on llvm against torch")
    ap.add_argument("--skip-export", action="store_true", help="only check the files already in OUT")
    ap.add_argument("--dynamo", action="store_true", help="torch.export (dynamo=True, opset 18): with_past_dynamo.onnx")
    args = ap.parse_args()
    table = configs()
    for name in args.only or table:
        if name not in table:
            sys.exit(f"export_heldout: unknown config {name!r} (have {', '.join(table)})")
        model = build(table[name])
        path = args.out / name / ("with_past_dynamo.onnx" if args.dynamo else "with_past.onnx")
        if not args.skip_export:
            path = export(name, model, args.out, args.dynamo)
        if args.greedy:
            greedy(name, model, path, args.greedy)


if __name__ == "__main__":
    main()
