"""Applying a calibrated method (``quantize{method=awq|gptq|smoothquant}``) to a graph.

The calibration samples run through the unquantized graph once; each GEMM input's statistics
(``quantize_calibrate.activation_stats``) drive the method (``quantize_methods``). AWQ and
SmoothQuant divide an activation by per-channel scales: folded into the normalization that
produces it (its scale, and bias) when nothing else reads that output, else an explicit ``Mul``
in front of the GEMMs sharing it; the GEMMs' weights are multiplied by the same scales, so the
unquantized function is unchanged. GPTQ changes only the weights (and fixes their scales).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from ...ir import Graph, Value
from .quantize_calibrate import activation_stats
from .quantize_methods import awq_scales, gptq, smooth_scales

__all__ = ["apply_method"]

#: multiply-adds one AWQ trial may spend on its output-error check (rows × K × N)
_AWQ_BUDGET = 4e8


def _kn(c, data: np.ndarray) -> np.ndarray:
    """The weight as K × N (input × output channels)."""
    return data if c.k_axis == 0 else data.T


def apply_method(graph: Graph, target: Graph, cands: Sequence, scheme, method: str,
                 feeds: Sequence[Mapping[str, np.ndarray]], evaluator: Callable, seed: int
                 ) -> tuple[dict[int, np.ndarray], dict[int, tuple]]:
    """Run ``method`` for ``cands`` (GEMM candidates of ``graph``; ``target``: ``graph`` or a copy
    bound to the samples' dims, to run them on). Returns id(candidate) -> the float weight to
    quantize, and id(candidate) -> fixed (scales, zero points) (GPTQ)."""
    groups: dict[str, list] = {}
    for c in cands:
        groups.setdefault(c.x.name, []).append(c)
    stats = activation_stats(target, list(groups), feeds, evaluator=evaluator, gram=method == "gptq",
                             max_rows=512, seed=seed)
    adjusted: dict[int, np.ndarray] = {}
    params: dict[int, tuple] = {}
    for name, members in groups.items():
        st = stats[name]
        ws = [_kn(c, np.asarray(c.w.data, np.float64)) for c in members]
        if method == "gptq":
            for c, w in zip(members, ws):
                s, z, wq = gptq(w, st.gram, scheme, c.w.type.dtype.np_dtype)
                if c.k_axis == 1:
                    s = s.T if s.ndim == 2 else s
                    z = z.T if z is not None and z.ndim == 2 else z
                adjusted[id(c)] = _kn(c, wq)
                params[id(c)] = (s, z)
            continue
        if method == "awq":
            rows = st.sample
            n_total = sum(w.shape[1] for w in ws)
            cap = max(32, int(_AWQ_BUDGET / max(1, ws[0].shape[0] * n_total)))
            s, _ = awq_scales(ws, rows[:cap], st.mean_abs, scheme)
        else:
            s = smooth_scales(ws, st.amax)
        if np.allclose(s, 1.0):
            continue
        _divide_activation(graph, members, s)
        for c, w in zip(members, ws):
            adjusted[id(c)] = _kn(c, w * s[:, None])
    return adjusted, params


def _divide_activation(graph: Graph, members: Sequence, s: np.ndarray) -> None:
    """``x / s`` for the GEMMs in ``members`` (all reading the same ``x``)."""
    x: Value = members[0].x
    dt = x.type.dtype.np_dtype
    inv = (1.0 / s).astype(dt)
    readers = {id(c.node) for c in members}
    p = x.producer
    only_ours = all(id(u) in readers for u, _ in x.uses) and not any(o is x for o in graph.outputs)
    if (only_ours and p is not None and p.op in ("RMSNormalization", "LayerNormalization")
            and len(p.inputs) > 1 and p.inputs[1] is not None and p.inputs[1].const
            and p.inputs[1].data is not None and len(p.inputs[1].uses) == 1 and p.inputs[1].type.rank == 1):
        for i in (1, 2):          # the scale, and LayerNormalization's bias
            if i < len(p.inputs) and p.inputs[i] is not None and p.inputs[i].data is not None:
                old = p.inputs[i]
                new = graph.add_constant(graph.fresh_name(f"{old.name}.smoothed"),
                                         (np.asarray(old.data, np.float64) * (1.0 / s)).astype(old.type.dtype.np_dtype))
                p.set_input(i, new)
                if not old.uses:
                    graph.remove_constant(old)
        return
    k = graph.add_constant(graph.fresh_name(f"{x.name}.inv_smooth"), inv)
    first = min(members, key=lambda c: list(graph).index(c.node))
    mul = graph.add_node("Mul", [x, k], names=[f"{x.name}.smoothed"], before=first.node)
    for c in members:
        c.node.set_input(c.x_index, mul.outputs[0])
