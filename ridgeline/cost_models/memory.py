"""Memory fit: what each device must hold (weights, KV cache, activations) and how many devices
are needed for it to fit.

Weights are the graph's constants (weightless constants count by their type), split across the
tensor-parallel group when the plan shards them and across pipeline stages by layer. The KV cache
is the ``present_*`` outputs of every ``Attention`` (the cache after this step), split by heads.
Activations are estimated as the largest working set of one node. Usable capacity is device
memory × ``efficiency.capacity_usable`` (runtimes reserve the rest: vLLM's default
``gpu_memory_utilization`` is 0.9).

``plan_devices`` chooses a deployment the way people do: tensor parallelism inside the fastest
link domain first (powers of two dividing the heads), then pipeline stages across domains.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..ir import Graph
from .estimate import MemoryPlan
from .parallel import ParallelError, ParallelPlan, _is_attention, check_degrees, plan_parallel
from .target import Target
from .work import FREE_CATEGORIES

__all__ = ["Footprint", "footprint", "memory_plan", "plan_devices"]


@dataclass
class Footprint:
    """Per-block bytes of a graph, so any (tp, pp) split is priced without re-planning."""

    layers: int
    sharded: list[float]      # per layer: bytes split by tp (weights, KV cache)
    replicated: list[float]   # per layer: bytes every tp rank holds
    kv: list[float]           # per layer: KV-cache bytes (sharded by heads)
    pre: tuple[float, float]  # (sharded, replicated) before the first layer (embeddings)
    post: tuple[float, float]  # after the last layer (final norm, LM head)
    activation: float         # largest single-node working set, unsharded
    total_weights: float
    total_kv: float
    kv_heads: int = 0          # KV heads per attention (0: unknown): tp beyond it replicates them
    kv_weights: list[float] = field(default_factory=list)   # per layer: K/V projection weights

    def per_device(self, tp: int, pp: int) -> tuple[float, float, float]:
        """(weights, kv, activations) on the busiest device of a tp × pp split."""
        L = self.layers
        kvp = min(tp, self.kv_heads) if self.kv_heads else tp   # ranks holding distinct KV heads
        kvw = self.kv_weights or [0.0] * L
        if L == 0 or pp == 1:
            split = sum(self.sharded) + self.pre[0] + self.post[0]
            w = split / tp + sum(kvw) / kvp + sum(self.replicated) + self.pre[1] + self.post[1]
            return w, sum(self.kv) / kvp, self.activation / tp
        stages_w = [0.0] * pp
        stages_kv = [0.0] * pp
        for l in range(L):
            s = min(pp - 1, l * pp // L)
            stages_w[s] += self.sharded[l] / tp + kvw[l] / kvp + self.replicated[l]
            stages_kv[s] += self.kv[l] / kvp
        stages_w[0] += self.pre[0] / tp + self.pre[1]
        stages_w[-1] += self.post[0] / tp + self.post[1]
        i = max(range(pp), key=lambda s: stages_w[s] + stages_kv[s])
        return stages_w[i], stages_kv[i], self.activation / tp


def _vbytes(v) -> float:
    n = v.type.numel
    return float(v.type.dtype.nbytes(n)) if isinstance(n, int) else 0.0


def footprint(graph: Graph, plan: ParallelPlan | None = None) -> Footprint:
    """The graph's resident bytes per layer (see ``Footprint``)."""
    plan = plan or plan_parallel(graph, 1, 1)
    L = plan.layers
    sh = [0.0] * max(L, 0)
    rep = [0.0] * max(L, 0)
    kv = [0.0] * max(L, 0)
    kvw = [0.0] * max(L, 0)
    pre = [0.0, 0.0]
    post = [0.0, 0.0]
    seen_layer = False
    counted: set[int] = set()
    act = 0.0
    total_w = total_kv = 0.0
    for n in graph:
        layer = n.meta.get("layer")
        if isinstance(layer, int) and 0 <= layer < L:
            seen_layer = True
        else:
            layer = None
        for v in n.inputs:
            if v is None or not v.const or id(v) in counted:
                continue
            counted.add(id(v))
            b = _vbytes(v)
            total_w += b
            split = plan.const_sharded.get(id(v), False)
            if layer is not None and split and id(n) in plan.kv_heads and not _is_attention(n):
                kvw[layer] += b       # a K/V projection: split by KV heads, not by tp
            elif layer is not None:
                (sh if split else rep)[layer] += b
            else:
                tgt = post if seen_layer else pre
                tgt[0 if split else 1] += b
        if id(n.outputs[1]) in plan.kv_values if len(n.outputs) > 2 else False:
            b = sum(_vbytes(v) for v in n.outputs[1:3])
            total_kv += b
            if layer is not None:
                kv[layer] += b
            else:
                (post if seen_layer else pre)[0] += b
        if n.spec.category not in FREE_CATEGORIES:
            live = sum(_vbytes(v) for v in n.inputs if v is not None and not v.const and id(v) not in plan.kv_values)
            live += sum(_vbytes(v) for v in n.outputs if id(v) not in plan.kv_values)
            act = max(act, live)
    heads = min(plan.kv_heads.values(), default=0)
    if L == 0:
        # one block: everything is "pre"
        return Footprint(0, [], [], [], (pre[0] + post[0], pre[1] + post[1]), (0.0, 0.0), act, total_w, total_kv,
                         heads)
    return Footprint(L, sh, rep, kv, (pre[0], pre[1]), (post[0], post[1]), act, total_w, total_kv, heads, kvw)


def _usable(target: Target) -> float:
    return target.device_memory.total_capacity * float(target.efficiency.get("capacity_usable", 0.9))


_UNSET = object()


def memory_plan(graph: Graph, target: Target, plan: ParallelPlan, fp: Footprint | None = None, *,
                choice: tuple[int, int] | None | object = _UNSET) -> MemoryPlan:
    """The memory fit of ``plan`` on ``target``, and the devices a fitting plan needs."""
    fp = fp or footprint(graph, plan)
    w, kv, act = fp.per_device(plan.tp, plan.pp)
    if choice is _UNSET:
        choice = plan_devices(graph, target, fp)
    need = choice[0] * choice[1] if choice else None
    note = f"fits with tp={choice[0]} pp={choice[1]}" if choice else "fits no device count"
    return MemoryPlan(w, kv, act, _usable(target), plan.devices, need, fp.total_weights, fp.total_kv, note)


def _tp_candidates(graph: Graph, limit: int) -> list[int]:
    out = []
    tp = 1
    while tp <= limit:
        try:
            check_degrees(graph, tp, 1)
            if tp > 1 and not graph.meta.get("llm"):
                plan_parallel(graph, tp, 1)  # generic graphs: every split dim must divide
            out.append(tp)
        except ParallelError:
            pass
        tp *= 2
    return out


def plan_devices(graph: Graph, target: Target, fp: Footprint | None = None) -> tuple[int, int] | None:
    """(tp, pp) of the smallest deployment that fits: TP inside the fastest link domain first,
    then pipeline stages; None when no device count fits."""
    fp = fp or footprint(graph)
    cap = _usable(target)
    domain = target.interconnect[0].max_devices if target.interconnect else 1
    tps = _tp_candidates(graph, domain)
    for tp in tps:
        if sum(fp.per_device(tp, 1)) <= cap:
            return tp, 1
    if not tps or fp.layers <= 1:
        return None
    tp = tps[-1]
    for pp in range(2, fp.layers + 1):
        if tp * pp > target.max_devices:
            return None
        if sum(fp.per_device(tp, pp)) <= cap:
            return tp, pp
    return None
