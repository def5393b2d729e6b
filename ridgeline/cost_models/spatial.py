"""What the spatial families (``wafer_scale``, ``dataflow``) share: a deployment the machine lays
out itself rather than a (tp, pp) split.

Both place a model's resident bytes (weights, KV cache) in on-chip SRAM across as many
wafers / chips as they need, so the framework's tensor/pipeline degrees do not apply; these
helpers check the degrees a user passed and rewrite an estimate's memory plan and parallel
record once the family knows its device count.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

from ..ir import Graph, Node
from ..ir.errors import BackendError
from .estimate import Estimate, MemoryPlan, NodeCost, bytes_by_device
from .llm import llm_metrics
from .quantities import format_quantity

__all__ = ["finish_estimate", "layer_blocks", "require_no_degrees", "resident_bytes"]


def layer_blocks(nodes: Iterable[Node]) -> list[tuple[int | None, list[Node]]]:
    """Consecutive runs of nodes by ``meta["layer"]`` (None: outside the layers)."""
    def layer(n: Node) -> int | None:
        v = n.meta.get("layer")
        return v if isinstance(v, int) else None
    return [(k, list(g)) for k, g in itertools.groupby(nodes, key=layer)]


def require_no_degrees(model: Any) -> None:
    """Reject ``--tp``/``--pp`` other than 1/auto: the family chooses its own device count."""
    for key in ("tp", "pp"):
        v = getattr(model, key)
        if v not in (None, 1, "auto"):
            raise BackendError(f"target {model.target.name} ({model.family}): --{key} does not apply; the model is "
                               f"laid out across as many {model.device_word}s as its weights and KV cache need")
    model.tp = model.pp = 1


def resident_bytes(graph: Graph) -> dict[int, tuple[float, float]]:
    """id(node) -> (weight bytes, KV-cache bytes) it keeps resident; each constant is counted at
    its first reader."""
    seen: set[int] = set()
    out: dict[int, tuple[float, float]] = {}
    for n in graph:
        w = 0.0
        for v in n.inputs:
            if v is not None and v.const and id(v) not in seen:
                seen.add(id(v))
                num = v.type.numel
                w += float(v.type.dtype.nbytes(num)) if isinstance(num, int) else 0.0
        kv = 0.0
        if n.op == "Attention" or (n.op == "Fused" and n.body is not None and any(b.op == "Attention" for b in n.body)):
            for v in n.outputs[1:3]:
                num = v.type.numel
                kv += float(v.type.dtype.nbytes(num)) if isinstance(num, int) else 0.0
        if w or kv:
            out[id(n)] = (w, kv)
    return out


def finish_estimate(model: Any, graph: Graph, est: Estimate, companion: Estimate | None, *, devices: int,
                    weights: float, kv: float, capacity: float, note: str, detail: dict[str, Any]) -> Estimate:
    """Record the family's own deployment (``devices`` wafers/chips, the busiest one holding
    ``weights`` + ``kv`` of ``capacity``) on ``est`` and recompute its LLM metrics."""
    est.parallel = {"tp": 1, "pp": devices}
    # bytes per device: the busiest wafer / chip (a node split over chips counts on its first)
    est.bytes, est.total_bytes = bytes_by_device(est.nodes, 1, _device_of)
    total_w = est.memory.total_weights_bytes if est.memory else 0.0
    total_kv = est.memory.total_kv_cache_bytes if est.memory else 0.0
    est.memory = MemoryPlan(weights_bytes=weights, kv_cache_bytes=kv, activation_bytes=0.0, capacity_bytes=capacity,
                            devices=devices, devices_needed=devices, total_weights_bytes=total_w,
                            total_kv_cache_bytes=total_kv, note=note)
    est.notes = [n for n in est.notes if not n.startswith("does not fit")]
    if not est.memory.fits:
        est.notes.append(f"does not fit: {format_quantity(est.memory.per_device_bytes, 'size')} per "
                         f"{model.device_word} > {format_quantity(capacity, 'size')} usable")
    est.detail.update(detail)
    # what bounds a step of an SRAM machine is not its SRAM bandwidth (petabytes/s) but how
    # vectors flow through the layout: say so, so the roofline bound is not mistaken for it
    est.detail.setdefault("mechanism", model.mechanism)
    est.llm = llm_metrics(graph, est, companion)
    return est


def _device_of(r: NodeCost) -> int:
    chips = r.detail.get("chips")
    return int(chips[0]) if chips else int(r.detail.get("wafer", 0))
