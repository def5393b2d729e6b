"""``ridgeline compare MODEL --targets a,b,c [--backends numpy,llvm,host-cpu,…]``: side by side.

Estimating targets get one row each: devices, memory fit, step time, bound, and for LLM presets
TTFT, TPOT and tokens/s (by default each target at the smallest deployment that fits: ``--tp
auto --pp auto``). Executing backends (numpy, llvm, torch, plugins) run the model on seeded
inputs: their outputs are checked against numpy (max abs error) and their measured time is shown
next to the predictions; when ``host-cpu`` is in the list, each executor also gets the host model's
prediction for the graph it ran and the ratio predicted / measured (``--per-node`` per node).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np

from ...api import optimize
from ...ir.errors import RidgelineError
from ..common import (MAX_SEED, UsageError, add_model_argument, emit, fmt_time, int_arg, is_file_model, parse_dims,
                      table, wide_output)
from ._estimating import (
    add_estimate_options,
    add_preset_arguments,
    companion_for,
    estimate_options,
    known_target_or_backend,
    load_estimable,
    progress,
)


def register(sub) -> None:
    p = sub.add_parser("compare", help="compare targets (estimated) and backends (measured) side by side",
                       description=__doc__.split("\n\n")[0])
    add_model_argument(p)
    p.add_argument("--targets", default="", help="comma-separated target names, or 'all'")
    p.add_argument("--backends", default="", help="comma-separated backends: executing (numpy, llvm, torch) "
                   "and/or targets (host-cpu, h100, …)")
    add_preset_arguments(p, tp_default="auto")
    add_estimate_options(p)
    p.add_argument("--repeat", type=int_arg(1, 1000), default=3, help="runs per executing backend (median is shown; default 3)")
    p.add_argument("--seed", type=int_arg(0, MAX_SEED), default=0, help="seed of the random inputs (default 0)")
    p.add_argument("--target-file", action="append", default=[], metavar="FILE.toml",
                   help="a target from a file (repeatable), compared like the named ones; a cpu-family file "
                   "(e.g. from `ridgeline calibrate -o host.toml`) becomes the host model the executing "
                   "backends are predicted with")
    p.add_argument("--per-node", action="store_true", help="host model predicted vs measured per node")
    p.add_argument("--decode-steps", type=int_arg(1, 100000), default=None, metavar="N",
                   help="time a KV-cache decode loop of N tokens per backend (and onnxruntime), per token")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    from ._serving_compare import add_workload_arguments
    add_workload_arguments(p)


def _names(args: argparse.Namespace, allow_empty: bool = False) -> list[str]:
    from ...cost_models import target_names
    out: list[str] = []
    for text in (args.targets, args.backends):
        for name in filter(None, (s.strip() for s in text.split(","))):
            names = target_names() if name == "all" else [name]
            out.extend(n for n in names if n not in out)
    if not out and not allow_empty:
        raise UsageError("name what to compare: --targets h100,tpu-v6e,… and/or --backends numpy,llvm,host-cpu")
    return out


def _file_targets(args: argparse.Namespace) -> list[str]:
    """Register each --target-file (in-process) and return their names."""
    from ...cost_models import get_target, load_target_file, register_target, target_names
    out = []
    for path in args.target_file:
        t = load_target_file(path)
        if t.name not in target_names():
            register_target(t)
        elif get_target(t.name) != t:
            raise UsageError(f"--target-file {path}: its name {t.name!r} is already a target; rename it "
                             f"(`name = ...` in the file, or `ridgeline calibrate --name`)")
        out.append(t.name)
    return out


def _host_model(names: list[str], file_targets: list[str]) -> str | None:
    """The cpu target executors are predicted with: a cpu file given, else host-cpu when listed."""
    from ...cost_models import get_target
    for n in file_targets:
        if get_target(n).family == "cpu":
            return n
    return "host-cpu" if "host-cpu" in names else None


def run(args: argparse.Namespace) -> int:
    file_targets = _file_targets(args)
    names = _names(args, allow_empty=bool(file_targets))
    names += [n for n in file_targets if n not in names]
    kinds = {n: known_target_or_backend(n) for n in names}
    executors = [n for n in names if kinds[n] == "backend"]
    targets = [n for n in names if kinds[n] == "target"]
    if getattr(args, "workload", None):
        from ._serving_compare import compare_serving
        if executors:
            raise UsageError("--workload compares targets as servers; executing backends do not serve")
        return compare_serving(args, targets)
    if getattr(args, "decode_steps", None):
        from ._decode_compare import compare_decode
        if not executors:
            raise UsageError("--decode-steps times executing backends: name them with --backends numpy,llvm,…")
        return compare_decode(args, executors, _host_model(names, file_targets))
    if executors and not is_file_model(args.model):
        raise UsageError(f"{args.model} is a weightless preset: executing backends ({', '.join(executors)}) need a "
                         f"model with weights (an .onnx or .rir file); estimate presets with --targets")
    t0 = time.perf_counter()
    with progress(f"loading {args.model}"):
        graph = load_estimable(args)
    rows: list[dict[str, Any]] = []
    if targets:
        rows += _estimate_targets(args, graph, targets)
    if executors:
        rows += _run_executors(args, graph, executors, _host_model(names, file_targets))
    data = {"model": args.model, "rows": rows, "elapsed_s": time.perf_counter() - t0}
    emit(args, data, lambda: _render(args, rows))
    return 0


# --------------------------------------------------------------------------- estimating targets
def _estimate_targets(args, graph, targets: list[str]) -> list[dict[str, Any]]:
    from ...backends.estimate import EstimateBackend
    from ...cost_models import GraphAnalysis, estimate_pair, get_target
    other = companion_for(graph, args.pipeline)
    analysis = GraphAnalysis(graph)
    other_analysis = GraphAnalysis(other) if other is not None else None
    rows = []
    for name in targets:
        target = get_target(name)
        row: dict[str, Any] = {"name": name, "kind": "estimate", "family": target.family}
        try:
            with progress(f"estimating on {name}"):
                opts = estimate_options(args, target.family)
                model = EstimateBackend(target).model(**opts)
                est, note = estimate_pair(lambda g, c: model.estimate(
                    g, companion=c, analysis=analysis if g is graph else other_analysis), graph, other)
        except UsageError:
            raise
        except RidgelineError as e:
            msg = str(e).split("\n")[0]
            if "not implemented yet" in msg:
                msg = f"skipped: the {target.family} cost model is not implemented yet"
            row["error"] = msg
            rows.append(row)
            continue
        row.update({"time_s": est.time_s, "bound": est.bound, "devices": est.devices, "tp": est.parallel["tp"],
                    "pp": est.parallel["pp"], "fits": est.fits,
                    "devices_needed": est.memory.devices_needed if est.memory else None})
        if note:
            row["note"] = note
        if est.llm is not None:
            row.update({"ttft_s": est.llm.ttft_s, "tpot_s": est.llm.tpot_s, "tokens_per_s": est.llm.tokens_per_s,
                        "tokens_per_s_per_user": est.llm.tokens_per_s_per_user, "mfu": est.llm.mfu})
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- executing backends
def _run_executors(args, graph, executors: list[str], host: str | None) -> list[dict[str, Any]]:
    from ...backends.registry import get_backend
    from ...ir.inputs import random_inputs
    dims = parse_dims(args.dim)
    inputs = random_inputs(graph, seed=args.seed, dims=dims)
    ref_exe = get_backend("numpy").compile(graph)
    reference = ref_exe.run(inputs)
    rows = []
    for name in executors:
        row: dict[str, Any] = {"name": name, "kind": "execute"}
        try:
            be = get_backend(name)
            pipe = args.pipeline if args.pipeline is not None else getattr(be, "default_pipeline", "")
            g = graph
            if pipe:
                g = optimize(graph.copy(), pipe)
            with progress(f"running on {name}"):
                exe = be.compile(g)
                outs = exe.run(inputs)                       # warm-up (JIT compiles here)
                times = []
                for _ in range(max(1, args.repeat)):
                    t = time.perf_counter()
                    outs = exe.run(inputs)
                    times.append(time.perf_counter() - t)
        except RidgelineError as e:
            row["error"] = str(e).split("\n")[0]
            rows.append(row)
            continue
        except ImportError as e:   # a built-in backend whose module is not in this build yet
            row["error"] = f"backend {name!r} is not available in this build ({e})"
            rows.append(row)
            continue
        measured = statistics.median(times)
        row.update({"measured_s": measured, "max_abs_error": _max_error(reference, outs)})
        if host is not None:
            _host_prediction(args, row, exe, g, inputs, host)
        rows.append(row)
    return rows


def _max_error(ref: dict[str, np.ndarray], outs: dict[str, np.ndarray]) -> float | None:
    worst = 0.0
    for k, r in ref.items():
        o = outs.get(k)
        if o is None or o.shape != r.shape:
            return None
        if r.dtype.kind in "fc" or o.dtype.kind in "fc":
            d = np.abs(o.astype(np.float64) - r.astype(np.float64))
            if d.size:
                worst = max(worst, float(np.nanmax(d)))
        elif r.size:
            worst = max(worst, float(np.max(np.abs(o.astype(np.int64) - r.astype(np.int64)))))
    return worst


def _host_prediction(args, row: dict, exe, g, inputs, host: str) -> None:
    from ...cost_models import estimate
    graph = getattr(exe, "graph", g)
    row["host_model"] = host
    try:
        est = estimate(graph.bind(parse_dims(args.dim)) if graph.symbols() else graph, host)
    except RidgelineError as e:
        row["host_cpu_error"] = str(e)
        return
    row["host_cpu_predicted_s"] = est.time_s
    row["predicted_over_measured"] = est.time_s / row["measured_s"] if row["measured_s"] else None
    if args.per_node:
        # the median of --repeat profiled runs per node: one run's node times are as noisy as its total
        samples: dict[str, list[float]] = {}
        try:
            for _ in range(max(1, args.repeat)):
                exe.run(inputs, profile=True)
                for n, t in (getattr(exe, "timings", {}) or {}).items():
                    if n.outputs:
                        samples.setdefault(n.outputs[0].name, []).append(t)
        except (TypeError, RidgelineError):
            samples = {}
        measured = {k: statistics.median(v) for k, v in samples.items()}
        row["per_node"] = [{"node": r.name, "op": r.op, "predicted_s": r.time_s, "measured_s": measured.get(r.name),
                            "ratio": (r.time_s / measured[r.name]) if measured.get(r.name) else None}
                           for r in est.nodes if r.time_s > 0 and r.op != "run"]


# --------------------------------------------------------------------------- output
def _render(args, rows: list[dict[str, Any]]) -> None:
    wide_output()
    est_rows = [r for r in rows if r["kind"] == "estimate"]
    if est_rows:
        llm = any("tpot_s" in r for r in est_rows)
        cols = ["target", "family", "devices", "fits", "time", "bound"]
        if llm:
            cols += ["TTFT", "TPOT", "tok/s", "tok/s/user", "MFU"]
        cols.append("note")
        out = []
        for r in est_rows:
            if "error" in r:
                out.append([r["name"], r["family"]] + ["-"] * (len(cols) - 3) + [r["error"]])
                continue
            line = [r["name"], r["family"], f"{r['devices']} (tp{r['tp']}·pp{r['pp']})",
                    "yes" if r["fits"] else f"no (needs {r['devices_needed']})", fmt_time(r["time_s"]), r["bound"]]
            if llm:
                line += [fmt_time(r.get("ttft_s")), fmt_time(r.get("tpot_s")), _num(r.get("tokens_per_s")),
                         _num(r.get("tokens_per_s_per_user")), f"{r.get('mfu', 0):.1%}"]
            line.append("")
            out.append(line)
        table(f"{args.model}: estimated", cols, out,
              justify=["left", "left"] + ["right"] * (len(cols) - 3) + ["left"])
    ex_rows = [r for r in rows if r["kind"] == "execute"]
    if ex_rows:
        host = next((r["host_model"] for r in ex_rows if r.get("host_model")), "host-cpu")
        cols = ["backend", "measured", "max |error| vs numpy", f"{host} predicted", "predicted / measured", "note"]
        out = []
        for r in ex_rows:
            if "error" in r:
                out.append([r["name"], "-", "-", "-", "-", r["error"]])
                continue
            err = r.get("max_abs_error")
            out.append([r["name"], fmt_time(r["measured_s"]), "-" if err is None else f"{err:.3g}",
                        fmt_time(r.get("host_cpu_predicted_s")),
                        "-" if r.get("predicted_over_measured") is None else f"{r['predicted_over_measured']:.2f}",
                        r.get("host_cpu_error", "")])
        table(f"{args.model}: measured (median of {args.repeat})", cols, out)
        for r in ex_rows:
            if r.get("per_node"):
                nodes = sorted(r["per_node"], key=lambda x: x["measured_s"] or 0, reverse=True)[:20]
                table(f"{r['name']}: {host} predicted vs measured per node (slowest 20)",
                      ["node", "op", "predicted", "measured", "ratio"],
                      [(x["node"], x["op"], fmt_time(x["predicted_s"]), fmt_time(x["measured_s"]),
                        "-" if x["ratio"] is None else f"{x['ratio']:.2f}") for x in nodes])


def _num(x) -> str:
    return "-" if x is None else f"{x:,.1f}"

