"""``tile{target=h100}``: choose a tile schedule for every GEMM, attention, normalization,
reduction and element-wise kernel, for the target's memory hierarchy.

Each node it tiles gets ``node.meta["tile"]`` (the contract in docs/cost_models.md and
docs/tiling_quantization.md): the kernel kind, tile sizes, loop order, buffering, the level the
tiles live in, and the bytes moved at every memory level. The cost models price those bytes; the
numpy backend runs the node by the schedule (``ridgeline/backends/numpy/tiled.py``), so what is
predicted is what runs. The schedule search is in ``tile_search``; what a node's loop nest is, in
``tile_problems``.

Options: ``target`` (a target name or a ``.toml`` target file), ``level`` (the memory level tiles
live in; default the innermost), ``buffers`` (1 or 2 to fix the buffering; 0 searches both),
``clear`` (remove schedules instead). Nodes with symbolic sizes are left untiled with a note: bind
the model's dims first.
"""

from __future__ import annotations

from collections import Counter

from ...ir import Graph, Node
from ...ir.errors import PassError
from ..base import Pass, PassContext, PassResult
from ..registry import register_pass
from .tile_problems import problem_of
from .tile_search import Hierarchy, hierarchy, search

__all__ = ["Tile", "load_target", "tile_graph", "tile_node"]


def load_target(target):
    """A ``Target`` from a name, a ``.toml`` path or a ``Target``."""
    from ...cost_models import Target, get_target, load_target_file
    if isinstance(target, Target):
        return target
    if not target:
        raise PassError("tile needs a target: tile{target=h100} (see `ridgeline targets`) or target=my.toml")
    text = str(target)
    if text.endswith(".toml"):
        return load_target_file(text)
    return get_target(text)


def tile_node(node: Node, h: Hierarchy, *, buffers: int = 0) -> dict | str:
    """The schedule record for ``node`` on ``h`` (also stored in its meta), or why it was not tiled."""
    problem = problem_of(node)
    if isinstance(problem, str):
        return problem
    rec = search(problem, h, buffers=buffers)
    if rec is None:
        return f"no tile fits {h.tile.name} ({h.tile.capacity:,.0f} B per instance)"
    node.meta["tile"] = rec
    return rec


def tile_graph(graph: Graph, target, *, level: str | None = None, buffers: int = 0) -> tuple[int, Counter]:
    """Tile every node of ``graph`` it can for ``target``; returns (nodes tiled, reasons for the rest)."""
    if buffers not in (0, 1, 2):
        raise PassError(f"tile: buffers must be 0 (search), 1 or 2, got {buffers}")
    h = hierarchy(load_target(target), level or None)
    tiled = 0
    skipped: Counter = Counter()
    for node in graph:
        if node.spec.category in ("view", "shape", "movement", "quant"):
            continue
        res = tile_node(node, h, buffers=buffers)
        if isinstance(res, str):
            node.meta.pop("tile", None)   # a stale schedule (another target) must not survive
            skipped[f"{node.op}: {res}"] += 1
        else:
            tiled += 1
    return tiled, skipped


@register_pass("tile")
class Tile(Pass):
    """Choose tile schedules for the target's memory hierarchy (recorded in node meta)."""

    #: a target name (see `ridgeline targets`) or a target .toml file
    target: str = ""
    #: the memory level tiles live in (default: the target's innermost)
    level: str = ""
    #: 1 or 2 to fix single/double buffering; 0 searches both
    buffers: int = 0
    #: remove tile schedules instead of choosing them
    clear: bool = False

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        if self.clear:
            n = 0
            for node in graph:
                if node.meta.pop("tile", None) is not None:
                    n += 1
            return PassResult(graph, bool(n), stats={"cleared": n})
        before = [node.meta.get("tile") for node in graph]
        tiled, skipped = tile_graph(graph, self.target, level=self.level, buffers=self.buffers)
        after = [node.meta.get("tile") for node in graph]
        for reason, count in sorted(skipped.items(), key=lambda kv: -kv[1])[:8]:
            ctx.note(f"not tiled ({count}×) {reason}")
        return PassResult(graph, before != after, tuple(ctx.notes), stats={"tiled": tiled,
                                                                             "untiled": sum(skipped.values())})
