"""``systolic``: TPUs and Trainium — R×C systolic matrix units, a vector unit, VMEM/SBUF, HBM.

What the model does per node (every figure from the target file):

- **GEMMs on the arrays.** Every contraction (MatMul, Gemm, the QKᵀ and PV products of
  ``Attention``, MatMuls inside fused bodies) is mapped onto the chip's ``units.<matrix>``
  arrays (``shape = [R, C]``, ``count`` of them over ``array.cores`` cores) with a dataflow
  (``array.dataflow``: ``ws`` weight-, ``os`` output- or ``is`` input-stationary; option
  ``dataflow=`` overrides it). ``ridgeline.cost_models.systolic_array`` gives the folds, fill,
  drain and padding waste; the folds of a GEMM (× its batch) are spread over all arrays, the
  busiest doing ``ceil(folds / arrays)`` back to back. Stationary tiles are double-buffered
  (``array.double_buffered``), so a fold costs ``max(T/eff, R)`` cycles: streaming at
  ``efficiency.matrix`` of the array's rate, or waiting for the next R-row tile to shift in —
  which is what bounds a decode GEMV (T = 1) on the array, well below its MAC peak.
  SCALE-Sim's serial convention (every fold pays its own load, fill and drain) is
  ``systolic_array.scalesim_cycles``, which the tests check cycle for cycle.
- **Precision.** The array's listed peak per dtype sets its speed relative to the geometry
  (``count × R × C × 2 × clock``): int8 / fp8 run twice as fast where the chip says so; f32
  contractions run as ``array.f32_passes`` bf16 passes; a dtype the array lacks runs as bf16.
- **Vector unit.** Element-wise, normalization, softmax and the dequantizing prologues of
  weight-only-quantized GEMMs run on ``units.<vector>`` at ``efficiency.vector``; the TensorCore
  is VLIW, so a fused kernel's array and vector work overlap (the node takes the longer).
- **VMEM / SBUF tiling.** A GEMM is blocked into (tm × tn) output tiles that are multiples of
  the array, as large as the on-chip level allows with double-buffered operand panels. HBM then
  moves each operand once when its panel row stays resident (the better loop order is chosen),
  else once per tile of the other operand; the on-chip level moves every tile's panels. A tile
  record in ``node.meta["tile"]`` (levels ``hbm``, ``vmem``/``sbuf``) replaces this.
- **HBM** at ``efficiency.memory`` of nameplate; each op pays ``overheads.op`` (DMA set-up,
  pipeline prologue of one XLA fusion / NKI kernel) and the step pays ``overheads.step`` once.
- **Multi-chip.** Tensor-parallel all-reduces and pipeline sends are priced on the ICI /
  NeuronLink links (α–β, ring steps per torus dimension) by the framework.

Bounds: a node is ``compute`` when MACs streaming through the arrays or the vector unit take
longest; ``memory`` when bytes do — HBM, VMEM, or stationary tiles shifting into the arrays (a
fold that waits for its next tile is moving bytes, not multiplying: a decode GEMV, or GQA decode
attention whose K/V tiles are the stationary operand); ``overhead`` when the fixed per-op cost
exceeds both. ``detail["memory_level_s"]["array_load"]`` is the tile-load time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, ClassVar

from ...ir.errors import BackendError, TargetError
from ..estimate import NodeCost
from ..model import CostModel
from ..parallel import ParallelPlan
from ..systolic_array import ArrayMapping, canonical_dataflow, map_gemm, pipelined_cycles
from ..target import Field
from ..target import dtype_bits as _bits
from ..target import dtype_bytes as _bytes_of
from ..work import FREE_CATEGORIES, Contraction, NodeWork, microbatch_work, shared_work

__all__ = ["GemmPlan", "SystolicModel"]


class GemmPlan(dict):
    """How one contraction runs: cycles, seconds, tiles, traffic (a plain dict for JSON)."""


class SystolicModel(CostModel):
    """Systolic matrix units (folds, fill/drain, padding), vector unit, VMEM/SBUF tiles, HBM."""

    family = "systolic"
    description = "systolic arrays: GEMM folds with fill/drain and padding waste, vector unit, VMEM tiles, HBM, ICI"
    schema: ClassVar[Mapping[str, Mapping[str, Field]]] = {
        "array": {
            "cores": Field("int", 1, "TensorCores / NeuronCores per chip (the matrix units are spread over them)"),
            "dataflow": Field("str", "ws", "how GEMMs map onto the arrays: ws, os or is (SCALE-Sim's names)"),
            "double_buffered": Field("bool", True, "the next stationary tile shifts in while the current one "
                                     "computes (TPU: Jouppi et al. ISCA 2017)"),
            "f32_passes": Field("int", 3, "bf16 passes of an f32 contraction (XLA precision HIGH: bf16_3x)"),
            "tile_max": Field("int", 16, "largest GEMM output tile, in array widths per side"),
        },
        "overheads": {
            "op": Field("time", 1e-6, "fixed cost of one op (one XLA fusion / NKI kernel: DMA set-up, prologue)"),
            "step": Field("time", 0.0, "once per step (program launch and host synchronization)"),
        },
        "efficiency": {
            "matrix": Field("fraction", 0.8, "sustained share of the arrays' streaming rate on large GEMMs"),
            "vector": Field("fraction", 0.5, "sustained share of the vector unit's peak"),
            "memory": Field("fraction", 0.85, "sustained share of HBM bandwidth"),
        },
    }
    option_fields: ClassVar[Mapping[str, Field]] = {
        "attention": Field("str", "flash", "how a fused Attention op runs: 'flash' (FlashAttention-style: scores "
                           "stay on chip, causal blocks skipped — what serving runtimes run) or 'materialized' "
                           "(the score matrix goes through device memory); a tile record in the IR overrides both"),
        "dataflow": Field("str", None, "override the target's dataflow: ws, os or is"),
        "double_buffered": Field("bool", None, "override whether stationary tiles are double-buffered"),
        "fusion": Field("bool", True, "price each run of vector-only kernels between GEMMs as one loop fusion "
                        "(XLA / neuronx-cc: its intermediates stay in VMEM); off: each kernel through HBM"),
    }

    def __init__(self, target, **options: Any):
        super().__init__(target, **options)
        t = self.target
        mats = t.units_of("matrix")
        if not mats:
            raise TargetError(f"{t.source}: units: the systolic family needs a matrix unit (kind = \"matrix\")")
        self.mxu = max(mats, key=lambda u: max(u.peak.values()))
        if len(self.mxu.shape) != 2:
            raise TargetError(f"{t.source}: units.{self.mxu.name}.shape: the systolic family needs the array's "
                              f"[rows, cols], got {list(self.mxu.shape)}")
        if not t.clock_hz:
            raise TargetError(f"{t.source}: clock: the systolic family needs the array clock")
        self.rows, self.cols = self.mxu.shape
        self.arrays = self.mxu.count
        self.clock = t.clock_hz
        self.cores = max(1, int(t.array["cores"]))
        try:
            self.dataflow = canonical_dataflow(self.options["dataflow"] or t.array["dataflow"])
        except ValueError as e:
            raise BackendError(f"target {t.name}: {e}") from None
        db = self.options["double_buffered"]
        self.double_buffered = bool(t.array["double_buffered"] if db is None else db)
        self.geometry_peak = self.arrays * self.rows * self.cols * 2.0 * self.clock
        vec = t.units_of("vector")
        self.vpu = max(vec, key=lambda u: max(u.peak.values())) if vec else None
        self.hbm = t.device_memory
        self.onchip = t.memory[-1] if len(t.memory) > 1 else None
        self.eff = t.efficiency
        self.ovh = t.overheads

    # ----------------------------------------------------------------- rates
    def matrix_rate(self, dt: str) -> tuple[str, float]:
        """(peak key, MAC-rate multiplier vs. one MAC per PE per cycle) for a contraction in ``dt``."""
        peak = self.mxu.peak
        if dt in peak:
            return dt, peak[dt] / self.geometry_peak
        base = "bf16" if "bf16" in peak else min(peak, key=peak.get)
        if dt == "f32":
            return f"{base}x{self.target.array['f32_passes']}", \
                peak[base] / self.geometry_peak / max(1, int(self.target.array["f32_passes"]))
        if _bits(dt) <= 8 and dt.startswith("i") and "i8" in peak:
            return "i8", peak["i8"] / self.geometry_peak        # int4 weights widen to int8
        return base, peak[base] / self.geometry_peak           # e.g. f16 / fp8 on a bf16-only array

    def vector_rate(self, dt: str) -> tuple[str, float]:
        if self.vpu is None:
            return "none", 0.0
        key = dt if dt in self.vpu.peak else ("f32" if "f32" in self.vpu.peak else next(iter(self.vpu.peak)))
        return f"{self.vpu.name}:{key}", self.vpu.peak[key] * self.eff["vector"]

    # ----------------------------------------------------------------- one GEMM
    def gemm(self, c: Contraction) -> GemmPlan:
        """Cycles and traffic of one contraction on this chip (see the module docstring)."""
        mp = map_gemm(c.m, c.n, c.k, self.rows, self.cols, self.dataflow)
        key, speed = self.matrix_rate(c.dtype)
        folds = mp.folds * c.batch
        per_array = math.ceil(folds / self.arrays)
        eff = float(self.eff["matrix"])
        # software losses stretch the streaming, not the hardware's tile loads: a fold takes the
        # longer of T / eff (streaming) and the tile shift-in
        stream = ArrayMapping(mp.dataflow, mp.rows, mp.cols, mp.sr, mp.sc, max(1, math.ceil(mp.t / speed / eff)))
        cycles = pipelined_cycles(stream, per_array, double_buffered=self.double_buffered)
        plan = GemmPlan(role=c.role, mnk=[c.m, c.n, c.k], batch=c.batch, dataflow=mp.dataflow,
                        array=[self.rows, self.cols], folds=folds, folds_per_array=per_array,
                        fold_cycles=max(stream.t, stream.load_cycles) if self.double_buffered and mp.dataflow != "os"
                        else stream.t + (0 if mp.dataflow == "os" else stream.load_cycles),
                        cycles=cycles, compute_s=cycles / self.clock,
                        padding_efficiency=mp.mapping_efficiency,
                        array_efficiency=folds / (per_array * self.arrays),
                        load_bound=mp.dataflow != "os" and mp.t / speed / eff < mp.load_cycles,
                        unit=f"{self.mxu.name}:{key}")
        plan.update(self._tiling(c))
        return plan

    def _tiling(self, c: Contraction) -> dict[str, Any]:
        """Output tile [tm, tn, tk], HBM traffic and on-chip traffic of a VMEM/SBUF-blocked GEMM.

        The output is blocked into tm × tn tiles (multiples of the array, up to ``array.tile_max``
        array widths) accumulated over K-steps of tk; two buffers of each operand block plus an
        f32 accumulator must fit the on-chip level (per core). Each output tile reads its A row
        panel and B column panel once through the on-chip level; HBM sees an operand once when
        the loop order keeps its panel resident (or it fits whole), else once per tile of the
        other operand. The cheaper loop order is taken, as a compiler's tiling search would.
        """
        a_b, b_b = _bytes_of(c.a_dtype), _bytes_of(c.b_dtype)
        o_b = _bytes_of(c.dtype if _bits(c.dtype) >= 16 else "bf16")
        A = c.batch * c.m * c.k * a_b
        B = c.batch * c.k * c.n * b_b
        C = c.batch * c.m * c.n * o_b
        if self.onchip is None:
            return {"tile": None, "hbm_bytes": A + B + C, "onchip_bytes": 0.0}
        cap = self.onchip.capacity              # per core: each core tiles its share
        tk = min(c.k, 4 * self.rows)
        tm, tn = min(c.m, self.rows), min(c.n, self.cols)
        for i in range(int(self.target.array["tile_max"]), 0, -1):
            cm, cn = min(c.m, self.rows * i), min(c.n, self.cols * i)
            if 2 * (cm * tk * a_b + tk * cn * b_b) + cm * cn * 4 <= cap:
                tm, tn = cm, cn
                break
        mt, nt = math.ceil(c.m / tm), math.ceil(c.n / tn)
        used = 2 * (tm * tk * a_b + tk * tn * b_b) + tm * tn * 4
        room = max(0.0, cap - used)
        a_panel, b_panel = tm * c.k * a_b, c.k * tn * b_b
        a_rows = A if A <= room else (A if a_panel <= room else A * nt)   # m outer: A's row panel stays
        b_cols = B if B <= room else (B if b_panel <= room else B * mt)   # n outer: B's column panel stays
        m_outer = a_rows + (B if B <= room else B * mt)
        n_outer = b_cols + (A if A <= room else A * nt)
        return {"tile": [tm, tn, tk], "hbm_bytes": min(m_outer, n_outer) + C,
                "onchip_bytes": A * nt + B * mt + C}

    # ----------------------------------------------------------------- pricing
    def price_node(self, w: NodeWork) -> NodeCost:
        if w.kernels == 0:
            return NodeCost(w.name, w.op, w.category, 0.0, 0.0, {}, "overhead", detail={"kernels": 0})
        dev = self.hbm.name
        frac = w.causal_fraction if w.traffic is not None else 1.0
        vunit, vrate = self.vector_rate(w.vector_dtype)
        gemms = [self.gemm(c) for c in w.contractions]
        # array time waiting on stationary tiles to shift in moves bytes, not MACs: it counts as
        # data movement (the VMEM -> array path), MAC streaming as compute
        load_s = sum(g["compute_s"] for g in gemms if g["load_bound"]) * frac
        matrix_s = sum(g["compute_s"] for g in gemms if not g["load_bound"]) * frac
        # prologues run on the vector unit, overlapped with the array: a weight is widened once
        # as its tile is staged for the array (the tile then stays stationary for every row
        # tile that streams past it); an activation prologue once per column tile
        pro = 0.0
        for c, g in zip(w.contractions, gemms):
            tn = (g["tile"] or (c.m, c.n))[1]
            pro += (c.b_prologue.flops + c.b_prologue.converts) \
                + (c.a_prologue.flops + c.a_prologue.converts) * math.ceil(c.n / tn)
        vector_s = ((w.vector_flops + w.converts) * frac + pro) / vrate if vrate else 0.0
        compute = max(matrix_s, vector_s)
        nbytes = w.bytes_at(dev)
        if w.traffic is None and len(gemms) == 1 and w.category in ("matmul", "fused") and self.onchip is not None:
            g = gemms[0]
            c = w.contractions[0]
            own = (c.batch * (c.m * c.k * _bytes_of(c.a_dtype) + c.k * c.n * _bytes_of(c.b_dtype)))
            # re-reads beyond each operand once, when the operands outgrow the on-chip level
            nbytes[dev] = nbytes[dev] + max(0.0, g["hbm_bytes"] - own - c.batch * c.m * c.n *
                                            _bytes_of(c.dtype if _bits(c.dtype) >= 16 else "bf16"))
            nbytes[self.onchip.name] = g["onchip_bytes"]
        times = {}
        for level, b in nbytes.items():
            m = self.target.level(level)
            bw = m.bandwidth * (self.eff["memory"] if level == dev else 1.0)
            times[level] = b / bw if bw else 0.0
        if load_s:
            times["array_load"] = load_s
        memory = max(times.values(), default=0.0)
        busy = max(compute, memory, matrix_s + load_s)
        overhead = float(self.ovh["op"]) * w.kernels
        if overhead > busy:
            bound = "overhead"
        else:
            bound = "compute" if compute >= memory else "memory"
        flops = (w.matrix_flops + w.vector_flops) * frac
        unit = gemms[0]["unit"] if gemms and matrix_s + load_s >= vector_s else vunit
        detail: dict[str, Any] = {"kernels": w.kernels, "memory_level_s": times}
        if gemms:
            detail["gemms"] = gemms
        if w.tile is not None:
            detail["tile"] = w.tile
        return NodeCost(w.name, w.op, w.category, busy + overhead, flops, nbytes, bound, unit=unit,
                        compute_s=compute, memory_s=memory, overhead_s=overhead,
                        roofline="compute" if compute >= memory else "memory", detail=detail)

    def estimate(self, graph, *, companion=None, analysis=None):
        est = super().estimate(graph, companion=companion, analysis=analysis)
        # narrow weights arrive from HBM faster than the arrays can shift them in as tiles:
        # the tile loads, not HBM, then bound the GEMVs; name it where it takes most of the step
        load = sum(r.time_s for r in est.nodes
                   if (lv := r.detail.get("memory_level_s")) and lv.get("array_load", 0.0) >= max(lv.values()) > 0)
        # the seconds those loads add beyond what HBM, the on-chip level and the MACs need
        excess = 0.0
        for r in est.nodes:
            lv = r.detail.get("memory_level_s") or {}
            if lv.get("array_load", 0.0) > 0:
                others = max((v for k, v in lv.items() if k != "array_load"), default=0.0)
                excess += max(0.0, r.time_s - r.overhead_s - max(r.compute_s, others))
        if excess > 0:
            est.detail.setdefault("mechanism_s", {})["weight tiles shifting into the arrays"] = excess
        if est.time_s and load > 0.5 * est.time_s:
            est.detail["mechanism"] = (f"weight tiles shifting into the systolic arrays bound {load / est.time_s:.0%} "
                                       f"of the step (array_load), not HBM")
        return est

    def fuse(self, by_node: list[NodeCost], plan: ParallelPlan, analysis, shards) -> None:
        """Each run of vector-only kernels (norms, residual adds, activations, quantizers between
        two GEMMs) priced as the one loop fusion XLA / neuronx-cc compile it to: a value made and
        used within the run stays in VMEM (never written to HBM and read back), and the run pays
        one op's fixed cost."""
        memo: dict[tuple, NodeCost] = {}
        for run in _fusion_runs(analysis, plan) if self.options["fusion"] else ():
            for pos, (j, reads, writes) in enumerate(run):   # (node index, inputs the run made, outputs only it reads)
                n = analysis.nodes[j]
                mk = (analysis.keys[j], id(shards[j]), reads, writes, self._mb, pos > 0, len(run))
                rec = memo.get(mk)
                if rec is None:
                    w = self.node_work(n, analysis.keys[j], shards[j])
                    if self._mb > 1:
                        w = microbatch_work(w, self._mb, tuple(v is not None and v.const for v in n.inputs))
                    w = replace(w, in_bytes=tuple(0.0 if r else b for r, b in zip(reads, w.in_bytes)),
                                out_bytes=tuple(0.0 if x else b for x, b in zip(writes, w.out_bytes)))
                    if w.device_bytes < 0:      # a gather's rows: its extra bytes took off the unread table
                        w = replace(w, extra_bytes=w.extra_bytes - w.device_bytes)
                    self._check_levels(w, n)
                    rec = memo[mk] = self.price_node(w)
                    if pos:         # the fusion is one kernel: its fixed cost is paid once, by its first
                        rec.time_s -= rec.overhead_s
                        rec.overhead_s = 0.0
                        rec.bound = rec.roofline
                        rec.detail["kernels"] = 0
                    rec.detail["loop_fusion"] = len(run)
                old = by_node[j]
                old.__dict__.update({k: v for k, v in rec.__dict__.items()
                                     if k not in ("name", "layer", "stage", "shard", "detail")})
                old.detail = {**old.detail, **rec.detail}

    def price_comm(self, comm, plan: ParallelPlan) -> NodeCost:
        rec = super().price_comm(comm, plan)
        rec.detail["kernels"] = 1
        return rec

    def schedule(self, records: list[NodeCost], plan: ParallelPlan) -> list[NodeCost]:
        """One program per step: ops run back to back (runs of vector-only kernels fused, ``fuse``);
        the step's fixed cost lands on its first op."""
        step = float(self.ovh["step"])
        if step and records:
            first = next((r for r in records if r.detail.get("kernels", 1)), None)
            if first is not None:
                first.overhead_s += step
                first.time_s += step
                if first.overhead_s > first.time_s - first.overhead_s:
                    first.bound = "overhead"
        return records


def _fusion_runs(analysis, plan: ParallelPlan) -> list[list[tuple[int, tuple, tuple]]]:
    """The runs of two or more consecutive vector-only kernels with no collective inside, each
    kernel as (its index, which inputs the run made, which outputs only the run reads). The runs
    are found once per graph analysis (``compare`` prices one graph on every systolic target) and
    cut where a plan puts a collective."""
    if "loop_fusion" not in analysis.memo:
        runs, run = [], []
        for j, node in enumerate([*analysis.nodes, None]):
            if node is not None and node.spec.category not in FREE_CATEGORIES:
                w = shared_work(node, analysis.keys[j])
                if not (w.contractions or w.kernels == 0 or w.traffic is not None):
                    run.append(j)
                    continue
            if len(run) > 1:
                runs.append(run)
            run = []
        analysis.memo["loop_fusion"] = (runs, {})
    runs, done = analysis.memo["loop_fusion"]
    out = []
    for run in runs:
        cuts = [i + 1 for i, j in enumerate(run[:-1]) if plan.after.get(id(analysis.nodes[j]))]
        for part in (run[a:b] for a, b in zip([0, *cuts], [*cuts, len(run)])):
            key = (part[0], len(part))
            if len(part) > 1 and key not in done:
                members = {id(analysis.nodes[k]) for k in part}
                made = {id(x) for k in part for v in analysis.nodes[k].outputs for x in _views(v)}
                done[key] = [(k, tuple(id(v) in made for v in analysis.nodes[k].inputs),
                              tuple(not any(x.is_output or any(u.spec.category not in FREE_CATEGORIES
                                                               and id(u) not in members for u, _ in x.uses)
                                            for x in _views(v)) for v in analysis.nodes[k].outputs)) for k in part]
            if len(part) > 1:
                out.append(done[key])
    return out


def _views(v) -> list:
    """``v`` and the values views of it make (a view produces no kernel: they are ``v`` in memory)."""
    return [v, *(x for u, _ in v.uses if u.spec.category in FREE_CATEGORIES for o in u.outputs for x in _views(o))]
