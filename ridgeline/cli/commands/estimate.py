"""``ridgeline estimate MODEL --target T``: how MODEL would run on hardware you do not have.

Prints the step's time and bound, LLM serving metrics (TTFT, TPOT, tokens/s, KV cache, MFU,
memory fit and devices) and the slowest nodes; ``--json`` gives all of it per node, ``--plot``
draws the roofline; for statically scheduled targets ``--schedule`` writes the schedule (JSON)
and ``--gantt`` draws it.
"""

from __future__ import annotations

import argparse

from ..common import UsageError, add_model_argument, emit, fmt_bytes, fmt_count, fmt_time, int_arg, table, wide_output
from ._estimating import (add_estimate_options, add_preset_arguments, companion_for, estimate_options, load_estimable,
                          progress, target_from_args)


def register(sub) -> None:
    from ...models import preset_names
    p = sub.add_parser("estimate", help="estimate a model on a hardware target (time, bound, tokens/s, fit)",
                       description=__doc__.split("\n\n")[0], epilog=f"presets: {', '.join(preset_names())}")
    add_model_argument(p)
    p.add_argument("-t", "--target", help="a target name (see `ridgeline targets`)")
    p.add_argument("--target-file", metavar="FILE.toml", help="a target spec file of your own")
    add_preset_arguments(p)
    add_estimate_options(p)
    p.add_argument("--top", type=int_arg(0, 2 ** 31), default=15, help="nodes to list, slowest first (default 15; 0: all)")
    p.add_argument("--by-op", action="store_true", help="list time per op instead of per node")
    p.add_argument("--plot", metavar="OUT.png|OUT.svg", help="write a roofline plot of the nodes")
    p.add_argument("--schedule", metavar="OUT.json", help="dataflow targets: write the static schedule (every op's "
                   "chip, unit, start cycle and duration)")
    p.add_argument("--gantt", metavar="OUT.png|OUT.svg", help="dataflow targets: draw the static schedule as a "
                   "Gantt chart")
    p.add_argument("--json", action="store_true", help="machine-readable output (every node)")


def run(args: argparse.Namespace) -> int:
    from ...backends.estimate import EstimateBackend
    target = target_from_args(args)
    opts = estimate_options(args, target.family)
    backend = EstimateBackend(target)
    backend.model(**opts)  # unknown options and unimplemented families fail before any work
    if (args.schedule or args.gantt) and target.family != "dataflow":
        flag = "--schedule" if args.schedule else "--gantt"
        raise UsageError(f"{flag} applies to statically scheduled (dataflow) targets such as groq-lpu, "
                         f"not to {target.name} ({target.family})")
    with progress(f"estimating {args.model} on {target.name}"):
        graph = load_estimable(args)
        other = companion_for(graph, args.pipeline)
        est = backend.compile(graph, companion=other, **opts)
    if args.plot:
        from ...cost_models.plot import roofline_plot
        roofline_plot(est, target, args.plot)
    _write_schedule(args, est)
    emit(args, est.to_json(), lambda: _render(args, est))
    return 0


def _write_schedule(args: argparse.Namespace, est) -> None:
    sched = getattr(est, "schedule", None)
    if sched is None:
        return
    if args.schedule:
        sched.write_json(args.schedule)
    if args.gantt:
        sched.gantt(args.gantt)


def _render(args: argparse.Namespace, est) -> None:
    wide_output()
    rows = [("target", f"{est.target} ({est.family})"), ("step time", fmt_time(est.time_s)),
            ("bound", f"{est.bound}  ({_shares(est)})"),
            ("FLOPs / device", fmt_count(est.flops)),
            ("bytes / device", ", ".join(f"{k} {fmt_bytes(v)}" for k, v in est.bytes.items())),
            ("parallel", f"tp={est.parallel['tp']} pp={est.parallel['pp']} ({est.devices} device"
                         f"{'s' if est.devices != 1 else ''})")]
    m = est.memory
    if m is not None:
        rows.append(("memory / device", f"{fmt_bytes(m.per_device_bytes)} of {fmt_bytes(m.capacity_bytes)} usable "
                     f"(weights {fmt_bytes(m.weights_bytes)}, KV {fmt_bytes(m.kv_cache_bytes)}, "
                     f"activations {fmt_bytes(m.activation_bytes)})"))
        rows.append(("fits", ("yes" if m.fits else "NO") + (f"; {m.note}" if m.note else "")))
    llm = est.llm
    if llm is not None:
        rows += [("TTFT", fmt_time(llm.ttft_s)), ("TPOT", fmt_time(llm.tpot_s)),
                 ("tokens/s", f"{llm.tokens_per_s:,.1f} aggregate, {llm.tokens_per_s_per_user:,.1f} per user"
                  if llm.tokens_per_s else "-"),
                 ("KV cache", (f"{fmt_bytes(llm.kv_cache_bytes_per_token)} per token, "
                               f"{fmt_bytes(llm.kv_cache_bytes)} at {llm.context:,} tokens × batch {llm.batch}")
                  if llm.kv_cache_bytes_per_token else "none (an encoder)"),
                 ("MFU", f"{llm.mfu:.1%}"),
                 ("bandwidth", f"{llm.achieved_bandwidth / 1e9:,.0f} GB/s per device "
                               f"({llm.bandwidth_utilization:.0%} of nameplate)")]
    for note in est.notes:
        rows.append(("note", note))
    table(f"{args.model} on {est.target}", ["", ""], rows, justify=["left", "left"])
    if args.by_op:
        ops = est.by_op()
        n = len(ops) if args.top == 0 else args.top
        table("time by op", ["op", "count", "time", "share", "bound", "FLOPs", "bytes"],
              [(a["op"], a["count"], fmt_time(a["time_s"]), f"{a['time_s'] / est.time_s:.1%}" if est.time_s else "-",
                a["bound"], fmt_count(a["flops"]), fmt_bytes(a["bytes"])) for a in ops[:n]])
        return
    top = est.top(None if args.top == 0 else args.top)
    table(f"slowest nodes ({len(top)} of {len(est.nodes)})",
          ["node", "op", "time", "share", "bound", "unit", "FLOPs", "bytes", "FLOP/B", "tile"],
          [(r.name, r.op, fmt_time(r.time_s), f"{r.time_s / est.time_s:.1%}" if est.time_s else "-", r.bound, r.unit,
            fmt_count(r.flops), fmt_bytes(r.outer_bytes), _intensity(r.intensity), _tile(r)) for r in top])


def _shares(est) -> str:
    b = est.breakdown
    total = sum(b.values()) or 1.0
    return ", ".join(f"{k} {v / total:.0%}" for k, v in b.items() if v > 0)


def _intensity(x: float) -> str:
    if x == float("inf"):
        return "∞"
    return f"{x:,.1f}"


def _tile(r) -> str:
    t = r.detail.get("tile")
    if isinstance(t, dict) and t.get("shape"):
        return "×".join(str(v) for v in t["shape"].values())
    g = r.detail.get("gemms")
    if g and g[0].get("tile"):
        tm, tn, _ = g[0]["tile"]
        split = g[0].get("split_k", 1)
        return f"{tm}×{tn}" + (f" /{split}k" if split > 1 else "") + " (model)"
    return ""
