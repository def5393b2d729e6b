"""Check the cost models against published large-batch serving throughput (not in REFERENCE.md).

    python tools/calibrate_serving.py          # the table: measured, predicted, error per row
    python tools/calibrate_serving.py --json

Each row is an offline max-throughput run: ``batch`` requests of ``isl`` prompt tokens each
generate ``osl`` tokens, all in one static batch. The published figure is output tokens per second
**per GPU** (the table's header; TensorRT-LLM's XQA blog spells it out:
``out_tps = output_seqlen * batch_size / total_latency / tp``), so the prediction is
``batch · osl / (TTFT + osl · TPOT) / tp``, TTFT being the prefill of the whole batch and TPOT the
decode step at the mean context ``isl + osl/2`` (CUDA graphs on, as TensorRT-LLM runs).

The deployment is the published one, not a fit:

- **FP8 KV cache.** Each batch is "the largest batch supported on given TP configuration by
  power of 2" (the table's footnote); with a 16-bit cache three of them do not fit in 141 GB
  (13B at 1024 × 256 and 128 × 2176 tokens, 70B tp2 at 512 × 2176), with an FP8 one all do.
- **The pre-XQA generation attention** (``-O gqa=per_head``). The rows ran TensorRT-LLM v0.5;
  its XQA kernel for MQA/GQA generation ("using tensor cores for acceleration, reducing data
  loading and conversion", 2.4x Llama-70B throughput on H200) arrived in v0.8
  (docs/source/blogs/XQA-kernel.md). Before it, each query head's block read and widened its
  KV head on the CUDA cores, which is what ``per_head`` prices.

Nothing here is fitted: the rows only check. Before this was found the table held two rows
mis-transcribed (70B b512 as tp4 at 6,616 and 70B b64 as tp2 at 682: the per-GPU figures times
a wrong tp) and compared total tokens/s with per-GPU ones.

Source of every row: NVIDIA TensorRT-LLM, "H200 achieves nearly 12,000 tokens/sec on Llama2-13B"
(docs/source/blogs/H200launch.md, release 0.5.0, H200 FP8, max-throughput table).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ridgeline import models
from ridgeline.cost_models import estimate

SOURCE = "TensorRT-LLM blog H200launch.md (release/0.5.0), H200 FP8 max throughput"
# (preset, target, dtype, batch, tp, isl, osl, measured output tokens/s per GPU)
ROWS = [
    ("llama-2-13b", "h200", "fp8", 1024, 1, 128, 128, 11819),
    ("llama-2-13b", "h200", "fp8", 128, 1, 128, 2048, 4750),
    ("llama-2-13b", "h200", "fp8", 64, 1, 2048, 128, 1349),
    ("llama-2-70b", "h200", "fp8", 512, 1, 128, 128, 3014),
    ("llama-2-70b", "h200", "fp8", 512, 2, 128, 2048, 1654),
    ("llama-2-70b", "h200", "fp8", 64, 1, 2048, 128, 341),
    ("llama-2-70b", "h200", "fp8", 32, 1, 2048, 128, 303),
]
#: the published stack: an FP8 KV cache and v0.5's per-head generation attention (see above)
KV_DTYPE = "fp8"
OPTIONS = {"cuda_graphs": True, "gqa": "per_head"}



def predict(preset: str, target: str, dtype: str, batch: int, tp: int, isl: int, osl: int,
            options: dict | None = None, kv_dtype: str | None = KV_DTYPE) -> dict:
    """Output tokens/s per GPU of one static batch (see the module docstring)."""
    opts = OPTIONS if options is None else options
    pre = models.build(preset, phase="prefill", batch=batch, context=isl, prompt=isl, dtype=dtype, kv_dtype=kv_dtype)
    dec = models.build(preset, phase="decode", batch=batch, context=isl + osl // 2, dtype=dtype, kv_dtype=kv_dtype)
    end = models.build(preset, phase="decode", batch=batch, context=isl + osl, dtype=dtype, kv_dtype=kv_dtype)
    ttft = estimate(pre, target, tp=tp, companion=None, **opts)
    tpot = estimate(dec, target, tp=tp, companion=None, **opts)
    total = ttft.time_s + osl * tpot.time_s
    return {"tokens_per_s": batch * osl / total / tp, "ttft_s": ttft.time_s, "tpot_s": tpot.time_s,
            "fits": bool(estimate(end, target, tp=tp, companion=None, **opts).fits), "decode_bound": tpot.bound}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    out = []
    for preset, target, dtype, batch, tp, isl, osl, meas in ROWS:
        p = predict(preset, target, dtype, batch, tp, isl, osl)
        out.append({"row": f"{preset} {dtype} b{batch} tp{tp} {isl}/{osl}", "target": target, "measured": meas,
                    "predicted": p["tokens_per_s"], "error": p["tokens_per_s"] / meas - 1, **p,
                    "command": f"ridgeline estimate {preset} --target {target} --dtype {dtype} --kv-dtype {KV_DTYPE} "
                               f"--batch {batch} --tp {tp} --context {isl + osl // 2} --cuda-graphs -O gqa=per_head "
                               f"(decode; prefill at --context {isl})", "source": SOURCE})
    if a.json:
        json.dump(out, sys.stdout, indent=1)
        return 0
    w = max(len(r["row"]) for r in out)
    print(f"{'row':{w}}  target  measured  predicted   error  decode   (output tokens/s per GPU)")
    for r in out:
        print(f"{r['row']:{w}}  {r['target']:6} {r['measured']:>9g} {r['predicted']:>10.0f} {r['error']:>+7.1%}  "
              f"{r['decode_bound']}{'' if r['fits'] else ' (the last step does not fit)'}")
    errs = [abs(r["error"]) for r in out]
    print(f"median |error| {statistics.median(errs):.1%}, worst {max(errs):.1%}; source: {SOURCE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
