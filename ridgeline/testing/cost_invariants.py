"""Physical invariants every estimate must satisfy, checked over generated deployments (a checker
of the cost models: it builds presets, so it lives with the other checkers in ``testing``).

A ``Case`` is one deployment (preset × target × phase × batch × context × dtypes × tp/pp);
``check(case)`` estimates it (and the neighbouring deployments an invariant compares it with)
and returns the broken invariants, each naming the case. Used by ``tests/cost_models`` (a few
hundred generated cases) and ``tools/soak_cost_models.py`` (thousands).

The invariants (the issue-14 list):

- ``bandwidth``: bytes at device memory per second ≤ the nameplate bandwidth, per device;
- ``flop_rate``: FLOPs per second ≤ the device's peak over all its units;
- ``batch``: decode tokens/s does not fall when the batch doubles, and while a step is
  weight-bandwidth-bound (weights ≥ 90 % of its bytes, memory-bound) doubling the batch keeps
  tokens/s within 20 % of doubling;
- ``context``: decode time per token does not fall as the context grows;
- ``weight_only``: int8/int4 weights are never slower than 16-bit ones at batch 1;
- ``tp``: tensor parallelism over k devices is never more than k× faster than one device;
- ``pp``: k pipeline stages (micro-batched) never give more than k× the tokens/s of one stage;
- ``roofline``: the step is within ``ROOFLINE_FACTOR`` of max((weights + KV)/tp ÷ nameplate
  bandwidth, FLOPs/tp ÷ peak) at batch ≤ 256 once the seconds the estimate puts on named
  mechanisms are taken off (``named_seconds``: collectives, launch gaps and fixed per-kernel
  costs, ``detail["mechanism_s"]``), or unless ``detail["mechanism"]`` names what bounds the
  step instead;
- ``fits``: the fits flag agrees with the bytes, and a device holds at least its share;
- ``deterministic``: the same case estimates to the same time.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, replace

from ..ir.errors import RidgelineError

__all__ = ["INVARIANTS", "ROOFLINE_FACTOR", "Case", "check", "estimate_case", "named_seconds"]

ROOFLINE_FACTOR = 2.0
INVARIANTS = ("bandwidth", "flop_rate", "batch", "context", "weight_only", "tp", "pp", "roofline", "fits",
              "deterministic")
_TOL = 1e-6


@dataclass(frozen=True)
class Case:
    preset: str
    target: str
    phase: str = "decode"
    batch: int = 1
    context: int = 1024
    dtype: str = "bf16"
    weight_dtype: str | None = None
    tp: int = 1
    pp: int = 1

    def __str__(self) -> str:
        d = {k: v for k, v in asdict(self).items() if v is not None}
        return " ".join(f"{k}={v}" for k, v in d.items())


@functools.lru_cache(maxsize=256)
def estimate_case(case: Case):
    """The estimate of ``case`` (cached), or None when the deployment cannot be expressed or fit
    (impossible degrees, no device count fits): invariants speak about estimates that exist."""
    return _estimate(case, _model(*_model_args(case)))


def _model_args(case: Case) -> tuple:
    return case.preset, case.phase, case.batch, case.context, case.dtype, case.weight_dtype


@functools.lru_cache(maxsize=8)
def _model(*args):
    """(graph, its target-independent analysis) of one model configuration, shared by the cases
    that differ only in target and degrees (as ``compare`` shares them across targets); None when
    the configuration cannot be built."""
    try:
        return _build(*args)
    except RidgelineError:
        return None


def _build(preset, phase, batch, context, dtype, weight_dtype):
    from .. import models
    from ..cost_models.model import GraphAnalysis
    g = models.build(preset, phase=phase, batch=batch, context=context,
                     prompt=context if phase == "prefill" else None, dtype=dtype, weight_dtype=weight_dtype)
    return g, GraphAnalysis(g)


def _estimate(case: Case, model):
    from ..cost_models import estimate
    if model is None:
        return None
    g, analysis = model
    try:
        kw = {} if case.target in _spatial_targets() else {"tp": case.tp, "pp": case.pp}
        return estimate(g, case.target, companion=None, analysis=analysis, **kw)
    except RidgelineError:
        return None


@functools.lru_cache(maxsize=1)
def _spatial_targets() -> frozenset:
    from ..cost_models.targets import get_target, target_names
    return frozenset(n for n in target_names() if get_target(n).family in ("wafer_scale", "dataflow"))


def _device_peak(target) -> float:
    """All units of one device running at once, at their fastest listed precision."""
    return sum(max(u.peak.values(), default=0.0) for u in target.units.values())


def named_seconds(est) -> float:
    """Seconds of ``est``'s step its breakdown puts on a named mechanism: collectives and sends,
    each kernel's launch gap or fixed cost (``overhead_s``, also where the kernel itself is memory-
    or compute-bound), and what ``detail["mechanism_s"]`` quantifies (kernels of different bounds
    running in turn, weight tiles shifting into systolic arrays, …)."""
    named = sum(r.time_s if r.bound == "communication" else 0.0 for r in est.nodes)
    mech = est.detail.get("mechanism_s")
    if isinstance(mech, dict):
        return named + sum(float(v) for v in mech.values())
    # a family that does not quantify its mechanisms: its overhead-bound kernels' time
    return named + est.breakdown.get("overhead", 0.0)


def _weights_bytes(est) -> float:
    return est.memory.total_weights_bytes if est.memory else 0.0


def check(case: Case, which: tuple[str, ...] = INVARIANTS) -> list[str]:
    """The invariants ``case`` breaks (empty when it holds them all or cannot be estimated)."""
    from ..cost_models.targets import get_target
    est = estimate_case(case)
    if est is None:
        return []
    t = get_target(case.target)
    out: list[str] = []

    def fail(name: str, msg: str) -> None:
        out.append(f"{name}: {msg} [{case}]")

    time_s = est.time_s
    dev = t.device_memory
    devices = max(1, est.devices)
    if "bandwidth" in which and time_s > 0:
        # the figure the user is shown and the busiest device's bytes over the step (a wrong step
        # time or a wrong figure): neither can beat nameplate
        bw = max(est.llm.achieved_bandwidth if est.llm else 0.0, next(iter(est.bytes.values()), 0.0) / time_s)
        if bw > dev.bandwidth * (1 + 1e-3):
            fail("bandwidth", f"{bw / 1e9:.1f} GB/s per device > nameplate {dev.bandwidth / 1e9:.1f} GB/s")
    if "flop_rate" in which and time_s > 0:
        peak = _device_peak(t)
        spatial = case.target in _spatial_targets()
        if spatial:
            rate = est.flops / time_s / devices
        else:
            # records are one tp rank's share; under pp each stage is its own device: the busiest
            # stage's FLOPs (as ``bytes`` is the busiest stage's), not the pipeline's sum
            by_stage: dict = {}
            for r in est.nodes:
                by_stage[r.stage] = by_stage.get(r.stage, 0.0) + r.flops
            rate = max(by_stage.values(), default=est.flops) / time_s
        if peak and rate > peak * (1 + 1e-3):
            fail("flop_rate", f"{rate / 1e12:.1f} TFLOP/s per device > peak {peak / 1e12:.1f}")
    if "fits" in which and est.memory is not None:
        m = est.memory
        if m.fits != (m.per_device_bytes <= m.capacity_bytes):
            fail("fits", f"fits={m.fits} but {m.per_device_bytes:.3g} B per device vs {m.capacity_bytes:.3g} usable")
        share = (m.total_weights_bytes + m.total_kv_cache_bytes) / devices
        if m.per_device_bytes < share * (1 - 1e-3) / 2:
            # replicated KV heads and replicated norms only ever add; a device holding less than
            # half its share of the resident bytes has lost some
            fail("fits", f"{m.per_device_bytes:.3g} B per device < half its share {share:.3g} B")
    if "deterministic" in which:
        # the graph analysed afresh (no shared analysis, no price cache)
        from ..cost_models.model import PRICES, GraphAnalysis
        model = _model(*_model_args(case))
        enabled, PRICES.enabled = PRICES.enabled, False
        try:
            again = _estimate(case, (model[0], GraphAnalysis(model[0])))
        finally:
            PRICES.enabled = enabled
        if again is None or again.time_s != time_s:
            fail("deterministic", f"{time_s} then {getattr(again, 'time_s', None)}")
    if "roofline" in which and case.batch <= 256 and time_s > 0:
        tp = est.parallel.get("tp", 1)
        spatial = case.target in _spatial_targets()
        resident = _weights_bytes(est) + (est.memory.total_kv_cache_bytes if est.memory else 0.0)
        bw = dev.bandwidth * (devices if spatial else tp)
        peak = (est.peak_flop_per_s or t.peak("bf16")) * (devices if spatial else tp)
        model_flops = float(est.detail.get("model_flops", est.flops))
        bound = max(resident / bw if bw else 0.0, model_flops / peak if peak else 0.0)
        named = named_seconds(est)
        if bound > 0 and time_s > ROOFLINE_FACTOR * bound and time_s - named > ROOFLINE_FACTOR * bound \
                and "mechanism" not in est.detail:
            fail("roofline", f"step {time_s * 1e3:.3f} ms is {time_s / bound:.1f}x the roofline bound "
                             f"{bound * 1e3:.3f} ms, {(time_s - named) * 1e3:.3f} ms of it with no mechanism named")
    if case.phase == "decode":
        if "batch" in which:
            _batch(case, est, fail)
        if "context" in which:
            bigger = estimate_case(replace(case, context=case.context * 2))
            if bigger is not None and bigger.time_s < time_s * (1 - _TOL):
                fail("context", f"time per token falls from {time_s * 1e3:.3f} ms to {bigger.time_s * 1e3:.3f} ms "
                                f"at context {case.context * 2}")
        if "weight_only" in which and case.batch == 1 and case.weight_dtype is None and case.dtype in ("bf16", "fp16"):
            for wd in ("int8", "int4"):
                q = estimate_case(replace(case, weight_dtype=wd))
                if q is not None and q.time_s > time_s * (1 + _TOL):
                    fail("weight_only", f"{wd} weights {q.time_s * 1e3:.3f} ms > {case.dtype} {time_s * 1e3:.3f} ms")
    if "tp" in which and case.tp > 1 and case.target not in _spatial_targets():
        one = estimate_case(replace(case, tp=1))
        if one is not None and time_s > 0 and one.time_s / time_s > case.tp * (1 + _TOL):
            fail("tp", f"tp={case.tp} is {one.time_s / time_s:.2f}x faster than tp=1")
    if "pp" in which and case.pp > 1 and case.target not in _spatial_targets():
        one = estimate_case(replace(case, pp=1))
        if one is not None and time_s > 0 and one.time_s / time_s > case.pp * (1 + _TOL):
            fail("pp", f"pp={case.pp} gives {one.time_s / time_s:.2f}x the tokens/s of pp=1")
    return out


def _batch(case: Case, est, fail) -> None:
    big = estimate_case(replace(case, batch=case.batch * 2))
    if big is None or not est.llm or not big.llm or not est.time_s:
        return
    tps, tps2 = case.batch / est.time_s, 2 * case.batch / big.time_s
    compute_bound = big.bound == "compute" or est.bound == "compute"
    if tps2 < tps * (1 - _TOL) and not compute_bound:
        fail("batch", f"tokens/s falls from {tps:.1f} to {tps2:.1f} when the batch doubles")
    total = sum((big.total_bytes or big.bytes).values()) if (big.total_bytes or big.bytes) else 0.0
    outer = next(iter((big.total_bytes or big.bytes).values()), 0.0) if (big.total_bytes or big.bytes) else total
    weights = _weights_bytes(big)
    if outer and weights >= 0.9 * outer and big.bound == "memory" and est.bound == "memory" \
            and tps2 < 0.8 * 2 * tps and math.isfinite(tps2):
        fail("batch", f"weight-bandwidth-bound, yet doubling the batch gives {tps2 / tps:.2f}x tokens/s (< 1.6x)")
