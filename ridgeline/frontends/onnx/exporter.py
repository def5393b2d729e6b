"""IR → ONNX, so an optimized graph opens in Netron and runs in onnxruntime.

Ops in the default domain are written as themselves at an opset high enough for every spec's
``since``; ``Cast``'s dtype names go back to ONNX codes; a ``Fused`` node becomes a call of a
model-local ONNX function whose body is its ``body``. Weightless constants cannot be saved.
With ``emit="ort-contrib"`` fused ops newer than the opset become onnxruntime's ``com.microsoft``
contrib ops where those are exact (see ort_contrib.py), functions elsewhere.
"""

from __future__ import annotations

import json
import os

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ...ir import Graph, Node, Value
from ...ir.dtypes import dtype as to_dtype
from ...ir.errors import ModelError
from ...ir.safe_files import write_atomic
from .attributes import to_proto
from .lowering import LOWERABLE, STD_DOMAIN, FunctionLowering
from .opsets import required_opset
from .ort_contrib import CONTRIB_DOMAIN, EMIT_CHOICES, ContribLowering

__all__ = ["EMIT_CHOICES", "RIDGELINE_DOMAIN", "save_onnx", "to_onnx"]

RIDGELINE_DOMAIN = "ridgeline"
#: never export below this opset: LayerNormalization needs 17, and ORT supports 17+ well
MIN_EXPORT_OPSET = 17


def _value_info(v: Value) -> onnx.ValueInfoProto:
    shape = [d if isinstance(d, int) else str(d) for d in v.type.shape]
    return helper.make_tensor_value_info(v.name, v.type.dtype.onnx_code, shape)


#: attributes the IR spells as dtype names ("f16") and ONNX as TensorProto codes (the importer's
#: legacy.py converts the other way)
DTYPE_ATTRS = {"Cast": ("to",), "BitCast": ("to",), "EyeLike": ("dtype",), "HannWindow": ("output_datatype",),
               "HammingWindow": ("output_datatype",), "BlackmanWindow": ("output_datatype",),
               "QuantizeLinear": ("output_dtype", "precision"), "DequantizeLinear": ("output_dtype",)}


def _attrs(node: Node) -> list[onnx.AttributeProto]:
    out = []
    for k, val in node.attrs.items():
        if val is None:
            continue
        if k in DTYPE_ATTRS.get(node.op, ()) and isinstance(val, str):
            val = to_dtype(val).onnx_code
        out.append(to_proto(k, val))
    return out


class _Exporter:
    def __init__(self, graph: Graph, opset: int | None, emit: str = "std"):
        if emit not in EMIT_CHOICES:
            raise ModelError(f"unknown emit {emit!r}: choose one of {', '.join(EMIT_CHOICES)}")
        self.graph = graph
        self.functions: list[onnx.FunctionProto] = []
        self.opset = opset or self._pick_opset(graph)
        # fused ops newer than the file's opset become model-local functions (see lowering.py),
        # or onnxruntime contrib ops where exact (ort_contrib.py)
        self.lowering = FunctionLowering(self.opset)
        self.contrib = ContribLowering() if emit == "ort-contrib" else None
        self._skip: dict[int, Node] = {}

    @staticmethod
    def _pick_opset(graph: Graph) -> int:
        """The model's own opset (an imported file keeps it: ops newer than that become
        functions), raised only for ops that have no function form; a graph built in Python
        takes the lowest opset every node accepts."""
        own = int(graph.meta.get("onnx", {}).get("opset", 0))
        need = max(MIN_EXPORT_OPSET, own)
        for n in graph.walk():
            if n.spec.domain == "" and not (own and n.op in LOWERABLE):
                need = max(need, required_opset(n))
        return need

    def _lowered(self, n: Node) -> bool:
        return n.spec.domain == "" and n.op in LOWERABLE and required_opset(n) > self.opset

    def node_proto(self, n: Node) -> onnx.NodeProto:
        ins = [v.name if v is not None else "" for v in n.inputs]
        outs = [v.name for v in n.outputs]
        if n.op == "Fused":
            fname = self.function_for(n)
            return helper.make_node(fname, ins, outs, name=n.name or None, domain=RIDGELINE_DOMAIN)
        if n.spec.domain != "":
            raise ModelError(f"cannot export {n.op}: it has no ONNX form (domain {n.spec.domain!r})")
        return helper.make_node(n.op, ins, outs, name=n.name or None)  # attrs added below

    def function_for(self, n: Node) -> str:
        body = n.body
        fname = f"{n.attr('kind') or 'fused'}_{len(self.functions)}".replace("-", "_")
        nodes = []
        inits = []
        for c in body.constants.values():
            if c.data is None:
                raise ModelError(f"fused body constant %{c.name} has no data")
            inits.append(helper.make_node("Constant", [], [c.name], value=numpy_helper.from_array(c.data)))
        shared: dict = {}
        for bn in body:
            nodes.extend(self.full_nodes(bn, shared))
        imports = [helper.make_opsetid("", self.opset)]
        if any(p.domain == CONTRIB_DOMAIN for p in nodes):
            imports.append(helper.make_opsetid(CONTRIB_DOMAIN, 1))
        if any(p.domain == STD_DOMAIN for p in nodes):  # a body op newer than the opset, as a function
            imports.append(helper.make_opsetid(STD_DOMAIN, 1))
        f = helper.make_function(RIDGELINE_DOMAIN, fname, [v.name for v in body.inputs],
                                 [v.name for v in body.outputs], inits + nodes, imports)
        # what the importer needs to rebuild the Fused node exactly (kind may contain '-')
        f.doc_string = json.dumps({"kind": n.attr("kind"), "label": n.attr("label") or ""})
        self.functions.append(f)
        return fname

    def full_node(self, n: Node) -> onnx.NodeProto:
        proto = self.node_proto(n)
        if n.op != "Fused":
            proto.attribute.extend(_attrs(n))
        if self._lowered(n):
            proto = self.lowering.call(n, proto)
        return proto

    def full_nodes(self, n: Node, shared: dict | None = None) -> list[onnx.NodeProto]:
        """``n`` as ONNX, after the nodes that adapt its inputs to what onnxruntime demands
        (``shared`` reuses such adapted inputs across the nodes of one graph)."""
        if self.contrib is not None:
            if self.contrib.absorbed(n):  # written with the Add it reads, as one Skip* norm
                return []
            if id(n) in self._skip:
                return self.contrib.skip_norm(n, self._skip[id(n)])
            if self._lowered(n):
                proto = self.node_proto(n)
                proto.attribute.extend(_attrs(n))
                out = self.contrib.lower(n, proto)
                if out is not None:
                    return out
        proto = self.full_node(n)
        return _rotary_batch(n, proto, {} if shared is None else shared) + [proto]

    def model(self, initializer=None) -> onnx.ModelProto:
        """The model; ``initializer(value) -> TensorProto | None`` may write a constant itself
        (as external data) instead of inline."""
        g = self.graph
        inits = []
        for c in g.constants.values():
            if not c.has_data:
                raise ModelError(f"constant %{c.name} has no data (a weightless graph cannot be saved as ONNX; "
                                 f"save it as .rir instead)")
            t = initializer(c) if initializer is not None else None
            inits.append(t if t is not None else numpy_helper.from_array(np.asarray(c.data), c.name))
        shared: dict = {}
        if self.contrib is not None:
            self._skip = self.contrib.plan(n for n in g if self._lowered(n))
        nodes = [p for n in g for p in self.full_nodes(n, shared)]
        value_info = [_value_info(v) for n in g for v in n.outputs if v not in g.outputs]
        gp = helper.make_graph(nodes, g.name, [_value_info(v) for v in g.inputs],
                               [_value_info(v) for v in g.outputs], initializer=inits, value_info=value_info)
        opsets = [helper.make_opsetid("", self.opset)]
        if self.functions:
            opsets.append(helper.make_opsetid(RIDGELINE_DOMAIN, 1))
        if self.lowering.functions:
            opsets.append(helper.make_opsetid(STD_DOMAIN, 1))
        if self.contrib is not None and self.contrib.used:
            opsets.append(helper.make_opsetid(CONTRIB_DOMAIN, 1))
        m = helper.make_model(gp, opset_imports=opsets, producer_name="ridgeline",
                              functions=self.functions + self.lowering.functions)
        # the lowest IR version this opset allows, so older runtimes accept the file
        m.ir_version = min(helper.find_min_ir_version_for(m.opset_import, ignore_unknown=True), onnx.IR_VERSION)
        return m


def _rotary_batch(n: Node, proto: onnx.NodeProto, shared: dict) -> list[onnx.NodeProto]:
    """``RotaryEmbedding`` without position ids: the IR broadcasts cos/sin ``[1, S, R]`` over the
    batch, onnxruntime demands ``[B, S, R]`` exactly (it rejects batch 1 for x's batch 2): expand
    them to x's batch in the file (nodes only where the batch is not already known to match)."""
    if n.op != "RotaryEmbedding" or len(n.inputs) < 3 or (len(n.inputs) > 3 and n.inputs[3] is not None):
        return []
    x, cos = n.inputs[0], n.inputs[1]
    if cos.type.rank != 3 or cos.type.shape[0] == x.type.shape[0]:
        return []
    key = (cos.name, n.inputs[2].name, str(x.type.shape[0]))
    if not isinstance(x.type.shape[0], (int, str)) or str(x.type.shape[0]).startswith("_"):
        key = None  # a batch nobody knows: may differ between nodes, adapt each on its own
    if key in shared:  # every RoPE of the model shares its tables: expand them once
        proto.input[1], proto.input[2] = shared[key]
        return []
    base = proto.output[0]
    out = [helper.make_node("Shape", [x.name], [f"{base}__batch"], start=0, end=1),
           helper.make_node("Constant", [], [f"{base}__ones"], value=numpy_helper.from_array(
               np.ones(2, dtype=np.int64), f"{base}__ones")),
           helper.make_node("Concat", [f"{base}__batch", f"{base}__ones"], [f"{base}__bss"], axis=0)]
    for i in (1, 2):
        name = f"{base}__{'cos' if i == 1 else 'sin'}_b"
        out.append(helper.make_node("Expand", [proto.input[i], f"{base}__bss"], [name]))
        proto.input[i] = name
    if key is not None:
        shared[key] = (proto.input[1], proto.input[2])
    return out


def to_onnx(graph: Graph, *, opset: int | None = None, emit: str = "std",
            notes: list[str] | None = None, initializer=None) -> onnx.ModelProto:
    """The ``ModelProto`` of a graph (checked with ``onnx.checker``). ``emit="ort-contrib"`` writes
    fused ops newer than the opset as onnxruntime contrib ops where exact; ``notes`` (when given)
    receives one line per node that stayed a function instead. ``initializer(constant)`` may
    return a TensorProto for a constant (an external-data reference) instead of its bytes."""
    ex = _Exporter(graph, opset, emit)
    m = ex.model(initializer)
    if ex.contrib is not None and notes is not None:
        notes.extend(ex.contrib.fallbacks)
    try:
        onnx.checker.check_model(_without_external(m))
    except onnx.checker.ValidationError as e:
        raise ModelError(f"exported model fails onnx.checker: {str(e).splitlines()[0]}") from None
    return m


def _without_external(m: onnx.ModelProto) -> onnx.ModelProto:
    """``m`` for the checker: external initializers as graph inputs (the checker would look for
    their file relative to the working directory, before the file is even written)."""
    ext = [t for t in m.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    if not ext:
        return m
    c = onnx.ModelProto()
    c.CopyFrom(m)  # small: external weights are references only
    keep = [t for t in c.graph.initializer if t.data_location != onnx.TensorProto.EXTERNAL]
    del c.graph.initializer[:]
    c.graph.initializer.extend(keep)
    c.graph.input.extend(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in ext)
    return c


def save_onnx(graph: Graph, path: str | os.PathLike | None = None, *, opset: int | None = None,
              emit: str = "std", notes: list[str] | None = None,
              external_data: bool | None = None) -> onnx.ModelProto:
    """Write ``graph`` as ONNX to ``path`` (when given) and return the ``ModelProto`` (``emit`` and
    ``notes`` as for :func:`to_onnx`).

    ``external_data`` writes the weights to ``<path>.data`` one tensor at a time (the returned
    proto then holds references, not bytes); by default that happens when the graph's weights came
    from external data or would not fit a protobuf comfortably (see ``weights_out``).
    """
    if path is not None:
        from .weights_out import save_with_external_data, wants_external_data
        if wants_external_data(graph, external_data):
            return save_with_external_data(
                graph, path, lambda init: to_onnx(graph, opset=opset, emit=emit, notes=notes, initializer=init))
    m = to_onnx(graph, opset=opset, emit=emit, notes=notes)
    if path is not None:
        write_atomic(path, m.SerializeToString())  # never through a planted symlink, never half-written
    return m
