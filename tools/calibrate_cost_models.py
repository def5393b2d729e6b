"""Check the cost models against the measured rows of REFERENCE.md: prediction, measurement, error.

    python tools/calibrate_cost_models.py            # the table
    python tools/calibrate_cost_models.py --json

Each row names the command that reproduces it (``ridgeline estimate …`` where one exists).
Rows a target file was *calibrated on* (they set an efficiency factor) are marked as such; the
others are checks. Rows of families that are not implemented yet are listed as skipped.

For the time-to-first-token rows (TensorRT-LLM runs fused FlashAttention kernels) the table also
shows the estimate with FlashAttention tile records on the attention nodes — the records a
``tile{target=…}`` pass leaves (``ridgeline.cost_models.traffic.flash_attention_tile``); without
them the untiled attention materializes its score matrix, as the contract says.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ridgeline import models  # noqa: E402
from ridgeline.cost_models import estimate, get_target  # noqa: E402
from ridgeline.cost_models.families import is_implemented  # noqa: E402
from ridgeline.cost_models.traffic import flash_attention_tile  # noqa: E402
from ridgeline.ir import Graph, tensor  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from calibrate_non_gpu import ROWS as _NON_GPU_ROWS  # noqa: E402


def _decode(preset, target, *, tp=1, context=256, dequant="fast", **kw):
    g = models.build(preset, phase="decode", context=context, **kw)
    return 1.0 / estimate(g, target, tp=tp, cuda_graphs=True, dequant=dequant, companion=None).time_s


def _ttft(target, prompt, dtype, *, flash=False):
    g = models.build("llama-2-7b", phase="prefill", context=prompt, dtype=dtype)
    if flash:
        t = get_target(target)
        for n in g:
            if n.op == "Attention":
                n.meta["tile"] = flash_attention_tile(n, t)
    return estimate(g, target).time_s * 1e3


def _up_proj(target, tokens):
    g = Graph("up_proj")
    x = g.add_input("x", tensor("f16", tokens, 4096))
    w = g.add_constant("w", type=tensor("f16", 4096, 22016))
    g.outputs = [g.add_node("MatMul", [x, w]).outputs[0]]
    r = estimate(g, target).nodes[0]
    return (r.time_s - r.overhead_s) * 1e3       # kernel time, as the profiler measures it


def _mamf(target):
    best = 0.0
    for m, n, k in ((4096, 4096, 4096), (8192, 8192, 8192), (16384, 16384, 16384), (4096, 16384, 8192),
                    (8192, 8192, 4096), (12288, 12288, 12288)):
        g = Graph("gemm")
        a = g.add_input("a", tensor("bf16", m, k))
        b = g.add_input("b", tensor("bf16", k, n))
        g.outputs = [g.add_node("MatMul", [a, b]).outputs[0]]
        r = estimate(g, target).nodes[0]
        best = max(best, 2.0 * m * n * k / (r.time_s - r.overhead_s) / 1e12)
    return best


PRESET = "ridgeline estimate"
ROWS = [
    # (label, target, measured, unit, function, command, calibrated?)
    ("gpt-fast Llama-2-7B decode b1 bf16", "a100", 104.9, "tok/s", lambda: _decode("llama-2-7b", "a100"),
     f"{PRESET} llama-2-7b --target a100 --context 256 --cuda-graphs", False),
    # gpt-fast's quantized GEMVs are compiler-generated (torch.compile / Triton for int8) or
    # tinygemm (int4): they widen weights with conversion instructions -> -O dequant=convert
    ("gpt-fast Llama-2-7B decode b1 int8 (weight-only)", "a100", 155.6, "tok/s",
     lambda: _decode("llama-2-7b", "a100", weight_dtype="int8", dequant="convert"),
     f"{PRESET} llama-2-7b --target a100 --context 256 --cuda-graphs --weight-dtype int8 -O dequant=convert", False),
    ("gpt-fast Llama-2-7B decode b1 int4 g32 (weight-only)", "a100", 196.8, "tok/s",
     lambda: _decode("llama-2-7b", "a100", weight_dtype="int4", weight_group=32, dequant="convert"),
     f"{PRESET} llama-2-7b --target a100 --context 256 --cuda-graphs --weight-dtype int4 --weight-group 32 "
     f"-O dequant=convert", False),
    *[(f"gpt-fast Llama-2-70B decode b1 bf16 TP{tp}", "a100", meas, "tok/s",
       (lambda tp=tp: _decode("llama-2-70b", "a100", tp=tp)),
       f"{PRESET} llama-2-70b --target a100 --context 256 --cuda-graphs --tp {tp}", False)
      for tp, meas in ((2, 21.3), (4, 38.0), (8, 62.5))],
    ("vidur Llama-2-7B up_proj fp16, 1 token", "h100", 0.064, "ms", lambda: _up_proj("h100", 1),
     "python tools/calibrate_cost_models.py (one MatMul 1x4096 @ 4096x22016)", True),
    ("vidur Llama-2-7B up_proj fp16, 4096 tokens", "h100", 0.999, "ms", lambda: _up_proj("h100", 4096),
     "python tools/calibrate_cost_models.py (one MatMul 4096x4096 @ 4096x22016)", False),
    ("vidur Llama-2-7B up_proj fp16, 1 token", "a100", 0.116, "ms", lambda: _up_proj("a100", 1),
     "python tools/calibrate_cost_models.py (one MatMul 1x4096 @ 4096x22016)", True),
    ("vidur Llama-2-7B up_proj fp16, 4096 tokens", "a100", 3.324, "ms", lambda: _up_proj("a100", 4096),
     "python tools/calibrate_cost_models.py (one MatMul 4096x4096 @ 4096x22016)", False),
    *[("MAMF best-shape BF16 GEMM", t, meas, "TFLOP/s", (lambda t=t: _mamf(t)),
       "python tools/calibrate_cost_models.py (best of a sweep of large GEMMs)", True)
      for t, meas in (("a100", 271), ("h100", 795), ("b200", 1745))],
    *[(f"TRT-LLM LLaMA-7B TTFT b1 {dt} {n} tokens", t, meas, "ms", (lambda t=t, n=n, dt=dt: _ttft(t, n, dt)),
       f"{PRESET} llama-2-7b --target {t} --phase prefill --context {n} --dtype {dt}", False)
      for t, dt, n, meas in (("h100", "fp8", 128, 7), ("h100", "fp8", 2048, 36), ("a100", "fp16", 128, 16),
                             ("a100", "fp16", 2048, 133))],
    *[("  same, attention with FlashAttention tile records", t, meas, "ms",
       (lambda t=t, n=n, dt=dt: _ttft(t, n, dt, flash=True)), "python tools/calibrate_cost_models.py", False)
      for t, dt, n, meas in (("h100", "fp8", 2048, 36), ("a100", "fp16", 2048, 133))],
    # the systolic / wafer_scale / dataflow rows (and checks beyond REFERENCE.md): tools/calibrate_non_gpu.py
    *[(label, target, meas, unit, fn, command, use == "calibrated on")
      for label, target, meas, unit, fn, command, use, _source in _NON_GPU_ROWS if "not in REFERENCE" not in use],
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    out = []
    for label, target, measured, unit, fn, command, calibrated in ROWS:
        row = {"row": label, "target": target, "measured": measured, "unit": unit, "command": command,
               "calibrated_on": calibrated}
        if fn is None or not is_implemented(get_target(target).family):
            row["skipped"] = f"{get_target(target).family} cost model not implemented yet"
        else:
            pred = fn()
            row["predicted"] = pred
            row["error"] = (pred - measured) / measured
        out.append(row)
    if args.json:
        json.dump(out, sys.stdout, indent=2)
        print()
        return 0
    w = max(len(r["row"]) for r in out)
    print(f"{'row':{w}}  {'target':9} {'measured':>10} {'predicted':>10} {'error':>7}  unit     use")
    for r in out:
        if "skipped" in r:
            print(f"{r['row']:{w}}  {r['target']:9} {r['measured']:>10g} {'-':>10} {'-':>7}  {r['unit']:8} "
                  f"skipped: {r['skipped']}")
            continue
        print(f"{r['row']:{w}}  {r['target']:9} {r['measured']:>10g} {r['predicted']:>10.4g} {r['error']:>+7.1%}  "
              f"{r['unit']:8} {'calibrated on' if r['calibrated_on'] else 'check'}")
    print("\ncommands:")
    for r in out:
        print(f"  {r['row']} [{r['target']}]: {r['command']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
