"""``compare MODEL --targets … --workload W [--rate R] [--slo …]``: targets side by side as servers.

Each target at its deployment (``--tp/--pp``, default the smallest that fits) serves the same
requests (same seed); with ``--slo`` each also gets the highest arrival rate meeting it, and that
rate per device — the comparison at equal SLO. (A leading underscore: not a command itself.)
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from ..common import UsageError, emit, float_arg, fmt_time, int_arg, parse_rates, table, wide_output

__all__ = ["add_workload_arguments", "compare_serving"]


def add_workload_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("serving (with --workload; see `ridgeline serve-sim`)")
    g.add_argument("--workload", help="compare targets as servers under this workload (chat, code, "
                   "summarization, sharegpt, or a CSV trace)")
    g.add_argument("--rate", type=float_arg(0.0, math.inf, open_lo=True), help="arrival rate in requests/s")
    g.add_argument("--slo", help="ttft=…,tpot=…[,p=99]: also find each target's highest rate meeting it")
    g.add_argument("--requests", type=int_arg(1, 2 ** 20), default=500, help="requests per simulation (default 500)")
    g.add_argument("--stack", help="serve with a stack's engine defaults on every target (vllm, trtllm; see serve-sim)")
    g.add_argument("--sweep", help="arrival rates, e.g. 0.5,1,2,4: latency percentiles vs rate per target (--plot)")
    g.add_argument("--plot", metavar="OUT.png", help="with --sweep: p50/p99 TTFT and TPOT vs rate, one line per target")


def compare_serving(args: argparse.Namespace, targets: list[str]) -> int:
    from ...serving import max_rate, simulate
    if not targets:
        raise UsageError("--workload compares targets: name them with --targets")
    if args.rate is None and not args.slo and not args.sweep:
        raise UsageError("--workload needs --rate R, --sweep R1,R2,… and/or --slo ttft=…,tpot=…")
    if args.plot and not args.sweep:
        raise UsageError("--plot draws latency vs rate: give the rates with --sweep 0.5,1,2,4")
    rates = parse_rates(args.sweep) if args.sweep else []
    from ...serving import SimulationError
    curves: dict[str, list] = {}
    rows: list[dict[str, Any]] = []
    missed: list[str] = []
    for t in targets:
        kw: dict[str, Any] = {"workload": args.workload, "requests": args.requests, "tp": args.tp or "auto",
                                  "pp": args.pp or "auto", "seed": args.seed, "slo": args.slo,
                                  "stack": getattr(args, "stack", None)}
        row: dict[str, Any] = {"target": t}
        res = None
        if rates:
            curves[t] = [(r, simulate(args.model, t, rate=r, **kw).metrics) for r in rates]
            row["sweep"] = [{"rate": r, "ttft": m.ttft, "tpot": m.tpot, "throughput_rps": m.throughput_rps}
                            for r, m in curves[t]]
        if args.rate is not None:
            res = simulate(args.model, t, rate=args.rate, **kw)
        if args.slo:
            found = max_rate(model=args.model, target=t, **{k: v for k, v in kw.items() if k != "slo"}, slo=args.slo,
                             strict=False)
            if "missed" in found:     # this target meets the SLO at no rate: its row says so, unless none does
                missed.append(f"{t}: {found['missed']}")
            row["max_rate"] = found["max_rate"]
            res = res or found["at_max"]
        if res is None:          # a sweep alone: the row shows its highest rate
            res = simulate(args.model, t, rate=rates[-1], **kw)
        m = res.metrics
        devices = res.deployment["devices"] * res.deployment["replicas"]
        row.update(devices=devices, rate=res.workload["rate"], ttft=m.ttft, tpot=m.tpot,
                   throughput_rps=m.throughput_rps, goodput_rps=m.goodput_rps,
                   j_per_output_token=m.energy.get("j_per_output_token"))
        if "max_rate" in row:
            row["max_rate_per_device"] = row["max_rate"] / devices
        rows.append(row)
    if missed and len(missed) == len(targets):
        raise SimulationError("; ".join(missed))
    data = {"model": args.model, "workload": args.workload, "slo": args.slo, "rows": rows}
    if args.plot:
        from ...serving import parse_slo
        from ...serving.plot import plot_rate_sweep
        plot_rate_sweep(curves, args.plot, slo=parse_slo(args.slo))

    def render() -> None:
        wide_output()
        cols = ["target", "devices", "rate", "TTFT p50", "TTFT p99", "TPOT p50", "TPOT p99", "req/s", "goodput",
                "J/token"]
        if args.slo:
            cols += ["max rate @SLO", "per device"]
        out = []
        for r in rows:
            line = [r["target"], r["devices"], f"{r['rate']:.3g}", fmt_time(r["ttft"]["p50"]), fmt_time(r["ttft"]["p99"]),
                    fmt_time(r["tpot"]["p50"]), fmt_time(r["tpot"]["p99"]), f"{r['throughput_rps']:.3g}",
                    "-" if r["goodput_rps"] is None else f"{r['goodput_rps']:.3g}",
                    "-" if r["j_per_output_token"] is None else f"{r['j_per_output_token']:.3g}"]
            if args.slo:
                line += [f"{r['max_rate']:.3g} req/s" if r["max_rate"] else "none meets it",
                         f"{r['max_rate_per_device']:.3g}"]
            out.append(line)
        table(f"{args.model} serving {args.workload}" + (f" · SLO {args.slo}" if args.slo else ""), cols, out)

    emit(args, data, render)
    return 0
