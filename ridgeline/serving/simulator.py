"""``simulate``: a model on a target under a workload and a scheduler — the serving simulator.

Builds the deployment (devices, KV-cache capacity, power, links) from one cost-model estimate,
the step-time table, the engines of the chosen policy, runs the event loop and measures it.
``max_rate`` searches the highest arrival rate whose run still meets an SLO.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Any

from ..ir.errors import RidgelineError
from .energy import IDLE_FRACTION, energy_report
from .engine_loop import Engine, run
from .metrics import SLO, Metrics, measure, parse_slo
from .schedulers import ENGINE_POLICIES, SCHEDULERS, EngineConfig, SpecDecode
from .schedulers.base import BlockPool
from .step_table import EstimateTable, StepTime, preset_estimator, preset_step
from .workload import Workload, WorkloadError, get_workload

__all__ = ["Deployment", "ServeResult", "SimulationError", "deployment_for", "max_rate", "simulate"]

SPATIAL = ("wafer_scale", "dataflow")


class SimulationError(RidgelineError):
    """A simulation that cannot run as asked (bad scheduler, model that does not fit, no rate meets the SLO)."""


@dataclass
class Deployment:
    """One replica's hardware as the simulator needs it."""

    target: str
    family: str = "stub"
    devices: int = 1                     # devices per replica
    kv_tokens: int | None = None         # KV-cache capacity per replica (None: unbounded)
    kv_bytes_per_token: float = 0.0
    power_w: float | None = None
    link_bandwidth: float = float("inf")  # B/s per device, for KV hand-offs inside the fast domain
    link_latency: float = 0.0
    domain_devices: int = 1 << 30           # devices the fast link joins (NVLink domain, ICI slice)
    scaleout_bandwidth: float | None = None  # the next link out (InfiniBand, …), None: same as link
    scaleout_latency: float = 0.0
    layers: int = 1
    weights_bytes_per_device: float = 0.0
    note: str = ""
    tp: int = 1
    pp: int = 1


@dataclass
class ServeResult:
    """A run: its set-up, the metrics and how long the simulation itself took."""

    model: str
    target: str
    scheduler: str
    workload: dict[str, Any]
    deployment: dict[str, Any]
    metrics: Metrics
    estimates: int = 0                   # cost-model estimates the step table made
    wall_s: float = 0.0                  # simulation wall time (excluding the table's estimates)
    table_s: float = 0.0                 # time the step table spent in the cost models (cumulative)
    options: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        from dataclasses import asdict
        d = asdict(self)
        d["metrics"] = self.metrics.to_json()
        return d


def deployment_for(model: str, target: str, *, tp: int | str = 1, pp: int | str = 1, max_batch: int = 256,
                   ref_context: int = 4096, preset_options: dict[str, Any] | None = None) -> Deployment:
    """Devices, KV capacity, power and links of one replica, from one estimate of the preset
    (``tp``/``pp`` may be ``"auto"``: the smallest deployment that fits)."""
    from ..cost_models import get_target
    t = get_target(target)
    spatial = t.family in SPATIAL
    g, est = preset_step(model, target, _parallel(t, tp, pp), phase="decode", batch=max_batch if spatial else 1,
                         context=ref_context, **(preset_options or {}))
    llm = g.meta["llm"]
    mem = est.memory
    tp, pp = (1, 1) if spatial else (int(est.parallel.get("tp", 1)), int(est.parallel.get("pp", 1)))
    kv_tok = est.llm.kv_cache_bytes_per_token if est.llm else 0.0
    devices = mem.devices if mem else tp * pp
    if spatial:
        # the deployment is sized (wafers, chips) to hold max_batch sequences of ref_context tokens
        kv_tokens = max_batch * ref_context
        note = (f"{t.family}: {devices} devices hold the weights and {max_batch} x {ref_context} "
                f"tokens of KV cache")
    else:
        free = (mem.capacity_bytes - mem.weights_bytes - mem.activation_bytes) * devices
        if free <= 0 or not kv_tok:
            raise SimulationError(f"{model} does not fit {tp * pp} x {target}: weights take "
                                  f"{mem.weights_bytes / 1e9:.1f} GB of {mem.capacity_bytes / 1e9:.1f} GB "
                                  f"usable per device (raise --tp/--pp)")
        kv_tokens = int(free // kv_tok)
        note = f"KV cache: {kv_tokens} tokens in {free / 1e9:.1f} GB left after weights"
    links = t.interconnect
    link = links[0] if links else None
    out = links[-1] if len(links) > 1 else None
    return Deployment(t.name, t.family, int(devices if spatial else tp * pp), kv_tokens, float(kv_tok), t.power_w,
                      link.bandwidth if link else float("inf"), link.latency if link else 0.0,
                      link.max_devices if link else 1 << 30, out.bandwidth if out else None,
                      out.latency if out else 0.0,
                      int(llm.get("layers", 1)), float(mem.weights_bytes if mem else 0.0), note, tp, pp)


def _spatial(target: Any) -> bool:
    from ..cost_models import get_target
    return get_target(target).family in SPATIAL


def _parallel(target: Any, tp: Any, pp: Any) -> dict[str, Any]:
    """The estimate's parallel options: none on a spatial machine (its layout decides)."""
    return {} if _spatial(target) else {"tp": tp, "pp": pp}


def _engines(policy: str, dep: Deployment, cfg: EngineConfig, replicas: int, prefill_replicas: int | None,
             stages: int | None) -> tuple[list[Engine], Any]:
    blocks = (dep.kv_tokens // cfg.block_size) if dep.kv_tokens is not None else (1 << 30)
    if policy == "disaggregated":
        if replicas < 2:
            raise SimulationError("the disaggregated scheduler needs --replicas >= 2 (prefill and decode pools)")
        p = prefill_replicas or max(1, replicas // 2)
        if not 1 <= p < replicas:
            raise SimulationError(f"--prefill-replicas must be 1..{replicas - 1}, got {p}")
        pre = replace(cfg, kv_blocks=blocks, handoff=True)
        dec = replace(cfg, kv_blocks=blocks)
        engines = [Engine(ENGINE_POLICIES["continuous"](replace(pre, seed=cfg.seed + i)), dep.devices, "prefill")
                   for i in range(p)]
        engines += [Engine(ENGINE_POLICIES["continuous"](replace(dec, seed=cfg.seed + p + i)), dep.devices, "decode")
                    for i in range(replicas - p)]
        # KV moves from the prefill replica's shards to the decode replica's, each device on its own
        # link: the fast link when both pools fit its domain (one NVLink board), else the scale-out one
        inside = replicas * dep.devices <= dep.domain_devices or dep.scaleout_bandwidth is None
        bw = dep.link_bandwidth if inside else dep.scaleout_bandwidth
        lat = dep.link_latency if inside else dep.scaleout_latency

        def transfer(seq) -> float:
            return lat + seq.need * dep.kv_bytes_per_token / (bw * max(dep.devices, 1))

        return engines, transfer
    if policy == "pipeline":
        s = stages or max(1, min(dep.devices, dep.layers))
        group = replace(cfg, kv_blocks=blocks, max_batch=max(1, cfg.max_batch // s))
        engines = []
        for r in range(replicas):
            pool = BlockPool(blocks)     # one KV cache per replica, shared by its micro-batch groups
            engines += [Engine(ENGINE_POLICIES["continuous"](replace(group, seed=cfg.seed + r * s + i), pool),
                               dep.devices / s) for i in range(s)]
        return engines, None
    cls = ENGINE_POLICIES[policy]
    return [Engine(cls(replace(cfg, kv_blocks=blocks, seed=cfg.seed + i)), dep.devices)
            for i in range(replicas)], None


def simulate(model: str = "llama-3-70b", target: str = "h100", *, workload: str | Workload = "chat",
             rate: float | None = None, requests: int = 1000, scheduler: str | None = None,
             tp: int = 1, pp: int = 1, replicas: int = 1, slo: str | SLO | None = None, seed: int = 0,
             step_time: StepTime | None = None, deployment: Deployment | None = None,
             max_batch: int | None = None, token_budget: int | None = None, block_size: int = 16,
             preemption: str = "recompute", spec_k: int = 0, spec_acceptance: float = 0.0,
             draft: str | StepTime | None = None, prefix_hit: float = 0.0,
             prefill_replicas: int | None = None, stages: int | None = None,
             power_w: float | None = None, kv_tokens: int | None = None, idle_fraction: float = IDLE_FRACTION, price: float | None = None,
             users: int | None = None, think: float | None = None,
             table: EstimateTable | None = None, preset_options: dict[str, Any] | None = None,
             stack: str | None = None, warmup: int | None = None, chunk_prefill: bool | None = None,
             reserve_output: bool | None = None) -> ServeResult:
    """Simulate serving ``model`` on ``target``; returns a ``ServeResult`` (``.metrics``).

    ``step_time`` (any ``StepTime``) replaces the cost models, with ``deployment`` describing the
    replica; otherwise both come from the target's cost model through an ``EstimateTable``
    (pass ``table`` to reuse one across runs). ``stack`` (``vllm``, ``trtllm``) takes that serving
    stack's engine defaults (``stacks.py``) for whatever is not given; ``chunk_prefill=False`` (whole
    prompts only) and ``reserve_output=True`` (admit with KV for prompt + output) are the chunked
    scheduler's TensorRT-LLM admission rules. ``warmup`` requests (by
    arrival; default: one per closed-loop user, none in an open loop) are left out of the latency
    figures, as benchmark tools report the steady state. See docs/serving.md for every knob.
    """
    w = get_workload(workload, rate=rate, users=users, think=think)
    if requests < 1:
        raise WorkloadError(f"--requests must be >= 1, got {requests}")
    if preemption not in ("recompute", "swap"):
        raise SimulationError(f"unknown preemption mode {preemption!r} (recompute, swap)")
    if not 0 <= prefix_hit < 1:
        raise SimulationError(f"prefix hit rate must be in [0, 1), got {prefix_hit}")
    from .stacks import get_stack
    st = get_stack(stack, target) if stack is not None else None     # an unknown name fails before the cost models
    if warmup is not None and (not isinstance(warmup, int) or warmup < 0):
        raise SimulationError(f"--warmup must be a count of requests >= 0, got {warmup!r}")
    if spec_k < 0 or not 0 <= spec_acceptance <= 1:
        raise SimulationError("speculative decoding needs k >= 0 and an acceptance rate in [0, 1]")
    for name, v in (("replicas", replicas), ("tp", tp), ("pp", pp), ("kv-tokens", 1 if kv_tokens is None else kv_tokens)):
        if v == "auto" and name in ("tp", "pp") and (deployment or step_time is None or isinstance(step_time, EstimateTable)):
            continue    # the cost models' deployment resolves it below (or the one given says it)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            hint = " ('auto' needs the cost models: no step_time, or a deployment)" * (v == "auto" and name in ("tp", "pp"))
            raise SimulationError(f"--{name} must be a positive integer, got {v!r}{hint}")
    slo_ = parse_slo(slo)
    ref_context = int(min(32768, max(512, 2 * (w.prompt.mean + w.output.mean)))) if w.arrival != "trace" else \
        int(min(32768, max(512, 2 * max(r.prompt + r.output for r in w.trace))))
    popts = dict(preset_options or {})
    sized = deployment is None and (step_time is None or isinstance(step_time, EstimateTable))  # memory sets its KV
    spatial = (step_time is None or isinstance(step_time, EstimateTable)) and _spatial(target)
    if step_time is None and table is None and "auto" in (tp, pp):
        deployment = deployment or deployment_for(model, target, tp=tp, pp=pp, max_batch=max_batch or (32 if spatial else 256),
                                                  ref_context=ref_context, preset_options=popts)
        tp, pp = deployment.tp, deployment.pp
    if step_time is None:
        step_time = table if table is not None else \
            EstimateTable(preset_estimator(model, target, _parallel(target, tp, pp), popts))
    if deployment is None:
        deployment = deployment_for(model, target, tp=tp, pp=pp, max_batch=max_batch or (32 if spatial else 256),
                                    ref_context=ref_context, preset_options=popts) \
            if isinstance(step_time, EstimateTable) else Deployment(str(target), devices=tp * pp)
    if power_w is not None:
        deployment = replace(deployment, power_w=power_w)
    if kv_tokens is not None:
        if sized and kv_tokens > deployment.kv_tokens:   # a spatial layout holds what it was priced for
            raise SimulationError(f"--kv-tokens {kv_tokens} does not fit {deployment.tp}x{deployment.pp} x {target}: "
                                  f"its memory holds {deployment.kv_tokens} tokens of KV cache "
                                  f"({'raise --max-batch' if spatial else 'raise --tp/--pp'})")
        deployment = replace(deployment, kv_tokens=kv_tokens, note=f"KV cache set to {kv_tokens} tokens ({deployment.note})")
    if "auto" in (tp, pp):   # a given table or deployment settled the layout: read it back
        tp, pp = deployment.tp, deployment.pp
    st = get_stack(stack, target, deployment.family) if st else None   # host terms follow the deployment's family
    if st is not None:
        scheduler = scheduler or st.scheduler
        max_batch = max_batch or st.max_batch
        token_budget = token_budget or st.token_budget
        chunk_prefill = st.chunk_prefill if chunk_prefill is None else chunk_prefill
        reserve_output = st.reserve_output if reserve_output is None else reserve_output
    chunk_prefill = True if chunk_prefill is None else bool(chunk_prefill)
    reserve_output = bool(reserve_output)
    policy = scheduler or ("pipeline" if deployment.family in SPATIAL else "continuous")
    if policy not in SCHEDULERS:
        raise SimulationError(f"unknown scheduler {policy!r} (choose from {', '.join(SCHEDULERS)})")
    spatial = deployment.family in SPATIAL
    mb = max_batch or (32 if spatial else 256)
    budget = token_budget or (2048 if policy == "chunked" else 8192)
    spec = None
    if spec_k:
        dstep = draft
        if isinstance(draft, str):
            dstep = EstimateTable(preset_estimator(draft, target, _parallel(target, tp, pp), popts))
        spec = SpecDecode(spec_k, spec_acceptance, dstep)
    cfg = EngineConfig(step_time, block_size=block_size, max_batch=mb, token_budget=max(budget, 1),
                       chunk_prefill=chunk_prefill, reserve_output=reserve_output, preemption=preemption, kv_bytes_per_token=deployment.kv_bytes_per_token,
                       prefix_hit=prefix_hit, spec=spec, seed=seed, graph_pad=st.graph_pad if st else 0,
                       graph_ctx=st.graph_ctx if st else 0, host=st.host if st else 0.0,
                       output_lag=bool(st and st.output_lag and pp == 1 and not spec_k  # V0: not under pp or spec,
                                       and policy in ("chunked", "continuous")))        # nor with policies it lacks
    engines, transfer = _engines(policy, deployment, cfg, replicas, prefill_replicas, stages)
    t0 = time.perf_counter()
    table_s = step_time.seconds if isinstance(step_time, EstimateTable) else 0.0
    if w.arrival == "closed":
        trace = run(engines, workload=w, closed_requests=requests, seed=seed, transfer=transfer)
    else:
        trace = run(engines, w.requests(requests, seed), transfer=transfer)
    wall = time.perf_counter() - t0
    if isinstance(step_time, EstimateTable):
        wall -= step_time.seconds - table_s       # the table's estimates are reported apart
    if not trace.seqs:
        raise SimulationError("no request fits this deployment's KV cache (every request was rejected)")
    if warmup is None:
        warmup = w.users if w.arrival == "closed" else 0
    m = measure(trace, slo_, warmup=min(warmup, max(len(trace.seqs) - 1, 0)))
    out_tokens = sum(s.generated for s in trace.seqs)
    m.energy = energy_report(trace, m.duration_s, out_tokens, out_tokens + sum(s.req.prompt for s in trace.seqs),
                             power_w=deployment.power_w, idle_fraction=idle_fraction, price_per_device_hour=price)
    from dataclasses import asdict
    wl = {"name": w.name, "arrival": w.arrival, "rate": w.rate if w.arrival != "closed" else None,
          "users": w.users or None, "mean_prompt": float(sum(s.req.prompt for s in trace.seqs) / len(trace.seqs)),
          "mean_output": out_tokens / len(trace.seqs), "source": w.source}
    return ServeResult(model, getattr(target, "name", str(target)), policy, wl, asdict(deployment) | {"replicas": replicas, "tp": tp, "pp": pp},
                       m, step_time.points if isinstance(step_time, EstimateTable) else 0, wall,
                       step_time.seconds if isinstance(step_time, EstimateTable) else 0.0,
                       {"slo": str(slo_) if slo_ else None, "max_batch": mb, "token_budget": budget,
                        "preemption": preemption, "spec_k": spec_k, "spec_acceptance": spec_acceptance,
                        "prefix_hit": prefix_hit, "seed": seed, "requests": requests, "stack": stack,
                        "chunk_prefill": chunk_prefill, "reserve_output": reserve_output})


def max_rate(slo: str | SLO, *, rate_lo: float | None = None, iterations: int = 12, strict: bool = True,
             **kwargs: Any) -> dict[str, Any]:
    """The highest Poisson/gamma arrival rate whose run meets ``slo`` (bisection), with the runs.

    ``kwargs`` go to ``simulate`` (the same seed for every rate). When even a rate far below the
    offline maximum misses the SLO it raises ``SimulationError``, or with ``strict=False`` returns
    ``max_rate`` 0, that run as ``at_max`` and the reason as ``missed``.
    """
    slo_ = parse_slo(slo)
    if slo_ is None:
        raise SimulationError("max_rate needs an SLO")
    kwargs.pop("rate", None)
    w = get_workload(kwargs.get("workload", "chat"))
    if w.arrival in ("closed", "trace"):
        raise SimulationError(f"the highest rate meeting an SLO needs an open-loop workload, not a {w.arrival} "
                              f"({w.name}): its arrivals are given")
    if kwargs.get("step_time") is None and kwargs.get("table") is None:
        target = kwargs.get("target", "h100")
        opts = _parallel(target, kwargs.get("tp", 1), kwargs.get("pp", 1))
        kwargs["table"] = EstimateTable(preset_estimator(kwargs.get("model", "llama-3-70b"), target, opts,
                                                         kwargs.get("preset_options") or {}))
    # offline maximum: everything arrives at once
    sat = simulate(rate=1e9, slo=slo_, **kwargs)
    cap = sat.metrics.throughput_rps
    lo = rate_lo or cap / 100
    first = simulate(rate=lo, slo=slo_, **kwargs)
    if not first.metrics.slo_met:
        m = first.metrics
        why = (f"no arrival rate meets the SLO {slo_}: even at {lo:.3g} req/s p{slo_.percentile:g} TTFT is "
               f"{_pct(m.ttft, slo_.percentile)} and TPOT {_pct(m.tpot, slo_.percentile)}")
        if strict:
            raise SimulationError(why)
        return {"max_rate": 0.0, "offline_max_rps": cap, "slo": str(slo_), "at_max": first, "missed": why}
    hi = cap * 1.5
    best = first
    a, b = lo, hi
    for _ in range(iterations):
        mid = math.sqrt(a * b)
        r = simulate(rate=mid, slo=slo_, **kwargs)
        if r.metrics.slo_met:
            a, best = mid, r
        else:
            b = mid
        if b / a < 1.02:
            break
    return {"max_rate": a, "offline_max_rps": cap, "slo": str(slo_), "at_max": best}


def _pct(d: dict, p: float) -> str:
    key = f"p{int(p)}" if f"p{int(p)}" in d else "p99"
    v = d.get(key)
    return "-" if v is None else f"{v * 1e3:.1f} ms"
