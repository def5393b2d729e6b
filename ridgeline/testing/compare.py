"""Differential testing as a library function: run a graph on a reference, compare another run's
outputs with tolerances that follow the dtypes involved.

    expected = reference_run(graph, inputs)          # numpy outputs + what tolerances need
    problems = compare_outputs(expected, got)         # [] when everything agrees
    assert_outputs_close(expected, got)               # or raise with a readable report

Tolerances (ONNX Runtime's ``TransformerTester`` and onnxscript's ``assert_numerically_equal`` do
the same job with fixed numbers) scale here with two facts of the reference run:

* the **least precise float dtype** anywhere upstream of an output: an f32 result computed
  through an f16 intermediate is only as exact as f16;
* the **largest magnitude** anywhere upstream: a rounding error of one ulp of an intermediate
  of 300 is 300 times the error of one of 1, whatever the output's own size.

Integers and booleans must match exactly; NaN and infinities must sit in the same places.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from ..backends.numpy import Interpreter
from ..ir import Graph, Node

__all__ = ["TOLERANCES", "ReferenceRun", "Mismatch", "reference_run", "compare_outputs", "assert_outputs_close",
           "tolerance_for"]

#: relative tolerance per float dtype, also applied to the magnitude scale as the absolute part
TOLERANCES: dict[str, float] = {"f64": 1e-7, "f32": 2e-4, "f16": 2e-2, "bf16": 6e-2, "f8e4m3": 0.3, "f8e5m2": 0.6}
_RANK = ["f64", "f32", "f16", "bf16", "f8e4m3", "f8e5m2"]  # most to least precise


def tolerance_for(dtype_name: str) -> float:
    """The relative tolerance of a float dtype (0 for integers and bool: exact)."""
    return TOLERANCES.get(dtype_name, 0.0)


@dataclass
class ReferenceRun:
    """Outputs of the reference run, by position and name, and per output what tolerances need."""

    names: list[str]
    outputs: list[np.ndarray]
    #: per output: the least precise float dtype upstream (None: no float upstream)
    floor: list[str | None] = field(default_factory=list)
    #: per output: the largest magnitude of any value upstream (inputs, constants, intermediates)
    scale: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, np.ndarray]:
        return dict(zip(self.names, self.outputs))


@dataclass
class Mismatch:
    """One output that disagrees."""

    index: int
    name: str
    kind: str            # "missing", "dtype", "shape", "values", "nan"
    detail: str

    def __str__(self) -> str:
        return f"output {self.index} %{self.name}: {self.detail}"


class _Recorder(Interpreter):
    """The reference interpreter, also recording the largest magnitude each node produced."""

    def __init__(self, graph: Graph, *, check: bool = True):
        super().__init__(graph, check=check)
        self.magnitude: dict[int, float] = {}

    def run_node(self, node: Node, args):
        outs = super().run_node(node, args)
        for v, a in zip(node.outputs, outs):
            self.magnitude[id(v)] = _max_abs(a)
        return outs


def _max_abs(a: np.ndarray) -> float:
    a = np.asarray(a)
    if a.size == 0:
        return 0.0
    try:
        f = np.abs(a.astype(np.float64))
    except (TypeError, ValueError):
        return 0.0
    f = f[np.isfinite(f)]
    return float(f.max()) if f.size else 0.0


def reference_run(graph: Graph, inputs: Mapping[str, Any]) -> ReferenceRun:
    """Run ``graph`` on the numpy reference; record each output's dtype floor and magnitude scale."""
    rec = _Recorder(graph)
    out = rec.run(inputs)
    floor: dict[int, str | None] = {}
    scale: dict[int, float] = {}
    for v in graph.inputs:
        floor[id(v)] = v.type.dtype.name if v.type.dtype.name in TOLERANCES else None
        scale[id(v)] = _max_abs(inputs[v.name]) if isinstance(inputs, Mapping) else 0.0
    for c in graph.constants.values():
        floor[id(c)] = c.type.dtype.name if c.type.dtype.name in TOLERANCES else None
        scale[id(c)] = _max_abs(c.data) if c.data is not None else 0.0
    for n in graph:
        f_in = [floor.get(id(v)) for v in n.inputs if v is not None]
        s_in = [scale.get(id(v), 0.0) for v in n.inputs if v is not None]
        body = _body_floor(n)
        for v in n.outputs:
            own = v.type.dtype.name if v.type.dtype.name in TOLERANCES else None
            floor[id(v)] = _least_precise(f_in + [own, body])
            scale[id(v)] = max(s_in + [rec.magnitude.get(id(v), 0.0)])
    names = [v.name for v in graph.outputs]
    return ReferenceRun(names, [out[v.name] for v in graph.outputs], [floor.get(id(v)) for v in graph.outputs],
                        [scale.get(id(v), 0.0) for v in graph.outputs])


def _body_floor(n: Node) -> str | None:
    if n.body is None:
        return None
    names = [v.type.dtype.name for m in n.body for v in m.outputs] + [v.type.dtype.name for v in n.body.inputs]
    return _least_precise([d if d in TOLERANCES else None for d in names])


def _least_precise(names: Sequence[str | None]) -> str | None:
    known = [d for d in names if d is not None]
    return max(known, key=_RANK.index) if known else None


def compare_outputs(expected: ReferenceRun, got: Mapping[str, np.ndarray] | Sequence[np.ndarray], *,
                    rtol: float | None = None, atol: float | None = None) -> list[Mismatch]:
    """The outputs of ``got`` (by position, or by the reference's names) that disagree.

    ``rtol``/``atol`` override the dtype-derived tolerances (``atol`` is then absolute, not scaled)."""
    if isinstance(got, Mapping):
        arrays = [got.get(n) for n in expected.names]
        if any(a is None for a in arrays) and len(got) == len(expected.names):
            arrays = list(got.values())
    else:
        arrays = list(got)
    out: list[Mismatch] = []
    if len(arrays) != len(expected.outputs):
        return [Mismatch(-1, "*", "missing", f"{len(arrays)} outputs, the reference has {len(expected.outputs)}")]
    for i, (name, want, have) in enumerate(zip(expected.names, expected.outputs, arrays)):
        if have is None:
            out.append(Mismatch(i, name, "missing", "not produced"))
            continue
        want, have = np.asarray(want), np.asarray(have)
        if have.dtype != want.dtype:
            out.append(Mismatch(i, name, "dtype", f"dtype {have.dtype}, expected {want.dtype}"))
            continue
        if have.shape != want.shape:
            out.append(Mismatch(i, name, "shape", f"shape {list(have.shape)}, expected {list(want.shape)}"))
            continue
        m = _compare_one(want, have, expected.floor[i] if expected.floor else None,
                         expected.scale[i] if expected.scale else 0.0, rtol, atol)
        if m is not None:
            kind, detail = m
            out.append(Mismatch(i, name, kind, detail))
    return out


def _is_float(a: np.ndarray) -> bool:
    return a.dtype.kind == "f" or a.dtype.name in ("bfloat16",) or a.dtype.name.startswith("float8")


def _compare_one(want: np.ndarray, have: np.ndarray, floor: str | None, scale: float,
                 rtol: float | None, atol: float | None) -> tuple[str, str] | None:
    if not _is_float(want):
        w = want.astype(np.int64) if want.dtype.kind != "b" else want
        h = have.astype(np.int64) if have.dtype.kind != "b" else have
        bad = w != h
        if not np.any(bad):
            return None
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        return "values", (f"{int(bad.sum())} of {bad.size} elements differ (exact dtype); first at {list(idx)}: "
                          f"expected {want[idx]!r}, got {have[idx]!r}")
    w, h = want.astype(np.float64), have.astype(np.float64)
    nan_w, nan_h = np.isnan(w), np.isnan(h)
    if np.any(nan_w != nan_h):
        idx = tuple(int(i) for i in np.argwhere(nan_w != nan_h)[0])
        return "nan", f"NaN where the reference has {w[idx]!r} (or the reverse) at {list(idx)}"
    inf_w, inf_h = np.isinf(w), np.isinf(h)
    if np.any(inf_w != inf_h) or np.any(w[inf_w] != h[inf_w]):
        idx = tuple(int(i) for i in np.argwhere((inf_w != inf_h) | (inf_w & (w != h)))[0])
        return "values", f"infinity mismatch at {list(idx)}: expected {w[idx]!r}, got {h[idx]!r}"
    fin = np.isfinite(w)
    tol = TOLERANCES.get(floor or "", TOLERANCES.get(want.dtype.name, 2e-4))
    tol = max(tol, TOLERANCES.get(_np_name(want), 0.0))
    r = tol if rtol is None else rtol
    a = tol * max(1.0, scale) if atol is None else atol
    with np.errstate(invalid="ignore", over="ignore"):  # infinities were compared above
        err = np.where(fin, np.abs(w - h), 0.0)
        limit = a + r * np.abs(w)
    limit = np.where(np.isnan(limit), np.inf, limit)  # rtol=inf times 0: no limit at all
    bad = err > limit
    if not np.any(bad):
        return None
    worst = np.unravel_index(int(np.argmax(np.where(fin, err - limit, -np.inf))), w.shape) if w.ndim else ()
    worst = tuple(int(i) for i in worst)
    return "values", (f"{int(bad.sum())} of {bad.size} elements differ; worst at {list(worst)}: expected "
                      f"{w[worst]:.6g}, got {h[worst]:.6g} (|Δ| = {err[worst]:.3g}, allowed {limit[worst]:.3g}: "
                      f"rtol {r:.3g}, atol {a:.3g})")


def _np_name(a: np.ndarray) -> str:
    return {"float64": "f64", "float32": "f32", "float16": "f16", "bfloat16": "bf16", "float8_e4m3fn": "f8e4m3",
            "float8_e5m2": "f8e5m2"}.get(a.dtype.name, "")


def assert_outputs_close(expected: ReferenceRun, got: Mapping[str, np.ndarray] | Sequence[np.ndarray], *,
                         rtol: float | None = None, atol: float | None = None, what: str = "outputs") -> None:
    """Raise ``AssertionError`` listing every output of ``got`` that disagrees with ``expected``."""
    problems = compare_outputs(expected, got, rtol=rtol, atol=atol)
    if problems:
        raise AssertionError(f"{what} differ from the reference:\n" + "\n".join(f"  {p}" for p in problems))
