"""Batched decode against the independent roofline bound (the table of issue 14 / docs/cost_models.md).

    python tools/roofline_ratios.py

Per target and batch: the median over llama-3-8b (tp 1), llama-2-13b (tp 1) and llama-2-70b (tp 4),
bf16 decode at context 1024, of step ÷ max((weights + KV)/tp ÷ nameplate BW, FLOPs/tp ÷ peak).
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ridgeline.cost_models import get_target
from ridgeline.testing.cost_invariants import Case, estimate_case

TARGETS = ("h100", "a100", "tpu-v5p", "tpu-v7", "trainium2")
BATCHES = (1, 8, 64, 256)
MODELS = (("llama-3-8b", 1), ("llama-2-13b", 1), ("llama-2-70b", 4))


def ratio(target: str, batch: int) -> float:
    rs = []
    for preset, tp in MODELS:
        e = estimate_case(Case(preset, target, "decode", batch, 1024, "bf16", None, tp, 1))
        if e is None:
            continue
        resident = e.memory.total_weights_bytes + e.memory.total_kv_cache_bytes
        bound = max(resident / tp / get_target(target).device_memory.bandwidth,
                    e.detail["model_flops"] / tp / e.peak_flop_per_s)
        rs.append(e.time_s / bound)
    return statistics.median(rs) if rs else float("nan")


def main() -> int:
    print("target     " + " ".join(f"{'b' + str(b):>6}" for b in BATCHES))
    for t in TARGETS:
        print(f"{t:10} " + " ".join(f"{ratio(t, b):6.2f}" for b in BATCHES), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
