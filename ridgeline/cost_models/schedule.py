"""Static schedules: operations placed on the functional units of a set of chips, cycle by cycle.

This is what a compile-time scheduled machine (Groq's LPU) runs: every operation has a chip, a
unit (``mxm``, ``vxm``, ``mem``, ``sxm``, ``c2c``), a start cycle and a duration fixed before the
program runs, so its latency is identical on every run.

- ``Op``: one operation (a node's part on one chip, or a chip-to-chip transfer).
- ``list_schedule(ops, capacity)``: the list scheduler — ops become ready when their
  dependencies end; among ready ops the one that can start earliest goes first (ties: the longer
  remaining critical path, then the lower id), onto the free instance of its unit; no op is
  delayed once placed. Deterministic: the same ops give the same cycles.
- ``Schedule``: the result, with ``to_json`` (the ``--schedule`` export), ``from_json``,
  and ``gantt`` (a matplotlib chart, one row per chip and unit).
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..ir.errors import RidgelineError
from ..ir.safe_files import write_atomic

__all__ = ["SCHEDULE_FORMAT", "Op", "Schedule", "list_schedule"]

SCHEDULE_FORMAT = "ridgeline.schedule/1"


@dataclass
class Op:
    """One operation of a static schedule (``start`` is set by the scheduler)."""

    id: int
    node: str                    # the graph node it computes (or the transfer's label)
    op: str                      # the node's op (MatMul, Attention, …) or "send"
    kind: str                    # matmul | vector | memory | switch | transfer
    unit: str                    # the functional unit it occupies
    chip: int                    # the chip it runs on (a transfer: the sending chip)
    cycles: int                  # how long it occupies the unit
    deps: tuple[int, ...] = ()   # ops that must end before it starts
    dst: int | None = None       # a transfer's receiving chip
    layer: int | None = None
    bound: str = "compute"       # what limits it: compute | memory | communication
    part: tuple[int, int] = (0, 1)   # (index, parts) when a node is split across chips
    start: int = -1
    value: str | None = None     # a transfer's value (tensor) name

    @property
    def end(self) -> int:
        return self.start + self.cycles

    def to_json(self) -> dict[str, Any]:
        d = {"id": self.id, "node": self.node, "op": self.op, "kind": self.kind, "unit": self.unit,
             "chip": self.chip, "start": self.start, "cycles": self.cycles, "deps": list(self.deps),
             "bound": self.bound}
        if self.dst is not None:
            d["dst"] = self.dst
        if self.value is not None:
            d["value"] = self.value
        if self.layer is not None:
            d["layer"] = self.layer
        if self.part[1] > 1:
            d["part"] = list(self.part)
        return d


def list_schedule(ops: Sequence[Op], capacity: Mapping[str, int], *,
                  external_end: Callable[[int], int] | None = None,
                  busy_until: Mapping[tuple[int, str], int] | None = None) -> int:
    """Place ``ops`` on units of ``capacity`` instances per chip; sets each ``op.start`` and
    returns the last end cycle.

    ``ops`` have consecutive ids ``base, base+1, …`` and depend on lower ids. A dependency below
    ``base`` is an op placed earlier: ``external_end(id)`` gives its end cycle, and
    ``busy_until[(chip, unit)]`` says until when the earlier ops occupy a unit (later ops go after).
    """
    n = len(ops)
    if not n:
        return 0
    base = ops[0].id
    succ: list[list[int]] = [[] for _ in range(n)]
    waiting = [0] * n
    ready_at = [0] * n
    for k, o in enumerate(ops):
        if o.id != base + k:
            raise RidgelineError(f"schedule: op ids must be consecutive (op {o.id} at position {k} after {base})")
        if o.unit not in capacity:
            raise RidgelineError(f"schedule: op {o.id} ({o.node}) needs unit {o.unit!r}, which the chip does not have")
        for d in o.deps:
            if not 0 <= d < o.id:
                raise RidgelineError(f"schedule: op {o.id} ({o.node}) depends on op {d}, which does not precede it")
            if d >= base:
                succ[d - base].append(k)
                waiting[k] += 1
            elif external_end is None:
                raise RidgelineError(f"schedule: op {o.id} depends on op {d}, which is not in the schedule")
            else:
                ready_at[k] = max(ready_at[k], external_end(d))
    # remaining critical path (cycles from an op's start to the end of the program)
    tail = [0] * n
    for k in range(n - 1, -1, -1):
        tail[k] = ops[k].cycles + max((tail[x] for x in succ[k]), default=0)
    free: dict[tuple[int, str], list[int]] = {}   # (chip, unit) -> end cycle of each instance
    for key, end in (busy_until or {}).items():
        if key[1] in capacity:
            free[key] = [end] * max(1, int(capacity[key[1]]))
    heap = [(ready_at[k], -tail[k], k) for k in range(n) if waiting[k] == 0]
    heapq.heapify(heap)
    makespan = 0
    placed = 0
    while heap:
        key, neg_tail, k = heapq.heappop(heap)
        o = ops[k]
        lanes = free.get((o.chip, o.unit))
        if lanes is None:
            lanes = free[(o.chip, o.unit)] = [0] * max(1, int(capacity[o.unit]))
        est = max(ready_at[k], min(lanes))
        if est > key:
            # its unit got busier since it was queued: requeue at the true earliest start
            heapq.heappush(heap, (est, neg_tail, k))
            continue
        lane = 0 if len(lanes) == 1 else min(range(len(lanes)), key=lambda x: (max(lanes[x], ready_at[k]), x))
        o.start = max(lanes[lane], ready_at[k])
        end = o.start + o.cycles
        lanes[lane] = end
        placed += 1
        makespan = max(makespan, end)
        for x in succ[k]:
            ready_at[x] = max(ready_at[x], end)
            waiting[x] -= 1
            if waiting[x] == 0:
                # earliest possible start on its unit decides the order among ready ops
                xo = ops[x]
                xl = free.get((xo.chip, xo.unit))
                heapq.heappush(heap, (max(ready_at[x], min(xl) if xl else 0), -tail[x], x))
    if placed != n:
        raise RidgelineError("schedule: some ops were never ready (a dependency cycle)")
    return makespan


class Schedule:
    """A static schedule over ``chips`` chips (see the module docstring).

    ``ops`` may be produced lazily (``expand``): a schedule replicated from a repeated block
    knows its cycles, op count and busy cycles without building every copy; the op list is built
    on first access (``to_json``, ``gantt``).
    """

    def __init__(self, target: str, clock_hz: float, chips: int, capacity: Mapping[str, int], ops: list[Op],
                 makespan: int, placement: Mapping[str, list[int]] | None = None,
                 replicated: dict[str, Any] | None = None, *, expand: Callable[[], list[Op]] | None = None,
                 stats: Mapping[str, Any] | None = None):
        self.target = target
        self.clock_hz = clock_hz
        self.chips = chips
        self.capacity = dict(capacity)
        self._ops = ops
        self._expand = expand
        self._stats = dict(stats) if stats else None
        self.makespan = makespan                   # cycles
        self.placement = dict(placement or {})     # node -> chips holding its weights
        self.replicated = replicated               # how it was built from a repeated block

    @property
    def ops(self) -> list[Op]:
        if self._expand is not None:
            self._ops, self._expand = self._expand(), None
        return self._ops

    @property
    def op_count(self) -> int:
        return self._stats["ops"] if self._stats and self._expand is not None else len(self.ops)

    @property
    def seconds(self) -> float:
        return self.makespan / self.clock_hz

    def busy(self) -> dict[str, int]:
        """Busy cycles per unit, summed over chips."""
        if self._stats and self._expand is not None:
            return dict(self._stats["busy"])
        out: dict[str, int] = {}
        for o in self.ops:
            out[o.unit] = out.get(o.unit, 0) + o.cycles
        return out

    def summary(self) -> dict[str, Any]:
        """What ``Estimate.detail["schedule"]`` carries (the full op list is in ``to_json``)."""
        return {"chips": self.chips, "makespan_cycles": self.makespan, "seconds": self.seconds,
                "ops": self.op_count, "busy_cycles": self.busy(), "capacity": dict(self.capacity),
                **({"replicated": self.replicated} if self.replicated else {})}

    def to_json(self) -> dict[str, Any]:
        return {"format": SCHEDULE_FORMAT, "target": self.target, "clock_hz": self.clock_hz, "chips": self.chips,
                "units": dict(self.capacity), "makespan_cycles": self.makespan, "seconds": self.seconds,
                "placement": {k: list(v) for k, v in self.placement.items()},
                **({"replicated": self.replicated} if self.replicated else {}),
                "ops": [o.to_json() for o in self.ops]}

    def write_json(self, path: str | Path) -> Path:
        path = Path(path)
        write_atomic(path, (json.dumps(self.to_json(), indent=1) + "\n").encode(), "schedule")
        return path

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Schedule:
        if data.get("format") != SCHEDULE_FORMAT:
            raise RidgelineError(f"not a ridgeline schedule (format {data.get('format')!r}, expected {SCHEDULE_FORMAT})")
        ops = [Op(id=o["id"], node=o["node"], op=o["op"], kind=o["kind"], unit=o["unit"], chip=o["chip"],
                  cycles=o["cycles"], deps=tuple(o["deps"]), dst=o.get("dst"), layer=o.get("layer"),
                  bound=o.get("bound", "compute"), part=tuple(o.get("part", (0, 1))), start=o["start"],
                  value=o.get("value"))
               for o in data["ops"]]
        return cls(data["target"], data["clock_hz"], data["chips"], dict(data["units"]), ops, data["makespan_cycles"],
                   {k: list(v) for k, v in data.get("placement", {}).items()}, data.get("replicated"))

    # ----------------------------------------------------------------- drawing
    def gantt(self, path: str | Path, *, max_chips: int = 8, title: str | None = None) -> Path:
        """A Gantt chart (PNG, SVG or PDF): one row per (chip, unit), ops as bars coloured by kind.
        Big deployments show their first ``max_chips`` chips that compute (chips that only hold
        a split embedding and forward it are skipped)."""
        from .plot import pyplot, save_figure
        path = Path(path)
        plt = pyplot(path, "--gantt", "the Gantt chart")
        colors = {"matmul": "#d62728", "vector": "#1f77b4", "memory": "#9467bd", "switch": "#8c564b",
                  "transfer": "#2ca02c"}
        units = list(self.capacity)
        computing = sorted({o.chip for o in self.ops if o.kind in ("matmul", "vector")})
        shown = (computing or list(range(self.chips)))[:max_chips]
        chosen = set(shown)
        rows = [(c, u) for c in shown for u in units]
        ypos = {r: i for i, r in enumerate(rows)}
        scale = 1e6 / self.clock_hz             # cycles -> microseconds
        fig, ax = plt.subplots(figsize=(11, max(2.5, 0.28 * len(rows) + 1.2)))
        bars: dict[tuple[tuple[int, str], str], list[tuple[float, float]]] = {}
        for o in self.ops:
            if o.chip not in chosen:
                continue
            bars.setdefault(((o.chip, o.unit), o.kind), []).append((o.start * scale, max(o.cycles * scale, 1e-4)))
        for ((row, kind)), spans in bars.items():
            ax.broken_barh(spans, (ypos[row] - 0.4, 0.8), facecolors=colors.get(kind, "#7f7f7f"), linewidth=0)
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels([f"chip {c} {u}" for c, u in rows], fontsize=7)
        ax.invert_yaxis()
        spans = [(o.start, o.end) for o in self.ops if o.chip in chosen]
        lo = min((a for a, _ in spans), default=0)
        hi = max((b for _, b in spans), default=self.makespan)
        ax.set_xlim(lo * scale, (hi + (hi - lo) * 0.01) * scale or 1)
        ax.set_xlabel("time (µs)")
        from matplotlib.patches import Patch
        ax.legend(handles=[Patch(color=c, label=k) for k, c in colors.items()], fontsize=7, loc="upper right",
                  ncol=5)
        which = (f"chips {shown[0]}–{shown[-1]} of {self.chips}" if len(shown) < self.chips
                 else f"{self.chips} chip(s)")
        ax.set_title(title or f"{self.target}: static schedule, {self.makespan:,} cycles "
                              f"({self.seconds * 1e6:,.1f} µs), {which}", fontsize=9)
        fig.tight_layout()
        return save_figure(plt, fig, path, "Gantt chart")
