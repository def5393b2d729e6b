"""``ridgeline sweep SPEC.toml``: estimate a design-space grid on a process pool, Ray or Dask.

Writes one row per point (every axis, every metric of ``estimate --json``, an ``error`` column)
to Parquet (or CSV), chunk by chunk, so ``--resume`` continues a killed run without losing or
repeating points. The spec format is in docs/sweeps.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..common import emit, int_arg, table


def register(sub) -> None:
    p = sub.add_parser("sweep", help="estimate a grid of models × targets × shapes × splits into a Parquet table",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("spec", metavar="SPEC.toml", help="the sweep spec (axes, constraints, target variants)")
    p.add_argument("-o", "--output", metavar="OUT.parquet", help="results file, .parquet or .csv "
                   "(default: SPEC's name with .parquet, in the current directory)")
    p.add_argument("--engine", choices=("local", "ray", "dask"), default="local",
                   help="where points run: a local process pool (default), Ray or Dask")
    p.add_argument("--address", help="ray/dask: an existing cluster (ray: auto or ray://HOST:10001; "
                   "dask: tcp://HOST:8786); default: a local one started for the sweep")
    p.add_argument("--workers", type=int_arg(1, 4096), help="worker processes (default: the CPUs available)")
    p.add_argument("--chunk", type=int_arg(1, 2 ** 20), help="points per task (default: chosen from the grid size)")
    p.add_argument("--resume", action="store_true", help="skip points already written to OUT (or its .parts)")
    p.add_argument("--json", action="store_true", help="print the run's summary as JSON")


def run(args: argparse.Namespace) -> int:
    from ...sweep import SweepStats, load_spec, sweep
    spec = load_spec(args.spec)
    out = Path(args.output) if args.output else Path(Path(args.spec).stem + ".parquet")
    st = SweepStats()
    sweep(spec, engine=args.engine, output=out, workers=args.workers, address=args.address, resume=args.resume,
          chunk=args.chunk, progress=sys.stderr.isatty(), stats=st)
    summary = {"spec": str(args.spec), "output": str(out), "engine": st.engine, "points": st.points,
               "skipped": st.skipped, "evaluated": st.evaluated, "errors": st.errors, "chunks": st.chunks,
               "seconds": round(st.seconds, 3), "points_per_s": round(st.points_per_s, 2),
               "startup_s": round(st.extra.get("startup_s", 0.0), 3)}   # the engine's start (a cluster's)
    emit(args, summary, lambda: table(f"sweep {spec.name}", ["", ""], [(k, v) for k, v in summary.items()],
                                      justify=["left", "right"]))
    return 0
