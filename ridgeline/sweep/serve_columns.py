"""Serve-sim metrics as sweep columns: ``[metrics.serve]`` in a spec runs ``serving.simulate`` for
each point's deployment (model, target, tp, pp, dtypes) and adds its latency percentiles,
throughput, goodput and energy as ``serve.*`` columns.

    [metrics.serve]
    workload = "chat"                  # a named workload (serve-sim --workload)
    rate = 5                           # requests/s (open-loop workloads)
    slo = "ttft=0.2,tpot=0.05"         # optional: goodput, attainment, slo_met
    requests = 500                     # simulated requests per deployment (default 500)
    scheduler = "continuous"           # optional; the default is serve-sim's for the target family
    replicas = 1
    seed = 0

A simulation prices the deployment at many batch sizes and contexts (its step-time table), so it
is run once per distinct deployment per worker and reused by every point of that deployment
(phase, batch and context are the simulation's to choose, not the point's). A deployment that
cannot be simulated fills ``serve.error`` and leaves the estimate's columns intact.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..ir.errors import RidgelineError

__all__ = ["SERVE_KEYS", "ServeColumns", "ServeSettingsError", "parse_serve"]

#: the keys ``[metrics.serve]`` takes, with their defaults
SERVE_KEYS: dict[str, Any] = {"workload": "chat", "rate": None, "slo": None, "requests": 500, "scheduler": None,
                              "replicas": 1, "seed": 0}
#: build axes a deployment keeps (phase, batch, context, prompt, logits are the simulation's)
_DEPLOY_BUILD = ("dtype", "weight_dtype", "act_dtype", "kv_dtype", "weight_group")
_MAX_REQUESTS = 100_000


class ServeSettingsError(RidgelineError):
    """``[metrics.serve]`` settings that cannot run (one line naming the key)."""


def parse_serve(raw: Any, where: str) -> dict[str, Any]:
    """Validated ``[metrics.serve]`` settings (defaults filled in); raises ``ServeSettingsError``."""
    from ..serving import get_workload, parse_slo
    from ..serving.schedulers import SCHEDULERS
    if not isinstance(raw, Mapping):
        raise ServeSettingsError(f"{where}: expected a table such as {{workload = \"chat\", rate = 5}}")
    extra = sorted(set(raw) - set(SERVE_KEYS))
    if extra:
        raise ServeSettingsError(f"{where}: unknown key(s) {', '.join(extra)} (allowed: {', '.join(SERVE_KEYS)})")
    out = {**SERVE_KEYS, **raw}
    rate = out["rate"]
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0):
        raise ServeSettingsError(f"{where}.rate: expected requests per second > 0, got {rate!r}")
    for key, hi in (("requests", _MAX_REQUESTS), ("replicas", 1024)):
        v = out[key]
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= hi:
            raise ServeSettingsError(f"{where}.{key}: expected an integer in 1..{hi}, got {v!r}")
    if isinstance(out["seed"], bool) or not isinstance(out["seed"], int):
        raise ServeSettingsError(f"{where}.seed: expected an integer, got {out['seed']!r}")
    if out["scheduler"] is not None and out["scheduler"] not in SCHEDULERS:
        raise ServeSettingsError(f"{where}.scheduler: unknown scheduler {out['scheduler']!r} "
                                 f"(choose from {', '.join(SCHEDULERS)})")
    if not isinstance(out["workload"], str):
        raise ServeSettingsError(f"{where}.workload: expected a workload name, got {out['workload']!r}")
    try:
        get_workload(out["workload"], rate=rate)
        parse_slo(out["slo"])
    except RidgelineError as e:
        raise ServeSettingsError(f"{where}: {e}") from None
    return out


class ServeColumns:
    """``serve.*`` columns of points, one simulation per distinct deployment (kept for the worker's life)."""

    def __init__(self, settings: Mapping[str, Any]):
        self.settings = dict(settings)
        self._memo: dict[Any, dict[str, Any]] = {}

    def columns(self, build: Mapping[str, Any], target, opts: Mapping[str, Any]) -> dict[str, Any]:
        """The columns of the deployment a point belongs to (``target`` a resolved ``Target``)."""
        popts = {k: build[k] for k in _DEPLOY_BUILD if k in build}
        tp, pp = opts.get("tp", 1), opts.get("pp", 1)
        key = (build.get("preset"), target.name, repr(tp), repr(pp), tuple(sorted(popts.items())))
        hit = self._memo.get(key)
        if hit is None:
            hit = self._memo[key] = self._simulate(build.get("preset"), target, tp, pp, popts)
        return hit

    def _simulate(self, model: str, target, tp: Any, pp: Any, popts: dict[str, Any]) -> dict[str, Any]:
        from ..serving import simulate
        s = self.settings
        out: dict[str, Any] = {c: None for c in COLUMNS}
        try:
            r = simulate(model, target, workload=s["workload"], rate=s["rate"], requests=s["requests"],
                         scheduler=s["scheduler"], replicas=s["replicas"], seed=s["seed"], slo=s["slo"],
                         tp=tp, pp=pp, preset_options=popts)
        except Exception as e:  # noqa: BLE001 - a deployment that cannot be simulated is a column, not a lost row
            text = " ".join(str(e).split()) or type(e).__name__
            out["serve.error"] = text if isinstance(e, RidgelineError) else f"{type(e).__name__}: {text}"
            return out
        m = r.metrics
        out.update({
            "serve.scheduler": r.scheduler, "serve.devices": int(r.deployment.get("devices") or 0) * s["replicas"],
            "serve.requests": m.requests, "serve.rejected": m.rejected,
            "serve.ttft_p50_s": m.ttft.get("p50"), "serve.ttft_p99_s": m.ttft.get("p99"),
            "serve.tpot_p50_s": m.tpot.get("p50"), "serve.tpot_p99_s": m.tpot.get("p99"),
            "serve.e2e_p50_s": m.e2e.get("p50"), "serve.e2e_p99_s": m.e2e.get("p99"),
            "serve.throughput_rps": m.throughput_rps, "serve.output_tokens_per_s": m.output_tokens_per_s,
            "serve.goodput_rps": m.goodput_rps, "serve.slo_attained": m.slo_attained, "serve.slo_met": m.slo_met,
            "serve.utilization": m.utilization, "serve.preemptions": m.preemptions,
            "serve.joules_per_output_token": m.energy.get("j_per_output_token"),
        })
        return out


#: every ``serve.*`` column, so rows of failed and successful simulations have the same keys
COLUMNS = ("serve.error", "serve.scheduler", "serve.devices", "serve.requests", "serve.rejected",
           "serve.ttft_p50_s", "serve.ttft_p99_s", "serve.tpot_p50_s", "serve.tpot_p99_s", "serve.e2e_p50_s",
           "serve.e2e_p99_s", "serve.throughput_rps", "serve.output_tokens_per_s", "serve.goodput_rps",
           "serve.slo_attained", "serve.slo_met", "serve.utilization", "serve.preemptions",
           "serve.joules_per_output_token")
