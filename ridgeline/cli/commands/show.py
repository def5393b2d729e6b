"""``ridgeline show MODEL``: inputs, outputs, op histogram, parameters, FLOPs, bytes touched.

With ``-p PIPELINE`` it also runs the pipeline on a copy and shows nodes and bytes before/after.
"""

from __future__ import annotations

import argparse

from ...ir.stats import summarize
from ..common import add_model_argument, emit, fmt_bytes, fmt_count, load_model, table


def register(sub) -> None:
    p = sub.add_parser("show", help="summarize a model: I/O, ops, parameters, FLOPs, bytes")
    add_model_argument(p)
    p.add_argument("-p", "--pipeline", help="also show the effect of this pass pipeline")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _io(values) -> list[dict]:
    return [{"name": v.name, "type": str(v.type)} for v in values]


def run(args: argparse.Namespace) -> int:
    g = load_model(args)
    stats = summarize(g)
    data = {"model": args.model, "graph": g.name, "inputs": _io(g.inputs), "outputs": _io(g.outputs),
            **stats.as_dict()}
    after = None
    if args.pipeline:
        from ...api import optimize
        opt = optimize(g.copy(), args.pipeline)
        after = summarize(opt)
        data["pipeline"] = args.pipeline
        data["after"] = after.as_dict()

    def render() -> None:
        table(f"{args.model} (@{g.name})", ["", "name", "type"],
              [("input", v.name, v.type) for v in g.inputs] + [("output", v.name, v.type) for v in g.outputs])
        rows = _rows(stats)
        if stats.weightless:
            rows.append(("weightless constants", stats.weightless))
        if stats.symbols:
            rows.append(("symbolic dims", ", ".join(stats.symbols)))
        if after is not None:
            table(None, ["", "before", f"after -p {args.pipeline}"],
                  [(k, b, a) for (k, b), (_, a) in zip(rows[:5], _rows(after))])
        else:
            table(None, ["", "value"], rows)
        table("ops", ["op", "count"], list((after or stats).ops.items()))
    emit(args, data, render)
    return 0


def _rows(s) -> list[tuple]:
    return [("nodes", s.nodes), ("parameters", fmt_count(s.parameters)), ("parameter bytes", fmt_bytes(s.parameter_bytes)),
            ("FLOPs", fmt_count(s.flops)), ("bytes touched (est. HBM)", fmt_bytes(s.bytes_touched))]
