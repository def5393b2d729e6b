"""ONNX ``AttributeProto`` to and from the IR's attribute values."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import AttributeProto, helper, numpy_helper

from ...ir.errors import ModelError

__all__ = ["from_proto", "to_proto", "f32_to_float"]


def f32_to_float(x: float) -> float:
    """ONNX floats are float32: keep the exact float32 value as a Python float."""
    return float(np.float32(x))


def from_proto(a: AttributeProto, where: str) -> Any:
    t = a.type
    if t == AttributeProto.INT:
        return int(a.i)
    if t == AttributeProto.FLOAT:
        return f32_to_float(a.f)
    if t == AttributeProto.STRING:
        try:
            return a.s.decode("utf-8")
        except UnicodeDecodeError:
            raise ModelError(f"{where}: attribute {a.name} is not valid UTF-8") from None
    if t == AttributeProto.INTS:
        return tuple(int(x) for x in a.ints)
    if t == AttributeProto.FLOATS:
        return tuple(f32_to_float(x) for x in a.floats)
    if t == AttributeProto.STRINGS:
        return tuple(s.decode("utf-8", "replace") for s in a.strings)
    if t == AttributeProto.TENSOR:
        try:
            return numpy_helper.to_array(a.t)
        except Exception as e:
            raise ModelError(f"{where}: attribute {a.name} holds an unreadable tensor: {e}") from None
    if t in (AttributeProto.GRAPH, AttributeProto.GRAPHS):
        raise ModelError(f"{where}: attribute {a.name} is a sub-graph (control flow is not supported)")
    if a.ref_attr_name:
        raise ModelError(f"{where}: attribute {a.name} refers to a function attribute")
    raise ModelError(f"{where}: attribute {a.name} has unsupported type {AttributeProto.AttributeType.Name(t)}")


def to_proto(name: str, value: Any) -> AttributeProto:
    if isinstance(value, np.ndarray):
        return helper.make_attribute(name, numpy_helper.from_array(value))
    if isinstance(value, tuple):
        value = list(value)
        if not value:
            a = AttributeProto()
            a.name, a.type = name, AttributeProto.INTS
            return a
    return helper.make_attribute(name, value)


def tensor_proto(arr: np.ndarray, name: str) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(arr), name)
