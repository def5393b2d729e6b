"""The grid: every point of the spec's axes that passes its constraints, and chunks of points.

A point is ``(id, values)``: ``id`` is its index in the full product of the axes (spec order), so
it names the same configuration in every run of the same spec (``--resume`` relies on it).

Chunks group points that share work: the same graph (model, batch, context, dtypes: built once
and analysed once) and the same target (both phases of a configuration sit together, so each is
the other's TTFT/TPOT companion without a second estimate).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import Any

from .spec import BUILD_AXES, DEFAULTS, ESTIMATE_AXES, SpecError, SweepSpec

__all__ = ["Point", "chunks", "default_chunk", "points"]

Point = tuple[int, tuple[Any, ...]]


def points(spec: SweepSpec) -> Iterator[Point]:
    """Every point of the product that satisfies all constraints, in id order."""
    names = list(spec.axes)
    base = {a: DEFAULTS.get(a) for a in BUILD_AXES + ESTIMATE_AXES if a not in spec.axes}
    for i, values in enumerate(itertools.product(*spec.axes.values())):
        if spec.constraints:
            env = {**base, **dict(zip(names, values))}
            if not all(c(env) for c in spec.constraints):
                continue
        yield i, values


def default_chunk(n_points: int, workers: int) -> int:
    """Points per task: large enough that scheduling costs little (a task is ≥ ~0.1 s of work),
    small enough that every worker gets several tasks and the progress bar moves."""
    return max(4, min(96, -(-n_points // max(1, 4 * workers))))


def chunks(spec: SweepSpec, pts: Iterable[Point], size: int) -> list[list[Point]]:
    """``pts`` grouped by shared work (graph, then target), cut into chunks of about ``size``."""
    names = list(spec.axes)
    graph_idx = [names.index(a) for a in BUILD_AXES if a in names and a != "phase"]
    target_i = names.index("target")
    rest = [i for i in range(len(names)) if i not in graph_idx and i != target_i]
    order = {n: {repr(v): k for k, v in enumerate(vals)} for n, vals in spec.axes.items()}

    def rank(values: tuple[Any, ...], idx: list[int]) -> tuple[int, ...]:
        return tuple(order[names[i]][repr(values[i])] for i in idx)

    def unit_key(p: Point) -> tuple[int, ...]:
        return rank(p[1], graph_idx) + rank(p[1], [target_i])

    # within a unit, a configuration's phases sit next to each other (phase is the last key)
    rest_no_phase = [i for i in rest if names[i] != "phase"] + [i for i in rest if names[i] == "phase"]
    ordered = sorted(pts, key=lambda p: (unit_key(p), rank(p[1], rest_no_phase), p[0]))
    if not ordered:
        raise SpecError(f"{spec.source}: the grid is empty: no point satisfies the constraints "
                        f"({'; '.join(c.text for c in spec.constraints)})")
    out: list[list[Point]] = []
    cur: list[Point] = []
    for _, group in itertools.groupby(ordered, key=unit_key):
        unit = list(group)
        if cur and len(cur) + len(unit) > size:
            out.append(cur)
            cur = []
        while len(unit) > size:
            out.append(unit[:size])
            unit = unit[size:]
        cur += unit
    if cur:
        out.append(cur)
    return out
