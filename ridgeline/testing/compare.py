"""Differential testing as a library function: run a graph on a reference, compare another run's
outputs against an exact oracle.

    expected = reference_run(graph, inputs)          # own-precision outputs + the float64 oracle
    problems = compare_outputs(expected, got)         # [] when everything agrees
    assert_outputs_close(expected, got)               # or raise with a readable report

**The rule** (derivation in docs/testing.md, "The error oracle"). The original graph is run twice:
at its own precision (what the numpy reference gives) and as an *oracle*, every float op in
float64 or wider (explicit ``Cast``s still round: they are the graph's meaning). A rewrite is judged by how
far it moves each element from the oracle compared with how far the original already was::

    |got - oracle| <= K · max(|own - oracle|, mean over the output of |own - oracle|) + N · ulp(oracle)

per element and per output, with ``ulp`` taken in the output's dtype at the magnitude the element
was computed from (its own, or its operands' through elementwise ops — a cancelling ``a − b`` —
and ``|A|·|B|`` through MatMul) (K = 8, N = 8). Nothing is scaled by magnitudes elsewhere in the graph, so a −1e4 or ``finfo.min`` mask upstream gives no
allowance: an additive error behind it is judged like any other. Integer and boolean outputs must
equal the original's exactly. Non-finite values must match the original's in kind (NaN, +inf,
−inf) and position, except elements the op spec declares arbitrary (``arbitrary="masked-rows"``:
a Softmax or Attention row that sees no key) and what is computed from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import ml_dtypes
import numpy as np

from ..backends.numpy import Interpreter
from ..ir import Graph, Node
from ..ir.ops import envelopes

__all__ = ["TOLERANCES", "ReferenceRun", "Mismatch", "reference_run", "compare_outputs", "assert_outputs_close",
           "ERROR_FACTOR", "ULPS"]

#: a rewrite may be this many times as far from the oracle as the original was, per element ...
ERROR_FACTOR = 8.0
#: ... plus this many units in the last place of the output's dtype (reassociation, FMA contraction)
ULPS = 8.0

#: the relative precision of each float dtype (its machine epsilon, rounded up); kept for callers
#: that pass explicit ``rtol`` and for tools that want a dtype's rough resolution
TOLERANCES: dict[str, float] = {"f64": 1e-7, "f32": 2e-4, "f16": 2e-2, "bf16": 6e-2, "f8e4m3": 0.3, "f8e5m2": 0.6}
_RANK = ["f64", "f32", "f16", "bf16", "f8e4m3", "f8e5m2"]  # most to least precise


@dataclass
class ReferenceRun:
    """Outputs of the reference run (own precision), by position and name, and per output the
    float64 oracle and the elements declared arbitrary."""

    names: list[str]
    outputs: list[np.ndarray]
    #: per output: the least precise float dtype upstream (None: no float upstream)
    floor: list[str | None] = field(default_factory=list)
    #: per output: the largest magnitude of any value upstream (informative only since the oracle)
    scale: list[float] = field(default_factory=list)
    #: per output: the original graph evaluated with every float op in float64 (None: not float)
    oracle: list[np.ndarray | None] = field(default_factory=list)
    #: per output: elements whose value the specs leave arbitrary (None: none)
    arbitrary: list[np.ndarray | None] = field(default_factory=list)
    #: per output: the magnitude each element was computed from (ulps are counted at it)
    envelope: list[np.ndarray | None] = field(default_factory=list)

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


def _is_float(a: np.ndarray) -> bool:
    return a.dtype.kind == "f" or a.dtype.name == "bfloat16" or a.dtype.name.startswith("float8")


_FLOAT_NAMES = frozenset(TOLERANCES)
#: the oracle's precision: x87 extended (64-bit mantissa) where numpy has it, so that f64 graphs
#: have an oracle more exact than themselves; float64 elsewhere
WIDE = np.longdouble if np.finfo(np.longdouble).nmant > 52 else np.float64


#: ops whose output shape is computed from float input values
_SHAPE_FROM_VALUES = frozenset({"Range"})


class _Oracle(Interpreter):
    """The reference interpreter with every float op computed in float64.

    Float inputs of each node are widened; float results stay float64 (a narrowing ``Cast`` still
    rounds: the kernel does it, and the rounding is what the graph says). A kernel that cannot take
    float64 runs at the graph's own precision. Elements an op's spec declares arbitrary become NaN
    here, so they reach the outputs through whatever reads them; ``tainted`` says which values
    have some."""

    def __init__(self, graph: Graph):
        super().__init__(graph, check=False)
        self.tainted: set[int] = set()
        #: per value: the magnitude its elements were computed from (see ``_envelope``)
        self.env: dict[int, np.ndarray] = {}
        #: per Fused node just run: its body outputs' envelopes (a fused group's error is its body's)
        self._body_env: dict[int, list[np.ndarray | None]] = {}

    def call_kernel(self, node: Node, args):
        """As the reference's, but a ``Fused`` body runs in a nested oracle that starts from the
        outer envelopes of its inputs, so the group's outputs keep the envelopes its ops declare
        (a fused dequantize-and-multiply is allowed ulps of Σ|x|·|w|, as the MatMul it holds)."""
        if node.op != "Fused" or node.body is None or (self.tiles and "tile" in node.meta):
            return super().call_kernel(node, args)
        sub = _Oracle(node.body)
        sub.tiles = self.tiles
        for p, v, a in zip(node.body.inputs, node.inputs, args):
            if v is not None and a is not None and _is_float(a) and id(v) in self.env:
                sub.env[id(p)] = self.env[id(v)]
        res = sub.run({p.name: a for p, a in zip(node.body.inputs, args)})
        self._body_env[id(node)] = [sub.env.get(id(o)) for o in node.body.outputs]
        if any(id(o) in sub.tainted for o in node.body.outputs):
            self.tainted.update(id(v) for v in node.outputs)
        return tuple(res[o.name] for o in node.body.outputs)

    def run_node(self, node: Node, args):
        res, wide = None, None
        # an op whose output shape follows from float values (Range's count) keeps its own precision
        for dt in (() if node.op in _SHAPE_FROM_VALUES else dict.fromkeys((WIDE, np.float64))):
            wide = [a.astype(dt) if a is not None and _is_float(a) else a for a in args]
            try:
                with np.errstate(all="ignore"):
                    res = self.call_kernel(node, wide)
                break
            except Exception:
                wide = None
        if wide is None:  # only at the graph's own precision
            own = [a.astype(v.type.dtype.np_dtype) if a is not None and _is_float(a) else a
                   for a, v in zip(args, node.inputs)]
            with np.errstate(all="ignore"):
                res = super().run_node(node, own)
        outs = [np.asarray(a) for a in (res if isinstance(res, (tuple, list)) else [res])]
        outs = [a.astype(WIDE) if v.type.dtype.name in _FLOAT_NAMES and _is_float(a)
                else a.astype(v.type.dtype.np_dtype) for v, a in zip(node.outputs, outs)]
        if any(id(v) in self.tainted for v in node.inputs if v is not None):
            self.tainted.update(id(v) for v in node.outputs)
        body = self._body_env.pop(id(node), None) or []
        for k, (v, a) in enumerate(zip(node.outputs, outs)):
            if not _is_float(a):
                continue
            e = body[k] if k < len(body) else None
            if e is not None and e.shape == a.shape:
                with np.errstate(all="ignore"):
                    own = np.abs(a.astype(np.float64))
                    self.env[id(v)] = np.where(np.isfinite(e), np.maximum(e, own), own)
            else:
                self.env[id(v)] = self._envelope(node, args, a)
        if node.spec is not None and node.spec.extra.get("arbitrary") == "masked-rows":
            self._masked_rows(node, wide if wide is not None else list(args), outs)
        return outs

    def _envelope(self, node: Node, args, out: np.ndarray) -> np.ndarray:
        """The magnitudes an element was computed from, by the rule the op's spec declares
        (``ridgeline.ir.ops.envelopes``); the element's own magnitude where it declares none."""
        with np.errstate(all="ignore"):
            own = np.abs(out.astype(np.float64))  # beyond float64: inf, no allowance from it
            floats = any(a is not None and _is_float(a) for a in args)
            rule = envelopes.default_rule(node, floats)
            if rule is None:
                return own

            def run(substitute):
                res = self.call_kernel(node, list(substitute))
                return np.asarray(res[0] if isinstance(res, (tuple, list)) else res, dtype=np.float64)

            ctx = envelopes.EnvelopeContext(
                node, args, own, lambda i: self._env_of(node.inputs[i], args[i]), run)
            try:
                env = rule(ctx)
            except (ValueError, TypeError):
                env = None
        return own if env is None else env

    def _env_of(self, v, a: np.ndarray) -> np.ndarray:
        e = self.env.get(id(v)) if v is not None else None
        return e if e is not None else np.abs(np.asarray(a, dtype=np.float64))

    def _masked_rows(self, node: Node, args, outs) -> None:
        """Rows that see no key: NaN in the oracle (any value is right there)."""
        y = outs[0]
        if not _is_float(y):
            return
        if node.op == "Attention":
            probe = list(args)
            probe[2] = np.ones_like(args[2])  # V = 1: a row that sees a key sums to 1, else 0
            if len(probe) > 5 and probe[5] is not None:
                probe[5] = np.ones_like(probe[5])
            try:
                with np.errstate(all="ignore"):
                    res = self.call_kernel(node, probe)
            except Exception:
                return
            ones = np.asarray(res[0] if isinstance(res, (tuple, list)) else res)
            rows = np.all(ones == 0, axis=-1, keepdims=True)
            masked = np.broadcast_to(rows, y.shape)
        else:  # Softmax: ONNX's formula gives NaN for a row that is all -inf
            masked = np.isnan(y)
        if np.any(masked):
            outs[0] = np.where(masked, np.nan, y)
            self.tainted.add(id(node.outputs[0]))


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
    """Run ``graph`` on the numpy reference at its own precision and as the float64 oracle."""
    out = Interpreter(graph).run(inputs)
    oracle = _Oracle(graph)
    try:
        exact = oracle.run(inputs)
    except Exception:  # the oracle is a refinement: without it the own-precision run is the oracle
        exact = {k: np.asarray(a).astype(WIDE) if _is_float(np.asarray(a)) else None for k, a in out.items()}
    floor: dict[int, str | None] = {}
    for v in graph.inputs:
        floor[id(v)] = v.type.dtype.name if v.type.dtype.name in TOLERANCES else None
    for c in graph.constants.values():
        floor[id(c)] = c.type.dtype.name if c.type.dtype.name in TOLERANCES else None
    for n in graph:
        f_in = [floor.get(id(v)) for v in n.inputs if v is not None]
        body = _body_floor(n)
        for v in n.outputs:
            own = v.type.dtype.name if v.type.dtype.name in TOLERANCES else None
            floor[id(v)] = _least_precise(f_in + [own, body])
    names = [v.name for v in graph.outputs]
    outputs = [out[v.name] for v in graph.outputs]
    orc, arb, env = [], [], []
    for v, own in zip(graph.outputs, outputs):
        e = exact.get(v.name)
        env.append(oracle.env.get(id(v)))
        if e is None or not _is_float(np.asarray(own)):
            orc.append(None)
            arb.append(None)
            continue
        e = np.asarray(e, dtype=WIDE)
        orc.append(e)
        arb.append(np.isnan(e) if id(v) in oracle.tainted else None)
    return ReferenceRun(names, outputs, [floor.get(id(v)) for v in graph.outputs],
                        [_max_abs(a) for a in outputs], orc, arb, env)


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

    ``rtol``/``atol`` widen the oracle's bound to at least ``atol + rtol·|oracle|`` (a quantization
    pass that changes numbers by design passes ``rtol=float("inf")``)."""
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
        oracle = expected.oracle[i] if i < len(expected.oracle) else None
        arbitrary = expected.arbitrary[i] if i < len(expected.arbitrary) else None
        envelope = expected.envelope[i] if i < len(expected.envelope) else None
        m = _compare_one(want, have, oracle, arbitrary, rtol, atol, envelope)
        if m is not None:
            out.append(Mismatch(i, name, *m))
    return out


def ulp(dtype: np.dtype, magnitude: np.ndarray) -> np.ndarray:
    """One unit in the last place of ``dtype`` at each ``magnitude`` (the subnormal step near 0)."""
    fi = ml_dtypes.finfo(dtype)
    tiny, eps = float(fi.tiny), float(fi.eps)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        m = np.maximum(np.abs(np.asarray(magnitude, dtype=np.float64)), tiny)
        step = np.exp2(np.floor(np.log2(m))) * eps
    return np.where(np.isfinite(step), step, np.inf)


def _where(mask: np.ndarray) -> list[int]:
    return [int(i) for i in np.argwhere(mask)[0]]


def _kind(a: np.ndarray) -> np.ndarray:
    """0 finite, 1 NaN, 2 +inf, 3 -inf."""
    return np.select([np.isnan(a), np.isposinf(a), np.isneginf(a)], [1, 2, 3], 0)


def _compare_one(want: np.ndarray, have: np.ndarray, oracle: np.ndarray | None, arbitrary: np.ndarray | None,
                 rtol: float | None, atol: float | None, envelope: np.ndarray | None = None) -> tuple[str, str] | None:
    if not _is_float(want):
        w = want.astype(np.int64) if want.dtype.kind != "b" else want
        h = have.astype(np.int64) if have.dtype.kind != "b" else have
        bad = w != h
        if not np.any(bad):
            return None
        idx = tuple(_where(bad))
        return "values", (f"{int(bad.sum())} of {bad.size} elements differ (exact dtype); first at {list(idx)}: "
                          f"expected {want[idx]!r}, got {have[idx]!r}")
    w, h = want.astype(WIDE), have.astype(WIDE)
    if oracle is not None and oracle.shape != w.shape:
        # a shape set by float values came out otherwise in wider floats: judge at the own precision
        oracle, arbitrary, envelope = None, None, None
    o = w if oracle is None else oracle.astype(WIDE)
    free = np.zeros(w.shape, bool) if arbitrary is None else np.broadcast_to(arbitrary, w.shape)
    kw, kh, ko = _kind(w), _kind(h), _kind(o)
    # non-finite: the original's kind wherever either run is non-finite, unless the original
    # overflowed where the oracle is finite (then the rewrite may do better) or the spec frees it
    judged = ~free & ((kw != 0) | (kh != 0)) & ~((kw != 0) & (ko == 0) & (kh == 0))
    bad = judged & (kw != kh)
    if np.any(bad):
        idx = tuple(_where(bad))
        kind = "nan" if (kw[idx] == 1 or kh[idx] == 1) else "values"
        return kind, (f"{int(bad.sum())} of {bad.size} elements differ in kind (NaN/inf) from the original; "
                      f"first at {list(idx)}: expected {w[idx]!r}, got {h[idx]!r}")
    fin = ~free & (ko == 0) & (kh == 0)
    with np.errstate(invalid="ignore", over="ignore"):
        e_own = np.where(fin & (kw == 0), np.abs(w - o), 0.0)
        e_new = np.where(fin, np.abs(h - o), 0.0)
        typical = e_own[fin & (kw == 0)].mean() if np.any(fin & (kw == 0)) else 0.0
        mag = np.abs(o.astype(np.float64))
        if envelope is not None and envelope.shape == mag.shape:
            mag = np.maximum(mag, np.where(np.isfinite(envelope), envelope, 0.0))
        limit = ERROR_FACTOR * np.maximum(e_own, typical) + ULPS * ulp(want.dtype, mag)
        if rtol is not None or atol is not None:
            given = (atol or 0.0) + (rtol or 0.0) * np.abs(o)
            limit = np.maximum(limit, np.where(np.isnan(given), np.inf, given))
    bad = fin & (e_new > limit)
    if not np.any(bad):
        return None
    with np.errstate(invalid="ignore"):
        ratio = np.where(bad, e_new / np.where(limit > 0, limit, 1e-300), 0.0)
    worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(ratio)), w.shape)) if w.ndim else ()
    return "values", (f"{int(bad.sum())} of {bad.size} elements differ; worst at {list(worst)}: exact "
                      f"{o[worst]:.8g}, original {w[worst]:.8g}, got {h[worst]:.8g} (|Δ| = {e_new[worst]:.3g} "
                      f"from exact, allowed {limit[worst]:.3g}: {ERROR_FACTOR:g}× the original's "
                      f"{max(e_own[worst], typical):.3g} + {ULPS:g} ulp)")


def assert_outputs_close(expected: ReferenceRun, got: Mapping[str, np.ndarray] | Sequence[np.ndarray], *,
                         rtol: float | None = None, atol: float | None = None, what: str = "outputs") -> None:
    """Raise ``AssertionError`` listing every output of ``got`` that disagrees with ``expected``."""
    problems = compare_outputs(expected, got, rtol=rtol, atol=atol)
    if problems:
        raise AssertionError(f"{what} differ from the reference:\n" + "\n".join(f"  {p}" for p in problems))
