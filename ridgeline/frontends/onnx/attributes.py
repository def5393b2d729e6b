"""ONNX ``AttributeProto`` to and from the IR's attribute values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from onnx import AttributeProto, helper, numpy_helper

from ...ir.errors import ModelError
from .external_data import tensor_to_array

__all__ = ["from_proto", "to_proto", "f32_to_float"]


def f32_to_float(x: float) -> float:
    """ONNX floats are float32: keep the exact float32 value as a Python float."""
    return float(np.float32(x))


def from_proto(a: AttributeProto, where: str, base: Path | None = None) -> Any:
    """The IR value of attribute ``a``; a tensor stored as external data is read from inside ``base``
    (the model's folder) under the same policy as initializers."""
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
        try:
            return tuple(s.decode("utf-8") for s in a.strings)
        except UnicodeDecodeError:
            raise ModelError(f"{where}: attribute {a.name} is not valid UTF-8") from None
    if t == AttributeProto.TENSOR:
        return tensor_to_array(a.t, base, f"{where}: attribute {a.name}")
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

