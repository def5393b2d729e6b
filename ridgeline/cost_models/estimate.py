"""What a cost model returns: per-node costs (``NodeCost``), totals and LLM metrics (``Estimate``).

``Estimate.to_json()`` is the machine-readable form the CLI prints with ``--json``: it always
carries ``target``, ``time_s``, ``bound`` and ``nodes``; for LLM graphs also ``ttft_s``,
``tpot_s``, ``tokens_per_s`` (aggregate), ``tokens_per_s_per_user``, ``kv_cache_bytes_per_token``,
``fits`` and ``devices``.

Bounds: ``compute`` (arithmetic units are the limit), ``memory`` (bytes at some memory level),
``overhead`` (fixed per-kernel or per-step costs: launches, pipeline fill), ``communication``
(collectives and transfers between devices).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["NodeCost", "Estimate", "MemoryPlan", "LLMMetrics", "BOUNDS", "dominant_bound", "bytes_by_device"]

BOUNDS = ("compute", "memory", "overhead", "communication")


@dataclass
class NodeCost:
    """The cost of one node (or one inserted collective) on one device of the target."""

    name: str                 # the node's first output (``%name``) or a collective's label
    op: str
    category: str             # the op's category, or "collective" / "transfer"
    time_s: float             # the time this node adds to the step (they sum to the total)
    flops: float              # arithmetic executed on this device
    bytes: dict[str, float]   # bytes moved at each memory level (by level name)
    bound: str                # one of BOUNDS
    unit: str = ""            # "tensor_core:bf16", "cuda_core:f32", "link:nvlink4", …
    compute_s: float = 0.0
    memory_s: float = 0.0
    overhead_s: float = 0.0
    comm_s: float = 0.0
    layer: int | None = None
    roofline: str = ""        # compute or memory: the bound ignoring fixed (launch) costs
    stage: int = 0            # pipeline stage
    shard: int = 1            # tensor-parallel split applied to this node's work (1 = replicated)
    detail: dict[str, Any] = field(default_factory=dict)   # family specifics: waves, tile, efficiency

    def clone(self, **changes: Any) -> "NodeCost":
        """A shallow copy with ``changes``: graphs of 126 identical layers clone one priced record
        per node, so ``bytes`` and ``detail`` are shared between clones (treat them as read-only)."""
        new = object.__new__(NodeCost)
        new.__dict__.update(self.__dict__)
        new.__dict__.update(changes)
        return new

    @property
    def outer_bytes(self) -> float:
        """Bytes at the outermost level listed (device memory)."""
        return next(iter(self.bytes.values()), 0.0) if self.bytes else 0.0

    @property
    def intensity(self) -> float:
        """Arithmetic intensity against device memory, FLOP/byte (inf when no bytes move)."""
        b = self.outer_bytes
        return self.flops / b if b else (math.inf if self.flops else 0.0)

    def to_json(self) -> dict[str, Any]:
        d = {"name": self.name, "op": self.op, "category": self.category, "time_s": self.time_s,
             "flops": self.flops, "bytes": dict(self.bytes), "bound": self.bound, "unit": self.unit,
             "compute_s": self.compute_s, "memory_s": self.memory_s, "overhead_s": self.overhead_s,
             "comm_s": self.comm_s, "roofline_bound": self.roofline or self.bound,
             "intensity_flop_per_byte": _finite(self.intensity), "stage": self.stage,
             "shard": self.shard}
        if self.layer is not None:
            d["layer"] = self.layer
        if self.detail:
            d["detail"] = self.detail
        return d


@dataclass
class MemoryPlan:
    """Bytes resident on the busiest device, against the capacity of its device memory."""

    weights_bytes: float          # on the busiest device
    kv_cache_bytes: float         # on the busiest device
    activation_bytes: float       # peak working set of activations (estimate)
    capacity_bytes: float         # usable device memory
    devices: int                  # devices this estimate uses (tp × pp)
    devices_needed: int | None    # the fewest devices that fit (None: no count fits)
    total_weights_bytes: float = 0.0
    total_kv_cache_bytes: float = 0.0
    note: str = ""

    @property
    def per_device_bytes(self) -> float:
        return self.weights_bytes + self.kv_cache_bytes + self.activation_bytes

    @property
    def fits(self) -> bool:
        return self.per_device_bytes <= self.capacity_bytes

    def to_json(self) -> dict[str, Any]:
        return {"weights_bytes": self.weights_bytes, "kv_cache_bytes": self.kv_cache_bytes,
                "activation_bytes": self.activation_bytes, "per_device_bytes": self.per_device_bytes,
                "capacity_bytes": self.capacity_bytes, "fits": self.fits, "devices": self.devices,
                "devices_needed": self.devices_needed, "total_weights_bytes": self.total_weights_bytes,
                "total_kv_cache_bytes": self.total_kv_cache_bytes, **({"note": self.note} if self.note else {})}


@dataclass
class LLMMetrics:
    """Serving metrics of a transformer graph (see ``ridgeline.cost_models.llm``)."""

    phase: str
    batch: int
    context: int
    ttft_s: float | None                 # prefill of the prompt (time to first token)
    tpot_s: float | None                 # one decode step (time per output token)
    tokens_per_s: float | None           # aggregate decode throughput: batch / tpot
    tokens_per_s_per_user: float | None  # 1 / tpot
    kv_cache_bytes_per_token: float      # all layers, K and V, one sequence
    kv_cache_bytes: float                # the whole batch at this context
    mfu: float                           # model FLOPs / (time × peak) of this graph's phase
    achieved_bandwidth: float            # device-memory bytes / time, per device
    bandwidth_utilization: float         # achieved / nameplate

    def to_json(self) -> dict[str, Any]:
        return {k: (_finite(v) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


@dataclass
class Estimate:
    """A graph's estimated cost on one target: per-node records, totals, memory and LLM metrics."""

    target: str
    family: str
    graph: str
    time_s: float
    nodes: list[NodeCost]
    flops: float
    bytes: dict[str, float]              # per device: the busiest pipeline stage's (or chip's) bytes
    parallel: dict[str, int]
    memory: MemoryPlan | None = None
    llm: LLMMetrics | None = None
    peak_flop_per_s: float = 0.0         # of the dtype the graph's contractions run in
    notes: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)   # family-specific (schedules, layouts)
    total_bytes: dict[str, float] = field(default_factory=dict)  # all devices of the deployment together

    @property
    def breakdown(self) -> dict[str, float]:
        """Seconds per bound."""
        out = {b: 0.0 for b in BOUNDS}
        for n in self.nodes:
            out[n.bound] = out.get(n.bound, 0.0) + n.time_s
        return out

    @property
    def bound(self) -> str:
        """The bound holding the most time."""
        return dominant_bound(self.breakdown)

    @property
    def fits(self) -> bool | None:
        return None if self.memory is None else self.memory.fits

    @property
    def devices(self) -> int:
        return self.parallel.get("tp", 1) * self.parallel.get("pp", 1)

    def top(self, n: int | None = None) -> list[NodeCost]:
        """Nodes sorted by time, slowest first."""
        out = sorted(self.nodes, key=lambda r: r.time_s, reverse=True)
        return out if n is None else out[:n]

    def by_op(self) -> list[dict[str, Any]]:
        """Time, FLOPs and bytes summed per op, slowest first."""
        agg: dict[str, dict[str, Any]] = {}
        for r in self.nodes:
            op = f"{r.op} ({r.detail['kind']})" if r.detail.get("kind") else r.op   # Fused by fusion kind
            a = agg.setdefault(op, {"op": op, "count": 0, "time_s": 0.0, "flops": 0.0, "bytes": 0.0,
                                    "bounds": {}})
            a["count"] += 1
            a["time_s"] += r.time_s
            a["flops"] += r.flops
            a["bytes"] += r.outer_bytes
            a["bounds"][r.bound] = a["bounds"].get(r.bound, 0.0) + r.time_s
        rows = sorted(agg.values(), key=lambda a: a["time_s"], reverse=True)
        for a in rows:
            a["bound"] = dominant_bound(a.pop("bounds"))
        return rows

    def to_json(self, *, nodes: bool = True) -> dict[str, Any]:
        d: dict[str, Any] = {
            "target": self.target, "family": self.family, "graph": self.graph, "time_s": self.time_s,
            "bound": self.bound, "breakdown_s": self.breakdown, "flops": self.flops, "bytes": dict(self.bytes),
            "total_bytes": dict(self.total_bytes or self.bytes), "parallel": dict(self.parallel), "devices": self.devices, "peak_flop_per_s": self.peak_flop_per_s,
        }
        if self.memory is not None:
            d["fits"] = self.memory.fits
            d["devices_needed"] = self.memory.devices_needed
            d["memory"] = self.memory.to_json()
        if self.llm is not None:
            d.update(self.llm.to_json())
        if self.notes:
            d["notes"] = list(self.notes)
        if self.options:
            d["options"] = dict(self.options)
        if self.detail:
            d["detail"] = self.detail
        if nodes:
            d["nodes"] = [n.to_json() for n in self.nodes]
        return d


def bytes_by_device(records: list[NodeCost], tp: int = 1, key=lambda r: r.stage) -> tuple[dict, dict]:
    """(the busiest device's bytes per level, all devices' bytes per level) of a step whose records
    run on the device ``key(record)`` names (a pipeline stage), or spread over the devices of the
    ``{device: share}`` it returns (a node split over chips); each split over ``tp`` ranks."""
    per: dict[Any, dict[str, float]] = {}
    total: dict[str, float] = {}
    for r in records:
        where = key(r)
        for dev, share in (where.items() if isinstance(where, dict) else ((where, 1.0),)):
            d = per.setdefault(dev, {})
            for k, v in r.bytes.items():
                d[k] = d.get(k, 0.0) + v * share
        for k, v in r.bytes.items():
            total[k] = total.get(k, 0.0) + v * tp
    if not per:
        return {}, {}
    busiest = max(per.values(), key=lambda d: next(iter(d.values()), 0.0) if d else 0.0)
    return busiest, total


def dominant_bound(seconds: dict[str, float]) -> str:
    """The bound with the most seconds (ties broken in BOUNDS order)."""
    best, best_t = "compute", -1.0
    for b in BOUNDS:
        t = seconds.get(b, 0.0)
        if t > best_t:
            best, best_t = b, t
    return best


def _finite(x: Any) -> Any:
    if isinstance(x, float) and (math.isinf(x) or math.isnan(x)):
        return None
    return x
