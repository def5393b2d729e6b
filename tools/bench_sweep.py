"""Benchmark: the acceptance sweep (4 presets 7B…405B × every target × phase × batch × context ×
dtype × tp, 12,288 points) on the local pool, Ray and Dask, against naive per-point estimates.

    python tools/bench_sweep.py --profile soak [--engines local,ray,dask] [--workers 2] [--naive 192]
    python tools/bench_sweep.py --profile ci          # a 288-point grid, a few seconds
    python tools/bench_sweep.py --compare local.parquet dask.parquet ray.parquet   # same content?
    python tools/bench_sweep.py --profile soak --cprofile 10   # where a chunk's CPU goes (cProfile)

Printed: points/s per engine (wall, this machine), each engine's table compared with local's
(the same Parquet content), the per-engine overhead (wall time beyond local's), and the cache's
speedup: CPU seconds per point of the local pool's workers (the whole grid, their rusage) over
CPU seconds per point of one public ``estimate`` per point (graph and companion built each time)
on a uniform random sample of the grid, in this process. CPU time, not wall: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PRESETS = ["llama-2-7b", "llama-2-13b", "llama-3-70b", "llama-3.1-405b"]
PROFILES = {
    "soak": {"axes": {"model": PRESETS, "target": ["all"], "phase": ["prefill", "decode"],
                      "batch": [1, 8, 32, 128], "context": [2048, 8192, 32768, 131072], "dtype": ["bf16", "fp8"],
                      "tp": [1, 2, 4, 8]}},
    # the engines' comparison at a size a loaded 2-core machine runs in minutes (768 points)
    "engines": {"axes": {"model": PRESETS, "target": ["all"], "phase": ["prefill", "decode"], "batch": [1, 32],
                         "context": [8192], "dtype": ["bf16", "fp8"], "tp": [1, 8]}},
    "ci": {"axes": {"model": ["llama-2-7b", "llama-3-70b"], "target": ["h100", "tpu-v6e", "wse-3", "groq-lpu"],
                    "phase": ["prefill", "decode"], "batch": [1, 32, 128], "context": [4096], "dtype": ["bf16", "fp8"],
                    "tp": [1, 2, 8]}},
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", choices=sorted(PROFILES), default="ci")
    ap.add_argument("--engines", default="local", help="comma-separated: local,ray,dask")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--naive", type=int, default=96, help="points in the naive sample (default 96; 0: skip)")
    ap.add_argument("--cache-chunks", type=int, default=0, help="without a local pool run: measure the cached "
                    "evaluator in this process on N chunks drawn at random (seed 0; 0: every chunk)")
    ap.add_argument("--out", default=None, help="directory for the Parquet files (default: a temporary one)")
    ap.add_argument("--compare", nargs="+", metavar="TABLE", help="only compare result tables written by "
                    "`ridgeline sweep` (any engine) with the first: exit 1 unless every row and column is equal")
    ap.add_argument("--cprofile", type=int, default=0, metavar="N", help="only profile the cached evaluator "
                    "on N chunks drawn at random (--seed) and print each ridgeline function's share of the CPU")
    ap.add_argument("--seed", type=int, default=0, help="the random draw of --cprofile's chunks (default 0)")
    args = ap.parse_args()
    if args.compare:
        return compare_tables(args.compare)
    if args.cprofile:
        return profile_chunks(args.profile, args.cprofile, args.workers, seed=args.seed)

    import pyarrow.parquet as pq

    from ridgeline.sweep import SweepStats, parse_spec, sweep
    from ridgeline.sweep.evaluate import Evaluator, evaluate_naive
    from ridgeline.sweep.grid import chunks, default_chunk, points
    from ridgeline.sweep.results import diff_tables

    spec = parse_spec(PROFILES[args.profile], source=f"bench-{args.profile}")
    pts = list(points(spec))
    out_dir = Path(args.out or tempfile.mkdtemp(prefix="bench_sweep_"))
    out_dir.mkdir(parents=True, exist_ok=True)
    report: dict = {"profile": args.profile, "points": len(pts), "workers": args.workers, "engines": {}}
    print(f"{len(pts):,} points, {args.workers} workers, results in {out_dir}", file=sys.stderr)

    local = None
    first = args.engines.split(",")[0]
    for name in [e for e in args.engines.split(",") if e]:
        st = SweepStats()
        path = out_dir / f"{name}.parquet"
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        table = sweep(spec, engine=name, workers=args.workers, output=path, stats=st)
        wall = time.perf_counter() - t
        if name == "local" and args.workers > 1:      # the pool's workers are this process' children
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            report["cached_cpu_s_per_point"] = cpu / len(pts)
        same = None
        if local is None:
            local = (table, wall)
        else:
            same = not diff_tables(pq.read_table(out_dir / f"{first}.parquet"), pq.read_table(path))
        report["engines"][name] = {"wall_s": wall, "points_per_s": len(pts) / wall, "errors": st.errors,
                                   "startup_s": st.extra.get("startup_s"), "chunks": st.chunks,
                                   "same_as_first": same, "overhead_vs_first_s": wall - local[1]}
        print(f"{name}: {wall:.1f} s, {len(pts) / wall:,.1f} points/s, {st.errors} error rows, "
              f"same table as {args.engines.split(',')[0]}: {same}", file=sys.stderr)

    if "cached_cpu_s_per_point" not in report:       # no pool ran: the cached evaluator in this process
        ev = Evaluator(spec.payload())
        work = chunks(spec, pts, default_chunk(len(pts), args.workers))
        if args.cache_chunks:     # a random draw: a stride would follow the chunk order's axes
            work = random.Random(0).sample(work, min(args.cache_chunks, len(work)))
        t = time.process_time()
        for c in work:
            ev.run(c)
        report["cached_cpu_s_per_point"] = (time.process_time() - t) / sum(map(len, work))
        report["cached_sample_points"] = sum(map(len, work))
    if not args.naive:
        json.dump(report, sys.stdout, indent=2)
        print()
        return 0
    sample = sorted(random.Random(0).sample(pts, min(args.naive, len(pts))))
    t = time.process_time()
    evaluate_naive(spec.payload(), sample)
    report["naive_cpu_s_per_point"] = (time.process_time() - t) / len(sample)
    report["cache_speedup"] = report["naive_cpu_s_per_point"] / report["cached_cpu_s_per_point"]
    print(f"cache: {report['cached_cpu_s_per_point'] * 1e3:.2f} ms CPU/point vs naive "
          f"{report['naive_cpu_s_per_point'] * 1e3:.1f} ms on {len(sample)} sampled points → "
          f"{report['cache_speedup']:.1f}×", file=sys.stderr)
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0


def profile_chunks(profile: str, n: int, workers: int, *, seed: int = 0, share: float = 0.03) -> int:
    """cProfile the worker function (``Evaluator.run``) on ``n`` random chunks of the grid, as the
    pool cuts it; print every ridgeline function above ``share`` of the CPU, cumulative."""
    import cProfile
    import os
    import pstats

    from ridgeline.sweep import parse_spec
    from ridgeline.sweep.evaluate import Evaluator
    from ridgeline.sweep.grid import chunks, default_chunk, points
    spec = parse_spec(PROFILES[profile], source=f"bench-{profile}")
    pts = list(points(spec))
    work = random.Random(seed).sample(chunks(spec, pts, default_chunk(len(pts), workers)), n)
    ev = Evaluator(spec.payload())
    prof = cProfile.Profile(time.process_time)
    load = os.getloadavg()[0]
    prof.enable()
    for c in work:
        ev.run(c)
    prof.disable()
    st = pstats.Stats(prof)
    total = st.total_tt
    n_pts = sum(map(len, work))
    print(f"{n_pts} points in {n} chunks: {total:.1f} s CPU under cProfile ({total / n_pts * 1e3:.1f} ms/point), "
          f"load average {load:.1f}")
    rows = sorted(st.stats.items(), key=lambda kv: -kv[1][3])
    for (path, line, name), (_, calls, _, cum, _) in rows:
        if "ridgeline" in path and cum >= share * total:
            print(f"{cum / total:6.1%} {calls:9d}  {path.split('ridgeline/')[-1]}:{line}({name})")
    return 0


def compare_tables(paths: list[str]) -> int:
    """Print whether each table has the first one's content; 0 when all do."""
    from ridgeline.ir.errors import RidgelineError
    from ridgeline.sweep.results import diff_tables, read_results
    try:
        tables = [read_results(p) for p in paths]
    except RidgelineError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    first = tables[0]
    bad = 0
    for path, table in zip(paths[1:], tables[1:]):
        diff = diff_tables(first, table)
        bad += bool(diff)
        print(f"{path}: " + ("identical to " + paths[0] if not diff else "DIFFERS from " + paths[0]) +
              f" ({first.num_rows} rows × {first.num_columns} columns)")
        for line in diff:
            print(f"  {line}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
