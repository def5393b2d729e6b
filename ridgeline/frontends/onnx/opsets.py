"""The lowest ONNX opset at which a node, exactly as written, is valid.

An op spec follows the newest form of its op (``since`` may be an opset runtimes do not support
yet, e.g. Range at 27 only for its f16 types). Exporting at the newest opset of every spec used
would stamp models that onnxruntime refuses, so the exporter asks ONNX's own schema history
instead: the earliest schema version that accepts the node's attributes, input/output counts and
dtypes.
"""

from __future__ import annotations

from functools import lru_cache

import onnx
from onnx import defs

from ...ir import Node

__all__ = ["required_opset"]


@lru_cache(maxsize=None)
def _history(op: str) -> tuple:
    versions = [s for s in defs.get_all_schemas_with_history() if s.name == op and s.domain in ("", "ai.onnx")]
    return tuple(sorted(versions, key=lambda s: s.since_version))


def _type_str(onnx_code: int) -> str:
    return f"tensor({onnx.TensorProto.DataType.Name(onnx_code).lower()})"


def _accepts(schema, attrs: frozenset, n_in: int, n_out: int, in_types: tuple, out_types: tuple) -> bool:
    if schema.deprecated:
        return False
    if not attrs <= set(schema.attributes):
        return False
    if not schema.min_input <= n_in <= schema.max_input or not n_out <= schema.max_output:
        return False
    allowed = {c.type_param_str: set(c.allowed_type_strs) for c in schema.type_constraints}

    def ok(params, types) -> bool:
        for i, t in enumerate(types):
            if t is None:
                continue
            if not params:
                return False
            p = params[min(i, len(params) - 1)]
            if i >= len(params) and p.option != defs.OpSchema.FormalParameterOption.Variadic:
                return False
            want = allowed.get(p.type_str, {p.type_str})
            if t not in want:
                return False
        return True
    return ok(schema.inputs, in_types) and ok(schema.outputs, out_types)


@lru_cache(maxsize=4096)
def _required(op: str, attrs: frozenset, n_in: int, n_out: int, in_types: tuple, out_types: tuple,
              fallback: int) -> int:
    for schema in _history(op):
        if _accepts(schema, attrs, n_in, n_out, in_types, out_types):
            return schema.since_version
    return fallback


def required_opset(node: Node) -> int:
    """The earliest default-domain opset whose schema of ``node.op`` accepts this node."""
    attrs = frozenset(k for k, v in node.attrs.items() if v is not None)
    in_types = tuple(_type_str(v.type.dtype.onnx_code) if v is not None else None for v in node.inputs)
    out_types = tuple(_type_str(v.type.dtype.onnx_code) for v in node.outputs)
    return _required(node.op, attrs, len(node.inputs), len(node.outputs), in_types, out_types,
                     node.spec.since)
