"""Serving metrics of transformer graphs: TTFT, TPOT, tokens/s, KV-cache size, MFU, bandwidth.

A graph is an LLM graph when ``graph.meta["llm"]`` describes it (the presets write it: layers,
heads, KV heads, head dim, phase, batch, context, dtypes). One graph is one phase: a prefill
graph's time is the time to first token, a decode graph's the time per output token. The other
phase comes from a *companion* estimate (the estimate backend builds it for presets), so one
report carries both.

Everything here is derived from the graph, not from the config: the KV cache per token is the
bytes of every ``Attention``'s ``present_key``/``present_value`` per sequence position.
"""

from __future__ import annotations

from typing import Any

from ..ir import Graph
from .estimate import Estimate, LLMMetrics

__all__ = ["llm_meta", "model_name", "kv_cache_bytes_per_token", "llm_metrics"]


def llm_meta(graph: Graph) -> dict[str, Any]:
    m = graph.meta.get("llm")
    return dict(m) if isinstance(m, dict) else {}


def model_name(graph: Graph) -> str:
    """The preset's name (``llama-3-70b``) for messages, else the graph's."""
    return llm_meta(graph).get("preset", graph.name)


def kv_cache_bytes_per_token(graph: Graph) -> float:
    """KV-cache bytes one sequence position costs, summed over all attention layers."""
    total = 0.0
    for n in graph:
        if not (n.op == "Attention" or (n.op == "Fused" and n.body is not None
                                        and any(b.op == "Attention" for b in n.body))):
            continue
        for v in n.outputs[1:3]:
            shape = v.type.shape
            numel = v.type.numel
            if len(shape) != 4 or not isinstance(numel, int):
                continue
            batch, positions = shape[0], shape[2]
            if isinstance(batch, int) and isinstance(positions, int) and batch and positions:
                total += v.type.dtype.nbytes(numel) / (batch * positions)
    return total


def llm_metrics(graph: Graph, est: Estimate, companion: Estimate | None = None) -> LLMMetrics | None:
    """Metrics of ``est`` (of ``graph``), with the other phase taken from ``companion``."""
    meta = llm_meta(graph)
    if not meta:
        return None
    phase = meta.get("phase", "decode")
    batch = int(meta.get("batch", 1))
    context = int(meta.get("context", 0))
    ttft = est.time_s if phase == "prefill" else (companion.time_s if companion else None)
    tpot = est.time_s if phase == "decode" else (companion.time_s if companion else None)
    per_token = kv_cache_bytes_per_token(graph)
    model_flops = float(est.detail.get("model_flops", est.flops))
    peak = est.peak_flop_per_s * max(1, est.devices)
    mfu = model_flops / (est.time_s * peak) if est.time_s and peak else 0.0
    # what the busiest device moves in the step (a pipeline's busiest stage, a spatial layout's
    # busiest chip): the figure a nameplate bandwidth bounds
    dev_bytes = next(iter(est.bytes.values()), 0.0) if est.bytes else 0.0
    bw = dev_bytes / est.time_s if est.time_s else 0.0
    nameplate = float(est.detail.get("device_bandwidth", 0.0))
    return LLMMetrics(
        phase=phase, batch=batch, context=context, ttft_s=ttft, tpot_s=tpot,
        tokens_per_s=batch / tpot if tpot else None,
        tokens_per_s_per_user=1.0 / tpot if tpot else None,
        kv_cache_bytes_per_token=per_token, kv_cache_bytes=per_token * context * batch,
        mfu=mfu, achieved_bandwidth=bw, bandwidth_utilization=bw / nameplate if nameplate else 0.0)
