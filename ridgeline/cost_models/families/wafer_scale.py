"""``wafer_scale``: Cerebras WSE — a wafer of PEs in a 2D mesh, each with its own SRAM, layers laid
out spatially, activations streaming over the fabric.

What the model does (every figure from the target file, ``wse-3.toml``):

1. **Placement.** A model's resident bytes (weights, KV cache) must sit in SRAM. When they fit
   ``efficiency.capacity_usable`` of one wafer it runs on one; otherwise its layers are cut into a
   pipeline of as many wafers as needed (consecutive layers, a transfer over the first
   ``[[interconnect]]`` between wafers). With ``placement="stream"`` (or when the pipeline would
   need more wafers than the system joins) the weights instead stream from MemoryX every step at
   ``array.memoryx_bandwidth`` — Cerebras' training mode, slow for decode.
2. **Regions in proportion to work.** Each node gets a rectangle of PEs: enough to hold its
   resident bytes (``array.pe_sram`` per PE), the rest of the wafer shared in proportion to the
   node's FLOPs (so every region finishes its share of a step at the same pace).
3. **Per-node latency on its region** (a ``side × side`` square of P PEs), in cycles at ``clock``:

   - a token's activation vector arrives **split over the region's ``side`` rows**, one wavelet
     stream per row (``array.wavelet_bits``-bit wavelets, one per cycle per link:
     ``k / side / values_per_wavelet`` cycles for k values), as the SDK's GEMV tutorials lay x
     over the PE grid; further tokens (batch, prefill) queue behind it on the same routes.
     ``-O vector_layout=route`` streams each token's vector on one route instead (``k /
     values_per_wavelet`` cycles; up to ``side`` tokens at once): the launch release's figures
     (Aug 2024: per-layer time growing with the hidden size) fit it, the Nov 2024 405B figure
     only the split layout;
   - its MACs run on the region's PEs (``array.fmac_per_pe`` 16-bit FMACs per PE per cycle, at
     the dtype's share of the listed peak) while the stream arrives;
   - crossing the region and reducing partial sums along its columns costs ``2·side`` hops of
     ``array.hop_cycles``, plus the partial sums streaming out.

   Contractions and normalizations (every output needs every input) are *blocking*: a token's
   latency through them is its whole input stream plus hops. Element-wise nodes stream through
   (``overheads.vector_latency``).
4. **The pipeline.** The step's latency is the critical path of the per-token latencies through
   the graph (parallel branches such as Q/K/V overlap) plus, when several tokens flow (batch,
   prefill), the busiest region's remaining occupancy (pipeline fill + bottleneck). A decode step
   at batch 1 is therefore bounded by the pipeline's depth and its streams, not by the SRAM's
   21 PB/s — which is what REFERENCE.md observes of SRAM machines.

Bounds: ``memory`` when a node waits on data movement (activations streaming over the fabric,
weights from MemoryX) — every decode node; ``compute`` when its region's MACs take longer (large
prefill GEMMs); ``communication`` for transfers between wafers. Node records are each node's
increment of the critical path (they sum to the step time). ``est.detail["layout"]`` lists the
wafers and the PEs per node.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

from ...ir import Graph, Node
from ...ir.errors import BackendError, TargetError
from ..estimate import Estimate, NodeCost
from ..llm import llm_meta, model_name
from ..model import GraphAnalysis
from ..parallel import ParallelPlan
from ..quantities import format_quantity
from ..spatial import (
    SpatialModel,
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
from ..work import FREE_CATEGORIES, NodeWork, node_label

__all__ = ["PLACEMENTS", "WaferScaleModel"]

PLACEMENTS = ("auto", "resident", "stream")
#: categories whose every output needs every input: a token waits for its whole stream
_BLOCKING = frozenset({"matmul", "attention", "normalization", "reduction"})


class WaferScaleModel(SpatialModel):
    """Spatial layout of the graph over the wafer's PEs; latency = the fabric pipeline's critical path."""

    family = "wafer_scale"
    description = "wafer-scale (Cerebras): SRAM-resident regions per node, fabric streams, layer pipeline over wafers"
    device_word = "wafer"
    mechanism = ("per-token latency through the fabric pipeline of layer regions (streams, hops, wafer "
                 "transfers), not SRAM bandwidth")
    schema: ClassVar[Mapping[str, Mapping[str, Field]]] = {
        "array": {
            "pes": Field("int", None, "processing elements on the wafer"),
            "pe_sram": Field("size", None, "SRAM per PE"),
            "fmac_per_pe": Field("int", 8, "16-bit fused multiply-adds per PE per cycle"),
            "wavelet_bits": Field("int", 32, "bits of one fabric message (wavelet); one per link per cycle"),
            "hop_cycles": Field("int", 1, "cycles for a wavelet to cross one PE's router"),
            "memoryx_bandwidth": Field("bandwidth", None, "weight-streaming bandwidth from MemoryX into the wafer"),
            "memoryx_capacity": Field("size", None, "MemoryX weight store"),
            "fabric_bandwidth": Field("bandwidth", None, "aggregate on-wafer fabric bandwidth (informational)"),
        },
        "overheads": {
            "vector_latency": Field("int", 10, "pipeline cycles of an element-wise op on a streaming vector"),
            "step": Field("time", 0.0, "once per step"),
        },
        "efficiency": {
            "matrix": Field("fraction", 1.0, "sustained share of the PEs' MAC rate"),
        },
    }
    option_fields: ClassVar[Mapping[str, Field]] = {
        "placement": Field("str", "auto", "auto | resident (weights in SRAM, wafers in a pipeline) | stream "
                           "(weights streamed from MemoryX each step)"),
        "vector_layout": Field("str", "rows", "rows: a token's vector arrives split over its region's rows "
                               "(the SDK's GEMV layout; Cerebras' Nov 2024 405B release) | route: on one fabric "
                               "route (what the Aug 2024 launch figures fit: per-layer time growing with the width)"),
    }

    def __init__(self, target, **options: Any):
        super().__init__(target, **options)
        t = self.target
        if self.options["vector_layout"] not in ("rows", "route"):
            raise BackendError(f"option vector_layout must be 'rows' or 'route', got {self.options['vector_layout']!r}")
        if self.options["placement"] not in PLACEMENTS:
            raise BackendError(f"option placement must be one of {', '.join(PLACEMENTS)}, "
                               f"got {self.options['placement']!r}")
        if not t.clock_hz:
            raise TargetError(f"{t.source}: clock: the wafer_scale family needs the PE clock")
        a = t.array
        self.clock = t.clock_hz
        self.pes = int(a["pes"])
        self.pe_sram = float(a["pe_sram"])
        self.fmac = int(a["fmac_per_pe"])
        self.wavelet = int(a["wavelet_bits"])
        self.hop = int(a["hop_cycles"])
        self.sram = t.device_memory
        mats = t.units_of("matrix")
        self.pe_unit = mats[0] if mats else None
        self.geometry_peak = self.pes * self.fmac * 2.0 * self.clock
        self.link = t.interconnect[0] if t.interconnect else None

    # ----------------------------------------------------------------- deployment
    def _usable(self) -> float:
        return self.sram.total_capacity * float(self.target.efficiency.get("capacity_usable", 0.9))

    def _estimate(self, graph: Graph, companion: Estimate | None, analysis: GraphAnalysis | None,
                  widen: bool | int = False) -> Estimate:
        """The estimate with the weights as they stand or (``widen``) widened to 16-bit at load."""
        est, lay = self.estimate_layout(graph, companion=companion, analysis=analysis, widen=widen)
        per = lay["resident_per_wafer"]
        busiest = max(range(len(per)), key=lambda i: per[i][0] + per[i][1]) if per else 0
        w, kv = per[busiest] if per else (0.0, 0.0)
        note = (f"weights streamed from MemoryX ({format_quantity(self.target.array['memoryx_bandwidth'], 'bandwidth')})"
                if lay["placement"] == "stream" else
                f"resident in SRAM over {lay['wafers']} wafer(s) of {format_quantity(self.sram.total_capacity, 'size')}")
        if lay["placement"] == "stream":
            w = 0.0
        return finish_estimate(self, graph, est, companion, devices=lay["wafers"], weights=w, kv=kv,
                               capacity=self._usable(), note=note,
                               detail={"layout": {k: v for k, v in lay.items() if k != "resident_per_wafer"}},
                               widen=widen, kv_only=lay.get("kv_only_wafers", 0))

    # ----------------------------------------------------------------- layout
    def _wafers(self, graph: Graph, nodes: list[Node], res: dict[int, tuple[float, float]]) -> tuple[str, dict[int, int], int]:
        """(placement, id(node) -> wafer, wafers)."""
        total_w = sum(w for w, _ in res.values())
        total_kv = sum(kv for _, kv in res.values())
        cap = self._usable()
        want = self.options["placement"]
        need = max(1, math.ceil((total_w + total_kv) / cap)) if cap > 0 else 1
        if want == "auto":
            want = "resident" if need <= self.target.max_devices else "stream"
        if want == "stream":
            if total_kv > cap:
                raise TargetError(f"the KV cache ({format_quantity(total_kv, 'size')}) does not fit one wafer's SRAM "
                                  f"even with the weights streamed from MemoryX")
            mx = float(self.target.array["memoryx_capacity"])
            if total_w > mx:
                raise TargetError(f"the weights ({format_quantity(total_w, 'size')}) exceed MemoryX "
                                  f"({format_quantity(mx, 'size')})")
            return "stream", {id(n): 0 for n in nodes}, 1
        if need > self.target.max_devices:
            name = model_name(graph)
            raise TargetError(f"{name} fits no device count of {self.target.name}: it needs {need} wafers of SRAM; "
                              f"the system joins at most {self.target.max_devices} (try -O placement=stream)")
        _check_nodes_fit(graph, nodes, res, cap, self.target.name)
        # consecutive layers fill a wafer up to its usable SRAM (whole layers; a layer bigger
        # than a wafer spills node by node)
        wafer_of: dict[int, int] = {}
        w, room = 0, cap
        for _key, block in layer_blocks(nodes):
            size = sum(sum(res.get(id(n), (0.0, 0.0))) for n in block)
            if size > room and room < cap:
                w, room = w + 1, cap
            for n in block:
                b = sum(res.get(id(n), (0.0, 0.0)))
                if b > room and room < cap:
                    w, room = w + 1, cap
                wafer_of[id(n)] = w
                room -= b
        used = max(wafer_of.values(), default=0) + 1
        return "resident", wafer_of, used

    def _regions(self, nodes: list[Node], works: dict[int, NodeWork], res: dict[int, tuple[float, float]],
                 wafer_of: dict[int, int], wafers: int, stream: bool) -> dict[int, int]:
        """PEs per node: its resident bytes' minimum, then the rest of its wafer by FLOPs."""
        # a region's PEs hold its bytes densely; the wafer-level capacity_usable margin (code,
        # buffers) is what leaves PEs over for regions that need compute more than storage
        usable_pe = self.pe_sram
        regions: dict[int, int] = {}
        by_wafer: list[list[Node]] = [[] for _ in range(wafers)]
        for n in nodes:
            if works[id(n)].kernels:
                by_wafer[wafer_of[id(n)]].append(n)
        for wi, members in enumerate(by_wafer):
            mins = {id(n): (0 if stream else math.ceil(sum(res.get(id(n), (0.0, 0.0))) / usable_pe)) for n in members}
            wish: dict[int, int] = {}
            for n in members:
                # element-wise work keeps pace with its stream: at least the PEs that do one
                # token's arithmetic in the time its vector streams past
                w = works[id(n)]
                if not w.contractions and w.vector_flops:
                    tokens, k_in = _tokens(n)
                    vpw = max(1, self.wavelet // max(1, _bits(w.vector_dtype)))
                    per_cycle = (w.vector_flops + w.converts) / tokens / max(1, math.ceil(k_in / vpw))
                    mins[id(n)] = max(mins[id(n)], math.ceil(per_cycle / (2 * self.fmac)))
                    # and a norm would like rows enough that its vector streams in about as fast
                    # as it crosses the region (side ≈ √(k / 2·values per wavelet) balances
                    # k/side/vpw with 2·side hops): its reduction then costs hops, not a narrow
                    # stream. A wish, granted from the PEs the bytes leave over
                    if w.category in _BLOCKING and self.options["vector_layout"] == "rows":
                        wish[id(n)] = max(0, math.ceil(k_in / (2 * vpw)) - mins[id(n)])
            room = self.pes - sum(mins.values())
            want = sum(wish.values())
            if want > 0 and room > 0:
                f = min(1.0, room / 2 / want)        # at most half of what is left over
                for k, extra in wish.items():
                    mins[k] += int(extra * f)
            free = self.pes - sum(mins.values())
            if free < 0:
                raise TargetError(f"no wafer count of {self.target.name} fits: the nodes placed on wafer {wi} need "
                                  f"{sum(mins.values())} PEs of its {self.pes} for their bytes and per-token work; "
                                  f"lower the batch or context")
            regions.update(_share(self.pes, mins, {id(n): works[id(n)].flops for n in members}))
        return regions

    # ----------------------------------------------------------------- one node
    def node_cycles(self, w: NodeWork, pes: int, tokens: int, k_in: int, *, min_pes: int = 0,
                    weight_stream_bw: float = 0.0, streamed: float = 0.0) -> dict[str, Any]:
        """Per-token ``latency``, whole-step ``occupancy`` (cycles) and bound of one node on a
        region of up to ``pes`` PEs (at least ``min_pes``, what its bytes need), for ``tokens``
        activation vectors of ``k_in`` values each, with ``streamed`` weight bytes arriving from
        MemoryX at ``weight_stream_bw`` (module docstring).

        A wider region does more MACs per cycle but every token crosses more hops, so the layout
        uses the part of its share that is fastest (a compiler would not spread a stream-bound
        GEMV over PEs that only add hops): narrower weights then never cost latency."""
        lo = max(1, min(pes, min_pes or pes))
        cands = {pes, lo}
        if lo < pes:
            steps = 12
            cands.update(max(lo, min(pes, round(lo * (pes / lo) ** (i / steps)))) for i in range(1, steps))
        best = None
        for p in sorted(cands):
            c = self._cycles_on(w, p, tokens, k_in, weight_stream_bw, streamed)
            if best is None or c["latency"] + c["occupancy"] < best["latency"] + best["occupancy"]:
                best = c
        return best

    def _cycles_on(self, w: NodeWork, pes: int, tokens: int, k_in: int, weight_stream_bw: float,
                   streamed: float) -> dict[str, Any]:
        side = max(1, math.isqrt(pes))
        hops = 2 * side * self.hop
        eff = float(self.target.efficiency["matrix"])
        dt = w.contractions[0].a_dtype if w.contractions else w.vector_dtype
        vpw = max(1, self.wavelet // max(1, _bits(dt)))
        blocking = bool(w.contractions) or w.category in _BLOCKING or \
            (w.category == "fused" and w.detail.get("kind") not in ("elementwise", None))
        compute = math.ceil((w.vector_flops + w.converts) / (pes * self.fmac * 2))
        reduce_tok = 0
        frac = w.causal_fraction if w.traffic is not None else 1.0     # a tile record's skipped blocks
        if w.contractions:
            macs = sum(c.batch * c.m * c.n * c.k for c in w.contractions) * frac
            compute += math.ceil(macs / (pes * self.fmac * self._speed(w.contractions[0].dtype) * eff))
            n_out = sum(c.n for c in w.contractions if c.role == "matmul") or k_in
            reduce_tok = math.ceil(math.ceil(n_out / side) / vpw)    # partial sums leaving the column chains
        # a token's vector arrives split over the region's ``side`` rows, each row's share on its
        # own route (the Cerebras SDK GEMV tutorials distribute x across the PE grid this way;
        # a contraction's outputs leave split over its columns, so the next region's input
        # already is): tokens then queue on the same routes
        if self.options["vector_layout"] == "rows":
            routes = side
            stream_tok = math.ceil(math.ceil(k_in / side) / vpw)
            stream_all = tokens * stream_tok
        else:       # one route per token vector; up to ``side`` tokens' routes at once
            routes = max(1, min(tokens, side))
            stream_tok = math.ceil(k_in / vpw)
            stream_all = math.ceil(tokens / routes) * stream_tok
        compute_tok = compute / tokens
        if blocking:
            latency = max(stream_tok, compute_tok) + hops + reduce_tok
        else:
            # a streaming op works on values as they pass: only arithmetic that cannot keep pace delays
            latency = int(self.target.overheads["vector_latency"]) + max(0.0, compute_tok - stream_tok)
        # a streaming op works on values on the routes they pass along (its producer's columns):
        # only its arithmetic occupies its own PEs; a blocking one gathers each token's stream
        occupancy = max(stream_all, compute) if blocking else compute
        if w.traffic is not None:
            # a tile record's SRAM bytes, read by the region's PEs at their share of the SRAM bandwidth
            sram = w.bytes_at(self.sram.name).get(self.sram.name, 0.0)
            sram_cycles = math.ceil(sram / (self.sram.bandwidth * pes / self.pes) * self.clock)
            stream_all = max(stream_all, sram_cycles)
            occupancy = max(occupancy, stream_all if blocking else sram_cycles)
        wcyc = math.ceil(streamed / weight_stream_bw * self.clock) if weight_stream_bw and streamed else 0
        if wcyc:
            latency += wcyc
            occupancy = max(occupancy, wcyc)
        bound = "compute" if compute >= max(stream_all, wcyc) else "memory"
        return {"latency": latency, "occupancy": occupancy, "compute_cycles": compute, "stream_cycles": stream_all,
                "weight_stream_cycles": wcyc, "hops": hops, "pes": pes, "side": side, "tokens": tokens,
                "routes": routes, "bound": bound, "blocking": blocking}

    def _speed(self, dt: str) -> float:
        """The dtype's MAC rate relative to the 16-bit geometry (listed peak / geometry peak)."""
        if self.pe_unit is None:
            return 1.0
        peak = self.pe_unit.peak
        key = dt if dt in peak else ("bf16" if "bf16" in peak else max(peak, key=peak.get))
        r = peak[key] / self.geometry_peak
        return r / 2 if dt == "f32" and "f32" not in peak else r

    def place(self, graph: Graph, widen: bool | int = False) -> tuple[dict, dict, Any, tuple[str, dict[int, int], int]]:
        """The resident bytes (raw, sized for the KV window), the window and the wafer placement
        (``_wafers``) of ``graph``; TargetError when they take more wafers than the system joins."""
        raw = resident_bytes(graph, widen)
        res, window = sized_for_window(raw, graph, self._usable() * self.target.max_devices)
        placed = self._wafers(graph, list(graph.nodes), res)
        kv_only = window.devices(self._usable())
        if placed[2] + kv_only > self.target.max_devices:
            raise TargetError(f"{graph.meta['llm'].get('preset', graph.name)} fits no device count of "
                              f"{self.target.name}: its layout takes {placed[2]} wafers and the KV cache past its "
                              f"{window.positions}-position window {kv_only} more; the system joins at most "
                              f"{self.target.max_devices}")
        return raw, res, window, placed

    # ----------------------------------------------------------------- the step
    def price_layout(self, graph: Graph, plan: ParallelPlan, analysis: GraphAnalysis,
                     widen: bool | int = False) -> tuple[list[NodeCost], dict[str, Any]]:
        """The records of the step (``widen``: int8/int4 weights widened to 16-bit at load) and
        the layout they come from (placement, wafers, PEs, the critical path)."""
        nodes = list(analysis.nodes)
        works = self.step_works(analysis, widen)
        raw, res, window, (placement, wafer_of, wafers) = self.place(graph, widen)
        kv_only = window.devices(self._usable())
        remote_keys = window.remote_keys(raw, self._usable())
        stream = placement == "stream"
        whole = works
        if window.overflows:
            # the layout's attention reads only the window's keys: its region (a share of the
            # wafer by FLOPs) and its cycles are those of that work
            works = map_works(works, lambda w: at_keys(w, window.positions),
                              (i for i in works if res.get(i, (0.0, 0.0))[1] > 0))
        regions = self._regions(nodes, works, res, wafer_of, wafers, stream)
        mx_bw = float(self.target.array["memoryx_bandwidth"]) if stream else 0.0
        cache: dict[tuple, dict] = {}
        finish: dict[int, float] = {}        # id(value) -> cycle its first token is ready
        wafer_at: dict[int, int] = {}        # id(value) -> wafer that produced it
        recs: list[tuple[NodeCost, float, float]] = []    # (record, end cycle, occupancy beyond latency)
        arrived: dict[tuple[int, int], float] = {}          # (id(value), wafer) -> its first token there
        sram = self.sram.name
        for n in nodes:
            w = works[id(n)]
            label = node_label(n)
            layer = n.meta.get("layer") if isinstance(n.meta.get("layer"), int) else None
            ready = 0.0
            for v in n.inputs:
                if v is not None and id(v) in finish:
                    t = finish[id(v)]
                    src = wafer_at.get(id(v), 0)
                    dst = wafer_of.get(id(n), 0)
                    if src != dst:
                        if (id(v), dst) not in arrived:       # a value crosses to a wafer once
                            hop_end, rec = self._hop(v, t, src, dst, layer)
                            recs.append(rec)
                            arrived[(id(v), dst)] = hop_end
                        t = arrived[(id(v), dst)]
                    ready = max(ready, t)
            if n.spec.category in FREE_CATEGORIES or w.kernels == 0:
                for v in n.outputs:
                    finish[id(v)] = ready
                    wafer_at[id(v)] = wafer_of.get(id(n), 0)
                continue
            pes = regions[id(n)]
            tokens, k_in = _tokens(n)
            streamed = res.get(id(n), (0.0, 0.0))[0] if stream else 0.0
            need = 0 if stream else math.ceil(sum(res.get(id(n), (0.0, 0.0))) / self.pe_sram)
            key = (id(w), pes, need, tokens, k_in, streamed)
            cyc = cache.get(key)
            if cyc is None:
                if window.overflows and res.get(id(n), (0.0, 0.0))[1] > 0:
                    cyc = self._local_attention(w, whole[id(n)], remote_keys, n, pes, tokens, k_in, need)
                else:
                    cyc = self.node_cycles(w, pes, tokens, k_in, min_pes=need, weight_stream_bw=mx_bw,
                                           streamed=streamed)
                cache[key] = cyc
            rb = sum(res.get(id(n), (0.0, 0.0)))
            if cyc["bound"] == "compute" and w.contractions and rb and \
                    sum(c.batch * c.m * c.n * c.k for c in w.contractions) < 4 * rb / 2:
                # fewer than ~4 MACs per resident 16-bit value (decode): the FMACs do little more
                # than take each weight from the PE's SRAM once -- data movement, not arithmetic
                cyc = {**cyc, "bound": "memory"}
            end = ready + cyc["latency"]
            for v in n.outputs:
                finish[id(v)] = end
                wafer_at[id(v)] = wafer_of[id(n)]
            nbytes = whole[id(n)].bytes_at(sram)
            # the keys past the window are read on the KV-only wafers
            far = 1.0 - window.positions / window.context if window.overflows and res.get(id(n), (0, 0))[1] else 0.0
            if streamed:
                nbytes["memoryx"] = streamed
            flops = whole[id(n)].matrix_flops + whole[id(n)].vector_flops
            rec = NodeCost(label, n.op, n.spec.category, 0.0, flops, nbytes, cyc["bound"], roofline=cyc["bound"],
                           unit=f"pe x{pes}", compute_s=cyc["compute_cycles"] / self.clock,
                           memory_s=max(cyc["stream_cycles"], cyc["weight_stream_cycles"]) / self.clock,
                           layer=layer, detail={"kernels": 1, "wafer": wafer_of[id(n)], **cyc,
                                                       **({"far_share": far} if far > 0 else {})})
            recs.append((rec, end, max(0.0, cyc["occupancy"] - cyc["latency"])))
        # MemoryX is one link: the step cannot end before every weight has streamed through it
        floor = sum(wb for wb, _ in res.values()) / mx_bw * self.clock if stream else 0.0
        out, layout = self._attribute(recs, placement, wafers, regions, res, wafer_of, nodes, floor)
        if kv_only:
            layout["wafers"] += kv_only
            layout["kv_only_wafers"] = kv_only
            layout["window"] = window.positions
            layout["resident_per_wafer"] += [(0.0, window.overflow_bytes / kv_only)] * kv_only
        return out, layout

    def _local_attention(self, near_w: NodeWork, whole: NodeWork, remote_keys: int, n: Node, pes: int,
                         tokens: int, k_in: int, need: int) -> dict[str, Any]:
        """Past the window, the layout's attention region reads the window's keys while KV-only
        wafers attend over the rest; their partial results come back over the link and are merged:
        a round trip, and whatever longer the remote share takes (``spatial.Window``)."""
        near = self.node_cycles(near_w, pes, tokens, k_in, min_pes=need)
        far = self.node_cycles(at_keys(whole, max(1, remote_keys)), pes, tokens, k_in, min_pes=need)
        q = value_bytes(n.inputs[0])
        lat = self.link.latency if self.link else 0.0
        bw = self.link.bandwidth if self.link else 1e12
        trip = math.ceil((2 * lat + 2 * q / bw) * self.clock)      # the query out, the partial output back
        wait = trip + max(0, far["latency"] - near["latency"])
        return {**near, "latency": near["latency"] + wait, "occupancy": max(near["occupancy"], far["occupancy"]),
                "kv_merge_cycles": wait}

    def _hop(self, v, t: float, src: int, dst: int, layer) -> tuple[float, tuple[NodeCost, float, float]]:
        """A value crossing from wafer ``src`` to ``dst``: its first token arrives after the link's
        latency and that token's bytes; the other tokens follow it down the link, which is busy
        for the whole payload -- a pipeline stage like a region (its occupancy beyond the first
        token's latency), not a wait on the critical path."""
        nb = value_bytes(v)
        shape = [d if isinstance(d, int) else 1 for d in v.type.shape]
        tokens = max(1, math.prod(shape[:-1])) if len(shape) > 1 else 1
        lat = (self.link.latency if self.link else 0.0) * abs(dst - src)
        bw = self.link.bandwidth if self.link else 1e12
        first = (lat + nb / tokens / bw) * self.clock
        busy = nb / bw * self.clock
        rec = NodeCost(f"wafer {src}->{dst} %{v.name}", "send", "transfer", 0.0, 0.0, {}, "communication",
                       unit=f"link:{self.link.name}" if self.link else "", comm_s=(lat * self.clock + busy) / self.clock,
                       layer=layer, detail={"payload_bytes": nb, "from": src, "to": dst, "tokens": tokens,
                                            "link_busy_cycles": busy})
        return t + first, (rec, t + first, max(0.0, busy - (first - lat * self.clock)))

    def _attribute(self, recs, placement, wafers, regions, res, wafer_of, nodes,
                   floor: float) -> tuple[list[NodeCost], dict[str, Any]]:
        """Each record's increment of the critical path; the bottleneck region also carries the
        pipeline's remaining occupancy (tokens after the first), and with weights streamed the
        wait for the MemoryX link (``floor`` cycles) lands on the node with the most weights.
        Returns the records and the layout's figures."""
        frontier = 0.0
        for rec, end, _ in sorted(recs, key=lambda x: x[1]):
            rec.time_s = max(0.0, end - frontier) / self.clock
            frontier = max(frontier, end)
        extra = max(recs, key=lambda x: x[2], default=None)
        if extra is not None and extra[2] > 0:
            extra[0].time_s += extra[2] / self.clock
            extra[0].detail["pipeline_bottleneck"] = True
            frontier += extra[2]
        if floor > frontier and recs:
            heavy = max(recs, key=lambda x: x[0].bytes.get("memoryx", 0.0))[0]
            heavy.time_s += (floor - frontier) / self.clock
            heavy.detail["memoryx_wait_cycles"] = floor - frontier
            frontier = floor
        step = float(self.target.overheads["step"])
        out = [r for r, _, _ in recs]
        if step and out:
            out[0].time_s += step
            out[0].overhead_s += step
        per_wafer = [[0.0, 0.0] for _ in range(wafers)]
        for n in nodes:
            wgt, kv = res.get(id(n), (0.0, 0.0))
            per_wafer[wafer_of.get(id(n), 0)][0] += wgt
            per_wafer[wafer_of.get(id(n), 0)][1] += kv
        return out, {"placement": placement, "wafers": wafers, "pes_per_wafer": self.pes,
                     "pes_used": sum(regions.values()), "critical_path_cycles": frontier,
                     "resident_per_wafer": [tuple(x) for x in per_wafer]}


def _share(total: int, mins: dict[int, int], work: dict[int, float]) -> dict[int, int]:
    """PEs per node in proportion to ``work``, but never below ``mins``: nodes whose share is
    under their minimum get the minimum, the others split what is left by work (water-filling)."""
    fixed: dict[int, int] = {}
    while True:
        free = total - sum(fixed.values())
        rest = {k: w for k, w in work.items() if k not in fixed}
        wsum = sum(rest.values())
        newly = {k: mins[k] for k in rest if (free * rest[k] / wsum if wsum else 0.0) < mins[k]}
        if not newly:
            break
        fixed.update(newly)
    free = total - sum(fixed.values())
    wsum = sum(w for k, w in work.items() if k not in fixed)
    out = dict(fixed)
    for k, w in work.items():
        if k not in fixed:
            out[k] = max(1, mins[k], int(free * w / wsum) if wsum else mins[k])
    return {k: max(1, v) for k, v in out.items()}


def _tokens(n: Node) -> tuple[int, int]:
    """(activation vectors, values per vector) a node streams in: rows and width of its first
    non-constant input (``Attention``'s query: batch·sequence vectors of heads·head_dim)."""
    v = next((x for x in n.inputs if x is not None and not x.const), None)
    if v is None or not v.type.shape:
        return 1, 1
    shape = [d if isinstance(d, int) else 1 for d in v.type.shape]
    if n.op == "Attention" and len(shape) == 4:
        return max(1, shape[0] * shape[2]), max(1, shape[1] * shape[3])
    width = max(1, shape[-1])
    return max(1, math.prod(shape) // width), width


def _check_nodes_fit(graph: Graph, nodes: list[Node], res: dict[int, tuple[float, float]], cap: float,
                     target: str) -> None:
    """A node's resident bytes cannot be split across wafers here (a layer spills node by node):
    one node larger than a wafer means no wafer count fits; say which, and what batch would."""
    big = max(nodes, key=lambda n: sum(res.get(id(n), (0.0, 0.0))), default=None)
    size = sum(res.get(id(big), (0.0, 0.0))) if big is not None else 0.0
    if big is None or size <= cap:
        return
    meta = llm_meta(graph)
    w, kv = res[id(big)]
    batch = int(meta.get("batch", 1) or 1)
    hint = ""
    if kv > 0 and w < cap:
        fit = int(batch * (cap - w) / kv)
        hint = (f"; at this context a batch ≤ {fit} keeps it within one wafer" if fit >= 1
                else "; even batch 1 needs a shorter context")
    raise TargetError(f"{meta.get('preset', graph.name)} fits no device count of {target}: {big.op} "
                      f"%{node_label(big)} keeps {format_quantity(size, 'size')} resident (weights + KV cache) "
                      f"and a wafer holds {format_quantity(cap, 'size')} usable{hint}")
