"""Traffic models of tiled kernels: bytes each memory level moves for a given tile shape.

These are what a tiling pass (``tile{target=…}``) searches over, and they produce records in the
``node.meta["tile"]`` contract (docs/cost_models.md) that every cost model prices:

- ``gemm_traffic``: an (M×K)·(K×N) product blocked into tm×tn output tiles with K-steps of tk.
  Each tile reads an A panel and a B panel once, so the inner level sees
  ``M·N·K·(1/tn + 1/tm)`` operand elements; the outer level sees each operand once when the
  panels of a tile row/column stay resident in the level in between, else as often as they are
  re-read.
- ``attention_traffic``: FlashAttention-2: Q is split into blocks of ``block_q`` rows (query
  heads of a KV group packed together), K and V stream through on-chip memory once per Q block,
  the output is written once, and the N×N score matrix never leaves the chip: the traffic above
  the tile is ``Q + O + (K + V)·ceil(Sq·g / block_q)`` — O(N²·d²/M) with M the on-chip bytes a
  block uses — instead of the untiled O(N²); device memory sees K and V only once when a level in
  between (L2) holds a head's K and V. Causal masking skips the blocks above the diagonal.
- ``flash_attention_tile(node, target)``: the record for one ``Attention`` node, with the block
  size the target's on-chip memory allows.
"""

from __future__ import annotations

import math
from typing import Any

from ..ir import Node
from ..ir.ops.attention import node_attention_dims
from .target import Target
from .work import NodeWork, node_work, with_tile

__all__ = ["gemm_traffic", "attention_traffic", "flash_attention_tile", "flash_attention_work", "on_chip_level"]


def gemm_traffic(m: int, n: int, k: int, *, tm: int, tn: int, a_bytes: float, b_bytes: float,
                 c_bytes: float, batch: int = 1, resident: float = math.inf) -> dict[str, float]:
    """Bytes at the outer level and the tile level of a tm×tn-blocked GEMM.

    ``resident`` is the capacity (bytes) of the level between them (L2 / VMEM): when a row of A
    panels (tm×K) plus one B panel fit in it, A is read from the outer level once, else once per
    column of tiles (and likewise for B).
    """
    mt, nt = math.ceil(m / tm), math.ceil(n / tn)
    a = batch * m * k * a_bytes
    b = batch * k * n * b_bytes
    c = batch * m * n * c_bytes
    inner = a * nt + b * mt + c
    a_reads = 1 if (tm * k * a_bytes + k * tn * b_bytes) <= resident else nt
    b_reads = 1 if (k * n * b_bytes) <= resident else mt
    outer = a * a_reads + b * b_reads + c
    return {"outer": outer, "inner": inner}


def attention_traffic(*, batch: int, q_heads: int, kv_heads: int, sq: int, skv: int, d: int, dv: int,
                      elem: float, block_q: int, causal: bool = False, past: int = 0,
                      kv_elem: float | None = None, resident: float = 0.0) -> dict[str, float]:
    """FlashAttention-2 bytes at the outer level (``outer``) and through on-chip memory (``inner``).

    ``inner`` re-reads K and V once per Q block: ``(K+V)·ceil(Sq·g / block_q)``, the N²·d²/M term.
    ``outer`` is the same unless one KV head's K and V fit in ``resident`` bytes of a level in
    between (a GPU's L2): the Q blocks of a head run concurrently and share those reads, so device
    memory sees K and V once.
    """
    kv_elem = elem if kv_elem is None else kv_elem
    group = max(1, q_heads // max(1, kv_heads))
    t = skv + past
    q = batch * q_heads * sq * d * elem
    o = batch * q_heads * sq * dv * elem
    kv = batch * kv_heads * t * (d + dv) * kv_elem
    blocks = math.ceil(sq * group / block_q)
    visible = 1.0
    if causal and sq > 1:
        visible = (past + (sq + 1) / 2) / t          # share of K/V blocks a causal Q block reads
    inner = q + o + kv * max(1.0, blocks * visible)
    per_head = t * (d + dv) * kv_elem
    outer = q + o + kv if per_head <= resident else inner
    return {"outer": outer, "inner": inner, "q_blocks": blocks, "visible": visible}


def on_chip_level(target: Target):
    """The innermost on-chip level a tile lives in (shared memory, VMEM, SBUF, SRAM slices)."""
    levels = list(target.memory)
    return levels[-1] if len(levels) > 1 else levels[0]


def flash_attention_tile(node: Node, target: Target, *, block_q: int | None = None) -> dict[str, Any]:
    """A ``node.meta["tile"]`` record for an ``Attention`` node run FlashAttention-style on ``target``.

    The Q block is as tall as the on-chip level allows: a Q block and a K/V block of 64 rows, both
    double-buffered, must fit its capacity (per instance).
    """
    if node.op != "Attention":
        raise ValueError(f"flash_attention_tile needs an Attention node, got {node.op}")
    b, hq, sq, d, hkv, skv, dv, past = node_attention_dims(node)
    elem = node.inputs[0].type.dtype.bits / 8
    kv_elem = node.inputs[1].type.dtype.bits / 8
    level = on_chip_level(target)
    block_kv = 64
    if block_q is None:
        block_q = 64
        for cand in (256, 192, 128, 64):
            foot = 2 * (cand * (d + dv) * elem + block_kv * (d + dv) * kv_elem) + cand * block_kv * 4
            if foot <= level.capacity:
                block_q = cand
                break
    causal = bool(node.attr("is_causal"))
    levels = list(target.memory)
    middle = levels[1] if len(levels) > 2 else None       # e.g. L2 between HBM and shared memory
    tr = attention_traffic(batch=b, q_heads=hq, kv_heads=hkv, sq=sq, skv=skv, d=d, dv=dv, elem=elem,
                           block_q=block_q, causal=causal, past=past, kv_elem=kv_elem,
                           resident=middle.total_capacity / 2 if middle is not None else 0.0)
    t = skv + past
    # the KV cache rows this step adds are written once (present_* alias past_*)
    new_kv = b * hkv * skv * (d + dv) * kv_elem if len(node.outputs) > 1 else 0.0
    flops = (2.0 * b * hq * sq * t * (d + dv) + 5.0 * b * hq * sq * t) * tr["visible"]
    foot = 2 * (block_q * (d + dv) * elem + block_kv * (d + dv) * kv_elem) + block_q * block_kv * 4
    return {"target": target.name, "shape": {"q": block_q, "kv": block_kv, "d": d},
            "order": ["batch", "kv_head", "q", "kv"], "buffers": 2, "level": level.name,
            "traffic": {target.device_memory.name: tr["outer"] + new_kv,
                        **({middle.name: tr["inner"]} if middle is not None else {}), level.name: tr["inner"]},
            "footprint": {level.name: foot}, "flops": flops}


def flash_attention_work(node: Node, w: NodeWork, target: Target, whole: NodeWork | None = None) -> NodeWork:
    """``w`` (the work of an untiled ``Attention`` node, or of a ``Fused`` kernel around one, possibly
    one device's shard of ``whole``) as a FlashAttention kernel runs it on ``target``: the score
    matrix stays on chip, K/V blocks stream through the on-chip level once per Q block, causal
    blocks above the diagonal are skipped — what every serving runtime's fused attention does
    (FlashAttention-2/3 and FlashInfer on GPUs, splash attention on TPUs, NKI flash attention on
    Trainium).

    The kernel's own inputs and outputs stay as ``w`` counts them (a narrow KV cache is read
    narrow; KV heads replicated under tensor parallelism are read whole); device memory
    additionally sees the K/V re-reads a block order cannot avoid, in the shard's share."""
    whole = w if whole is None else whole
    att = node if node.op == "Attention" else next((n for n in node.body or () if n.op == "Attention"), None)
    if att is None or w.traffic is not None or w.extra_bytes <= 0 or not whole.flops:
        return w
    share = w.flops / whole.flops
    tile = flash_attention_tile(att, target)
    dev = target.device_memory.name
    own = node_work(att) if att is not node else whole
    rereads = max(0.0, tile["traffic"][dev] - (own.device_bytes - own.extra_bytes)) * share
    traffic = {lv: b * share for lv, b in tile["traffic"].items()}
    traffic[dev] = w.device_bytes - w.extra_bytes + rereads
    flops = (float(tile["flops"]) + (whole.flops - own.flops)) * share
    out = with_tile(w, {**tile, "traffic": traffic, "flops": flops})
    out.extra_bytes = 0.0
    out.detail["attention"] = "flash"
    return out
