"""What a worker keeps between points: built graphs with their analyses, resolved targets, and
(within a chunk) estimates, so shared per-graph work is done once.

Every cached object is what the public API would compute for the point anyway; the cache only
decides how often. ``tests/sweep`` checks rows from the cache against naive per-point estimates.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Mapping
from typing import Any

from ..cost_models import GraphAnalysis, Target, get_target
from ..ir import Graph
from ..ir.errors import RidgelineError
from .variants import apply_overrides

__all__ = ["GraphCache", "TargetCache", "canonical_build", "graph_key"]


def graph_key(graph: Graph) -> Hashable:
    """The identity of a preset graph: everything ``build`` decided (its ``meta["llm"]``)."""
    meta = graph.meta.get("llm") or {}
    return tuple(sorted((k, v) for k, v in meta.items() if isinstance(v, (int, float, str, bool, type(None)))))


class GraphCache:
    """Built preset graphs and their ``GraphAnalysis`` by build arguments, least recently used out.

    ``capacity`` bounds memory: a 405B graph with its analysis is a few MB, and chunks arrive
    grouped by graph, so a handful of entries gives nearly every hit."""

    def __init__(self, capacity: int = 12):
        self.capacity = capacity
        self._items: OrderedDict[Hashable, tuple[Graph, GraphAnalysis | None]] = OrderedDict()
        self.hits = self.misses = 0

    def get(self, kwargs: Mapping[str, Any]) -> tuple[Graph, GraphAnalysis]:
        """(graph, analysis) of ``models.build(**kwargs)``."""
        key = canonical_build(kwargs)
        hit = self._items.get(key)
        if hit is not None:
            self.hits += 1
            self._items.move_to_end(key)
            return hit
        self.misses += 1
        from ..models import build
        g = build(**kwargs)
        item = (g, GraphAnalysis(g))
        self._items[key] = item
        if len(self._items) > self.capacity:
            self._items.popitem(last=False)
        return item


def canonical_build(kw: Mapping[str, Any]) -> Hashable:
    """One key for build arguments that build the same graph: ``dtype="fp8"`` and the resolved
    ``weight_dtype``/``act_dtype`` a companion is built with, defaults spelled out or left out.
    Arguments this cannot prove equivalent keep their own key (a second build, never a wrong one)."""
    from ..models import find_preset
    from ..models.builder import resolve_dtypes
    raw = ("raw",) + tuple(sorted(kw.items()))
    cfg = find_preset(kw.get("preset", ""))
    if cfg is None or kw.get("prompt") is not None:
        return raw
    try:
        wd, ad, base, kv = resolve_dtypes(kw.get("dtype"), kw.get("weight_dtype"), kw.get("act_dtype"),
                                          kw.get("kv_dtype"))
        if resolve_dtypes(None, wd, ad, kv) != (wd, ad, base, kv):
            return raw
    except RidgelineError:
        return raw
    phase = kw.get("phase") or ("decode" if cfg.causal else "prefill")
    context = kw.get("context") or min(2048, cfg.max_context)
    group = kw.get("weight_group")
    group = (128 if wd == "i4" else 0) if group is None else group
    return (cfg.name, phase, kw.get("batch", 1), context, wd, ad, kv, group, kw.get("logits") or "last")


class TargetCache:
    """Targets and spec variants by name (a variant is its base target with overrides applied)."""

    def __init__(self, variants: Mapping[str, Mapping[str, Any]]):
        self.variants = variants
        self._items: dict[str, Target] = {}

    def get(self, name: str) -> Target:
        t = self._items.get(name)
        if t is None:
            v = self.variants.get(name)
            if v is None:
                t = get_target(name)
            else:
                over = {k: x for k, x in v.items() if k != "base"}
                t = apply_overrides(get_target(v["base"]), over, name=name)
            self._items[name] = t
        return t
