"""Applying a calibrated method (``quantize{method=awq|gptq|smoothquant}``) to a graph.

Sequential, as the GPTQ paper and AutoGPTQ/AutoAWQ calibrate: the samples run through the graph
node by node, all samples in lockstep; when the walk reaches the first GEMM reading an
activation, that activation's statistics (``quantize_calibrate.ActivationStats``, from the
*already quantized* upstream layers) drive the method (``quantize_methods``) for every GEMM
sharing it, and from then on the walk computes those GEMMs with their quantized weights. So
layer l+1 is calibrated on what the quantized layers 0..l hand it, and each GEMM's rounding
error is compensated for the inputs it will really see.

AWQ and SmoothQuant divide an activation by per-channel scales: folded into the normalization
that produces it (its scale, and bias) when nothing else reads that output, else an explicit
``Mul`` in front of the GEMMs sharing it (applied after the walk); the GEMMs' weights are
multiplied by the same scales, so the unquantized function is unchanged. GPTQ changes only the
weights (and fixes their scales). Activation quantization (W8A8) is not simulated in the walk.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from ...ir import Graph, Value
from ...ir.errors import PassError
from .quantize_calibrate import ActivationStats, constant_arrays, last_uses, sample_env
from .quantize_methods import awq_scales, gptq, gptq_factor, integer_only, roundtrip, smooth_scales
from .quantize_schemes import fit_weight, stored_layout

__all__ = ["apply_method"]

#: multiply-adds one AWQ trial may spend on its output-error check (rows × K × N)
_AWQ_BUDGET = 4e8


def _kn(c, data: np.ndarray) -> np.ndarray:
    """The weight as K × N (input × output channels) — or back: the transpose is its own inverse."""
    return data if c.k_axis == 0 else data.T


def apply_method(graph: Graph, target: Graph, cands: Sequence, scheme, method: str,
                 feeds: Sequence[Mapping[str, np.ndarray]], evaluator: Callable, seed: int, *, damp: float = 0.01,
                 clip: str = "weight", ranges: dict[str, np.ndarray] | None = None
                 ) -> tuple[dict[int, np.ndarray], dict[int, tuple]]:
    """Run ``method`` for ``cands`` (GEMM candidates of ``graph``; ``target``: ``graph`` or a copy
    bound to the samples' dims, to run them on; its nodes are found by output name). Returns
    id(candidate) -> the float weight to quantize, and id(candidate) -> fixed (scales, zero
    points) (GPTQ, or ``clip="output"``: each group's range searched on the output error, AWQ's
    ``auto_clip``); ``damp``: GPTQ's Hessian damping; ``ranges``: per-channel static ranges of
    the GEMM inputs, moved in place to the inputs divided by AWQ's/SmoothQuant's scales."""
    if evaluator is None:
        raise PassError("calibration runs the model: give the pass an evaluator (ridgeline.optimize does)")
    if not feeds:
        raise PassError("calibration needs at least one sample input")
    integer_only(scheme, method, clip)
    groups: dict[str, list] = {}
    for c in cands:
        groups.setdefault(c.x.name, []).append(c)
    by_out = {c.node.outputs[0].name: c for c in cands}
    rng = np.random.default_rng(seed)
    by_output = clip == "output"
    adjusted: dict[int, np.ndarray] = {}
    params: dict[int, tuple] = {}
    scaled: list[tuple[list, np.ndarray]] = []     # (members, s): activations divided after the walk
    quantized: dict[str, np.ndarray] = {}          # node output name -> the weight it now computes with

    def awq_search(st: ActivationStats, ws: list[np.ndarray]) -> np.ndarray:
        n_total = sum(w.shape[1] for w in ws)
        cap = max(32, int(_AWQ_BUDGET / max(1, ws[0].shape[0] * n_total)))
        return awq_scales(ws, st.sample[:cap], st.mean_abs, scheme)[0]

    def keep(c, s: np.ndarray, z: np.ndarray | None, blocked: bool) -> None:   # K × N layout -> the candidate's
        s, z = stored_layout(s, z, blocked)
        params[id(c)] = (s.T, None if z is None else z.T) if blocked and c.k_axis == 1 else (s, z)

    def calibrate_group(members: list, xs: list[np.ndarray]) -> None:
        st = ActivationStats(members[0].k, method in ("gptq", "awq-gptq") or by_output, 512, rng)
        for a in xs:
            st.add(a)
        ws = [_kn(c, np.asarray(c.w.data, np.float64)) for c in members]
        sd = members[0].w.type.dtype.np_dtype
        block = scheme.group if scheme.group and scheme.group < members[0].k else 0
        if method in ("gptq", "awq-gptq"):
            # awq-gptq: AWQ's scales first, then GPTQ rounds diag(s)·W against the Hessian of x / s
            a = awq_search(st, ws) if method == "awq-gptq" else np.ones(members[0].k)
            unit = np.allclose(a, 1.0)
            if not unit:
                scaled.append((members, a))
            h = st.gram / np.outer(a, a)
            factor = gptq_factor(h, damp=damp)   # once for the GEMMs sharing x
            for c, w in zip(members, ws):
                s, z, wq = gptq(w * a[:, None], factor, scheme, sd, clip_hessian=h if by_output else None)
                keep(c, s, z, block > 0)
                adjusted[id(c)] = _kn(c, wq)
                quantized[c.node.outputs[0].name] = _kn(c, wq / a[:, None])
            return
        s = awq_search(st, ws) if method == "awq" else (
            smooth_scales(ws, st.amax) if method == "smoothquant" else np.ones(members[0].k))
        unit = np.allclose(s, 1.0)
        if not unit:
            scaled.append((members, s))
        h = st.gram / np.outer(s, s) if by_output else None
        for c, w in zip(members, ws):
            ww = w if unit else w * s[:, None]
            if not unit:
                adjusted[id(c)] = _kn(c, ww)
            fitted = fit_weight(ww, scheme, 0, block, sd, h) if by_output else None   # searched once
            if fitted:
                keep(c, *fitted, block > 0)
            eff = roundtrip(ww, scheme, sd, params=fitted)
            quantized[c.node.outputs[0].name] = _kn(c, eff if unit else eff / s[:, None])

    _walk_sequential(target, feeds, evaluator, by_out, groups, calibrate_group, quantized)
    for members, s in scaled:
        amax = (ranges or {}).pop(members[0].x.name, None)
        _divide_activation(graph, members, s)
        if amax is not None:      # max |x / s| per channel is max |x| / s: s > 0
            ranges[members[0].x.name] = amax / s
    return adjusted, params


def _walk_sequential(target: Graph, feeds: Sequence[Mapping[str, np.ndarray]], evaluator: Callable,
                     by_out: dict, groups: dict[str, list], calibrate_group: Callable,
                     quantized: dict[str, np.ndarray]) -> None:
    """Run ``target`` on all samples at once, node by node; before the first GEMM of a group runs,
    ``calibrate_group(members, activations)``; GEMMs named in ``quantized`` run with that weight.
    The walk ends at the last GEMM it calibrates: what follows (an LM head kept wide) changes nothing."""
    last_use = last_uses(target)
    nodes = list(target)
    end = max((i for i, n in enumerate(nodes) if n.outputs and n.outputs[0].name in by_out), default=len(nodes))
    nodes = nodes[:end + 1]
    envs = [sample_env(target, f) for f in feeds]
    consts = constant_arrays(target)
    done: set[str] = set()
    for i, node in enumerate(nodes):
        c = by_out.get(node.outputs[0].name) if node.outputs else None
        if c is not None and c.x.name not in done:
            done.add(c.x.name)
            xv = node.inputs[c.x_index]
            calibrate_group(groups[c.x.name], [_get(env, consts, xv) for env in envs])
        if i == end:      # the last calibrated GEMM's own output feeds no calibration
            return
        wpos = c.node.inputs.index(c.w) if c is not None else -1
        override = quantized.get(node.outputs[0].name) if c is not None else None
        for env in envs:
            args = [_get(env, consts, v) if v is not None else None for v in node.inputs]
            if override is not None:
                args[wpos] = override.astype(args[wpos].dtype)
            for v, a in zip(node.outputs, evaluator(node, args)):
                env[id(v)] = np.asarray(a)
            for v in node.inputs:
                if v is not None and last_use.get(id(v)) == i and not v.const:
                    env.pop(id(v), None)


def _get(env: dict, consts: dict, v: Value) -> np.ndarray:
    a = env.get(id(v))
    return consts[id(v)] if a is None else a


def _divide_activation(graph: Graph, members: Sequence, s: np.ndarray) -> None:
    """``x / s`` for the GEMMs in ``members`` (all reading the same ``x``)."""
    x: Value = members[0].x
    dt = x.type.dtype.np_dtype
    inv = (1.0 / s).astype(dt)
    readers = {id(c.node) for c in members}
    p = x.producer
    only_ours = all(id(u) in readers for u, _ in x.uses)   # a graph output's use is the return node's
    if (only_ours and p is not None and p.op in ("RMSNormalization", "LayerNormalization")
            and len(p.inputs) > 1 and p.inputs[1] is not None and p.inputs[1].const
            and p.inputs[1].data is not None and len(p.inputs[1].uses) == 1 and p.inputs[1].type.rank == 1):
        for i in (1, 2):          # the scale, and LayerNormalization's bias
            if i < len(p.inputs) and p.inputs[i] is not None and p.inputs[i].data is not None:
                old = p.inputs[i]
                new = graph.add_constant(f"{old.name}.smoothed",
                                         (np.asarray(old.data, np.float64) * (1.0 / s)).astype(old.type.dtype.np_dtype))
                p.set_input(i, new)
                if not old.uses:
                    graph.remove_constant(old)
        return
    k = graph.add_constant(f"{x.name}.inv_smooth", inv)
    first = min(members, key=lambda c: list(graph).index(c.node))
    mul = graph.add_node("Mul", [x, k], names=[f"{x.name}.smoothed"], before=first.node)
    for c in members:
        c.node.set_input(c.x_index, mul.outputs[0])
