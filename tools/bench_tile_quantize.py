"""Benchmark: ``tile`` and ``quantize`` on the llama-3.1-405b preset (the issue's 1-second budget).

    python tools/bench_tile_quantize.py [--repeat 5]

In-process, after a warm-up (imports, the pass registry): each measurement builds a fresh preset
graph (decode and prefill, 126 layers, ~1,900 nodes), clears the schedule cache, and times one pass
with ``run_pipeline``. Timings on a shared machine vary, so each run also times a peer in the
same process: building the preset graph itself (every node created and type-checked). Printed:
the median seconds of each and the ratio to the peer.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _time(pipeline: str, phase: str, clear) -> tuple[float, float]:
    """(seconds to build the preset, seconds of the pipeline on it)."""
    import ridgeline as rl
    from ridgeline.passes import run_pipeline
    t = time.perf_counter()
    g = rl.load("llama-3.1-405b", phase=phase, batch=1, context=4096)
    build = time.perf_counter() - t
    clear()
    t = time.perf_counter()
    run_pipeline(g, pipeline, verify_each=False)
    return build, time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    from ridgeline.passes.transforms import tile_search
    clear = tile_search._search_cached.cache_clear
    _time("tile{target=h100},quantize{scheme=int8}", "decode", clear)   # warm-up
    rows = []
    for phase in ("decode", "prefill"):
        builds = []
        timed = []
        for pipeline in ("tile{target=h100}", "tile{target=tpu-v6e}", "tile{target=host-cpu}",
                         "quantize{scheme=int4-g128}", "quantize{scheme=w8a8}", "quantize{scheme=int8+kv-int8}"):
            runs = [_time(pipeline, phase, clear) for _ in range(args.repeat)]
            builds += [b for b, _ in runs]
            timed.append((pipeline, statistics.median(t for _, t in runs)))
        peer = statistics.median(builds)
        rows += [(phase, p, t, t / peer) for p, t in timed]
        rows.append((phase, "building the preset (peer)", peer, 1.0))
    width = max(len(r[1]) for r in rows)
    print(f"llama-3.1-405b, median of {args.repeat}")
    for phase, pipeline, t, ratio in rows:
        print(f"  {phase:8s} {pipeline:{width}s} {t:7.3f} s  {ratio:5.2f}x the peer")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
