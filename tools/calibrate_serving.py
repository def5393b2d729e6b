"""Check the cost models against published large-batch serving throughput (not in REFERENCE.md).

    python tools/calibrate_serving.py          # the table: measured, predicted, error per row
    python tools/calibrate_serving.py --json

Each row is an offline max-throughput run: ``batch`` requests of ``isl`` prompt tokens each
generate ``osl`` tokens. Its prediction is ``batch · osl / (TTFT + osl · TPOT)``, TTFT being the
prefill of the whole batch and TPOT the decode step at the mean context ``isl + osl/2`` (CUDA
graphs on, as TensorRT-LLM runs). Nothing here is fitted: the rows only check.

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
# (preset, target, dtype, batch, tp, isl, osl, measured output tokens/s)
ROWS = [
    ("llama-2-13b", "h200", "fp8", 1024, 1, 128, 128, 11819),
    ("llama-2-13b", "h200", "fp8", 128, 1, 128, 2048, 4750),
    ("llama-2-13b", "h200", "fp8", 64, 1, 2048, 128, 1349),
    ("llama-2-70b", "h200", "fp8", 512, 1, 128, 128, 3014),
    ("llama-2-70b", "h200", "fp8", 512, 4, 128, 2048, 6616),
    ("llama-2-70b", "h200", "fp8", 64, 2, 2048, 128, 682),
    ("llama-2-70b", "h200", "fp8", 32, 1, 2048, 128, 303),
]


def predict(preset: str, target: str, dtype: str, batch: int, tp: int, isl: int, osl: int) -> dict:
    pre = models.build(preset, phase="prefill", batch=batch, context=isl, prompt=isl, dtype=dtype)
    dec = models.build(preset, phase="decode", batch=batch, context=isl + osl // 2, dtype=dtype)
    ttft = estimate(pre, target, tp=tp, cuda_graphs=True, companion=None)
    tpot = estimate(dec, target, tp=tp, cuda_graphs=True, companion=None)
    total = ttft.time_s + osl * tpot.time_s
    return {"tokens_per_s": batch * osl / total, "ttft_s": ttft.time_s, "tpot_s": tpot.time_s,
            "fits": bool(tpot.fits), "decode_bound": tpot.bound}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    out = []
    for preset, target, dtype, batch, tp, isl, osl, meas in ROWS:
        p = predict(preset, target, dtype, batch, tp, isl, osl)
        out.append({"row": f"{preset} {dtype} b{batch} tp{tp} {isl}/{osl}", "target": target, "measured": meas,
                    "predicted": p["tokens_per_s"], "error": p["tokens_per_s"] / meas - 1, **p,
                    "command": f"ridgeline estimate {preset} --target {target} --dtype {dtype} --batch {batch} "
                               f"--tp {tp} --context {isl + osl // 2} --cuda-graphs (decode; prefill at --context "
                               f"{isl})", "source": SOURCE})
    if a.json:
        json.dump(out, sys.stdout, indent=1)
        return 0
    w = max(len(r["row"]) for r in out)
    print(f"{'row':{w}}  target  measured  predicted   error  decode")
    for r in out:
        print(f"{r['row']:{w}}  {r['target']:6} {r['measured']:>9g} {r['predicted']:>10.0f} {r['error']:>+7.1%}  "
              f"{r['decode_bound']}{'' if r['fits'] else ' (does not fit)'}")
    errs = [abs(r["error"]) for r in out]
    print(f"median |error| {statistics.median(errs):.1%}, worst {max(errs):.1%}; source: {SOURCE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
