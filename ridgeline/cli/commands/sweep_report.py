"""``ridgeline sweep-report RESULTS.parquet``: Pareto fronts per model, and plots.

By default: decode points that fit and did not fail, tokens/s per user against tokens/s per
device (both maximised); ``--x``/``--y`` pick other columns (``joules_per_token``, ``ttft_s``
and other times are minimised). ``--plots DIR`` writes a Pareto picture per model and a roofline.
"""

from __future__ import annotations

import argparse

from ..common import emit, fmt_time, table, wide_output


def register(sub) -> None:
    p = sub.add_parser("sweep-report", help="Pareto fronts and plots of a sweep's results",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("results", metavar="RESULTS.parquet", help="a table written by `ridgeline sweep` (.parquet or .csv)")
    p.add_argument("--x", default="tokens_per_s_per_user", help="first objective (default tokens_per_s_per_user)")
    p.add_argument("--y", default="tokens_per_s_per_device", help="second objective (default tokens_per_s_per_device)")
    p.add_argument("--by", default="model", help="one front per value of this column (default model)")
    p.add_argument("--phase", default="decode", help="rank points of this phase only ('all': every phase)")
    p.add_argument("--include-unfit", action="store_true", help="also rank points that do not fit in memory")
    p.add_argument("--plots", metavar="DIR", help="write pareto_<model>.png and roofline.png into DIR")
    p.add_argument("--json", action="store_true", help="the fronts as JSON")


def run(args: argparse.Namespace) -> int:
    from ...sweep import read_results
    from ...sweep.report import plot_pareto, plot_roofline, report
    tbl = read_results(args.results)
    rep = report(tbl, x=args.x, y=args.y, by=args.by, phase=None if args.phase == "all" else args.phase,
                 only_fitting=not args.include_unfit)
    written = []
    if args.plots:
        written = [str(p) for p in plot_pareto(rep, args.plots)]
        roof = plot_roofline(tbl, args.plots)
        if roof is not None:
            written.append(str(roof))
    data = {k: v for k, v in rep.items() if not k.startswith("_")}
    data["plots"] = written
    emit(args, data, lambda: _render(rep, written))
    return 0


def _fmt(col: str, v) -> str:
    if isinstance(v, float):
        return fmt_time(v) if col.endswith("_s") else f"{v:,.4g}"
    return "-" if v is None else str(v)


def _render(rep: dict, written: list[str]) -> None:
    wide_output()
    c = rep["counts"]
    x, y = rep["x"], rep["y"]
    for g, front in rep["fronts"].items():
        if not front:
            continue
        cols = [k for k in front[0] if k not in ("point",)]
        table(f"{g}: Pareto front of {x} vs {y} ({len(front)} of {len(rep['_groups'][g])} points)",
              cols, [[_fmt(k, r[k]) for k in cols] for r in front])
    note = f"{c['rows']} rows, {c['errors']} failed, {c['ranked']} ranked"
    if rep["phase"]:
        note += f" ({rep['phase']} points)"
    table(None, ["summary", ""], [("rows", note)] + [("plot", p) for p in written], justify=["left", "left"])
