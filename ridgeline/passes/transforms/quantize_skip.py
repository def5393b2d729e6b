"""``quantize{skip=…}``: which GEMMs stay in full precision.

Patterns, comma-separated (any that matches keeps the GEMM):

* ``lm_head`` — the GEMMs no other quantizable GEMM reads downstream (the output projection);
* ``first`` / ``last`` — the first / last transformer layer;
* ``layer:N`` or ``layer:A-B`` — layers by number (from 0);
* anything else — a glob (``*mlp*``) or name fragment matched against the node's output, label,
  name and weight.

A layer is counted by the ``Attention`` kernels: the projections feeding an attention (reaching
it without crossing another GEMM) belong to its layer; the rest belong to the last attention
before them (a preset's ``meta["layer"]`` wins when present).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence

from ...ir import Graph
from ...ir.errors import PassError

__all__ = ["gemm_layers", "select_skipped"]

_GEMMS = ("MatMul", "Gemm", "Fused")


def gemm_layers(graph: Graph, cands: Sequence) -> dict[int, int]:
    """id(candidate) -> its transformer layer (see the module docstring); -1 before any."""
    nodes = list(graph)
    order = {id(n): i for i, n in enumerate(nodes)}
    cand_nodes = {id(c.node) for c in cands}
    attn = [n for n in nodes if n.op == "Attention" or (n.op == "Fused" and n.attr("kind") == "attention")]
    attn_index = {id(n): i for i, n in enumerate(attn)}
    out = {}
    for c in cands:
        if isinstance(c.node.meta.get("layer"), int):
            out[id(c)] = int(c.node.meta["layer"])
            continue
        hit = _attention_ahead(c.node, attn_index, cand_nodes)
        if hit is None:
            before = [attn_index[id(a)] for a in attn if order[id(a)] < order[id(c.node)]]
            hit = max(before) if before else -1
        out[id(c)] = hit
    return out


def _attention_ahead(node, attn_index: dict[int, int], cand_nodes: set[int], limit: int = 12) -> int | None:
    """The attention this GEMM feeds without crossing another GEMM (a few hops at most)."""
    frontier, seen = [node], {id(node)}
    for _ in range(limit):
        nxt = []
        for n in frontier:
            for v in n.outputs:
                for u, _ in v.uses:
                    if id(u) in seen:
                        continue
                    seen.add(id(u))
                    if id(u) in attn_index:
                        return attn_index[id(u)]
                    if id(u) in cand_nodes:
                        continue
                    nxt.append(u)
        frontier = nxt
    return None


def _heads(graph: Graph, cands: Sequence) -> set[int]:
    """Candidates with no other candidate downstream (the output projection)."""
    cand_nodes = {id(c.node) for c in cands}
    feeds_gemm: dict[int, bool] = {}
    for n in reversed(list(graph)):
        hit = False
        for v in n.outputs:
            for u, _ in v.uses:
                if id(u) in cand_nodes or feeds_gemm.get(id(u), False):
                    hit = True
        feeds_gemm[id(n)] = hit
    return {id(c) for c in cands if not feeds_gemm.get(id(c.node), False)}


def select_skipped(graph: Graph, cands: Sequence, patterns: Sequence[str], option: str = "skip",
                   kept: Sequence = ()) -> list:
    """The candidates any of ``patterns`` matches (see the module docstring), less ``kept`` (those
    ``skip=`` keeps). A pattern matching none, or only ``kept`` ones, is a ``PassError`` naming the
    GEMMs there are (``option``: the option it came from) — a typo would otherwise quantize, or
    leave unrotated, what the user meant to name."""
    patterns = [p for p in patterns if p]
    if not patterns or not cands:
        return []
    layers = gemm_layers(graph, cands) if any(p in ("first", "last") or p.startswith("layer:")
                                              for p in patterns) else {}
    known = [x for x in layers.values() if x >= 0]
    heads = _heads(graph, cands)       # the head is no transformer layer: first/last/layer:N leave it
    out, hit, live = [], set(), set()
    kept_ids = {id(c) for c in kept}
    for c in cands:
        # the MatMul's own name too: a fused GEMM (residual Add, activation) is named for its output
        names = [x for x in (c.node.outputs[0].name, c.node.name, c.mm.name, c.w.name,
                             c.node.attr("label") if c.node.op == "Fused" else "") if x]
        found = {p for p in patterns if _matches(p, c, names, layers, known, heads)}
        hit |= found
        if found and id(c) not in kept_ids:
            out.append(c)
            live |= found
    missing = [p for p in patterns if p not in live]
    if missing:
        like = sorted({re.sub(r"\d+", "N", c.mm.name or c.label) for c in cands if id(c) not in kept_ids})
        why = " left (those it matches are all kept by skip)" if missing[0] in hit else ""
        raise PassError(f"quantize: {option} pattern {missing[0]!r} matches none of the {len(cands) - len(kept_ids)} "
                        f"GEMMs{why} (named like {', '.join(like[:8])}{', …' if len(like) > 8 else ''})")
    return out


def _matches(p: str, c, names: list[str], layers: dict, known: list[int], heads: set[int]) -> bool:
    if p == "lm_head":
        return id(c) in heads or any("lm_head" in n for n in names)
    if p in ("first", "last"):
        return bool(known) and layers.get(id(c)) == (min(known) if p == "first" else max(known)) and id(c) not in heads
    if p.startswith("layer:"):
        m = re.fullmatch(r"layer:(\d+)(?:-(\d+))?", p)
        if not m:
            raise PassError(f"quantize: skip pattern {p!r}: write layer:N or layer:A-B")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) else lo
        return lo <= layers.get(id(c), -1) <= hi and id(c) not in heads
    if any(ch in p for ch in "*?["):
        return any(fnmatch.fnmatchcase(n, p) for n in names)
    return any(p in n for n in names)
