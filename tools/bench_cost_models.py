"""Benchmark: ``ridgeline compare llama-3.1-405b --targets all`` (the issue's 2-second budget).

    python tools/bench_cost_models.py [--repeat 5]

Timings on a shared machine vary a lot, so each run also measures a peer in the same run: the bare
CLI start-up (``ridgeline targets --json``, which imports the package and parses every target
file). Printed: wall and CPU (user + sys) medians of both, their ratio, and an in-process breakdown
(building the two 405B graphs, the per-graph analysis, one estimate per target).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _run(args: list[str]) -> tuple[float, float]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "ridgeline", *args], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        raise SystemExit(proc.stderr)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    compare = ["compare", "llama-3.1-405b", "--targets", "all", "--json"]
    peer = ["targets", "--json"]
    runs = {"compare": [], "startup": []}
    for _ in range(args.repeat):
        runs["compare"].append(_run(compare))
        runs["startup"].append(_run(peer))
    print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    for name, rs in runs.items():
        wall, cpu = statistics.median(r[0] for r in rs), statistics.median(r[1] for r in rs)
        print(f"{name:8s} wall {wall:.3f} s   cpu {cpu:.3f} s")
    cw = statistics.median(r[0] for r in runs["compare"]) / statistics.median(r[0] for r in runs["startup"])
    cc = statistics.median(r[1] for r in runs["compare"]) / statistics.median(r[1] for r in runs["startup"])
    print(f"compare / start-up: wall x{cw:.2f}, cpu x{cc:.2f}")

    from ridgeline import models
    from ridgeline.cost_models import GraphAnalysis, list_targets
    from ridgeline.cost_models import estimate
    from ridgeline.cost_models.families import is_implemented
    t = time.perf_counter()
    dec = models.build("llama-3.1-405b", phase="decode")
    pre = models.build("llama-3.1-405b", phase="prefill")
    t_build = time.perf_counter() - t
    t = time.perf_counter()
    a_dec, a_pre = GraphAnalysis(dec), GraphAnalysis(pre)
    t_an = time.perf_counter() - t
    per = {}
    for tg in list_targets():
        if not is_implemented(tg.family):
            continue
        t = time.perf_counter()
        try:
            comp = estimate(pre, tg, tp="auto", pp="auto", analysis=a_pre)
            estimate(dec, tg, tp="auto", pp="auto", analysis=a_dec, companion=comp)
        except Exception as e:  # noqa: BLE001 - a target that does not fit is part of the run
            per[tg.name] = f"({type(e).__name__})"
        per.setdefault(tg.name, f"{(time.perf_counter() - t) * 1e3:.0f} ms")
    print(f"in process: build both graphs {t_build * 1e3:.0f} ms ({len(dec)} nodes each), "
          f"analysis {t_an * 1e3:.0f} ms, per target (both phases): "
          + ", ".join(f"{k} {v}" for k, v in per.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
