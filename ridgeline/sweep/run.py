"""Running a sweep: grid → chunks → engine → results store, with a progress bar."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .engines import get_engine
from .evaluate import evaluate_chunk, evaluate_naive
from .grid import chunks as make_chunks
from .grid import default_chunk, points
from .results import ResultStore
from .spec import SweepSpec, load_spec, parse_spec

__all__ = ["SweepStats", "sweep"]

log = logging.getLogger(__name__)


@dataclass
class SweepStats:
    """What a run did: points in the grid, skipped as already written, evaluated; wall time."""

    points: int = 0
    skipped: int = 0
    evaluated: int = 0
    errors: int = 0
    chunks: int = 0
    seconds: float = 0.0
    engine: str = "local"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def points_per_s(self) -> float:
        return self.evaluated / self.seconds if self.seconds else 0.0


def sweep(spec: SweepSpec | Mapping[str, Any] | str | os.PathLike, *, engine: Any = "local",
          output: str | os.PathLike | None = None, workers: int | None = None, address: str | None = None,
          resume: bool = False, chunk: int | None = None, progress: bool = False, naive: bool = False,
          stats: SweepStats | None = None):
    """Run a design-space sweep; returns a pyarrow Table, one row per point, sorted by point id.

    ``spec`` is a TOML path, its parsed dict, or a ``SweepSpec``. ``output`` (``.parquet`` or
    ``.csv``) is written as chunks finish, so ``resume=True`` continues a killed run. ``naive``
    estimates every point from scratch (the baseline ``tools/bench_sweep.py`` measures against).
    """
    if isinstance(spec, (str, os.PathLike)):
        spec = load_spec(spec)
    spec = parse_spec(spec)
    st = stats if stats is not None else SweepStats()
    st.engine = engine if isinstance(engine, str) else getattr(engine, "name", type(engine).__name__)
    t0 = time.perf_counter()
    pts = list(points(spec))
    if not pts:
        make_chunks(spec, pts, 1)       # raises the empty-grid error
    st.points = len(pts)
    eng = get_engine(engine, workers=workers, address=address)
    store = ResultStore(output, spec.fingerprint(), list(spec.axes), resume=resume)
    todo = [p for p in pts if p[0] not in store.done] if store.done else pts
    st.skipped = len(pts) - len(todo)
    size = chunk or spec.chunk or default_chunk(len(todo), getattr(eng, "workers", None) or 2)
    work = make_chunks(spec, todo, size) if todo else []
    st.chunks = len(work)
    fn = evaluate_naive if naive else evaluate_chunk
    bar = _Progress(len(todo), f"sweep {spec.name} on {st.engine}", enabled=progress)
    with eng, bar:
        st.extra["startup_s"] = time.perf_counter() - t0
        for i, rows in eng.map(fn, spec.payload(), work):
            store.add(i, rows)
            st.evaluated += len(rows)
            st.errors += sum(r.get("error") is not None for r in rows)
            bar.advance(len(rows))
    table = store.finish()
    st.seconds = time.perf_counter() - t0
    log.info("sweep %s: %d points (%d already written), %d evaluated in %.1f s on %s", spec.name, st.points,
             st.skipped, st.evaluated, st.seconds, st.engine)
    return table


class _Progress:
    """A rich progress bar on stderr when it is a terminal (or when forced), else nothing."""

    def __init__(self, total: int, title: str, *, enabled: bool):
        self.total, self.title = total, title
        self.enabled = enabled and total > 0
        self._p = self._task = None

    def __enter__(self):
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            self._p = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                               TextColumn("points"), TimeElapsedColumn(), TimeRemainingColumn(),
                               console=Console(stderr=True), transient=False)
            self._p.__enter__()
            self._task = self._p.add_task(self.title, total=self.total)
        return self

    def advance(self, n: int) -> None:
        if self._p is not None:
            self._p.advance(self._task, n)

    def __exit__(self, *exc):
        if self._p is not None:
            self._p.__exit__(*exc)
