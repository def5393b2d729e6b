"""Cost models: hardware targets as data, one model per architecture family, shared roofline math.

    from ridgeline.cost_models import estimate, get_target
    est = estimate(graph, "h100", tp=2)          # an Estimate: per-node costs, totals, LLM metrics
    get_target("h100").ridge("bf16")             # ~295 FLOP/byte

Layout: ``target.py`` (the TOML schema), ``targets/`` (the files and their discovery),
``work.py`` (what a node asks of any machine: read from specs, fused bodies, tile schedules,
dtypes), ``parallel.py`` (tensor/pipeline splits and collectives), ``memory.py`` (fit and devices
needed), ``collectives.py`` (α–β link model), ``llm.py`` (TTFT, TPOT, KV cache, MFU),
``model.py`` (the ``CostModel`` base), ``families/`` (gpu_simt, cpu, systolic, wafer_scale,
dataflow), ``plot.py`` (roofline plots). This package imports ``ir`` only; it never imports passes.
"""

from __future__ import annotations

from typing import Any

from .estimate import BOUNDS, Estimate, LLMMetrics, MemoryPlan, NodeCost
from .families import family_names, get_family, register_family
from .model import CostModel, GraphAnalysis, estimate_pair, roofline_time
from .target import ComputeUnit, Field, Link, MemoryLevel, Target
from .targets import get_target, list_targets, load_target_file, register_target, target_names
from .work import DEVICE, Contraction, NodeWork, node_work

__all__ = ["estimate", "cost_model", "Estimate", "NodeCost", "MemoryPlan", "LLMMetrics", "BOUNDS", "CostModel",
           "Target", "ComputeUnit", "MemoryLevel", "Link", "Field", "get_target", "list_targets",
           "load_target_file", "register_target", "target_names", "get_family", "register_family",
           "family_names", "estimate_pair", "GraphAnalysis", "NodeWork", "Contraction", "node_work", "DEVICE",
           "roofline_time"]


def cost_model(target: str | Target, **options: Any) -> CostModel:
    """The cost model of ``target``'s family, configured with ``options`` (tp, pp, family options)."""
    t = target if isinstance(target, Target) else get_target(target)
    return get_family(t.family)(t, **options)


def estimate(graph, target: str | Target = "h100", *, companion: Estimate | None = None,
             analysis: GraphAnalysis | None = None, **options: Any) -> Estimate:
    """Estimate ``graph`` on ``target`` (a name or a ``Target``); see ``CostModel.estimate``."""
    return cost_model(target, **options).estimate(graph, companion=companion, analysis=analysis)
