"""``CostModel``: the base every architecture family subclasses.

``estimate(graph)`` is a template; a family overrides the hooks it needs::

    estimate(graph, analysis=GraphAnalysis(graph))   (the analysis is target-independent)
      plan_devices(graph, footprint)      the smallest deployment that fits (override to scale otherwise)
      analysis.plan(tp, pp)               shared: which node is split how, collectives, stages
      memory_plan(...)                    shared: weights + KV cache + activations vs capacity
      price_graph(graph, plan, analysis)  per node: node_work → shard → price_node (cached by structural
                                          key and shard, across estimates too: ``PRICES``),
                                          then price_comm for every collective the plan inserted,
                                          then schedule(records) to turn costs into a timeline
      llm_metrics(...)                    shared: TTFT, TPOT, tokens/s, KV cache, MFU

A minimal family implements ``price_node(work) -> NodeCost`` and declares ``family`` and the
``schema`` of the target keys it reads; see ``families/cpu.py`` for a short one and
``docs/cost_models.md`` for a walk-through.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace
from typing import Any, Callable, ClassVar, Mapping

from ..ir import Graph, Node
from ..ir.errors import BackendError, IRError, TargetError
from .collectives import collective_time
from .estimate import Estimate, NodeCost, bytes_by_device
from .llm import llm_meta, llm_metrics, model_name
from .memory import footprint, memory_plan, plan_devices
from .parallel import (Comm, ParallelError, ParallelPlan, Shard, analyze_tensor_parallel, check_degrees,
                       plan_parallel)
from .quantities import format_quantity
from .target import Field, Target
from .pipeline import default_microbatches, pipeline_step
from .work import DEVICE, NodeWork, known_keys, microbatch_work, node_label, shared_work, work_key

__all__ = ["BASE_SCHEMA", "PRICES", "CostModel", "GraphAnalysis", "PriceCache", "estimate_pair", "roofline_time",
           "shard_work"]

#: target keys every family reads, merged under each family's own ``schema``
BASE_SCHEMA: dict[str, dict[str, Field]] = {
    "efficiency": {
        "capacity_usable": Field("fraction", 0.9, "share of device memory a runtime can use "
                                 "(vLLM's default gpu_memory_utilization is 0.9)"),
    },
    "overheads": {
        "collective": Field("time", 0.0, "fixed software cost of one collective (launch + handshake)"),
    },
}


def roofline_time(flops: float, peak: float, nbytes: float, bandwidth: float) -> float:
    """The roofline: a kernel takes as long as the slower of its arithmetic and its bytes."""
    c = flops / peak if peak else (float("inf") if flops else 0.0)
    m = nbytes / bandwidth if bandwidth else (float("inf") if nbytes else 0.0)
    return max(c, m)


def estimate_pair(price: Callable[[Graph, Estimate | None], Estimate], graph: Graph,
                  companion: Graph | None) -> tuple[Estimate, str]:
    """``price(graph, its companion's estimate)``, the companion (the other LLM phase's graph, or
    None) priced first by ``price(companion, None)``. The other phase need not fit where this one
    does (a batch of 131k-token prompts in one prefill holds far more activations than its decode
    step): then ``graph`` is priced without it, and the note saying why is added to its notes and
    returned."""
    comp, note = None, ""
    if companion is not None:
        try:
            comp = price(companion, None)
        except TargetError as e:
            note = f"no {companion.meta.get('llm', {}).get('phase', 'companion')} estimate: {e}"
    est = price(graph, comp)
    if note and note not in est.notes:      # an estimate may be memoized and asked for again
        est.notes.append(note)
    return est, note


def shard_work(w: NodeWork, shard: Shard) -> NodeWork:
    """The part of ``w`` one device of the tensor-parallel group does."""
    if shard.parts <= 1:
        return w
    f = 1.0 / shard.parts
    dim = shard.dim or "batch"
    cons = tuple(c.split(dim, shard.parts) for c in w.contractions)
    ins = tuple(b * (shard.in_factors[i] if i < len(shard.in_factors) else 1.0) for i, b in enumerate(w.in_bytes))
    outs = tuple(b * (shard.out_factors[i] if i < len(shard.out_factors) else 1.0) for i, b in enumerate(w.out_bytes))
    traffic = None
    if w.traffic is not None:
        # a tile record's traffic is the whole node's: a device moves it in the share its own
        # operands have (1/tp of split tensors; a replicated KV head or a replicated activation
        # is read whole on every rank, so the share is not simply 1/tp)
        whole = sum(w.in_bytes) + sum(w.out_bytes)
        share = (sum(ins) + sum(outs)) / whole if whole > 0 else f
        traffic = {k: v * share for k, v in w.traffic.items()}
    return replace(w, contractions=cons, in_bytes=ins, out_bytes=outs, extra_bytes=w.extra_bytes * f,
                   vector_flops=w.vector_flops * f, converts=w.converts * f, traffic=traffic,
                   weight_bytes=w.weight_bytes * f, cold_bytes=w.cold_bytes * f, flops=w.flops * f)


class PriceCache:
    """Node prices shared across estimates: one table per priced model (family, the target's full
    content, options and every scalar attribute of the instance, so per-estimate state such as the
    CPU family's resident bytes is part of the key), each mapping (structural work key, shard) to the
    priced record. A sweep's points differ in batch, context and degrees but repeat most node shapes
    (decode's projections do not depend on the context), so most nodes are priced once per worker.

    Prices are a function of (work, shard, model) only, so a hit is exactly what ``price_node`` would
    return. A family whose ``price_node`` reads non-scalar per-estimate state must fold it into
    ``price_state``. ``max_entries`` bounds memory (a record is ~1 KB); tables are dropped oldest first."""

    def __init__(self, max_entries: int = 100_000):
        self.max_entries = max_entries
        self.enabled = True
        self._tables: OrderedDict[tuple, dict[Any, NodeCost]] = OrderedDict()
        self._targets: dict[int, tuple[Target, str]] = {}    # holds the target: its id cannot be reused

    def table(self, model: CostModel) -> dict[Any, NodeCost]:
        """The prices of ``model``'s configuration (a fresh throwaway dict when disabled)."""
        if not self.enabled:
            return {}
        key = (type(model).__module__, type(model).__qualname__, self._target_key(model.target),
               repr(sorted(model.options.items())), model.price_state())
        t = self._tables.get(key)
        if t is None:
            t = self._tables[key] = {}
            self._trim()
        else:
            self._tables.move_to_end(key)
        return t

    def clear(self) -> None:
        self._tables.clear()
        self._targets.clear()

    def _target_key(self, target: Target) -> str:
        hit = self._targets.get(id(target))
        if hit is None or hit[0] is not target:
            if len(self._targets) > 256:
                self._targets.clear()
            hit = self._targets[id(target)] = (target, repr(target))
        return hit[1]

    def _trim(self) -> None:
        total = sum(len(t) for t in self._tables.values())
        while total > self.max_entries and len(self._tables) > 1:
            total -= len(self._tables.popitem(last=False)[1])


#: the process-wide price cache ``CostModel.price_graph`` uses (``PRICES.enabled = False`` turns it off)
PRICES = PriceCache()


class CostModel:
    """Base of the architecture families; see the module docstring."""

    #: the ``family`` name target files use
    family: ClassVar[str] = ""
    #: one line for ``ridgeline backends`` / docs
    description: ClassVar[str] = ""
    #: keys read from the target: section ("array", "overheads", "efficiency", "units") -> fields
    schema: ClassVar[Mapping[str, Mapping[str, Field]]] = {}
    #: estimate options this family takes besides tp/pp (``--option`` style), with defaults
    option_fields: ClassVar[Mapping[str, Field]] = {}

    def __init__(self, target: Target, **options: Any):
        self.target = target
        # None: the graph's own split (a preset built with tp=…), else 1
        self.tp = _degree(options.pop("tp", None), "tp")
        self.pp = _degree(options.pop("pp", None), "pp")
        # micro-batches per step under pp (None: fill the pipeline; ``pipeline.default_microbatches``)
        mb = options.pop("microbatches", None)
        self.microbatches = None if mb in (None, "auto") else _degree(mb, "microbatches")
        self._mb = 1                # the micro-batch count price_graph prices one micro-batch of
        self.options: dict[str, Any] = {}
        for key, f in self.option_fields.items():
            if key in options:
                self.options[key] = f.parse(options.pop(key), f"option {key}")
            else:
                self.options[key] = f.default
        if self.options.get("attention", "flash") not in ("flash", "materialized"):
            raise BackendError(f"option attention must be 'flash' or 'materialized', got {self.options['attention']!r}")
        if options:
            known = ", ".join(["tp", "pp", *self.option_fields]) or "none"
            raise BackendError(f"target {target.name} ({self.family}): unknown option(s) "
                               f"{', '.join(sorted(options))}; known: {known}")

    @classmethod
    def full_schema(cls) -> dict[str, dict[str, Field]]:
        out: dict[str, dict[str, Field]] = {k: dict(v) for k, v in BASE_SCHEMA.items()}
        for sec, fields in cls.schema.items():
            out.setdefault(sec, {}).update(fields)
        return out

    # ----------------------------------------------------------------- the template
    def estimate(self, graph: Graph, *, companion: Estimate | None = None,
                 analysis: "GraphAnalysis | None" = None) -> Estimate:
        """Cost ``graph`` on this target; ``companion`` is the other LLM phase's estimate;
        ``analysis`` reuses the target-independent work of an earlier estimate of this graph."""
        return self.estimate_layout(graph, companion=companion, analysis=analysis)[0]

    def estimate_layout(self, graph: Graph, *, companion: Estimate | None = None,
                        analysis: GraphAnalysis | None = None, **how: Any) -> tuple[Estimate, Any]:
        """``estimate``, and the layout ``price_layout`` priced the graph on (passed as a value, so
        that a family keeps no state between pricing and finishing its estimate); ``how`` goes to
        ``price_layout``."""
        if analysis is None or analysis.graph is not graph:
            analysis = GraphAnalysis(graph)
        base = analysis.plan(1, 1)
        fp = analysis.footprint
        choice = self.plan_devices(graph, fp)
        if choice is None and fp.total_weights + fp.total_kv > 0:
            cap = self.target.device_memory.total_capacity
            raise TargetError(f"{model_name(graph)} fits no device count of {self.target.name}: it needs "
                              f"{format_quantity(fp.total_weights + fp.total_kv, 'size')} of weights and KV cache; "
                              f"a device holds {format_quantity(cap, 'size')} and the target joins at most "
                              f"{self.target.max_devices} device(s) (tp ≤ heads, pp ≤ layers)")
        tp, pp = self._resolve_degrees(graph, fp, choice)
        if tp * pp > self.target.max_devices:
            raise TargetError(f"tp={tp} × pp={pp} = {tp * pp} devices, but {self.target.name} joins at most "
                              f"{self.target.max_devices} (see its [[interconnect]] max_devices)")
        plan = analysis.plan(tp, pp) if (tp, pp) != (1, 1) else base
        mem = memory_plan(graph, self.target, plan, fp, choice=choice)
        meta = llm_meta(graph)
        pipe = None
        if pp > 1:
            self._mb = default_microbatches(graph, pp, self.microbatches)
        try:
            records, layout = self.price_layout(graph, plan, analysis, **how)
        finally:
            m, self._mb = self._mb, 1
        if pp > 1:
            _, pipe = pipeline_step(records, pp, m, meta.get("phase", "prefill"))
        # under pp each stage is its own device: "per device" is the busiest stage, not the sum
        per_dev, all_dev = bytes_by_device(records, tp)
        est = Estimate(target=self.target.name, family=self.family, graph=graph.name,
                       time_s=sum(r.time_s for r in records), nodes=records,
                       flops=sum(r.flops for r in records), bytes=per_dev, total_bytes=all_dev,
                       parallel={"tp": tp, "pp": pp}, memory=mem,
                       options={k: v for k, v in self.options.items()})
        est.peak_flop_per_s = self.peak_for(analysis)
        c, m = est.breakdown.get("compute", 0.0), est.breakdown.get("memory", 0.0)
        # seconds of the step a mechanism accounts for that a step-wide roofline cannot see, each
        # by name (the invariants subtract them; never a wider tolerance): launch gaps and fixed
        # per-kernel costs wherever they land (a memory-bound kernel's own gap included; the whole
        # of a kernel whose fixed costs exceed its work, whose few bytes pay DRAM latency), and the
        # smaller of the compute- and memory-bound kernels' own times, which max(bytes/BW,
        # FLOPs/peak) assumes hidden behind the larger although those kernels run one after another
        net = {"compute": 0.0, "memory": 0.0}
        for r in records:
            if r.bound in net:
                net[r.bound] += max(0.0, r.time_s - r.overhead_s)
        # the wider-precision excess is compute-bound time: take it off that class first, so the
        # "in turn" share never counts the same seconds again
        wider = self._wider_precision_s(records, est.peak_flop_per_s)
        net["compute"] = max(0.0, net["compute"] - wider)
        est.detail["mechanism_s"] = {
            "launch and fixed per-kernel costs": sum(r.time_s if r.bound == "overhead" else r.overhead_s
                                                     for r in records if r.bound != "communication"),
            "compute- and memory-bound kernels in turn": min(net.values()),
            "contractions at a wider precision than the step's peak": wider}
        if est.time_s and min(c, m) > 0.25 * (c + m):
            # a step-wide roofline max(bytes/BW, FLOPs/peak) assumes compute and memory overlap;
            # kernels bound by different resources run one after another (the share is of the
            # kernels' own time: collectives and launch gaps are named separately)
            est.detail["mechanism"] = (f"compute-bound kernels ({c * 1e3:.3g} ms) and memory-bound kernels "
                                       f"({m * 1e3:.3g} ms) run in turn")
        eff = float(self.target.efficiency.get("matrix", 1.0) or 1.0)
        if est.time_s and c > 0.5 * est.time_s and eff < 0.5 and "mechanism" not in est.detail:
            # the nameplate roofline assumes the arrays run at peak; this target states (and says
            # where from, in its file) that they sustain under half of it
            est.detail["mechanism"] = (f"compute-bound kernels ({c / est.time_s:.0%} of the step) run the matrix "
                                       f"units at {eff:.0%} of peak ({self.target.name}'s efficiency.matrix)")
        est.detail["model_flops"] = analysis.model_flops
        est.detail["device_bandwidth"] = self.target.device_memory.bandwidth
        if pipe is not None:
            est.detail["pipeline"] = pipe
            if pipe["bubble_fraction"] >= 0.25:
                # each stage's devices idle while the others run: the step-wide bound (all devices
                # busy all the time) cannot see that
                bubble = (f"pipeline bubble: each of {pp} stages idles {pipe['bubble_fraction']:.0%} of the step "
                          f"({pipe['microbatches']} micro-batch(es))")
                est.detail["mechanism"] = "; ".join(x for x in (est.detail.get("mechanism"), bubble) if x)
            est.notes.append(f"pipeline: {pp} stages x {pipe['microbatches']} micro-batch(es), {pipe['schedule']}; "
                             f"bubble {pipe['bubble_fraction']:.0%} of the step")
        est.llm = llm_metrics(graph, est, companion)
        est.notes.extend(self.upcast_notes(analysis))
        if not mem.fits:
            est.notes.append(f"does not fit: {format_quantity(mem.per_device_bytes, 'size')} per device > "
                             f"{format_quantity(mem.capacity_bytes, 'size')} usable; {mem.note}")
        return est, layout

    def _resolve_degrees(self, graph: Graph, fp, choice: tuple[int, int] | None) -> tuple[int, int]:
        meta = llm_meta(graph)
        tp = self.tp if self.tp is not None else _degree(meta.get("tp", 1), "tp")
        pp = self.pp if self.pp is not None else _degree(meta.get("pp", 1), "pp")
        if tp == "auto" and pp == "auto":
            return choice if choice else (1, 1)
        cap = self.target.device_memory.total_capacity * float(self.target.efficiency.get("capacity_usable", 0.9))
        if tp == "auto":
            for cand in (1, 2, 4, 8, 16, 32, 64):
                try:
                    check_degrees(graph, cand, pp)
                except ParallelError:
                    continue
                if cand * pp <= self.target.max_devices and sum(fp.per_device(cand, pp)) <= cap:
                    return cand, pp
            # no tensor-parallel degree fits at this pp: say what would, never return one that does not fit
            hint = f"tp={choice[0]} pp={choice[1]} fits (or use --pp auto)" if choice else "no deployment fits"
            raise ParallelError(f"--tp auto: no tensor-parallel degree of {self.target.name} fits "
                                f"{model_name(graph)} with pp={pp}; {hint}")
        if pp == "auto":
            for cand in range(1, max(1, fp.layers) + 1):
                if sum(fp.per_device(tp, cand)) <= cap:
                    return tp, cand
            return tp, 1
        return tp, pp

    def plan_devices(self, graph: Graph, fp) -> tuple[int, int] | None:
        """The (tp, pp) a fitting deployment needs (override for machines that scale differently)."""
        return plan_devices(graph, self.target, fp)

    upcast_how = "operands widened per tile, as real kernels do"

    def upcast_to(self, dt: str):
        """(unit, precision) a ``dt`` product runs at when no matrix unit lists ``dt``, else None."""
        return self.target.upcast_unit(dt)

    def upcast_notes(self, analysis: "GraphAnalysis") -> list[str]:
        """One line per contraction precision this chip's matrix units do not list (and run wider)."""
        return [f"{self.target.name} has no {dt} matrix unit: {dt} products run on {hit[0].name} as {hit[1]} "
                f"({self.upcast_how})" for dt in sorted(analysis.contraction_flops_by_dtype)
                if (hit := self.upcast_to(dt)) is not None]

    def _wider_precision_s(self, records: list[NodeCost], peak: float) -> float:
        """Seconds compute-bound kernels spend beyond ``peak`` on the matrix unit that gives it,
        because they run at a slower precision of that unit (attention's bf16 QK^T and PV beside
        fp8 products). The step-wide roofline divides every FLOP by ``peak``; kernels on other
        units (vector work) are not counted here, so a product mispriced onto them stays visible."""
        units = {u.name: u for u in self.target.units.values() if u.kind == "matrix"
                 and any(abs(p - peak) <= 1e-9 * peak for p in u.peak.values())}
        extra = 0.0
        for r in records:
            name, _, prec = r.unit.partition(":")
            rate = units[name].peak.get(prec, 0.0) if r.bound == "compute" and name in units else 0.0
            if 0.0 < rate < peak:
                extra += max(0.0, r.time_s - r.overhead_s) * (1.0 - rate / peak)
        return extra

    def peak_for(self, analysis: "GraphAnalysis") -> float:
        """Peak FLOP/s of the precision most of the graph's contractions run at (for MFU)."""
        by_dtype = analysis.contraction_flops_by_dtype
        if not by_dtype:
            return self.target.peak("f32")
        return self.target.peak(max(by_dtype, key=by_dtype.get))

    def price_layout(self, graph: Graph, plan: ParallelPlan, analysis: GraphAnalysis,
                     **how: Any) -> tuple[list[NodeCost], Any]:
        """``price_graph``'s records and the layout they assume: None here; the spatial families
        return their placement and schedule, which ``estimate`` reads."""
        return self.price_graph(graph, plan, analysis), None

    def price_graph(self, graph: Graph, plan: ParallelPlan, analysis: "GraphAnalysis") -> list[NodeCost]:
        """Price every node (once per distinct shape and split, reusing ``PRICES`` across estimates)
        and every inserted collective, then ``schedule`` them."""
        records: list[NodeCost] = []
        by_node: list[NodeCost] = []        # each node's record (the records add its collectives)
        cache: dict[Any, NodeCost] = {}
        table = PRICES.table(self)
        names, layers = analysis.labels()
        shards, stages = analysis.placement(plan)
        pkeys, pids, fused_labels = analysis.price_keys()
        for i, (node, key, pid) in enumerate(zip(analysis.nodes, analysis.keys, pids)):
            shard = shards[i]
            ck = (pid, id(shard)) if pid is not None else None    # shards are interned per plan
            proto = cache.get(ck) if ck is not None else None
            if proto is None:
                gk = (pkeys[pid], shard) if pid is not None else None
                proto = table.get(gk) if gk is not None else None
                if proto is None:
                    w = self.node_work(node, key, shard)
                    if self._mb > 1:    # (the table is per micro-batch count: price_state has _mb)
                        w = microbatch_work(w, self._mb, tuple(v is not None and v.const for v in node.inputs))
                    self._check_levels(w, node)
                    proto = self.price_node(w)
                    proto.shard = shard.parts
                    if "kind" in w.detail and "kind" not in proto.detail:
                        proto.detail["kind"] = w.detail["kind"]
                    if gk is not None:
                        table[gk] = proto
                if ck is not None:
                    cache[ck] = proto
            rec = proto.clone(name=names[i], layer=layers[i], stage=stages[i])
            label = fused_labels[i]
            if label and proto.detail.get("label", label) != label:    # a layer's twin: its own label
                rec.detail = {**proto.detail, "label": label}
            records.append(rec)
            by_node.append(rec)
            for comm in plan.after.get(id(node), ()):
                if self._mb > 1 and comm.kind == "send":       # a micro-batch's activations
                    comm = replace(comm, bytes=comm.bytes / self._mb)
                c = self.price_comm(comm, plan)
                c.stage = stages[i]
                records.append(c)
        self.fuse(by_node, plan, analysis, shards)
        return self.schedule(records, plan)

    def node_work(self, node: Node, key: Any = None, shard: Shard | None = None) -> NodeWork:
        """The work ``price_node`` prices for ``node`` (one device's ``shard`` of it): its shared
        ``NodeWork``, with a fused attention run as FlashAttention on this target when the family's
        ``attention`` option says so (an untiled ``Attention`` otherwise writes its score matrix to
        device memory)."""
        whole = shared_work(node, key)
        w = shard_work(whole, shard) if shard is not None else whole
        if self.options.get("attention") == "flash" and w.traffic is None and w.extra_bytes > 0:
            from .traffic import flash_attention_work
            w = flash_attention_work(node, w, self.target, whole)
        return w

    def price_state(self) -> tuple:
        """What ``price_node`` reads besides the work, the target and the options: by default every
        scalar attribute of the instance (degrees, derived clock rates, per-estimate totals)."""
        return tuple(sorted((k, v) for k, v in vars(self).items()
                            if v is None or isinstance(v, (bool, int, float, str))))

    def _check_levels(self, w: NodeWork, node: Node) -> None:
        if w.traffic is None:
            return
        for level in w.traffic:
            if level != DEVICE and not self.target.has_level(level):
                raise TargetError(f"the tile schedule of {node.op} %{w.name} moves bytes at memory level {level!r}, "
                                  f"which target {self.target.name} does not have "
                                  f"(levels: {', '.join(m.name for m in self.target.memory)})")
        fp = (w.tile or {}).get("footprint") or {}
        for level, b in fp.items():
            if level == DEVICE:
                continue
            if not self.target.has_level(level):
                raise TargetError(f"the tile schedule of {node.op} %{w.name} uses memory level {level!r}, "
                                  f"which target {self.target.name} does not have")
            cap = self.target.level(level).capacity
            if b > cap:
                raise TargetError(f"the tile schedule of {node.op} %{w.name} needs {format_quantity(b, 'size')} "
                                  f"of {level}; {self.target.name} has {format_quantity(cap, 'size')}")

    # ----------------------------------------------------------------- hooks
    def price_node(self, work: NodeWork) -> NodeCost:
        """The cost of one node's (already sharded) work on one device. Families implement this."""
        raise NotImplementedError(f"{type(self).__name__} must implement price_node")

    def price_comm(self, comm: Comm, plan: ParallelPlan) -> NodeCost:
        """A collective or pipeline transfer on the target's links (α–β model)."""
        devices = comm.devices if comm.kind != "send" else plan.devices
        t, link = collective_time(self.target, comm.kind, comm.bytes, comm.devices if comm.kind != "send" else 2,
                                  link=self.target.link_for(devices) if comm.kind == "send" else None)
        return NodeCost(name=comm.label, op=comm.kind, category="collective" if comm.kind != "send" else "transfer",
                        time_s=t, flops=0.0, bytes={}, bound="communication",
                        unit=f"link:{link.name}" if link else "", comm_s=t, layer=comm.layer,
                        detail={"payload_bytes": comm.bytes, "devices": comm.devices})

    def fuse(self, by_node: list[NodeCost], plan: ParallelPlan, analysis: "GraphAnalysis", shards: list[Shard]) -> None:
        """Re-price in place the records (one per node of ``analysis``) of kernels the target's
        compiler fuses; none by default."""

    def schedule(self, records: list[NodeCost], plan: ParallelPlan) -> list[NodeCost]:
        """Turn per-node costs into the step's timeline; the default runs them one after another."""
        return records


class GraphAnalysis:
    """What an estimate needs to know about a graph regardless of the target: per-node work keys,
    the tensor-parallel analysis, resident bytes, parallel plans by degree. ``compare`` makes one
    per graph and reuses it for every target; it is valid only while the graph is not edited."""

    def __init__(self, graph: Graph):
        _require_static(graph)
        self.graph = graph
        self.nodes = graph.nodes
        self.keys = [work_key(n) for n in self.nodes]
        self._by_dtype: dict[str, float] | None = None
        self._model_flops: float | None = None
        self._plans: dict[tuple[int, int], ParallelPlan] = {}
        self._placements: dict[tuple[int, int], tuple[list[Shard], list[int]]] = {}
        self._price_keys: tuple[list[Any], list[int | None], list[str]] | None = None
        self._labels: tuple[list[str], list[int | None]] | None = None
        self.memo: dict[str, Any] = {}          # what a family derives from the graph alone, by name
        with known_keys(self.nodes, self.keys):         # the analyses below ask for each node's key again
            self.tp = analyze_tensor_parallel(graph)
            self.footprint = footprint(graph, self.plan(1, 1))

    @property
    def contraction_flops_by_dtype(self) -> dict[str, float]:
        """FLOPs of all contractions by the precision they run at."""
        if self._by_dtype is None:
            out: dict[str, float] = {}
            for n, key in zip(self.nodes, self.keys):
                if n.spec.category in ("matmul", "attention", "fused"):
                    for c in shared_work(n, key).contractions:
                        out[c.dtype] = out.get(c.dtype, 0.0) + c.flops
            self._by_dtype = out
        return self._by_dtype

    @property
    def model_flops(self) -> float:
        """The graph's FLOPs as its op specs count them (unsplit): MFU's numerator."""
        if self._model_flops is None:
            self._model_flops = sum(shared_work(n, k).flops for n, k in zip(self.nodes, self.keys))
        return self._model_flops

    def plan(self, tp: int, pp: int) -> ParallelPlan:
        p = self._plans.get((tp, pp))
        if p is None:
            with known_keys(self.nodes, self.keys):
                p = self._plans[(tp, pp)] = plan_parallel(self.graph, tp, pp, self.tp)
        return p

    def price_keys(self) -> tuple[list[Any], list[int | None], list[str]]:
        """(distinct price keys, per node the index of its price key, per node its Fused label).

        A price key is the node's work key (which leaves out a Fused node's ``label``, a layer's
        name that ``node_work`` only copies into ``detail``), so the twin nodes of identical layers
        share one price; array attributes are keyed by content, so every key is portable."""
        if self._price_keys is None:
            index: dict[Any, int] = {}
            keys: list[Any] = []
            pids: list[int | None] = []
            labels: list[str] = []
            for node, key in zip(self.nodes, self.keys):
                label = node.attr("label") if node.op == "Fused" else ""
                labels.append(label or "")
                if key is None:
                    pids.append(None)
                    continue
                if label:       # a labelled twin never lends its detail["label"] to an unlabelled one
                    key = key[:3] + (key[3] + (("label?", True),),) + key[4:]
                pid = index.get(key)
                if pid is None:
                    pid = index[key] = len(keys)
                    keys.append(key)
                pids.append(pid)
            self._price_keys = (keys, pids, labels)
        return self._price_keys

    def labels(self) -> tuple[list[str], list[int | None]]:
        """Per node: its record's name and layer (target-independent, so computed once)."""
        if self._labels is None:
            layers = [n.meta.get("layer") for n in self.nodes]
            self._labels = ([node_label(n) for n in self.nodes], [x if isinstance(x, int) else None for x in layers])
        return self._labels

    def placement(self, plan: ParallelPlan) -> tuple[list[Shard], list[int]]:
        """Per node: its shard and pipeline stage under ``plan`` (kept for this analysis' own plans)."""
        mine = self._plans.get((plan.tp, plan.pp)) is plan
        hit = self._placements.get((plan.tp, plan.pp)) if mine else None
        if hit is None:
            hit = ([plan.shard_of(n) for n in self.nodes], [plan.stage_of(n) for n in self.nodes])
            if mine:
                self._placements[(plan.tp, plan.pp)] = hit
        return hit


def _degree(v: Any, what: str):
    if v is None or v == "auto":
        return v
    if isinstance(v, str) and v.isdigit():
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise BackendError(f"{what} must be a positive integer or 'auto', got {v!r}")
    return v


def _require_static(graph: Graph) -> None:
    syms = sorted(graph.symbols())
    if syms:
        raise IRError(f"graph @{graph.name} has unbound dims {', '.join(syms)}; estimates need sizes: bind them "
                      f"with --dim NAME=SIZE (or graph.bind(...))")

