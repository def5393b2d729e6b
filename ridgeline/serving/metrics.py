"""Serving metrics from a simulated run: latency percentiles, throughput, goodput, occupancy.

Definitions (as vLLM's and MLPerf's benchmarks use them): TTFT = first token − arrival;
TPOT = (last token − first token) / (output − 1) per request; ITL = every gap between two
streamed chunks of one request (speculative decoding streams several tokens per chunk); E2E =
last token − arrival. Throughput is over the span from the first arrival to the last token.
Goodput counts requests meeting both SLO bounds (Distserve's definition), per second.

``warmup``: the first requests by arrival are left out of the latency figures (TTFT, TPOT, ITL,
E2E, goodput, the SLO), as benchmark tools report a steady state (perf_analyzer measures in
windows until they are stable; AIPerf and vLLM's bench take warm-up requests). A closed loop's
first request per user all arrive at once, a burst the steady state never sees again.
Throughput, occupancy and Little's law still cover the whole run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .engine_loop import Trace

__all__ = ["SLO", "Metrics", "measure", "parse_slo", "percentiles"]

QUANTILES = (50, 90, 99)


@dataclass(frozen=True)
class SLO:
    """Latency bounds in seconds (None: unbounded) and the percentile both must meet."""

    ttft: float | None = None
    tpot: float | None = None
    percentile: float = 99.0

    def met_by(self, ttft: np.ndarray, tpot: np.ndarray) -> np.ndarray:
        ok = np.ones(len(ttft), dtype=bool)
        if self.ttft is not None:
            ok &= ttft <= self.ttft
        if self.tpot is not None:
            ok &= tpot <= self.tpot
        return ok

    def __str__(self) -> str:
        parts = [f"{k}={v:g}" for k, v in (("ttft", self.ttft), ("tpot", self.tpot)) if v is not None]
        return ",".join(parts + [f"p={self.percentile:g}"])


def parse_slo(text: str | dict | SLO | None) -> SLO | None:
    """``"ttft=0.2,tpot=0.05"`` (seconds; ``ms`` suffix allowed; ``p=99`` the percentile)."""
    from .workload import WorkloadError
    if text is None or isinstance(text, SLO):
        return text
    items = text.items() if isinstance(text, dict) else (
        part.partition("=")[::2] for part in str(text).split(",") if part.strip())
    out: dict[str, float] = {}
    for key, val in items:
        key = str(key).strip().lower()
        sval = str(val).strip().lower()
        scale = 1e-3 if sval.endswith("ms") else 1.0
        try:
            v = float(sval[:-2] if sval.endswith("ms") else sval.rstrip("s")) * scale
        except ValueError:
            raise WorkloadError(f"--slo {key}: expected seconds such as 0.2 or 200ms, got {val!r}") from None
        if key not in ("ttft", "tpot", "p") or not v > 0:
            raise WorkloadError(f"--slo expects ttft=SECONDS,tpot=SECONDS[,p=PERCENTILE] with positive values, "
                                f"got {key}={val}")
        out[key] = v
    if "p" in out and not out["p"] <= 100:
        raise WorkloadError(f"--slo p must be a percentile in (0, 100], got {out['p']}")
    if "ttft" not in out and "tpot" not in out:
        raise WorkloadError("--slo needs ttft= and/or tpot=")
    return SLO(out.get("ttft"), out.get("tpot"), out.get("p", 99.0))


def percentiles(x: np.ndarray) -> dict[str, float | None]:
    if len(x) == 0:
        return {f"p{q}": None for q in QUANTILES} | {"mean": None}
    v = np.percentile(x, QUANTILES)
    return {f"p{q}": float(p) for q, p in zip(QUANTILES, v)} | {"mean": float(np.mean(x))}


@dataclass
class Metrics:
    """Everything ``serve-sim`` prints (seconds, requests, tokens)."""

    requests: int
    rejected: int
    truncated: int                       # stopped at the KV capacity before their output length
    duration_s: float
    ttft: dict[str, float | None]
    tpot: dict[str, float | None]
    itl: dict[str, float | None]
    e2e: dict[str, float | None]
    request_rate: float                  # offered: arrivals / arrival span
    throughput_rps: float
    output_tokens_per_s: float
    total_tokens_per_s: float
    goodput_rps: float | None
    slo_attained: float | None           # share of requests meeting the SLO
    slo_met: bool | None                 # the SLO's percentile of TTFT and TPOT within bounds
    preemptions: int
    kv_occupancy: dict[str, float]       # mean and peak share of KV blocks used
    utilization: float                   # busy share of engine time
    littles_law: dict[str, float]        # L (time-averaged in system) vs λ·W
    warmup: int = 0                      # leading requests left out of the latency figures
    prefix_cached_tokens: int = 0
    spec_tokens_per_step: float | None = None
    energy: dict[str, Any] = field(default_factory=dict)
    timeline: dict[str, list] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        from dataclasses import asdict
        return asdict(self)


def measure(trace: Trace, slo: SLO | None = None, *, warmup: int = 0, timeline_points: int = 400) -> Metrics:
    """Metrics of a finished run; the first ``warmup`` requests by arrival are left out of the latencies."""
    seqs = [s for s in trace.seqs if s.first is not None]     # stopped before a token: counted apart
    arr = np.array([s.req.arrival for s in seqs])
    first = np.array([s.first for s in seqs])
    fin = np.array([s.finish for s in seqs])
    outs = np.array([s.generated for s in seqs])     # = the asked output unless stopped at the KV capacity
    keep = np.ones(len(seqs), dtype=bool)
    if warmup and len(seqs):
        order = sorted(range(len(seqs)), key=lambda i: (seqs[i].req.arrival, seqs[i].req.id))
        keep[order[:min(warmup, len(seqs) - 1)]] = False
    kept = [s for s, k in zip(seqs, keep) if k]
    ttft = (first - arr)[keep]
    e2e_all = fin - arr
    e2e = e2e_all[keep]
    tpot = np.where(outs > 1, (fin - first) / np.maximum(outs - 1, 1), 0.0)[keep]
    k_outs = outs[keep]
    itl = np.concatenate([np.asarray(s.itl) for s in kept]) if kept else np.zeros(0)
    t0 = float(arr.min()) if len(arr) else 0.0
    span = max(trace.end - t0, 1e-12)
    arr_span = float(arr.max() - t0) if len(arr) > 1 else 0.0
    prompts = np.array([s.req.prompt for s in seqs])
    # Little's law, measured two ways: the time integral of requests in the system from the
    # event times, against arrival rate × mean time in system over the same window
    events = np.concatenate([np.stack([arr, np.ones_like(arr)], 1), np.stack([fin, -np.ones_like(fin)], 1)])
    events = events[np.lexsort((events[:, 1], events[:, 0]))]
    n_sys = np.cumsum(events[:, 1])
    area = float(np.sum(n_sys[:-1] * np.diff(events[:, 0]))) if len(events) > 1 else 0.0
    lam = len(seqs) / span
    little = {"L": area / span, "lambda_W": lam * float(np.mean(e2e_all)) if len(e2e_all) else 0.0}
    goodput = attained = met = None
    if slo is not None and len(seqs):
        ok = slo.met_by(ttft, tpot)
        goodput = float(ok.sum()) / span * len(seqs) / max(len(kept), 1)   # the measured share, per second
        attained = float(ok.mean())
        met = True
        if slo.ttft is not None:
            met &= bool(np.percentile(ttft, slo.percentile) <= slo.ttft)
        if slo.tpot is not None:
            met &= bool(np.percentile(tpot[k_outs > 1], slo.percentile) <= slo.tpot) if (k_outs > 1).any() else True
        met = met and not trace.rejected
    samples = np.array(trace.samples) if trace.samples else np.zeros((0, 5))
    busy = sum(e.busy * e.devices for e in trace.engines)
    devs = sum(e.devices for e in trace.engines)
    tl: dict[str, list] = {}
    if len(samples):
        pick = np.linspace(0, len(samples) - 1, min(timeline_points, len(samples))).astype(int)
        tl = {"t": samples[pick, 0].tolist(), "kv": samples[pick, 2].tolist(),
              "running": samples[pick, 3].tolist(), "waiting": samples[pick, 4].tolist(),
              "preemptions": list(trace.preemptions)}
    spec_steps = [len(s.itl) for s in seqs if s.req.output > 1]
    return Metrics(
        requests=len(seqs), rejected=len(trace.rejected) + len(trace.seqs) - len(seqs),
        truncated=sum(len(e.sched.truncated) for e in trace.engines), duration_s=span,
        ttft=percentiles(ttft), tpot=percentiles(tpot[k_outs > 1]), itl=percentiles(itl), e2e=percentiles(e2e),
        request_rate=(len(seqs) - 1) / arr_span if arr_span > 0 else float("inf"),
        throughput_rps=len(seqs) / span, output_tokens_per_s=float(outs.sum()) / span,
        total_tokens_per_s=float(outs.sum() + prompts.sum()) / span,
        goodput_rps=goodput, slo_attained=attained, slo_met=met, preemptions=len(trace.preemptions),
        kv_occupancy={"mean": float(samples[:, 2].mean()) if len(samples) else 0.0,
                      "peak": float(samples[:, 2].max()) if len(samples) else 0.0},
        utilization=busy / (devs * span) if devs else 0.0, littles_law=little, warmup=int((~keep).sum()),
        prefix_cached_tokens=int(sum(s.cached for s in seqs)),
        spec_tokens_per_step=(float((outs[outs > 1] - 1).sum()) / max(sum(spec_steps), 1)) if spec_steps else None,
        timeline=tl)
