"""``dataflow``: compile-time scheduled SRAM machines (Groq LPU) — a static schedule, cycle-exact.

The model does what the machine's compiler does:

1. **Partition** the model across as many chips as its resident bytes need: weights and the KV
   cache live in each chip's SRAM (there is no DRAM), ``efficiency.capacity_usable`` of it minus
   ``array.activation_reserve`` for activations. Whole layers are packed onto chips when a layer
   fits one; a layer bigger than a chip gets chips of its own (so every layer is laid out alike),
   its independent products apart when that is faster (``_spread``), and a node bigger than a
   chip (a 1 GB LM head) is split by output columns across several.
2. **Lower** every node to operations on the chip's functional units (``schedule.Op``):

   - ``mxm`` (matrix): a contraction installs its B operand (the weights, or K/V in attention)
     into the 320×320 planes at ``array.install_streams`` × ``array.vector_bytes`` bytes per
     cycle while activation vectors stream through; weight installs are double-buffered, so it
     takes ``max(install, compute)`` cycles plus ``overheads.mxm_latency`` — a decode GEMV is
     install-bound (memory: bytes from SRAM), a prefill GEMM compute-bound. Compute cycles are
     ``ceil(k/320)·ceil(n/320)·m`` vector passes at the dtype's share of the MXM peak.
   - ``vxm`` (vector): element-wise, normalization, softmax, conversions at the vector ALUs' rate
     (``units.<vector>.count`` ops per cycle), no faster than its operands stream in.
   - ``mem``: lookups (``Gather``) at the SRAM's bandwidth; ``sxm`` (switch): transposes,
     concatenations, slices at ``array.switch_streams`` vectors per cycle.
   - ``c2c``: a value crossing chips is sent on one of ``array.c2c_links`` links:
     ``overheads.c2c_latency`` per hop plus bytes at the link's bandwidth (the first
     ``[[interconnect]]``), scheduled like any other op.

   Attention is three ops (QKᵀ on the MXM, softmax on the VXM, PV on the MXM); a fused kernel with
   a contraction is its matrix op followed by its epilogue on the VXM.
3. **List-schedule** the ops (``schedule.list_schedule``): exact cycle counts, no arbitration,
   no caches, so the same graph gives the same cycles on every run. Models whose layers are
   identical and laid out on chips of their own are scheduled one layer exactly and the layer is
   replicated (shifted in cycles and chips; ``Schedule.replicated`` says so) once the op count
   passes ``REPLICATE_ABOVE`` — the cycle counts stay exact because consecutive layers share no
   unit.

Per-node records: a node's ``time_s`` is how much it moves the end of the schedule (ops sorted by
end; the increments sum to the makespan), so nodes that overlap others add nothing. Bounds:
``memory`` for install-bound contractions and lookups (the units wait on bytes from SRAM),
``compute`` for compute-bound contractions and vector work, ``communication`` for transfers.

The estimate carries the ``Schedule`` as ``est.schedule`` (``ridgeline estimate … --schedule
out.json --gantt out.png``) and its summary in ``est.detail["schedule"]``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Callable, ClassVar, NamedTuple

from ...ir import Graph, Node
from ...ir.errors import RidgelineError, TargetError
from ..estimate import Estimate, NodeCost
from ..llm import llm_meta, model_name
from ..model import GraphAnalysis
from ..parallel import ParallelPlan
from ..quantities import format_quantity
from ..schedule import Op, Schedule, list_schedule
from ..spatial import (
    SpatialModel,
    Window,
    at_keys,
    finish_estimate,
    layer_blocks,
    map_works,
    resident_bytes,
    sized_for_window,
    value_bytes,
)
from ..target import Field
from ..target import dtype_bits as _bits
from ..work import FREE_CATEGORIES, NodeWork, microbatch_work, node_label

__all__ = ["REPLICATE_ABOVE", "DataflowModel", "Partition", "UnitOp"]

#: op count above which identical layers are scheduled once and replicated
REPLICATE_ABOVE = 3000

UNITS = ("mxm", "vxm", "mem", "sxm", "c2c")


class UnitOp(NamedTuple):
    """One functional-unit op a node lowers to (``DataflowModel.lower``)."""

    kind: str           # "matmul", "vector", "memory", "switch", "merge"
    unit: str           # the unit the list schedule books: mxm, vxm, mem, sxm
    cycles: int
    bound: str          # "compute", "memory" or "communication"
    info: dict          # figures for the record (role, install/compute cycles, bytes, ...)


@dataclass
class Partition:
    """Which chips hold which node's resident bytes."""

    chips: int
    of: dict[int, list[int]] = field(default_factory=dict)     # id(node) -> chips (several: split by columns)
    resident: list[float] = field(default_factory=list)        # bytes per chip
    kv: list[float] = field(default_factory=list)              # KV-cache bytes per chip
    own_chips: bool = False                                    # every layer starts on a chip of its own
    first_layer_chip: dict[int, int] = field(default_factory=dict)   # layer -> its first chip
    kv_nodes: set[int] = field(default_factory=set)            # id(node) of nodes holding a KV cache
    kv_only: int = 0                                           # chips holding positions past the window
    window: Window = field(default_factory=Window)             # the KV positions the layout holds
    remote_keys: int = 0                                       # keys a KV-only chip attends over


@dataclass(frozen=True)
class DataflowLayout:
    """What a step was priced on (``DataflowModel.price_layout``): the partition, the static
    schedule of the chosen micro-batch count and its pipeline figures."""

    partition: Partition
    schedule: Schedule
    pipeline: dict[str, Any]


@dataclass(frozen=True)
class _Step:
    """What lowering and scheduling one step reads besides the nodes' work."""

    part: Partition
    whole: dict[int, NodeWork]          # id(node) -> the whole step's work (flops and bytes of the records)
    microbatches: int = 1               # a micro-batch sends 1/k of each activation between chips
    chunks: bool = False                # prefill: the micro-batches are chunks of the prompt


class DataflowModel(SpatialModel):
    """Static list schedule over the LPU's functional units, model partitioned across chips' SRAM."""

    family = "dataflow"
    mechanism = ("the compiled static schedule: vectors streaming through each chip's MXM/VXM pipelines and "
                 "chip-to-chip hops, not SRAM bandwidth")
    device_word = "chip"
    description = "deterministic dataflow (Groq LPU): SRAM-resident partition, cycle-exact list schedule, C2C"
    schema: ClassVar[Mapping[str, Mapping[str, Field]]] = {
        "array": {
            "vector_bytes": Field("int", 320, "bytes of one stream vector (320 lanes x 1 byte)"),
            "install_streams": Field("int", 32, "stream vectors per cycle that carry weights into the MXM"),
            "switch_streams": Field("int", 16, "stream vectors per cycle through the switch (SXM)"),
            "operand_streams": Field("int", 32, "stream vectors per cycle feeding the vector unit"),
            "c2c_links": Field("int", 16, "chip-to-chip links per chip"),
            "chips_per_node": Field("int", 8, "chips fewer than this apart are one hop; farther chips two"),
            "activation_reserve": Field("size", 16 * 2 ** 20, "SRAM per chip kept for activations and buffers"),
        },
        "overheads": {
            "mxm_latency": Field("int", 100, "cycles from a vector entering the MXM to its result leaving"),
            "vxm_latency": Field("int", 20, "pipeline cycles of a vector-unit op"),
            "mem_latency": Field("int", 10, "cycles of an SRAM read/write op"),
            "sxm_latency": Field("int", 20, "pipeline cycles of a switch op"),
            "c2c_latency": Field("time", 5e-7, "one chip-to-chip hop"),
        },
    }
    option_fields: ClassVar[Mapping[str, Field]] = {
        "replicate": Field("bool", True, "schedule one layer and replicate it for large models of identical layers"),
        "spread": Field("bool", True, "also compile a layer spanning several chips with its independent products on "
                                      "different chips, and keep whichever layout's step is faster (off: packing by "
                                      "bytes only)"),
    }

    def __init__(self, target, **options: Any):
        super().__init__(target, **options)
        t = self.target
        if not t.clock_hz:
            raise TargetError(f"{t.source}: clock: the dataflow family needs the chip clock (cycles are exact)")
        mats = t.units_of("matrix")
        if not mats:
            raise TargetError(f"{t.source}: units: the dataflow family needs a matrix unit (kind = \"matrix\")")
        self.mxm = mats[0]
        self.plane = tuple(self.mxm.shape) if len(self.mxm.shape) == 2 else (320, 320)
        vec = t.units_of("vector")
        self.vxm = vec[0] if vec else None
        self.clock = t.clock_hz
        self.sram = t.device_memory
        a = t.array
        self.vbytes = int(a["vector_bytes"])
        self.install_bpc = int(a["install_streams"]) * self.vbytes
        self.switch_bpc = int(a["switch_streams"]) * self.vbytes
        self.operand_bpc = int(a["operand_streams"]) * self.vbytes
        self.mem_bpc = self.sram.bandwidth / self.clock
        self.link = t.interconnect[0] if t.interconnect else None
        self.capacity = {"mxm": 1, "vxm": 1, "mem": 1, "sxm": 1, "c2c": max(1, int(a["c2c_links"]))}
        self.geometry_peak = self.mxm.count * self.plane[0] * self.plane[1] * 2.0 * self.clock

    def _estimate(self, graph: Graph, companion: Estimate | None, analysis: GraphAnalysis | None,
                  widen: bool | int = False) -> Estimate:
        """The estimate with the weights as they stand or (``widen``) widened to 16-bit at load."""
        est, layout = self.estimate_layout(graph, companion=companion, analysis=analysis, widen=widen)
        part, sched, pipe = layout.partition, layout.schedule, layout.pipeline
        busiest = max(range(part.chips), key=lambda c: part.resident[c])
        est.time_s = pipe["step_cycles"] / self.clock     # the micro-batch makespan + (k-1) bottleneck turns
        est = finish_estimate(self, graph, est, companion, devices=part.chips,
                              weights=part.resident[busiest] - part.kv[busiest], kv=part.kv[busiest],
                              capacity=self._usable(),
                              note=f"partitioned across {part.chips} chip(s) of "
                                   f"{format_quantity(self.sram.capacity, 'size')} SRAM",
                              detail={"schedule": sched.summary(), "pipeline": dict(pipe)}, widen=widen,
                              kv_only=part.kv_only)
        est.schedule = sched            # the full op list: --schedule / --gantt
        return est

    def _usable(self) -> float:
        return self.sram.capacity * float(self.target.efficiency.get("capacity_usable", 1.0)) \
            - float(self.target.array["activation_reserve"])

    # ----------------------------------------------------------------- partition
    def place(self, graph: Graph, widen: bool | int = False) -> Partition:
        """The partition by bytes (``partition`` without works)."""
        return self.partition(graph, widen)

    def partition(self, graph: Graph, widen: bool | int = False, works: dict[int, NodeWork] | None = None) -> Partition:
        """Place resident bytes (weights, KV cache; ``widen``: weights widened to 16-bit) on chips;
        see the module docstring. Without ``works``: packing by bytes. With ``works`` (id(node) ->
        its step's work): a layer spanning several chips is placed for latency on the chips its
        bytes need (``_spread``); ``price_layout`` prices both and keeps the faster step."""
        cap = self._usable()
        if cap <= 0:
            raise TargetError(f"target {self.target.name}: array.activation_reserve leaves no SRAM for weights")
        part = Partition(0)
        raw = resident_bytes(graph, widen)
        res, part.window = sized_for_window(raw, graph, cap * self.target.max_devices)
        resident = {k: w + kv for k, (w, kv) in res.items()}
        kv_of = {k: kv for k, (_, kv) in res.items()}
        part.kv_nodes = {k for k, kv in kv_of.items() if kv > 0}
        # at least this many chips hold the resident bytes: when it is already more than the
        # interconnect joins, say so before placing (a batch of 10^6 would place 10^9 chips)
        self._check_chips(graph, math.ceil(sum(resident.values()) / cap))
        blocks = layer_blocks(graph)
        layer_bytes = [sum(resident.get(id(n), 0.0) for n in nodes) for key, nodes in blocks if key is not None]
        big_layers = bool(layer_bytes) and max(layer_bytes) > cap

        chip = -1
        room = 0.0
        spreads: dict = {}

        def new_chip() -> None:
            nonlocal chip, room
            chip += 1
            room = cap
            part.resident.append(0.0)
            part.kv.append(0.0)

        def place(n: Node) -> None:
            nonlocal room
            b = resident.get(id(n), 0.0)
            if chip < 0:
                new_chip()
            if b <= room:
                part.of[id(n)] = [chip]
                part.resident[chip] += b
                part.kv[chip] += kv_of.get(id(n), 0.0)
                room -= b
                return
            if b <= cap:
                new_chip()
                place(n)
                return
            parts = math.ceil(b / cap)          # split by output columns over chips of its own
            chips = []
            for _ in range(parts):
                new_chip()
                chips.append(chip)
                part.resident[chip] += b / parts
                part.kv[chip] += kv_of.get(id(n), 0.0) / parts
                room -= b / parts
            part.of[id(n)] = chips

        for key, nodes in blocks:
            size = sum(resident.get(id(n), 0.0) for n in nodes)
            if key is not None and big_layers:
                new_chip()                       # every layer starts on a fresh chip: identical layouts
                first = part.first_layer_chip[key] = chip
                for n in nodes:
                    place(n)
                packed = {n: [c - first for c in part.of[id(n)]] for n in nodes}
                sig = tuple((id(works.get(id(n))), resident.get(id(n)), tuple(packed[n])) for n in nodes) \
                    if works else None
                if sig not in spreads:           # identical layers: placed once
                    spreads[sig] = self._spread(nodes, resident, cap, packed, works) if works else None
                if spreads[sig] is not None:     # the same chips, placed for latency
                    of, loads = spreads[sig]
                    part.resident[first:] = loads
                    part.kv[first:] = [0.0] * len(loads)
                    for i, n in enumerate(nodes):
                        local = of[i]
                        part.of[id(n)] = [first + c for c in local]
                        for c in local:
                            part.kv[first + c] += kv_of.get(id(n), 0.0) / len(local)
                    room = cap - loads[-1]
                continue
            if key is not None and size > room:
                new_chip()                       # whole layers per chip when they fit one
            if key is not None:
                part.first_layer_chip.setdefault(key, max(chip, 0))
            for n in nodes:
                place(n)
        part.chips = chip + 1 if chip >= 0 else 1
        if not part.resident:
            part.resident, part.kv = [0.0], [0.0]
        # a step past the layout's window: its further positions on KV-only chips (``Window``)
        extra = part.window.devices(cap)
        self._check_chips(graph, part.chips + extra)     # before a list per chip is built
        part.kv_only = extra
        for _ in range(extra):
            part.resident.append(part.window.overflow_bytes / extra)
            part.kv.append(part.window.overflow_bytes / extra)
        part.chips += extra
        part.remote_keys = part.window.remote_keys(raw, cap)
        part.own_chips = big_layers
        self._check_chips(graph, part.chips)
        return part

    def _spread(self, nodes: list[Node], resident: dict[int, float], cap: float,
                packed: dict[Node, list[int]], works: dict[int, NodeWork]) -> tuple[list[list[int]],
                                                                                    list[float]] | None:
        """A layer's nodes placed for latency on the chips that packing by bytes (``packed``:
        node -> local chips) needs: products that do not read each other's results (Q/K/V,
        gate/up) go to different chips when room allows, the largest placed first, and nodes
        without resident bytes go where they would finish first. Packing by bytes alone lets a
        KV cache that grows with batch decide which products share a chip's MXM, so the layer's
        parallelism came and went with batch. This is a candidate: ``price_layout`` estimates the
        whole step on it and on packing and keeps the faster. Returns each node's local chips and
        the bytes per local chip; None: no such layout fits, or it is packing's."""
        budget = 1 + max(c for cs in packed.values() for c in cs)
        size = {n: resident.get(id(n), 0.0) for n in nodes}
        parts = {n: math.ceil(b / cap) for n, b in size.items() if b > cap}
        local = budget - sum(parts.values())
        made = {id(v): n for n in nodes for v in n.outputs}
        before: dict[Node, set[Node]] = {}       # the layer's nodes each node reads through
        for n in nodes:
            before[n] = set().union(*(before[m] | {m} for v in n.inputs if v is not None
                                      for m in [made.get(id(v))] if m is not None))
        on: list[list[Node]] = [[] for _ in range(local)]
        loads = [0.0] * local
        for n in sorted((n for n in nodes if 0 < size[n] <= cap), key=lambda n: -size[n]):
            fits = [c for c in range(local) if loads[c] + size[n] <= cap]
            apart = [c for c in fits if all(m in before[n] or n in before[m] for m in on[c])]
            if not fits:
                return None
            c = (apart or fits)[0]
            on[c].append(n)
            loads[c] += size[n]
        of = {n: [c] for c, ns in enumerate(on) for n in ns}
        for n, k in parts.items():
            of[n] = list(range(len(loads), len(loads) + k))
            loads += [size[n] / k] * k
        self._place_unpinned(nodes, of, works)
        if all(of.get(n) == packed[n] for n in nodes):
            return None
        return [of.get(n, [0]) for n in nodes], loads

    def _place_unpinned(self, nodes: list[Node], of: dict[Node, list[int]], works: dict[int, NodeWork]) -> None:
        """Add the nodes missing from ``of`` (no resident bytes) where a rough layer timeline on the
        chips ``of`` gives the others would finish them first: each node starts
        when its inputs have arrived and its chip is idle (one node at a time per chip; it ignores
        micro-batching and unit overlap, so it never chooses between layouts: ``price_layout``)."""
        free: dict[int, int] = {}
        ready: dict[int, tuple[int, int | None]] = {}      # id(value) -> (cycle, chip)
        chips = sorted({c for cs in of.values() for c in cs})
        memo: dict[tuple[int, int], int] = {}

        def finish(n: Node, w: NodeWork, cs: list[int]) -> int:
            key = (id(w), len(cs))
            if key not in memo:
                memo[key] = sum(o.cycles for o in self.lower(self._split(w, len(cs))))
            start = 0
            for c in cs:
                start = max(start, free.get(c, 0))
                for v in n.inputs:
                    at, src = ready.get(id(v), (0, None)) if v is not None else (0, None)
                    start = max(start, at + (self._transfer_cycles(value_bytes(v), src, c)
                                             if src is not None and src != c else 0))
            return start + memo[key]

        for n in nodes:
            w = works.get(id(n))
            if w is None or n.spec.category in FREE_CATEGORIES or w.kernels == 0:
                done = max((ready.get(id(v), (0, None)) for v in n.inputs if v is not None),
                           default=(0, None), key=lambda r: r[0])
            else:
                if n not in of:
                    of[n] = [min(chips, key=lambda c: (finish(n, w, [c]), c))]
                end = finish(n, w, of[n])
                for c in of[n]:
                    free[c] = end
                done = (end, of[n][0])
            for v in n.outputs:
                ready[id(v)] = done

    def _check_chips(self, graph: Graph, chips: int) -> None:
        if chips > self.target.max_devices:
            name = model_name(graph)
            raise TargetError(f"{name} fits no device count of {self.target.name}: it needs {chips} chips of "
                              f"{format_quantity(self.sram.capacity, 'size')} SRAM for its weights and KV cache; the "
                              f"interconnect joins at most {self.target.max_devices}")

    # ----------------------------------------------------------------- lowering
    def _mxm_peak(self, dt: str) -> tuple[str, float]:
        peak = self.mxm.peak
        if dt in peak:
            return dt, peak[dt]
        if _bits(dt) <= 8 and "i8" in peak and not dt.startswith("f8"):
            return "i8", peak["i8"]
        # fp8 / bf16 / f32 without a listed rate run on the 16-bit path (f32: 2 passes, assumption)
        key = "f16" if "f16" in peak else min(peak, key=peak.get)
        return (key, peak[key] / 2) if dt == "f32" else (key, peak[key])

    def lower(self, w: NodeWork) -> list[UnitOp]:
        """The unit ops of one node's (per-chip share of) work."""
        if w.kernels == 0:
            return []
        ov = self.target.overheads
        ops: list[UnitOp] = []
        rows, cols = self.plane
        frac = w.causal_fraction if w.traffic is not None else 1.0     # a tile record's skipped blocks
        for c in w.contractions:
            key, peak = self._mxm_peak(c.dtype)
            passes = math.ceil(c.k / rows) * math.ceil(c.n / cols) * c.m * c.batch
            compute = math.ceil(passes * self.geometry_peak / peak / self.mxm.count * frac)
            b_bytes = c.batch * c.k * c.n * (_bits(c.b_dtype) / 8)
            install = math.ceil(b_bytes / self.install_bpc)
            cyc = int(ov["mxm_latency"]) + max(compute, install)
            bound = "memory" if install > compute else "compute"
            ops.append(UnitOp("matmul", "mxm", cyc, bound, {"role": c.role, "mnk": [c.m, c.n, c.k], "batch": c.batch,
                                                       "install_cycles": install, "compute_cycles": compute,
                                                       "unit": f"mxm:{key}", "bytes": b_bytes}))
            if c.role == "attention.qk" and w.vector_flops:
                ops.append(self._vector(w.vector_flops, 0.0))      # softmax between the two products
        vec = w.vector_flops if not any(c.role == "attention.qk" for c in w.contractions) else 0.0
        vec += w.converts + sum(c.b_prologue.flops + c.b_prologue.converts + c.a_prologue.flops
                                + c.a_prologue.converts for c in w.contractions)
        if w.contractions:
            if vec:
                ops.append(self._vector(vec, 0.0))
            merge = int(w.detail.get("kv_merge_cycles", 0))
            if merge:
                # partial attention from the KV-only chips, merged after a round trip (``Window``)
                ops.append(UnitOp("merge", "vxm", merge, "communication", {"unit": "vxm", "kv_merge": True}))
            return self._tile_floor(w, ops)
        nbytes = w.device_bytes
        if w.op == "Gather" or w.category == "other":
            cyc = int(ov["mem_latency"]) + math.ceil(sum(w.out_bytes) / self.mem_bpc)
            return [UnitOp("memory", "mem", cyc, "memory", {"unit": "mem", "bytes": sum(w.out_bytes)})]
        if w.category == "movement":
            cyc = int(ov["sxm_latency"]) + math.ceil(nbytes / self.switch_bpc)
            return [UnitOp("switch", "sxm", cyc, "memory", {"unit": "sxm", "bytes": nbytes})]
        return [self._vector(vec, nbytes)]

    def _tile_floor(self, w: NodeWork, ops: list[UnitOp]) -> list[UnitOp]:
        """A tile record's SRAM traffic cannot move faster than the SRAM reads: stretch the
        node's longest op to it when its ops are shorter."""
        if w.traffic is None or not ops:
            return ops
        need = math.ceil(w.bytes_at(self.sram.name).get(self.sram.name, 0.0) / self.mem_bpc)
        have = sum(o.cycles for o in ops)
        if need > have:
            i = max(range(len(ops)), key=lambda k: ops[k].cycles)
            o = ops[i]
            ops[i] = o._replace(cycles=o.cycles + need - have, bound="memory",
                                info={**o.info, "tile_sram_cycles": need})
        return ops

    def _vector(self, flops: float, nbytes: float) -> UnitOp:
        per_cycle = (self.vxm.peak.get("f32") or max(self.vxm.peak.values())) / self.clock if self.vxm else 1.0
        compute = math.ceil(flops / per_cycle)
        stream = math.ceil(nbytes / self.operand_bpc)
        cyc = int(self.target.overheads["vxm_latency"]) + max(compute, stream)
        return UnitOp("vector", "vxm", cyc, "compute" if compute >= stream else "memory",
                {"unit": f"{self.vxm.name if self.vxm else 'vxm'}", "bytes": nbytes})

    def _split(self, w: NodeWork, parts: int) -> NodeWork:
        """One chip's share of a node split by output columns across ``parts`` chips."""
        if parts <= 1:
            return w
        return replace(w, contractions=tuple(c.split("n", parts) for c in w.contractions),
                       vector_flops=w.vector_flops / parts, converts=w.converts / parts,
                       in_bytes=tuple(b / parts for b in w.in_bytes), out_bytes=tuple(b / parts for b in w.out_bytes),
                       extra_bytes=w.extra_bytes / parts, weight_bytes=w.weight_bytes / parts, flops=w.flops / parts)

    def _transfer_cycles(self, nbytes: float, src: int, dst: int) -> int:
        # the compiler numbers chips along the pipeline so that chips fewer than a node apart are
        # directly linked (a node is all-to-all; its 16 links also reach the next nodes)
        per = int(self.target.array["chips_per_node"]) or 1
        hops = 1 if abs(dst - src) < per else 2
        lat = float(self.target.overheads["c2c_latency"]) * hops
        bw = self.link.bandwidth if self.link else 1e9
        return max(1, math.ceil(lat * self.clock + nbytes / bw * self.clock))

    # ----------------------------------------------------------------- the schedule
    def price_layout(self, graph: Graph, plan: ParallelPlan, analysis: GraphAnalysis,
                     widen: bool | int = False) -> tuple[list[NodeCost], DataflowLayout]:
        """The records of the step (``widen``: int8/int4 weights widened to 16-bit at load) and
        the partition, schedule and micro-batch pipeline they come from."""
        nodes = list(analysis.nodes)
        works = self.step_works(analysis, widen)
        packed = self.partition(graph, widen)
        # records are built only for the layout and micro-batch count that win (the losers' were
        # half of a groq estimate's time)
        best = self._price_on(graph, nodes, works, packed)
        if self.options["spread"]:
            # the compiler compiles the step on both layouts and keeps the faster: the choice is
            # made by the estimate that is reported, so it is never slower than packing. The nodes
            # after the last layer fill what room its last chip leaves, which differs by layout: a
            # layout that would need more chips than packing is not one the compiler gets
            spread = self.partition(graph, widen, works)
            if spread.of != packed.of and spread.chips <= packed.chips:
                other = self._price_on(graph, nodes, works, spread)
                if other[1].pipeline["step_cycles"] < best[1].pipeline["step_cycles"]:
                    best = other
        return best[0](), best[1]

    def _price_on(self, graph: Graph, nodes: list[Node], works: dict[int, NodeWork],
                  part: Partition) -> tuple[Callable[[], list[NodeCost]], DataflowLayout]:
        """The layout of the step on partition ``part`` (the fastest micro-batch count) and a
        function that builds its records."""
        whole = works
        if part.window.overflows:
            works = self._local_attention(works, part)
        meta = llm_meta(graph)
        rows = meta.get("phase") == "prefill"
        counts = _microbatch_counts(meta)
        tried: dict[int, tuple] = {}

        def step_at(i: int) -> tuple:
            k = counts[i]
            if k not in tried:
                sched, records = self._schedule(nodes, _microbatched(works, k, rows), _Step(part, whole, k, rows))
                bottleneck = _bottleneck(sched, self.capacity)
                tried[k] = (sched.makespan + (k - 1) * bottleneck, k, bottleneck, sched, records)
            return tried[k]

        # the step is unimodal in k (more micro-batches: a shorter fill, more re-installs): climb
        # from the count whose chunks balance a weight tile's install with its passes (prefill)
        i = self._balanced_start(counts, meta) if rows else 0
        while i + 1 < len(counts) and step_at(i + 1)[0] < step_at(i)[0]:
            i += 1
        while i > 0 and step_at(i - 1)[0] < step_at(i)[0]:
            i -= 1
        step, k, bottleneck, sched, make_records = step_at(i)
        sched.placement = {node_label(n): list(part.of[id(n)]) for n in nodes if id(n) in part.of
                           and works[id(n)].weight_bytes > 0}
        pipeline = {"microbatches": k, "microbatch_cycles": sched.makespan, "bottleneck_cycles": bottleneck,
                          "step_cycles": step, "bubble_fraction": 1.0 - k * bottleneck / step if step else 0.0}

        def records() -> list[NodeCost]:
            # each record's time is its increment of the schedule's end (they sum to the makespan);
            # the (k-1) further micro-batches stretch every node's share alike
            out, frontier = make_records(), 0
            stretch = step / sched.makespan if sched.makespan else 1.0
            for r in sorted(out, key=lambda r: r.detail.get("end_cycle", 0)):
                end = r.detail.get("end_cycle", 0)
                r.time_s = max(0, end - frontier) / self.clock * stretch
                frontier = max(frontier, end)
            return out
        return records, DataflowLayout(part, sched, pipeline)

    def _balanced_start(self, counts: list[int], meta: dict) -> int:
        """The index in ``counts`` whose prompt chunks have about as many rows as make a 16-bit
        weight tile's passes through the MXM take as long as installing it (where chunking stops
        paying): the search for the best count starts there."""
        rows, cols = self.plane
        key = "f16" if "f16" in self.mxm.peak else max(self.mxm.peak, key=self.mxm.peak.get)
        per_row = self.geometry_peak / self.mxm.peak[key] / self.mxm.count          # cycles per row and tile
        install = rows * cols * 2 / self.install_bpc
        tokens = int(meta.get("batch", 1) or 1) * int(meta.get("prompt", 1) or 1)
        want = tokens / max(1.0, install / per_row)
        return min(range(len(counts)), key=lambda j: abs(math.log2(counts[j]) - math.log2(max(1.0, want))))

    def _local_attention(self, works: dict[int, NodeWork], part: Partition) -> dict[int, NodeWork]:
        """Past the window, the layout's attention reads the window's keys and waits for the
        KV-only chips' partial results: a round trip of the query and the partial output to a chip
        of another node, and whatever longer the remote share takes (``Window``)."""
        far = int(self.target.array["chips_per_node"]) or 1     # assumption: KV-only chips sit in other nodes

        def local(w: NodeWork) -> NodeWork:
            near = at_keys(w, part.window.positions)
            if near is w:
                return w
            remote = at_keys(w, max(1, part.remote_keys))
            wait = sum(o.cycles for o in self.lower(remote)) - sum(o.cycles for o in self.lower(near))
            trip = self._transfer_cycles(w.in_bytes[0] if w.in_bytes else 0.0, 0, far) + \
                self._transfer_cycles(w.out_bytes[0] if w.out_bytes else 0.0, 0, far)
            return replace(near, detail={**near.detail, "kv_merge_cycles": trip + max(0, wait)})

        return map_works(works, local, part.kv_nodes)

    def _schedule(self, nodes: list[Node], works: dict[int, NodeWork],
                  step: _Step) -> tuple[Schedule, Callable[[], list[NodeCost]]]:
        """The list schedule of one (micro-)batch and a function that builds its records (flops and
        bytes of the whole step)."""
        result = self._replicated(nodes, works, step) if self.options["replicate"] and step.part.own_chips \
            else None
        if result is not None:
            return result
        ops, _ = self._ops(nodes, works, step)
        makespan = list_schedule(ops, self.capacity)
        sched = Schedule(self.target.name, self.clock, step.part.chips, self.capacity, ops, makespan)
        return sched, lambda: self._records(nodes, works, ops, step)

    def _ops(self, nodes: list[Node], works: dict[int, NodeWork], step: _Step, *,
             first_id: int = 0, inputs: dict[int, list[tuple[int, int]]] | None = None) -> tuple[list[Op], dict]:
        """Ops for ``nodes`` in order. ``inputs`` maps id(value) -> [(op id, chip)] for values
        produced outside ``nodes``; returns the ops and id(value) -> the ops producing it."""
        ops: list[Op] = []
        out_ops: dict[int, list[tuple[int, int]]] = dict(inputs or {})   # id(value) -> [(op id, chip)]
        sent: dict[tuple[int, int, int], int] = {}                      # (id(value), part op, dst) -> send op
        lowered_cache: dict[tuple[int, int], list] = {}
        part, k_mb = step.part, step.microbatches
        cur_chip = 0
        for n in nodes:
            w = works[id(n)]
            if n.spec.category in FREE_CATEGORIES or w.kernels == 0:
                # views produce no op: their outputs are their input's
                src = next((out_ops[id(v)] for v in n.inputs if v is not None and id(v) in out_ops), [])
                for v in n.outputs:
                    out_ops[id(v)] = src
                continue
            chips = part.of.get(id(n)) or [cur_chip]
            cur_chip = chips[-1]
            if k_mb > 1 and id(n) in part.kv_nodes and len(chips) > 1 and not step.chunks:
                # a KV cache split over chips is split by sequence: a micro-batch's attention
                # runs on the chips that hold its own sequences' keys and values (a chunk of a
                # prompt reads the keys of every chunk before it: all of them)
                chips = chips[:max(1, math.ceil(len(chips) / k_mb))]
            parts = len(chips)
            lowered = lowered_cache.get((id(w), parts))
            if lowered is None:
                lowered = lowered_cache[(id(w), parts)] = self.lower(self._split(w, parts))
            layer = n.meta.get("layer") if isinstance(n.meta.get("layer"), int) else None
            label = node_label(n)
            finals = []
            for pi, chip in enumerate(chips):
                deps: list[int] = []
                for v in n.inputs:
                    if v is None or id(v) not in out_ops:
                        continue
                    producers = out_ops[id(v)]
                    for op_id, src_chip in producers:
                        if src_chip == chip:
                            deps.append(op_id)
                            continue
                        k = (id(v), op_id, chip)
                        if k not in sent:
                            vb = value_bytes(v) / max(1, len(producers)) / k_mb
                            sid = first_id + len(ops)
                            ops.append(Op(sid, f"send {v.name} {src_chip}->{chip}", "send", "transfer", "c2c",
                                          src_chip, self._transfer_cycles(vb, src_chip, chip), (op_id,), dst=chip,
                                          layer=layer, bound="communication", value=v.name))
                            sent[k] = sid
                        deps.append(sent[k])
                prev = None
                for kind, unit, cyc, bound, _info in lowered:
                    oid = first_id + len(ops)
                    d = tuple(sorted(set(deps))) if prev is None else (prev,)
                    ops.append(Op(oid, label, n.op, kind, unit, chip, cyc, d, layer=layer, bound=bound,
                                  part=(pi, parts)))
                    prev = oid
                if prev is not None:
                    finals.append((prev, chip))
            for v in n.outputs:
                out_ops[id(v)] = finals
        return ops, out_ops

    def _replicated(self, nodes: list[Node], works: dict[int, NodeWork],
                    step: _Step) -> tuple[Schedule, Callable[[], list[NodeCost]]] | None:
        """Schedule each run of identical layers (one form: same works, same chips per layer; a
        partly widened model has two) from three of its layers and replicate the third (models of
        identical layers on chips of their own). Each run's first three layers, with whatever
        precedes them since the last run, are lowered and list-scheduled exactly; its third layer
        must come out as its second shifted by ``shift`` cycles and the run's chip stride, and its
        further layers are then the third shifted again (their ops are built only when the
        schedule is exported; their records are renamed copies); the post-layer nodes are
        list-scheduled after the last layer. None (schedule everything) when the model is small or
        its layers are not laid out alike."""
        pre, layers, post = _split_layers(nodes)
        L = len(layers)
        firsts = step.part.first_layer_chip
        if L < 4 or len(firsts) != L:
            return None
        sig = [tuple(id(works[id(n)]) for n in layer) for layer in layers]
        # runs of one form: equal works and an equal chip stride from each layer to the next
        runs, s = [], 0
        for j in range(1, L + 1):
            if j == L or sig[j] != sig[s] or (j - s >= 2 and firsts[j] - firsts[j - 1] != firsts[s + 1] - firsts[s]):
                runs.append((s, j))
                s = j
        # (first op id, exact ops, their nodes) of each exact piece; of each replicated run (first copy
        # id, block ops, shift, copies, first layer, end layer, chip stride, dep_of)
        pieces: list[tuple[int, list[Op], list[Node]]] = []
        blocks: list[tuple[int, list[Op], int, int, int, int, int, Callable[[int, int], int]]] = []
        outs: dict[int, list[tuple[int, int]]] = {}
        busy_until: dict[tuple[int, str], int] = {}
        # each (chip, unit)'s busy cycles, copies included: the last layer's chips also run the post-layer nodes
        chip_busy: dict[tuple[int, str], int] = {}
        nid = 0

        def end_of(op_id: int) -> int:          # the end cycle of any op, copies included
            for base, ops, _ in reversed(pieces):
                if op_id >= base:
                    if op_id - base < len(ops):
                        return ops[op_id - base].end
                    break
            for base, block, shift, copies, *_ in reversed(blocks):
                if base <= op_id < base + copies * len(block):
                    j, k = divmod(op_id - base, len(block))
                    return block[k].end + (j + 1) * shift
            raise RidgelineError(f"schedule: op {op_id} is in no piece")

        def schedule_piece(piece_nodes: list[Node]) -> list[Op]:
            nonlocal nid, outs
            ops, outs = self._ops(piece_nodes, works, step, first_id=nid, inputs=outs)
            list_schedule(ops, self.capacity, external_end=end_of if pieces else None, busy_until=busy_until)
            for o in ops:
                busy_until[(o.chip, o.unit)] = max(busy_until.get((o.chip, o.unit), 0), o.end)
                chip_busy[(o.chip, o.unit)] = chip_busy.get((o.chip, o.unit), 0) + o.cycles
            pieces.append((nid, ops, piece_nodes))
            nid += len(ops)
            return ops

        pending = list(pre)
        for s, e in runs:
            if e - s < 4:
                pending += [n for layer in layers[s:e] for n in layer]
                continue
            piece_nodes = pending + layers[s] + layers[s + 1] + layers[s + 2]
            ops = schedule_piece(piece_nodes)
            pending = []
            span: dict[int, list[int]] = {}
            for k, o in enumerate(ops):
                if o.layer in (s + 1, s + 2):
                    span.setdefault(o.layer, [k, k + 1])[1] = k + 1
            (b1s, b1e), (b2s, b2e) = span.get(s + 1, (0, 0)), span.get(s + 2, (0, 0))
            size = b2e - b2s
            stride = firsts[s + 2] - firsts[s + 1]
            if not size or b1e - b1s != size or b2e != len(ops) or b1e != b2s or stride <= 0:
                return None
            shift = ops[b2s].start - ops[b1s].start
            for a, b in zip(ops[b1s:b2s], ops[b2s:]):
                if (b.start - a.start, b.chip - a.chip, b.cycles, b.unit, b.kind) != (shift, stride, a.cycles, a.unit,
                                                                                      a.kind):
                    return None
            block, base, copies = ops[b2s:], nid, e - s - 3
            first = pieces[-1][0]

            def dep_of(d: int, j: int, base=base, size=size, b1=first + b1s, b2=first + b2s) -> int:
                # a block op's dependency, in copy j (0: the run's fourth layer)
                if d >= b2:
                    return base + j * size + d - b2
                return base + (j - 1) * size + d - b1 if d >= b1 else d

            blocks.append((base, block, shift, copies, s, e, stride, dep_of))
            nid += copies * size
            last: dict[tuple[int, str], int] = {}
            per: dict[tuple[int, str], int] = {}
            for o in block:
                last[(o.chip, o.unit)] = max(last.get((o.chip, o.unit), 0), o.end)
                per[(o.chip, o.unit)] = per.get((o.chip, o.unit), 0) + o.cycles
            for (chip, unit), end in last.items():
                for j in range(1, copies + 1):
                    key = (chip + j * stride, unit)
                    busy_until[key] = max(busy_until.get(key, 0), end + j * shift)
                    chip_busy[key] = chip_busy.get(key, 0) + per[(chip, unit)]
            # the run's last layer's outputs come from its copy's ops
            for x, y in zip(layers[s + 2], layers[e - 1]):
                for va, vb in zip(x.outputs, y.outputs):
                    if id(va) in outs:
                        outs[id(vb)] = [(dep_of(op, copies - 1), chip + copies * stride) for op, chip in outs[id(va)]]
        if not blocks or nid <= REPLICATE_ABOVE:
            return None
        schedule_piece(pending + post)
        makespan = max([o.end for _, ops, _ in pieces for o in ops]
                       + [max(o.end for o in b[1]) + b[3] * b[2] for b in blocks])
        busy: dict[str, int] = {}
        for (_, unit), cycles in chip_busy.items():
            busy[unit] = busy.get(unit, 0) + cycles

        def copy_maps(s: int, j: int) -> tuple[dict[str, str], dict[str, str]]:
            # node and value names of layer j, a copy of its run's third layer (s + 2)
            return ({node_label(x): node_label(y) for x, y in zip(layers[s + 2], layers[j])},
                    _value_names(layers[s + 2], layers[j]) | _value_names(layers[s + 1], layers[j - 1]))

        def expand() -> list[Op]:
            out: list[Op] = []
            for i, (_, ops, _) in enumerate(pieces):
                out += ops
                if i >= len(blocks):
                    continue
                base, block, shift, copies, s, _, stride, dep_of = blocks[i]
                for c in range(copies):
                    j = s + 3 + c
                    nodes_j, values_j = copy_maps(s, j)
                    cs, ts = (c + 1) * stride, (c + 1) * shift
                    for k, o in enumerate(block):
                        v = values_j.get(o.value, o.value) if o.kind == "transfer" else None
                        name = f"send {v} {o.chip + cs}->{o.dst + cs}" if v is not None else nodes_j.get(o.node, o.node)
                        out.append(Op(base + c * len(block) + k, name, o.op, o.kind, o.unit, o.chip + cs, o.cycles,
                                      tuple(dep_of(d, c) for d in o.deps), None if o.dst is None else o.dst + cs, j,
                                      o.bound, o.part, o.start + ts, v))
            return out

        sched = Schedule(self.target.name, self.clock, step.part.chips, self.capacity, [], makespan,
                         replicated={"block": ", ".join(f"layer {b[4] + 2}" for b in blocks),
                                     "copies": sum(b[3] for b in blocks), "forms": len(blocks),
                                     "exact": "the first three layers of each run of identical layers, what "
                                              "precedes them and the post-layer nodes are list-scheduled; a run's "
                                              "further layers are its third shifted"},
                         expand=expand, stats={"ops": nid, "busy": busy})
        sched.chip_busy = chip_busy

        def records() -> list[NodeCost]:
            out: list[NodeCost] = []
            for i, (_, ops, piece_nodes) in enumerate(pieces):
                recs = self._records(piece_nodes, works, ops, step)
                out += recs
                if i >= len(blocks):
                    continue
                _, _, shift, _, s, e, stride, _ = blocks[i]
                block_recs = [r for r in recs if r.layer == s + 2]
                for j in range(s + 3, e):
                    names, values = copy_maps(s, j)
                    cs, ts = (j - s - 2) * stride, (j - s - 2) * shift
                    for r in block_recs:
                        d = dict(r.detail)
                        d["chips"] = [c + cs for c in d["chips"]]
                        d["start_cycle"] += ts
                        d["end_cycle"] += ts
                        if r.category == "transfer":
                            d["value"] = values.get(d["value"], d["value"])
                            name = f"send %{d['value']}"
                        else:
                            name = names.get(r.name, r.name)
                        out.append(r.clone(name=name, layer=j, detail=d))
            return out
        return sched, records

    def _records(self, nodes: list[Node], works: dict[int, NodeWork], ops: list[Op], step: _Step) -> list[NodeCost]:
        """One record per node of ``nodes`` and one per value sent between chips (all its sends,
        to every chip that reads it) among ``ops``; times are set by ``price_graph``."""
        by_node: dict[str, list[Op]] = {}
        sends: dict[str, list[Op]] = {}
        for o in ops:
            if o.kind == "transfer":
                sends.setdefault(o.value or o.node, []).append(o)
            else:
                by_node.setdefault(o.node, []).append(o)
        records: list[NodeCost] = []
        for n in nodes:
            label = node_label(n)
            layer = n.meta.get("layer")
            w = step.whole.get(id(n), works[id(n)])      # the whole step's flops and bytes
            r = self._record(label, n.op, n.spec.category, w, by_node.pop(label, []), layer)
            if id(n) in step.part.kv_nodes:
                # the chips holding its cache read it (one micro-batch's ops run on a share of
                # them), and the keys past the window are read on the KV-only chips (the window's
                # share, not near/whole bytes: those are one micro-batch's and the step's)
                r.detail["chips"] = list(step.part.of.get(id(n)) or r.detail.get("chips") or [0])
                if step.part.window.overflows:
                    r.detail["far_share"] = 1.0 - step.part.window.positions / step.part.window.context
            records.append(r)
        for value, group in sends.items():
            r = self._record(f"send %{value}", "send", "transfer", None, group, group[0].layer)
            r.detail["value"] = value
            r.detail["sends"] = len(group)
            records.append(r)
        return records

    def _record(self, label: str, op: str, cat: str, w: NodeWork | None, ops: list[Op], layer) -> NodeCost:
        layer = layer if isinstance(layer, int) else None
        if not ops:
            return NodeCost(label, op, cat, 0.0, 0.0, {}, "overhead", layer=layer, detail={"kernels": 0})
        busy = {"compute": 0, "memory": 0, "communication": 0}
        for o in ops:
            busy[o.bound] += o.cycles
        bound = max(busy, key=busy.get)
        flops = (w.matrix_flops + w.vector_flops) if w is not None and w.contractions else (w.flops if w else 0.0)
        nbytes = w.bytes_at(self.sram.name) if w is not None else {}
        return NodeCost(label, op, cat, 0.0, flops, nbytes, bound, unit=ops[0].unit, roofline=bound,
                        compute_s=busy["compute"] / self.clock, memory_s=busy["memory"] / self.clock,
                        comm_s=busy["communication"] / self.clock, layer=layer,
                        detail={"kernels": 1, "chips": sorted({o.chip for o in ops}), "ops": len(ops),
                                "start_cycle": min(o.start for o in ops), "end_cycle": max(o.end for o in ops),
                                "busy_cycles": sum(o.cycles for o in ops)})


# --------------------------------------------------------------------------- micro-batches
def _microbatch_counts(meta: dict) -> list[int]:
    """Micro-batch counts to try, 1 first: in decode, powers of two dividing the batch (a
    sequence's one new token cannot be split); in prefill, powers of two up to the step's tokens
    (batch × prompt): the prompt streams through the chips' pipeline in chunks, as it does
    through any layer pipeline -- chunk j+1 enters layer 0's chips while chunk j is in layer 1's.
    A chunk's attention reads the keys of the chunks before it, whose KV the earlier chunks
    wrote on the same chips (the last chunk's share is rounded up). ``meta``: the graph's
    ``meta["llm"]``."""
    batch = meta.get("batch", 1) if isinstance(meta.get("batch", 1), int) else 1
    prompt = meta.get("prompt", 1) if isinstance(meta.get("prompt", 1), int) else 1
    tokens = batch * prompt if meta.get("phase") == "prefill" else 0
    out, k = [], 1
    while k <= batch and batch % k == 0 or 1 < k <= tokens:
        out.append(k)
        k *= 2
    return out


def _microbatched(works: dict[int, NodeWork], k: int, rows: bool = False) -> dict[int, NodeWork]:
    """Each node's work for one of ``k`` micro-batches (``microbatch_work``; ``rows``: chunks of
    the prompt): every micro-batch installs the weights again."""
    if k == 1:
        return works
    return map_works(works, lambda w: microbatch_work(w, k, rows=rows))


def _bottleneck(sched: Schedule, capacity: dict[str, int]) -> int:
    """Cycles the busiest (chip, unit) works per micro-batch: the pipeline's steady-state turn."""
    busy: dict[tuple[int, str], int] = getattr(sched, "chip_busy", None) or {}
    for o in sched.ops if not busy else ():
        busy[(o.chip, o.unit)] = busy.get((o.chip, o.unit), 0) + o.cycles
    return max((math.ceil(c / capacity.get(u, 1)) for (_, u), c in busy.items()), default=0)


# --------------------------------------------------------------------------- helpers
def _split_layers(nodes: list[Node]) -> tuple[list[Node], list[list[Node]], list[Node]]:
    """(nodes before the layers, the nodes of each layer 0..L-1, nodes after); ([], [], nodes)
    when the layers are not numbered 0..L-1 in order."""
    pre: list[Node] = []
    layers: list[list[Node]] = []
    post: list[Node] = []
    for n in nodes:
        layer = n.meta.get("layer")
        if isinstance(layer, int):
            if post or layer > len(layers) or layer < len(layers) - 1:
                return [], [], nodes
            if layer == len(layers):
                layers.append([])
            layers[layer].append(n)
        elif layers:
            post.append(n)
        else:
            pre.append(n)
    return pre, layers, post


def _value_names(a: list[Node], b: list[Node]) -> dict[str, str]:
    """Output value names of the nodes of ``a`` -> those of the corresponding nodes of ``b``."""
    return {va.name: vb.name for x, y in zip(a, b) for va, vb in zip(x.outputs, y.outputs)}


