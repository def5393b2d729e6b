"""Running a graph with JIT-compiled kernels: the plan per input shapes, and the interpreter.

``LLVMInterpreter`` is the numpy reference ``Interpreter`` with ``call_kernel`` overridden: a
node runs its compiled kernel, a value folded at compile time, a zero-copy view, or — only when
there is no kernel and ``strict`` is off — the numpy kernel.

A ``Plan`` is built once per set of input shapes: symbolic dims are bound, everything computable
from constants and static shapes is folded (the shape arithmetic of exported models), every
other node is lowered, and all kernels are emitted into one LLVM module compiled once (kernels
with identical code are shared — the 12 layers of GPT-2 use one copy of each).

Plans are shape-polymorphic in the dims that only reach kernels which read their sizes at run
time (``runtime_dims``): in a decode step those are the KV-cache length (``past``, ``past +
seq``), which reach the attention kernels, the shape arithmetic of the mask and cache positions,
and small exact ops on the mask. One plan then serves every value of them — no new plan, no
compilation while the cache grows — and gives the bits the plan specialized on that shape would:
its shape arithmetic runs on numpy at each run instead of being folded (the same numpy code),
exact ops (integer and comparison arithmetic, selects, casts, copies) run on numpy instead of a
kernel (the same IEEE results), and attention runs the same kernel. Dims that reach any other
kernel (batch and seq reach every GEMM) are specialized: a new value builds a new plan.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import llvmlite.ir as ir
import numpy as np

from ...ir import Graph, Node
from ...ir import dims as D
from ...ir.errors import BackendError, IRError
from ...ir.verifier import describe
from ..numpy.interpreter import Interpreter, bind_inputs, evaluate
from .checked import CheckedKernel, running
from .irutil import checked_mode
from .jit import CompiledModule, compile_ir, finalize_text
from .lowering import Lowering, Unsupported, cfunc
from .lowerings import lower
from .memory import MemoryPlan, plan_memory
from .parallel import Runner
from .replay import LaunchRecorder, Segment, is_stable, stable_ids

__all__ = ["Plan", "LLVMInterpreter", "VIEW_OPS", "SHAPE_OPS", "EXACT_OPS", "build_plan", "runtime_dims", "STATS"]

log = logging.getLogger(__name__)

#: ops that only re-describe a contiguous buffer (numpy returns a view: no data moves); inference
#: Dropout is the identity (plus a mask of ones)
VIEW_OPS = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout"})
#: ops whose result depends only on their first input's shape: folded when the shape is static
SHAPE_OPS = frozenset({"Shape", "Size", "EyeLike"})
#: ops whose numpy reference and llvm kernel give the same bits (integer, comparison and logic
#: arithmetic, selects, casts, data movement; IEEE-rounded f32/f64 add/sub/mul): where a runtime
#: dim reaches them, a polymorphic plan runs them on numpy (see the module docstring)
EXACT_OPS = frozenset({"Cast", "CastLike", "Where", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual",
                       "Not", "And", "Or", "Xor", "Add", "Sub", "Mul", "Neg", "Abs", "Min", "Max", "Sign",
                       "Identity", "Gather", "GatherElements", "GatherND", "Concat", "Slice", "Expand",
                       "Transpose", "Tile", "Split", "Trilu"}) | VIEW_OPS
#: graph inputs and values computed on numpy (shape arithmetic of runtime dims: a decode step's
#: rotary cos/sin rows) up to this size that only kernels read are copied into a buffer of the
#: plan at each run, so that those kernels can replay (replay.py)
SMALL_PINNED = 1 << 16
#: views whose result the run loop may reuse (replay.py): a new view object per run costs a
#: miss in every kernel reading it
_MEMO_VIEWS = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Split"})
#: ops that read their key-count sizes from the arrays of each run (see attention.py)
RUNTIME_SIZED_OPS = frozenset({"Attention"})
#: plans kept per executable (the least recently used is dropped beyond this)
MAX_PLANS = 16
#: process-wide counts, read by tests and tools/bench_backends.py: plans built, functions compiled
STATS = {"plans": 0, "functions": 0, "emits_skipped": 0}


@dataclass
class Plan:
    """How each node of a graph runs at one set of input shapes."""

    kernels: dict[Node, Callable] = field(default_factory=dict)      # node -> run(args) -> outputs
    folded: dict[Node, tuple] = field(default_factory=dict)          # node -> outputs computed at compile time
    subplans: dict[Node, "LLVMInterpreter"] = field(default_factory=dict)  # Fused bodies run node by node
    views: set[Node] = field(default_factory=set)
    fallbacks: dict[Node, str] = field(default_factory=dict)         # node -> why it runs on numpy
    kinds: dict[Node, str] = field(default_factory=dict)             # node -> lowering name
    lowerings: dict[Node, Lowering] = field(default_factory=dict)    # node -> its lowering (introspection)
    modules: list[CompiledModule] = field(default_factory=list)
    refold: set[Node] = field(default_factory=set)   # shape arithmetic of runtime dims: numpy at each run
    exact: set[Node] = field(default_factory=set)    # exact ops reached by runtime dims: numpy at each run
    runtime: frozenset = frozenset()                  # the dims this plan reads at run time
    numpy_bodies: dict[Node, Interpreter] = field(default_factory=dict)   # Fused nodes of refold/exact
    memory: MemoryPlan = field(default_factory=MemoryPlan)
    compile_seconds: float = 0.0
    n_functions: int = 0
    steps: list | None = None                         # the run loop's schedule (LLVMInterpreter._run_plan)
    constants: dict = field(default_factory=dict)     # id -> data of the graph's constants, for the run loop
    recorder: LaunchRecorder | None = None            # the runner kernels are bound to (replay.py)
    memos: list = field(default_factory=list)         # per replayable step: its last launches (replay.py)
    segments: dict = field(default_factory=dict)      # first step -> a run of memos replayed at once (replay.py)
    stable: set = field(default_factory=set)          # ids of arrays that live as long as the plan
    readonly: set = field(default_factory=set)        # of those, the ones no kernel writes (constants)
    pinned: dict = field(default_factory=dict)        # value id -> plan-owned copy (see SMALL_PINNED)

    def summary(self) -> dict[str, Any]:
        return {"kernels": dict(Counter(self.kinds.values())), "folded": len(self.folded), "views": len(self.views),
                "fused_bodies": len(self.subplans), "fallbacks": dict(Counter(n.op for n in self.fallbacks)),
                "functions": self.n_functions, "compile_seconds": self.compile_seconds,
                "runtime_dims": sorted(self.runtime), "refold": len(self.refold), "exact_numpy": len(self.exact),
                "arena_bytes": self.memory.arena_bytes}


def _bind_dims(graph: Graph, shapes: Mapping[str, tuple[int, ...]]) -> dict[str, int]:
    dims: dict[str, int] = {}
    for v in graph.inputs:
        for d, n in zip(v.type.shape, shapes[v.name]):
            if isinstance(d, str) and D.is_name(d):
                dims[d] = int(n)
    return dims


def _exact(node: Node) -> bool:
    """True when numpy and the llvm kernel compute ``node`` to the same bits (``EXACT_OPS``)."""
    if node.op == "Fused":
        return node.attr("kind") == "elementwise" and node.body is not None and all(_exact(n) for n in node.body)
    return node.op in EXACT_OPS and all(v.type.dtype.name not in ("f16", "bf16") and
                                        not v.type.dtype.name.startswith("f8") for v in node.outputs)


def _key_inputs(node: Node) -> dict[int, int]:
    """Attention: input index -> the axis holding a key count (the sizes its kernel reads per run)."""
    ins = node.inputs
    three_d = ins[0].type.rank == 3
    axes = {1: 1 if three_d else 2, 2: 1 if three_d else 2, 3: -1, 4: 2, 5: 2}
    return {i: a for i, a in axes.items() if i < len(ins) and ins[i] is not None}


def runtime_dims(graph: Graph) -> frozenset[str]:
    """The input dims a plan can leave to run time (see the module docstring): those that reach,
    through shapes, only views, shape arithmetic, exact ops and the key axes of attention."""
    candidates: set[str] = set()
    for v in graph.inputs:
        candidates |= v.type.symbols
    data = {id(v) for v in graph.inputs}   # values computed from the inputs' data (not only shapes)
    blocked: set[str] = set()
    for node in graph.nodes:
        if node.op in SHAPE_OPS or not any(v is not None and id(v) in data for v in node.inputs):
            continue   # shape arithmetic: refolded on numpy at each run, whatever its op
        for v in node.outputs:
            data.add(id(v))
        if node.op in RUNTIME_SIZED_OPS:
            keys = _key_inputs(node)
            fixed = [v.type for v in node.outputs[:1]]
            for i, v in enumerate(node.inputs):
                if v is None:
                    continue
                if i in keys:
                    axis = keys[i] % v.type.rank if v.type.rank else 0
                    rest = [d for a, d in enumerate(v.type.shape) if a != axis and isinstance(d, str)]
                    blocked |= set().union(*(D.free_symbols(d) for d in rest)) if rest else set()
                else:
                    fixed.append(v.type)
            for t in fixed:
                blocked |= t.symbols
            continue
        if _exact(node):
            continue
        for v in list(node.inputs) + list(node.outputs):
            if v is not None:
                blocked |= v.type.symbols
    if blocked - candidates:   # a dim no input names (an exporter's unknown): it may vary with any
        return frozenset()
    return frozenset(candidates - blocked)


def build_plan(graph: Graph, shapes: Mapping[str, tuple[int, ...]], *, runner: Runner,
               options: Mapping[str, Any], strict: bool = False, runtime: frozenset = frozenset()) -> Plan:
    """Fold, lower and compile ``graph`` for inputs of ``shapes``, leaving the dims in ``runtime``
    to each run; see the module docstring."""
    t0 = time.perf_counter()
    STATS["plans"] += 1
    dims = _bind_dims(graph, shapes)
    bound = graph
    if dims:
        try:
            bound = graph.bind(dims)
        except IRError as e:  # keep going with what is static; the rest falls back (and a real
            log.info("could not bind %s: %s", dims, e)  # mismatch fails at run time: one line, not two)
    plan = Plan(runtime=runtime, recorder=LaunchRecorder(runner))
    known: dict[int, np.ndarray] = {id(c): c.data for c in bound.constants.values() if c.data is not None}
    symbolic: set[int] = set()   # values of the shape arithmetic of runtime dims (bound-graph ids)
    lowered: list[tuple[Node, Lowering]] = []
    for orig, node in zip(graph.nodes, bound.nodes):
        ins = node.inputs
        if runtime:
            varies = any(v.type.symbols & runtime for v in list(orig.inputs) + list(orig.outputs) if v is not None)
            if node.op in SHAPE_OPS and ins[0] is not None and orig.inputs[0].type.symbols & runtime or \
                    any(v is not None and id(v) in symbolic for v in ins) and \
                    all(v is None or id(v) in known or id(v) in symbolic for v in ins[1 if node.op in SHAPE_OPS else 0:]):
                plan.refold.add(orig)
                symbolic.update(id(v) for v in node.outputs)
                continue
            if varies and node.op not in RUNTIME_SIZED_OPS:
                if node.op in VIEW_OPS or _one_input_concat(node):
                    plan.views.add(orig)
                else:   # exact by construction (runtime_dims): numpy gives the kernel's bits
                    plan.exact.add(orig)
                continue
        shape_only = node.op in SHAPE_OPS and ins[0] is not None and ins[0].type.is_static and \
            all(v is None or id(v) in known for v in ins[1:])
        if shape_only or all(v is None or id(v) in known for v in ins):
            try:
                args = [known.get(id(v)) if v is not None else None for v in ins]
                if shape_only and args[0] is None:
                    args[0] = _shape_proxy(ins[0])
                outs = tuple(_contig(a) for a in evaluate(node, args, check=False))
            except BackendError:
                outs = None  # fails on these values: leave it to run time, where it fails the same way
            if outs is not None:
                for a in outs:   # handed to every run (and maybe to the caller): nobody may write them
                    a.setflags(write=False)
                plan.folded[orig] = outs
                for v, a in zip(node.outputs, outs):
                    known[id(v)] = a
                continue
        if node.op in VIEW_OPS or _one_input_concat(node):
            plan.views.add(orig)
            continue
        in_shapes = [tuple(v.type.shape) if v is not None and v.type.is_static else None for v in ins]
        kn = {i: known[id(v)] for i, v in enumerate(ins) if v is not None and id(v) in known}
        if not all(v.type.is_static for v in node.outputs):
            plan.fallbacks[orig] = "its output shape is not static after binding the input dims"
            continue
        try:
            lw = lower(node, in_shapes, kn, options)
            lowered.append((orig, lw))
            plan.lowerings[orig] = lw
            plan.kinds[orig] = type(lw).__name__.replace("Lowering", "").lower()
            continue
        except Unsupported as e:
            reason = str(e)
        if node.op == "Fused" and node.body is not None and all(s is not None for s in in_shapes):
            sub = LLVMInterpreter(_specialized_body(node, in_shapes), runner=runner, options=options, strict=strict)
            try:
                sub.prepare({p.name: s for p, s in zip(sub.graph.inputs, in_shapes)})
            except BackendError as e:
                raise BackendError(f"{e} (in the body of {describe(orig)})") from None
            if not sub.plan.fallbacks or not strict:
                plan.subplans[orig] = sub
                plan.kinds[orig] = "fused-body"
                continue
        plan.fallbacks[orig] = reason
    lowered = _split_views(graph, plan, lowered)
    _compile(plan, lowered, plan.recorder)  # may move a node to the fallbacks (an op with no code for its dtype)
    if strict and plan.fallbacks:
        first, ops = next(iter(plan.fallbacks.items())), Counter(n.op for n in plan.fallbacks)
        raise BackendError("strict: the llvm backend has no kernel for "
                           + ", ".join(f"{op} (x{k})" for op, k in sorted(ops.items()))
                           + f" ({describe(first[0])}: {first[1]}); drop --strict to run them on numpy")
    types = {}   # kernel outputs -> their bound types, except those that vary with the runtime dims
    for orig, node in zip(graph.nodes, bound.nodes):
        if orig in plan.kernels:
            for vo, vb in zip(orig.outputs, node.outputs):
                if not (runtime and vo.type.symbols & runtime):   # else allocated by the kernel at each run
                    types[id(vo)] = vb.type
    plan.memory = plan_memory(graph, list(plan.kernels), plan.folded, types)
    plan.compile_seconds = time.perf_counter() - t0
    log.info("llvm plan for @%s: %s", graph.name, plan.summary())
    return plan


def _pin(plan: Plan, key: int, a: np.ndarray) -> np.ndarray:
    """``a`` copied into the plan's buffer for value ``key`` (made on first use, or when ``a``'s
    shape or dtype differs from the buffer's); ``a`` itself when it is larger than SMALL_PINNED."""
    if not isinstance(a, np.ndarray) or a.nbytes > SMALL_PINNED:
        return a
    buf = plan.pinned[key]
    if buf is None or buf.shape != a.shape or buf.dtype != a.dtype:
        if buf is not None:   # freed with it: its id may come back on an array that is not the plan's
            plan.stable.discard(id(buf))
        buf = plan.pinned[key] = np.empty(a.shape, a.dtype)
        plan.stable.add(id(buf))
    np.copyto(buf, a)
    return buf


def _split_views(graph: Graph, plan: Plan, lowered: list) -> list:
    """Turn into views each Split whose parts only kernels read, each reading them strided (an
    attention's Q/K/V from a fused QKV product): numpy's parts are views, so nothing is copied."""
    outputs = set(map(id, graph.outputs))
    keep = []
    for orig, lw in lowered:
        if orig.op == "Split" and all(id(v) not in outputs and all(
                i in (getattr(plan.lowerings.get(u), "strided_inputs", None) or ()) for u, i in v.uses)
                for v in orig.outputs):
            plan.views.add(orig)
            del plan.lowerings[orig], plan.kinds[orig]
            continue
        keep.append((orig, lw))
    return keep


def _one_input_concat(node: Node) -> bool:
    return node.op == "Concat" and len(node.inputs) == 1 and node.inputs[0] is not None


def _feeds_past(v, depth: int = 4) -> bool:
    """True when ``v`` reaches an attention's past K/V slot, directly or through identities."""
    return depth > 0 and any((n.op == "Attention" and i in (4, 5)) or
                             ((n.op == "Identity" or _one_input_concat(n)) and _feeds_past(n.outputs[0], depth - 1))
                             for n, i in v.uses)


def _kernel_args(args: list, loose: frozenset[int] | None) -> list:
    """A kernel's arguments, contiguous (copied where not) except the inputs it reads strided."""
    if not loose:
        return [a if a is None or a.flags.c_contiguous else np.ascontiguousarray(a) for a in args]
    return [a if a is None or i in loose or a.flags.c_contiguous else np.ascontiguousarray(a)
            for i, a in enumerate(args)]


def _check_results(node: Node, res: Sequence[np.ndarray]) -> None:
    if len(res) != len(node.outputs):
        raise BackendError(f"kernel of {node.op} returned {len(res)} outputs for {len(node.outputs)}")
    for v, a in zip(node.outputs, res):
        shape = v.type.shape
        if a.dtype != v.type.dtype.np_dtype or a.ndim != len(shape) or \
                any(isinstance(d, int) and d != n for d, n in zip(shape, a.shape)):
            raise BackendError(f"{node.op} kernel produced {a.dtype}{list(a.shape)} for %{v.name}: {v.type}")


def _specialized_body(node: Node, in_shapes) -> Graph:
    """A copy of a Fused node's body typed for these input shapes (its dims may be expressions
    such as ``batch*seq`` that binding names cannot reach; inference from the inputs can)."""
    from ...ir import TensorType, refine_types
    body = node.body.copy()
    for p, shape in zip(body.inputs, in_shapes):
        p.type = TensorType(p.type.dtype, tuple(shape))
    refine_types(body)
    return body


def _shape_proxy(v) -> np.ndarray:
    """A zero-byte array with ``v``'s shape, so that Shape/Size fold without data."""
    return np.lib.stride_tricks.as_strided(np.zeros(1, np.uint8), shape=tuple(v.type.shape),
                                           strides=(0,) * v.type.rank)


def _contig(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


def _contig_all(out):
    """A kernel's result (one array or a tuple of them) made contiguous."""
    return tuple(_contig(a) for a in out) if isinstance(out, tuple) else _contig(out)


#: every function compiled in this process, by symbol (a hash of its IR): plans that need a kernel
#: another plan already has (another graph, another shape signature of the same layer) reuse it
_COMPILED: dict[str, CompiledModule] = {}


#: every lowering emitted in this process, by structural signature (``signature.py``): its
#: functions' final symbols, pointer counts and checked-mode bound counts, or why it has no code.
#: A lowering with a known signature is not emitted again (the 30 layers of a model share kernels).
_EMITTED: dict[tuple, dict[str, tuple[str, int, int | None]] | str] = {}


def _emit(lw: Lowering, decls: dict[str, str], defs: dict[str, str]) -> dict[str, tuple[str, int, int | None]]:
    """Emit one lowering: its functions' definitions go to ``defs`` (by final symbol, a hash of
    the IR) unless compiled before, its declarations to ``decls``; returns local name -> symbol."""
    m = ir.Module(name="k")
    local: dict[str, str] = {}
    lw.emit(m, lambda n, local=local: local.setdefault(n, f"KERNEL.{n}"))
    mine: dict[str, tuple[str, int, int | None]] = {}
    for fn in m.functions:
        if fn.is_declaration:
            decls[fn.name] = str(fn).strip()
    for n, placeholder in local.items():
        fn = m.globals[placeholder]
        text = str(fn)
        final = "k" + hashlib.sha1(text.encode()).hexdigest()[:16]
        if final not in _COMPILED:
            defs.setdefault(final, text.replace(f'@"{placeholder}"', f'@"{final}"'))
        bounds = getattr(fn, "bounds", None)
        mine[n] = (final, len(fn.args) - 2, len(bounds) if bounds is not None else None)
    return mine


def _verify_signatures() -> bool:
    """``RIDGELINE_LLVM_VERIFY_SIGNATURES=1``: emit every lowering anyway and fail if one whose
    signature was seen emits different IR (the tests set it)."""
    return os.environ.get("RIDGELINE_LLVM_VERIFY_SIGNATURES", "").strip() not in ("", "0")


def _compile(plan: Plan, lowered: list[tuple[Node, Lowering]], runner: Runner | LaunchRecorder) -> None:
    """Emit every lowering not emitted before (by signature), compile the functions not compiled
    before in one module, bind."""
    defs: dict[str, str] = {}       # final symbol -> definition text
    decls: dict[str, str] = {}      # declaration lines (intrinsics, libm)
    names: list[dict[str, tuple[str, int, int | None]]] = []
    emitted: list[tuple[Node, Lowering]] = []
    fresh: dict[tuple, dict | str] = {}   # signatures first emitted here: kept once compiled
    verify = _verify_signatures()
    for orig, lw in lowered:
        sig = lw.signature()
        known = None if sig is None else fresh.get(sig, _EMITTED.get(sig))
        if known is None or verify:
            try:
                mine: dict | str = _emit(lw, decls, defs)
            except Unsupported as e:  # found only while emitting (an op on a dtype with no scalar code)
                mine = str(e)
            if known is not None and known != mine:
                raise BackendError(f"llvm: {describe(orig)} emits other code than a kernel with the same "
                                   f"signature ({type(lw).__name__}.signature is incomplete)")
            if sig is not None:
                fresh[sig] = mine
        else:
            mine = known
            STATS["emits_skipped"] += 1
        if isinstance(mine, str):
            plan.fallbacks[orig] = mine
            plan.kinds.pop(orig, None)
            continue
        emitted.append((orig, lw))
        names.append(mine)
    if defs:
        text = "\n".join(decls.values()) + "\n\n" + "\n\n".join(defs.values())
        module = compile_ir(finalize_text(text))
        plan.modules.append(module)
        plan.n_functions = len(defs)
        STATS["functions"] += len(defs)
        for final in defs:
            _COMPILED[final] = module
    _EMITTED.update(fresh)
    fns: dict[str, Any] = {}
    for (orig, lw), mine in zip(emitted, names):
        def get(local: str, mine=mine):
            final, n_ptrs, n_checked = mine[local]
            f = fns.get(final)
            if f is None:
                module = _COMPILED[final]
                if module not in plan.modules:
                    plan.modules.append(module)   # keep the code alive as long as this plan
                f = fns[final] = cfunc(module.address(final), n_ptrs)
                if n_checked is not None:   # compiled with bounds checks: sizes and a record per launch
                    f = fns[final] = CheckedKernel(f, final, n_checked)
            return f
        plan.kernels[orig] = lw.bind(get, runner)


class LLVMInterpreter(Interpreter):
    """The reference interpreter running JIT-compiled kernels; see the module docstring."""

    def __init__(self, graph: Graph, *, check: bool = True, runner: Runner | None = None,
                 options: Mapping[str, Any] | None = None, strict: bool = False):
        super().__init__(graph, check=check)
        self.runner = runner if runner is not None else Runner()
        self.options = dict(options or {})
        self.strict = strict
        self._plans: OrderedDict[tuple, Plan] = OrderedDict()
        self.plan: Plan | None = None
        self.runtime = runtime_dims(graph) if self.options.get("polymorphic", True) else frozenset()
        # per input, the axes a runtime dim reaches: left out of the plan key
        self._free = [{a for a, d in enumerate(v.type.shape) if isinstance(d, str) and D.free_symbols(d) & self.runtime}
                      for v in graph.inputs]
        self.plans_built = 0
        self.functions_compiled = 0
        #: inputs read as an attention's past K/V: a present this backend returned is a view of a
        #: longer buffer (attention.GrowingCache), taken as it is; other kernels reading it get a
        #: contiguous copy (``_kernel_args``), numpy-run ops read views anyway
        self._loose = {v.name for v in graph.inputs if _feeds_past(v)}

    def prepare(self, shapes: Mapping[str, tuple[int, ...]]) -> Plan:
        """The plan for these input shapes (built and compiled on first use; one plan serves every
        value of the runtime dims)."""
        key = tuple(tuple(None if a in free else n for a, n in enumerate(shapes[v.name]))
                    for v, free in zip(self.graph.inputs, self._free))
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = build_plan(self.graph, shapes, runner=self.runner, options=self.options,
                                                 strict=self.strict, runtime=self.runtime)
            self.plans_built += 1
            self.functions_compiled += plan.n_functions
            while len(self._plans) > MAX_PLANS:
                self._plans.popitem(last=False)
        else:
            self._plans.move_to_end(key)
        self.plan = plan
        return plan

    def run(self, inputs: Mapping[str, Any] | Sequence[Any] = (), *, profile: bool = False) -> dict[str, np.ndarray]:
        env = bind_inputs(self.graph, inputs)   # checks dtypes and shapes before anything compiles
        arrays = {v.name: env[id(v)] if v.name in self._loose else _contig(env[id(v)]) for v in self.graph.inputs}
        plan = self.prepare({k: a.shape for k, a in arrays.items()})
        if profile:
            return super().run(arrays, profile=True)
        return self._run_plan(plan, arrays)

    def _run_plan(self, plan: Plan, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``Interpreter.run`` without its per-node costs: a decode step is a few hundred small
        kernels, and a context manager, a result check and a list per node cost as much as the
        GEMVs' weights take to stream on a loaded host. Compiled kernels return their planned
        outputs (dtypes and shapes fixed by the plan; checked mode checks them anyway); every
        other node goes through ``run_node`` as before."""
        steps = plan.steps
        if steps is None:
            steps = plan.steps = self._schedule(plan)
            if steps is None:   # a constant without data: the reference run says so
                return super().run(arrays)
        env: dict[int, Any] = dict(plan.constants)
        pinned = plan.pinned
        for v in self.graph.inputs:
            a = arrays[v.name]
            env[id(v)] = a if id(v) not in pinned else _pin(plan, id(v), a)
        memory = plan.memory
        checked = checked_mode()
        memos = plan.memos
        segments = plan.segments
        launch = self.runner.launch
        streak: list[int] = []   # consecutive steps recorded on this run's arrays (replay.Segment)
        at, n_steps = 0, len(steps)
        with np.errstate(all="ignore"):   # IEEE semantics, as run_node sets per node
            while at < n_steps:
                seg = segments.get(at) if not checked else None
                if seg is not None and all(env.get(i) is a for i, a in seg.reads):   # replay.Segment
                    self._close_streak(plan, streak)
                    for f, call in seg.calls:
                        (f or launch)(*call)
                    env.update(seg.sets)
                    for i in seg.pops:
                        env.pop(i, None)
                    at = seg.end
                    continue
                node, kernel, ins, outs, free, loose, slot, pins = steps[at]
                at += 1
                args = [env[i] if i is not None else None for i in ins]
                if kernel is None:
                    res = self.run_node(node, args)
                    if slot is not None and not checked:
                        self._memo_view(plan, slot, args, res)
                    elif pins:
                        res = tuple(_pin(plan, i, a) if i in pinned else a for i, a in zip(outs, res))
                else:
                    if checked:
                        running(describe(node))
                    kargs = _kernel_args(args, loose)
                    record = slot is not None and not checked
                    if record:
                        plan.recorder.log = []
                    try:
                        res = kernel(kargs, memory.outs(node))
                    except (ValueError, IndexError, TypeError, FloatingPointError, OverflowError, MemoryError) as e:
                        raise BackendError(f"{describe(node)} failed at run time: {type(e).__name__}: {e}") from None
                    finally:
                        log, plan.recorder.log = plan.recorder.log, None
                    memory.keep(node, res)
                    if checked:   # what run_node checks of every kernel's results
                        _check_results(node, res)
                    if record:
                        self._memo_kernel(plan, slot, kernel, args, kargs, res, log)
                memo = memos[slot] if slot is not None and not checked else None
                if memo is not None and memo[0] == tuple(map(id, args)):   # recorded on these arrays
                    Segment.drop(segments, at - 1)
                    streak.append(at - 1)
                else:
                    self._close_streak(plan, streak)
                for i, a in zip(outs, res):
                    env[i] = a
                for i in free:
                    env.pop(i, None)
            self._close_streak(plan, streak)
        return {v.name: env[id(v)] for v in self.graph.outputs}

    def _close_streak(self, plan: Plan, streak: list[int]) -> None:
        """Keep a run of consecutive replayable steps as one ``Segment`` (replay.py), then start anew."""
        if streak:
            seg = Segment([plan.steps[k] for k in streak], [plan.memos[plan.steps[k][6]] for k in streak],
                          plan.constants, streak[-1] + 1, self.runner.serial)
            plan.segments[streak[0]] = seg
        streak.clear()

    def _schedule(self, plan: Plan) -> list[tuple] | None:
        """(node, its compiled kernel or None, input ids, output ids, ids dead after it, inputs read
        strided, its memo slot or None) per node."""
        consts = {}
        for c in self.graph.constants.values():
            if c.data is None:
                return None
            consts[id(c)] = c.data
        plan.constants = consts
        plan.readonly = stable_ids(list(consts.values()) + [a for outs in plan.folded.values() for a in outs])
        plan.stable = plan.readonly | stable_ids(plan.memory.arena)
        escaping = {n for n, _ in plan.memory.escaping}
        outputs = set(map(id, self.graph.outputs))

        def pin(v) -> bool:   # read by kernels only (which never return their inputs), of fixed size
            if v is None or v.name in self._loose or v.type.symbols & plan.runtime or id(v) in outputs or \
                    not v.uses or not all(n in plan.kernels for n, _ in v.uses):
                return False
            plan.pinned[id(v)] = None
            return True
        for v in self.graph.inputs:
            pin(v)
        steps = []
        for node in self.graph:
            kernel = plan.kernels.get(node)
            slot = None
            if (kernel is not None and getattr(kernel, "replay", False) and id(node) not in escaping) or \
                    (kernel is None and node in plan.views and node.op in _MEMO_VIEWS):
                slot = len(plan.memos)
                plan.memos.append(None)
            steps.append((node, kernel, [id(v) if v is not None else None for v in node.inputs],
                          [id(v) for v in node.outputs], [id(v) for v in self._last_use.get(id(node), ())],
                          getattr(plan.lowerings.get(node), "strided_inputs", None), slot,
                          kernel is None and node not in plan.folded and node not in plan.views and
                          sum(map(pin, node.outputs)) > 0))   # (a view's parts stay views)
        return steps

    @staticmethod
    def _memo_kernel(plan: Plan, slot: int, kernel: Callable, args: list, kargs: list, res: Sequence,
                     log: list | None) -> None:
        """Keep a replayable kernel's launches for its next run on the same arrays, when every array
        it touched lives as long as the plan (replay.py)."""
        stable = plan.stable
        if log is not None and all(k is a and is_stable(a, stable) for k, a in zip(kargs, args)) and \
                all(is_stable(o, stable) for o in res):
            plan.memos[slot] = (tuple(map(id, args)), tuple(args), tuple(res), tuple(log),
                                getattr(kernel, "precheck", None))

    @staticmethod
    def _memo_view(plan: Plan, slot: int, args: list, res: Sequence) -> None:
        """Keep a view of a stable array (shaped by constants) for its next run on the same arrays."""
        if is_stable(args[0], plan.stable) and all(is_stable(a, plan.readonly) for a in args[1:]) and \
                isinstance(res, tuple) and all(is_stable(o, plan.stable) for o in res):
            plan.memos[slot] = (tuple(map(id, args)), tuple(args), res, (), None)

    def nested(self, body: Graph) -> Interpreter:
        """A Fused body left without a kernel or subplan runs on the numpy reference: a nested
        llvm interpreter would have no plan (``prepare`` runs per call of the outer graph)."""
        return Interpreter(body, check=self.check, tiles=self.tiles)

    def call_kernel(self, node: Node, args: list[np.ndarray | None]) -> Any:
        plan = self.plan
        k = plan.kernels.get(node)
        if k is not None:
            if checked_mode():
                running(describe(node))
            res = k(_kernel_args(args, getattr(plan.lowerings.get(node), "strided_inputs", None)),
                    plan.memory.outs(node))
            plan.memory.keep(node, res)
            return res
        f = plan.folded.get(node)
        if f is not None:
            return f
        if node in plan.refold or node in plan.exact:
            if node.op == "Fused":   # the body on the numpy reference (not a nested llvm plan per run)
                ref = plan.numpy_bodies.get(node)
                if ref is None:
                    ref = plan.numpy_bodies[node] = Interpreter(node.body, check=False)
                res = ref.run({p.name: a for p, a in zip(node.body.inputs, args)})
                return tuple(_contig(res[v.name]) for v in node.body.outputs)
            return _contig_all(super().call_kernel(node, args))
        sub = plan.subplans.get(node)
        if sub is not None:
            res = sub.run({p.name: a for p, a in zip(node.body.inputs, args)})
            return tuple(res[v.name] for v in node.body.outputs)
        if node in plan.views:
            if node.op == "Concat":   # of one input: that input (exporters' Concat(past) before Shape)
                return (args[0],)
            return super().call_kernel(node, args)
        if self.strict:  # pragma: no cover - build_plan refuses such graphs
            raise BackendError(f"strict: no llvm kernel for {describe(node)}: {plan.fallbacks.get(node)}")
        return _contig_all(super().call_kernel(node, args))
