"""Calibration: the range of activations (and KV-cache entries) over sample inputs.

Static scales need a range before the model runs: ``calibrate`` runs the graph node by node on
each sample (with the pass context's evaluator — the numpy reference, injected by
``ridgeline.api`` since passes do not import backends) and records, for every value asked for,
``max |x|`` (``minmax``) or a percentile of ``|x|`` (``percentile``: robust to outliers, at the
price of clipping them). ``axis`` keeps one range per slice along that axis (a KV head).

Without samples, ``default_samples`` draws seeded random inputs (``ridgeline.ir.inputs``)
with symbolic dims bound to small sizes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from ...ir import Graph, Value
from ...ir.errors import PassError

__all__ = ["CALIBRATION_METHODS", "ActivationStats", "calibrate", "constant_arrays", "default_samples", "last_uses",
           "sample_env"]

CALIBRATION_METHODS = ("minmax", "percentile")
#: samples kept per value for a percentile (a reservoir of |x|, enough for the 99.99th)
_RESERVOIR = 1 << 20


def default_samples(graph: Graph, count: int, seed: int = 0, size: int = 8) -> list[dict[str, np.ndarray]]:
    """``count`` seeded random input sets; symbolic dims are bound to ``size`` (batch to 1)."""
    from ...ir.inputs import random_inputs
    dims = {s: (1 if "batch" in s else size) for s in graph.symbols()}
    return [random_inputs(graph, seed=seed + i, dims=dims) for i in range(count)]


def calibrate(graph: Graph, targets: Mapping[str, int | None], samples: Sequence[Mapping[str, np.ndarray]], *,
              evaluator: Callable, method: str = "minmax", percentile: float = 99.99) -> dict[str, np.ndarray]:
    """The range of each value named in ``targets`` (name -> axis to keep, or None for one range)
    over ``samples``; returns name -> ``max |x|`` (or its percentile), per slice of the axis."""
    if method not in CALIBRATION_METHODS:
        raise PassError(f"calibration must be one of {', '.join(CALIBRATION_METHODS)}, got {method!r}")
    if not 0 < percentile <= 100:
        raise PassError(f"percentile must be in (0, 100], got {percentile}")
    if evaluator is None:
        raise PassError("calibration runs the model: give the pass an evaluator (ridgeline.optimize does)")
    if not samples:
        raise PassError("calibration needs at least one sample input")
    wanted = dict(targets)
    stats: dict[str, list[np.ndarray]] = {k: [] for k in wanted}
    by_name = {v.name: v for v in graph.values()}
    missing = [k for k in wanted if k not in by_name]
    if missing:
        raise PassError(f"calibration: no value named {', '.join(missing)}")
    keep = method == "percentile"
    _walk(graph, samples, evaluator, lambda v, a: _record(v, a, wanted, stats, keep), set(wanted))
    out = {}
    for name, parts in stats.items():
        if not parts:      # pragma: no cover - every value is an input, a constant or a node output
            continue
        if method == "minmax":
            out[name] = np.max(np.stack(parts), axis=0)
        else:
            values = np.concatenate(parts, axis=1)
            out[name] = np.percentile(values, percentile, axis=1)
    return out


def _walk(graph: Graph, samples: Sequence[Mapping[str, np.ndarray]], evaluator: Callable,
          visit: Callable[[Value, np.ndarray], None], names: set[str]) -> None:
    """Run ``graph`` node by node on each sample, calling ``visit(value, array)`` for every value
    named in ``names`` (inputs, constants and node outputs); arrays no later node reads are freed."""
    last_use = last_uses(graph)
    for feeds in samples:
        env = sample_env(graph, feeds)
        env.update(constant_arrays(graph))
        for v in list(graph.inputs) + list(graph.constants.values()):
            if v.name in names:
                visit(v, env[id(v)])
        for i, node in enumerate(graph):
            outs = evaluator(node, [env[id(v)] if v is not None else None for v in node.inputs])
            for v, a in zip(node.outputs, outs):
                env[id(v)] = np.asarray(a)
                if v.name in names:
                    visit(v, env[id(v)])
            for v in node.inputs:
                if v is not None and last_use.get(id(v)) == i and not v.const:
                    env.pop(id(v), None)


def last_uses(graph: Graph) -> dict[int, int]:
    """id(value) -> the index of the last node reading it (when its array may be freed)."""
    out: dict[int, int] = {}
    for i, node in enumerate(graph):
        for v in node.inputs:
            if v is not None:
                out[id(v)] = i
    return out


def sample_env(graph: Graph, feeds: Mapping[str, np.ndarray]) -> dict[int, np.ndarray]:
    """id(input) -> its array in one calibration sample."""
    env: dict[int, np.ndarray] = {}
    for v in graph.inputs:
        if v.name not in feeds:
            raise PassError(f"calibration sample has no input %{v.name}")
        env[id(v)] = np.asarray(feeds[v.name])
    return env


def constant_arrays(graph: Graph) -> dict[int, np.ndarray]:
    """id(constant) -> its data (a weightless graph cannot be calibrated)."""
    out: dict[int, np.ndarray] = {}
    for c in graph.constants.values():
        if c.data is None:
            raise PassError(f"constant %{c.name} has no data: a weightless graph cannot be calibrated")
        out[id(c)] = c.data
    return out


class ActivationStats:
    """What the calibrated methods need to know about one GEMM input: ``XᵀX`` (GPTQ's Hessian,
    float64), mean and max ``|x|`` per channel, and up to ``max_rows`` rows kept (AWQ's search)."""

    def __init__(self, k: int, gram: bool, max_rows: int, rng: np.random.Generator):
        self.rows = 0
        self.gram = np.zeros((k, k)) if gram else None
        self.abs_sum = np.zeros(k)
        self.amax = np.zeros(k)
        self.kept: list[np.ndarray] = []
        self._kept_rows = 0
        self._max_rows = max_rows
        self._rng = rng

    def add(self, a: np.ndarray) -> None:
        x = np.asarray(a, np.float64).reshape(-1, a.shape[-1])
        self.rows += x.shape[0]
        if self.gram is not None:
            self.gram += x.T @ x
        ax = np.abs(x)
        self.abs_sum += ax.sum(axis=0)
        self.amax = np.maximum(self.amax, ax.max(axis=0, initial=0.0))
        room = self._max_rows - self._kept_rows
        if room > 0:
            pick = x if x.shape[0] <= room else x[self._rng.choice(x.shape[0], room, replace=False)]
            self.kept.append(pick)
            self._kept_rows += pick.shape[0]

    @property
    def mean_abs(self) -> np.ndarray:
        return self.abs_sum / max(1, self.rows)

    @property
    def sample(self) -> np.ndarray:
        return np.concatenate(self.kept) if self.kept else np.zeros((0, self.abs_sum.size))


def _flat_abs(a: np.ndarray, axis: int | None) -> np.ndarray:
    """|a| as (slices along axis, elements per slice)."""
    x = np.abs(np.asarray(a, dtype=np.float64))
    if axis is None:
        return x.reshape(1, -1)
    return np.moveaxis(x, axis % x.ndim, 0).reshape(x.shape[axis % x.ndim], -1)


def _record(v: Value, a: np.ndarray, wanted, stats, keep: bool) -> None:
    flat = _flat_abs(a, wanted[v.name])
    if not keep:
        stats[v.name].append(flat.max(axis=1) if flat.size else np.zeros(flat.shape[0]))
        return
    if flat.shape[1] > _RESERVOIR:   # a fixed-stride subsample keeps the percentile honest
        flat = flat[:, :: -(-flat.shape[1] // _RESERVOIR)]
    stats[v.name].append(flat)
