"""``check_pass``: property-test that a pass keeps every graph's meaning.

    from ridgeline.testing import check_pass
    check_pass("fuse-gelu")                                   # a registered pass or a pipeline
    check_pass(my_pass, graphs=strategies.gelu_idioms())      # a Pass, or any fn(graph)

For each generated graph (hypothesis draws it, and its inputs) the check runs the pass on a copy
and asserts that

a. the result verifies and keeps the graph's interface (input names and types, output dtypes);
b. its outputs match the original's within dtype-aware tolerances (``ridgeline.testing.compare``);
c. with ``idempotent=True``, running the pass again changes nothing;
d. the pass left alone what it does not own: the arrays of constants (shared with the caller's
   graph by ``Graph.copy``), and — for a function that returns a new graph — the graph it was given.

On failure hypothesis shrinks the graph; the error prints the minimal graph as text IR, names the
first pass of a pipeline after which things went wrong, saves the graph as ``.rir`` and ``.onnx``
with its inputs as ``.npz``, and prints the one-line command that reproduces it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from ..ir import Graph, print_graph
from ..ir.errors import PipelineError, RidgelineError
from .compare import Mismatch, ReferenceRun, compare_outputs, reference_run
from .inputs import random_inputs

__all__ = ["check_pass", "check_graph", "CheckReport", "Failure", "PassCheckError", "PassTarget", "as_target",
           "save_repro", "Repro", "reduce_failure", "prune", "VacuousCheckError", "probe_idioms", "SHRINK_SECONDS"]

log = logging.getLogger("ridgeline.testing")

#: where failing graphs are saved when no ``repro_dir`` is given
REPRO_ENV = "RIDGELINE_REPRO_DIR"


# ---------------------------------------------------------------------------- what is checked
@dataclass
class PassTarget:
    """A pass, a pipeline or a function, normalized to ``run(graph) -> (graph, modified, stats)``."""

    label: str
    run: Callable[[Graph], tuple[Graph, bool, Counter]]
    #: the pipeline text, when there is one (it goes into repro commands)
    pipeline: str | None = None
    #: the pipeline's passes one by one, to find the first that goes wrong
    steps: tuple[str, ...] = ()
    #: what its passes declare they rewrite (``Pass.touches``); None when none declares anything
    touches: tuple[str, ...] | None = None


def as_target(obj: Any) -> PassTarget:
    """A ``PassTarget`` from pipeline text, a registered name, a ``Pass`` (instance or class), a
    list of those, a function registered with ``register_pass``, or any ``fn(graph)`` returning
    None, a bool (modified), a ``PassResult`` or a new ``Graph``."""
    if isinstance(obj, PassTarget):
        return obj
    from ..passes import Pass, PassInvocation, Pipeline, parse_pipeline
    pclass = getattr(obj, "pass_class", None)
    if pclass is not None:
        obj = pclass
    is_pass = isinstance(obj, (Pass, PassInvocation, Pipeline)) or (isinstance(obj, type) and issubclass(obj, Pass))
    if isinstance(obj, str) or is_pass or isinstance(obj, (list, tuple)):
        pipe = parse_pipeline(obj if not is_pass or isinstance(obj, Pipeline) else [obj])
        text = str(pipe)
        label = obj if isinstance(obj, str) else text
        touches = tuple(dict.fromkeys(t for p in pipe for t in getattr(p.cls, "touches", ())))
        return PassTarget(label, _pipeline_runner(pipe), pipeline=text, steps=tuple(str(p) for p in pipe),
                          touches=touches or None)
    if callable(obj):
        declared = getattr(obj, "touches", None) or getattr(type(obj), "touches", None)
        return PassTarget(getattr(obj, "__qualname__", repr(obj)), _function_runner(obj),
                          touches=tuple(declared) if declared else None)
    raise PipelineError(f"check_pass: {obj!r} is not a pass, a pipeline or a function of a graph")


def _pipeline_runner(pipe):
    from ..backends.numpy import reference_evaluator
    from ..passes import run_pipeline
    evaluator = reference_evaluator()

    def run(g: Graph):
        report = run_pipeline(g, pipe, evaluator=evaluator, verify_each=False)
        stats: Counter = Counter()
        for r in report.records:
            for k, v in r.stats.items():
                stats[f"{r.pass_text}:{k}"] += v
        return g, report.modified, stats
    return run


def _function_runner(fn):
    from ..passes import PassResult

    def run(g: Graph):
        before = print_graph(g)
        result = fn(g)
        if isinstance(result, PassResult):
            return result.graph, result.modified, Counter(result.stats)
        if isinstance(result, Graph):
            return result, result is not g or print_graph(g) != before, Counter()
        if isinstance(result, bool):
            return g, result, Counter()
        if result is None:
            return g, print_graph(g) != before, Counter()
        raise TypeError(f"{getattr(fn, '__qualname__', fn)} returned {type(result).__name__}; return None, a bool, "
                        f"a PassResult or a Graph")
    return run


# ---------------------------------------------------------------------------- failures
@dataclass
class Failure:
    """Why a graph failed the check, with everything needed to reproduce it."""

    kind: str                    # raised, broke-graph, interface, run, mismatch, mutated-constant,
    #                              mutated-input, not-idempotent
    message: str
    graph: Graph                 # the input graph (minimal, once hypothesis has shrunk it)
    inputs: dict[str, np.ndarray]
    target: PassTarget
    result: Graph | None = None
    mismatches: list[Mismatch] = field(default_factory=list)
    backend: str = "numpy"
    repro: "Repro | None" = None
    culprit: str | None = None   # the first pass of a pipeline after which the check fails
    #: what was compared with the reference: "pass" (the graph before and after it), "backend"
    #: (``backend`` against numpy) or "onnxruntime" (the ONNX export)
    check: str = "pass"

    def describe(self) -> str:
        head = {"pass": f"check_pass({self.target.label})", "backend": f"check_backend({self.backend})",
                "onnxruntime": "check_onnxruntime"}[self.check]
        lines = [f"{head}: {self.message}"]
        lines += [f"  {m}" for m in self.mismatches]
        if self.culprit:
            lines.append(f"the first pass after which this happens: {self.culprit}")
        lines.append(f"input graph ({len(self.graph)} nodes):")
        lines.append(_indent(print_graph(self.graph)))
        if self.result is not None and self.kind not in ("raised",):
            lines.append(f"after the pass ({len(self.result)} nodes):")
            lines.append(_indent(print_graph(self.result)))
        if self.repro is not None:
            lines.append(str(self.repro))
        return "\n".join(lines)


class PassCheckError(AssertionError):
    """A pass changed a graph's meaning (or broke it); ``.failure`` has the details."""

    def __init__(self, failure: Failure, message: str | None = None):
        super().__init__(message or failure.describe())
        self.failure = failure


def _indent(text: str) -> str:
    return "\n".join("    " + ln for ln in text.rstrip("\n").splitlines())


@dataclass
class Repro:
    """Files written for a failing graph and the commands that replay it."""

    rir: Path
    inputs: Path
    onnx: Path | None
    commands: list[str]

    def __str__(self) -> str:
        files = [str(self.rir), str(self.inputs)] + ([str(self.onnx)] if self.onnx else [])
        return "saved: " + ", ".join(files) + "\nreproduce:\n" + "\n".join(f"  {c}" for c in self.commands)


def save_repro(failure: Failure, directory: str | os.PathLike | None = None) -> Repro:
    """Write the failing graph (``.rir`` and ``.onnx``) and its inputs (``.npz``) to ``directory``
    (default: ``$RIDGELINE_REPRO_DIR`` or the temp dir) and attach the replay commands."""
    from ..ir.rir_file import save_rir
    base = Path(directory or os.environ.get(REPRO_ENV) or Path(tempfile.gettempdir()) / "ridgeline-repro")
    base.mkdir(parents=True, exist_ok=True)
    text = print_graph(failure.graph)
    digest = hashlib.sha1(text.encode()).hexdigest()[:8]
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in failure.target.label)[:48]
    stem = base / f"{safe}-{digest}"
    rir = save_rir(failure.graph, stem.with_suffix(".rir"))
    npz = stem.with_name(stem.name + ".inputs.npz")
    np.savez(npz, **failure.inputs)
    onnx_path: Path | None = stem.with_suffix(".onnx")
    try:
        from ..frontends.onnx import save_onnx
        save_onnx(failure.graph, onnx_path)
    except Exception as e:  # the graph may hold something ONNX cannot say (a weightless constant)
        log.warning("could not save %s as ONNX: %s", rir, e)
        onnx_path = None
    be = "" if failure.backend == "numpy" else f" -b {failure.backend}"
    cmds = []
    run = f"python -m ridgeline run {rir} --inputs {npz}"
    if failure.check == "onnxruntime":
        cmds.append(f"python -c \"import numpy as np, onnxruntime as ort; s = ort.InferenceSession('{onnx_path}'); "
                    f"z = np.load('{npz}'); print(s.run(None, dict(z)))\"   # onnxruntime")
        cmds.append(f"{run} -p \"\"   # the reference")
    elif failure.check == "backend":
        pipe = f' -p "{failure.target.pipeline}"' if failure.target.pipeline else ' -p ""'
        cmds.append(f"{run}{be}{pipe}   # {failure.backend}")
        cmds.append(f"{run} -p \"\"   # the reference")
    elif failure.target.pipeline is not None:
        pipe = failure.target.pipeline
        cmds.append(f"python -m ridgeline run {rir} --inputs {npz}{be} -p \"{pipe}\"   # after the pass")
        cmds.append(f"python -m ridgeline run {rir} --inputs {npz}{be} -p \"\"   # the reference")
    else:
        cmds.append(f"python -m ridgeline run {rir} --inputs {npz}{be} -p \"\"   # the reference; "
                    f"apply {failure.target.label} to ridgeline.load('{rir}') to compare")
    failure.repro = Repro(rir, npz, onnx_path, cmds)
    return failure.repro


# ---------------------------------------------------------------------------- one graph
@dataclass
class GraphOutcome:
    """A graph that passed: whether the pass changed it, and its per-rule counters."""

    modified: bool
    stats: Counter
    nodes_before: int
    nodes_after: int


def _execute(graph: Graph, inputs: Mapping[str, np.ndarray], backend: str) -> dict[str, np.ndarray]:
    if backend == "numpy":
        from ..backends.numpy import NumpyBackend
        return NumpyBackend().compile(graph).run(inputs)
    from ..backends.registry import get_backend
    return get_backend(backend).compile(graph).run(inputs)


def _digests(graph: Graph) -> dict[int, tuple[np.ndarray, str, str]]:
    out = {}
    for c in graph.constants.values():
        if c.data is not None:
            out[id(c.data)] = (c.data, c.name, hashlib.sha1(np.ascontiguousarray(c.data).view(np.uint8)).hexdigest())
    return out


def _interface(before: Graph, after: Graph) -> str | None:
    a = [(v.name, str(v.type)) for v in before.inputs]
    b = [(v.name, str(v.type)) for v in after.inputs]
    if a != b:
        return f"the inputs changed from {a} to {b}"
    if len(before.outputs) != len(after.outputs):
        return f"{len(before.outputs)} outputs became {len(after.outputs)}"
    for i, (u, v) in enumerate(zip(before.outputs, after.outputs)):
        if u.type.dtype != v.type.dtype or u.type.rank != v.type.rank:
            return f"output {i} %{u.name}: {u.type} became %{v.name}: {v.type}"
    return None


def check_graph(target: Any, graph: Graph, inputs: Mapping[str, np.ndarray] | None = None, *,
                backend: str = "numpy", rtol: float | None = None, atol: float | None = None,
                idempotent: bool = False, seed: int = 0, expected: ReferenceRun | None = None) -> GraphOutcome:
    """Check one graph (see the module docstring); raise ``PassCheckError`` on failure.

    ``graph`` itself is never handed to the pass (a copy is); ``inputs`` default to
    ``random_inputs(graph, seed=seed)``."""
    t = as_target(target)
    inputs = dict(inputs) if inputs is not None else random_inputs(graph, seed=seed)

    def fail(kind: str, message: str, result: Graph | None = None, mismatches=()) -> PassCheckError:
        return PassCheckError(Failure(kind, message, graph, inputs, t, result, list(mismatches), backend))

    if expected is None:
        expected = reference_run(graph, inputs)
        if backend != "numpy":
            base = _execute(graph, inputs, backend)
            expected = ReferenceRun(expected.names, [base[n] for n in expected.names], expected.floor, expected.scale,
                                    expected.oracle, expected.arbitrary, expected.envelope)
    work = graph.copy()
    consts = _digests(work)
    before_text = print_graph(work)
    try:
        result, modified, stats = t.run(work)
    except Exception as e:
        tb = traceback.format_exception(type(e), e, e.__traceback__)
        where = "".join(tb[-3:]).rstrip() if not isinstance(e, RidgelineError) else f"{type(e).__name__}: {e}"
        raise fail("raised", f"the pass raised {type(e).__name__}: {e}\n{_indent(where)}", work) from None
    if not isinstance(result, Graph):
        raise fail("raised", f"the pass returned {type(result).__name__}, not a graph")
    for data, name, digest in consts.values():
        if hashlib.sha1(np.ascontiguousarray(data).view(np.uint8)).hexdigest() != digest:
            raise fail("mutated-constant", f"the pass wrote into the array of constant %{name}, which the "
                       f"caller's graph shares (make a new constant instead)", result)
    if result is not work and print_graph(work) != before_text:
        raise fail("mutated-input", "the pass returned a new graph but also changed the one it was given", result)
    try:
        result.verify()
    except RidgelineError as e:
        raise fail("broke-graph", f"the result does not verify: {e}", result) from None
    why = _interface(graph, result)
    if why:
        raise fail("interface", f"the pass changed the graph's interface: {why}", result)
    try:
        got = _execute(result, inputs, backend)
    except Exception as e:
        raise fail("run", f"the result fails to run on {backend}: {type(e).__name__}: {e}", result) from None
    got_list = [got[v.name] for v in result.outputs]
    problems = compare_outputs(expected, got_list, rtol=rtol, atol=atol)
    if problems:
        raise fail("mismatch", f"outputs differ after the pass ({len(problems)} of {len(expected.outputs)})",
                   result, problems)
    if idempotent:
        again = result.copy()
        text = print_graph(again)
        try:
            again, _, _ = t.run(again)
        except Exception as e:
            raise fail("raised", f"the second run of the pass raised {type(e).__name__}: {e}", result) from None
        if print_graph(again) != text:
            raise fail("not-idempotent", "running the pass a second time changed the graph again:\n"
                       + _indent(print_graph(again)), result)
    return GraphOutcome(bool(modified), stats, len(graph), len(result))


def _find_culprit(failure: Failure, rtol, atol) -> str | None:
    """The first pass of a multi-pass pipeline after which the same check fails."""
    steps = failure.target.steps
    if len(steps) < 2:
        return None
    g = failure.graph.copy()
    try:
        expected = reference_run(failure.graph, failure.inputs)
    except Exception:
        return None
    for k, text in enumerate(steps):
        single = as_target(text)
        try:
            check_graph(single, g, failure.inputs, backend="numpy", rtol=rtol, atol=atol, expected=expected)
        except PassCheckError as e:
            return f"{text} (pass {k + 1} of {len(steps)}): {e.failure.message.splitlines()[0]}"
        except Exception:
            return None
        g, _, _ = single.run(g)
    return None


def prune(graph: Graph) -> Graph:
    """Drop what no output needs: dead nodes, then unread constants and graph inputs."""
    for n in reversed(graph.nodes):
        if not any(v.uses for v in n.outputs):
            graph.erase_node(n)
    for c in [c for c in graph.constants.values() if not c.uses]:
        graph.remove_constant(c)
    for v in [v for v in graph.inputs if not v.uses]:
        graph.remove_input(v)
    return graph


def reduce_failure(failure: Failure, check: Callable[[Graph, dict], None]) -> Failure:
    """Hypothesis shrinks the draws; this shrinks the graph it ends with, dropping one graph output
    (and what only it needed) at a time while ``check`` still fails the same way."""
    current = failure
    progress = True
    while progress and len(current.graph.outputs) > 1:
        progress = False
        for i in range(len(current.graph.outputs)):
            cand = current.graph.copy()
            cand.outputs = [v for k, v in enumerate(cand.outputs) if k != i]
            prune(cand)
            names = {v.name for v in cand.inputs}
            inputs = {k: a for k, a in current.inputs.items() if k in names}
            try:
                check(cand, inputs)
            except PassCheckError as e:
                if e.failure.kind == current.kind:
                    e.failure.backend, e.failure.check = current.backend, current.check
                    current, progress = e.failure, True
                    break
            except Exception:  # a candidate the reference cannot run: not a reduction
                continue
    current.target = failure.target
    return current


# ---------------------------------------------------------------------------- many graphs
#: seconds a failure is shrunk for before the smallest graph found so far is reported
SHRINK_SECONDS = 8.0


class _OutOfTime(BaseException):
    """Raised inside the property when the shrinking budget is spent: hypothesis lets a
    ``BaseException`` through at once instead of shrinking further."""


class VacuousCheckError(AssertionError):
    """``check_pass`` ran and the pass changed none of its graphs: nothing was checked."""


@dataclass
class CheckReport:
    """What ``check_pass`` saw: how many graphs, how many the pass changed, which rules fired."""

    target: str
    examples: int = 0
    modified: int = 0
    stats: Counter = field(default_factory=Counter)
    ops: Counter = field(default_factory=Counter)
    nodes_before: int = 0
    nodes_after: int = 0
    seconds: float = 0.0

    def __str__(self) -> str:
        rules = ", ".join(f"{k}×{v}" for k, v in self.stats.most_common(6))
        return (f"check_pass({self.target}): {self.examples} graphs, {self.modified} changed "
                f"({self.nodes_before} -> {self.nodes_after} nodes), {self.seconds:.1f}s"
                + (f"; rules: {rules}" if rules else ""))


def _settings(base: hsettings | None, max_examples: int | None) -> hsettings:
    parent = base if base is not None else hsettings()
    kw: dict[str, Any] = {"deadline": None, "report_multiple_bugs": False,
                          "suppress_health_check": list(parent.suppress_health_check)
                          + [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]}
    if max_examples is not None:
        kw["max_examples"] = max_examples
    # hypothesis's explain phase re-runs the shrunk failure many times to annotate which draws
    # mattered; the checks raise their own error describing the graph, which drops those notes
    kw["phases"] = tuple(p for p in parent.phases if p is not Phase.explain)
    return hsettings(parent, **kw)


def probe_idioms(target: Any, *, per_idiom: int = 3) -> list[str]:
    """The idioms a pass that declares nothing (``Pass.touches``) changes: a few derandomized
    graphs of each idiom run through it; an idiom where it raises counts too."""
    from .strategies import IDIOMS, graphs
    t = as_target(target)
    hits: list[str] = []
    for name in list(IDIOMS):
        found: list[bool] = []
        _probe_one(t, graphs(idioms=[name], max_nodes=16), per_idiom, found)
        if found:
            hits.append(name)
    return hits


def _probe_one(t: PassTarget, strategy: st.SearchStrategy[Graph], n: int, found: list[bool]) -> None:
    """Append True to ``found`` when ``t`` changes (or raises on) one of ``n`` drawn graphs."""
    @hsettings(max_examples=n, derandomize=True, database=None, deadline=None, phases=[Phase.generate],
               suppress_health_check=list(HealthCheck))
    @given(g=strategy)
    def draw(g: Graph) -> None:
        if found:
            return
        try:
            modified = t.run(g.copy())[1]
        except Exception:
            modified = True  # it acts here (the check proper says how it fails)
        if modified:
            found.append(True)
    draw()


def _strategy_for(target: PassTarget) -> tuple[st.SearchStrategy[Graph], str]:
    """What ``check_pass`` draws by default, and a phrase saying so."""
    from .strategies import default_graphs, targeted
    touches, how = target.touches, "declares"
    if touches is None:
        touches, how = tuple(probe_idioms(target)), "was seen to change"
    strategy = targeted(touches) if touches else None
    if strategy is None:
        return default_graphs(), "random graphs and every idiom (the pass declares no touches=)"
    return strategy, f"graphs holding what the pass {how} ({', '.join(touches)}) and random graphs"


def check_pass(pass_or_pipeline: Any, graphs: st.SearchStrategy[Graph] | Graph | Iterable[Graph] | None = None, *,
               backend: str = "numpy", rtol: float | None = None, atol: float | None = None,
               idempotent: bool = False, max_examples: int | None = None, settings: hsettings | None = None,
               repro_dir: str | os.PathLike | None = None, require_change: bool | None = None,
               shrink_seconds: float | None = None) -> CheckReport:
    """Check that ``pass_or_pipeline`` keeps the meaning of ``graphs``; return what it saw.

    ``graphs``: a hypothesis strategy, or concrete graphs (checked as given). By default, graphs
    holding what the pass declares it rewrites (``touches=`` on ``register_pass``, ``Pass.touches``;
    for a pass declaring nothing, the idioms a quick probe sees it change) mixed with random
    graphs — and the check *fails* (``VacuousCheckError``) if the pass changed none of them
    (``require_change``, default: only for the default graphs). ``backend`` runs the graph before
    and after the pass. ``rtol``/``atol`` widen the oracle's bound. ``idempotent`` also checks that
    a second run changes nothing. ``max_examples`` and ``settings`` control hypothesis (default:
    the active profile, e.g. ``--hypothesis-profile=ci``). A failure is logged as soon as it is
    found, shrunk for at most ``shrink_seconds`` (default ``SHRINK_SECONDS``), and raised as
    ``PassCheckError`` (an ``AssertionError``) describing the graph and the files written to
    ``repro_dir``.
    """
    target = as_target(pass_or_pipeline)
    report = CheckReport(target.label)
    t0 = time.perf_counter()
    opts = dict(backend=backend, rtol=rtol, atol=atol, idempotent=idempotent)
    budget = SHRINK_SECONDS if shrink_seconds is None else shrink_seconds
    described = "the given graphs"
    if require_change is None:
        require_change = graphs is None

    def one(g: Graph, inputs: Mapping[str, np.ndarray]) -> None:
        outcome = check_graph(target, g, inputs, **opts)
        report.examples += 1
        report.modified += outcome.modified
        report.stats.update(outcome.stats)
        report.ops.update(g.op_histogram())
        report.nodes_before += outcome.nodes_before
        report.nodes_after += outcome.nodes_after

    try:
        if isinstance(graphs, Graph) or (graphs is not None and not isinstance(graphs, st.SearchStrategy)):
            for g in ([graphs] if isinstance(graphs, Graph) else list(graphs)):
                one(g, random_inputs(g, seed=0))
        else:
            if graphs is None:
                strategy, described = _strategy_for(target)
            else:
                strategy = graphs
            first: list[float] = []
            best: list[PassCheckError] = []  # the smallest failure seen so far

            @given(g=strategy, seed=st.integers(0, 2 ** 31 - 1))
            def prop(g: Graph, seed: int) -> None:
                if first and time.perf_counter() - first[0] > budget:
                    raise _OutOfTime()  # stop shrinking: the smallest failure so far is reported
                try:
                    one(g, random_inputs(g, seed=seed))
                except PassCheckError as e:
                    if not first:
                        first.append(time.perf_counter())
                        log.warning("check_pass(%s): failed after %.1fs on a graph of %d nodes (%s); shrinking "
                                    "for at most %gs", target.label, first[0] - t0, len(g),
                                    e.failure.message.splitlines()[0], budget)
                    if not best or (len(g), len(g.inputs)) < (len(best[0].failure.graph),
                                                             len(best[0].failure.graph.inputs)):
                        best[:] = [e]
                    raise
            # one example database entry per checked target, not one for every check_pass call
            prop.hypothesis.inner_test._hypothesis_internal_add_digest = target.label.encode()  # type: ignore
            try:
                _settings(settings, max_examples)(prop)()
            except _OutOfTime:
                raise best[0] from None
    except PassCheckError as e:
        failure = reduce_failure(e.failure, lambda g, inputs: check_graph(target, g, inputs, **opts))
        failure.culprit = _find_culprit(failure, rtol, atol)
        save_repro(failure, repro_dir)
        raise PassCheckError(failure) from None
    report.seconds = time.perf_counter() - t0
    log.info("%s", report)
    if require_change and report.examples and not report.modified:
        raise VacuousCheckError(f"check_pass({target.label}): the pass changed none of the {report.examples} graphs "
                                f"it was given ({described}), so nothing was checked; declare what it rewrites "
                                f"with register_pass(..., touches=[idioms or ops]) or pass graphs=")
    return report
