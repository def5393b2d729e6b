"""ONNX → IR.

``load_onnx(path_or_proto, dims=...)`` reads a model without trusting it: the file is parsed and
checked, every op is looked up first (one error lists every unsupported op with its count), the
node order is checked for cycles, external data is read only from inside the model's folder, and
types come from our own specs (ONNX's shape inference only fills in what ours cannot know). The
input file is opened read-only and never written.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import onnx
import onnx.inliner
from google.protobuf.message import DecodeError

from ...ir import Graph, TensorType, Value
from ...ir.dims import check_dim
from ...ir.dtypes import from_onnx
from ...ir.errors import IRError, ModelError, RidgelineError, UnsupportedOpError, VerifyError
from ...ir.gc_pause import gc_paused
from ...ir.infer import refine_types
from ...ir.ops import find_spec
from ...ir.verifier import verify
from .attributes import from_proto
from .exporter import RIDGELINE_DOMAIN
from .external_data import MAX_DIM, MAX_ELEMENTS, InlineWeights, tensor_to_array
from .inline_weights import MIN_SPLIT_BYTES, split_inline_weights
from .legacy import ImportedNode, upgrade
from .lowering import LOWERABLE, STD_DOMAIN, standard_op
from .matmul_nbits import MS_DOMAIN, expand_matmul_nbits
from .ort_contrib import ContribImportError, is_contrib, to_standard

__all__ = ["load_onnx", "MAX_MODEL_BYTES", "MIN_OPSET", "MAX_OPSET", "MAX_DIM", "MAX_ELEMENTS"]

#: refuse protobufs above this size outright (protobuf itself caps messages at 2 GiB)
MAX_MODEL_BYTES = 2 ** 31
MIN_OPSET, MAX_OPSET = 7, 28
_DEFAULT_DOMAINS = ("", "ai.onnx")
#: ops whose attributes are sub-graphs: the IR has no control flow
_CONTROL_FLOW = frozenset({"If", "Loop", "Scan", "SequenceMap"})


def _read(model: str | os.PathLike | bytes | onnx.ModelProto
          ) -> tuple[onnx.ModelProto, Path | None, str, InlineWeights | None]:
    """The parsed model, the folder its external data is read from, its name for messages, and
    the inline weights left in the mapped file (None when the proto holds them)."""
    inline = None
    if isinstance(model, onnx.ModelProto):
        return model, None, model.graph.name or "model", None
    if isinstance(model, (bytes, bytearray)):
        data, base, label = bytes(model), None, "<bytes>"
    else:
        path = Path(model)
        label = str(path)
        if not path.exists():
            raise ModelError(f"{label}: no such file")
        if path.is_dir():
            raise ModelError(f"{label}: is a directory, not an .onnx file")
        size = path.stat().st_size
        if size == 0:
            raise ModelError(f"{label}: the file is empty")
        if size > MAX_MODEL_BYTES:
            raise ModelError(f"{label}: {size} bytes is beyond the 2 GiB protobuf limit; "
                             f"store the weights as external data")
        try:
            with open(path, "rb") as f:
                data, inline = _read_mapped(f, size)
        except OSError as e:
            raise ModelError(f"{label}: cannot read the file: {e.strerror or e}") from None
        base = path.parent
    proto = _parse(data, label)
    if inline is not None and any(n.domain == MS_DOMAIN and n.op_type == "MatMulNBits" for n in proto.graph.node):
        # expand_matmul_nbits decodes its weights from the proto: it gets the whole file
        proto, inline = _parse(bytes(inline.whole), label), None
    if not proto.HasField("graph") or (not proto.graph.node and not proto.graph.output):
        raise ModelError(f"{label}: not a valid ONNX model (no graph; truncated or not an ONNX file?)")
    _check_text(proto, label)
    return proto, base, label, inline


def _parse(data: bytes, label: str) -> onnx.ModelProto:
    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as e:
        raise ModelError(f"{label}: not a valid ONNX model (protobuf decoding failed: {e})") from None
    return proto


def _read_mapped(f, size: int) -> tuple[bytes, InlineWeights | None]:
    """The model's bytes to parse: without its large inline weights when it has any (those stay
    in a read-only mapping of the file, see ``inline_weights``), else the whole file."""
    import mmap
    if size >= MIN_SPLIT_BYTES:
        try:
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            mm = None
        if mm is not None:
            split = split_inline_weights(mm)
            if split is not None:
                return split[0], InlineWeights(mm, split[1], Path(f.name).name)
            mm.close()
    return f.read(), None


def _check_text(proto: onnx.ModelProto, label: str) -> None:
    """Refuse names that are not UTF-8: protobuf's upb parser hands them over as ``bytes``, which
    every later step (messages, the exporter) would trip over."""
    def bad(where: str, value) -> None:
        raise ModelError(f"{label}: {where} {bytes(value)[:40]!r} is not valid UTF-8")

    def check_values(infos, kind: str) -> None:
        for vi in infos:
            if isinstance(vi.name, bytes):
                bad(f"{kind} name", vi.name)
            if vi.type.HasField("tensor_type"):
                for d in vi.type.tensor_type.shape.dim:
                    if d.HasField("dim_param") and isinstance(d.dim_param, bytes):
                        bad(f"{kind} {vi.name!r} dim name", d.dim_param)

    def check_nodes(nodes, where: str) -> None:
        for i, n in enumerate(nodes):
            for field in ("name", "op_type", "domain"):
                if isinstance(getattr(n, field), bytes):
                    bad(f"{where}node #{i} {field}", getattr(n, field))
            for x in list(n.input) + list(n.output):
                if isinstance(x, bytes):
                    bad(f"{where}node #{i} ({n.op_type}) value name", x)
            for a in n.attribute:
                if isinstance(a.name, bytes) or isinstance(a.ref_attr_name, bytes):
                    bad(f"{where}node #{i} ({n.op_type}) attribute name", a.name)

    g = proto.graph
    if isinstance(g.name, bytes):
        bad("graph name", g.name)
    check_values(list(g.input) + list(g.output) + list(g.value_info), "value")
    for t in g.initializer:
        if isinstance(t.name, bytes):
            bad("initializer name", t.name)
        for e in t.external_data:
            if isinstance(e.key, bytes) or isinstance(e.value, bytes):
                bad(f"initializer {t.name!r} external data field", e.value)
    for imp in proto.opset_import:
        if isinstance(imp.domain, bytes):
            bad("opset domain", imp.domain)
    check_nodes(g.node, "")
    for f in proto.functions:
        if isinstance(f.name, bytes) or isinstance(f.domain, bytes):
            bad("function name", f.name)
        for x in list(f.input) + list(f.output):
            if isinstance(x, bytes):
                bad(f"function {f.name!r} parameter", x)
        check_nodes(f.node, f"function {f.name!r} ")


def _opset(proto: onnx.ModelProto, label: str) -> int:
    version = None
    for imp in proto.opset_import:
        if imp.domain in _DEFAULT_DOMAINS:
            version = int(imp.version)
    if version is None:
        if not proto.opset_import:
            raise ModelError(f"{label}: the model declares no opset")
        version = MAX_OPSET
    if not MIN_OPSET <= version <= MAX_OPSET:
        raise ModelError(f"{label}: opset {version} is not supported (supported: {MIN_OPSET}..{MAX_OPSET})")
    return version


def _check_ops(proto: onnx.ModelProto, label: str) -> None:
    """One error naming every op we cannot import, with counts and why for the special kinds."""
    graph = proto.graph
    local = {(f.domain, f.name) for f in proto.functions if f.domain not in (RIDGELINE_DOMAIN, STD_DOMAIN)}
    fused = {f.name for f in proto.functions if f.domain in (RIDGELINE_DOMAIN, STD_DOMAIN)}
    missing: dict[str, int] = {}
    notes: dict[str, str] = {}
    for n in graph.node:
        default = n.domain in _DEFAULT_DOMAINS
        if default and n.op_type == "Constant":
            continue
        key = (n.op_type if default else f"{n.domain}.{n.op_type}") or "''"
        if n.domain in (RIDGELINE_DOMAIN, STD_DOMAIN) and n.op_type in fused or is_contrib(n):
            continue
        if (n.domain, n.op_type) in local or (default and ("", n.op_type) in local):
            notes[key] = "a model-local function (inline it first: onnx.inliner.inline_local_functions)"
        elif default and find_spec(n.op_type) is not None:
            continue
        elif default and n.op_type in _CONTROL_FLOW:
            notes[key] = "control flow (sub-graphs are not supported)"
        elif not default:
            notes.setdefault(key, f"from domain {n.domain!r}, which ridgeline does not implement")
        missing[key] = missing.get(key, 0) + 1
    if missing:
        e = UnsupportedOpError(missing, where=label)
        if notes:
            e.args = (f"{e.args[0]}; " + "; ".join(f"{k} is {v}" for k, v in sorted(notes.items())),)
        raise e


def _dims_of(tp: onnx.TypeProto, where: str) -> tuple | None:
    if not tp.HasField("tensor_type"):
        return None
    tt = tp.tensor_type
    if not tt.HasField("shape"):
        return None
    out = []
    for d in tt.shape.dim:
        if d.HasField("dim_value"):
            if d.dim_value < 0:
                raise ModelError(f"{where}: negative dimension {d.dim_value}")
            if d.dim_value > MAX_DIM:
                raise ModelError(f"{where}: dimension {d.dim_value} is beyond any real tensor (limit 2^40)")
            out.append(int(d.dim_value))
        elif d.HasField("dim_param") and d.dim_param and not d.dim_param.startswith("unk__"):
            try:
                out.append(check_dim(d.dim_param))
            except IRError:
                out.append(_safe_name(d.dim_param))
        else:
            out.append(None)
    return tuple(out)


def _safe_name(param: str) -> str:
    """A dim_param that is not a valid dim expression becomes a name (never evaluated)."""
    import re
    name = re.sub(r"[^A-Za-z0-9_]", "_", param[:64])
    name = name if re.match(r"[A-Za-z_]", name) else "d_" + name
    try:
        return check_dim(name)
    except IRError:  # a reserved word such as "lambda"
        return "d_" + name


def _value_type(tp: onnx.TypeProto, where: str, g: Graph) -> TensorType | None:
    if not tp.HasField("tensor_type"):
        if tp.WhichOneof("value") is None:
            return None
        raise ModelError(f"{where}: only tensor values are supported (found {tp.WhichOneof('value')})")
    if tp.tensor_type.elem_type == 0:
        return None
    try:
        dt = from_onnx(tp.tensor_type.elem_type)
    except IRError as e:
        raise ModelError(f"{where}: {e}") from None
    dims = _dims_of(tp, where)
    if dims is None:
        return None
    return TensorType(dt, tuple(d if d is not None else g.unknown_dim("i") for d in dims))


def _tensor(t: onnx.TensorProto, base: Path | None, label: str, maps: dict | None = None,
            inline: InlineWeights | None = None):
    """An initializer: an array, or a memory-mapped ``LazyTensor`` for external data and for
    large weights inside the model file."""
    return tensor_to_array(t, base, f"{label}: initializer {t.name!r}", maps=maps, inline=inline)


#: initializers above this many bytes are typed inputs for onnx's shape inference: no shape is
#: computed from a weight, and serializing them for the C++ side cost half of loading a 500 MiB model
_SHAPE_INFERENCE_INLINE = 1 << 16


def _without_weights(proto: onnx.ModelProto, inline: InlineWeights | None = None) -> onnx.ModelProto:
    """``proto`` for onnx's shape inference: large initializers (and those whose bytes were left in
    the file) become typed graph inputs, so the weights are neither serialized nor copied (their
    sizes come from dims, not data)."""
    og = proto.graph
    lazy = inline.places if inline is not None else {}
    big = [t for t in og.initializer
           if t.data_type != onnx.TensorProto.STRING
           and (math.prod(t.dims) * 4 > _SHAPE_INFERENCE_INLINE or t.name in lazy)]
    if not big:
        return proto
    names = {t.name for t in big}
    m = onnx.ModelProto()
    m.ir_version = proto.ir_version
    m.opset_import.extend(proto.opset_import)
    m.functions.extend(proto.functions)
    g = m.graph
    g.name = og.name
    g.node.extend(og.node)
    g.input.extend(vi for vi in og.input if vi.name not in names)
    g.input.extend(onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in big)
    g.output.extend(og.output)
    g.value_info.extend(og.value_info)
    g.initializer.extend(t for t in og.initializer if t.name not in names)
    return m


def _topological(graph: onnx.GraphProto, known: set[str], label: str) -> list[onnx.NodeProto]:
    nodes = list(graph.node)   # one pass over the protobuf field, then Python objects
    producers: dict[str, int] = {}
    for i, n in enumerate(nodes):
        for o in n.output:
            if o:
                if o in producers or o in known:
                    raise ModelError(f"{label}: value {o!r} is produced twice")
                producers[o] = i
    deps = []
    in_order = True   # exporters write nodes in order: then the order below is the file's
    for i, n in enumerate(nodes):
        d = set()
        for x in n.input:
            if not x:
                continue
            p = producers.get(x)
            if p is not None:
                d.add(p)
                in_order = in_order and p < i
            elif x not in known:
                raise ModelError(f"{label}: {n.op_type} node {n.name!r} reads {x!r}, which nothing defines")
        deps.append(d)
    if in_order:   # every input made by an earlier node: no cycle, and the search would return this
        return nodes
    order, state = [], [0] * len(nodes)  # 0 new, 1 visiting, 2 done
    for root in range(len(nodes)):
        if state[root]:
            continue
        stack = [(root, iter(sorted(deps[root])))]
        state[root] = 1
        while stack:
            i, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                stack.pop()
                state[i] = 2
                order.append(nodes[i])
            elif state[nxt] == 1:
                n = nodes[nxt]
                raise ModelError(f"{label}: the graph has a cycle through {n.op_type} node {n.name!r}")
            elif state[nxt] == 0:
                state[nxt] = 1
                stack.append((nxt, iter(sorted(deps[nxt]))))
    return order


def load_onnx(model: str | os.PathLike | bytes | onnx.ModelProto, *,
              dims: Mapping[str, int | str] | None = None, name: str | None = None) -> Graph:
    """Import an ONNX model (a path, bytes or a ``ModelProto``) as a verified ``Graph``.

    ``dims`` binds symbolic dims (``{"batch": 1, "sequence": 128}``) so shapes become static.
    """
    proto, base, label, inline = _read(model)
    opset = _opset(proto, label)
    proto = _inline_foreign_functions(proto, label)
    try:
        with gc_paused():
            return _convert(proto, base, label, opset, dims, name, inline)
    except VerifyError as e:
        node = getattr(e, "node", None)
        at = f" {node.op} node {node.name!r}:" if node is not None and f"node {node.name!r}" not in str(e) else ""
        raise ModelError(f"{label}:{at} {e}") from None
    except IRError as e:
        if isinstance(e, (ModelError, UnsupportedOpError)):
            raise
        raise ModelError(f"{label}: {e}") from None


def _convert(proto, base, label, opset, dims, name, inline=None) -> Graph:
    proto = expand_matmul_nbits(proto)   # com.microsoft.MatMulNBits: DequantizeLinear + MatMul
    og = proto.graph
    _check_ops(proto, label)
    g = Graph(name or og.name or "main")
    g.meta["onnx"] = {"opset": opset, "producer": f"{proto.producer_name} {proto.producer_version}".strip(),
                      "ir_version": int(proto.ir_version)}
    if not og.output:
        raise ModelError(f"{label}: the graph declares no outputs")
    # structure first (duplicates, undefined names, cycles): onnx's C++ shape inference below
    # should only ever see a well-formed graph
    order = _topological(og, {t.name for t in og.initializer} | {vi.name for vi in og.input}, label)

    # Node types are built from ONNX's shape inference and then refined by our specs, which carry
    # the symbolic shape values through (refine_types); the specs have the final word.
    try:
        inferred = onnx.shape_inference.infer_shapes(_without_weights(proto, inline), strict_mode=False,
                                                     data_prop=True)
        vinfo = {vi.name: vi.type for vi in inferred.graph.value_info}
    except Exception:  # a malformed model: our own verifier reports it, naming the node
        vinfo = {vi.name: vi.type for vi in og.value_info}
    for vi in list(og.output) + list(og.input):
        vinfo.setdefault(vi.name, vi.type)

    values: dict[str, Value] = {}
    init_names = set()
    maps: dict = {}  # one read-only mapping per external-data file
    for t in og.initializer:
        if t.name in values:
            raise ModelError(f"{label}: initializer {t.name!r} is defined twice")
        values[t.name] = g.add_constant(t.name, _tensor(t, base, label, maps, inline))
        init_names.add(t.name)
    if og.sparse_initializer:
        raise ModelError(f"{label}: sparse initializers are not supported")
    for vi in og.input:
        if vi.name in init_names:
            continue  # an input with a default initializer: treated as the constant
        if vi.name in values:
            raise ModelError(f"{label}: input {vi.name!r} is declared twice")
        t = _value_type(vi.type, f"{label}: input {vi.name!r}", g)
        if t is None:
            raise ModelError(f"{label}: input {vi.name!r} has no tensor type or shape")
        values[vi.name] = g.add_input(vi.name, t)

    functions = {f.name: f for f in proto.functions if f.domain == RIDGELINE_DOMAIN}
    for n in order:
        where = f"{label}: {n.op_type} node {n.name!r}"
        try:
            _import_node(g, n, values, vinfo, opset, where, functions, base)
        except RidgelineError:
            raise
        except (IndexError, ValueError, TypeError, KeyError, ArithmeticError, RecursionError) as e:
            # hostile input we did not foresee still gets one line naming the node
            raise ModelError(f"{where}: cannot import it ({type(e).__name__}: {e})") from None

    outs = []
    for vi in og.output:
        if vi.name not in values:
            raise ModelError(f"{label}: graph output {vi.name!r} is never produced")
        outs.append(values[vi.name])
    g.outputs = outs
    refine_types(g)  # infers every node once; what it writes agrees with the specs by construction,
    verify(g, check_types=False)  # so the verifier checks structure without a second inference
    _check_sizes(g, label)
    if dims:
        g = g.bind(dims)
    return g


def _import_node(g: Graph, n: onnx.NodeProto, values: dict[str, Value], vinfo: dict, opset: int,
                 where: str, functions: dict[str, onnx.FunctionProto] | None = None,
                 base: Path | None = None) -> None:
    if functions and n.domain == RIDGELINE_DOMAIN and n.op_type in functions:
        _import_fused(g, n, values, opset, where, functions, base)
        return
    if n.domain == STD_DOMAIN:  # a standard op the exporter wrote as a function (below its opset)
        n = _standard_call(n, where)
    if is_contrib(n):  # an onnxruntime contrib op ridgeline writes: read as the standard ops it is
        try:
            parts = to_standard(n, lambda name: values[name].type.rank)
        except ContribImportError as e:
            raise ModelError(f"{where}: {e}") from None
        for part in parts:
            _import_node(g, part, values, vinfo, opset, where, functions, base)
        return
    attrs = {a.name: from_proto(a, where, base) for a in n.attribute}
    if len(set(a.name for a in n.attribute)) != len(n.attribute):
        raise ModelError(f"{where}: an attribute is given twice")
    if n.op_type == "Constant":
        if len(n.output) != 1 or n.input:
            raise ModelError(f"{where}: a Constant has no inputs and one output")
        values[n.output[0]] = g.add_constant(n.output[0], _constant_value(attrs, where))
        return
    ins = [values[x] if x else None for x in n.input]
    while ins and ins[-1] is None:
        ins.pop()
    outs = list(n.output)
    while outs and not outs[-1]:
        outs.pop()
    if not outs:
        raise ModelError(f"{where}: the node has no outputs")
    node = upgrade(ImportedNode(n.op_type, ins, attrs, outs, n.name), opset, g)
    spec = find_spec(node.op)
    for a in list(node.attrs):
        if a not in spec.attrs:
            raise ModelError(f"{where}: attribute {a!r} is not supported by ridgeline's {node.op}")
    if len(node.outputs) > len(spec.outputs) and not spec.outputs[-1].variadic:
        raise ModelError(f"{where}: {len(node.outputs)} outputs, but {node.op} has {len(spec.outputs)}")
    types = []
    for o in node.outputs:
        t = _value_type(vinfo[o], f"{where}: output {o!r}", g) if o in vinfo else None
        types.append(t)
    names = [o if o else None for o in node.outputs]
    try:
        ir_node = g.add_node(node.op, node.inputs, node.attrs, outputs=types if types else None,
                             names=[_fresh_if_taken(g, x) for x in names], name=n.name)
    except VerifyError as e:
        raise ModelError(f"{where}: {e}") from None
    for o, v in zip(node.outputs, ir_node.outputs):
        if o:
            values[o] = v


def _inline_foreign_functions(proto: onnx.ModelProto, label: str) -> onnx.ModelProto:
    """Inline model-local functions, except ridgeline's own (they become ``Fused`` nodes again)."""
    foreign = [(f.domain, f.name) for f in proto.functions if f.domain not in (RIDGELINE_DOMAIN, STD_DOMAIN)]
    if not foreign:
        return proto
    calls = {(f.domain, f.name): {(n.domain, n.op_type) for n in f.node} for f in proto.functions}
    seen: set = set()

    def cyclic(fid, path) -> bool:
        if fid in path:
            return True
        if fid in seen or fid not in calls:
            return False
        seen.add(fid)
        return any(cyclic(c, path | {fid}) for c in calls[fid])
    for fid in calls:
        if cyclic(fid, frozenset()):
            raise ModelError(f"{label}: model-local function {fid[0]}.{fid[1]} calls itself (recursion)")
    try:
        return onnx.inliner.inline_selected_functions(proto, foreign, exclude=False)
    except Exception as e:  # the inliner is C++: a malformed function body surfaces here
        raise ModelError(f"{label}: cannot inline model-local functions ({type(e).__name__}: {e})") from None


def _standard_call(n: onnx.NodeProto, where: str) -> onnx.NodeProto:
    """A call ``ridgeline.std.Attention_3`` as the ``Attention`` node it stands for (attributes ride
    on the call; the function body is only for runtimes without the op)."""
    op = standard_op(n)
    if op not in LOWERABLE:
        raise ModelError(f"{where}: {n.domain}.{n.op_type} does not name an op ridgeline writes as a function")
    out = onnx.NodeProto()
    out.CopyFrom(n)
    out.op_type, out.domain = op, ""
    return out


def _import_fused(g: Graph, n: onnx.NodeProto, values: dict[str, Value], opset: int, where: str,
                  functions: dict[str, onnx.FunctionProto], base: Path | None = None) -> None:
    """A call of a function ridgeline exported becomes the ``Fused`` node it was written from."""
    fn = functions[n.op_type]
    if len(n.input) != len(fn.input) or len(n.output) != len(fn.output):
        raise ModelError(f"{where}: calls {fn.name} with {len(n.input)} inputs and {len(n.output)} outputs; "
                         f"it takes {len(fn.input)} and returns {len(fn.output)}")
    ins = [values[x] for x in n.input]
    body = Graph(fn.name)
    local: dict[str, Value] = {p: body.add_input(p, v.type) for p, v in zip(fn.input, ins)}
    for bn in fn.node:
        _import_node(body, bn, local, {}, opset, f"{where} (body {fn.name})", functions, base)
    missing = [o for o in fn.output if o not in local]
    if missing:
        raise ModelError(f"{where}: function {fn.name} never produces {', '.join(missing)}")
    body.outputs = [local[o] for o in fn.output]
    refine_types(body)
    try:
        info = json.loads(fn.doc_string) if fn.doc_string else {}
    except ValueError:
        info = {}
    kind = info.get("kind") if isinstance(info.get("kind"), str) else re.sub(r"_\d+$", "", fn.name).replace("_", "-")
    attrs = {"kind": kind}
    if isinstance(info.get("label"), str) and info["label"]:
        attrs["label"] = info["label"]
    node = g.add_node("Fused", ins, attrs, body=body, names=[_fresh_if_taken(g, o) for o in n.output], name=n.name)
    for o, v in zip(n.output, node.outputs):
        values[o] = v


def _check_sizes(g: Graph, label: str) -> None:
    """Refuse values no machine could hold (``ConstantOfShape([2^40, 2^40])``) before a run tries."""
    for v in g.values():
        shape = v.type.shape
        if all(isinstance(d, int) for d in shape):
            numel = math.prod(shape)
            if numel > MAX_ELEMENTS or any(d > MAX_DIM for d in shape):
                where = f"{v.producer.op} node {v.producer.name!r}" if v.producer is not None else f"%{v.name}"
                raise ModelError(f"{label}: {where} makes {v.type.dtype}{list(shape)[:6]}, {numel:.3g} elements, "
                                 f"beyond any real tensor")


def _fresh_if_taken(g: Graph, name: str | None) -> str | None:
    if name is None:
        return None
    return name if not g.has_value(name) else g.fresh_name(name)


def _constant_value(attrs: dict[str, Any], where: str) -> np.ndarray:
    for key, dtype in (("value", None), ("value_float", np.float32), ("value_floats", np.float32),
                       ("value_int", np.int64), ("value_ints", np.int64)):
        if key in attrs:
            return np.asarray(attrs[key], dtype=dtype)
    raise ModelError(f"{where}: Constant with {', '.join(attrs) or 'no value'} is not supported")
