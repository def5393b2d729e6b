"""``cpu``: the host — SIMD cores behind a cache hierarchy — on the same roofline machinery.

Per node: contractions run on the matrix unit (FMA SIMD) at the dtype's peak × ``efficiency.matrix``,
with M padded to the GEMM micro-kernel's rows (``array.gemm_rows``; fewer than ``array.skinny_rows`` rows run
the skinny kernel unpadded, as the llvm backend does; weight-only int4/int8 products of up to
``array.packed_rows`` rows run its packed GEMV, unpadded, dequantizing each weight once in registers); element-wise
work and conversions on the vector unit. The same cores do both, so the two add. Weights and the
KV cache come from DRAM unless all of them fit in a cache; activations from the innermost cache
level that holds the node's activation footprint (a tile schedule gives bytes per level instead). Kernels whose
work (bytes touched plus flops, the split rule of the llvm backend) is below ``array.parallel_min_bytes`` run
on one core; a kernel split across cores pays ``overheads.parallel`` once. Nodes run one after another, and
the runtime's fixed costs are priced where it pays them: ``overheads.kernel`` per kernel launch,
``overheads.node`` per node that launches none (a view the interpreter still steps through), and
``overheads.run`` once per run (binding inputs, returning outputs) as a record of its own.

The point of this family is to be checked against real runs: ``ridgeline compare MODEL
--backends numpy,llvm,host-cpu`` prints predicted and measured times side by side.
"""

from __future__ import annotations

import math
from typing import Any

from ...ir.errors import TargetError
from ..capabilities import Traits
from ..estimate import NodeCost
from ..model import CostModel
from ..target import Field
from ..work import NodeWork

__all__ = ["CpuModel"]


class CpuModel(CostModel):
    """Host CPU: SIMD roofline over a cache hierarchy, per-kernel dispatch cost."""

    family = "cpu"
    traits = Traits(host_code=True, row_granule_key="gemm_rows")
    description = "host CPU: SIMD roofline, cache-level bandwidth by footprint, per-kernel dispatch"
    schema = {
        "array": {
            "cores": Field("int", None, "cores the runtime uses"),
            # defaults: the llvm backend's AVX-512 GEMM (backends/llvm/gemm.py: TILE_512 = 6 rows x 4
            # vectors, MC = 96 rows per task where L2 is under 1 MiB (BLOCKS_SMALL_L2; 144 on a 1 MiB L2,
            # which `ridgeline calibrate` writes), NC = 256 columns, the skinny path below
            # 8 rows); cost_models cannot import backends, so tests/cost_models/test_cpu.py checks
            # that these stay equal to the backend's constants
            "gemm_rows": Field("int", 6, "rows of the GEMM micro-kernel (M is padded to it)"),
            "skinny_rows": Field("int", 8, "products of fewer rows run the skinny (GEMV-like) kernel: all rows "
                                 "in one tile, no padding, split by columns"),
            "packed_rows": Field("int", 16, "weight-only int4/int8 products of up to this many rows run the packed "
                                 "GEMV (backends/llvm/quant_gemv.py MAX_ROWS): unpadded, each weight chunk "
                                 "dequantized once in registers for every row"),
            "parallel_min_bytes": Field("size", 256 * 1024,
                                        "kernels whose bytes touched plus flops are fewer run on one core"),
            "gemm_task": Field("ints", (96, 256), "rows x columns of one GEMM task: a GEMM of one task runs on "
                               "one core (products of fewer than skinny_rows rows split by columns)"),
            "attention_score": Field("time", 0.0, "attention kernel time per score on one core, beyond the "
                                     "roofline (0: roofline only)"),
            "attention_channel": Field("time", 0.0, "attention kernel time per score and head channel (d + dv)"),
        },
        "overheads": {
            "kernel": Field("time", 2.5e-6, "runtime dispatch cost per kernel"),
            "ops": Field("times", {}, "dispatch cost per kernel of these ops, where it differs from kernel "
                                      "(a Fused node with a matrix product counts as MatMul)"),
            "node": Field("time", 0.0, "runtime cost of a node that launches no kernel (a view)"),
            "run": Field("time", 0.0, "runtime cost per run: binding inputs, returning outputs"),
            "parallel": Field("time", 0.0, "cost of splitting one kernel across the cores"),
        },
        "efficiency": {
            "matrix": Field("fraction", 0.5, "sustained share of SIMD FMA peak in GEMMs"),
            "vector": Field("fraction", 0.25, "sustained share of SIMD peak in element-wise kernels"),
            "memory": Field("fraction", 0.9, "sustained share of each level's bandwidth"),
        },
    }
    option_fields = {
        "kernel_overhead": Field("time", None, "per-kernel dispatch cost (overrides the target's)"),
    }

    def __init__(self, target, **options: Any):
        super().__init__(target, **options)
        self.cores = max(1, int(self.target.array["cores"]))
        if len(self.target.array["gemm_task"]) != 2:
            raise TargetError(f"{self.target.name}: array.gemm_task must be [rows, columns], "
                              f"got {list(self.target.array['gemm_task'])}")
        self._weights_total = 0.0

    def _unit(self, dt: str, kinds: tuple[str, ...]):
        """The unit and key a ``dt`` kernel runs on: a dtype the SIMD units lack (f16 without
        AVX512-FP16, fp8) is widened to f32 (F16C, shifts), never to bf16, which has fewer
        significant bits."""
        return self.target.best_unit(dt, kinds) or self.target.best_unit("f32", kinds) or self.target.best_unit("f32")

    def _rate(self, dt: str, kinds: tuple[str, ...], eff: str) -> tuple[str, float]:
        hit = self._unit(dt, kinds)
        if hit is None:
            return "none", 0.0
        unit, key = hit
        return f"{unit.name}:{key}", unit.peak[key] * self.target.efficiency[eff]

    def peak_for(self, analysis) -> float:
        """The peak of the unit and precision most contractions run at here (``_unit``)."""
        by_dtype = analysis.contraction_flops_by_dtype
        hit = self._unit(max(by_dtype, key=by_dtype.get) if by_dtype else "f32", ("matrix",))
        return hit[0].peak[hit[1]] if hit else 0.0

    upcast_how = "operands widened as they load"

    def upcast_to(self, dt: str):
        return None if self.target.best_unit(dt, ("matrix",)) is not None else self._unit(dt, ("matrix",))

    def price_node(self, w: NodeWork) -> NodeCost:
        t = self.target
        dev = t.device_memory
        if w.kernels == 0:
            return NodeCost(w.name, w.op, w.category, 0.0, 0.0, {}, "overhead", detail={"kernels": 0})
        nbytes = w.bytes_at(dev.name)
        footprint = nbytes[dev.name]
        work = footprint + w.flops
        cores = self.cores if work >= t.array["parallel_min_bytes"] and self._splits(w) else 1
        share = cores / self.cores
        rows = int(t.array["gemm_rows"])
        skinny = int(t.array["skinny_rows"])
        compute = 0.0
        unit = ""
        flops = w.vector_flops
        for c in w.contractions:
            unit, rate = self._rate(c.dtype, ("matrix",), "matrix")
            # a weight-only int4/int8 product of few rows runs the packed GEMV: every row in one
            # pass over the packed weight, each chunk unpacked once in registers inside the
            # kernel's loop (at the kernel's efficiency, not a separate element-wise kernel's)
            packed = c.b_weight and bool(c.b_prologue) and c.m <= int(t.array["packed_rows"])
            # the skinny kernel (M < skinny_rows: decode, M = 1 a GEMV) keeps every row in one
            # tile; larger products run whole micro-tiles of gemm_rows rows
            m_pad = c.m if c.m < skinny or packed else math.ceil(c.m / rows) * rows
            executed = 2.0 * c.batch * m_pad * c.n * c.k
            frac = w.causal_fraction if w.traffic is not None else 1.0
            compute += executed * frac / (rate * share) if rate else 0.0
            # weights are widened once per step (packed int4/int8 GEMV/GEMM kernels unpack each
            # block once and reuse it for every row of the batch)
            pro = c.b_prologue.flops + c.b_prologue.converts + c.a_prologue.flops + c.a_prologue.converts
            compute += pro / (self._rate("f32", ("vector",), "matrix" if packed else "vector")[1] * share)
            flops += c.flops * frac
        vunit, vrate = self._rate(w.vector_dtype, ("vector",), "vector")
        compute += (w.vector_flops + w.converts) / (vrate * share) if vrate else 0.0
        if any(c.role.startswith("attention.") for c in w.contractions):
            # the measured per-score cost covers the whole kernel (dots, softmax, rescaling)
            compute = max(compute, self._attention_time(w) / share)
        unit = unit or vunit
        eff = t.efficiency["memory"]
        if w.traffic is not None:
            times = {lvl: b / (t.level(lvl).bandwidth * eff * share) for lvl, b in nbytes.items()}
            times[dev.name] += dev.latency
        else:
            # Weights and the KV cache ("cold" inputs no node of this step produced) come from DRAM
            # unless all of the step's cold data fits in a cache (then it stays resident from one run
            # to the next); activations come from the innermost level holding the node's footprint.
            weights = w.cold_bytes
            acts = max(0.0, footprint - weights)
            w_level = self._level_for(self._weights_total, cores) if weights else dev
            a_level = self._level_for(acts, cores)
            nbytes = {dev.name: 0.0}
            for lvl, b in ((w_level, weights), (a_level, acts)):
                nbytes[lvl.name] = nbytes.get(lvl.name, 0.0) + b
            times = {name: b / (t.level(name).bandwidth * eff * share) for name, b in nbytes.items() if b}
            if not times:
                times = {dev.name: 0.0}
            first = dev if nbytes[dev.name] else (w_level if weights else a_level)
            times[first.name] = times.get(first.name, 0.0) + first.latency
        memory = max(times.values())
        key = "MatMul" if w.op == "Fused" and w.contractions and not any(
            c.role.startswith("attention.") for c in w.contractions) else w.op
        busy = max(compute, memory)
        bound = "compute" if compute >= memory else "memory"
        return NodeCost(w.name, w.op, w.category, busy, flops, nbytes, bound, roofline=bound,
                        unit=unit, compute_s=compute, memory_s=memory,
                        detail={"kernels": w.kernels, "cores": cores, "memory_level_s": times, "overhead_key": key})

    def _splits(self, w: NodeWork) -> bool:
        """Whether the kernel has more than one task to share: a plain GEMM needs two tiles."""
        mm = [c for c in w.contractions if c.role == "matmul"]
        if not mm or len(mm) != len(w.contractions):
            return True
        tm, tn = self.target.array["gemm_task"][:2]
        skinny = int(self.target.array["skinny_rows"])
        return any(c.m < skinny or c.batch * math.ceil(c.m / tm) * math.ceil(c.n / tn) >= 2 for c in mm)

    def _attention_time(self, w: NodeWork) -> float:
        """A row-at-a-time attention kernel's time on one core: per score, a fixed part (the
        online-softmax bookkeeping, one exp) plus a part per head channel (the q·k and p·v work)."""
        a = self.target.array
        score, chan = float(a["attention_score"]), float(a["attention_channel"])
        if not (score or chan):
            return 0.0
        qk = next((c for c in w.contractions if c.role == "attention.qk"), None)
        pv = next((c for c in w.contractions if c.role == "attention.pv"), None)
        if qk is None:
            return 0.0
        scores = qk.batch * qk.m * qk.n * w.causal_fraction   # the kernel skips masked-off keys
        return scores * (score + chan * (qk.k + (pv.n if pv is not None else qk.k)))

    def _level_for(self, nbytes: float, cores: int):
        """The innermost level that holds ``nbytes`` (per-core levels count the cores in use)."""
        for m in reversed(self.target.memory):
            if nbytes <= m.capacity * (m.count if m.per == "device" else min(m.count, cores)):
                return m
        return self.target.device_memory

    def price_graph(self, graph, plan, analysis):
        fp = analysis.footprint
        self._weights_total = fp.total_weights + fp.total_kv
        return super().price_graph(graph, plan, analysis)

    def schedule(self, records: list[NodeCost], plan) -> list[NodeCost]:
        ovh = self.options["kernel_overhead"]
        o = self.target.overheads
        per = float(o["kernel"] if ovh is None else ovh)
        out = []
        for r in records:
            if r.category in ("collective", "transfer"):
                out.append(r)
                continue
            k = int(r.detail.get("kernels", 1))
            launch = per if ovh is not None else o["ops"].get(r.detail.get("overhead_key", r.op), per)
            extra = launch * k if k else float(o["node"])
            if k and r.detail.get("cores", 1) > 1:
                extra += float(o["parallel"])
            if extra:
                r = r.clone(overhead_s=extra, time_s=r.time_s + extra,
                            bound="overhead" if extra > r.time_s else r.bound)
            out.append(r)
        if o["run"]:
            out.append(NodeCost("(run)", "run", "overhead", float(o["run"]), 0.0, {}, "overhead",
                                overhead_s=float(o["run"]), detail={"kernels": 0}))
        return out
