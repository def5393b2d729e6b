"""The pass manager: runs a pipeline on a graph, in place, and reports what each pass did.

Like XLA's ``HloPassPipeline`` and MLIR's pass manager, the core loop (``run_passes``) knows
passes, ``PassOptions`` and instrumentation objects (``ridgeline.passes.instrument``) with hooks
around every pass; verifying after each pass (``VerifyEach``; on by default when
``RIDGELINE_VERIFY_EACH=1``, as in the test suite), saving the IR before a pass that broke the
graph (``DumpOnFailure``), printing IR (``PrintIR``) and timing (``Timing``) are such objects.
``run_pipeline``'s flags build them. A pass's ``requires``/``ensures`` hooks run before/after it;
``fixed_point`` repeats the whole pipeline until no pass changes anything.

Errors raised inside a pass keep their type and gain the pass's name: a ``RidgelineError``
becomes a one-line ``PassError``; anything else is a bug and keeps its traceback, with a note
naming the pass.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Sequence, TextIO

from ..ir import Graph
from ..ir.errors import PassError, RidgelineError
from ..ir.gc_pause import gc_paused as _gc_paused
from .base import PassContext, PassResult, check_result
from .evaluate import Evaluator
from .instrument import DumpOnFailure, Instrument, PrintIR, Timing, VerifyEach
from .pipeline import Pipeline, parse_pipeline

__all__ = [
    "VERIFY_EACH_ENV",
    "PassOptions",
    "PassRecord",
    "PipelineReport",
    "run_passes",
    "run_pipeline",
    "verify_each_default",
]

log = logging.getLogger("ridgeline.passes")

VERIFY_EACH_ENV = "RIDGELINE_VERIFY_EACH"


def verify_each_default() -> bool:
    """True when ``RIDGELINE_VERIFY_EACH`` is set to 1/true/yes/on (the test suite sets it)."""
    return os.environ.get(VERIFY_EACH_ENV, "").strip().lower() in ("1", "true", "yes", "on")


@dataclass
class PassRecord:
    """One pass execution: its text, the fixed-point iteration, nodes before/after, wall time."""

    pass_text: str
    iteration: int
    nodes_before: int
    nodes_after: int
    seconds: float
    modified: bool
    notes: tuple[str, ...] = ()
    stats: dict[str, int] = field(default_factory=dict)


@dataclass
class PipelineReport:
    """What ``run_pipeline`` did, pass by pass (``records``), and in total."""

    pipeline: str
    records: list[PassRecord] = field(default_factory=list)
    iterations: int = 0
    converged: bool = True
    seconds: float = 0.0
    nodes_before: int = 0
    nodes_after: int = 0
    verified: bool = False

    @property
    def modified(self) -> bool:
        return any(r.modified for r in self.records)

    def per_pass(self) -> dict[str, dict[str, Any]]:
        """Totals per pass text over all iterations: calls, seconds, nodes removed, modified."""
        out: dict[str, dict[str, Any]] = {}
        for r in self.records:
            row = out.setdefault(r.pass_text, {"calls": 0, "seconds": 0.0, "removed": 0, "modified": False})
            row["calls"] += 1
            row["seconds"] += r.seconds
            row["removed"] += r.nodes_before - r.nodes_after
            row["modified"] |= r.modified
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"pipeline": self.pipeline, "iterations": self.iterations, "converged": self.converged,
                "seconds": self.seconds, "nodes_before": self.nodes_before, "nodes_after": self.nodes_after,
                "verified_each": self.verified,
                "passes": [{"pass": r.pass_text, "iteration": r.iteration, "nodes_before": r.nodes_before,
                            "nodes_after": r.nodes_after, "seconds": r.seconds, "modified": r.modified,
                            "notes": list(r.notes), "stats": dict(r.stats)} for r in self.records]}

    def format(self) -> str:
        """A plain-text table (the CLI draws a nicer one from the same data)."""
        width = max([len(r.pass_text) for r in self.records] + [4])
        lines = [f"{'pass':<{width}}  {'nodes before':>12}  {'after':>7}  {'time':>10}"]
        for r in self.records:
            mark = "" if r.modified else "  (no change)"
            lines.append(f"{r.pass_text:<{width}}  {r.nodes_before:>12}  {r.nodes_after:>7}  "
                         f"{r.seconds * 1e3:>8.2f}ms{mark}")
        lines.append(f"{'total':<{width}}  {self.nodes_before:>12}  {self.nodes_after:>7}  "
                     f"{self.seconds * 1e3:>8.2f}ms")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()


@dataclass(frozen=True)
class PassOptions:
    """What every pass of a run sees besides the graph, and how often the pipeline repeats.

    ``evaluator`` lets ``fold-constants`` compute constant nodes; ``explain`` makes rewrite passes
    say why their rules did not fire; ``fixed_point`` repeats the pipeline until nothing changes
    (at most ``max_iterations`` times).
    """

    evaluator: Evaluator | None = None
    explain: bool = False
    fixed_point: bool = False
    max_iterations: int = 8


def run_pipeline(graph: Graph, pipeline: str | Pipeline | Sequence[Any], *, verify_each: bool | None = None,
                 print_ir_before_all: bool = False, print_ir_after_all: bool = False,
                 print_ir_after_change: bool = False, timing: bool = False, fixed_point: bool = False,
                 max_iterations: int = 8, evaluator: Evaluator | None = None, explain: bool = False,
                 ir_stream: TextIO | None = None, dump_dir: str | os.PathLike | None = None,
                 instruments: Sequence[Instrument] = ()) -> PipelineReport:
    """Run ``pipeline`` on ``graph`` in place and return a ``PipelineReport``.

    ``verify_each`` (default: ``RIDGELINE_VERIFY_EACH``) verifies the input and the graph after
    every pass; a failure raises ``PassError`` naming the pass and the file holding the IR from
    before it (in ``dump_dir``). ``print_ir_*`` write the IR to ``ir_stream`` (default stderr);
    ``timing`` writes the report table there too. The other flags are ``PassOptions``; the flags
    become ``instruments`` (see ``ridgeline.passes.instrument``), after which ``instruments`` run.
    """
    verify = verify_each_default() if verify_each is None else bool(verify_each)
    stream = ir_stream if ir_stream is not None else sys.stderr
    built: list[Instrument] = [DumpOnFailure(dump_dir), VerifyEach()] if verify else []
    if print_ir_before_all or print_ir_after_all or print_ir_after_change:
        built.append(PrintIR(stream, before_all=print_ir_before_all, after_all=print_ir_after_all,
                             after_change=print_ir_after_change))
    if timing:
        built.append(Timing(stream))
    options = PassOptions(evaluator=evaluator, explain=explain, fixed_point=fixed_point,
                          max_iterations=max_iterations)
    with _gc_paused():
        return run_passes(graph, parse_pipeline(pipeline), options, [*built, *instruments])


def run_passes(graph: Graph, pipe: Pipeline, options: PassOptions = PassOptions(),
               instruments: Sequence[Instrument] = ()) -> PipelineReport:
    """Run a parsed pipeline with ``options``, calling the ``instruments``' hooks around it."""
    report = PipelineReport(str(pipe), nodes_before=len(graph))
    for ins in instruments:
        ins.before_pipeline(graph, report)
    t_start = time.perf_counter()
    history: list[str] = []
    iteration = 0
    while True:
        iteration += 1
        changed = False
        for inv in pipe:
            record = _run_one(graph, inv, iteration, options, instruments, history, report.pipeline)
            report.records.append(record)
            changed |= record.modified
        if not options.fixed_point or not changed:
            break
        if iteration >= options.max_iterations:
            report.converged = False
            log.warning("pipeline %s did not reach a fixed point in %d iterations", report.pipeline, iteration)
            break
    report.iterations = iteration
    report.seconds = time.perf_counter() - t_start
    report.nodes_after = len(graph)
    for ins in instruments:
        ins.after_pipeline(graph, report)
    return report


def _run_one(graph: Graph, inv: Any, iteration: int, options: PassOptions, instruments: Sequence[Instrument],
             history: list[str], pipeline: str) -> PassRecord:
    """One pass with its hooks: requires, run, ensures, then the instruments' ``after``."""
    p = inv.instantiate()
    text = str(inv)
    for ins in instruments:
        ins.before(text, graph)
    ctx = PassContext(evaluator=options.evaluator, explain=options.explain,
                      logger=logging.getLogger(f"ridgeline.passes.{p.name}"))
    before = len(graph)
    p.check_options()
    _condition(p.requires, graph, text, "precondition")
    t0 = time.perf_counter()
    try:
        result = check_result(p.run(graph, ctx), p.name, graph)
    except PassError as e:
        e.pass_name = e.pass_name or text
        raise
    except RidgelineError as e:
        raise PassError(f"pass {text} failed: {e}" + _history(history), pass_name=text,
                        node=getattr(e, "node", None), reason=str(e)) from None
    except Exception as e:
        if hasattr(e, "add_note"):  # Python >= 3.11: keep the traceback, name the pass
            e.add_note(f"(in pass {text} of pipeline {pipeline})")
        raise
    dt = time.perf_counter() - t0
    _condition(p.ensures, graph, text, "postcondition")
    history.append(text)
    notes = tuple(ctx.notes) + tuple(n for n in result.notes if n not in ctx.notes)
    record = PassRecord(text, iteration, before, len(graph), dt, result.modified, notes, dict(result.stats))
    log.debug("%s: %d -> %d nodes in %.2f ms%s", text, before, len(graph), dt * 1e3,
              "" if result.modified else " (no change)")
    try:
        for ins in instruments:
            ins.after(text, graph, record)
    except PassError as e:
        for ins in instruments:
            ins.on_broken(text, e)
        where = f"; the IR before it is in {e.ir_before_path}" if e.ir_before_path else ""
        raise PassError(f"{e}{where}" + _history(history[:-1]), pass_name=text, node=e.node, reason=e.reason,
                        ir_before=e.ir_before, ir_before_path=e.ir_before_path) from None
    return record


def _condition(hook: Any, graph: Graph, text: str, what: str) -> None:
    """Run a pass's ``requires``/``ensures``; any failure becomes a ``PassError`` naming the pass."""
    try:
        hook(graph)
    except PassError:
        raise
    except Exception as e:
        raise PassError(f"pass {text}: {what} failed: {e}", pass_name=text, node=getattr(e, "node", None),
                        reason=str(e)) from e


def _history(passes: list[str]) -> str:
    return f" (after {', '.join(passes)})" if passes else ""


def run_pass(graph: Graph, pass_: Any, **options: Any) -> PassResult:
    """Run one pass (an instance, class or name) once; convenience for tests and notebooks."""
    report = run_pipeline(graph, [pass_], **options)
    rec = report.records[-1]
    return PassResult(graph, rec.modified, rec.notes, rec.stats)
