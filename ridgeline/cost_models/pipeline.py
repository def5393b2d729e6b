"""Pipeline parallelism with micro-batches: how ``pp`` stages turn per-stage costs into a step.

With the step's ``B`` sequences cut into ``m`` micro-batches over ``p`` stages (stage ``s``
taking ``T_s`` per micro-batch, its send to the next stage included):

- **prefill** (one pass of a batch through the pipeline, GPipe's schedule): the first
  micro-batch crosses every stage, the others follow one bottleneck turn apart:
  ``Σ T_s + (m − 1) · max T_s`` — ``(m + p − 1) · T`` for balanced stages, the bubble
  ``(p − 1) / (m + p − 1)``;
- **decode** (steady state: every sequence needs one token per step, the micro-batches
  circulate through the stages): a sequence gets its next token once its micro-batch has crossed
  every stage and its stage has served the other micro-batches:
  ``max(Σ T_s, m · max T_s)``. With ``m ≥ p`` in flight every stage stays busy; with ``m = 1``
  it is the sum of the stages (one stage works at a time).

Each micro-batch reads its stage's weights again, so a stage's bytes over the step are ``m``
times one micro-batch's. The default ``m`` fills the pipeline: the largest divisor of the batch
that is at most ``p`` (``--microbatches`` / ``microbatches=`` to choose).
"""

from __future__ import annotations

from typing import Any

from ..ir import Graph
from ..ir.errors import BackendError
from .estimate import NodeCost
from .llm import llm_meta

__all__ = ["default_microbatches", "pipeline_step"]


def _batch(graph: Graph) -> int:
    b = llm_meta(graph).get("batch", 1)
    return b if isinstance(b, int) and b > 0 else 1


def default_microbatches(graph: Graph, pp: int, requested: int | None) -> int:
    """The micro-batch count: ``requested`` (it must divide the batch), else the largest divisor
    of the batch that is at most ``pp``."""
    batch = _batch(graph)
    if requested is not None:
        if requested < 1 or batch % requested:
            raise BackendError(f"microbatches={requested} must divide the batch ({batch}); "
                               f"try one of {', '.join(str(d) for d in range(1, batch + 1) if batch % d == 0)[:80]}")
        return requested
    return max(d for d in range(1, min(pp, batch) + 1) if batch % d == 0)


def pipeline_step(records: list[NodeCost], pp: int, m: int, phase: str) -> tuple[float, dict[str, Any]]:
    """The step time of ``records`` (one micro-batch's, each tagged with its stage) over ``pp``
    stages and ``m`` micro-batches, and what ``Estimate.detail["pipeline"]`` reports. Scales the
    records in place so that they sum to the step (flops and bytes: ``m`` micro-batches')."""
    stage = [0.0] * pp
    for r in records:
        stage[min(pp - 1, max(0, r.stage))] += r.time_s
    total, worst = sum(stage), max(stage)
    if phase == "decode":
        step = max(total, m * worst)
    else:
        step = total + (m - 1) * worst
    busy = m * total / pp
    if m > 1:
        for r in records:
            r.flops *= m
            r.bytes = {k: v * m for k, v in r.bytes.items()}
    f = step / total if total else 1.0
    for r in records:
        r.time_s *= f
        r.overhead_s *= f
        r.comm_s *= f
    return step, {"stages": pp, "microbatches": m, "stage_s": stage, "microbatch_s": total,
                  "bubble_fraction": max(0.0, 1.0 - busy / step) if step else 0.0,
                  "schedule": "steady-state decode" if phase == "decode" else "fill and drain (GPipe)"}
