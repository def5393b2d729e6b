"""The pass manager: runs a pipeline on a graph, in place, and reports what each pass did.

Like XLA's ``HloPassPipeline`` with its invariant checker and MLIR's pass instrumentation, it can

* verify the graph after every pass (``verify_each``; on by default when the environment variable
  ``RIDGELINE_VERIFY_EACH=1`` is set, as the test suite does) and name the pass that broke it,
  saving the IR from before that pass to a ``.rir`` file the error message points at;
* time every pass and count nodes before and after;
* print the IR before/after every pass (``print_ir_after_all``);
* repeat the whole pipeline until no pass changes anything (``fixed_point``).

Errors raised inside a pass keep their type and gain the pass's name: a ``RidgelineError``
becomes a one-line ``PassError``; anything else is a bug and keeps its traceback, with a note
naming the pass.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence, TextIO

from ..ir import Graph
from ..ir.errors import PassError, RidgelineError, VerifyError
from ..ir.gc_pause import gc_paused as _gc_paused
from ..ir.printer import print_graph
from .base import PassContext, PassResult, check_result
from .evaluate import Evaluator
from .pipeline import Pipeline, parse_pipeline

__all__ = ["run_pipeline", "PipelineReport", "PassRecord", "verify_each_default", "VERIFY_EACH_ENV"]

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


def _dump_before(snapshot: Graph, pass_text: str, dump_dir: str | os.PathLike | None) -> Path | None:
    """Save the IR from before a failing pass as a runnable .rir (+ .rir.npz); None if that fails."""
    from ..ir.rir_file import save_rir
    directory = Path(dump_dir) if dump_dir is not None else Path(tempfile.gettempdir())
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in pass_text)[:60]
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f"ridgeline-before-{safe}-", suffix=".rir", dir=directory)
        os.close(fd)
        return save_rir(snapshot, name)
    except (OSError, RidgelineError, TypeError, ValueError) as e:  # never mask the real error
        log.warning("could not save the IR before pass %s: %s", pass_text, e)
        return None


def _print_ir(stream: TextIO, title: str, graph: Graph) -> None:
    stream.write(f"// ----- IR {title} ----- //\n")
    stream.write(print_graph(graph, constants="elide"))
    stream.flush()


def run_pipeline(graph: Graph, pipeline: str | Pipeline | Sequence[Any], *, verify_each: bool | None = None,
                 print_ir_before_all: bool = False, print_ir_after_all: bool = False,
                 print_ir_after_change: bool = False, timing: bool = False, fixed_point: bool = False,
                 max_iterations: int = 8, evaluator: Evaluator | None = None, explain: bool = False,
                 ir_stream: TextIO | None = None, dump_dir: str | os.PathLike | None = None) -> PipelineReport:
    """Run ``pipeline`` on ``graph`` in place and return a ``PipelineReport``.

    ``verify_each`` (default: ``RIDGELINE_VERIFY_EACH``) verifies the input and the graph after
    every pass; a failure raises ``PassError`` naming the pass and the file holding the IR from
    before it. ``print_ir_*`` write the IR to ``ir_stream`` (default stderr); ``timing`` writes
    the report table there too. ``fixed_point`` repeats the pipeline until nothing changes (at
    most ``max_iterations`` times). ``evaluator`` lets ``fold-constants`` compute constant nodes;
    ``explain`` makes rewrite passes say why their rules did not fire.
    """
    pipe = parse_pipeline(pipeline)
    with _gc_paused():
        return _run(graph, pipe, verify_each=verify_each, print_ir_before_all=print_ir_before_all,
                    print_ir_after_all=print_ir_after_all, print_ir_after_change=print_ir_after_change,
                    timing=timing, fixed_point=fixed_point, max_iterations=max_iterations, evaluator=evaluator,
                    explain=explain, ir_stream=ir_stream, dump_dir=dump_dir)


def _run(graph: Graph, pipe: Pipeline, *, verify_each, print_ir_before_all, print_ir_after_all,
         print_ir_after_change, timing, fixed_point, max_iterations, evaluator, explain, ir_stream,
         dump_dir) -> PipelineReport:
    verify = verify_each_default() if verify_each is None else bool(verify_each)
    stream = ir_stream if ir_stream is not None else sys.stderr
    report = PipelineReport(str(pipe), nodes_before=len(graph), verified=verify)
    if verify:
        try:
            graph.verify()
        except VerifyError as e:
            raise PassError(f"the input graph is invalid before any pass ran: {e}") from None
    t_start = time.perf_counter()
    history: list[str] = []
    iteration = 0
    while True:
        iteration += 1
        changed = False
        for inv in pipe:
            p = inv.instantiate()
            text = str(inv)
            snapshot = graph.copy() if verify else None
            if print_ir_before_all:
                _print_ir(stream, f"before {text}", graph)
            ctx = PassContext(evaluator=evaluator, explain=explain,
                              logger=logging.getLogger(f"ridgeline.passes.{p.name}"))
            before = len(graph)
            p.check_options()
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
                    e.add_note(f"(in pass {text} of pipeline {report.pipeline})")
                raise
            dt = time.perf_counter() - t0
            history.append(text)
            notes = tuple(ctx.notes) + tuple(n for n in result.notes if n not in ctx.notes)
            report.records.append(PassRecord(text, iteration, before, len(graph), dt, result.modified, notes,
                                             dict(result.stats)))
            log.debug("%s: %d -> %d nodes in %.2f ms%s", text, before, len(graph), dt * 1e3,
                      "" if result.modified else " (no change)")
            if verify:
                try:
                    graph.verify()
                except VerifyError as e:
                    path = _dump_before(snapshot, text, dump_dir)  # type: ignore[arg-type]
                    where = f"; the IR before it is in {path}" if path else ""
                    raise PassError(f"pass {text} broke the graph: {e}{where}" + _history(history[:-1]),
                                    pass_name=text, reason=str(e), ir_before=snapshot, ir_before_path=path) from None
            if print_ir_after_all or (print_ir_after_change and result.modified):
                _print_ir(stream, f"after {text}" + ("" if result.modified else " (no change)"), graph)
            changed |= result.modified
        if not fixed_point or not changed:
            break
        if iteration >= max_iterations:
            report.converged = False
            log.warning("pipeline %s did not reach a fixed point in %d iterations", report.pipeline, iteration)
            break
    report.iterations = iteration
    report.seconds = time.perf_counter() - t_start
    report.nodes_after = len(graph)
    if timing:
        buf = io.StringIO()
        buf.write(f"// ----- pass timing: {report.pipeline} ----- //\n{report.format()}\n")
        stream.write(buf.getvalue())
        stream.flush()
    return report


def _history(passes: list[str]) -> str:
    return f" (after {', '.join(passes)})" if passes else ""


def run_pass(graph: Graph, pass_: Any, **options: Any) -> PassResult:
    """Run one pass (an instance, class or name) once; convenience for tests and notebooks."""
    report = run_pipeline(graph, [pass_], **options)
    rec = report.records[-1]
    return PassResult(graph, rec.modified, rec.notes, rec.stats)
