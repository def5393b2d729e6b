"""What the spatial families (``wafer_scale``, ``dataflow``) share: a deployment the machine lays
out itself rather than a (tp, pp) split.

Both place a model's resident bytes (weights, KV cache) in on-chip SRAM across as many
wafers / chips as they need, so the framework's tensor/pipeline degrees do not apply; these
helpers check the degrees a user passed and rewrite an estimate's memory plan and parallel
record once the family knows its device count.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from ..ir import Graph, Node
from ..ir.errors import BackendError, TargetError
from .estimate import Estimate, MemoryPlan, NodeCost, bytes_by_device
from .llm import llm_meta, llm_metrics
from .model import CostModel, GraphAnalysis
from .parallel import ParallelPlan
from .quantities import format_quantity
from .work import NodeWork, Prologue, shared_work

__all__ = [
    "SpatialModel",
    "Window",
    "at_keys",
    "context_window",
    "fastest_weight_form",
    "finish_estimate",
    "layer_blocks",
    "map_works",
    "require_no_degrees",
    "resident_bytes",
    "sized_for_window",
    "value_bytes",
    "widened",
]


class SpatialModel(CostModel):
    """Base of the spatial families: the device count comes from the family's own layout
    (``price_layout``), the weights are priced as stored and widened at load
    (``fastest_weight_form``), and ``_estimate`` finishes an estimate from its layout."""

    def plan_devices(self, graph, fp) -> tuple[int, int]:
        return (1, 1)       # the devices come from the layout, not from (tp, pp)

    def estimate(self, graph: Graph, *, companion: Estimate | None = None,
                 analysis: GraphAnalysis | None = None) -> Estimate:
        require_no_degrees(self)
        if analysis is None or analysis.graph is not graph:     # one for every weight form tried
            analysis = GraphAnalysis(graph)
        return fastest_weight_form(self, graph, lambda widen: self._estimate(graph, companion, analysis, widen))

    def _estimate(self, graph: Graph, companion: Estimate | None, analysis: GraphAnalysis | None,
                  widen: bool | int = False) -> Estimate:
        """The estimate with the weights as they stand or (``widen``: all, or layers below it)
        widened to 16-bit at load."""
        raise NotImplementedError

    def place(self, graph: Graph, widen: bool | int = False) -> Any:
        """Where ``graph``'s resident bytes (``widen`` as in ``_estimate``) go, by bytes alone:
        TargetError when they take more devices than the target joins."""
        raise NotImplementedError

    def price_graph(self, graph: Graph, plan: ParallelPlan, analysis: GraphAnalysis) -> list[NodeCost]:
        return self.price_layout(graph, plan, analysis)[0]

    def step_works(self, analysis: GraphAnalysis, widen: bool | int) -> dict[int, NodeWork]:
        """id(node) -> the node's work for the whole step (``widen``: int8/int4 weights widened),
        tile records checked against the target's levels."""
        works = {id(n): shared_work(n, k) for n, k in zip(analysis.nodes, analysis.keys)}
        if widen:
            works = map_works(works, widened, {id(n) for n in analysis.nodes if _widens(n, widen)})
        for n in analysis.nodes:
            if works[id(n)].traffic is not None:
                self._check_levels(works[id(n)], n)
        return works


def map_works(works: dict[int, NodeWork], f: Callable[[NodeWork], NodeWork],
              keys: Iterable[int] | None = None) -> dict[int, NodeWork]:
    """``works`` with ``f`` applied to those of ``keys`` (all by default), once per distinct work:
    identical layers keep sharing one work, which is how the schedules recognise them."""
    keys = set(works) if keys is None else set(keys)
    memo: dict[int, NodeWork] = {}
    return {k: (memo[id(w)] if id(w) in memo else memo.setdefault(id(w), f(w))) if k in keys else w
            for k, w in works.items()}


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
    if getattr(model, "microbatches", None) is not None:
        raise BackendError(f"target {model.target.name} ({model.family}): --microbatches does not apply; the layout "
                           f"streams the batch through its own pipeline")
    model.tp = model.pp = 1


def _widens(n: Node, widen: bool | int) -> bool:
    """Whether ``n``'s weights are widened: all (True), none (False), or layers below ``widen``."""
    if isinstance(widen, bool):
        return widen
    layer = n.meta.get("layer")
    return isinstance(layer, int) and layer < widen


def _narrow_int(dtype) -> bool:
    return dtype.name[0] in "iu" and dtype.bits <= 8


def resident_bytes(graph: Graph, widen: bool | int = False) -> dict[int, tuple[float, float]]:
    """id(node) -> (weight bytes, KV-cache bytes) it keeps resident; each constant is counted at
    its first reader (``widen``: int8/int4 weights, all or those of layers below it (``_widens``), as
    the 16-bit values they dequantize to)."""
    seen: set[int] = set()
    out: dict[int, tuple[float, float]] = {}
    for n in graph:
        w = 0.0
        for v in n.inputs:
            if v is not None and v.const and id(v) not in seen:
                seen.add(id(v))
                num = v.type.numel
                if isinstance(num, int):
                    w += 2.0 * num if _narrow_int(v.type.dtype) and _widens(n, widen) \
                        else float(v.type.dtype.nbytes(num))
        kv = 0.0
        if n.op == "Attention" or (n.op == "Fused" and n.body is not None and any(b.op == "Attention" for b in n.body)):
            for v in n.outputs[1:3]:
                num = v.type.numel
                kv += float(v.type.dtype.nbytes(num)) if isinstance(num, int) else 0.0
        if w or kv:
            out[id(n)] = (w, kv)
    return out


def context_window(graph: Graph, res: dict[int, tuple[float, float]], system_bytes: float) -> int | None:
    """The context a deployment's layout is sized for: the model's learned window (``max_context``)
    when the system holds its KV cache, else the largest halving of it that the system holds. It
    does not depend on the step's context. None: not an LLM preset.

    An SRAM machine keeps the KV cache on chip, so the chip/wafer count follows batch × context;
    sizing the layout for the step's own context would make a longer context add chips and, with
    them, the MACs and streams that run every layer -- a longer context would come out cheaper.
    A deployment is provisioned for the window it serves; a step past that window keeps the
    layout and puts the further positions on KV-only devices (``Window``)."""
    meta = llm_meta(graph)
    ctx, top = meta.get("context"), meta.get("max_context")
    if not isinstance(ctx, int) or not isinstance(top, int) or ctx <= 0 or top <= 0:
        return None
    w = sum(x for x, _ in res.values())
    kv_per_position = sum(x for _, x in res.values()) / ctx
    window = top
    while window > 1 and w + kv_per_position * window > system_bytes:
        window //= 2
    return window


@dataclass(frozen=True)
class Window:
    """Where a step's KV cache lives: the layout holds ``positions`` of every sequence (its
    window); a step whose ``context`` is longer keeps that layout (weights and the window's KV
    placed as for any step within it) and holds the further positions on KV-only devices,
    ``overflow_bytes`` in all. Those devices run attention over their positions while the layout
    runs it over its own (sequence-parallel attention, as flash-decoding splits the keys); the
    partial results are merged on the layout's chip after a round trip. So past the window a
    longer context never runs on a larger layout, and time per token cannot fall."""

    positions: int | None = None
    context: int | None = None
    overflow_bytes: float = 0.0

    @property
    def overflows(self) -> bool:
        return bool(self.positions and self.context and self.context > self.positions)

    def devices(self, capacity: float) -> int:
        """KV-only devices of ``capacity`` bytes that hold the overflow."""
        return math.ceil(self.overflow_bytes / capacity) if self.overflows and capacity > 0 else 0

    def remote_keys(self, res: dict[int, tuple[float, float]], capacity: float) -> int:
        """Keys one KV-only device attends over per layer: the positions past the window, spread
        over the devices that hold one layer's share of them (position-major, a layer's positions
        on devices of their own)."""
        if not self.overflows:
            return 0
        kv_nodes = sum(1 for _, kv in res.values() if kv > 0) or 1
        per_position = self.overflow_bytes / (self.context - self.positions) / kv_nodes     # one layer's
        fits = max(1, int(capacity // per_position)) if per_position > 0 else self.context
        return min(self.context - self.positions, fits)


def sized_for_window(res: dict[int, tuple[float, float]], graph: Graph,
                     system_bytes: float) -> tuple[dict[int, tuple[float, float]], Window]:
    """``res`` with each KV cache at the layout's window (``context_window``), and the step's
    ``Window`` (what lies past it). The work of the step still reads only this step's context."""
    window = context_window(graph, res, system_bytes)
    if window is None:
        return res, Window()
    ctx = llm_meta(graph)["context"]
    f = window / ctx
    sized = {k: (w, kv * f) for k, (w, kv) in res.items()}
    over = sum(kv for _, kv in res.values()) * (1 - f) if ctx > window else 0.0
    # the other position-indexed data, a rotary table with a row per position: the layout
    # holds the window's rows, the rest sit with the KV cache past it
    for n in graph:
        if n.op == "RotaryEmbedding" and id(n) in sized and ctx > window:
            rows = n.inputs[1].type.shape[0] if len(n.inputs[1].type.shape) == 2 else None
            if isinstance(rows, int) and rows > window:
                w, kv = sized[id(n)]
                table = sum(value_bytes(v) for v in n.inputs[1:3] if v is not None and v.const)
                cut = min(w, table * (1 - window / rows))
                sized[id(n)] = (w - cut, kv)
                over += cut
    return sized, Window(window, ctx, over)


_NBYTES: dict = {}


def value_bytes(v) -> float:
    """Bytes of value ``v`` (0 while its shape is symbolic), memoized by type: the spatial
    families ask for every value sent between devices, many times per estimate."""
    t = v.type
    b = _NBYTES.get(t)
    if b is None:
        n = t.numel
        b = _NBYTES[t] = float(t.dtype.nbytes(n)) if isinstance(n, int) else 0.0
    return b


def at_keys(w: NodeWork, keys: int) -> NodeWork:
    """An attention node's work over ``keys`` of its keys (the share a device of a sequence-
    parallel attention holds): the key dimension of both products, the softmax and the KV reads
    shrink; unchanged when it reads no more than that."""
    qk = next((c for c in w.contractions if c.role == "attention.qk"), None)
    if qk is None or keys >= qk.n:
        return w
    f = keys / qk.n
    cs = tuple(replace(c, n=keys) if c.role == "attention.qk" else replace(c, k=keys) if c.role == "attention.pv"
               else c for c in w.contractions)
    return replace(w, contractions=cs, vector_flops=w.vector_flops * f, flops=w.flops * f,
                   in_bytes=tuple(b * f for b in w.in_bytes), cold_bytes=w.cold_bytes * f,
                   extra_bytes=w.extra_bytes * f)      # the materialized scores: one per key


def _weight_only(graph: Graph) -> bool:
    """Narrow integer weights widened before a 16-bit multiply (not W8A8, whose products stay
    narrow): a preset says so in its metadata, an imported graph by what reads the weights."""
    meta = llm_meta(graph)
    if meta:
        wd, ad = str(meta.get("weight_dtype", "")), str(meta.get("act_dtype", ""))
        return wd in ("i8", "u8", "i4", "u4") and ad not in ("i8", "u8", "i4", "u4")
    return any(v.const and _narrow_int(v.type.dtype) and len(v.type.shape) >= 2
               and any(u.op in ("Cast", "DequantizeLinear", "MatMulNBits") for u, _ in v.uses)
               for v in graph.constants.values())


def widened(w: NodeWork) -> NodeWork:
    """``w`` with its weights stored at the multiply's 16-bit dtype: no dequantization prologue."""
    cs = tuple(replace(c, b_dtype=c.dtype, b_prologue=Prologue()) if c.b_weight and c.b_prologue else c
               for c in w.contractions)
    if cs == w.contractions:
        return w
    # the spec's FLOPs counted the dequantization: what is left is the products and the epilogue
    return replace(w, contractions=cs, flops=sum(c.flops for c in cs) + w.vector_flops)


def fastest_weight_form(model: Any, graph: Graph, run: Callable[[bool | int], Estimate]) -> Estimate:
    """``run(False)`` as the graph stands and, when its weights are int8/int4, ``run(True)`` with
    them widened to 16-bit at load; the faster deployment that fits.

    An SRAM machine's MACs are 16-bit: narrow weights need fewer chips/wafers, but every weight
    is then widened on the fly on the chip that holds it, and fewer chips give each layer fewer
    MACs and (LPU) fewer install streams. A deployer whose narrow weights come out slower stores
    them wide instead. When the 16-bit form does not fit -- a large batch's KV cache fills the
    devices the interconnect joins -- the deployer widens as many layers as the spare devices hold
    (``run(m)``: layers below m; the most that fit, each widened layer being faster), so a batch
    that only just fits is not left with every weight dequantized on the fly."""
    if not _weight_only(graph):
        return run(False)

    def attempt(widen: bool | int, how: Callable[..., Any] = run) -> tuple[Any, str]:
        try:
            return how(widen), ""
        except TargetError as e:
            return None, str(e)

    (narrow, _), (wide, wide_error) = attempt(False), attempt(True)
    form = "widened at load"
    if wide is None and narrow is not None:
        layers = 1 + max((x for n in graph if isinstance(x := n.meta.get("layer"), int)), default=-1)
        # the most leading layers widened whose bytes still fit (monotone in m: each widened layer
        # only adds bytes), searched by placement alone; the step is priced once, on that m
        lo, hi = 0, layers
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if attempt(mid, lambda m: model.place(graph, m))[0] is not None else (lo, mid - 1)
        while lo and (wide := attempt(lo)[0]) is None:
            lo //= 2        # the bytes fit but the layout does not (wse-3: PEs per wafer): fewer layers
        form += f" in {lo} of {layers} layers"
    if wide is None or (narrow is not None and narrow.time_s <= wide.time_s):
        return narrow if narrow is not None else run(False)
    why = (f"dequantizing them on the fly would take {format_quantity(narrow.time_s, 'time')} per step"
           if narrow is not None else "the narrow layout does not fit")
    if form.endswith("layers"):
        why += f"; all of them 16-bit does not fit ({wide_error})"
    devices = wide.memory.devices if wide.memory else "?"
    wide.notes.append(f"int8/int4 weights {form.replace('at load', 'to 16-bit at load')} ({devices} "
                      f"{model.device_word}s): {why}")
    wide.detail["weight_form"] = form
    return wide


def finish_estimate(model: Any, graph: Graph, est: Estimate, companion: Estimate | None, *, devices: int,
                    weights: float, kv: float, capacity: float, note: str, detail: dict[str, Any],
                    widen: bool | int = False, kv_only: int = 0) -> Estimate:
    """Record the family's own deployment (``devices`` wafers/chips, the last ``kv_only`` of them
    holding the KV cache past the window, the busiest one holding ``weights`` + ``kv`` of
    ``capacity``; ``widen`` as in ``resident_bytes``) on ``est`` and recompute its LLM metrics."""
    est.parallel = {"tp": 1, "pp": devices}
    # bytes per device: the busiest wafer / chip's, a node split over chips spread over them
    est.bytes, est.total_bytes = bytes_by_device(est.nodes, 1, lambda r: _devices_of(r, devices, kv_only))
    total_w = est.memory.total_weights_bytes if est.memory else 0.0
    if widen:       # the weights as the layout holds them: widened ones at 16 bits
        total_w = sum(w for w, _ in resident_bytes(graph, widen).values())
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


def _devices_of(r: NodeCost, devices: int, kv_only: int) -> dict[int, float] | int:
    """Device -> share of record ``r``'s bytes: its chips (or wafer) alike, but the share its
    attention reads past the window (``detail["far_share"]``) on the KV-only devices."""
    held = r.detail.get("chips") or [int(r.detail.get("wafer", 0))]
    far = float(r.detail.get("far_share", 0.0)) if kv_only else 0.0
    if len(held) == 1 and not far:
        return held[0]
    out = dict.fromkeys(held, (1.0 - far) / len(held))
    for d in range(devices - kv_only, devices) if far else ():
        out[d] = out.get(d, 0.0) + far / kv_only
    return out
