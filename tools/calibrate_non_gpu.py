"""The systolic, wafer-scale and dataflow families against published measurements.

    python tools/calibrate_non_gpu.py            # the table, with each row's command
    python tools/calibrate_non_gpu.py --json

Two kinds of rows:

- **REFERENCE.md rows.** The maxtext MFU rows *set* each TPU's ``efficiency.matrix`` (the share of
  the arrays' streaming rate that the rest of a training step leaves; the mechanisms alone give
  86-100% MFU) — marked "calibrated on". The Cerebras and Groq decode rows set nothing: their
  targets carry published figures and stated assumptions only, and the rows are checks.
- **Rows not in REFERENCE.md** (vendor figures from public announcements): checks only; nothing
  was tuned to them.

The maxtext workload is a forward pass of a dense LLM as one chip runs it under FSDP: llama-2-70b,
4096 tokens per chip, FlashAttention-style tile records on the attention nodes (maxtext uses
splash attention), one chip (its MFU does not depend on the weights fitting: FSDP shards them).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ridgeline import models
from ridgeline.cost_models import estimate, get_target
from ridgeline.cost_models.traffic import flash_attention_tile

__all__ = ["ROWS", "decode_tokens_per_s", "maxtext_mfu", "prefill_seconds"]


def maxtext_mfu(target: str) -> float:
    """MFU (%) of the maxtext-like step (module docstring) on ``target``."""
    g = models.build("llama-2-70b", phase="prefill", context=4096, batch=1)
    t = get_target(target)
    for n in g:
        if n.op == "Attention":
            n.meta["tile"] = flash_attention_tile(n, t)
    return 100.0 * estimate(g, t, tp=1, pp=1, companion=None).llm.mfu


def decode_tokens_per_s(preset: str, target: str, options: dict | None = None, **build) -> float:
    """Per-user decode rate (1 / TPOT) of ``preset`` on ``target`` at its default deployment."""
    g = models.build(preset, phase="decode", **build)
    return 1.0 / estimate(g, target, tp="auto", pp="auto", companion=None, **(options or {})).time_s


def prefill_seconds(preset: str, target: str, prompt: int, **build) -> float:
    """Time to first token at batch 1: one prefill step of ``prompt`` tokens (no queueing, no network)."""
    g = models.build(preset, phase="prefill", batch=1, context=prompt, prompt=prompt, **build)
    return estimate(g, target, tp="auto", pp="auto", companion=None).time_s


#: the Aug 2024 launch release streamed a token's vector on one fabric route (its per-layer time
#: grows with the hidden size: 8B ~17 us, 70B ~28 us per layer); the Nov 2024 405B release split
#: it over each region's rows (~8 us per layer at 4x the 8B's width): the rows say which release
LAUNCH = {"vector_layout": "route"}


EST = "ridgeline estimate"
ROWS = [
    # (label, target, measured, unit, function, command, use, source)
    *[("maxtext dense-LLM training MFU", t, meas, "MFU %", (lambda t=t: maxtext_mfu(t)),
       "python tools/calibrate_non_gpu.py (maxtext_mfu: llama-2-70b forward, 4096 tokens/chip)", "calibrated on",
       "REFERENCE.md (AI-Hypercomputer/maxtext)")
      for t, meas in (("tpu-v5e", 61.5), ("tpu-v5p", 65.4), ("tpu-v6e", 43.8))],
    ("Cerebras Llama-3.1-8B 16-bit per-user decode", "wse-3", 1800, "tok/s",
     lambda: decode_tokens_per_s("llama-3-8b", "wse-3", LAUNCH, context=2048),
     (f"{EST} llama-3-8b --target wse-3 --context 2048 -O vector_layout=route   (Llama 3.1 8B = the Llama 3 8B "
      "architecture; launch release)"), "check",
     "REFERENCE.md (Cerebras launch blog, Aug 2024)"),
    ("Groq Llama-2-7B per-user decode (2048 context)", "groq-lpu", 750, "tok/s",
     lambda: decode_tokens_per_s("llama-2-7b", "groq-lpu", context=2048, dtype="fp16"),
     f"{EST} llama-2-7b --target groq-lpu --context 2048 --dtype fp16", "check",
     "REFERENCE.md (Groq vendor figures, Feb 2024)"),
    # ---- not in REFERENCE.md: checks only, nothing tuned to them
    ("Cerebras Llama-3.1-70B per-user decode (4 CS-3)", "wse-3", 450, "tok/s",
     lambda: decode_tokens_per_s("llama-3-70b", "wse-3", LAUNCH, context=2048),
     f"{EST} llama-3-70b --target wse-3 --context 2048 -O vector_layout=route", "check (not in REFERENCE)",
     "Cerebras inference launch, Aug 2024 (The Register, Hot Chips 2024 coverage)"),
    ("Cerebras Llama-3.1-405B per-user decode", "wse-3", 969, "tok/s",
     lambda: decode_tokens_per_s("llama-3.1-405b", "wse-3", context=2048),
     f"{EST} llama-3.1-405b --target wse-3 --context 2048", "check (not in REFERENCE)",
     "Cerebras announcement, Nov 2024 (a later software release than the 8B/70B rows)"),
    *[(f"Groq Llama-2-70B per-user decode (4096 context), {label}", "groq-lpu", 300, "tok/s",
       (lambda dt=dt: decode_tokens_per_s("llama-2-70b", "groq-lpu", context=4096, dtype=dt)),
       f"{EST} llama-2-70b --target groq-lpu --context 4096 --dtype {dt}", "check (not in REFERENCE)",
       "Groq vendor figures, Feb 2024 (TechPowerUp coverage; ~576 chips)")
      for label, dt in (("16-bit", "fp16"), ("8-bit (W8A8)", "int8"))],
    # an upper bound, not a point: LLMPerf times the first token end to end, from a client in AWS
    # us-west-2 through Groq's public API at 5 concurrent requests (network round trips, HTTP,
    # tokenization and queueing included, none of which is modelled); the machine's own prefill
    # must come in under it. Before prompts streamed through the chip pipeline in chunks the
    # model gave 348 ms (16-bit), above the whole end-to-end figure.
    *[(f"Groq Llama-2-70B TTFT, 550 prompt tokens, {label} (bound: end-to-end API median)", "groq-lpu", 0.22, "s",
       (lambda dt=dt: prefill_seconds("llama-2-70b", "groq-lpu", 550, dtype=dt)),
       f"{EST} llama-2-70b --target groq-lpu --phase prefill --context 550 --dtype {dt}",
       "upper bound (not in REFERENCE)",
       ("ray-project/llmperf-leaderboard README (llama2-70b-4096 on Groq, 550 input tokens: median 0.22 s, "
        "min 0.17 s)"))
      for label, dt in (("16-bit", "fp16"), ("8-bit", "int8"))],
]


def run_rows() -> list[dict]:
    out = []
    for label, target, measured, unit, fn, command, use, source in ROWS:
        pred = fn()
        out.append({"row": label, "target": target, "measured": measured, "predicted": pred, "unit": unit,
                    "error": (pred - measured) / measured, "use": use, "command": command, "source": source})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = run_rows()
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        print()
        return 0
    w = max(len(r["row"]) for r in rows)
    print(f"{'row':{w}}  {'target':9} {'measured':>9} {'predicted':>10} {'error':>7}  {'unit':6} use")
    for r in rows:
        print(f"{r['row']:{w}}  {r['target']:9} {r['measured']:>9g} {r['predicted']:>10.4g} {r['error']:>+7.1%}  "
              f"{r['unit']:6} {r['use']}")
    print("\ncommands and sources:")
    for r in rows:
        print(f"  {r['row']} [{r['target']}]: {r['command']}\n      source: {r['source']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
