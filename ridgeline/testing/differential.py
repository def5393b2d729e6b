"""Differential testing across runtimes on random graphs: every executing backend, and onnxruntime
on the ONNX export, must agree with the numpy reference (NNSmith's method: a disagreement is a
bug in one of them, often in our own op semantics).

    check_backend("torch")                        # ops torch has kernels for
    check_backend("llvm", pipeline="default")     # fused kernels, as the JIT compiles them
    check_onnxruntime()                           # export -> onnxruntime vs numpy

A failure raises ``BackendCheckError`` with the shrunk graph, the outputs that differ, and the
saved ``.rir``/``.onnx``/inputs (as ``check_pass`` does).
"""

from __future__ import annotations

import importlib.util
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Iterable, Mapping

import numpy as np
from hypothesis import assume, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from ..ir import Graph
from ..ir.errors import BackendError
from .check import Failure, PassCheckError, PassTarget, _settings, reduce_failure, save_repro
from .compare import compare_outputs, reference_run
from .inputs import random_inputs

__all__ = ["check_backend", "check_onnxruntime", "BackendCheckError", "DiffReport", "supported_ops",
           "run_twice", "first_difference", "Nondeterministic",
           "onnxruntime_runner", "ORT_UNSUPPORTED", "onnxruntime_gap", "onnxruntime_gaps", "onnxruntime_max_opset"]


class BackendCheckError(PassCheckError):
    """A runtime disagrees with the numpy reference; ``.failure`` has the details."""


@dataclass
class DiffReport:
    """Graphs compared, and those skipped because the runtime could not take them (and why)."""

    runtime: str
    compared: int = 0
    skipped: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    ops: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def __str__(self) -> str:
        return f"{self.runtime}: {self.compared} graphs agree with numpy, {self.skipped} skipped, {self.seconds:.1f}s"


#: dtypes a backend computes with (torch's CPU kernels lack arithmetic on u16/u32/u64 and fp8 —
#: its backend takes them, then fails at run time — and torch has no int4)
BACKEND_DTYPES = {"torch": ("f32", "i64", "bool", "f16", "i32", "f64", "bf16", "i8", "u8", "i16")}


def supported_ops(backend: str) -> list[str]:
    """Ops the backend runs natively (for torch, those with a torch kernel; numpy and llvm run
    every op, llvm falling back to numpy kernels where it has no lowering)."""
    from .strategies import op_names
    if backend == "torch":
        from ..backends.torch.kernels import get_kernel
        return [op for op in op_names() if get_kernel(op) is not None or op == "Fused"]
    return list(op_names())


def _run(name: str, fn: Callable[[Graph, dict], dict[str, np.ndarray] | None], graphs, *, rtol, atol,
         max_examples, settings, repro_dir, pipeline: str | None = None) -> DiffReport:
    """Compare ``fn(graph, inputs)`` with the reference on every drawn graph; ``fn`` returns None
    (with a reason recorded) when the runtime cannot take the graph."""
    report = DiffReport(name)
    t0 = time.perf_counter()
    target = PassTarget(pipeline or "", lambda g: (g, False, {}), pipeline=pipeline or "")
    target.label = name
    check = "onnxruntime" if name == "onnxruntime" else "backend"

    def one(g: Graph, inputs: dict) -> bool:
        expected = reference_run(g, inputs)
        try:
            got = fn(g, inputs)
        except Nondeterministic as e:
            raise BackendCheckError(Failure("nondeterministic", str(e), g, inputs, target, backend=name,
                                            check=check)) from None
        except Exception as e:
            raise BackendCheckError(Failure("run", f"{name} fails on a graph the reference runs: "
                                            f"{type(e).__name__}: {str(e)[:2000]}", g, inputs, target,
                                            backend=name, check=check)) from None
        if got is None:
            report.skipped += 1
            return False
        problems = compare_outputs(expected, [got[n] for n in expected.names] if all(n in got for n in expected.names)
                                   else list(got.values()), rtol=rtol, atol=atol)
        if problems:
            raise BackendCheckError(Failure("mismatch", f"{name} disagrees with the numpy reference "
                                            f"({len(problems)} of {len(expected.outputs)} outputs)",
                                            g, inputs, target, None, problems, backend=name, check=check))
        report.compared += 1
        for op, k in g.op_histogram().items():
            report.ops[op] = report.ops.get(op, 0) + k
        return True

    try:
        if isinstance(graphs, Graph) or (graphs is not None and not isinstance(graphs, st.SearchStrategy)):
            for g in ([graphs] if isinstance(graphs, Graph) else list(graphs)):
                one(g, random_inputs(g))
        else:
            @given(g=graphs, seed=st.integers(0, 2 ** 31 - 1))
            def prop(g: Graph, seed: int) -> None:
                assume(one(g, random_inputs(g, seed=seed)))
            prop.hypothesis.inner_test._hypothesis_internal_add_digest = name.encode()  # type: ignore
            _settings(settings, max_examples)(prop)()
    except BackendCheckError as e:
        failure = reduce_failure(e.failure, one)
        save_repro(failure, repro_dir)
        raise BackendCheckError(failure) from None
    report.seconds = time.perf_counter() - t0
    return report


def check_backend(backend: str, graphs: st.SearchStrategy[Graph] | Graph | Iterable[Graph] | None = None, *,
                  pipeline: str | None = None, options: Mapping[str, Any] | None = None,
                  rtol: float | None = None, atol: float | None = None, max_examples: int | None = None,
                  settings: hsettings | None = None, repro_dir=None) -> DiffReport:
    """``backend`` (an executing backend's name) runs random graphs like the numpy reference.

    ``pipeline`` optimizes each graph first (on a copy; the reference runs the original), so the
    backend's kernels for fused nodes are compared too. Graphs holding a node the backend does not
    support are skipped (counted in the report)."""
    from ..backends.registry import get_backend
    from .strategies import graphs as random_graphs
    be = get_backend(backend)
    if getattr(be, "kind", "execute") != "execute":
        raise BackendError(f"{backend!r} estimates; check_backend compares executing backends")
    strategy = graphs if graphs is not None else random_graphs(ops=supported_ops(backend),
                                                               dtypes=BACKEND_DTYPES.get(backend))
    reasons: Counter[str] = Counter()

    def run(g: Graph, inputs: dict) -> dict[str, np.ndarray] | None:
        work = g
        if pipeline:
            from ..backends.numpy import reference_evaluator
            from ..passes import run_pipeline
            work = g.copy()
            run_pipeline(work, pipeline, evaluator=reference_evaluator(), verify_each=False)
        bad = sorted({n.op for n in work.walk() if not be.supports(n)})
        if bad and backend == "torch":
            reasons["unsupported: " + ",".join(bad)] += 1
            return None
        try:
            exe = be.compile(work, **dict(options or {}))
        except BackendError as e:
            reasons[str(e).split(":")[0]] += 1
            return None
        out = run_twice(exe.run, inputs, backend)
        return {v.name: out[w.name] for v, w in zip(g.outputs, work.outputs)}

    report = _run(backend, run, strategy, rtol=rtol, atol=atol, max_examples=max_examples, settings=settings,
                  repro_dir=repro_dir, pipeline=pipeline)
    report.reasons = reasons
    return report


class Nondeterministic(AssertionError):
    """Two runs of one executable on the same inputs gave different bits."""


def first_difference(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> str | None:
    """Where two runs' outputs differ bit for bit (NaN payloads included), or None."""
    if list(a) != list(b):
        return f"outputs {list(a)} then {list(b)}"
    for name in a:
        x, y = np.asarray(a[name]), np.asarray(b[name])
        if x.dtype != y.dtype or x.shape != y.shape:
            return f"output {name}: {x.dtype}{list(x.shape)} then {y.dtype}{list(y.shape)}"
        xb = np.ascontiguousarray(x).view(np.uint8).reshape(-1)
        yb = np.ascontiguousarray(y).view(np.uint8).reshape(-1)
        if not np.array_equal(xb, yb):
            at = int(np.flatnonzero(xb != yb)[0]) // max(x.itemsize, 1)
            idx = np.unravel_index(at, x.shape) if x.shape else ()
            return f"output {name} at {list(map(int, idx))}: {x.reshape(-1)[at].item()!r} then {y.reshape(-1)[at].item()!r}"
    return None


def run_twice(run: Callable[[Mapping[str, np.ndarray]], Mapping[str, np.ndarray]], inputs: Mapping[str, np.ndarray],
              what: str) -> dict[str, np.ndarray]:
    """``run(inputs)`` twice; the outputs must be bitwise equal (threaded kernels included),
    else ``Nondeterministic``. The inputs must not change either."""
    before = {k: np.array(v, copy=True) for k, v in inputs.items()}
    first = {k: np.array(v, copy=True) for k, v in run(inputs).items()}
    second = dict(run(inputs))
    diff = first_difference(first, second)
    if diff is None:
        diff = first_difference(before, {k: np.asarray(v) for k, v in inputs.items()})
        if diff is not None:
            diff = "the run wrote into its inputs: " + diff
    if diff is not None:
        raise Nondeterministic(f"{what} is not deterministic: two runs on the same inputs differ ({diff})")
    return first


#: ops onnxruntime (1.31) does not run at all: they need an opset it does not support yet
ORT_UNSUPPORTED: dict[str, str] = {
    "LinearAttention": "opset 27", "CausalConvWithState": "opset 27", "SwiGLU": "opset 28",
}


@lru_cache(maxsize=None)
def onnxruntime_max_opset() -> int:
    """The newest default-domain opset the installed onnxruntime loads."""
    import onnx
    import onnxruntime as ort
    from onnx import helper
    ort.set_default_logger_severity(4)
    for opset in range(onnx.defs.onnx_opset_version(), 12, -1):
        g = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "probe",
                              [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
        m.ir_version = helper.find_min_ir_version_for(m.opset_import, ignore_unknown=True)  # as the exporter
        try:
            ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
            return opset
        except Exception:
            continue
    return 13


def onnx_accepts(node) -> bool:
    """Whether some version of ONNX's schema for ``node.op`` takes this node (attributes, arity,
    dtypes); ridgeline's specs are wider for a few ops (integer reductions, fp8/int4 movement)."""
    from ..frontends.onnx import opsets
    attrs = frozenset(k for k, v in node.attrs.items() if v is not None)
    ins = tuple(opsets._type_str(v.type.dtype.onnx_code) if v is not None else None for v in node.inputs)
    outs = tuple(opsets._type_str(v.type.dtype.onnx_code) for v in node.outputs)
    return opsets._required(node.op, attrs, len(node.inputs), len(node.outputs), ins, outs, -1) != -1


def _ints(node, name: str) -> tuple:
    return tuple(node.attr(name) or ())


def _seq(v) -> object:
    """Sequence length of an Attention operand: [b, h, s, d] or [b, s, hidden]."""
    shape = v.type.shape
    return shape[-2] if len(shape) == 4 else shape[1]


def _batch_seq(x) -> tuple:
    shape = tuple(x.type.shape)
    return (shape[0], shape[2]) if len(shape) == 4 else shape[:2]


def onnxruntime_gap(node) -> str | None:
    """Why onnxruntime cannot take ``node`` as we export it (a limitation of the runtime, checked
    against onnx.reference), or None."""
    from ..frontends.onnx.opsets import required_opset
    op = node.op
    if op in ORT_UNSUPPORTED:
        return f"{op}: {ORT_UNSUPPORTED[op]}"
    if node.spec.domain == "":
        if not onnx_accepts(node):
            types = ", ".join(sorted({v.type.dtype.name for v in node.inputs if v is not None}))
            return f"{op}: no ONNX opset takes it on {types} (ridgeline's spec is wider)"
        if required_opset(node) > onnxruntime_max_opset():
            return f"{op}: needs opset {required_opset(node)}"
    if node.spec is not None and any(v is not None and v.type.dtype.name == "f64" for v in node.outputs):
        for a in node.spec.attrs.values():
            x = node.attr(a.name) if a.kind == "float" else None
            if isinstance(x, float) and math.isfinite(x) and float(np.float32(x)) != x:
                # ONNX's FLOAT attributes are 32-bit: the export rounds the attribute, so an f64
                # graph and its export compute with values that differ in the 8th digit
                return f"{op}: ONNX stores the float attribute {a.name} as float32 (an f64 graph uses {x!r})"
    if op == "RotaryEmbedding" and len(node.inputs) > 3 and node.inputs[3] is not None:
        seq = node.inputs[3].type.shape[1]
        if not isinstance(seq, int) or node.inputs[1].type.shape[0] < seq:
            return "RotaryEmbedding: onnxruntime wants a cos/sin table at least as long as the sequence"
    if op == "RotaryEmbedding" and (len(node.inputs) < 4 or node.inputs[3] is None) \
            and tuple(node.inputs[1].type.shape[:2]) != _batch_seq(node.inputs[0]):
        return "RotaryEmbedding: onnxruntime does not broadcast cos/sin caches over batch or sequence"
    if op in ("Conv", "ConvInteger", "ConvTranspose") and node.attr("auto_pad") in ("SAME_UPPER", "SAME_LOWER") \
            and any(d != 1 for d in _ints(node, "dilations")):
        return f"{op}: onnxruntime has no dilations with SAME padding"
    if op == "ConvTranspose" and node.attr("auto_pad") in ("SAME_UPPER", "SAME_LOWER"):
        # ONNX (and onnx.reference) make the output input·stride long; onnxruntime does not
        return "ConvTranspose: onnxruntime sizes SAME outputs differently from the ONNX spec"
    if op in ("QuantizeLinear", "DequantizeLinear") and node.attr("block_size") and node.inputs[1].type.numel == 1:
        return f"{op}: onnxruntime takes one block as per-tensor and refuses block_size"
    if op == "LpPool" and any(d != 1 for d in _ints(node, "dilations")):
        return "LpPool: onnxruntime ignores dilations when sizing the output"
    if op == "Pad" and len(node.inputs) > 3 and node.inputs[3] is not None and node.inputs[3].type.dtype.name == "i32":
        return "Pad: onnxruntime's shape inference wants i64 axes"
    if op == "CenterCropPad" and node.inputs[1].type.dtype.name == "i32":
        return "CenterCropPad: onnxruntime's function expansion fails on an i32 shape"
    if op == "QLinearMatMul" and any(v.type.numel != 1 for v in node.inputs[1:3] + node.inputs[4:6]):
        return "QLinearMatMul: onnxruntime takes per-tensor scales and zero points only"
    if op == "Attention" and len(node.inputs) > 4 and node.inputs[4] is not None and len(node.outputs) < 3:
        return "Attention: onnxruntime wants present_key/value whenever past_key/value are given"
    if op == "Attention" and node.attr("is_causal") and len(node.inputs) > 4 and node.inputs[4] is not None \
            and _seq(node.inputs[0]) != _seq(node.inputs[1]):
        # queries and new keys of different lengths: onnx.reference (and ridgeline) put query i at
        # past + i, onnxruntime at total - q_len + i
        return "Attention: onnxruntime offsets is_causal by total - q_len, onnx.reference by the past length"
    if op == "RMSNormalization" and node.inputs[0].type.dtype != node.inputs[1].type.dtype:
        return "RMSNormalization: onnxruntime's function body fails on a scale of another dtype"
    if op == "InstanceNormalization" and all(d == 1 for d in node.inputs[0].type.shape[2:]):
        # one-element slices: x - E[x] is exactly 0 in onnx.reference (and ridgeline); onnxruntime's
        # one-pass variance leaves rounding noise that 1/sqrt(eps) amplifies to ~1e-5
        return "InstanceNormalization: onnxruntime is inexact on one-element slices (zero variance)"
    if op == "MeanVarianceNormalization":
        shape = node.inputs[0].type.shape
        x = node.inputs[0]
        flat = x.producer is not None and x.producer.op == "ConstantOfShape"
        if all(shape[a] == 1 for a in node.attr("axes")) or flat:
            # onnx.reference gives 0 (x - E[x] = 0); onnxruntime's E[x²] - E[x]² comes out negative
            return "MeanVarianceNormalization: onnxruntime gives NaN for constant (or one-element) slices"
        # otherwise its one-pass variance cancels: an error of ~ulp(x²)/σ², beyond the oracle's
        # ulps at |y| whenever a slice's spread is small against its mean (seen with 2-element slices)
        return "MeanVarianceNormalization: onnxruntime's one-pass E[x²] - E[x]² is inexact on narrow slices"
    return None


#: dtypes onnxruntime's Python API cannot take as inputs, or give back as outputs
_ORT_NO_INPUT = frozenset({"bf16", "f8e4m3", "f8e5m2", "i4", "u4"})
_ORT_NO_OUTPUT = frozenset({"bf16", "f8e5m2", "i4", "u4"})


def onnxruntime_gaps(graph: Graph) -> list[str]:
    """``onnxruntime_gap`` of every node (bodies included), with the graph's dims bound, and the
    graph inputs and outputs onnxruntime's Python API cannot exchange."""
    from .inputs import testing_meta
    gaps = [f"onnxruntime's Python API takes no {v.type.dtype} inputs" for v in graph.inputs
            if v.type.dtype.name in _ORT_NO_INPUT]
    gaps += [f"onnxruntime's Python API returns no {v.type.dtype} outputs" for v in graph.outputs
             if v.type.dtype.name in _ORT_NO_OUTPUT]
    dims = testing_meta(graph).get("dims")
    if dims:
        graph = graph.bind(**{k: v for k, v in dims.items() if k in graph.symbols()})
    return gaps + [r for r in (onnxruntime_gap(n) for n in graph.walk()) if r]


def onnxruntime_runner(graph: Graph) -> Callable[[Mapping[str, np.ndarray]], dict[str, np.ndarray]]:
    """Export ``graph`` to ONNX once and open an onnxruntime CPU session; the returned function
    runs it on inputs by name and gives outputs by name."""
    import onnxruntime as ort

    from ..frontends.onnx import to_onnx
    ort.set_default_logger_severity(4)  # failures are raised, not also logged to stderr
    model = to_onnx(graph)
    opts = ort.SessionOptions()
    opts.log_severity_level = 4
    # the reference is unoptimized: keep ORT's graph rewrites (fusions, constant folding) out of it
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]

    def run(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        res = sess.run(names, {k: np.asarray(v) for k, v in inputs.items()})
        out = {}
        for v, name, arr in zip(graph.outputs, names, res):
            want = v.type.dtype.np_dtype
            if arr.dtype != want and arr.dtype.itemsize == want.itemsize and want.kind == "V":
                arr = arr.view(want)  # float8 comes back as its raw bytes
            out[name] = arr
        return out
    return run


def check_onnxruntime(graphs: st.SearchStrategy[Graph] | Graph | Iterable[Graph] | None = None, *,
                      rtol: float | None = None, atol: float | None = None, max_examples: int | None = None,
                      settings: hsettings | None = None, repro_dir=None) -> DiffReport:
    """The ONNX export of random graphs, run by onnxruntime, agrees with the numpy reference."""
    if importlib.util.find_spec("onnxruntime") is None:
        raise BackendError("check_onnxruntime needs onnxruntime: pip install 'ridgeline[test]'")
    from .strategies import graphs as random_graphs
    from .strategies import op_names
    ops = [op for op in op_names() if op not in ORT_UNSUPPORTED]
    strategy = graphs if graphs is not None else random_graphs(ops=ops)
    reasons: Counter[str] = Counter()

    def run(g: Graph, inputs: dict) -> dict[str, np.ndarray] | None:
        gaps = onnxruntime_gaps(g)
        if gaps:
            reasons[gaps[0]] += 1
            return None
        try:
            return run_twice(onnxruntime_runner(g), inputs, "onnxruntime")
        except Exception as e:  # onnxruntime's own errors carry no common type
            text = str(e)
            if any(m in text for m in ("NOT_IMPLEMENTED", "Could not find an implementation", "is not supported")):
                reasons[text.split("\n")[0][:160]] += 1
                return None
            raise
    report = _run("onnxruntime", run, strategy, rtol=rtol, atol=atol, max_examples=max_examples,
                  settings=settings, repro_dir=repro_dir)
    report.reasons = reasons
    return report
