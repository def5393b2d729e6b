"""What the spatial families (``wafer_scale``, ``dataflow``) share: a deployment the machine lays
out itself rather than a (tp, pp) split.

Both place a model's resident bytes (weights, KV cache) in on-chip SRAM across as many
wafers / chips as they need, so the framework's tensor/pipeline degrees do not apply; these
helpers check the degrees a user passed and rewrite an estimate's memory plan and parallel
record once the family knows its device count.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from ..ir import Graph, Node
from ..ir.errors import BackendError, TargetError
from .estimate import Estimate, MemoryPlan, NodeCost, bytes_by_device
from .llm import llm_metrics
from .quantities import format_quantity
from .work import NodeWork, Prologue

__all__ = [
    "context_window",
    "fastest_weight_form",
    "finish_estimate",
    "layer_blocks",
    "require_no_degrees",
    "resident_bytes",
    "sized_for_window",
    "widened",
]


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


def _narrow_int(dtype) -> bool:
    return dtype.name[0] in "iu" and dtype.bits <= 8


def resident_bytes(graph: Graph, widen: bool = False) -> dict[int, tuple[float, float]]:
    """id(node) -> (weight bytes, KV-cache bytes) it keeps resident; each constant is counted at
    its first reader (``widen``: int8/int4 weights as the 16-bit values they dequantize to)."""
    seen: set[int] = set()
    out: dict[int, tuple[float, float]] = {}
    for n in graph:
        w = 0.0
        for v in n.inputs:
            if v is not None and v.const and id(v) not in seen:
                seen.add(id(v))
                num = v.type.numel
                if isinstance(num, int):
                    w += 2.0 * num if widen and _narrow_int(v.type.dtype) else float(v.type.dtype.nbytes(num))
        kv = 0.0
        if n.op == "Attention" or (n.op == "Fused" and n.body is not None and any(b.op == "Attention" for b in n.body)):
            for v in n.outputs[1:3]:
                num = v.type.numel
                kv += float(v.type.dtype.nbytes(num)) if isinstance(num, int) else 0.0
        if w or kv:
            out[id(n)] = (w, kv)
    return out


_LONGEST = 1 << 20      # the longest window a deployment is sized for (tokens)


def context_window(graph: Graph, res: dict[int, tuple[float, float]], system_bytes: float) -> int | None:
    """The context the deployment is sized for: the model's whole window (``max_context``) when its
    KV cache fits the system, else the largest halving of it that still holds this context.

    An SRAM machine keeps the KV cache on chip, so the chip/wafer count follows batch × context;
    sizing it for the actual context would make a longer context add chips and, with them, the
    SRAM bandwidth and MACs that read it — a longer context would come out cheaper. A deployment
    is provisioned for the window it serves, so it does not depend on this step's context (and
    the time per token then grows with context by construction). None: not an LLM preset."""
    meta = graph.meta.get("llm") if isinstance(graph.meta.get("llm"), dict) else {}
    ctx, top = meta.get("context"), meta.get("max_context")
    if not isinstance(ctx, int) or not isinstance(top, int) or ctx <= 0 or top <= 0:
        return None
    w = sum(x for x, _ in res.values())
    kv = sum(x for _, x in res.values())

    def fits(window: int) -> bool:
        return w + kv * window / ctx <= system_bytes

    window = top
    if ctx > top:
        # past the learned window (RoPE models run longer): the longest doubling of it the
        # system holds, so that this deployment too does not follow the step's context
        while window < ctx or (window < _LONGEST and fits(window * 2)):
            window *= 2
    while window // 2 >= ctx and not fits(window):
        window //= 2
    return window if fits(window) else ctx


def sized_for_window(res: dict[int, tuple[float, float]], graph: Graph,
                     system_bytes: float) -> dict[int, tuple[float, float]]:
    """``res`` with each KV cache at the deployment's window (``context_window``): the bytes the
    layout places. The work of the step still reads only this step's context."""
    window = context_window(graph, res, system_bytes)
    if window is None:
        return res
    f = window / graph.meta["llm"]["context"]
    return {k: (w, kv * f) for k, (w, kv) in res.items()}


def _weight_only(graph: Graph) -> bool:
    """Narrow integer weights widened before a 16-bit multiply (not W8A8, whose products stay
    narrow): a preset says so in its metadata, an imported graph by what reads the weights."""
    meta = graph.meta.get("llm") if isinstance(graph.meta.get("llm"), dict) else None
    if meta is not None:
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


def fastest_weight_form(model: Any, graph: Graph, run: Callable[[], Estimate]) -> Estimate:
    """``run()`` as the graph stands and, when its weights are int8/int4, again with them widened
    to 16-bit at load (``model.widen``); the faster deployment that fits.

    An SRAM machine's MACs are 16-bit: narrow weights need fewer chips/wafers, but every weight
    is then widened on the fly on the chip that holds it, and fewer chips give each layer fewer
    MACs and (LPU) fewer install streams. A deployer whose narrow weights come out slower stores
    them wide instead, which is always possible: the 16-bit model's deployment holds them."""
    model.widen = False
    if not _weight_only(graph):
        return run()
    try:
        narrow: Estimate | None = run()
    except TargetError:
        narrow = None
    model.widen = True
    try:
        wide = run()
    except TargetError:
        wide = None
    finally:
        model.widen = False
    if wide is None or (narrow is not None and narrow.time_s <= wide.time_s):
        return narrow if narrow is not None else run()
    why = (f"dequantizing them on the fly would take {format_quantity(narrow.time_s, 'time')} per step"
           if narrow is not None else "the narrow layout does not fit")
    wide.notes.append(f"int8/int4 weights widened to 16-bit at load ({wide.memory.devices if wide.memory else '?'} "
                      f"{model.device_word}s): {why}")
    wide.detail["weight_form"] = "widened at load"
    return wide


def finish_estimate(model: Any, graph: Graph, est: Estimate, companion: Estimate | None, *, devices: int,
                    weights: float, kv: float, capacity: float, note: str, detail: dict[str, Any]) -> Estimate:
    """Record the family's own deployment (``devices`` wafers/chips, the busiest one holding
    ``weights`` + ``kv`` of ``capacity``) on ``est`` and recompute its LLM metrics."""
    est.parallel = {"tp": 1, "pp": devices}
    # bytes per device: the busiest wafer / chip (a node split over chips counts on its first)
    est.bytes, est.total_bytes = bytes_by_device(est.nodes, 1, _device_of)
    total_w = est.memory.total_weights_bytes if est.memory else 0.0
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


def _device_of(r: NodeCost) -> int:
    chips = r.detail.get("chips")
    return int(chips[0]) if chips else int(r.detail.get("wafer", 0))
