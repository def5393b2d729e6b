"""Pass instrumentation: objects the pass manager calls around the pipeline and every pass.

As MLIR's ``PassInstrumentation`` and onnx-ir's pass infrastructure do, each concern that used
to be a manager flag is one small object with hooks; ``run_pipeline``'s flags build them, and a
Python user may pass their own (``run_pipeline(g, "default", instruments=[MyHook()])``):

* ``VerifyEach`` checks the input and the graph after every pass;
* ``DumpOnFailure`` keeps the IR from before each pass and saves it when a pass breaks the graph;
* ``PrintIR`` writes the IR before/after passes; ``Timing`` writes the per-pass table at the end.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from ..ir import Graph
from ..ir.errors import PassError, RidgelineError, VerifyError
from ..ir.printer import print_graph

if TYPE_CHECKING:
    from .manager import PassRecord, PipelineReport

__all__ = ["DumpOnFailure", "Instrument", "PrintIR", "Timing", "VerifyEach"]

log = logging.getLogger("ridgeline.passes")


class Instrument:
    """Hooks around a pipeline run; every hook is optional (the defaults do nothing).

    ``after`` may raise ``PassError`` to say the pass broke something; the manager then calls
    every instrument's ``on_broken`` (to attach evidence) and raises it naming the pass.
    """

    def before_pipeline(self, graph: Graph, report: PipelineReport) -> None:
        """Called once before the first pass."""

    def before(self, pass_text: str, graph: Graph) -> None:
        """Called before each pass runs (``pass_text`` as written in the pipeline)."""

    def after(self, pass_text: str, graph: Graph, record: PassRecord) -> None:
        """Called after each pass that returned normally."""

    def on_broken(self, pass_text: str, error: PassError) -> None:
        """Called when an ``after`` hook found the pass broke the graph."""

    def after_pipeline(self, graph: Graph, report: PipelineReport) -> None:
        """Called once after the last pass (not after a failure)."""


class VerifyEach(Instrument):
    """Verify the input graph and the graph after every pass (XLA's invariant checker)."""

    def before_pipeline(self, graph: Graph, report: PipelineReport) -> None:
        report.verified = True
        try:
            graph.verify()
        except VerifyError as e:
            raise PassError(f"the input graph is invalid before any pass ran: {e}") from None

    def after(self, pass_text: str, graph: Graph, record: PassRecord) -> None:
        try:
            graph.verify()
        except VerifyError as e:
            raise PassError(f"pass {pass_text} broke the graph: {e}", pass_name=pass_text, reason=str(e)) from None


class DumpOnFailure(Instrument):
    """Keep a copy of the IR before each pass; when a pass breaks the graph, save that copy as a
    runnable ``.rir`` in ``directory`` (default: the temp folder) and attach it to the error."""

    def __init__(self, directory: str | os.PathLike | None = None):
        self.directory = directory
        self._snapshot: Graph | None = None

    def before(self, pass_text: str, graph: Graph) -> None:
        self._snapshot = graph.copy()

    def on_broken(self, pass_text: str, error: PassError) -> None:
        if self._snapshot is not None:
            error.ir_before = self._snapshot
            error.ir_before_path = _dump(self._snapshot, pass_text, self.directory)


def _dump(snapshot: Graph, pass_text: str, directory: str | os.PathLike | None) -> Path | None:
    """Save ``snapshot`` as .rir (+ .rir.npz); None if that fails (never mask the real error)."""
    from ..ir.rir_file import save_rir
    folder = Path(directory) if directory is not None else Path(tempfile.gettempdir())
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in pass_text)[:60]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f"ridgeline-before-{safe}-", suffix=".rir", dir=folder)
        os.close(fd)
        return save_rir(snapshot, name)
    except (OSError, RidgelineError, TypeError, ValueError) as e:
        log.warning("could not save the IR before pass %s: %s", pass_text, e)
        return None


class PrintIR(Instrument):
    """Write the IR (large constants elided) before and/or after passes to ``stream``."""

    def __init__(self, stream: TextIO, *, before_all: bool = False, after_all: bool = False,
                 after_change: bool = False):
        self.stream, self.before_all = stream, before_all
        self.after_all, self.after_change = after_all, after_change

    def before(self, pass_text: str, graph: Graph) -> None:
        if self.before_all:
            self._print(f"before {pass_text}", graph)

    def after(self, pass_text: str, graph: Graph, record: PassRecord) -> None:
        if self.after_all or (self.after_change and record.modified):
            self._print(f"after {pass_text}" + ("" if record.modified else " (no change)"), graph)

    def _print(self, title: str, graph: Graph) -> None:
        self.stream.write(f"// ----- IR {title} ----- //\n")
        self.stream.write(print_graph(graph, constants="elide"))
        self.stream.flush()


class Timing(Instrument):
    """Write the per-pass table (nodes before/after, wall time) to ``stream`` at the end."""

    def __init__(self, stream: TextIO):
        self.stream = stream

    def after_pipeline(self, graph: Graph, report: PipelineReport) -> None:
        self.stream.write(f"// ----- pass timing: {report.pipeline} ----- //\n{report.format()}\n")
        self.stream.flush()
