"""Benchmark: requests simulated per second, 10,000 chat requests of Llama-3-70B on 8xH100.

    python tools/bench_serving.py [--requests 10000] [--profile ci|soak]

The step-time table is built first (its cost-model estimates are timed and reported apart: they
are paid once per model x target x deployment, and cached across runs of ``max_rate``). Then the
simulation runs twice on the same arrivals: with the cost-model table, and with a peer measured in
the same run — a ``LinearStepTime`` stub, the cheapest step function there is — so the ratio shows
what table lookups cost on top of the event loop. CPU time (process) is printed beside wall time:
on a shared machine the CPU time is the comparable figure.

``--profile ci`` (1,000 requests) is what a quick check runs; ``soak`` (default) is the issue's
10,000.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", choices=("ci", "soak"), default="soak")
    ap.add_argument("--requests", type=int)
    ap.add_argument("--model", default="llama-3-70b")
    ap.add_argument("--target", default="h100")
    ap.add_argument("--tp", type=int, default=8)
    ap.add_argument("--rate", type=float, default=5.0)
    ap.add_argument("--scheduler", default=None, help="default: continuous, or the stack's")
    ap.add_argument("--stack", help="a serving stack's engine defaults (vllm, trtllm)")
    a = ap.parse_args()
    n = a.requests or (1000 if a.profile == "ci" else 10000)

    from ridgeline.serving import LinearStepTime, simulate
    from ridgeline.serving.simulator import deployment_for
    from ridgeline.serving.step_table import EstimateTable, preset_estimator

    table = EstimateTable(preset_estimator(a.model, a.target, {"tp": a.tp}, {}))
    dep, dw, dc = _timed(lambda: deployment_for(a.model, a.target, tp=a.tp, ref_context=4096))
    kw = {"workload": "chat", "rate": a.rate, "requests": n, "scheduler": a.scheduler, "tp": a.tp,
          "deployment": dep, "seed": 0, "stack": a.stack}
    cold, cw, cc = _timed(lambda: simulate(a.model, a.target, step_time=table, **kw))      # builds the table
    warm, ww, wc = _timed(lambda: simulate(a.model, a.target, step_time=table, **kw))      # table cached
    stub = LinearStepTime(table.decode(1, 1024), (table.decode(64, 1024) - table.decode(1, 1024)) / 63, 0,
                          (table.prefill(1024, 1024) - table.floor) / 1024)
    _peer, pw, pc = _timed(lambda: simulate(a.model, a.target, step_time=stub, **kw))
    assert warm.metrics.to_json() == cold.metrics.to_json()
    m = warm.metrics
    print(f"{a.model} on {a.tp}x{a.target}, {n} chat requests at {a.rate:g} req/s, {warm.scheduler} "
          f"{f'(stack {a.stack}) ' if a.stack else ''}({m.throughput_rps:.2f} req/s served, {m.preemptions} preemptions)")
    print(f"  deployment estimate          {dw:7.2f} s wall {dc:7.2f} s CPU")
    print(f"  first run, building table    {cw:7.2f} s wall {cc:7.2f} s CPU  ({table.points} estimates, "
          f"{table.seconds:.1f} s wall of them)")
    print(f"  simulation, table cached     {ww:7.2f} s wall {wc:7.2f} s CPU -> {n / wc:7.0f} requests/s (CPU), "
          f"{n / ww:7.0f} (wall)")
    print(f"  peer: linear-stub steps      {pw:7.2f} s wall {pc:7.2f} s CPU -> {n / pc:7.0f} requests/s (CPU)")
    print(f"  ratio cached table / stub    {wc / pc:7.2f}x CPU")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
