"""Evaluating points: one row per point with its axes and every metric of ``estimate --json``.

``evaluate_chunk`` is the task every engine runs (a plain function of plain data, so any
scheduler can ship it). ``evaluate_naive`` estimates each point from scratch through the public
API, as a user calling ``estimate`` once per point would: the baseline of the cache's speedup and
the oracle the tests compare the cache against.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..cost_models import Estimate, estimate, estimate_pair
from ..cost_models.llm import llm_metrics
from ..ir.errors import RidgelineError
from ..models import companion_build
from .cache import GraphCache, TargetCache, graph_key
from .serve_columns import COLUMNS as SERVE_COLUMNS
from .serve_columns import ServeColumns
from .spec import BUILD_AXES, OPTION_PREFIX

__all__ = ["Evaluator", "derived", "estimate_row", "evaluate_chunk", "evaluate_naive"]


def _split(names: Sequence[str], values: Sequence[Any]) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """(build kwargs, target name, estimate options) of one point."""
    build: dict[str, Any] = {}
    opts: dict[str, Any] = {}
    target = ""
    for n, v in zip(names, values):
        if n == "model":
            build["preset"] = v
        elif n in BUILD_AXES:
            build[n] = v
        elif n == "target":
            target = v
        elif n.startswith(OPTION_PREFIX):
            opts[n[len(OPTION_PREFIX):]] = v
        else:   # tp, pp
            opts[n] = v
    return build, target, opts


class Evaluator:
    """Estimates points of one spec in one worker, reusing graphs across chunks and estimates
    within a chunk (a configuration's prefill and decode are each other's companions)."""

    def __init__(self, payload: Mapping[str, Any]):
        self.names: list[str] = list(payload["axes"])
        self.targets = TargetCache(payload.get("variants", {}))
        self.graphs = GraphCache()
        self.serve = ServeColumns(payload["serve"]) if payload.get("serve") else None
        self._memo: dict[Any, Estimate | Exception] = {}

    def _estimate(self, graph, analysis, target, opts: Mapping[str, Any], companion: Estimate | None = None
                  ) -> tuple[Estimate, bool]:
        """The memoized estimate, and whether its LLM metrics already account for ``companion``."""
        key = (graph_key(graph), target.name, tuple(sorted(opts.items())))
        hit = self._memo.get(key)
        fresh = hit is None
        if fresh:
            try:
                hit = estimate(graph, target, analysis=analysis, companion=companion, **opts)
            except RidgelineError as e:
                hit = e
            self._memo[key] = hit
        if isinstance(hit, Exception):
            raise hit
        return hit, fresh

    def row(self, pid: int, values: Sequence[Any]) -> dict[str, Any]:
        return _point_row(pid, values, self.names, self.targets, self.serve, self._price)

    def _price(self, build: dict[str, Any], target, opts: dict[str, Any]) -> Estimate:
        graph, analysis = self.graphs.get(build)
        ckw = companion_build(graph)
        cgraph, canalysis = self.graphs.get(ckw) if ckw is not None else (None, None)

        def price(g, comp: Estimate | None) -> Estimate:
            est, fresh = self._estimate(g, analysis if g is graph else canalysis, target, opts, comp)
            if g is graph and not fresh:    # first priced as the other phase's companion: add this one's
                est.llm = llm_metrics(graph, est, comp)     # TTFT/TPOT, as CostModel.estimate does with one
            return est
        return estimate_pair(price, graph, cgraph)[0]

    def run(self, chunk: Sequence[tuple[int, Sequence[Any]]]) -> list[dict[str, Any]]:
        try:
            return [self.row(pid, values) for pid, values in chunk]
        finally:
            self._memo.clear()       # estimates hold every node's record: keep them for one chunk


_EVALUATORS: dict[str, Evaluator] = {}


def evaluate_chunk(payload: Mapping[str, Any], chunk: Sequence[tuple[int, Sequence[Any]]]) -> list[dict[str, Any]]:
    """Rows of ``chunk``'s points; the worker's caches persist across the chunks of one spec."""
    key = repr(sorted(payload.items(), key=lambda kv: kv[0]))
    ev = _EVALUATORS.get(key)
    if ev is None:
        _EVALUATORS.clear()
        ev = _EVALUATORS[key] = Evaluator(payload)
    return ev.run(chunk)


def evaluate_naive(payload: Mapping[str, Any], chunk: Sequence[tuple[int, Sequence[Any]]]) -> list[dict[str, Any]]:
    """Rows by one public ``estimate`` per point (graph built, companion built and priced each time)."""
    from ..backends.estimate import EstimateBackend
    from ..models import build, companion

    def price(kw: dict[str, Any], target, opts: dict[str, Any]) -> Estimate:
        g = build(**kw)
        return EstimateBackend(target).compile(g, companion=companion(g), **opts)
    names = list(payload["axes"])
    targets = TargetCache(payload.get("variants", {}))
    serve = ServeColumns(payload["serve"]) if payload.get("serve") else None
    return [_point_row(pid, values, names, targets, serve, price) for pid, values in chunk]


def _point_row(pid: int, values: Sequence[Any], names: Sequence[str], targets: TargetCache,
               serve: ServeColumns | None, price: Any) -> dict[str, Any]:
    """One point's row: its axes, then ``price(build kwargs, target, options)``'s metrics, or its error."""
    row: dict[str, Any] = {"point": pid, **dict(zip(names, values)), "error": None}
    try:
        build, tname, opts = _split(names, values)
        target = targets.get(tname)
        row.update(estimate_row(price(build, target, opts), skip=row))
        row.update(derived(row, target))
    except Exception as e:  # noqa: BLE001 - a failed point is a row, never a lost sweep
        row["error"] = _one_line(e)
    if serve is not None:
        row.update(_serve_row(serve, targets, names, values, row["error"]))
    return row


def _serve_row(serve: ServeColumns, targets: TargetCache, names: Sequence[str], values: Sequence[Any],
               row_error: str | None) -> dict[str, Any]:
    """The serve-sim columns of a point's deployment (``[metrics.serve]``)."""
    if row_error is not None:       # e.g. --tp on a wafer: serve-sim would quietly ignore what failed here
        return {**{c: None for c in SERVE_COLUMNS}, "serve.error": "not simulated: the point's estimate failed"}
    build, tname, opts = _split(names, values)
    try:
        return serve.columns(build, targets.get(tname), opts)
    except RidgelineError as e:      # an unresolvable target: the estimate's error says it too
        return {**{c: None for c in SERVE_COLUMNS}, "serve.error": _one_line(e)}


def estimate_row(est: Estimate, *, skip: Mapping[str, Any] = {}) -> dict[str, Any]:
    """The scalar metrics of ``est.to_json()`` flattened (``memory.fits``, ``breakdown_s.memory``);
    keys already in ``skip`` (the point's axes: target, phase, batch, context) are left out."""
    out: dict[str, Any] = {}
    _flatten(est.to_json(nodes=False), "", out)
    return {k: v for k, v in out.items() if k not in skip}


def derived(row: Mapping[str, Any], target) -> dict[str, Any]:
    """Columns the report ranks by that ``estimate --json`` does not print: throughput per device,
    and energy per token where the target states its power (``power = "700 W"``; board power at
    full load, so an upper bound for memory-bound decode)."""
    devices = row.get("devices") or 1
    tps = row.get("tokens_per_s")
    out: dict[str, Any] = {"target_power_w": target.power_w,
                           "tokens_per_s_per_device": tps / devices if tps else None,
                           "joules_per_token": None}
    if tps and target.power_w:
        out["joules_per_token"] = target.power_w * devices / tps
    return out


def _flatten(d: Mapping[str, Any], prefix: str, out: dict[str, Any]) -> None:
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            _flatten(v, key + ".", out)
        elif k == "notes" and isinstance(v, list):
            out[key] = "; ".join(map(str, v))
        elif isinstance(v, (list, tuple)):
            continue          # per-node or per-stage detail: not a column
        else:
            out[key] = _scalar(v)


def _scalar(v: Any) -> Any:
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return str(v)


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if isinstance(e, RidgelineError) else f"{type(e).__name__}: {text}"
