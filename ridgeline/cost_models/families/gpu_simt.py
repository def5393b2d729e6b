"""``gpu_simt``: NVIDIA-style GPUs — SMs with tensor cores and CUDA cores, shared memory, L2, HBM.

What the model does per node (all inputs from the target file):

- **Unit by dtype.** A contraction runs on the tensor cores when they list its precision
  (f32 runs as TF32 unless ``tf32=False``), else on the CUDA cores. Element-wise, normalization
  and softmax work runs on the CUDA cores at the dtype's rate (f32 when the dtype is not listed);
  standalone dtype conversions run at ``array.converts_per_sm_clock`` (the CUDA Programming
  Guide's throughput table). A GEMM widening narrow weights tile by tile (weight-only int8/int4)
  does it either with bit tricks at full ALU rate (``dequant="fast"``, the default: Marlin,
  Machete, TensorRT-LLM) or with conversion instructions (``dequant="convert"``: what
  compiler-generated kernels do), which can make the GEMV slower than its bytes.
- **Tiles in shared memory, waves over SMs.** Each GEMM is tiled the way cuBLAS/CUTLASS kernels
  are: a CTA tile (tm × tn) with a K-step of one 128-byte row per operand, ``array.pipeline_stages``
  buffers of it in shared memory (the tile must fit), optional split-K for skinny shapes. Tiles
  are spread over the SMs; the busiest SM does ``ceil(tiles / SMs)`` of them (wave
  quantization), and pads M and N up to the tile (padding waste; M also to ``array.mma_min_m``).
  A tile's rate is the SM's tensor rate or what shared memory can feed it (bytes per clock ×
  the tile's FLOP/byte), whichever is lower; each tile pays ``overheads.mainloop_fill_ksteps``
  of pipeline fill and epilogue. Tile traffic through L2 is priced at L2 bandwidth; the model
  picks the fastest candidate, as a library's heuristics would.
- **Bytes**: untiled nodes move ``spec.bytes`` at HBM (a tile schedule in ``node.meta`` replaces
  them per level), at ``efficiency.memory`` of nameplate plus the HBM latency per kernel.
- **Overlap.** A kernel's math and its HBM loads overlap, but not perfectly: its time is the
  smooth maximum ``(compute^p + hbm^p)^(1/p)`` (``efficiency.overlap`` = p), which is the plain
  roofline far from the ridge and up to 2^(1/p) slower right at it; on-chip levels (L2, shared
  memory) are a plain maximum.
- **Launches.** Kernels are issued by the host (``overheads.kernel_launch`` each, asynchronous)
  and start no earlier than issued and ``overheads.kernel_gap`` after the previous one ends; with
  ``cuda_graphs=True`` one graph launch replaces the per-kernel host cost and the gap shrinks to
  ``overheads.graph_kernel_gap``. So fusion (fewer kernels) and CUDA graphs both show up.
- **Collectives** (tensor parallelism) are NCCL-style kernels priced on the NVLink/IB links.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

from ..capabilities import Traits
from ..estimate import NodeCost
from ..model import CostModel
from ..parallel import ParallelPlan
from ..target import Field
from ..target import dtype_bytes as _bytes_of
from ..work import DEVICE, Contraction, NodeWork

__all__ = ["CTA_TILES", "GemmCost", "GpuSimtModel"]

#: CTA tile shapes (m, n) the model chooses from: the usual CUTLASS / cuBLAS configurations
CTA_TILES = ((256, 128), (128, 256), (128, 128), (128, 64), (64, 128), (64, 64), (64, 32), (32, 64), (32, 128),
             (16, 128), (16, 256))   # the last ones: skinny (GEMV-like) kernels for a handful of rows
SPLIT_K = (1, 2, 4, 8, 16)


@dataclass(frozen=True)
class GemmCost:
    """The best CTA tiling of one contraction. The tiling figures (``waves`` on) are None when no
    tile fits shared memory and the product streams at the unit's rate."""

    t: float                        # the tiling's time: max(tensor-core time, L2 time)
    compute_s: float
    l2_s: float
    l2_bytes: float
    tile: list[int] | None          # [tm, tn, tk]
    split_k: int
    waves: int | None = None
    wave_efficiency: float | None = None
    padding_efficiency: float | None = None
    prologue_s: float | None = None

    def detail(self) -> dict[str, Any]:
        """The record's ``detail["gemms"]`` entry (without ``t``; the tiling figures when set)."""
        d = asdict(self)
        del d["t"]
        return {k: v for k, v in d.items() if v is not None or k == "tile"}


def _smooth_max(c: float, m: float, p: float) -> float:
    """max(c, m) for p = inf; for finite p a kernel whose math and loads are both large (near the
    ridge) takes longer than either: a pipeline of a few stages never hides one behind the other
    completely. Far from the ridge the larger term dominates and this is the plain roofline."""
    if not math.isfinite(p) or c <= 0 or m <= 0:
        return max(c, m)
    hi = max(c, m)
    return hi * ((c / hi) ** p + (m / hi) ** p) ** (1.0 / p)


class GpuSimtModel(CostModel):
    """SIMT GPU: tensor vs CUDA cores, tiles in smem/L2, waves over SMs, launch overhead."""

    family = "gpu_simt"
    traits = Traits(accumulators_in_registers=True, row_granule_key="mma_min_m", multicast_key="cluster_multicast")
    description = "GPU: tensor/CUDA cores by dtype, CTA tiles in smem/L2, wave quantization, launch overhead"
    schema = {
        "array": {
            "sms": Field("int", None, "streaming multiprocessors"),
            "mma_min_m": Field("int", 16, "smallest M one tensor-core MMA covers (mma.sync m16; wgmma m64)"),
            "pipeline_stages": Field("int", 4, "shared-memory buffers per operand in a GEMM main loop"),
            "converts_per_sm_clock": Field("int", 16, "dtype conversion instructions per SM per clock"),
            "lanes_per_sm_clock": Field("int", 128, "thread-lane instructions an SM issues per clock (4 x 32)"),
            "fast_dequant_ops": Field("float", 1.5, "lane instructions per weight element of a bit-trick "
                                      "dequantization (lop3 unpack + packed subtract/scale)"),
            "smem_bytes_per_clock": Field("int", 128, "shared-memory bytes per SM per clock (32 banks x 4 B)"),
            "cluster_multicast": Field("int", 1, "CTAs of a cluster sharing each operand tile load (TMA multicast)"),
        },
        "overheads": {
            "kernel_launch": Field("time", 4e-6, "host CPU time to issue one kernel (asynchronous)"),
            "kernel_gap": Field("time", 2e-6, "GPU idle between dependent kernels in a stream"),
            "graph_launch": Field("time", 10e-6, "one CUDA graph replay"),
            "graph_kernel_gap": Field("time", 1e-6, "idle between kernels inside a CUDA graph"),
            "mainloop_fill_ksteps": Field("float", 2.0, "K-steps of pipeline fill + epilogue per tile"),
        },
        "efficiency": {
            "matrix": Field("fraction", 0.8, "sustained share of tensor-core peak on the best GEMM shape"),
            "vector": Field("fraction", 0.6, "sustained share of CUDA-core peak in element-wise kernels"),
            "memory": Field("fraction", 0.85, "sustained share of HBM bandwidth of a streaming kernel"),
            "overlap": Field("float", 3.0, "p of the smooth roofline (compute^p + memory^p)^(1/p): how "
                             "imperfectly loads and math overlap near the ridge (inf: ideal max)"),
        },
    }
    option_fields = {
        "attention": Field("str", "flash", "how a fused Attention op runs: 'flash' (FlashAttention-style: scores "
                           "stay on chip, causal blocks skipped — what serving runtimes run) or 'materialized' "
                           "(the score matrix goes through device memory); a tile record in the IR overrides both"),
        "cuda_graphs": Field("bool", False, "replay the step as one CUDA graph"),
        "tf32": Field("bool", True, "run f32 GEMMs on tensor cores as TF32 (TensorRT / ORT default)"),
        "launch_overhead": Field("time", None, "host cost per kernel launch (overrides the target's; "
                                 "PyTorch eager dispatch is ~10-20 us)"),
        "dequant": Field("str", "fast", "how a GEMM widens narrow weights: 'fast' (bit tricks at full ALU rate, "
                         "as Marlin/Machete/TensorRT-LLM kernels do) or 'convert' (conversion instructions, as "
                         "compiler-generated kernels such as Triton's do)"),
        "gqa": Field("str", "packed", "the decode attention kernel: 'packed' (the query heads of a KV group share "
                     "one pass over their KV head on the tensor cores: FlashAttention, FlashInfer, TensorRT-LLM's "
                     "XQA) or 'per_head' (the masked-MHA generation kernel of FasterTransformer and TensorRT-LLM "
                     "before XQA (v0.8): each query head's thread block reads and widens its KV head itself and "
                     "multiplies on the CUDA cores)"),
    }

    def __init__(self, target, **options: Any):
        super().__init__(target, **options)
        t = self.target
        self.sms = int(t.array["sms"])
        self.clock = t.clock_hz or 1.5e9
        self.hbm = t.device_memory
        self.l2 = t.level("l2") if t.has_level("l2") else None
        self.smem = t.level("smem") if t.has_level("smem") else None
        self.eff = t.efficiency
        self.ovh = t.overheads
        self.convert_rate = t.array["converts_per_sm_clock"] * self.sms * self.clock
        if self.options["dequant"] not in ("fast", "convert"):
            from ...ir.errors import BackendError
            raise BackendError(f"option dequant must be 'fast' or 'convert', got {self.options['dequant']!r}")
        self.dequant_rate = (t.array["lanes_per_sm_clock"] * self.sms * self.clock / t.array["fast_dequant_ops"]
                             if self.options["dequant"] == "fast" else self.convert_rate)
        if self.options["gqa"] not in ("packed", "per_head"):
            from ...ir.errors import BackendError
            raise BackendError(f"option gqa must be 'packed' or 'per_head', got {self.options['gqa']!r}")
        self.multicast = max(1, int(t.array["cluster_multicast"]))
        smem_bw = (self.smem.bandwidth / self.smem.count) if self.smem else \
            t.array["smem_bytes_per_clock"] * self.clock
        self.smem_bw_sm = smem_bw
        self.smem_cap = self.smem.capacity if self.smem else 164 * 1024

    # ----------------------------------------------------------------- units
    def _matrix_unit(self, dt: str) -> tuple[str, float]:
        kinds = ("matrix", "vector") if (dt != "f32" or self.options["tf32"]) else ("vector",)
        hit = self.target.best_unit(dt, kinds[:1]) or (self.target.upcast_unit(dt) if kinds[0] == "matrix" else None) \
            or self.target.best_unit(dt, kinds)
        if hit is None:
            hit = self.target.best_unit("f32", ("vector",))
            if hit is None:
                return "none", 0.0
        unit, key = hit
        eff = self.eff["matrix"] if unit.kind == "matrix" else self.eff["vector"]
        return f"{unit.name}:{key}", unit.peak[key] * eff

    def _vector_rate(self, dt: str) -> tuple[str, float]:
        units = self.target.units_of("vector")
        for key in (dt, "f32"):
            rates = [(u, u.peak[key]) for u in units if key in u.peak]
            if rates:
                u, r = max(rates, key=lambda x: x[1])
                return f"{u.name}:{key}", r * self.eff["vector"]
        hit = self.target.best_unit("f32")
        return ("none", 0.0) if hit is None else (f"{hit[0].name}:{hit[1]}", hit[0].peak[hit[1]] * self.eff["vector"])

    # ----------------------------------------------------------------- GEMM tiling
    def _gemm(self, c: Contraction, unit_peak: float, vec_rate: float) -> GemmCost:
        """Best CTA tiling of one contraction: compute seconds, L2 seconds and the choice."""
        elem = _bytes_of(c.dtype)
        tk = max(16, int(128 / elem))
        peak_sm = unit_peak / self.sms
        fill = float(self.ovh["mainloop_fill_ksteps"])
        stages = int(self.target.array["pipeline_stages"])
        mma_m = int(self.target.array["mma_min_m"])
        l2_bw = self.l2.bandwidth if self.l2 else math.inf
        a_b, b_b = _bytes_of(c.a_dtype), _bytes_of(c.b_dtype)
        best: GemmCost | None = None
        for tm, tn in CTA_TILES:
            if tm < mma_m:
                continue
            foot = (tm + tn) * tk * elem * stages
            if foot > self.smem_cap:
                continue
            mt, nt = math.ceil(c.m / tm), math.ceil(c.n / tn)
            intensity = 2.0 * tm * tn / ((tm + tn) * elem)      # FLOP per shared-memory byte
            # skinny (GEMV-like) kernels stream each weight straight into registers, used once:
            # shared memory does not feed them
            rate_sm = peak_sm if tm <= 16 else min(peak_sm, self.smem_bw_sm * intensity)
            # a weight is widened once per step: W4A16 kernels (Marlin, TensorRT-LLM's
            # fpA_intB) dequantize each B fragment in registers once and reuse it for every row
            # tile the CTA owns, on the ALUs while the tensor cores run the previous k-step
            # (overlapped below); an activation prologue is paid per column tile
            pro_b = (c.b_prologue.flops / vec_rate if vec_rate else 0.0) + c.b_prologue.converts / self.dequant_rate
            pro = (c.a_prologue.flops * nt / vec_rate if vec_rate else 0.0) + \
                c.a_prologue.converts * nt / self.dequant_rate
            l2_bytes = ((c.batch * c.m * c.k * a_b) * nt + (c.batch * c.k * c.n * b_b) * mt) / self.multicast
            for split in SPLIT_K:
                if split > 1 and c.k / split < 2 * tk:
                    break
                tiles = mt * nt * c.batch * split
                per_sm = math.ceil(tiles / self.sms)
                ksteps = math.ceil(math.ceil(c.k / split) / tk) + fill
                t_mma = max(per_sm * (2.0 * tm * tn * tk * ksteps) / rate_sm, pro_b)
                partial = 2.0 * c.batch * c.m * c.n * 4 * split if split > 1 else 0.0
                t_l2 = (l2_bytes + partial) / l2_bw
                t = max(t_mma + pro, t_l2)
                if best is None or t < best.t:
                    best = GemmCost(t, t_mma + pro, t_l2, l2_bytes + partial, [tm, tn, tk], split,
                                    waves=math.ceil(tiles / self.sms),
                                    wave_efficiency=tiles / (math.ceil(tiles / self.sms) * self.sms),
                                    padding_efficiency=(c.m * c.n) / (mt * tm * nt * tn), prologue_s=pro + pro_b)
        if best is None:  # no tile fits shared memory: stream at the unit's rate
            t = c.flops / unit_peak if unit_peak else 0.0
            best = GemmCost(t, t, 0.0, 0.0, None, 1)
        return best

    def node_work(self, node, key=None, shard=None) -> NodeWork:
        w = super().node_work(node, key, shard)
        return _per_head(node, w, self.hbm.name) if self.options["gqa"] == "per_head" else w

    # ----------------------------------------------------------------- pricing
    def price_node(self, w: NodeWork) -> NodeCost:
        dev = self.hbm.name
        nbytes = w.bytes_at(dev)
        if w.kernels == 0:
            return NodeCost(w.name, w.op, w.category, 0.0, 0.0, {}, "overhead", detail={"kernels": 0})
        vunit, vrate = self._vector_rate(w.vector_dtype)
        compute = 0.0
        l2_time = 0.0
        l2_bytes = 0.0
        units: list[str] = []
        gemms = []
        frac = w.causal_fraction if w.traffic is not None else 1.0
        for c in w.contractions:
            unit, peak = self._matrix_unit(c.dtype)
            g = self._gemm(c, peak, vrate)
            compute += g.compute_s * frac
            l2_time += g.l2_s * frac
            l2_bytes += g.l2_bytes * frac
            units.append(unit)
            gemms.append(g.detail() | {"role": c.role, "mnk": [c.m, c.n, c.k], "batch": c.batch, "unit": unit})
        vec = w.vector_flops * frac / vrate if vrate else 0.0
        vec += (w.converts + w.detail.get("kv_widen", 0.0)) / self.convert_rate
        compute += vec
        if not units:
            units.append(vunit)
        flops = (sum(c.flops for c in w.contractions) + w.vector_flops) * frac
        # memory: each level with a bandwidth; untiled nodes only know device memory
        mem_times = {dev: self.hbm.latency + nbytes.get(dev, 0.0) / (self.hbm.bandwidth * self.eff["memory"])}
        if w.traffic is not None:
            for level, b in nbytes.items():
                if level != dev:
                    m = self.target.level(level)
                    mem_times[level] = b / m.bandwidth
        elif self.l2 is not None and l2_bytes:
            mem_times["l2"] = l2_time
            nbytes["l2"] = l2_bytes
        memory = max(mem_times.values())
        # DRAM's long latency is what a few pipeline stages cannot fully hide; on-chip levels are
        # priced as a plain roofline
        busy = max(_smooth_max(compute, mem_times[dev], float(self.eff["overlap"])), memory)
        bound = "compute" if compute >= memory else "memory"
        detail: dict[str, Any] = {"kernels": w.kernels, "memory_level_s": mem_times}
        if gemms:
            detail["gemms"] = gemms
        if w.tile is not None:
            detail["tile"] = w.tile
        if w.detail:
            detail.update({k: v for k, v in w.detail.items() if k not in detail})
        return NodeCost(w.name, w.op, w.category, busy, flops, nbytes, bound, unit=units[0],
                        compute_s=compute, memory_s=memory, roofline=bound, detail=detail)

    def price_comm(self, comm, plan: ParallelPlan) -> NodeCost:
        rec = super().price_comm(comm, plan)
        rec.detail["kernels"] = 1  # NCCL collectives are kernels in the stream too
        return rec

    def schedule(self, records: list[NodeCost], plan: ParallelPlan) -> list[NodeCost]:
        """The stream timeline: asynchronous host issue, inter-kernel gaps, optional CUDA graph."""
        graphs = bool(self.options["cuda_graphs"])
        launch = self.options["launch_overhead"]
        launch = float(self.ovh["kernel_launch"] if launch is None else launch)
        gap = float(self.ovh["graph_kernel_gap"] if graphs else self.ovh["kernel_gap"])
        gpu = 0.0
        host: dict[int, float] = {}
        for r in records:
            kernels = int(r.detail.get("kernels", 1))
            if kernels == 0:
                r.time_s = 0.0
                continue
            busy = r.time_s
            h = host.get(r.stage)
            if h is None:
                h = float(self.ovh["graph_launch"]) if graphs else 0.0
            if not graphs:
                h += launch * kernels
            host[r.stage] = h
            start = max(gpu + gap * kernels, h)
            end = start + busy
            r.overhead_s = start - gpu
            r.time_s = end - gpu
            gpu = end
            if r.bound != "communication" and r.overhead_s > busy:
                r.bound = "overhead"
        return records


def _per_head(node, w: NodeWork, dev: str) -> NodeWork:
    """``w`` as a masked-MHA generation kernel runs a decode attention (``gqa="per_head"``): one
    thread block per (sequence, query head) reads its KV head's cache, widens a narrow cache with
    conversion instructions and forms the dot products on the CUDA cores. Against the packed
    kernels the FLOPs are the same, but the products are vector work, each KV head is widened
    once per query head of its group, and on-chip levels carry a group's K/V once per head
    (device memory still sees them once: a group's blocks run side by side and share L2)."""
    att = node if node.op == "Attention" else next((n for n in node.body or () if n.op == "Attention"), None)
    if att is None:
        return w
    from ...ir.ops.attention import node_attention_dims
    _, hq, sq, _, hkv, _, _, _ = node_attention_dims(att)
    if sq != 1:
        return w                                          # prefill runs the fused (tensor-core) kernel
    group = hq // hkv if isinstance(hq, int) and isinstance(hkv, int) and hkv and hq % hkv == 0 else 1
    products = [c for c in w.contractions if c.role.startswith("attention.")]
    if not products:
        return w
    traffic = None if w.traffic is None else \
        {lv: (b if lv in (dev, DEVICE) else b * group) for lv, b in w.traffic.items()}
    out = replace(w, contractions=tuple(c for c in w.contractions if not c.role.startswith("attention.")),
                  vector_flops=w.vector_flops + sum(c.flops for c in products), traffic=traffic,
                  detail={**w.detail, "gqa": "per_head",
                          "kv_widen": sum(c.b_prologue.converts for c in products) * group})
    return out
