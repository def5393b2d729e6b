"""``ridgeline serve-sim MODEL --target T --workload W [--rate R] [--scheduler S] [--slo …]``.

Simulates serving a preset on a target under a workload and prints TTFT, TPOT, inter-token and
end-to-end latency percentiles, throughput, goodput under the SLO, KV occupancy, preemptions,
utilization, energy per token (and cost per million tokens with --price). ``--max-rate`` searches
the highest arrival rate meeting the SLO; ``--plot`` draws latency percentiles vs rate and a
timeline. See docs/serving.md.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from ..common import MAX_DEGREE, MAX_SEED, UsageError, emit, float_arg, fmt_time, int_arg, parse_rates, table, wide_output

_pos_float = float_arg(0.0, math.inf, open_lo=True)
_count = int_arg(1, 10 ** 9)        # batch sizes, budgets, prefixes: counts, not parallel degrees
_degree = int_arg(1, MAX_DEGREE)    # tp, pp, replicas, stages (no 'auto': the step table is priced at one layout)
_sim = int_arg(1, 10 ** 7)          # requests, users: what a run holds in memory and time


def add_serving_arguments(p: argparse.ArgumentParser) -> None:
    """Flags ``serve-sim`` shares with ``compare --workload``."""
    from ...serving.schedulers import SCHEDULERS
    g = p.add_argument_group("serving simulation")
    g.add_argument("--workload", help="chat, code, summarization, sharegpt, custom, or a CSV trace "
                   "(arrival,prompt,output[,prefix,group])")
    g.add_argument("--rate", type=_pos_float, help="arrivals per second (Poisson unless --arrival gamma)")
    g.add_argument("--arrival", choices=("poisson", "gamma"), help="open-loop arrival process")
    g.add_argument("--cv", type=float_arg(0.0, 100.0, open_lo=True), help="gamma arrivals: coefficient of variation (burstiness)")
    g.add_argument("--users", type=_sim, help="closed loop of N users instead of an arrival rate (at most 10^7)")
    g.add_argument("--think", type=float_arg(0.0, 1e9), help="closed loop: seconds between a reply and the next request")
    g.add_argument("--prompt-len", help="prompt tokens: N or lognormal:MEDIAN,SIGMA (overrides the workload)")
    g.add_argument("--output-len", help="output tokens: N or lognormal:MEDIAN,SIGMA")
    g.add_argument("--requests", type=_sim, default=1000, help="requests to simulate (default 1000, at most 10^7)")
    g.add_argument("--scheduler", help=f"one of {', '.join(SCHEDULERS)} (default: continuous; pipeline on "
                   "wafer-scale and dataflow targets)")
    g.add_argument("--slo", help="latency bounds, e.g. ttft=0.2,tpot=0.05[,p=99] (seconds or 200ms)")
    g.add_argument("--replicas", type=_degree, default=1, help="engine replicas (each --tp x --pp devices)")
    g.add_argument("--seed", type=int_arg(0, MAX_SEED), default=0, help="random seed of arrivals and lengths (default 0)")


def register(sub) -> None:
    from ...serving.schedulers import SCHEDULERS  # noqa: F401  (import check at registration)
    p = sub.add_parser("serve-sim", help="simulate serving a model: latency percentiles, goodput, energy",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("model", metavar="MODEL", help="an LLM preset (see `ridgeline estimate --help`)")
    p.add_argument("--target", default="h100", help="hardware target (default h100)")
    p.add_argument("--tp", type=_degree, default=1, help="tensor-parallel degree per replica")
    p.add_argument("--pp", type=_degree, default=1, help="pipeline-parallel degree per replica")
    p.add_argument("--dtype", choices=("bf16", "fp16", "fp8", "int8", "int4"), help="weights and activations")
    add_serving_arguments(p)
    g = p.add_argument_group("engine")
    g.add_argument("--stack", help="a serving stack's engine defaults: vllm (V1: chunked prefill, 2048/8192-token "
                   "budget), vllm-v0 (0.6-0.7: engine CPU time every step, decodes padded to CUDA-graph batches), "
                   "trtllm or nim (in-flight batching: whole prompts, no-evict KV); flags below still win")
    g.add_argument("--max-batch", type=_count, help="sequences per step (default 256; 32 on spatial targets)")
    g.add_argument("--token-budget", type=_count, help="tokens per step (default 8192; chunked: 2048)")
    g.add_argument("--block-size", type=_count, default=16, help="KV block size in tokens (default 16)")
    g.add_argument("--kv-tokens", type=int_arg(1, 10 ** 15), help="override the KV-cache capacity per replica (tokens)")
    g.add_argument("--preemption", choices=("recompute", "swap"), default="recompute")
    g.add_argument("--prefill-replicas", type=_degree, help="disaggregated: replicas in the prefill pool")
    g.add_argument("--stages", type=_degree, help="pipeline: micro-batch groups in flight (default: "
                   "one per device, at most one per layer)")
    g.add_argument("--spec", metavar="K,ACCEPT[,DRAFT]", help="speculative decoding: K drafted tokens, "
                   "acceptance rate, and a draft preset (omit for an n-gram draft), e.g. 4,0.7,llama-3-8b")
    g.add_argument("--prefix-hit", type=float_arg(0.0, 1.0), default=0.0, help="share of each prompt served by a prefix cache")
    g.add_argument("--shared-prefix", type=_count, help="a shared prefix of N tokens per group (prefix caching)")
    g.add_argument("--prefix-groups", type=_count, help="distinct shared prefixes (default 1)")
    g = p.add_argument_group("energy and cost")
    g.add_argument("--power", type=_pos_float, help="watts per device (default: the target file's power)")
    g.add_argument("--idle-fraction", type=float_arg(0.0, 1.0), default=0.2, help="idle power as a share of rated (default 0.2)")
    g.add_argument("--price", type=_pos_float, help="USD per device-hour, for cost per million tokens")
    g = p.add_argument_group("output")
    g.add_argument("--max-rate", action="store_true", help="search the highest rate meeting --slo")
    g.add_argument("--sweep", help="rates for the latency-vs-rate plot, e.g. 1,2,4,8 (with --plot)")
    g.add_argument("--plot", metavar="OUT.png", help="latency percentiles vs rate (with --sweep or --max-rate) "
                   "and the run's timeline (OUT.timeline.png)")
    g.add_argument("--warmup", type=int_arg(0, 10 ** 9), help="leading requests left out of the latency figures "
                   "(default: one per --users in a closed loop, none in an open loop)")
    g.add_argument("--json", action="store_true", help="machine-readable output")


def sim_kwargs(args: argparse.Namespace) -> dict:
    """``simulate`` keyword arguments from the flags."""
    from ...serving import get_workload
    from ...serving.simulator import Deployment  # noqa: F401
    if args.rate is not None and args.users is not None:
        raise UsageError("give --rate (open loop) or --users (closed loop), not both")
    w = get_workload(args.workload or "chat", arrival=args.arrival, cv=args.cv, users=args.users,
                     think=args.think, prompt=args.prompt_len, output=args.output_len,
                     shared_prefix=getattr(args, "shared_prefix", None), prefix_groups=getattr(args, "prefix_groups", None))
    kw: dict = {"workload": w, "rate": args.rate, "requests": args.requests, "scheduler": args.scheduler, "slo": args.slo,
                    "replicas": args.replicas, "seed": args.seed}
    from ...serving.schedulers import SCHEDULERS
    if args.scheduler is not None and args.scheduler not in SCHEDULERS:
        raise UsageError(f"unknown scheduler {args.scheduler!r} (choose from {', '.join(SCHEDULERS)})")
    if w.arrival not in ("closed", "trace") and args.rate is None and not getattr(args, "max_rate", False):
        raise UsageError("give an arrival rate with --rate R (requests/s), or --users N for a closed loop")
    return kw


def _engine_kwargs(args: argparse.Namespace) -> dict:
    kw: dict = {"tp": args.tp, "pp": args.pp, "max_batch": args.max_batch, "token_budget": args.token_budget,
                    "block_size": args.block_size, "preemption": args.preemption, "prefill_replicas": args.prefill_replicas,
                    "stages": args.stages, "prefix_hit": args.prefix_hit, "power_w": args.power,
                    "idle_fraction": args.idle_fraction, "price": args.price, "stack": args.stack,
                    "warmup": args.warmup, "kv_tokens": args.kv_tokens}
    if not 0 <= args.prefix_hit < 1:
        raise UsageError(f"--prefix-hit must be in [0, 1), got {args.prefix_hit}")
    if args.spec:
        parts = args.spec.split(",")
        try:
            kw["spec_k"], kw["spec_acceptance"] = int(parts[0]), float(parts[1])
        except (ValueError, IndexError):
            raise UsageError(f"--spec expects K,ACCEPTANCE[,DRAFT_PRESET], got {args.spec!r}") from None
        if kw["spec_k"] < 1 or not 0 <= kw["spec_acceptance"] <= 1:
            raise UsageError(f"--spec: K must be >= 1 and the acceptance in [0, 1], got {args.spec!r}")
        kw["draft"] = parts[2] if len(parts) > 2 and parts[2] else None
    if args.dtype:
        kw["preset_options"] = {"dtype": args.dtype}
    return kw


def _check_model(name: str) -> None:
    from ...ir.errors import ModelError
    from ...models import find_preset, preset_names
    if find_preset(name) is None:
        raise ModelError(f"{name}: serve-sim takes an LLM preset ({', '.join(preset_names())})")


def run(args: argparse.Namespace) -> int:
    from ...serving import max_rate, simulate
    from ...serving.simulator import _parallel
    from ...serving.step_table import EstimateTable, preset_estimator
    _check_model(args.model)
    kw = sim_kwargs(args) | _engine_kwargs(args)
    opts = _parallel(args.target, args.tp, args.pp)     # none on a spatial target
    kw["table"] = EstimateTable(preset_estimator(args.model, args.target, opts, kw.get("preset_options") or {}))
    search = None
    if args.max_rate:
        if not args.slo:
            raise UsageError("--max-rate needs --slo ttft=…,tpot=…")
        search = max_rate(model=args.model, target=args.target, **{k: v for k, v in kw.items() if k != "rate"})
        res = search["at_max"]
    else:
        res = simulate(args.model, args.target, **kw)
    curves = None
    if args.sweep:
        curves = {args.target: [(r, simulate(args.model, args.target, **(kw | {"rate": r})).metrics)
                                for r in parse_rates(args.sweep)]}
    if args.plot:
        from ...serving.plot import plot_rate_sweep, plot_timeline
        out = Path(args.plot)
        if curves:
            plot_rate_sweep(curves, out, slo=res.options.get("slo") and _slo(args.slo))
            plot_timeline(res.metrics, out.with_suffix(".timeline" + out.suffix), title=_title(res))
        else:
            plot_timeline(res.metrics, out, title=_title(res))
    data = res.to_json()
    if search:
        data["max_rate"] = {"rate": search["max_rate"], "offline_max_rps": search["offline_max_rps"],
                            "slo": search["slo"]}
    if curves:
        data["sweep"] = [{"rate": r, "metrics": m.to_json()} for r, m in curves[args.target]]
    for key in ("timeline",):
        data["metrics"].pop(key, None) if not args.json else None
    emit(args, data, lambda: render(res, search))
    return 0


def _slo(text):
    from ...serving import parse_slo
    return parse_slo(text)


def _title(res) -> str:
    stack = res.options.get("stack")
    return f"{res.model} on {res.target} ({f'{stack}: ' if stack else ''}{res.scheduler}), {res.workload['name']}"


def _ms(d: dict, key: str) -> str:
    return fmt_time(d.get(key))


def render(res, search=None) -> None:
    wide_output(100)
    m = res.metrics
    dep = res.deployment
    w = res.workload
    rate = f"{w['rate']:g} req/s" if w.get("rate") else (f"{w['users']} users" if w.get("users") else "trace")
    rows = [(name, _ms(d, "p50"), _ms(d, "p90"), _ms(d, "p99"), _ms(d, "mean"))
            for name, d in (("TTFT", m.ttft), ("TPOT", m.tpot), ("ITL", m.itl), ("E2E", m.e2e))]
    devices = dep["devices"] * dep["replicas"]
    warm = f" ({m.warmup} warm-up left out of the latencies)" if m.warmup else ""
    table(f"{_title(res)} · {rate} · {res.options['requests']} requests{warm} · {devices} devices",
          ["latency", "p50", "p90", "p99", "mean"], rows)
    e = m.energy
    rows2: list[tuple[str, str]] = []

    def add(name: str, *parts: str) -> None:
        rows2.append((name, "".join(parts)))

    add("throughput", f"{m.throughput_rps:.3g} req/s · {m.output_tokens_per_s:.4g} output tok/s · ",
        f"{m.total_tokens_per_s:.4g} tok/s in+out")
    if m.goodput_rps is not None:
        add("goodput", f"{m.goodput_rps:.3g} req/s within {res.options['slo']} ",
            f"({100 * m.slo_attained:.1f}% of requests; SLO {'met' if m.slo_met else 'missed'})")
    if search:
        add("max rate meeting SLO", f"{search['max_rate']:.3g} req/s ",
            f"(offline max {search['offline_max_rps']:.3g} req/s)")
    add("KV cache", f"mean {100 * m.kv_occupancy['mean']:.1f}%, peak {100 * m.kv_occupancy['peak']:.1f}% of ",
        f"{dep['kv_tokens'] or '∞'} tokens/replica · {m.preemptions} preemptions")
    add("utilization", f"{100 * m.utilization:.1f}% of device time in steps")
    if e.get("j_per_output_token") is not None:
        add("energy", f"{e['j_per_output_token']:.3g} J/output token · {e['j_per_token']:.3g} J/token · ",
            f"avg {e['average_w'] / 1e3:.3g} kW")
    else:
        add("energy", e.get("note", "-"))
    if e.get("usd_per_million_output_tokens") is not None:
        add("cost", f"${e['usd_per_million_output_tokens']:.3g} per million output tokens")
    if m.prefix_cached_tokens:
        add("prefix cache", f"{m.prefix_cached_tokens} prompt tokens served from cache")
    if m.rejected:
        add("rejected", f"{m.rejected} requests whose prompt never fits the KV cache")
    if m.truncated:
        add("truncated", f"{m.truncated} requests stopped at the KV capacity")
    add("Little's law", f"L = {m.littles_law['L']:.3g} in system, λW = {m.littles_law['lambda_W']:.3g}")
    add("simulation", f"{res.wall_s:.2f} s for {m.requests} requests · {res.estimates} cost-model ",
        f"estimates in {res.table_s:.1f} s")
    table(None, ["metric", "value"], rows2, justify=["left", "left"])
