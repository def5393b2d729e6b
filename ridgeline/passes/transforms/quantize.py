"""``quantize{scheme=int4-g128}``: weight-only int8/int4/fp8, W8A8 and a narrow KV cache.

The scheme (``quantize_schemes``) says what to quantize; the rewrites (``quantize_rewrite``) say
how it is represented: QuantizeLinear/DequantizeLinear (blocked, as ONNX opset 21+) inside
``Fused`` quantized-GEMM and attention kernels, so the result runs on the numpy backend, exports
to ONNX that onnxruntime runs, and is priced by the cost models at its narrow bytes. Weightless
graphs (the presets) get typed constants: the estimate sees quantized bytes without any data.

Options: ``scheme`` (``int8``, ``int4-g128``, ``int4-asym-g32`` (float offset), ``int4-zp-g32`` (integer zero point), ``nf4-g64``,
``fp8``, ``fp8-tensor``, ``fp8-e5m2``, ``w8a8``, ``w8a8-static``, ``w8a8-fp8``, ``w4a8``,
``w4a16``, ``kv-int8``, ``kv-fp8``, ``none``; joined with ``+``), ``group`` (input channels per
weight scale; ``-gN`` in the scheme says the same), ``kv`` (``int8``/``fp8``: also the KV cache),
``method`` (``rtn``, or calibrated: ``awq``, ``gptq``, ``awq-gptq``, ``smoothquant``; ``damp``: GPTQ's Hessian
damping), ``clip`` (``output``: integer ranges searched on the output error, AWQ's auto_clip), ``calibration``
(``minmax`` or ``percentile``) with ``percentile``, ``samples`` and ``seed`` for the seeded random
inputs static scales and calibrated methods use (``quantize_graph(..., samples=[feeds])`` takes
real ones, e.g. token windows of a text), ``skip`` (GEMMs kept in full precision: ``lm_head``,
``first``, ``last``, ``layer:N``, name globs; ``exclude`` is the older spelling), ``rotate`` (the same
patterns: GEMMs whose input is rotated by a block Hadamard first, QuaRot — ``quantize_rotate``).

Any group size works: when it does not divide a GEMM's input channels the last group is shorter
(ONNX blocked quantization's ``ceil(K / block_size)`` scales); a layer with fewer input channels
than the group is one group (per-channel). Run it before ``tile``: schedules of the nodes it
replaces are dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ...ir import Graph
from ...ir.errors import PassError
from ..base import Pass, PassContext, PassResult
from ..registry import register_pass
from .quantize_calibrate import calibrate, default_samples
from .quantize_calibrated import apply_method
from .quantize_methods import METHODS, integer_only
from .quantize_rewrite import (
    add_dynamic_quantizer,
    add_static_quantizer,
    find_candidates,
    kv_sites,
    quantize_weight,
    rewrite_attention_kv,
    rewrite_concat_kv,
    rewrite_matmul,
)
from .quantize_rotate import rotate_gemms
from .quantize_schemes import Scheme, parse_scheme
from .quantize_skip import select_skipped

__all__ = ["Quantize", "QuantizeSummary", "quantize_graph", "quantize_inputs"]

log = logging.getLogger("ridgeline.passes")


@dataclass
class QuantizeSummary:
    """What ``quantize_graph`` did."""

    scheme: str
    gemms: int = 0
    activations: int = 0
    kv_layers: int = 0
    notes: list[str] = field(default_factory=list)
    calibrated: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.gemms or self.activations or self.kv_layers)


def _split(x: Sequence[str] | str) -> list[str]:
    return [e.strip() for e in x.split(",") if e.strip()] if isinstance(x, str) else list(x)


def quantize_graph(graph: Graph, scheme: str | Scheme = "int8", *, group: int = 0, kv: str = "",
                   calibration: str = "minmax", percentile: float = 99.99,
                   samples: int | Sequence[Mapping[str, np.ndarray]] | None = 4, seed: int = 0,
                   exclude: Sequence[str] | str = (), skip: Sequence[str] | str = (), method: str = "rtn",
                   evaluator: Callable | None = None, damp: float = 0.01, clip: str = "weight",
                   rotate: Sequence[str] | str = ()) -> QuantizeSummary:
    """Quantize ``graph`` in place (see the module docstring); ``samples``: calibration inputs, or
    how many seeded random ones to draw; ``skip``: GEMMs kept in full precision (``skip_patterns``);
    ``method``: ``rtn`` (round to nearest), ``awq``, ``gptq``, ``awq-gptq`` or ``smoothquant`` (calibrated);
    ``damp``: GPTQ's Hessian damping (share of its mean diagonal); ``clip``: integer ranges searched
    on the weight's rounding error (``weight``) or on the GEMM's output error on the samples
    (``output``: AWQ's ``auto_clip``); ``rotate``: GEMMs (``skip``'s patterns) computed as
    ``(x·R)·(Rᵀ·W)``, ``R`` a block Hadamard, before calibration. Returns a summary; bad options raise ``PassError``."""
    s = scheme if isinstance(scheme, Scheme) else parse_scheme(scheme, group=group or None, kv=kv or None)
    if not 0 < damp <= 1:
        raise PassError(f"quantize: damp must be in (0, 1], got {damp}")
    if clip not in ("weight", "output"):
        raise PassError(f"quantize: clip must be weight or output, got {clip!r}")
    if method not in METHODS:
        raise PassError(f"quantize: method must be one of {', '.join(METHODS)}, got {method!r}")
    if method == "smoothquant" and s.activations == "none":
        raise PassError(f"quantize: method=smoothquant moves activation outliers into the weights for schemes "
                        f"that quantize activations (w8a8, w4a8); scheme {s.name} does not — use awq")
    integer_only(s, method, clip)     # before the calibration walk, not after it: minutes on a real model
    skip = _split(skip) + _split(exclude)
    summary = QuantizeSummary(s.name)
    cands, skipped = find_candidates(graph) if s.weights else ([], [])
    summary.notes += skipped
    skipped_by = select_skipped(graph, cands, skip)
    if skipped_by:
        summary.notes.append(f"kept in full precision (skip): {len(skipped_by)} GEMMs, e.g. %{skipped_by[0].label}")
    to_rotate = select_skipped(graph, cands, _split(rotate), "rotate", skipped_by)
    cands = [c for c in cands if not any(c is d for d in skipped_by)]
    rotated = rotate_gemms(graph, to_rotate, s.group, seed) if rotate else 0
    if rotated:
        summary.notes.append(f"rotated (block Hadamard) the inputs of {rotated} GEMMs")
    elif to_rotate:   # matched but weightless: say so, and record no rotation that did not happen
        summary.notes.append(f"weightless graph: rotate= needs weights; {len(to_rotate)} GEMMs not rotated")
    sites, kv_notes = kv_sites(graph) if s.kv else ([], [])
    summary.notes += kv_notes
    # ---- calibration: static activation scales and KV-cache scales
    ranges: dict[str, np.ndarray] = {}
    wanted: dict[str, int | None] = {}
    smoothing = method in ("awq", "awq-gptq", "smoothquant")
    if s.activations == "static":     # per channel when a method divides x by per-channel scales
        wanted.update({c.x.name: c.x.type.rank - 1 if smoothing else None for c in cands})
    for _, _, values in sites:
        for v in values:
            wanted[v.name] = 1
    weightless = any(c.data is None for c in graph.constants.values())
    feeds = target = None    # the calibration feeds, drawn once for the static scales and the method
    if wanted and not weightless:
        feeds, target = _samples(graph, samples, seed)
        ranges = calibrate(target, wanted, feeds, evaluator=evaluator, method=calibration, percentile=percentile)
        summary.calibrated = True
    elif wanted:
        summary.notes.append("weightless graph: static scales are typed constants without data (estimates only)")
    # ---- calibrated methods: scaled or error-compensated weights (and activation scales)
    adjusted: dict[int, np.ndarray] = {}
    params: dict[int, tuple] = {}
    if (method != "rtn" or clip == "output") and cands:
        if weightless:
            summary.notes.append(f"weightless graph: method={method} needs weights; rounded to nearest")
        else:
            if feeds is None:
                feeds, target = _samples(graph, samples, seed)
            adjusted, params = apply_method(graph, target, cands, s, method, feeds, evaluator, seed, damp=damp,
                                            clip=clip, ranges=ranges)
            summary.calibrated = True
    # ---- activations first (a value feeding several GEMMs is quantized once), then the GEMMs
    act_of: dict[int, tuple] = {}
    for c in cands:
        act = None
        if s.activations != "none":
            if c.mm.op == "Gemm" and c.mm.attr("transA"):
                continue
            hit = act_of.get(id(c.x))
            if hit is None:
                if s.activations == "dynamic":
                    hit = add_dynamic_quantizer(graph, c.x, s.act_dtype, c.node)
                else:
                    amax = ranges.get(c.x.name)
                    hit = add_static_quantizer(graph, c.x, s.act_dtype,
                                               None if amax is None else float(np.max(amax)), c.node)
                act_of[id(c.x)] = hit
                summary.activations += 1
            act = hit
        qw = quantize_weight(graph, c, s, adjusted.get(id(c)), params.get(id(c)))
        w = c.w
        rewrite_matmul(graph, c, qw, act=act)
        if not w.uses:   # graph outputs are uses
            graph.remove_constant(w)
        summary.gemms += 1
    # ---- the KV cache
    concat_sites = 0
    for kind, n, values in sites:
        if kind == "concat":
            rewrite_concat_kv(graph, n, s.kv, ranges.get(values[0].name))
            concat_sites += 1
            continue
        res = rewrite_attention_kv(graph, n, s.kv, {i: ranges.get(v.name) for i, v in zip((1, 2), values)})
        if isinstance(res, str):
            summary.notes.append(f"KV cache of %{n.outputs[0].name} kept: {res}")
        else:
            summary.kv_layers += 1
    summary.kv_layers += concat_sites // 2      # keys and values: two Concat sites per layer
    if s.weights and not summary.gemms and not skipped_by:    # say why, not silently nothing
        why = next((n for n in summary.notes if "fold it first" in n), None) or (
            summary.notes[0] if summary.notes else "no MatMul/Gemm reads a constant 2-D float weight")
        log.warning("quantize{scheme=%s}: no GEMM quantized: %s", s.name, why)
    if summary.changed:
        # a second pass (a mixed recipe) rewrites the record but keeps the rotations an earlier one
        # applied: they are still in the graph
        prev = (graph.meta.get("quantization") or {}).get("rotate", "")
        rotations = list(dict.fromkeys(_split(prev) + (_split(rotate) if rotated else [])))
        graph.meta["quantization"] = {"scheme": s.name, "group": s.group, "calibration": calibration
                                      if summary.calibrated else "none", "method": method, "clip": clip}
        if rotations:     # only when any: the records (and golden hashes) of other pipelines stay
            graph.meta["quantization"]["rotate"] = ",".join(rotations)
    return summary


def quantize_inputs(graph: Graph, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``feeds`` for a graph whose KV-cache inputs became narrow: each full-precision array given
    for a narrow input is quantized with the scale the graph dequantizes it with."""
    from .quantize_schemes import quantize_array
    out = dict(feeds)
    for v in graph.inputs:
        a = out.get(v.name)
        if a is None or np.asarray(a).dtype == v.type.dtype.np_dtype:
            continue
        dq = _dequantizer_of(v)
        if dq is None:
            raise PassError(f"input %{v.name} is {v.type} but got {np.asarray(a).dtype}, and no DequantizeLinear "
                            f"says how to quantize it")
        node, scale = dq
        axis = node.attr("axis") % max(1, v.type.rank)
        shape = [1] * v.type.rank
        if scale.data.size > 1:
            shape[axis] = scale.data.size
        out[v.name] = quantize_array(np.asarray(a), scale.data.reshape(shape), v.type.dtype.name, axis, 0)
    return out


def _dequantizer_of(v):
    """(DequantizeLinear node, its constant outer scale) reading graph input ``v``."""
    for user, i in v.uses:
        if user.op == "DequantizeLinear" and i == 0 and user.inputs[1].data is not None:
            return user, user.inputs[1]
        if user.op == "Fused" and user.body is not None:
            inner = user.body.inputs[i]
            for n, j in inner.uses:
                if n.op == "DequantizeLinear" and j == 0:
                    k = next((m for m, b in enumerate(user.body.inputs) if b is n.inputs[1]), None)
                    scale = user.inputs[k] if k is not None else n.inputs[1]
                    if scale is not None and scale.data is not None:
                        return n, scale
    return None


def _samples(graph: Graph, samples, seed: int) -> tuple[list, Graph]:
    """The calibration feeds (given, or that many seeded random ones) and the graph to run them on."""
    feeds = default_samples(graph, max(1, int(samples or 1)), seed) if isinstance(samples, int) or samples is None \
        else list(samples)
    return feeds, graph if not graph.symbols() else _bound_for(graph, feeds)


def _bound_for(graph: Graph, feeds: Sequence[Mapping[str, np.ndarray]]) -> Graph:
    """A copy of ``graph`` with its symbolic dims bound to the sample's sizes (for calibration)."""
    binding: dict[str, int] = {}
    first = feeds[0]
    for v in graph.inputs:
        arr = first.get(v.name)
        if arr is None:
            continue
        for d, n in zip(v.type.shape, np.shape(arr)):
            if isinstance(d, str) and d.isidentifier():
                binding.setdefault(d, int(n))
    return graph.bind(binding)


@register_pass("quantize")
class Quantize(Pass):
    """Quantize weights (int8/int4/fp8, per channel or group), activations (W8A8) and the KV cache."""

    #: int8, int4, fp8, fp8-e5m2, w8a8, w8a8-static, w8a8-fp8, kv-int8, kv-fp8, none (join with +; -gN: groups)
    scheme: str = "int8"
    #: input channels per weight scale (0: one scale per output channel)
    group: int = 0
    #: also store the KV cache narrow: int8 or fp8
    kv: str = ""
    #: how static scales are calibrated
    calibration: Literal["minmax", "percentile"] = "minmax"
    #: the percentile of |x| a static scale covers (calibration=percentile)
    percentile: float = field(default=99.99, metadata={"lo": 0, "hi": 100})
    #: seeded random input sets to calibrate on
    samples: int = field(default=4, metadata={"lo": 1})
    #: seed of the calibration inputs
    seed: int = 0
    #: comma-separated name fragments of GEMMs to keep in full precision (same as skip)
    exclude: str = ""
    #: GEMMs kept in full precision: name globs/fragments, lm_head, first, last, layer:N, layer:A-B
    skip: str = ""
    #: rtn (round to nearest), awq, gptq, awq-gptq (AWQ's scales, then GPTQ), smoothquant (calibrated on the samples)
    method: Literal["rtn", "awq", "gptq", "awq-gptq", "smoothquant"] = "rtn"
    #: GPTQ's Hessian damping, a share of its mean diagonal (AutoGPTQ's percdamp; more for few samples)
    damp: float = field(default=0.01, metadata={"lo": 0, "hi": 1})
    #: integer ranges searched on the weight's rounding error, or on the output error on the samples (AWQ's auto_clip)
    clip: Literal["weight", "output"] = "weight"
    #: GEMMs (skip's patterns) whose input is rotated by a seeded block Hadamard first (QuaRot), e.g. down_proj
    rotate: str = ""

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        summary = quantize_graph(graph, self.scheme, group=self.group, kv=self.kv, calibration=self.calibration,
                                 percentile=self.percentile, samples=self.samples, seed=self.seed,
                                 exclude=self.exclude, skip=self.skip, method=self.method,
                                 evaluator=ctx.evaluator, damp=self.damp, clip=self.clip, rotate=self.rotate)
        for note in summary.notes[:8]:
            ctx.note(note)
        stats: dict[str, Any] = {"gemms": summary.gemms, "activations": summary.activations,
                                 "kv_layers": summary.kv_layers}
        return PassResult(graph, summary.changed, tuple(ctx.notes), stats=stats)
